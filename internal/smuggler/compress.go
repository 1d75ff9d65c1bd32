package smuggler

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of an export file.
type Compression int

const (
	None Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression parses "zstd", "gzip" or "none".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "zstd":
		return Zstd, nil
	case "gzip":
		return Gzip, nil
	case "none":
		return None, nil
	}
	return None, fmt.Errorf("unknown compression %q. Use zstd, gzip or none", s)
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

const (
	// zstdConcurrency keeps the zstd coders to two goroutines: magpie
	// targets two-core machines shared with pebble, and one extra goroutine
	// is what overlaps (de)compression with producing or parsing the
	// stream.
	zstdConcurrency = 2

	// zstdMaxWindow refuses frames that would make the decoder allocate
	// more than this for its window. RavenDB and magpie write windows of
	// at most 8 MiB; 128 MiB leaves room for files from `zstd --long`.
	zstdMaxWindow = 128 << 20

	// zstdLevel is the level Compress uses for zstd. On the sample export
	// SpeedFastest compresses at 250 MB/s to 23.3% of the input, against
	// 155 MB/s and 21.2% for SpeedDefault (2-core machine, 2026-12): the
	// speed keeps compression off a backup's critical path for 10% more
	// output.
	zstdLevel = zstd.SpeedFastest

	// gzipLevel is the level Compress uses for gzip, the compatibility
	// format for RavenDB 4.x and 5.x. On the same sample BestSpeed runs at
	// 158 MB/s to 27.0%, the default level at 123 MB/s to 24.6%.
	gzipLevel = gzip.BestSpeed
)

// Decompress sniffs the first bytes of r and returns a reader of the
// decompressed stream: gzip (1f 8b), zstd (28 b5 2f fd), or anything else
// read as is. Memory stays bounded: the decompressors run a goroutine a few
// hundred KiB ahead of the reader, never the whole input. Always Close the
// result, which stops that goroutine; do not read r until then. Close does
// not close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, None, &Error{Offset: -1, Err: err, msg: fmt.Sprintf("reading the input failed: %v. Check the file and the storage it is on.", err)}
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, damagedCompression("gzip", err)
		}
		return newReadahead(&codecReader{zr, Gzip, src}), Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(zstdConcurrency), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, Zstd, damagedCompression("zstd", err)
		}
		return &codecReader{zr.IOReadCloser(), Zstd, src}, Zstd, nil
	}
	return io.NopCloser(br), None, nil
}

// sourceReader remembers the last error of the compressed source, so a
// decompressor's error can be told apart from a failing disk or network.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// codecReader marks the errors its decompressor finds in the data itself
// (as opposed to the source's read errors and truncation).
type codecReader struct {
	io.ReadCloser
	kind Compression
	src  *sourceReader
}

func (c *codecReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && (c.src.err == nil || !errors.Is(err, c.src.err)) {
		err = &codecError{c.kind, err}
	}
	return n, err
}

// codecError is a decompressor's complaint about the compressed data.
type codecError struct {
	kind Compression
	err  error
}

func (e *codecError) Error() string { return e.err.Error() }
func (e *codecError) Unwrap() error { return e.err }

func damagedCompression(kind string, err error) error {
	e := &Error{Offset: 0, Err: err}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		e.Err = io.ErrUnexpectedEOF
		e.msg = fmt.Sprintf("the input ends early inside its %s header: the export is truncated. %s", kind, hintTruncated)
	} else {
		e.msg = fmt.Sprintf("the input starts like %s but its header cannot be read: %v. %s", kind, err, hintDamaged)
	}
	return e
}

// Compress returns a writer that compresses into w. Close flushes the
// compressor and ends its stream; it does not close w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	return CompressConcurrency(w, c, zstdConcurrency)
}

// CompressConcurrency is Compress with zstd running n goroutines; 1
// compresses in the writing goroutine, so that a backup keeps to one core.
// gzip always runs in the writing goroutine.
func CompressConcurrency(w io.Writer, c Compression, n int) (io.WriteCloser, error) {
	if n < 1 {
		n = zstdConcurrency
	}
	switch c {
	case None:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzipLevel)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(n))
	}
	return nil, fmt.Errorf("unknown compression %d. Use zstd, gzip or none", int(c))
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
