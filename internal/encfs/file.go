package encfs

import (
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// file is an encrypted vfs.File. Every offset it is given or reports is a
// plaintext offset; the underlying file is always addressed with ReadAt and
// WriteAt at offset + HeaderSize, so the underlying file's own position is
// never relied on (a file opened with OpenReadWrite starts at 0, inside the
// header).
//
// As vfs.File requires, Read and Write (which share pos) are called by one
// goroutine at a time; ReadAt and WriteAt may be called concurrently.
type file struct {
	base vfs.File
	name string
	// ks is nil for a file of zero bytes opened for reading: it has no
	// header, hence no key, and reads as empty.
	ks  *keystream
	pos int64
}

var _ vfs.File = (*file)(nil)

// Read reads sequentially from the plaintext.
func (f *file) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	// io.Reader reports a short read without an error, then io.EOF.
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// ReadAt decrypts in place in p, so it needs no buffer of its own.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cannot read %s at negative offset %d", f.name, off)
	}
	if f.ks == nil {
		return 0, io.EOF
	}
	n, err := f.base.ReadAt(p, off+HeaderSize)
	f.ks.xor(p[:n], p[:n], off)
	return n, err
}

// Write encrypts p in place before writing it: vfs.File lets Write modify
// its argument, and this saves a copy of every byte pebble writes.
func (f *file) Write(p []byte) (int, error) {
	if f.ks == nil {
		return 0, f.readOnlyEmpty()
	}
	f.ks.xor(p, p, f.pos)
	n, err := f.base.WriteAt(p, f.pos+HeaderSize)
	f.pos += int64(n)
	return n, err
}

// writeBufSize bounds the scratch buffer WriteAt encrypts through.
const writeBufSize = 64 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, writeBufSize); return &b }}

// WriteAt encrypts through a pooled buffer, because io.WriterAt forbids
// modifying p. Pebble uses WriteAt rarely (files opened with
// OpenReadWrite), so the copy costs nothing that matters.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cannot write %s at negative offset %d", f.name, off)
	}
	if f.ks == nil {
		return 0, f.readOnlyEmpty()
	}
	bp := writeBufs.Get().(*[]byte)
	defer writeBufs.Put(bp)
	buf := *bp
	written := 0
	for written < len(p) {
		chunk := min(len(p)-written, len(buf))
		at := off + int64(written)
		f.ks.xor(buf[:chunk], p[written:written+chunk], at)
		n, err := f.base.WriteAt(buf[:chunk], at+HeaderSize)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (f *file) readOnlyEmpty() error {
	return fmt.Errorf("cannot write %s: it was opened for reading", f.name)
}

// Preallocate, SyncTo and Prefetch take plaintext offsets and lengths;
// shifting them by the header keeps them covering the same bytes.

func (f *file) Preallocate(offset, length int64) error {
	return f.base.Preallocate(offset+HeaderSize, length)
}

func (f *file) SyncTo(length int64) (fullSync bool, err error) {
	return f.base.SyncTo(length + HeaderSize)
}

func (f *file) Prefetch(offset, length int64) error {
	return f.base.Prefetch(offset+HeaderSize, length)
}

// Stat reports the plaintext size.
func (f *file) Stat() (vfs.FileInfo, error) {
	info, err := f.base.Stat()
	if err != nil {
		return nil, err
	}
	return plainInfo(info), nil
}

func (f *file) Sync() error     { return f.base.Sync() }
func (f *file) SyncData() error { return f.base.SyncData() }

// Fd exposes the underlying descriptor; pebble uses it only for fadvise and
// to decide whether to preallocate, never to read or write around us.
func (f *file) Fd() uintptr { return f.base.Fd() }

func (f *file) Close() error { return f.base.Close() }
