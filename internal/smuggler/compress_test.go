package smuggler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestParseCompression(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Compression
		wantErr string
	}{
		{"zstd", Zstd, ""},
		{"gzip", Gzip, ""},
		{"none", None, ""},
		{"ZSTD", None, `unknown compression "ZSTD". Use zstd, gzip or none`},
		{"lz4", None, `unknown compression "lz4". Use zstd, gzip or none`},
		{"", None, `unknown compression "". Use zstd, gzip or none`},
	} {
		got, err := ParseCompression(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseCompression(%q) error %v, want %s", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	if s := Compression(7).String(); s != "Compression(7)" {
		t.Errorf("String of an unknown value = %q", s)
	}
	if _, err := Compress(io.Discard, Compression(7)); err == nil || err.Error() != "unknown compression 7. Use zstd, gzip or none" {
		t.Errorf("Compress with an unknown value: %v", err)
	}
}

// closeRecorder notes whether Close was called on it.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func compressed(t testing.TB, c Compression, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Compress(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompressSniffs(t *testing.T) {
	payload := []byte(`{"BuildVersion":1,"Docs":[]}`)
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			file := compressed(t, c, payload)
			magic := map[Compression][]byte{None: []byte("{"), Gzip: {0x1f, 0x8b}, Zstd: {0x28, 0xb5, 0x2f, 0xfd}}[c]
			if !bytes.HasPrefix(file, magic) {
				t.Fatalf("Compress(%v) output starts with % x", c, file[:4])
			}
			src := &closeRecorder{Reader: bytes.NewReader(file)}
			rc, kind, err := Decompress(src)
			if err != nil {
				t.Fatal(err)
			}
			if kind != c {
				t.Errorf("detected %v, want %v", kind, c)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("decompressed %q, %v; want %q", got, err, payload)
			}
			if err := rc.Close(); err != nil {
				t.Error(err)
			}
			if src.closed {
				t.Error("Close closed the underlying reader")
			}
		})
	}
	// Inputs shorter than the longest magic still work.
	for _, in := range []string{"", "{", "{}"} {
		rc, kind, err := Decompress(strings.NewReader(in))
		if err != nil || kind != None {
			t.Fatalf("Decompress(%q) = %v, %v", in, kind, err)
		}
		if got, _ := io.ReadAll(rc); string(got) != in {
			t.Errorf("Decompress(%q) read %q", in, got)
		}
	}
}

// TestCompressedByOthers reads files compressed by the library's plain
// encoders at other settings (as RavenDB or the gzip and zstd tools would
// write them), including a multi-member gzip file.
func TestCompressedByOthers(t *testing.T) {
	dump, _ := attachmentDump()
	var want recorder
	if err := Read(bytes.NewReader(dump), &want); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	half := len(dump) / 2
	for _, part := range [][]byte{dump[:half], dump[half:]} {
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(part)
		zw.Close()
	}
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	zw.Write(dump)
	zw.Close()
	for name, file := range map[string][]byte{"multi-member gzip": gz.Bytes(), "zstd best": zs.Bytes()} {
		var got recorder
		if err := Import(bytes.NewReader(file), &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.events) != len(want.events) || !bytes.Equal(got.events[1].att.Content, want.events[1].att.Content) {
			t.Errorf("%s: read differs", name)
		}
	}
}

// TestImportTruncated cuts compressed exports in half: the error says where
// the decompressed stream ends, and wraps io.ErrUnexpectedEOF.
func TestImportTruncated(t *testing.T) {
	dump := genDump(3000)
	inputs := map[string][]byte{"gzip": compressed(t, Gzip, dump), "zstd": compressed(t, Zstd, dump)}
	if !testing.Short() {
		sample, _ := sampleData(t)
		inputs["gzip sample"] = sample
	}
	for name, file := range inputs {
		t.Run(name, func(t *testing.T) {
			cut := file[:len(file)/2]
			// What the decompressor yields before it notices, measured
			// without the reader.
			rc, _, err := Decompress(bytes.NewReader(cut))
			if err != nil {
				t.Fatal(err)
			}
			plain, rerr := io.ReadAll(rc)
			rc.Close()
			if !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Fatalf("the decompressor itself reports %v at the cut", rerr)
			}
			// Documents are delivered up to the last complete one.
			wantDocs := bytes.Count(plain, []byte(`"}}`))
			where := fmt.Sprintf(" in item %d of \"Docs\"", wantDocs)
			if bytes.HasSuffix(plain, []byte(`"}}`)) || bytes.HasSuffix(plain, []byte(`"}},`)) {
				where = ` in "Docs"`
			}
			want := fmt.Sprintf("the input ends early at byte %d%s: the export is truncated. Check that the file was copied or downloaded completely.", len(plain), where)

			var rec recorder
			err = Import(bytes.NewReader(cut), &rec)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n got %v\nwant %s", err, want)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error does not wrap io.ErrUnexpectedEOF")
			}
			if n := len(rec.docs()); n != wantDocs {
				t.Errorf("read %d documents before the cut, want %d", n, wantDocs)
			}
		})
	}
}

func TestImportDamagedCompression(t *testing.T) {
	dump := genDump(3000)
	gz := compressed(t, Gzip, dump)
	zs := compressed(t, Zstd, dump)
	flip := func(b []byte, at int) []byte {
		b = bytes.Clone(b)
		b[at] ^= 0xff
		return b
	}
	for _, tc := range []struct {
		name, prefix string
		in           []byte
	}{
		{"gzip header", "the input starts like gzip but its header cannot be read: gzip: invalid header. ", flip(gz, 2)},
		{"gzip header cut", "the input ends early inside its gzip header: the export is truncated. ", gz[:5]},
		// A flipped bit in deflate data often decodes to other bytes: the
		// JSON or the final checksum catches it.
		{"gzip body", "", flip(gz, len(gz)/2)},
		{"gzip checksum", "decompressing the gzip data fails at byte 1313437: gzip: invalid checksum. The export is damaged", flip(gz, len(gz)-5)},
		{"zstd body", "decompressing the zstd data fails at byte ", flip(zs, len(zs)/2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Import(bytes.NewReader(tc.in), &recorder{})
			var e *Error
			if err == nil || !strings.HasPrefix(err.Error(), tc.prefix) || !errors.As(err, &e) {
				t.Errorf("error %v, want an *Error starting %q", err, tc.prefix)
			}
		})
	}
}

// TestImportSourceError checks that a failing source is reported as a read
// error, not as damaged data, through each decompressor.
func TestImportSourceError(t *testing.T) {
	boom := errors.New("connection reset")
	dump := genDump(3000)
	for _, c := range []Compression{None, Gzip, Zstd} {
		file := compressed(t, c, dump)
		err := Import(&failingReader{data: file[:len(file)/2], err: boom}, &recorder{})
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "reading the input failed at byte ") ||
			!strings.HasSuffix(err.Error(), ": connection reset. Check the file and the storage it is on.") {
			t.Errorf("%v: error %v, want a read error wrapping the source's", c, err)
		}
	}
}

// TestDecompressCloseEarly closes decompressors mid-stream: their
// goroutines must go away.
func TestDecompressCloseEarly(t *testing.T) {
	dump := genDump(5000)
	before := runtime.NumGoroutine()
	for _, c := range []Compression{Gzip, Zstd} {
		for range 10 {
			rc, _, err := Decompress(bytes.NewReader(compressed(t, c, dump)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			if _, err := rc.Read(make([]byte, 10)); err == nil {
				t.Errorf("%v: Read after Close succeeded", c)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left running after Close", n-before)
	}
}
