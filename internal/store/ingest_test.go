package store

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// step is one call of an import: a document (body "" for a tombstone).
type step struct {
	id, body string
}

func docs(prefix string, from, to int) []step {
	var out []step
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s/%05d", prefix, i)
		out = append(out, step{id, fmt.Sprintf(`{"v":%q,"pad":%q}`, id, strings.Repeat("z", 300))})
	}
	return out
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestImportIngest checks imports into a new database through the
// ingester (documents in key order) and every way out of it: documents
// out of order, an ID twice, a tombstone, an abort. Each case compares the
// database with what plain puts and deletes would leave, and checks that
// the etag index holds exactly one entry per document and tombstone.
func TestImportIngest(t *testing.T) {
	cases := []struct {
		name     string
		steps    []step
		existing bool // the database holds a document before the import
		ingested bool // tables were ingested
	}{
		{"in key order", docs("a", 0, 3000), false, true},
		{"out of order after a while", concat(docs("b", 0, 1000), docs("a", 0, 1000)), false, true},
		{"an ID twice in a row", concat(docs("a", 0, 10), []step{{"a/00009", `{"v":"again"}`}}, docs("a", 10, 20)), false, true},
		{"an ID twice in another case", concat(docs("a", 0, 10), []step{{"A/00003", `{"v":"upper"}`}}), false, true},
		{"a tombstone of an ingested document", concat(docs("a", 0, 50), []step{{"a/00007", ""}}, docs("a", 50, 60)), false, true},
		{"out of order from the start", concat(docs("b", 0, 1), docs("a", 0, 100)), false, true},
		{"not a new database", docs("a", 0, 100), true, false},
	}
	for _, c := range cases {
		for _, encrypted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/encrypted=%v", c.name, encrypted), func(t *testing.T) {
				db := openTestDB(t, encrypted)
				want := map[string]string{}
				if c.existing {
					if _, err := db.Put("zz/0", []byte(`{"v":"old"}`)); err != nil {
						t.Fatal(err)
					}
					want["zz/0"] = `{"v":"old"}`
				}
				bk, err := db.BeginImport()
				if err != nil {
					t.Fatal(err)
				}
				tombstones := 0
				for _, s := range c.steps {
					lower := LowerID(s.id)
					if s.body == "" {
						if err := bk.Tombstone(&ImportedTombstone{LowerID: s.id, Collection: "A"}); err != nil {
							t.Fatal(err)
						}
						delete(want, lower)
						tombstones++
						continue
					}
					if err := bk.Document(&ImportedDocument{ID: s.id, Collection: "A", ChangeVector: "A:1-x", LastModified: "2020-01-01T00:00:00.0000000Z", Body: []byte(s.body)}); err != nil {
						t.Fatal(err)
					}
					want[lower] = s.body
				}
				if err := bk.Commit(); err != nil {
					t.Fatal(err)
				}
				var ingested uint64
				m := db.pdb.Metrics()
				for _, l := range m.Levels {
					ingested += l.TablesIngested
				}
				if (ingested > 0) != c.ingested {
					t.Errorf("%d tables ingested, want ingestion %v", ingested, c.ingested)
				}
				if _, err := os.Stat(filepath.Join(db.dir, ingestDir)); err == nil {
					t.Errorf("%s is left after the import", ingestDir)
				}
				// The etag index holds one entry per document and
				// tombstone, each pointing at a record with that etag.
				etagDocs, etagTombs := 0, 0
				err = scan(db.pdb, []byte{prefixEtag}, func(k, v []byte) error {
					if v[0] == kindTombstone {
						etagTombs++
						return nil
					}
					etagDocs++
					d, err := db.readDoc(db.pdb, string(v[1:]))
					if err != nil || d == nil || etagKeyOf(d.Etag) != string(k) {
						return fmt.Errorf("etag entry %x points at %q, which does not have that etag (%v)", k, v[1:], err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if etagDocs != len(want) || etagTombs != tombstones {
					t.Fatalf("the etag index lists %d documents and %d tombstones, want %d and %d", etagDocs, etagTombs, len(want), tombstones)
				}
				walked, err := db.Walk(0, Walker{})
				if err != nil {
					t.Fatal(err)
				}
				for id, body := range want {
					d, err := db.Get(id)
					if err != nil {
						t.Fatalf("%s: %v", id, err)
					}
					if !bytes.Contains(d.Body, []byte(strings.TrimSuffix(strings.TrimPrefix(body, "{"), "}"))) {
						t.Fatalf("%s = %s, want %s", id, d.Body, body)
					}
				}
				st, _ := db.Stats()
				if int(st.CountOfDocuments) != len(want) || int(st.CountOfTombstones) != tombstones || walked.Tombstones != int64(tombstones) {
					t.Fatalf("stats: %d documents, %d tombstones (walk %d); want %d and %d", st.CountOfDocuments, st.CountOfTombstones, walked.Tombstones, len(want), tombstones)
				}
				if st.Collections["A"] != int64(len(want))-map[bool]int64{true: 1, false: 0}[c.existing] {
					t.Fatalf("collection A counts %d", st.Collections["A"])
				}
				if encrypted {
					// The ingested tables are encrypted like every file.
					filepath.WalkDir(db.dir, func(p string, e fs.DirEntry, err error) error {
						if err != nil || e.IsDir() {
							return err
						}
						data, _ := os.ReadFile(p)
						if bytes.Contains(data, []byte("a/0000")) || bytes.Contains(data, []byte(strings.Repeat("z", 64))) {
							t.Errorf("%s holds document data in clear", p)
						}
						return nil
					})
				}
			})
		}
	}
}

// An import through the ingester that fails leaves the database empty and
// no tables behind.
func TestImportIngestAbort(t *testing.T) {
	db := openTestDB(t, true)
	bk, err := db.BeginImport()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range docs("a", 0, 500) {
		if err := bk.Document(&ImportedDocument{ID: s.id, Collection: "A", Body: []byte(s.body)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bk.Abort(); err != nil {
		t.Fatal(err)
	}
	st, _ := db.Stats()
	if st.CountOfDocuments != 0 || st.LastDocEtag != 0 {
		t.Fatalf("after the abort: %d documents, last etag %d", st.CountOfDocuments, st.LastDocEtag)
	}
	if _, err := db.Get("a/00001"); err == nil {
		t.Fatal("a document of the aborted import is readable")
	}
	if _, err := os.Stat(filepath.Join(db.dir, ingestDir)); err == nil {
		t.Fatalf("%s is left after the abort", ingestDir)
	}
}

func etagKeyOf(etag uint64) string { return string(etagKey(etag)) }

// Concurrent writers share fsyncs but still see their own changes
// durable and in etag order: every document has its own etag, the etag
// index holds each exactly once, and the last etag counts every write.
func TestConcurrentPuts(t *testing.T) {
	db := openTestDB(t, true)
	const writers, each = 8, 50
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func(w int) {
			for i := 0; i < each; i++ {
				if _, err := db.Put(fmt.Sprintf("w%d/%d", w, i), []byte(`{"x":1}`)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, _ := db.Stats()
	if st.CountOfDocuments != writers*each || st.LastDocEtag != writers*each {
		t.Fatalf("%d documents, last etag %d; want %d and %d", st.CountOfDocuments, st.LastDocEtag, writers*each, writers*each)
	}
	seen := map[uint64]bool{}
	if _, err := db.Walk(0, Walker{Document: func(d *Document) error {
		if seen[d.Etag] || d.Etag < 1 || d.Etag > writers*each {
			return fmt.Errorf("etag %d of %s repeated or out of range", d.Etag, d.ID)
		}
		seen[d.Etag] = true
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPutParallel measures synced single-document puts from several
// writers at once (they share fsyncs).
func BenchmarkPutParallel(b *testing.B) {
	d, err := Open(Options{Dir: filepath.Join(b.TempDir(), "data"), Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := d.CreateDatabase("bench", CreateOptions{Encrypted: true}); err != nil {
		b.Fatal(err)
	}
	db, err := d.OpenDatabase("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n atomicCounter
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Put(fmt.Sprintf("docs/%d", n.next()), []byte(`{"Name":"x","Value":12345}`)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.v.Add(1) }
