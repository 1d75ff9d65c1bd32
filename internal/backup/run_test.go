package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// testData opens a data dir in root holding the databases named.
func testData(t *testing.T, root string, names ...string) map[string]*store.DB {
	return testDataWith(t, root, store.CreateOptions{}, names...)
}

// testDataWith is testData with the databases created with opts.
func testDataWith(t *testing.T, root string, opts store.CreateOptions, names ...string) map[string]*store.DB {
	t.Helper()
	d, err := store.Open(store.Options{Dir: filepath.Join(root, "data"), Create: true, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	dbs := map[string]*store.DB{}
	for _, n := range names {
		if _, err := d.CreateDatabase(n, opts); err != nil {
			t.Fatal(err)
		}
		db, err := d.OpenDatabase(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[n] = db
	}
	return dbs
}

// put changes a document of db, so that an incremental has work.
func put(t *testing.T, db *store.DB) {
	t.Helper()
	if _, err := db.Put(fmt.Sprintf("d/%d", db.LastEtag()+1), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, db *store.DB, at time.Time, incremental bool, to ...string) *Result {
	t.Helper()
	res, err := Run(db, Options{To: to, Compression: smuggler.Zstd, Incremental: incremental, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tree reads every file under dir: name -> content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func chainNames(t *testing.T, dir string) []string {
	t.Helper()
	s, _ := destination.OpenLocal(dir)
	chains, err := FindChains(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range chains {
		out = append(out, c.Name)
	}
	return out
}

func TestParseChainFolder(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 39, 11, 497467700, time.UTC)
	const stamp = "2026-12-03-17-39-11-4974677"
	for _, c := range []struct {
		name string
		db   string
		typ  Type
		ok   bool
	}{
		{stamp + ".media.backup", "media", Logical, true},
		{stamp + ".a.media.backup", "a.media", Logical, true},
		{stamp + ".media.snapshot", "media", Snapshot, true},
		{stamp + ".Media.backup", "Media", Logical, true},
		{stamp + "..backup", "", "", false},
		{stamp + ".backup", "", "", false},
		{stamp + "media.backup", "", "", false},
		{stamp + ".media.tar", "", "", false},
		{"x.media.backup", "", "", false},
		{"2026-12-03-17-39-11.media.backup", "", "", false},
		{"2026-13-03-17-39-11-4974677.media.backup", "", "", false},
		{stamp + ".me%zzdia.backup", "", "", false},
	} {
		start, db, typ, ok := ParseChainFolder(c.name)
		if ok != c.ok || db != c.db || typ != c.typ || ok && !start.Equal(at) {
			t.Errorf("ParseChainFolder(%q) = %v, %q, %q, %v; want %q, %q, %v", c.name, start, db, typ, ok, c.db, c.typ, c.ok)
		}
	}
	for _, db := range []string{"media", "a.media", "x_y-z.1"} {
		for _, typ := range []Type{Logical, Snapshot} {
			start, got, gotType, ok := ParseChainFolder(ChainFolder(at, db, typ))
			if !ok || got != db || gotType != typ || !start.Equal(at) {
				t.Errorf("ChainFolder(%s, %s) does not parse back: %v %q %q %v", db, typ, start, got, gotType, ok)
			}
		}
	}
	for _, c := range []struct {
		name, db string
		want     bool
	}{
		{stamp + ".media.backup", "media", true},
		{stamp + ".media.snapshot", "MEDIA", true},
		{stamp + ".a.media.backup", "media", false},
		{stamp + ".a.media.snapshot", "media", false},
		{stamp + ".a.media.backup", "a.media", true},
		{stamp + ".media.backup", "a.media", false},
		{stamp + ".media.backup", "edia", false},
		{"x.media.backup", "media", false},
	} {
		if got := IsChainOf(c.name, c.db); got != c.want {
			t.Errorf("IsChainOf(%q, %q) = %v, want %v", c.name, c.db, got, c.want)
		}
	}
}

// TestChainsOfAnotherDatabase: chains of a.media sit next to those of
// media. Retention and incrementals of one must never take the other's
// chains for their own.
func TestChainsOfAnotherDatabase(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		name string
		db   string // the database retention runs for
		kept []int  // indexes into media 1, media 2, a.media 1, a.media 2
	}{
		{"media", "media", []int{1, 2, 3}},
		{"media in capitals", "MEDIA", []int{1, 2, 3}},
		{"a.media", "a.media", []int{0, 1, 3}},
		{"no such database", "edia", []int{0, 1, 2, 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dbs := testData(t, root, "media", "a.media")
			to := filepath.Join(root, "backups")
			var names []string
			for i, db := range []*store.DB{dbs["media"], dbs["media"], dbs["a.media"], dbs["a.media"]} {
				put(t, db)
				names = append(names, run(t, db, t0.Add(time.Duration(i)*day), false, to).Chain)
			}
			s, _ := destination.OpenLocal(to)
			if _, err := Prune(context.Background(), s, c.db, Retention{KeepNewest: 1}, t0.Add(10*day)); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range c.kept {
				want = append(want, names[i])
			}
			if got := chainNames(t, to); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("kept %v, want %v", got, want)
			}
		})
	}
	t.Run("an incremental extends its own database's chain", func(t *testing.T) {
		root := t.TempDir()
		dbs := testData(t, root, "media", "a.media")
		to := filepath.Join(root, "backups")
		mine := run(t, dbs["media"], t0, false, to)
		run(t, dbs["a.media"], t0.Add(day), false, to)
		put(t, dbs["media"])
		res, err := Run(dbs["media"], Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(2 * day)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Chain != mine.Chain || res.FullInstead || res.Kind() != KindIncremental {
			t.Fatalf("the incremental of media went to %s (%s, full instead %v: %s), want %s", res.Chain, res.Kind(), res.FullInstead, res.FullReason, mine.Chain)
		}
	})
}

// TestIncrementalOverDamagedChain: the newest chain lost a file. An
// incremental must not extend it (it reported success and extended a
// chain that restores nothing), and retention must not delete the older,
// intact chain because of it.
func TestIncrementalOverDamagedChain(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string, m *Manifest) string // returns the reason expected
	}{
		{"full backup missing", func(t *testing.T, dir string, m *Manifest) string {
			os.Remove(filepath.Join(dir, m.Files[0].Name))
			return "file " + m.Files[0].Name + " is missing"
		}},
		{"incremental missing", func(t *testing.T, dir string, m *Manifest) string {
			os.Remove(filepath.Join(dir, m.Files[1].Name))
			return "file " + m.Files[1].Name + " is missing"
		}},
		{"incremental truncated", func(t *testing.T, dir string, m *Manifest) string {
			os.Truncate(filepath.Join(dir, m.Files[1].Name), 10)
			return fmt.Sprintf("file %s is 10 bytes, not the %d its manifest records", m.Files[1].Name, m.Files[1].Size)
		}},
		{"manifest missing", func(t *testing.T, dir string, m *Manifest) string {
			os.Remove(filepath.Join(dir, ManifestName))
			return dir + " has no manifest.json but holds 2 finished backup files, so its manifest was lost or deleted"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			db := testData(t, root, "db")["db"]
			to := filepath.Join(root, "backups")
			s, _ := destination.OpenLocal(to)
			ctx := context.Background()
			put(t, db)
			a := run(t, db, t0, false, to)
			put(t, db)
			run(t, db, t0.Add(day), false, to)
			put(t, db)
			b := run(t, db, t0.Add(day+time.Hour), true, to) // chain B: a full and an incremental
			reason := c.damage(t, b.ChainDir, b.Manifest)
			before := tree(t, b.ChainDir)

			// Retention: B is damaged, so A is the newest intact chain.
			if pruned, err := Prune(ctx, s, "db", Retention{KeepNewest: 1}, t0.Add(5*day)); err != nil || len(pruned) != 0 {
				t.Fatalf("retention deleted %+v (%v) while the newer chain is damaged", pruned, err)
			}

			put(t, db)
			res := run(t, db, t0.Add(2*day), true, to)
			want := "the newest chain " + b.ChainDir + " is damaged: " + reason
			if !res.FullInstead || res.FullReason != want || res.Kind() != KindFull || res.Chain == b.Chain {
				t.Fatalf("incremental over a damaged chain: %s in %s, full instead %v, reason %q; want a full backup in a new chain because %q", res.Kind(), res.Chain, res.FullInstead, res.FullReason, want)
			}
			if after := tree(t, b.ChainDir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("the damaged chain was changed")
			}

			// Now the new chain is the newest intact one: A may go, the
			// damaged B stays for an operator to look at.
			if _, err := Prune(ctx, s, "db", Retention{KeepNewest: 1}, t0.Add(5*day)); err != nil {
				t.Fatal(err)
			}
			if got, want := chainNames(t, to), []string{b.Chain, res.Chain}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after retention: %v, want %v (A was %s)", got, want, a.Chain)
			}
			c, err := ReadChain(ctx, s, res.Chain)
			if err != nil || !c.Intact() {
				t.Fatalf("the new chain is not intact: %v %v", err, c.Err())
			}
		})
	}
}

// TestManifestFailureLeavesDestinationsAsBefore: a run whose manifest
// cannot be written in one destination leaves every destination as it
// was, so that they never diverge.
func TestManifestFailureLeavesDestinationsAsBefore(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		first       bool // a first backup rather than an incremental
		failing     int  // the destination whose manifest cannot be written
		destination int
	}{
		{"incremental, second destination fails", false, 1, 2},
		{"incremental, first destination fails", false, 0, 2},
		{"incremental, middle destination fails", false, 1, 3},
		{"first backup, second destination fails", true, 1, 2},
		{"first backup, first destination fails", true, 0, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			db := testData(t, root, "db")["db"]
			var to []string
			for i := 0; i < c.destination; i++ {
				to = append(to, filepath.Join(root, fmt.Sprintf("m%d", i+1)))
			}
			put(t, db)
			at := t0
			chain := ChainFolder(at, "db", Logical)
			if !c.first {
				run(t, db, t0, false, to...)
				put(t, db)
				at = t0.Add(time.Hour)
			}
			before := map[string]map[string]string{}
			for _, dir := range to {
				before[dir] = tree(t, dir)
			}
			// A folder where the manifest's temporary file goes makes
			// its write fail.
			block := filepath.Join(to[c.failing], chain, ManifestName+destination.InProgressSuffix)
			if err := os.MkdirAll(block, 0o700); err != nil {
				t.Fatal(err)
			}
			_, err := Run(db, Options{To: to, Compression: smuggler.Zstd, Incremental: !c.first, Now: at})
			if err == nil || !strings.HasPrefix(err.Error(), "backup of db failed: ") {
				t.Fatalf("the run did not fail: %v", err)
			}
			if strings.Contains(err.Error(), "put back") {
				t.Fatalf("the destinations were not put back: %v", err)
			}
			if err := os.Remove(block); err != nil {
				t.Fatal(err)
			}
			for _, dir := range to {
				if got := tree(t, dir); fmt.Sprint(got) != fmt.Sprint(before[dir]) {
					t.Errorf("%s after the failed run:\n%v\nwant as before:\n%v", dir, names(got), names(before[dir]))
				}
			}
			// The next run works as if the failed one never happened.
			res := run(t, db, at.Add(time.Minute), !c.first, to...)
			if res.FullInstead {
				t.Fatalf("the next run made a full backup instead: %s", res.FullReason)
			}
		})
	}
}

func names(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestIncrementalOverDivergedDestinations: a run killed between two
// destinations' manifests leaves them apart. The next incremental makes a
// full backup in all of them rather than failing until someone does.
func TestIncrementalOverDivergedDestinations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		diverge func(t *testing.T, db *store.DB, m1, m2 string)
		reason  func(m1, m2 string) string
	}{
		{"an incremental in one destination only", func(t *testing.T, db *store.DB, m1, m2 string) {
			run(t, db, t0, false, m1, m2)
			put(t, db)
			run(t, db, t0.Add(time.Hour), true, m1)
		}, func(m1, m2 string) string {
			return "the destinations " + m1 + " and " + m2 + " do not hold the same newest chain of db"
		}},
		{"a chain in one destination only", func(t *testing.T, db *store.DB, m1, m2 string) {
			run(t, db, t0, false, m1)
		}, func(m1, m2 string) string {
			return "the destinations " + m1 + " and " + m2 + " do not hold the same newest chain of db"
		}},
		{"a first backup whose manifest reached one destination", func(t *testing.T, db *store.DB, m1, m2 string) {
			res := run(t, db, t0, false, m1)
			// The file, finished, without its manifest.
			raw, err := os.ReadFile(res.File)
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(m2, res.Chain), 0o700)
			os.WriteFile(filepath.Join(m2, res.Chain, res.Entry.Name), raw, 0o600)
		}, func(m1, m2 string) string {
			// The lone first file is an interrupted first backup,
			// passed over like one of partial files only.
			return "the destinations " + m1 + " and " + m2 + " do not hold the same newest chain of db"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			db := testData(t, root, "db")["db"]
			m1, m2 := filepath.Join(root, "m1"), filepath.Join(root, "m2")
			put(t, db)
			c.diverge(t, db, m1, m2)
			put(t, db)
			res, err := Run(db, Options{To: []string{m1, m2}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(2 * time.Hour)})
			if err != nil {
				t.Fatalf("incremental over diverged destinations: %v", err)
			}
			if want := c.reason(m1, m2); !res.FullInstead || res.FullReason != want || res.Kind() != KindFull {
				t.Fatalf("got a %s, full instead %v, reason %q; want a full backup because %q", res.Kind(), res.FullInstead, res.FullReason, want)
			}
			// Both now hold the new chain, and the next incremental
			// extends it.
			put(t, db)
			next := run(t, db, t0.Add(3*time.Hour), true, m1, m2)
			if next.FullInstead || next.Chain != res.Chain {
				t.Fatalf("the next incremental: %s in %s, reason %q", next.Kind(), next.Chain, next.FullReason)
			}
			// Retention leaves the new chain alone in each destination:
			// what the divergence left behind goes.
			for _, dir := range []string{m1, m2} {
				s, _ := destination.OpenLocal(dir)
				if _, err := Prune(context.Background(), s, "db", Retention{KeepNewest: 1}, t0.Add(4*time.Hour)); err != nil {
					t.Fatal(err)
				}
				if got := chainNames(t, dir); fmt.Sprint(got) != fmt.Sprint([]string{res.Chain}) {
					t.Fatalf("after retention %s holds %v, want only %s", dir, got, res.Chain)
				}
			}
		})
	}
}

// TestFullReasonWithoutChain: an incremental with nothing to extend says
// so.
func TestFullReasonWithoutChain(t *testing.T) {
	root := t.TempDir()
	db := testData(t, root, "db")["db"]
	to := filepath.Join(root, "b")
	put(t, db)
	res := run(t, db, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true, to)
	if want := "db has no backup chain to extend in " + to; !res.FullInstead || res.FullReason != want {
		t.Fatalf("full instead %v, reason %q; want %q", res.FullInstead, res.FullReason, want)
	}
	if !IsChainOf(res.Chain, "db") {
		t.Fatalf("chain %s", res.Chain)
	}
}

// TestIncrementalOverForgedManifest: someone who can write to a
// destination rewrote a key mode chain's manifest and its checksum (here
// so that the chain seems to hold changes it does not). An incremental
// must not extend it: it would seal the forged manifest with a valid MAC.
func TestIncrementalOverForgedManifest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := t.TempDir()
	db := testData(t, root, "db")["db"]
	to := filepath.Join(root, "backups")
	key, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	opts := func(at time.Time, incremental bool) Options {
		return Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: incremental, Now: at,
			Encryption: Request{Mode: string(ModeKey), Key: &key}}
	}
	put(t, db)
	full, err := Run(db, opts(t0, false))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(full.ChainDir, ManifestName)
	m, err := ReadLocalManifest(full.ChainDir)
	if err != nil {
		t.Fatal(err)
	}
	mac := m.MAC
	m.Files[0].ToEtag += 2 // claims the next two changes
	m.seal(nil)
	m.MAC = mac
	b, _ := json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		put(t, db)
	}

	res, err := Run(db, opts(t0.Add(time.Hour), true))
	if err != nil {
		t.Fatal(err)
	}
	want := "the manifest of the newest chain " + full.ChainDir + " failed its integrity check: its MAC does not match"
	if !res.FullInstead || res.FullReason != want || res.Kind() != KindFull || res.Chain == full.Chain {
		t.Fatalf("incremental over a forged manifest: %s in %s, full instead %v, reason %q; want a full backup in a new chain because %q", res.Kind(), res.Chain, res.FullInstead, res.FullReason, want)
	}
	if got, _ := os.ReadFile(path); string(got) != string(b) {
		t.Fatal("the forged manifest was rewritten")
	}
	if res.Entry.Documents != 4 {
		t.Fatalf("the new full backup holds %d documents, want 4", res.Entry.Documents)
	}
}

// TestIncrementalOverDowngradedManifest: a manifest rewritten to a mode
// that no key authenticates (recipients of someone else, none) must not
// make an incremental encrypt the changes that way: the run encrypts as a
// full backup would, and starts a new chain when the chain differs.
func TestIncrementalOverDowngradedManifest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	attacker, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := keys.Generate()
	other, _ := keys.Generate()
	for _, c := range []struct {
		name      string
		encrypted bool
		req       Request
		forge     func(m *Manifest)
		reason    string // after the chain's location
	}{
		{"database chain rewritten to recipients", true, Request{}, func(m *Manifest) {
			m.Encryption, m.KeyFingerprint, m.Recipients = ModeRecipients, "", []string{attacker.Recipient().String()}
		}, " is encrypted in mode recipients to 1 recipient(s), and this run encrypts in mode database"},
		// Its files are named .age: a manifest that says none is damaged.
		{"database chain rewritten to none", true, Request{}, func(m *Manifest) {
			m.Encryption, m.KeyFingerprint = ModeNone, ""
		}, " is damaged: "},
		{"key chain rewritten to none", false, Request{Key: &key}, func(m *Manifest) {
			m.Encryption, m.KeyFingerprint = ModeNone, ""
		}, " is damaged: "},
		{"key chain rewritten to database mode", false, Request{Key: &key}, func(m *Manifest) {
			m.Encryption = ModeDatabase
		}, " is encrypted in mode database with the key of fingerprint " + key.Fingerprint() + ", and this run encrypts in mode key"},
		{"key chain rewritten to another key", false, Request{Key: &key}, func(m *Manifest) {
			m.KeyFingerprint = other.Fingerprint()
		}, " is encrypted in mode key with the key of fingerprint " + other.Fingerprint() + ", and this run encrypts with the key of fingerprint " + key.Fingerprint()},
		{"database chain rewritten to another key", true, Request{}, func(m *Manifest) {
			m.KeyFingerprint = other.Fingerprint()
		}, " is encrypted in mode database with the key of fingerprint " + other.Fingerprint() + ", and this run encrypts with the key of fingerprint "},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			db := testDataWith(t, root, store.CreateOptions{Encrypted: c.encrypted}, "db")["db"]
			to := filepath.Join(root, "backups")
			opts := func(at time.Time, incremental bool) Options {
				return Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: incremental, Now: at, Encryption: c.req}
			}
			put(t, db)
			full, err := Run(db, opts(t0, false))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ReadLocalManifest(full.ChainDir)
			if err != nil {
				t.Fatal(err)
			}
			c.forge(m)
			m.seal(nil)
			b, _ := json.Marshal(m)
			if err := os.WriteFile(filepath.Join(full.ChainDir, ManifestName), b, 0o600); err != nil {
				t.Fatal(err)
			}
			put(t, db)
			res, err := Run(db, opts(t0.Add(time.Hour), true))
			if err != nil {
				t.Fatalf("incremental over a rewritten manifest: %v", err)
			}
			want := "the newest chain " + full.ChainDir + c.reason
			if !res.FullInstead || !strings.HasPrefix(res.FullReason, want) || res.Chain == full.Chain {
				t.Fatalf("%s in %s, full instead %v, reason %q; want a full backup in a new chain because %q", res.Kind(), res.Chain, res.FullInstead, res.FullReason, want)
			}
			if res.Manifest.Encryption != full.Manifest.Encryption || res.Manifest.KeyFingerprint != full.Manifest.KeyFingerprint {
				t.Fatalf("the new chain is encrypted %s/%s, want %s/%s", res.Manifest.Encryption, res.Manifest.KeyFingerprint, full.Manifest.Encryption, full.Manifest.KeyFingerprint)
			}
		})
	}
}

// TestNewChainNotWeaker: an incremental that cannot extend the newest
// chain (here: a file of it is damaged) does not start a new chain more
// weakly encrypted than that chain, as a key left out would.
func TestNewChainNotWeaker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := t.TempDir()
	db := testData(t, root, "db")["db"]
	to := filepath.Join(root, "backups")
	key, _ := keys.Generate()
	put(t, db)
	full, err := Run(db, Options{To: []string{to}, Compression: smuggler.Zstd, Now: t0, Encryption: Request{Key: &key}})
	if err != nil {
		t.Fatal(err)
	}
	os.Truncate(full.File, 10)
	put(t, db)
	before := tree(t, to)
	_, err = Run(db, Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(time.Hour)})
	want := "the chain in " + full.ChainDir + " is encrypted with a key, and so are its incrementals: encryption mode key needs a key. Give it with --key-file FILE (make one with `magpie secrets generate`)"
	if err == nil || err.Error() != want {
		t.Fatalf("incremental without the key over a damaged key chain: %v; want %q", err, want)
	}
	if fmt.Sprint(tree(t, to)) != fmt.Sprint(before) {
		t.Fatal("the refused run wrote something")
	}
	// With the key it starts a new chain, as for any damaged chain.
	res, err := Run(db, Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(time.Hour), Encryption: Request{Key: &key}})
	if err != nil || !res.FullInstead || res.Manifest.Encryption != ModeKey {
		t.Fatalf("with the key: %+v %v", res, err)
	}
}

// TestIncrementalRecipients: recipients are compared as the public keys
// they are, however they were given; a recipients file whose keys changed
// starts a new chain, and the manifest records keys, not the file's name.
func TestIncrementalRecipients(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := t.TempDir()
	db := testData(t, root, "db")["db"]
	to := filepath.Join(root, "backups")
	id1, _ := age.GenerateX25519Identity()
	id2, _ := age.GenerateX25519Identity()
	file := filepath.Join(root, "recipients.txt")
	os.WriteFile(file, []byte("# ops\n"+id1.Recipient().String()+"\n"), 0o600)
	run := func(at time.Time, recipients ...string) *Result {
		t.Helper()
		put(t, db)
		res, err := Run(db, Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: at, Encryption: Request{Recipients: recipients}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := run(t0, file)
	if fmt.Sprint(first.Manifest.Recipients) != fmt.Sprint([]string{id1.Recipient().String()}) {
		t.Fatalf("manifest recipients %v, want the key", first.Manifest.Recipients)
	}
	// The same key, given inline: the chain goes on.
	if res := run(t0.Add(time.Hour), id1.Recipient().String()); res.FullInstead || res.Chain != first.Chain {
		t.Fatalf("same key inline: full instead %v (%s)", res.FullInstead, res.FullReason)
	}
	// The file now names another key: a new chain, to that key.
	os.WriteFile(file, []byte(id2.Recipient().String()+"\n"), 0o600)
	res := run(t0.Add(2*time.Hour), file)
	want := "the newest chain " + first.ChainDir + " is encrypted in mode recipients to 1 recipient(s), and this run encrypts to other recipients"
	if !res.FullInstead || res.FullReason != want || fmt.Sprint(res.Manifest.Recipients) != fmt.Sprint([]string{id2.Recipient().String()}) {
		t.Fatalf("rotated recipients file: full instead %v, reason %q, recipients %v", res.FullInstead, res.FullReason, res.Manifest.Recipients)
	}
}
