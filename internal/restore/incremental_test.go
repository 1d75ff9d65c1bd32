package restore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// testDB opens a data dir in root holding the new database name; the
// database is closed with the test, unless the test closes it first.
func testDB(t *testing.T, root, name string) (*store.DataDir, *store.DB) {
	t.Helper()
	d, err := store.Open(store.Options{Dir: filepath.Join(root, "data"), Create: true, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.CreateDatabase(name, store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return d, db
}

// restoreAs restores the newest chain in to as database name of d and
// opens it until the end of the test.
func restoreAs(t *testing.T, d *store.DataDir, to, name string) *store.DB {
	t.Helper()
	tg, err := Locate(context.Background(), to, Until{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if _, err := Restore(d, tg, Options{As: name}); err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestIncrementalAfterRestoreUnderSameName: a database restored under its
// own name has a new id. Its next incremental cannot extend the chain of
// the database it replaced; it makes a full backup instead of failing
// until the next scheduled full one.
func TestIncrementalAfterRestoreUnderSameName(t *testing.T) {
	root := t.TempDir()
	d, db := testDB(t, root, "media")
	to := filepath.Join(root, "backups")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db.Put("d/1", []byte(`{}`))
	full, err := backup.Run(db, backup.Options{To: []string{to}, Compression: smuggler.Zstd, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	oldID := db.ID()
	db.Close()
	if err := d.DeleteDatabase("media"); err != nil {
		t.Fatal(err)
	}
	db = restoreAs(t, d, to, "media")
	if db.ID() == oldID {
		t.Fatal("the restored database kept its id; this test needs a new one")
	}
	db.Put("d/2", []byte(`{}`))
	res, err := backup.Run(db, backup.Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatalf("incremental of the restored database: %v", err)
	}
	want := "the newest chain " + full.ChainDir + " is of another database named media (id " + oldID + ", this one is " + db.ID() + ")"
	if !res.FullInstead || res.FullReason != want || res.Kind() != backup.KindFull || res.Chain == full.Chain || res.Manifest.DatabaseID != db.ID() {
		t.Fatalf("got a %s in %s, full instead %v, reason %q; want a full backup in a new chain because %q", res.Kind(), res.Chain, res.FullInstead, res.FullReason, want)
	}
	// The chain after that is the restored database's own: extended.
	db.Put("d/3", []byte(`{}`))
	next, err := backup.Run(db, backup.Options{To: []string{to}, Compression: smuggler.Zstd, Incremental: true, Now: t0.Add(2 * time.Hour)})
	if err != nil || next.FullInstead || next.Chain != res.Chain {
		t.Fatalf("the next incremental: %v, %+v", err, next)
	}
}

// TestLocateNamesDifferingInCase: database names are not case-sensitive,
// so chains of Media and media in one folder are one database's, not an
// ambiguous folder.
func TestLocateNamesDifferingInCase(t *testing.T) {
	root := t.TempDir()
	to := filepath.Join(root, "backups")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var newest string
	for i, name := range []string{"Media", "media"} {
		d, err := store.Open(store.Options{Dir: filepath.Join(root, name, "data"), Create: true, CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateDatabase(name, store.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		db, err := d.OpenDatabase(name)
		if err != nil {
			t.Fatal(err)
		}
		db.Put("d/1", []byte(`{}`))
		res, err := backup.Run(db, backup.Options{To: []string{to}, Compression: smuggler.Zstd, Now: t0.Add(time.Duration(i) * time.Hour)})
		db.Close()
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		newest = res.Chain
	}
	tg, err := Locate(context.Background(), to, Until{})
	if err != nil {
		t.Fatalf("locate: %v", err)
	}
	defer tg.Close()
	if tg.Chain != newest {
		t.Fatalf("located %s, want the newest chain %s", tg.Chain, newest)
	}
	// Databases whose names differ otherwise still make the folder
	// ambiguous.
	d, err := store.Open(store.Options{Dir: filepath.Join(root, "other", "data"), Create: true, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.CreateDatabase("a.media", store.CreateOptions{})
	db, err := d.OpenDatabase("a.media")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Put("d/1", []byte(`{}`))
	if _, err := backup.Run(db, backup.Options{To: []string{to}, Compression: smuggler.Zstd, Now: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Locate(context.Background(), to, Until{}); err == nil || !strings.Contains(err.Error(), "holds backups of several databases (Media, a.media)") {
		t.Fatalf("locate over two databases: %v", err)
	}
}

// TestIncrementalOfConfiguration: a change to the database's record (its
// backup tasks) with no document change is backed up by the next
// incremental, and a restore of the chain brings it back; with nothing
// changed at all, no file is written.
func TestIncrementalOfConfiguration(t *testing.T) {
	root := t.TempDir()
	d, db := testDB(t, root, "media")
	to := filepath.Join(root, "backups")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(at time.Time) *backup.Result {
		t.Helper()
		res, err := backup.Run(db, backup.Options{To: []string{to}, Compression: smuggler.Zstd, Now: at, Incremental: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	db.Put("d/1", []byte(`{}`))
	run(t0)
	tasks := `[{"TaskId":1,"Name":"nightly","FullBackupFrequency":"@daily","MagpieDestinations":["/srv/backups"]}]`
	if err := db.SetSetting(dump.PeriodicBackups, []byte(tasks)); err != nil {
		t.Fatal(err)
	}
	res := run(t0.Add(time.Hour))
	if res.Unchanged || res.Kind() != backup.KindIncremental || res.Entry.Documents != 0 || res.Entry.FromEtag != res.Entry.ToEtag {
		t.Fatalf("after a configuration change: unchanged %v, %s, %d documents, etags %d..%d; want an incremental of no document", res.Unchanged, res.Kind(), res.Entry.Documents, res.Entry.FromEtag, res.Entry.ToEtag)
	}
	if again := run(t0.Add(2 * time.Hour)); !again.Unchanged {
		t.Fatalf("nothing changed, yet a %s was written", again.Kind())
	}
	cp := restoreAs(t, d, to, "copy")
	if got, err := cp.Setting(dump.PeriodicBackups); err != nil || !strings.Contains(string(got), `"nightly"`) {
		t.Fatalf("restored tasks %s %v; want the task added after the full backup", got, err)
	}
}
