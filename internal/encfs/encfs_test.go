package encfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/magpiedb/magpie/internal/keys"
)

// seqKey is the key with bytes 0..31. Its derived AES key,
// 801c22b98242021de43ea34c31d17724d3e3e182ae0b0e0441544359bac4d423, was
// computed with Python's hmac (HKDF-SHA256, info "magpie encfs aes-256-ctr v1").
var seqKey = func() keys.Key {
	var k keys.Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

func testKey(t *testing.T) keys.Key {
	t.Helper()
	k, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFS(t *testing.T, base vfs.FS, ring Keyring) vfs.FS {
	t.Helper()
	fs, err := New(base, ring)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func oneKeyRing(id uint32, k keys.Key) Keyring {
	return Keyring{Current: id, Keys: map[uint32]keys.Key{id: k}}
}

// pattern returns n bytes of deterministic, non-repeating-looking content.
func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, fs vfs.FS, name string, data []byte) {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Clone(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readRaw(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKnownAnswer decrypts a file built by hand from a ciphertext made by
// `openssl enc -aes-256-ctr`, with an IV two blocks below 2^128 so the
// counter wraps inside the file.
func TestKnownAnswer(t *testing.T) {
	const plaintext = "magpie encfs known-answer vector, crossing the 128-bit counter wrap; the reference is openssl."
	ciphertext, _ := hex.DecodeString("348f1a70b29a825195f62e9d91f2ac3c080a542e540e7005a053c1df0a538e6fa8433808570347a991682cc575a28f967bc3291b5ec174d2f5de38e64db61ea5be8ffd12b04c525ef54ca0e6a8b7b7345441b76aac09316cc3a086a720d5")
	header, _ := hex.DecodeString("4d41475049454531" + "00000007" + "00000000" + "fffffffffffffffffffffffffffffffe")

	mem := vfs.NewMem()
	f, _ := mem.Create("kat", vfs.WriteCategoryUnspecified)
	f.Write(append(header, ciphertext...))
	f.Close()

	fs := newFS(t, mem, oneKeyRing(7, seqKey))
	ef, err := fs.Open("kat")
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	tests := []struct{ off, n int }{
		{0, 94}, {0, 16}, {15, 2}, {16, 16}, {31, 2}, {32, 1}, {13, 40}, {47, 47}, {93, 1},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		n, err := ef.ReadAt(p, int64(tt.off))
		if err != nil && !(err == io.EOF && tt.off+tt.n == len(plaintext)) {
			t.Errorf("ReadAt(%d, %d): %v", tt.off, tt.n, err)
		}
		if got, want := string(p[:n]), plaintext[tt.off:tt.off+tt.n]; got != want {
			t.Errorf("ReadAt(%d, %d) = %q, want %q", tt.off, tt.n, got, want)
		}
	}
	if n, err := ef.ReadAt(make([]byte, 1), 94); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 0, EOF", n, err)
	}
	all, err := io.ReadAll(ef)
	if err != nil || string(all) != plaintext {
		t.Errorf("Read = %q, %v; want %q", all, err, plaintext)
	}
	info, _ := ef.Stat()
	if info.Size() != 94 {
		t.Errorf("Stat().Size() = %d, want 94", info.Size())
	}
}

func TestCounterAt(t *testing.T) {
	tests := []struct {
		iv   string
		n    uint64
		want string
	}{
		{"00000000000000000000000000000000", 5, "00000000000000000000000000000005"},
		{"0000000000000000ffffffffffffffff", 1, "00000000000000010000000000000000"},
		{"0123456789abcdeffffffffffffffffe", 3, "0123456789abcdf00000000000000001"},
		{"ffffffffffffffffffffffffffffffff", 1, "00000000000000000000000000000000"},
		{"fffffffffffffffffffffffffffffffe", 1<<64 - 1, "0000000000000000fffffffffffffffd"},
	}
	for _, tt := range tests {
		var iv [ivSize]byte
		hex.Decode(iv[:], []byte(tt.iv))
		got := counterAt(iv, tt.n)
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("counterAt(%s, %d) = %x, want %s", tt.iv, tt.n, got, tt.want)
		}
	}
}

// TestRoundTrip writes with Write in odd-sized pieces and reads back with
// ReadAt and Read at odd offsets, on memory and on disk.
func TestRoundTrip(t *testing.T) {
	bases := []struct {
		name string
		fs   vfs.FS
		dir  string
	}{
		{"mem", vfs.NewMem(), ""},
		{"disk", vfs.Default, t.TempDir()},
	}
	writes := []struct {
		name  string
		sizes []int
	}{
		{"empty", nil},
		{"one byte", []int{1}},
		{"one block", []int{16}},
		{"odd pieces", []int{1, 15, 17, 3, 31, 33, 7}},
		{"block-aligned then odd", []int{16, 32, 5, 11, 64}},
		{"large", []int{100_003, 7, 65_536, 70_001}},
	}
	for _, b := range bases {
		fs := newFS(t, b.fs, oneKeyRing(1, testKey(t)))
		for i, w := range writes {
			t.Run(b.name+"/"+w.name, func(t *testing.T) {
				name := filepath.Join(b.dir, fmt.Sprintf("f%d", i))
				total := 0
				for _, s := range w.sizes {
					total += s
				}
				want := pattern(total, uint64(i))
				f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				off := 0
				for _, s := range w.sizes {
					n, err := f.Write(bytes.Clone(want[off : off+s]))
					if n != s || err != nil {
						t.Fatalf("Write(%d bytes) = %d, %v", s, n, err)
					}
					off += s
				}
				if err := f.Sync(); err != nil {
					t.Fatal(err)
				}
				checkSize(t, f, int64(total))
				f.Close()

				fi, err := fs.Stat(name)
				if err != nil || fi.Size() != int64(total) {
					t.Fatalf("FS.Stat size = %v, %v; want %d", fi.Size(), err, total)
				}
				raw, err := b.fs.Stat(name)
				if err != nil || raw.Size() != int64(total)+HeaderSize {
					t.Fatalf("base Stat size = %d, %v; want %d", raw.Size(), err, total+HeaderSize)
				}
				rawBytes := readRaw(t, b.fs, name)
				if total >= 16 && bytes.Contains(rawBytes, want[:16]) {
					t.Error("the plaintext appears in the underlying file")
				}

				r, err := fs.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				checkSize(t, r, int64(total))
				checkReadAt(t, r, want)
				checkRead(t, r, want, 13)
			})
		}
	}
}

func checkSize(t *testing.T, f vfs.File, want int64) {
	t.Helper()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != want {
		t.Fatalf("File.Stat().Size() = %d, want %d", info.Size(), want)
	}
}

// checkReadAt reads want back from f at offsets around every kind of
// block boundary.
func checkReadAt(t *testing.T, f vfs.File, want []byte) {
	t.Helper()
	for _, off := range []int{0, 1, 15, 16, 17, 31, 33, 100, 4095, 65_537, len(want) - 1} {
		for _, n := range []int{1, 15, 16, 17, 40, 1000} {
			if off < 0 || off >= len(want) {
				continue
			}
			p := make([]byte, n)
			got, err := f.ReadAt(p, int64(off))
			wantN := min(n, len(want)-off)
			if got != wantN {
				t.Fatalf("ReadAt(%d bytes at %d) read %d, want %d (err %v)", n, off, got, wantN, err)
			}
			if wantN < n && err != io.EOF {
				t.Fatalf("short ReadAt at %d: err = %v, want io.EOF", off, err)
			}
			if !bytes.Equal(p[:got], want[off:off+got]) {
				t.Fatalf("ReadAt(%d bytes at %d) returned different bytes", n, off)
			}
		}
	}
	if n, err := f.ReadAt(make([]byte, 4), int64(len(want))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
}

// checkRead reads f sequentially in pieces of size step.
func checkRead(t *testing.T, f vfs.File, want []byte, step int) {
	t.Helper()
	var got []byte
	p := make([]byte, step)
	for {
		n, err := f.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Read returned %d bytes that differ from the %d written", len(got), len(want))
	}
}

// TestWriteAt covers files opened with OpenReadWrite, the only ones pebble
// uses WriteAt on.
func TestWriteAt(t *testing.T) {
	mem := vfs.NewMem()
	fs := newFS(t, mem, oneKeyRing(1, testKey(t)))

	f, err := fs.OpenReadWrite("rw", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 150_000)
	steps := []struct{ off, n int }{
		{0, 100}, {37, 10}, {100, 900}, {120, 5}, {15, 2}, {1000, 149_000}, {65_530, 20},
	}
	for i, s := range steps {
		p := pattern(s.n, uint64(100+i))
		orig := bytes.Clone(p)
		n, err := f.WriteAt(p, int64(s.off))
		if n != s.n || err != nil {
			t.Fatalf("WriteAt(%d at %d) = %d, %v", s.n, s.off, n, err)
		}
		if !bytes.Equal(p, orig) {
			t.Fatalf("WriteAt modified its argument")
		}
		copy(want[s.off:], p)
	}
	checkSize(t, f, int64(len(want)))
	checkReadAt(t, f, want)
	f.Close()
	header := readRaw(t, mem, "rw")[:HeaderSize]

	// Reopening keeps the header (and so the IV) and the content.
	f, err = fs.OpenReadWrite("rw", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	checkReadAt(t, f, want)
	if _, err := f.WriteAt([]byte("xyz"), 3); err != nil {
		t.Fatal(err)
	}
	copy(want[3:], "xyz")
	f.Close()
	raw := readRaw(t, mem, "rw")
	if !bytes.Equal(raw[:HeaderSize], header) {
		t.Errorf("OpenReadWrite rewrote the header of an existing file")
	}
	r, _ := fs.Open("rw")
	checkReadAt(t, r, want)
	r.Close()
}

func TestFreshIVs(t *testing.T) {
	mem := vfs.NewMem()
	fs := newFS(t, mem, oneKeyRing(1, testKey(t)))
	content := bytes.Repeat([]byte("lastfm/marker "), 100)
	writeFile(t, fs, "a", content)
	writeFile(t, fs, "b", content)
	a, b := readRaw(t, mem, "a"), readRaw(t, mem, "b")
	if bytes.Equal(a[16:32], b[16:32]) {
		t.Error("two files got the same IV")
	}
	if bytes.Equal(a[HeaderSize:], b[HeaderSize:]) {
		t.Error("two files with the same content have the same ciphertext")
	}
	if bytes.Contains(a, []byte("lastfm/marker")) {
		t.Error("the plaintext appears in the underlying file")
	}

	// ReuseForWrite: a fresh file with a fresh IV, the old one gone.
	f, err := fs.ReuseForWrite("a", "c", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	checkSize(t, f, 0)
	if _, err := f.Write(bytes.Clone(content[:50])); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := mem.Stat("a"); err == nil {
		t.Error("ReuseForWrite left the old file in place")
	}
	c := readRaw(t, mem, "c")
	if bytes.Equal(c[16:32], a[16:32]) {
		t.Error("ReuseForWrite kept the old file's IV")
	}
	if bytes.Equal(c[HeaderSize:], a[HeaderSize:HeaderSize+50]) {
		t.Error("ReuseForWrite reused the old keystream")
	}
	r, _ := fs.Open("c")
	checkRead(t, r, content[:50], 64)
	r.Close()

	// A missing old file is not an error: pebble would abort on one.
	f, err = fs.ReuseForWrite("no-such-file", "d", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatalf("ReuseForWrite with a missing old file: %v", err)
	}
	f.Close()
}

func TestWrongKeys(t *testing.T) {
	mem := vfs.NewMem()
	k1, k2 := testKey(t), testKey(t)
	content := pattern(1000, 9)
	writeFile(t, newFS(t, mem, oneKeyRing(1, k1)), "f", content)

	// Same id, different key: CTR has no authentication, so the read
	// succeeds and yields garbage (pebble's checksums reject it).
	other := newFS(t, mem, oneKeyRing(1, k2))
	r, err := other.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(content))
	if n, err := r.ReadAt(got, 0); n != len(content) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	r.Close()
	if bytes.Equal(got, content) {
		t.Fatal("a different key decrypted the file")
	}
	same := 0
	for i := range got {
		if got[i] == content[i] {
			same++
		}
	}
	if same > 20 { // about 4 expected by chance
		t.Errorf("%d of %d bytes matched under the wrong key", same, len(got))
	}

	// A key id the ring lacks is refused with the file and id named.
	missing := newFS(t, mem, Keyring{Current: 2, Keys: map[uint32]keys.Key{2: k1, 3: k2}})
	want := "file f is encrypted with data key 1, which the keyring does not hold: open the database with the key registry it was written with"
	for _, open := range []func() (vfs.File, error){
		func() (vfs.File, error) { return missing.Open("f") },
		func() (vfs.File, error) { return missing.OpenReadWrite("f", vfs.WriteCategoryUnspecified) },
	} {
		_, err := open()
		if err == nil || err.Error() != want {
			t.Errorf("error\n got %v\nwant %s", err, want)
		}
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("error does not wrap ErrUnknownKey")
		}
	}

	// A ring with both keys reads files written under either.
	both := newFS(t, mem, Keyring{Current: 2, Keys: map[uint32]keys.Key{1: k1, 2: k2}})
	writeFile(t, both, "g", content)
	for _, name := range []string{"f", "g"} {
		r, err := both.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		checkReadAt(t, r, content)
		r.Close()
	}
	if id := readRaw(t, mem, "g")[8:12]; !bytes.Equal(id, []byte{0, 0, 0, 2}) {
		t.Errorf("new file's key id = %x, want the current id 2", id)
	}
}

func TestBadHeaders(t *testing.T) {
	good := func() []byte {
		mem := vfs.NewMem()
		writeFile(t, newFS(t, mem, oneKeyRing(1, seqKey)), "f", []byte("hello"))
		return readRaw(t, mem, "f")
	}()
	reserved := bytes.Clone(good)
	reserved[13] = 1
	notOurs := "file bad is not a magpie encrypted file (bad header): it was not written by magpie's encrypted store, or it was damaged"
	tests := []struct {
		name    string
		content []byte
		wantErr string
	}{
		{"zero bytes reads as empty", nil, ""},
		{"one byte", []byte("M"), notOurs},
		{"31 bytes of a header", good[:31], notOurs},
		{"pebble plaintext", []byte("RocksDB OPTIONS file\n[Version]\n  pebble_version=0.1\n"), notOurs},
		{"wrong magic", append([]byte("MAGPIEE2"), good[8:]...), notOurs},
		{"reserved bytes set", reserved, notOurs},
		{"good", good, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewMem()
			f, _ := mem.Create("bad", vfs.WriteCategoryUnspecified)
			f.Write(bytes.Clone(tt.content))
			f.Close()
			fs := newFS(t, mem, oneKeyRing(1, seqKey))
			r, err := fs.Open("bad")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Open error\n got %v\nwant %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrNotEncrypted) {
					t.Error("error does not wrap ErrNotEncrypted")
				}
				if _, err := fs.OpenReadWrite("bad", vfs.WriteCategoryUnspecified); err == nil || err.Error() != tt.wantErr {
					t.Errorf("OpenReadWrite error\n got %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			want := ""
			if len(tt.content) > 0 {
				want = "hello"
			}
			checkSize(t, r, int64(len(want)))
			all, err := io.ReadAll(r)
			if err != nil || string(all) != want {
				t.Fatalf("ReadAll = %q, %v; want %q", all, err, want)
			}
			if len(tt.content) == 0 {
				if n, err := r.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
					t.Errorf("ReadAt of an empty file = %d, %v; want 0, EOF", n, err)
				}
				if _, err := r.Write([]byte("x")); err == nil || err.Error() != "cannot write bad: it was opened for reading" {
					t.Errorf("Write to an empty read-only file: %v", err)
				}
				// OpenReadWrite of a zero-byte file gives it a header.
				w, err := fs.OpenReadWrite("bad", vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				w.Write([]byte("later"))
				w.Close()
				if raw := readRaw(t, mem, "bad"); len(raw) != HeaderSize+5 || string(raw[:8]) != "MAGPIEE1" {
					t.Errorf("after OpenReadWrite the file is %d bytes starting %q", len(raw), raw[:min(8, len(raw))])
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	k := testKey(t)
	tests := []struct {
		name    string
		base    vfs.FS
		ring    Keyring
		wantErr string
	}{
		{"ok", vfs.NewMem(), oneKeyRing(4, k), ""},
		{"current missing", vfs.NewMem(), Keyring{Current: 2, Keys: map[uint32]keys.Key{1: k}},
			"encfs: the keyring's current data key 2 is not among its 1 keys: add that key to the ring, or set Current to the id of one it holds"},
		{"empty ring", vfs.NewMem(), Keyring{},
			"encfs: the keyring's current data key 0 is not among its 0 keys: add that key to the ring, or set Current to the id of one it holds"},
		{"no base", nil, oneKeyRing(1, k), "encfs: no base filesystem given: pass vfs.Default to store files on disk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := New(tt.base, tt.ring)
			if tt.wantErr == "" {
				if err != nil || fs == nil {
					t.Fatalf("New = %v, %v", fs, err)
				}
				if fs.Unwrap() != tt.base {
					t.Error("Unwrap does not return the base filesystem")
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error\n got %v\nwant %s", err, tt.wantErr)
			}
		})
	}

	// Changing the ring after New must not change the filesystem.
	ring := oneKeyRing(1, k)
	mem := vfs.NewMem()
	fs := newFS(t, mem, ring)
	ring.Keys[1] = testKey(t)
	writeFile(t, fs, "f", []byte("content"))
	fs2 := newFS(t, mem, oneKeyRing(1, k))
	r, _ := fs2.Open("f")
	if b, _ := io.ReadAll(r); string(b) != "content" {
		t.Error("the filesystem used a key changed after New")
	}
}

// TestShiftedOffsets checks that Preallocate, SyncTo and Prefetch reach the
// base file shifted past the header, by recording what the base sees.
func TestShiftedOffsets(t *testing.T) {
	var ops []errorfs.Op
	rec := errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileWriteAt, errorfs.OpFileReadAt:
			ops = append(ops, op)
		}
		return nil
	})
	base := &offsetRecorder{FS: errorfs.Wrap(vfs.NewMem(), rec)}
	fs := newFS(t, base, oneKeyRing(1, testKey(t)))
	f, err := fs.Create("f", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("0123456789"))
	f.Preallocate(10, 100)
	f.SyncTo(10)
	f.Prefetch(3, 4)
	f.ReadAt(make([]byte, 2), 5)
	f.Close()
	got := fmt.Sprint(base.calls)
	want := "[Preallocate(42, 100) SyncTo(42) Prefetch(35, 4)]"
	if got != want {
		t.Errorf("base file saw %s, want %s", got, want)
	}
	got = fmt.Sprint(ops)
	want = fmt.Sprint([]errorfs.Op{
		{Kind: errorfs.OpFileWriteAt, Path: "f", Offset: 0},
		{Kind: errorfs.OpFileWriteAt, Path: "f", Offset: 32},
		{Kind: errorfs.OpFileReadAt, Path: "f", Offset: 37},
	})
	if got != want {
		t.Errorf("base file saw\n %s\nwant\n %s", got, want)
	}
}

type offsetRecorder struct {
	vfs.FS
	calls []string
}

func (r *offsetRecorder) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := r.FS.Create(name, c)
	return &recordingFile{File: f, r: r}, err
}

type recordingFile struct {
	vfs.File
	r *offsetRecorder
}

func (f *recordingFile) Preallocate(off, n int64) error {
	f.r.calls = append(f.r.calls, fmt.Sprintf("Preallocate(%d, %d)", off, n))
	return nil
}

func (f *recordingFile) SyncTo(n int64) (bool, error) {
	f.r.calls = append(f.r.calls, fmt.Sprintf("SyncTo(%d)", n))
	return false, nil
}

func (f *recordingFile) Prefetch(off, n int64) error {
	f.r.calls = append(f.r.calls, fmt.Sprintf("Prefetch(%d, %d)", off, n))
	return nil
}

// TestInjectedErrors checks that failures of the base filesystem reach the
// caller, and that a file whose header could not be written is not left.
func TestInjectedErrors(t *testing.T) {
	tests := []struct {
		name     string
		kind     errorfs.OpKind
		run      func(vfs.FS) error
		leftover bool
	}{
		{"header write in Create", errorfs.OpFileWriteAt, func(fs vfs.FS) error {
			_, err := fs.Create("f", vfs.WriteCategoryUnspecified)
			return err
		}, false},
		{"header write in OpenReadWrite", errorfs.OpFileWriteAt, func(fs vfs.FS) error {
			_, err := fs.OpenReadWrite("f", vfs.WriteCategoryUnspecified)
			return err
		}, false},
		{"header write in ReuseForWrite", errorfs.OpFileWriteAt, func(fs vfs.FS) error {
			_, err := fs.ReuseForWrite("old", "f", vfs.WriteCategoryUnspecified)
			return err
		}, false},
		{"Write", errorfs.OpFileWriteAt, func(fs vfs.FS) error {
			f, err := fs.Create("f", vfs.WriteCategoryUnspecified)
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			defer f.Close()
			_, err = f.Write([]byte("data"))
			return err
		}, true},
		{"WriteAt", errorfs.OpFileWriteAt, func(fs vfs.FS) error {
			f, err := fs.OpenReadWrite("f", vfs.WriteCategoryUnspecified)
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			defer f.Close()
			_, err = f.WriteAt([]byte("data"), 5)
			return err
		}, true},
		{"Sync", errorfs.OpFileSync, func(fs vfs.FS) error {
			f, err := fs.Create("f", vfs.WriteCategoryUnspecified)
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			defer f.Close()
			return f.Sync()
		}, true},
		{"ReadAt", errorfs.OpFileReadAt, func(fs vfs.FS) error {
			f, err := fs.Create("f", vfs.WriteCategoryUnspecified)
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			f.Write([]byte("data"))
			defer f.Close()
			_, err = f.ReadAt(make([]byte, 4), 0)
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewMem()
			old, _ := mem.Create("old", vfs.WriteCategoryUnspecified)
			old.Close()
			// Inject on the matching operation on "f", skipping the header
			// write for the cases that test a later write.
			skip := 0
			if tt.name == "Write" || tt.name == "WriteAt" {
				skip = 1
			}
			seen := 0
			inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind != tt.kind || op.Path != "f" {
					return nil
				}
				seen++
				if seen > skip {
					return errorfs.ErrInjected
				}
				return nil
			})
			fs := newFS(t, errorfs.Wrap(mem, inj), oneKeyRing(1, testKey(t)))
			err := tt.run(fs)
			if !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("error = %v, want the injected error", err)
			}
			_, statErr := mem.Stat("f")
			if exists := statErr == nil; exists != tt.leftover {
				t.Errorf("file f exists = %v after the error, want %v", exists, tt.leftover)
			}
		})
	}
}
