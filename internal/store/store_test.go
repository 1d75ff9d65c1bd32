package store

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/keys"
)

func openTestDataDir(t *testing.T) *DataDir {
	t.Helper()
	dir := t.TempDir()
	d, err := Open(Options{Dir: filepath.Join(dir, "data"), MasterKeyFile: filepath.Join(dir, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openTestDB(t *testing.T, encrypted bool) *DB {
	t.Helper()
	d := openTestDataDir(t)
	if _, err := d.CreateDatabase("test", CreateOptions{Encrypted: encrypted}); err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDatabase("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not strict JSON: %v\n%s", err, body)
	}
	return v
}

func TestPutGetDelete(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[encrypted], func(t *testing.T) {
			db := openTestDB(t, encrypted)
			d, err := db.Put("Users/1", []byte(`{"Name":"Ada","Age":36.50,"@metadata":{"@collection":"Users","Raven-Clr-Type":"X"}}`))
			if err != nil {
				t.Fatal(err)
			}
			if d.Etag != 1 || d.Collection != "Users" {
				t.Fatalf("etag %d collection %q", d.Etag, d.Collection)
			}
			got, err := db.Get("users/1") // IDs are not case-sensitive
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != "Users/1" {
				t.Fatalf("ID %q", got.ID)
			}
			// Key order and number literals survive; system metadata is set.
			wantPrefix := `{"Name":"Ada","Age":36.50,"@metadata":{"@collection":"Users","Raven-Clr-Type":"X","@id":"Users/1","@change-vector":"A:1-` + db.dbID + `","@last-modified":"`
			if !strings.HasPrefix(string(got.Body), wantPrefix) {
				t.Fatalf("body\n%s\nwant prefix\n%s", got.Body, wantPrefix)
			}
			if _, err := db.Put("users/1", []byte(`{"Name":"Ada L","@metadata":{"@collection":"users"}}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Put("users/1", []byte(`{"@metadata":{"@collection":"Orders"}}`)); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("moving collections: %v", err)
			}
			if err := db.Delete("USERS/1"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Get("users/1"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "document ID not found") {
				t.Fatalf("get after delete: %v", err)
			}
			if err := db.Delete("users/1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
			s, err := db.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.CountOfDocuments != 0 || s.CountOfTombstones != 1 || s.LastDocEtag != 3 || len(s.Collections) != 0 {
				t.Fatalf("stats %+v", s)
			}
			// A put over a tombstone removes it.
			if _, err := db.Put("users/1", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			s, _ = db.Stats()
			if s.CountOfDocuments != 1 || s.CountOfTombstones != 0 || s.Collections[EmptyCollection] != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestBadDocuments(t *testing.T) {
	db := openTestDB(t, false)
	long := strings.Repeat("x", MaxIDBytes+1)
	cases := []struct {
		id, body, want string
	}{
		{"", `{}`, "the document ID is empty. Give a non-empty ID such as users/1"},
		{long, `{}`, "the document ID is 2049 bytes long. Use an ID of at most 2048 bytes"},
		{"a", ``, "the document body is empty. Give a JSON object such as {\"Name\": \"x\"}"},
		{"a", `{"a":tru}`, "the document body is not valid JSON: invalid character '}' in literal true (expecting 'e'). Give a JSON object such as {\"Name\": \"x\"}"},
		{"a", `[1,2]`, "the document body is JSON but not an object. Give a JSON object such as {\"Name\": \"x\"}"},
		{"a", `{"@metadata":{"@collection":5}}`, "the document's metadata is not valid: @collection must be a string. Give @metadata as an object whose @collection is a string"},
	}
	for _, c := range cases {
		_, err := db.Put(c.id, []byte(c.body))
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Put(%.20q, %q) = %v, want %q", c.id, c.body, err, c.want)
		}
	}
	s, _ := db.Stats()
	if s.CountOfDocuments != 0 || s.LastDocEtag != 0 {
		t.Fatalf("a refused put changed the database: %+v", s)
	}
}

func TestAttachments(t *testing.T) {
	db := openTestDB(t, true)
	if _, err := db.Put("docs/1", []byte(`{"@metadata":{"@collection":"Docs"}}`)); err != nil {
		t.Fatal(err)
	}
	content := make([]byte, 200<<10+7) // several chunks and a partial one
	rand.Read(content)
	ref, err := db.PutAttachment("docs/1", "photo.bin", "application/octet-stream", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Size != int64(len(content)) || len(ref.Hash) != 44 {
		t.Fatalf("ref %+v", ref)
	}
	// Same content on another document is stored once.
	if _, err := db.Put("docs/2", []byte(`{"@metadata":{"@collection":"Docs"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutAttachment("docs/2", "copy", "x", bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	s, _ := db.Stats()
	if s.CountOfAttachments != 2 || s.CountOfUniqueAttachments != 1 {
		t.Fatalf("stats %+v", s)
	}
	r, err := db.GetAttachment("DOCS/1", "photo.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("content differs (err %v, %d bytes)", err, len(got))
	}
	d, _ := db.Get("docs/1")
	meta := decode(t, d.Body)["@metadata"].(map[string]any)
	if meta["@flags"] != "HasAttachments" || len(meta["@attachments"].([]any)) != 1 {
		t.Fatalf("metadata %v", meta)
	}
	if err := db.Delete("docs/1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete("docs/2"); err != nil {
		t.Fatal(err)
	}
	s, _ = db.Stats()
	if s.CountOfAttachments != 0 || s.CountOfUniqueAttachments != 0 {
		t.Fatalf("stats after deletes %+v", s)
	}
}

func TestImportRollback(t *testing.T) {
	db := openTestDB(t, true)
	if _, err := db.Put("keep/1", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	bk, err := db.BeginImport()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		id := "imp/" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "-" + itoa(i)
		if err := bk.Document(&ImportedDocument{ID: id, Collection: "Imp", ChangeVector: "A:1-x", LastModified: "2020-01-01T00:00:00.0000000Z", Body: []byte(`{"big":"` + strings.Repeat("y", 4000) + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bk.Tombstone(&ImportedTombstone{LowerID: "keep/1", Collection: "@empty"}); err != nil {
		t.Fatal(err)
	}
	if err := bk.Abort(); err != nil {
		t.Fatal(err)
	}
	s, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.CountOfDocuments != 1 || s.CountOfTombstones != 0 || s.LastDocEtag != 1 {
		t.Fatalf("after rollback: %+v", s)
	}
	if _, err := db.Get("keep/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(db.dir, rollbackDir)); !os.IsNotExist(err) {
		t.Fatalf("rollback dir left behind: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestDataDirErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mk := filepath.Join(dir, "master.key")
	if _, err := Open(Options{Dir: data, MasterKeyFile: mk}); !errors.Is(err, ErrNoDataDir) {
		t.Fatalf("missing data dir: %v", err)
	}
	d, err := Open(Options{Dir: data, MasterKeyFile: mk, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if !d.CreatedMasterKey() {
		t.Fatal("master key not reported as created")
	}
	if _, err := d.CreateDatabase("enc", CreateOptions{Encrypted: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateDatabase("ENC", CreateOptions{}); !errors.Is(err, ErrExists) ||
		err.Error() != `a database "enc" already exists (database names are not case-sensitive). Choose another name, or delete it first with `+"`magpie db delete enc`" {
		t.Fatalf("create existing: %v", err)
	}
	if err := d.DeleteDatabase("nope"); !errors.Is(err, ErrNotFound) ||
		err.Error() != `database "nope" does not exist. List the databases with `+"`magpie db list`" {
		t.Fatalf("delete missing: %v", err)
	}
	// A second process cannot use the data dir at the same time.
	if _, err := Open(Options{Dir: data, MasterKeyFile: mk}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	d.Close()

	other := filepath.Join(dir, "other.key")
	k, _ := keys.Generate()
	if err := keys.WriteFile(other, k); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Dir: data, MasterKeyFile: other})
	if !errors.Is(err, ErrWrongMasterKey) || !strings.Contains(err.Error(), "is not the one data dir") || strings.Contains(err.Error(), k.Base64()) {
		t.Fatalf("wrong master key: %v", err)
	}
	if _, err := Open(Options{Dir: data, MasterKeyFile: filepath.Join(dir, "missing.key"), Create: true}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("missing master key for an existing data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.key")); !os.IsNotExist(err) {
		t.Fatal("a master key was created for an existing data dir")
	}
}

func TestWalkIncremental(t *testing.T) {
	db := openTestDB(t, false)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := db.Put(id, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put("a", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	var docs, tombs []string
	res, err := db.Walk(3, Walker{
		Document:  func(d *Document) error { docs = append(docs, d.ID); return nil },
		Tombstone: func(t *Tombstone) error { tombs = append(tombs, t.LowerID); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(docs, ",") != "a" || strings.Join(tombs, ",") != "b" || res.LastEtag != 5 {
		t.Fatalf("docs %v tombs %v res %+v", docs, tombs, res)
	}
	docs = nil
	res, err = db.Walk(0, Walker{Document: func(d *Document) error { docs = append(docs, d.ID); return nil }})
	if err != nil || strings.Join(docs, ",") != "a,c" || res.Tombstones != 1 {
		t.Fatalf("full walk: %v %v %+v", err, docs, res)
	}
}

// An import into an empty database skips lookups for IDs it has not seen;
// a duplicate in the input must still replace, not double count.
func TestImportDuplicateIDs(t *testing.T) {
	db := openTestDB(t, false)
	bk, err := db.BeginImport()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a/1", "a/2", "A/1", "a/3", "a/2"} {
		if err := bk.Document(&ImportedDocument{ID: id, Collection: "A", ChangeVector: "A:1-x", LastModified: "2020-01-01T00:00:00.0000000Z", Body: []byte(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bk.Commit(); err != nil {
		t.Fatal(err)
	}
	s, _ := db.Stats()
	if s.CountOfDocuments != 3 || s.Collections["A"] != 3 {
		t.Fatalf("stats %+v", s)
	}
	var etags []uint64
	if _, err := db.Walk(1, Walker{Document: func(d *Document) error { etags = append(etags, d.Etag); return nil }}); err != nil {
		t.Fatal(err)
	}
	if len(etags) != 3 {
		t.Fatalf("the etag index holds %d documents after etag 1, want 3 (stale entries left by duplicates?)", len(etags))
	}
	d, _ := db.Get("a/1")
	if string(d.Body) != `{"id":"A/1"}` {
		t.Fatalf("a/1 = %s", d.Body)
	}
}

func TestIDFilter(t *testing.T) {
	f := newIDFilter()
	fp := 0
	for i := 0; i < 100000; i++ {
		if f.add("doc/" + strconv.Itoa(i)) {
			fp++
		}
	}
	if fp > 10 {
		t.Fatalf("%d false positives in 100000 distinct IDs", fp)
	}
	if !f.add("doc/5") {
		t.Fatal("a repeated ID was not reported")
	}
}

// One damaged database record does not hide the other databases.
func TestDatabasesWithADamagedRecord(t *testing.T) {
	d := openTestDataDir(t)
	for _, n := range []string{"a", "b"} {
		if _, err := d.CreateDatabase(n, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.databasePath("a"), recordName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	infos, err := d.Databases()
	if err != nil || len(infos) != 2 || infos[0].Damaged == "" || infos[1].Damaged != "" || infos[1].Name != "b" {
		t.Fatalf("%+v %v", infos, err)
	}
	if _, err := d.OpenDatabase("a"); !errors.Is(err, ErrDatabaseDamaged) {
		t.Fatalf("open damaged: %v", err)
	}
}

// A Tx lands whole or not at all, and its reads see its own writes.
func TestUpdateIsAllOrNothing(t *testing.T) {
	db := openTestDB(t, false)
	if _, err := db.Put("keep", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Stats()
	err := db.Update(func(tx *Tx) error {
		if _, err := tx.Put("a/1", []byte(`{"@metadata":{"@collection":"A"}}`)); err != nil {
			return err
		}
		if _, err := tx.Put("A/1", []byte(`{"v":2,"@metadata":{"@collection":"A"}}`)); err != nil {
			return err // the same document, seen through the Tx
		}
		if err := tx.Delete("keep"); err != nil {
			return err
		}
		_, err := tx.Put("", []byte(`{}`))
		return err
	})
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("err %v", err)
	}
	after, _ := db.Stats()
	if after.CountOfDocuments != before.CountOfDocuments || after.LastDocEtag != before.LastDocEtag || after.CountOfTombstones != 0 {
		t.Fatalf("a failed Tx changed the database: %+v -> %+v", before, after)
	}
	if _, err := db.Get("a/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a/1: %v", err)
	}
	err = db.Update(func(tx *Tx) error {
		for i := 0; i < 100; i++ {
			if _, err := tx.Put("b/"+strconv.Itoa(i), []byte(`{"@metadata":{"@collection":"B"}}`)); err != nil {
				return err
			}
		}
		return tx.Delete("keep")
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Stats()
	if s.CountOfDocuments != 100 || s.Collections["B"] != 100 || s.CountOfTombstones != 1 {
		t.Fatalf("stats %+v", s)
	}
}
