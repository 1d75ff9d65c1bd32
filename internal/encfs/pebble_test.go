package encfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

const (
	marker     = "lastfm/marker"
	tableKeys  = 20_000 // flushed and compacted into sstables
	walKeys    = 100    // written after the last flush, so only in the WAL
	valuePad   = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	tableMagic = "table magic"
)

// needles are what a plaintext scan looks for: the marker in every value,
// and the footer magics of every sstable format pebble v2 can write
// (sstable/table.go: levelDBMagic, rocksDBMagic, pebbleDBMagic).
var needles = []struct{ name, bytes string }{
	{"marker", marker},
	{"leveldb table magic", "\x57\xfb\x80\x8b\x24\x75\x47\xdb"},
	{"rocksdb table magic", "\xf7\xcf\xf4\x85\xb7\x41\xe2\x88"},
	{"pebble table magic", "\xf0\x9f\xaa\xb3\xf0\x9f\xaa\xb3"},
}

func docKey(i int) string   { return fmt.Sprintf("doc/%05d", i) }
func walKey(i int) string   { return fmt.Sprintf("wal/%05d", i) }
func docValue(i int) string { return fmt.Sprintf("%s %05d %s", marker, i, valuePad) }

// testLogger collects pebble's log lines and turns Fatalf into a panic the
// test can report, instead of pebble's default os.Exit.
type testLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLogger) Infof(format string, args ...any)  { l.add("I " + fmt.Sprintf(format, args...)) }
func (l *testLogger) Errorf(format string, args ...any) { l.add("E " + fmt.Sprintf(format, args...)) }
func (l *testLogger) Fatalf(format string, args ...any) {
	panic("pebble Fatalf: " + fmt.Sprintf(format, args...))
}

func (l *testLogger) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func openDB(t *testing.T, dir string, fs vfs.FS, log *testLogger) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: log})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return db
}

// populate writes tableKeys keys, flushes and compacts them into sstables,
// then writes walKeys more that only the WAL holds when it closes.
func populate(t *testing.T, dir string, fs vfs.FS, log *testLogger) {
	t.Helper()
	db := openDB(t, dir, fs, log)
	b := db.NewBatch()
	for i := range tableKeys {
		b.Set([]byte(docKey(i)), []byte(docValue(i)), nil)
		if b.Len() > 1<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			b = db.NewBatch()
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(context.Background(), []byte("doc/"), []byte("doc0"), false); err != nil {
		t.Fatal(err)
	}
	for i := range walKeys {
		if err := db.Set([]byte(walKey(i)), []byte(docValue(i)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkAllKeys reads every key back and compares it exactly.
func checkAllKeys(t *testing.T, db *pebble.DB) {
	t.Helper()
	var want []string
	for i := range tableKeys {
		want = append(want, docKey(i)+"="+docValue(i))
	}
	for i := range walKeys {
		want = append(want, walKey(i)+"="+docValue(i))
	}
	iter, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for iter.First(); iter.Valid(); iter.Next() {
		got = append(got, string(iter.Key())+"="+string(iter.Value()))
	}
	if err := iter.Close(); err != nil {
		t.Fatalf("iterating: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d keys back, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("key %d = %q, want %q", i, got[i], want[i])
		}
	}
}

type scanResult struct {
	files []string          // relative path and plaintext header status
	found map[string]string // needle name -> first file holding it
}

// scanDir reads every file under dir from the real disk and records which
// needles appear where, and which files lack the encfs magic.
func scanDir(t *testing.T, dir string) scanResult {
	t.Helper()
	res := scanResult{found: map[string]string{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		status := fmt.Sprintf("%d bytes", len(b))
		if bytes.HasPrefix(b, []byte(magic)) {
			status += ", encrypted"
		}
		res.files = append(res.files, rel+" ("+status+")")
		for _, n := range needles {
			if _, ok := res.found[n.name]; !ok && bytes.Contains(b, []byte(n.bytes)) {
				res.found[n.name] = rel
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(res.files)
	return res
}

// checkNoPlaintext asserts that no file under dir holds a needle, and that
// every file but pebble's empty LOCK starts with the encfs header.
func checkNoPlaintext(t *testing.T, dir string) {
	t.Helper()
	res := scanDir(t, dir)
	t.Logf("files under %s: %s", filepath.Base(dir), strings.Join(res.files, ", "))
	for name, file := range res.found {
		t.Errorf("found the %s in %s", name, file)
	}
	for _, f := range res.files {
		if !strings.HasSuffix(f, ", encrypted)") && f != "LOCK (0 bytes)" {
			t.Errorf("file %s does not start with the encfs header", f)
		}
	}
}

func TestPebbleEndToEnd(t *testing.T) {
	ring := oneKeyRing(1, testKey(t))

	// Positive control: the same scan over an unencrypted database finds
	// the marker and a table magic, so the scan can see what it looks for.
	t.Run("unencrypted control", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		log := &testLogger{}
		populate(t, dir, vfs.Default, log)
		res := scanDir(t, dir)
		if res.found["marker"] == "" {
			t.Errorf("the marker is not in any file of the unencrypted database: the scan is blind (files: %v)", res.files)
		}
		if res.found["pebble table magic"] == "" && res.found["rocksdb table magic"] == "" && res.found["leveldb table magic"] == "" {
			t.Errorf("no table magic in the unencrypted database: the scan is blind (files: %v)", res.files)
		}
	})

	dir := filepath.Join(t.TempDir(), "db")
	log := &testLogger{}
	efs := newFS(t, vfs.Default, ring)
	t.Run("encrypted", func(t *testing.T) {
		populate(t, dir, efs, log)
		checkNoPlaintext(t, dir)
		db := openDB(t, dir, efs, log)
		defer db.Close()
		checkAllKeys(t, db)
	})

	t.Run("checkpoint", func(t *testing.T) {
		ckpt := filepath.Join(t.TempDir(), "ckpt")
		db := openDB(t, dir, efs, log)
		if err := db.Checkpoint(ckpt); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		checkNoPlaintext(t, ckpt)
		ck := openDB(t, ckpt, newFS(t, vfs.Default, ring), log)
		defer ck.Close()
		checkAllKeys(t, ck)
	})

	log.mu.Lock()
	defer log.mu.Unlock()
	for _, l := range log.lines {
		t.Logf("pebble log: %s", l)
		if strings.Contains(l, marker) || strings.Contains(l, "doc/") {
			t.Errorf("pebble logged a key or value: %s", l)
		}
	}
}

// TestPebbleWrongKey opens an encrypted database with keys that did not
// write it: it must fail with an error, never a panic or a silent success.
func TestPebbleWrongKey(t *testing.T) {
	k := testKey(t)
	dir := filepath.Join(t.TempDir(), "db")
	populate(t, dir, newFS(t, vfs.Default, oneKeyRing(1, k)), &testLogger{})

	tests := []struct {
		name    string
		fs      vfs.FS
		wantErr string // a substring: pebble adds its own context
	}{
		{"different key, same id", newFS(t, vfs.Default, oneKeyRing(1, testKey(t))), ""},
		{"different key id", newFS(t, vfs.Default, oneKeyRing(2, k)), "which the keyring does not hold"},
		{"no encryption", vfs.Default, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &testLogger{}
			err := openAndRead(dir, tt.fs, log)
			t.Logf("error: %v", err)
			for _, l := range log.lines {
				t.Logf("pebble log: %s", l)
			}
			if err == nil {
				t.Fatal("the database opened and read back with the wrong key")
			}
			if strings.HasPrefix(err.Error(), "panic: ") {
				t.Fatal(err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// openAndRead opens the database and reads every key, turning a panic into
// an error so the test can report it.
func openAndRead(dir string, fs vfs.FS, log *testLogger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: log, ErrorIfNotExists: true})
	if err != nil {
		return err
	}
	defer db.Close()
	iter, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	n := 0
	for iter.First(); iter.Valid(); iter.Next() {
		n++
	}
	if err := iter.Close(); err != nil {
		return err
	}
	if n != tableKeys+walKeys {
		return fmt.Errorf("read %d keys", n)
	}
	return nil
}

// TestPebbleInjectedWriteError runs pebble over encfs over an
// error-injecting filesystem: a write that fails must fail the operation.
func TestPebbleInjectedWriteError(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "db")
	ckpt := filepath.Join(root, "ckpt")
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.HasPrefix(op.Path, ckpt+string(filepath.Separator)) &&
			(op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) {
			return errorfs.ErrInjected
		}
		return nil
	})
	efs := newFS(t, errorfs.Wrap(vfs.Default, inj), oneKeyRing(1, testKey(t)))
	log := &testLogger{}
	populate(t, dir, efs, log)
	db := openDB(t, dir, efs, log)
	defer db.Close()
	err := db.Checkpoint(ckpt)
	if !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Checkpoint with failing writes: error = %v, want the injected error", err)
	}
	if _, err := os.Stat(ckpt); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed checkpoint left %s behind (stat: %v)", ckpt, err)
	}
	checkAllKeys(t, db)
}
