package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/smuggler"
)

// TestPrune makes chains at known times and checks, rule by rule, which
// chains retention deletes: whole chains only, never the newest, never
// one whose incrementals are recent.
func TestPrune(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// Chains (first file, incrementals) by day: A day 0; B day 10 with an
	// incremental on day 19; C day 20; D day 30 (the newest).
	type chainSpec struct {
		start int
		incs  []int
	}
	specs := []chainSpec{{0, nil}, {10, []int{19}}, {20, nil}, {30, []int{31}}}
	cases := []struct {
		name string
		r    Retention
		now  int
		kept []int // indexes of specs kept
	}{
		{"disabled", Retention{}, 40, []int{0, 1, 2, 3}},
		{"age 15 days at day 30", Retention{MinAge: 15 * day}, 30, []int{1, 2, 3}},
		{"age 15 days at day 40", Retention{MinAge: 15 * day}, 40, []int{3}},
		// B's full backup is 33 days old but its incremental is 24: the
		// chain is kept whole.
		{"age 25 days keeps a chain with a recent incremental", Retention{MinAge: 25 * day}, 43, []int{1, 2, 3}},
		{"newest 2", Retention{KeepNewest: 2}, 40, []int{2, 3}},
		{"newest 1 still keeps the newest", Retention{KeepNewest: 1}, 40, []int{3}},
		{"newest 2 and age 5 days: both must allow", Retention{KeepNewest: 2, MinAge: 5 * day}, 40, []int{2, 3}},
		{"newest 1 and age 100 days", Retention{KeepNewest: 1, MinAge: 100 * day}, 40, []int{0, 1, 2, 3}},
		{"age keeps everything young", Retention{MinAge: 100 * day}, 40, []int{0, 1, 2, 3}},
		{"huge age never removes the newest", Retention{MinAge: time.Minute}, 400, []int{3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			db := testData(t, root, "db")["db"]
			to := filepath.Join(root, "backups")
			var names []string
			n := 0
			for _, s := range specs {
				n++
				db.Put(fmt.Sprintf("d/%d", n), []byte(`{}`))
				res, err := Run(db, Options{To: []string{to}, Compression: smuggler.Zstd, Now: t0.Add(time.Duration(s.start) * day)})
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, res.Chain)
				for _, inc := range s.incs {
					n++
					db.Put(fmt.Sprintf("d/%d", n), []byte(`{}`))
					if _, err := Run(db, Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(time.Duration(inc) * day)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// An interrupted chain (a partial file only) older than the
			// newest: retention clears it when enabled.
			junk := ChainFolder(t0.Add(25*day), "db", Logical)
			os.MkdirAll(filepath.Join(to, junk), 0o700)
			os.WriteFile(filepath.Join(to, junk, FileName(t0.Add(25*day), KindFull, false)+destination.InProgressSuffix), []byte("x"), 0o600)

			s, _ := destination.OpenLocal(to)
			pruned, err := Prune(context.Background(), s, "db", c.r, t0.Add(time.Duration(c.now)*day))
			if err != nil {
				t.Fatal(err)
			}
			chains, err := FindChains(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range chains {
				got = append(got, ch.Name)
			}
			var want []string
			for _, i := range c.kept {
				want = append(want, names[i])
			}
			if c.r.Enabled() {
				if _, err := os.Stat(filepath.Join(to, junk)); err == nil {
					t.Errorf("the interrupted chain %s was not cleared", junk)
				}
			} else {
				want = append(want[:3:3], append([]string{junk}, want[3:]...)...)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("kept %v, want %v (pruned %+v)", got, want, pruned)
			}
			for _, p := range pruned {
				if _, err := os.Stat(filepath.Join(to, p.Chain)); err == nil {
					t.Errorf("pruned chain %s still has its folder", p.Chain)
				}
			}
		})
	}
}

func TestRetentionCheck(t *testing.T) {
	for _, c := range []struct {
		r   Retention
		err string
	}{
		{Retention{MinAge: -time.Hour}, "retention minimum age -1h0m0s is negative. Give a duration such as 720h, or 0 to keep chains of any age"},
		{Retention{KeepNewest: -1}, "retention keep-newest -1 is negative. Give a number of chains of at least 1, or 0 to leave count out"},
		{Retention{MinAge: time.Second}, "retention minimum age 1s is shorter than a minute, which would delete chains while they are still being extended. Give at least 1m"},
		{Retention{MinAge: time.Hour, KeepNewest: 3}, ""},
	} {
		err := c.r.Check()
		if (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("%+v: %v, want %q", c.r, err, c.err)
		}
	}
}
