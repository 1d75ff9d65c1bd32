// Package encfs is a pebble filesystem (vfs.FS) that encrypts every file it
// writes, so an encrypted magpie database holds no document, key or id in
// clear on disk: not in sstables, the write-ahead log, the MANIFEST or the
// OPTIONS file.
//
// # Use
//
//	fs, err := encfs.New(vfs.Default, encfs.Keyring{
//		Current: 1,
//		Keys:    map[uint32]keys.Key{1: dataKey},
//	})
//	db, err := pebble.Open(dir, &pebble.Options{FS: fs})
//
// The keyring holds every data key the database may have written files
// with, by id; new files are encrypted with Current. Rotating the data key
// is adding a key and making it Current: old files stay readable, and
// compactions rewrite them under the new key over time. The data keys
// themselves live, sealed, in the database's key registry (package keys).
//
// # Format
//
// Every regular file is a 32-byte header followed by its content encrypted
// with AES-256-CTR:
//
//	offset  size  field
//	0       8     magic "MAGPIEE1"
//	8       4     data key id, big-endian uint32
//	12      4     reserved, zero
//	16      16    initial counter block (IV), random per file
//	32      n     ciphertext of n plaintext bytes
//
// The AES key is the data key derived for this use,
// key.Derive("encfs aes-256-ctr v1") (HKDF-SHA256, info
// "magpie encfs aes-256-ctr v1"), so a data key never serves two
// algorithms. Plaintext byte p is XORed with byte p%16 of
// AES(IV + p/16), the sum taken as a 128-bit big-endian integer that wraps:
// the standard CTR keystream, so any byte range can be read or written
// without touching the rest of the file.
//
// Directories, the LOCK file and file names are not encrypted (pebble's
// names are numbers and fixed words). Every offset and size pebble sees is a
// plaintext one: the header is hidden from it.
//
// # Why CTR, and what it does not give
//
// CTR keeps offsets and sizes equal between plaintext and ciphertext, which
// pebble relies on (it reads sstable blocks at offsets, syncs file prefixes,
// and records sizes in the MANIFEST), and it runs at memory speed with
// AES-NI. It is not authenticated: a wrong key or a flipped bit yields
// garbage, not an error. Pebble's per-block and per-record checksums catch
// that garbage, and backups add a MAC over their manifest.
//
// CTR's one fatal misuse is encrypting two different plaintexts with the same
// key and IV. Every file therefore gets a fresh random IV when it is
// created, and the IV is never reused for new content: [vfs.FS.ReuseForWrite]
// (pebble recycling an old WAL file) creates a new file instead of
// overwriting the old one. A file opened with OpenReadWrite keeps its IV, so
// WriteAt there must only rewrite bytes with the content they had, which is
// how pebble uses it (a cache of immutable remote files). A hole left by
// WriteAt past the end reads back as keystream, not zeros. Hard links share
// the header, so hard-linked checkpoints read back with the same keyring.
//
// # Crashes
//
// Create writes the header at once; it becomes durable with the file's first
// sync, as pebble's content does. A crash before that can leave a file of
// zero bytes, which reads as empty (pebble then finds an empty WAL or
// MANIFEST, as it would without encryption). A file of 1 to 31 bytes, or
// one without the magic, is reported as [ErrNotEncrypted].
package encfs

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magpiedb/magpie/internal/keys"
)

// Keyring holds the data keys a database may have written files with, by
// id; Current encrypts new files.
type Keyring struct {
	Current uint32
	Keys    map[uint32]keys.Key
}

// New returns a filesystem that stores files on base encrypted with ring's
// keys. The ring is copied: changing it afterwards does not affect the
// returned filesystem.
func New(base vfs.FS, ring Keyring) (vfs.FS, error) {
	if base == nil {
		return nil, errors.New("encfs: no base filesystem given: pass vfs.Default to store files on disk")
	}
	if _, ok := ring.Keys[ring.Current]; !ok {
		return nil, fmt.Errorf("encfs: the keyring's current data key %d is not among its %d keys: add that key to the ring, or set Current to the id of one it holds", ring.Current, len(ring.Keys))
	}
	e := &encFS{
		base:    base,
		current: ring.Current,
		blocks:  make(map[uint32]cipher.Block, len(ring.Keys)),
	}
	for id, k := range ring.Keys {
		aesKey := k.Derive(aesKeyPurpose)
		block, err := aes.NewCipher(aesKey[:])
		clear(aesKey[:])
		if err != nil {
			// aes.NewCipher fails only for a key that is not 16, 24 or 32
			// bytes long.
			return nil, fmt.Errorf("encfs: cannot set up AES for data key %d: %w", id, err)
		}
		e.blocks[id] = block
	}
	return e, nil
}

// encFS implements vfs.FS. Its fields never change after New, so it is safe
// for concurrent use.
type encFS struct {
	base    vfs.FS
	current uint32
	// blocks holds one AES block cipher per data key, expanded once: the
	// key schedule is the costly part of setting up AES, and a cipher.Block
	// is safe for concurrent use.
	blocks map[uint32]cipher.Block
}

var _ vfs.FS = (*encFS)(nil)

// Create creates name afresh, with a new IV, and writes its header.
func (e *encFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := e.base.Create(name, category)
	if err != nil {
		return nil, err
	}
	return e.initNew(name, f)
}

// initNew writes a fresh header to f, an empty file, and wraps it. On
// failure it closes and removes f, so no headerless file is left to be
// mistaken for an empty one.
func (e *encFS) initNew(name string, f vfs.File) (vfs.File, error) {
	h := newHeader(e.current)
	if _, err := f.WriteAt(h.marshal(), 0); err != nil {
		_ = f.Close()
		_ = e.base.Remove(name)
		return nil, fmt.Errorf("cannot write the encryption header of %s: %w", name, err)
	}
	return e.wrap(name, f, h), nil
}

func (e *encFS) wrap(name string, f vfs.File, h header) *file {
	return &file{
		base: f,
		name: name,
		ks:   &keystream{block: e.blocks[h.keyID], iv: h.iv},
	}
}

// Open opens name for reading.
func (e *encFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := e.base.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	ef, err := e.openExisting(name, f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if ef == nil {
		// Zero bytes: a file created just before a crash. It reads as empty.
		return &file{base: f, name: name}, nil
	}
	return ef, nil
}

// openExisting reads f's header and wraps f. It returns nil and no error
// for a file of zero bytes.
func (e *encFS) openExisting(name string, f vfs.File) (*file, error) {
	var buf [HeaderSize]byte
	n, err := f.ReadAt(buf[:], 0)
	if n == 0 && err == io.EOF {
		return nil, nil
	}
	if n < HeaderSize && err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot read the encryption header of %s: %w", name, err)
	}
	h, err := parseHeader(name, buf[:n])
	if err != nil {
		return nil, err
	}
	if _, ok := e.blocks[h.keyID]; !ok {
		return nil, unknownKey(name, h.keyID)
	}
	return e.wrap(name, f, h), nil
}

// OpenReadWrite opens name for reading and writing, creating it if needed.
// An existing encrypted file keeps its key and IV; an empty or new one gets
// a fresh header.
func (e *encFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := e.base.OpenReadWrite(name, category, opts...)
	if err != nil {
		return nil, err
	}
	ef, err := e.openExisting(name, f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if ef == nil {
		return e.initNew(name, f)
	}
	return ef, nil
}

// ReuseForWrite creates newname with a fresh IV and removes oldname; it never
// reuses the old file. Pebble recycles WAL files by overwriting them in
// place, which under CTR would encrypt the new log with the old file's
// keystream: anyone holding both versions (a snapshot, a disk image) could
// XOR them and read the log. Recycling only saves a metadata sync per WAL.
func (e *encFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := e.Create(newname, category)
	if err != nil {
		return nil, err
	}
	// A missing oldname is already what we want; pebble would treat a
	// not-exist error here as its own bug and stop the process.
	if err := e.base.Remove(oldname); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = f.Close()
		_ = e.base.Remove(newname)
		return nil, fmt.Errorf("cannot remove recycled file %s: %w", oldname, err)
	}
	return f, nil
}

// OpenDir opens a directory for syncing; directories are not encrypted.
func (e *encFS) OpenDir(name string) (vfs.File, error) { return e.base.OpenDir(name) }

// Stat describes name, with the size of its plaintext for a regular file.
// It does not read the header: a file shorter than one reports size 0.
func (e *encFS) Stat(name string) (vfs.FileInfo, error) {
	info, err := e.base.Stat(name)
	if err != nil {
		return nil, err
	}
	return plainInfo(info), nil
}

// The rest pass straight through: names, directories and locks are not
// encrypted, and a hard link or rename keeps the header with the data.

func (e *encFS) Link(oldname, newname string) error          { return e.base.Link(oldname, newname) }
func (e *encFS) Remove(name string) error                    { return e.base.Remove(name) }
func (e *encFS) RemoveAll(name string) error                 { return e.base.RemoveAll(name) }
func (e *encFS) Rename(oldname, newname string) error        { return e.base.Rename(oldname, newname) }
func (e *encFS) MkdirAll(dir string, perm os.FileMode) error { return e.base.MkdirAll(dir, perm) }
func (e *encFS) Lock(name string) (io.Closer, error)         { return e.base.Lock(name) }
func (e *encFS) List(dir string) ([]string, error)           { return e.base.List(dir) }
func (e *encFS) PathBase(path string) string                 { return e.base.PathBase(path) }
func (e *encFS) PathJoin(elem ...string) string              { return e.base.PathJoin(elem...) }
func (e *encFS) PathDir(path string) string                  { return e.base.PathDir(path) }
func (e *encFS) Unwrap() vfs.FS                              { return e.base }

func (e *encFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	return e.base.GetDiskUsage(path)
}

// plainInfo hides the header from a regular file's size.
func plainInfo(info vfs.FileInfo) vfs.FileInfo {
	if !info.Mode().IsRegular() {
		return info
	}
	return fileInfo{FileInfo: info, size: max(info.Size()-HeaderSize, 0)}
}

type fileInfo struct {
	vfs.FileInfo
	size int64
}

func (fi fileInfo) Size() int64 { return fi.size }
