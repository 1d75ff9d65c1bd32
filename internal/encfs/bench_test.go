package encfs

import (
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/magpiedb/magpie/internal/keys"
)

// The benchmarks run the same work on the plain disk filesystem and through
// encfs, so the ratio of the two is the cost of encryption.

func benchFS(b *testing.B, encrypted bool) vfs.FS {
	if !encrypted {
		return vfs.Default
	}
	k, _ := keys.Generate()
	fs, err := New(vfs.Default, oneKeyRing(1, k))
	if err != nil {
		b.Fatal(err)
	}
	return fs
}

func BenchmarkWrite(b *testing.B) {
	for _, enc := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "encfs"}[enc], func(b *testing.B) {
			fs := benchFS(b, enc)
			f, err := fs.Create(filepath.Join(b.TempDir(), "f"), vfs.WriteCategoryUnspecified)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadAt(b *testing.B) {
	const size = 64 << 20
	for _, enc := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "encfs"}[enc], func(b *testing.B) {
			fs := benchFS(b, enc)
			name := filepath.Join(b.TempDir(), "f")
			f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
			if err != nil {
				b.Fatal(err)
			}
			chunk := make([]byte, 1<<20)
			for range size / len(chunk) {
				if _, err := f.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
			r, err := fs.Open(name)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(buf)))
			off := int64(0)
			for b.Loop() {
				// An odd offset, so the keystream starts mid-block.
				if _, err := r.ReadAt(buf, off+7); err != nil {
					b.Fatal(err)
				}
				off = (off + int64(len(buf))) % (size - int64(len(buf)) - 7)
			}
		})
	}
}
