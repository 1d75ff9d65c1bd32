package restore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"pgregory.net/rapid"
)

// write is one change made by the model's writer, with the etag the
// database gave it.
type write struct {
	etag    uint64
	id      string
	value   int
	deleted bool
}

// stateAt is the model: the documents after every write up to etag.
func stateAt(log []write, etag uint64) map[string]int {
	m := map[string]int{}
	for _, w := range log {
		if w.etag > etag {
			break
		}
		if w.deleted {
			delete(m, w.id)
		} else {
			m[w.id] = w.value
		}
	}
	return m
}

// contents reads every document of db as id -> value.
func contents(t *rapid.T, db *store.DB) map[string]int {
	m := map[string]int{}
	_, err := db.Walk(0, store.Walker{Document: func(d *store.Document) error {
		var v struct{ V int }
		if err := json.Unmarshal(d.Body, &v); err != nil {
			return err
		}
		m[d.ID] = v.V
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChainPointInTime is the model-based test of chains: a writer keeps
// changing the database while full backups, snapshots and incrementals
// run; then every file of every chain is restored as a point in time
// (--until), and the restored documents must be exactly the model's state
// at the etag that file's manifest entry ends at. So each backup is a
// consistent cut of the history, incrementals carry deletions, and a chain
// replays to the right point.
func TestChainPointInTime(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		root, err := os.MkdirTemp("", "magpie-chain-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(root)
		d, err := store.Open(store.Options{Dir: filepath.Join(root, "data"), Create: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer d.Close()
		encrypted := rapid.Bool().Draw(rt, "encrypted")
		dbKey, err := d.CreateDatabase("src", store.CreateOptions{Encrypted: encrypted})
		if err != nil {
			rt.Fatal(err)
		}
		db, err := d.OpenDatabase("src")
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		to := filepath.Join(root, "backups")

		var log []write
		apply := func(w write) {
			if w.deleted {
				if err := db.Delete(w.id); err != nil && !isNotFound(err) {
					rt.Fatal(err)
				} else if err != nil {
					return // nothing to delete: no etag used
				}
				w.etag = db.LastEtag()
			} else {
				doc, err := db.Put(w.id, []byte(fmt.Sprintf(`{"V":%d}`, w.value)))
				if err != nil {
					rt.Fatal(err)
				}
				w.etag = doc.Etag
			}
			log = append(log, w)
		}
		drawWrites := func(label string) []write {
			n := rapid.IntRange(0, 30).Draw(rt, label+" writes")
			ws := make([]write, n)
			for i := range ws {
				ws[i] = write{
					id:      fmt.Sprintf("docs/%d", rapid.IntRange(0, 12).Draw(rt, "id")),
					value:   rapid.IntRange(0, 1000).Draw(rt, "value"),
					deleted: rapid.IntRange(0, 3).Draw(rt, "delete?") == 0,
				}
			}
			return ws
		}
		for _, w := range drawWrites("initial") {
			apply(w)
		}
		rounds := rapid.IntRange(1, 5).Draw(rt, "rounds")
		for r := 0; r < rounds; r++ {
			kind := rapid.SampledFrom([]string{"full", "snapshot", "incremental", "incremental"}).Draw(rt, "backup")
			opts := backup.Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: kind == "incremental"}
			if kind == "snapshot" {
				opts.Type = backup.Snapshot
			}
			// The writer runs while the backup does: the backup must still
			// be one consistent cut.
			ws := drawWrites(fmt.Sprintf("round %d", r))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, w := range ws {
					apply(w)
				}
			}()
			_, err := backup.Run(db, opts)
			wg.Wait()
			if err != nil {
				rt.Fatalf("backup %s: %v", kind, err)
			}
		}

		ctx := context.Background()
		s, chains, err := restore.Chains(ctx, to)
		if err != nil {
			rt.Fatal(err)
		}
		defer s.Close()
		var dec *backup.Decryption
		if encrypted {
			dec = &backup.Decryption{Key: &dbKey}
		}
		n := 0
		for _, c := range chains {
			if !c.Complete() {
				rt.Fatalf("chain %s: %s", c.Name, c.Problem)
			}
			for _, f := range c.Manifest.Files {
				n++
				name := fmt.Sprintf("r%d", n)
				tg, err := restore.Locate(ctx, filepath.Join(to, c.Name), restore.Until{File: f.Name})
				if err != nil {
					rt.Fatal(err)
				}
				if _, err := restore.Restore(d, tg, restore.Options{As: name, Decryption: dec}); err != nil {
					rt.Fatalf("restore up to %s: %v", f.Name, err)
				}
				rdb, err := d.OpenDatabase(name)
				if err != nil {
					rt.Fatal(err)
				}
				got, want := contents(rt, rdb), stateAt(log, f.ToEtag)
				rdb.Close()
				if !equalState(got, want) {
					rt.Fatalf("restore up to %s (etag %d): got %v, want %v", f.Name, f.ToEtag, sorted(got), sorted(want))
				}
			}
		}
	})
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, store.ErrNotFound) }

func equalState(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sorted(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
