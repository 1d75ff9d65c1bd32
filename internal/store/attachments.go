package store

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/crypto/blake2b"
)

// Attachments are stored once per distinct content (RavenDB's model): an
// attachment record per (document, name) points at a blob by hash, and the
// blob record counts its references. Hashes are base64 BLAKE2b-256, as
// RavenDB computes them, so hashes in imported dumps and in magpie's own
// exports agree.
//
// A blob is written in chunks over several batches (so content is never held
// whole in memory) under a fresh blob id, with a pending marker that the
// final batch removes; markers left by a crash are swept when the database
// opens.

type blobRecord struct {
	id   uint64
	size int64
	refs int64
}

func encodeBlob(r blobRecord) []byte {
	var w recordWriter
	w.uvarint(1)
	w.uvarint(r.id)
	w.uvarint(uint64(r.size))
	w.uvarint(uint64(r.refs))
	return w.b
}

func decodeBlob(v []byte) (blobRecord, error) {
	r := recordReader{b: v}
	if r.uvarint() != 1 {
		return blobRecord{}, errCorruptRecord
	}
	b := blobRecord{id: r.uvarint(), size: int64(r.uvarint()), refs: int64(r.uvarint())}
	return b, r.err
}

func encodeAttachment(a AttachmentRef) []byte {
	var w recordWriter
	w.uvarint(1)
	w.str(a.Name)
	w.str(a.Hash)
	w.str(a.ContentType)
	w.uvarint(uint64(a.Size))
	return w.b
}

func decodeAttachment(v []byte) (AttachmentRef, error) {
	r := recordReader{b: v}
	if r.uvarint() != 1 {
		return AttachmentRef{}, errCorruptRecord
	}
	a := AttachmentRef{Name: r.str(), Hash: r.str(), ContentType: r.str(), Size: int64(r.uvarint())}
	return a, r.err
}

// attachmentRefs lists a document's attachments in name order.
func (db *DB) attachmentRefs(r pebble.Reader, lower string) ([]AttachmentRef, error) {
	p := attachmentPrefix(lower)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []AttachmentRef
	for it.First(); it.Valid(); it.Next() {
		a, err := decodeAttachment(it.Value())
		if err != nil {
			return nil, db.damaged("an attachment record", err)
		}
		out = append(out, a)
	}
	return out, it.Error()
}

// Attachments lists the attachments of a document.
func (db *DB) Attachments(id string) ([]AttachmentRef, error) {
	if _, err := db.Get(id); err != nil {
		return nil, err
	}
	return db.attachmentRefs(db.pdb, LowerID(id))
}

// removeAttachments releases every attachment of a document. Called with
// mu held.
func (db *DB) removeAttachments(b *pebble.Batch, r pebble.Reader, lower string) error {
	refs, err := db.attachmentRefs(r, lower)
	if err != nil {
		return err
	}
	for _, a := range refs {
		b.Delete(attachmentKey(lower, a.Name), nil)
		if err := db.release(b, r, a.Hash); err != nil {
			return err
		}
		db.state.attachments--
	}
	return nil
}

// release drops one reference to a blob and deletes it with the last one.
func (db *DB) release(b *pebble.Batch, r pebble.Reader, hash string) error {
	rec, ok, err := db.readBlob(b, r, hash)
	if err != nil || !ok {
		return err
	}
	rec.refs--
	if rec.refs <= 0 {
		b.Delete(hashKey(hash), nil)
		b.DeleteRange(blobStart(rec.id), blobEnd(rec.id), nil)
		return nil
	}
	b.Set(hashKey(hash), encodeBlob(rec), nil)
	return nil
}

// readBlob reads a blob record, seeing the batch's own uncommitted writes
// first when the batch is indexed.
func (db *DB) readBlob(b *pebble.Batch, r pebble.Reader, hash string) (blobRecord, bool, error) {
	var v []byte
	var err error
	if b != nil && b.Indexed() {
		v, err = getValue(b, hashKey(hash))
	} else {
		v, err = getValue(r, hashKey(hash))
	}
	if err != nil || v == nil {
		return blobRecord{}, false, err
	}
	rec, err := decodeBlob(v)
	if err != nil {
		return blobRecord{}, false, db.damaged("a blob record", err)
	}
	return rec, true, nil
}

// writeBlob streams content into chunks under a new blob id and returns the
// blob's hash and size. The chunks stay unreferenced (with a pending
// marker) until the caller's final batch records the blob.
// allocBlob reserves a blob id. Called with mu held.
func (db *DB) allocBlob() uint64 {
	db.state.blobSeq++
	return db.state.blobSeq
}

func (db *DB) writeBlob(id uint64, content io.Reader, limit int64) (hash string, size int64, err error) {
	if err := db.pdb.Set(pendingKey(id), nil, pebble.NoSync); err != nil {
		return "", 0, err
	}
	h, _ := blake2b.New256(nil)
	buf := make([]byte, blobChunkSize)
	b := db.pdb.NewBatch()
	defer func() { b.Close() }()
	for chunk := uint32(0); ; chunk++ {
		n, rerr := io.ReadFull(content, buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if limit >= 0 && size > limit {
				db.discardBlob(id)
				return "", 0, fmt.Errorf("the attachment has more bytes than its declared size %d", limit)
			}
			b.Set(blobKey(id, chunk), buf[:n], nil)
			if b.Len() >= 4<<20 {
				if err := b.Commit(pebble.NoSync); err != nil {
					return "", 0, err
				}
				b.Close()
				b = db.pdb.NewBatch()
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			db.discardBlob(id)
			return "", 0, rerr
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return "", 0, err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), size, nil
}

func (db *DB) discardBlob(id uint64) {
	b := db.pdb.NewBatch()
	b.DeleteRange(blobStart(id), blobEnd(id), nil)
	b.Delete(pendingKey(id), nil)
	b.Commit(pebble.NoSync)
	b.Close()
}

// recordBlob adds to b the record of a freshly written blob under hash, or,
// when that content is already stored, drops the fresh copy. It returns the
// blob record with one more reference when addRef is set.
func (db *DB) recordBlob(b *pebble.Batch, id uint64, hash string, size int64, addRef bool) error {
	b.Delete(pendingKey(id), nil)
	rec, ok, err := db.readBlob(b, db.pdb, hash)
	if err != nil {
		return err
	}
	if ok {
		b.DeleteRange(blobStart(id), blobEnd(id), nil)
	} else {
		rec = blobRecord{id: id, size: size}
	}
	if addRef {
		rec.refs++
	}
	b.Set(hashKey(hash), encodeBlob(rec), nil)
	return nil
}

// cleanPendingBlobs removes the chunks of blobs whose writing was cut short.
func (db *DB) cleanPendingBlobs() error {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixPending}, UpperBound: []byte{prefixPending + 1}})
	if err != nil {
		return err
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	for it.First(); it.Valid(); it.Next() {
		id := binary.BigEndian.Uint64(it.Key()[1:])
		b.DeleteRange(blobStart(id), blobEnd(id), nil)
		b.Delete(pendingKey(id), nil)
	}
	if err := it.Close(); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.Sync)
}

// PutAttachment stores content as attachment name of document id, replacing
// an attachment of that name. The document gets a new etag and its
// @metadata.@attachments is updated, as in RavenDB.
func (db *DB) PutAttachment(id, name, contentType string, content io.Reader) (AttachmentRef, error) {
	if err := ValidateID(id); err != nil {
		return AttachmentRef{}, err
	}
	if name == "" {
		return AttachmentRef{}, errorf(ErrInvalidInput, "Give the attachment a name", "the attachment name is empty")
	}
	if _, err := db.Get(id); err != nil {
		return AttachmentRef{}, err
	}
	db.mu.Lock()
	blobID := db.allocBlob()
	db.mu.Unlock()
	hash, size, err := db.writeBlob(blobID, content, -1)
	if err != nil {
		return AttachmentRef{}, fmt.Errorf("cannot store attachment %q of %q: %w", name, id, err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	b := db.pdb.NewIndexedBatch()
	defer b.Close()
	lower := LowerID(id)
	doc, err := db.readDoc(db.pdb, lower)
	if err != nil {
		return AttachmentRef{}, err
	}
	if doc == nil {
		db.discardBlob(blobID)
		return AttachmentRef{}, db.notFound(id)
	}
	if err := db.recordBlob(b, blobID, hash, size, true); err != nil {
		return AttachmentRef{}, err
	}
	ref := AttachmentRef{Name: name, Hash: hash, ContentType: contentType, Size: size}
	if old, err := getValue(db.pdb, attachmentKey(lower, name)); err != nil {
		return AttachmentRef{}, err
	} else if old != nil {
		prev, err := decodeAttachment(old)
		if err != nil {
			return AttachmentRef{}, db.damaged("an attachment record", err)
		}
		if err := db.release(b, db.pdb, prev.Hash); err != nil {
			return AttachmentRef{}, err
		}
	} else {
		db.state.attachments++
	}
	b.Set(attachmentKey(lower, name), encodeAttachment(ref), nil)
	refs, err := db.attachmentRefs(b, lower)
	if err != nil {
		return AttachmentRef{}, err
	}
	if err := db.rewriteDoc(b, doc, refs); err != nil {
		return AttachmentRef{}, err
	}
	return ref, db.commit(b)
}

// rewriteDoc gives doc a new etag and change vector with refs as its
// attachment list.
func (db *DB) rewriteDoc(b *pebble.Batch, doc *Document, refs []AttachmentRef) error {
	etag := db.nextEtag()
	nd := &Document{ID: doc.ID, Collection: doc.Collection, Etag: etag, ChangeVector: db.localChangeVector(etag), LastModified: nowString(), Attachments: len(refs)}
	var err error
	nd.Body, err = renderDocument(doc.Body, metadataFields{ID: nd.ID, Collection: nd.Collection, ChangeVector: nd.ChangeVector, LastModified: nd.LastModified, Attachments: refs})
	if err != nil {
		return db.damaged(fmt.Sprintf("document %q", doc.ID), err)
	}
	return db.writeDoc(b, db.pdb, nd, doc)
}

// AttachmentReader streams one attachment's content.
type AttachmentReader struct {
	Ref AttachmentRef
	io.Reader
	close func() error
}

// Close releases the reader's snapshot.
func (r *AttachmentReader) Close() error { return r.close() }

// GetAttachment opens an attachment's content for reading.
func (db *DB) GetAttachment(id, name string) (*AttachmentReader, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	snap := db.pdb.NewSnapshot()
	v, err := getValue(snap, attachmentKey(LowerID(id), name))
	if err != nil || v == nil {
		snap.Close()
		if err == nil {
			err = errorf(ErrNotFound, "List the document's attachments in its @metadata.@attachments", "attachment %q of document %q not found", name, id)
		}
		return nil, err
	}
	ref, err := decodeAttachment(v)
	if err != nil {
		snap.Close()
		return nil, db.damaged("an attachment record", err)
	}
	br, err := db.openBlob(snap, ref.Hash)
	if err != nil {
		snap.Close()
		return nil, err
	}
	return &AttachmentReader{Ref: ref, Reader: br, close: snap.Close}, nil
}

// openBlob returns a reader over a blob's chunks as seen by r.
func (db *DB) openBlob(r pebble.Reader, hash string) (io.Reader, error) {
	v, err := getValue(r, hashKey(hash))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, db.damaged("attachment content "+hash, errors.New("missing"))
	}
	rec, err := decodeBlob(v)
	if err != nil {
		return nil, db.damaged("a blob record", err)
	}
	return &blobReader{r: r, id: rec.id, remaining: rec.size}, nil
}

type blobReader struct {
	r         pebble.Reader
	id        uint64
	chunk     uint32
	buf       []byte
	remaining int64
}

func (br *blobReader) Read(p []byte) (int, error) {
	for len(br.buf) == 0 {
		if br.remaining <= 0 {
			return 0, io.EOF
		}
		v, err := getValue(br.r, blobKey(br.id, br.chunk))
		if err != nil {
			return 0, err
		}
		if v == nil {
			return 0, fmt.Errorf("attachment content is missing chunk %d", br.chunk)
		}
		br.chunk++
		br.buf = v
	}
	n := copy(p, br.buf)
	br.buf = br.buf[n:]
	br.remaining -= int64(n)
	return n, nil
}
