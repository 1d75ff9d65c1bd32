package smuggler

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// event is one handler call, recorded with copies of the bytes it saw.
type event struct {
	kind string // "build", "doc", "att", "tomb", "index", "skip"
	doc  Document
	att  struct {
		Hash, Tag string
		Size      int64
		Content   []byte
	}
	tomb    Tombstone
	raw     []byte // index bytes
	section string
	n       int64 // build version or skipped items
}

// recorder is a Handler that records everything, draining attachment
// content completely.
type recorder struct {
	events []event
	failOn string // kind whose handler call returns errStop
}

var errStop = io.ErrClosedPipe // any sentinel the reader would never produce itself

func (r *recorder) add(e event) error {
	r.events = append(r.events, e)
	if e.kind == r.failOn {
		return errStop
	}
	return nil
}

func (r *recorder) BuildVersion(v int64) error { return r.add(event{kind: "build", n: v}) }
func (r *recorder) Document(d *Document) error {
	c := *d
	c.Body = bytes.Clone(d.Body)
	return r.add(event{kind: "doc", doc: c})
}
func (r *recorder) Attachment(a *Attachment) error {
	e := event{kind: "att"}
	e.att.Hash, e.att.Tag, e.att.Size = a.Hash, a.Tag, a.Size
	b, err := io.ReadAll(a.Content)
	if err != nil {
		return err
	}
	e.att.Content = b
	return r.add(e)
}
func (r *recorder) Tombstone(t *Tombstone) error { return r.add(event{kind: "tomb", tomb: *t}) }
func (r *recorder) Index(def []byte) error {
	return r.add(event{kind: "index", raw: bytes.Clone(def)})
}
func (r *recorder) Skipped(s string, n int) error {
	return r.add(event{kind: "skip", section: s, n: int64(n)})
}

func (r *recorder) count(kind string) int {
	n := 0
	for _, e := range r.events {
		if e.kind == kind {
			n++
		}
	}
	return n
}

func (r *recorder) docs() []Document {
	var ds []Document
	for _, e := range r.events {
		if e.kind == "doc" {
			ds = append(ds, e.doc)
		}
	}
	return ds
}

// sampleData returns the decompressed bytes of media_subset.ravendbdump, or
// skips the test when the shared data folder is absent (fails under CI).
func sampleData(t testing.TB) (compressed, plain []byte) {
	t.Helper()
	dir := os.Getenv("MAGPIE_SHARED_DATA")
	if dir == "" {
		out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err == nil {
			dir = filepath.Join(strings.TrimSpace(string(out)), "..", "shared", "data")
		}
	}
	compressed, err := os.ReadFile(filepath.Join(dir, "media_subset.ravendbdump"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the sample export is missing: %v", err)
		}
		t.Skipf("the sample export is missing (set MAGPIE_SHARED_DATA): %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	plain, err = io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return compressed, plain
}

func hashOf(b []byte) string {
	h := blake2b.Sum256(b)
	return base64.StdEncoding.EncodeToString(h[:])
}

// blakeHash computes an attachment hash incrementally.
type blakeHash struct{ hash.Hash }

func newHash() blakeHash {
	h, _ := blake2b.New256(nil)
	return blakeHash{h}
}

func (h blakeHash) sum() string { return base64.StdEncoding.EncodeToString(h.Sum(nil)) }
