package store

import (
	"encoding/binary"
	"errors"
)

// The keyspace of a database's pebble store. Every key starts with a one-byte
// prefix naming what it holds:
//
//	d lowerID                      -> document record (etag, id, collection, change vector, last-modified, body)
//	e etag(8, big-endian)          -> kind byte (1 document, 2 tombstone) + lowerID
//	t lowerID                      -> tombstone record
//	a uvarint(len) lowerID name    -> attachment record (name, hash, content type, size)
//	h hash                         -> blob record (blob id, size, reference count)
//	b blobID(8) chunk(4)           -> up to blobChunkSize bytes of attachment content
//	p blobID(8)                    -> present while a blob is being written (crash cleanup)
//	i name                         -> index definition (opaque JSON)
//	c lower(collection)            -> collection count + collection name
//	m name                         -> database metadata (last etag, database id, counters)
//	s name                         -> a setting of the database record (opaque JSON, settings.go)
//
// Invariants: every d and t key has exactly one e entry with its etag, and
// etags only grow, so iterating e in order replays the database's changes;
// that is what logical and incremental backups stream.
const (
	prefixDoc        = 'd'
	prefixEtag       = 'e'
	prefixTombstone  = 't'
	prefixAttachment = 'a'
	prefixHash       = 'h'
	prefixBlob       = 'b'
	prefixPending    = 'p'
	prefixIndex      = 'i'
	prefixCollection = 'c'
	prefixMeta       = 'm'
	prefixSetting    = 's'

	kindDocument  = 1
	kindTombstone = 2

	blobChunkSize = 64 << 10
)

var (
	metaLastEtag    = []byte("mlastEtag")
	metaDatabaseID  = []byte("mdatabaseId")
	metaDocs        = []byte("mdocs")
	metaTombstones  = []byte("mtombstones")
	metaAttachments = []byte("mattachments")
	metaBlobSeq     = []byte("mblobSeq")
)

func docKey(lower string) []byte       { return append([]byte{prefixDoc}, lower...) }
func tombstoneKey(lower string) []byte { return append([]byte{prefixTombstone}, lower...) }
func indexKey(name string) []byte      { return append([]byte{prefixIndex}, name...) }
func settingKey(name string) []byte    { return append([]byte{prefixSetting}, name...) }
func hashKey(hash string) []byte       { return append([]byte{prefixHash}, hash...) }
func collectionKey(lower string) []byte {
	return append([]byte{prefixCollection}, lower...)
}

func etagKey(etag uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEtag
	binary.BigEndian.PutUint64(k[1:], etag)
	return k
}

func attachmentPrefix(lower string) []byte {
	k := []byte{prefixAttachment}
	k = binary.AppendUvarint(k, uint64(len(lower)))
	return append(k, lower...)
}

func attachmentKey(lower, name string) []byte {
	return append(attachmentPrefix(lower), name...)
}

func blobKey(id uint64, chunk uint32) []byte {
	k := make([]byte, 13)
	k[0] = prefixBlob
	binary.BigEndian.PutUint64(k[1:], id)
	binary.BigEndian.PutUint32(k[9:], chunk)
	return k
}

func blobStart(id uint64) []byte { return blobKey(id, 0) }
func blobEnd(id uint64) []byte   { return blobKey(id+1, 0) }

func pendingKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixPending
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// A small append-only binary codec for records: uvarints and
// length-prefixed strings. Records start with a version byte so their
// layout can change without a migration of old data.

var errCorruptRecord = errors.New("corrupt record")

type recordWriter struct{ b []byte }

func (w *recordWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *recordWriter) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }

type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errCorruptRecord
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
