package store

import (
	"encoding/binary"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Walker receives a consistent view of a database, in the order of the
// RavenDB export format: documents (each preceded by its attachments),
// then tombstones, then index definitions. Any field may be nil.
type Walker struct {
	// Attachment is called for each attachment of the next document, with
	// its content; content is valid only during the call.
	Attachment func(ref AttachmentRef, content io.Reader) error
	Document   func(d *Document) error
	Tombstone  func(t *Tombstone) error
	Index      func(def []byte) error
}

// WalkResult says what a walk saw.
type WalkResult struct {
	// LastEtag is the database's last etag at the walk's snapshot: the point
	// an incremental backup continues from.
	LastEtag    uint64
	Documents   int64
	Tombstones  int64
	Attachments int64
	Indexes     int64
}

// Walk streams the database as of one snapshot. With since > 0 only the
// documents and tombstones changed after etag since are visited (the
// incremental case); index definitions are always visited.
func (db *DB) Walk(since uint64, w Walker) (WalkResult, error) {
	db.mu.Lock()
	snap := db.pdb.NewSnapshot()
	res := WalkResult{LastEtag: db.state.lastEtag}
	db.mu.Unlock()
	defer snap.Close()

	visitDoc := func(d *Document) error {
		res.Documents++
		if d.Attachments > 0 && w.Attachment != nil {
			refs, err := db.attachmentRefs(snap, LowerID(d.ID))
			if err != nil {
				return err
			}
			res.Attachments += int64(len(refs))
			for _, ref := range refs {
				content, err := db.openBlob(snap, ref.Hash)
				if err != nil {
					return err
				}
				if err := w.Attachment(ref, content); err != nil {
					return err
				}
			}
		}
		if w.Document != nil {
			return w.Document(d)
		}
		return nil
	}

	if since == 0 {
		// A full walk reads documents in key order: sequential reads,
		// much faster than following the etag index.
		if err := scan(snap, []byte{prefixDoc}, func(k, v []byte) error {
			d, err := decodeDoc(v)
			if err != nil {
				return db.damaged("a document record", err)
			}
			return visitDoc(d)
		}); err != nil {
			return res, err
		}
		if err := scan(snap, []byte{prefixTombstone}, func(k, v []byte) error {
			t, err := decodeTombstone(string(k[1:]), v)
			if err != nil {
				return db.damaged("a tombstone record", err)
			}
			res.Tombstones++
			if w.Tombstone != nil {
				return w.Tombstone(t)
			}
			return nil
		}); err != nil {
			return res, err
		}
	} else {
		for _, kind := range []byte{kindDocument, kindTombstone} {
			if err := scanFrom(snap, etagKey(since+1), []byte{prefixEtag + 1}, func(k, v []byte) error {
				if len(v) == 0 || v[0] != kind {
					return nil
				}
				lower := string(v[1:])
				if kind == kindDocument {
					d, err := db.readDoc(snap, lower)
					if err != nil {
						return err
					}
					if d == nil || d.Etag != binary.BigEndian.Uint64(k[1:]) {
						return db.damaged("the etag index", io.ErrUnexpectedEOF)
					}
					return visitDoc(d)
				}
				t, err := db.readTombstone(snap, lower)
				if err != nil {
					return err
				}
				if t == nil {
					return db.damaged("the etag index", io.ErrUnexpectedEOF)
				}
				res.Tombstones++
				if w.Tombstone != nil {
					return w.Tombstone(t)
				}
				return nil
			}); err != nil {
				return res, err
			}
		}
	}
	err := scan(snap, []byte{prefixIndex}, func(k, v []byte) error {
		res.Indexes++
		if w.Index != nil {
			return w.Index(v)
		}
		return nil
	})
	return res, err
}

func scan(r pebble.Reader, prefix []byte, fn func(k, v []byte) error) error {
	return scanFrom(r, prefix, prefixEnd(prefix), fn)
}

func scanFrom(r pebble.Reader, lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}
