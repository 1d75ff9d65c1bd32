package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestReadMostly: a database opened ReadMostly starts no compaction, so
// a read does not pay (nor wait) for the compactions a write left due.
func TestReadMostly(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: filepath.Join(dir, "data"), MasterKeyFile: filepath.Join(dir, "master.key"), Create: true, ReadMostly: true}
	l0 := func(o Options, write bool) int64 {
		t.Helper()
		d, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		db, err := d.OpenDatabase("x")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if write {
			// More flushed tables in L0 than L0CompactionThreshold.
			for f := 0; f < 8; f++ {
				for i := 0; i < 50; i++ {
					if _, err := db.Put(fmt.Sprintf("docs/%d-%d", f, i), []byte(`{"N":1}`)); err != nil {
						t.Fatal(err)
					}
				}
				if err := db.pdb.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return db.pdb.Metrics().Levels[0].TablesCount
	}
	d, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateDatabase("x", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	written := l0(opts, true)
	if written < 8 {
		t.Fatalf("%d tables in L0 after 8 flushes without compactions", written)
	}
	if n := l0(opts, false); n != written {
		t.Fatalf("a ReadMostly open changed L0 from %d to %d tables", written, n)
	}
}
