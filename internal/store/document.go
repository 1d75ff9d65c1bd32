package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// EmptyCollection is the collection of documents whose metadata names none,
// as in RavenDB.
const EmptyCollection = "@empty"

// TimeLayout is RavenDB's date format: UTC with seven fractional digits
// (RavenDB clients cannot parse a date without the fraction).
const TimeLayout = "2006-01-02T15:04:05.0000000Z"

// MaxDocumentBytes bounds one document body.
const MaxDocumentBytes = 64 << 20

// Document is a stored document. Body is the complete document as strict
// JSON, its @metadata holding the current @id, @collection, @change-vector
// and @last-modified.
type Document struct {
	ID           string
	Collection   string
	ChangeVector string
	LastModified string
	Etag         uint64
	Attachments  int
	Body         []byte
}

// AttachmentRef is how a document's @metadata.@attachments lists an
// attachment (RavenDB's field names).
type AttachmentRef struct {
	Name        string `json:"Name"`
	Hash        string `json:"Hash"`
	ContentType string `json:"ContentType"`
	Size        int64  `json:"Size"`
}

// Tombstone records a deleted document so that incremental backups carry
// the deletion.
type Tombstone struct {
	LowerID      string
	Collection   string
	ChangeVector string
	LastModified string
	Etag         uint64
	DeletedEtag  uint64
}

const docRecordVersion = 1

func encodeDoc(d *Document) []byte {
	w := recordWriter{b: make([]byte, 0, len(d.Body)+len(d.ID)+len(d.Collection)+len(d.ChangeVector)+len(d.LastModified)+16)}
	w.uvarint(docRecordVersion)
	w.uvarint(d.Etag)
	w.str(d.ID)
	w.str(d.Collection)
	w.str(d.ChangeVector)
	w.str(d.LastModified)
	w.uvarint(uint64(d.Attachments))
	return append(w.b, d.Body...)
}

func decodeDoc(v []byte) (*Document, error) {
	r := recordReader{b: v}
	if r.uvarint() != docRecordVersion {
		return nil, errCorruptRecord
	}
	d := &Document{}
	d.Etag = r.uvarint()
	d.ID = r.str()
	d.Collection = r.str()
	d.ChangeVector = r.str()
	d.LastModified = r.str()
	d.Attachments = int(r.uvarint())
	if r.err != nil {
		return nil, r.err
	}
	d.Body = append([]byte(nil), r.b...)
	return d, nil
}

func encodeTombstone(t *Tombstone) []byte {
	var w recordWriter
	w.uvarint(1)
	w.uvarint(t.Etag)
	w.uvarint(t.DeletedEtag)
	w.str(t.Collection)
	w.str(t.ChangeVector)
	w.str(t.LastModified)
	return w.b
}

func decodeTombstone(lower string, v []byte) (*Tombstone, error) {
	r := recordReader{b: v}
	if r.uvarint() != 1 {
		return nil, errCorruptRecord
	}
	t := &Tombstone{LowerID: lower}
	t.Etag = r.uvarint()
	t.DeletedEtag = r.uvarint()
	t.Collection = r.str()
	t.ChangeVector = r.str()
	t.LastModified = r.str()
	return t, r.err
}

func etagValue(kind byte, lower string) []byte {
	return append([]byte{kind}, lower...)
}

func getValue(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

func (db *DB) damaged(what string, err error) error {
	return errorf(ErrDatabaseDamaged, "Restore the database from a backup", "database %q: %s is damaged (%v)", db.name, what, err)
}

func (db *DB) readDoc(r pebble.Reader, lower string) (*Document, error) {
	v, err := getValue(r, docKey(lower))
	if err != nil || v == nil {
		return nil, err
	}
	d, err := decodeDoc(v)
	if err != nil {
		return nil, db.damaged(fmt.Sprintf("document %q", lower), err)
	}
	return d, nil
}

func (db *DB) readTombstone(r pebble.Reader, lower string) (*Tombstone, error) {
	v, err := getValue(r, tombstoneKey(lower))
	if err != nil || v == nil {
		return nil, err
	}
	t, err := decodeTombstone(lower, v)
	if err != nil {
		return nil, db.damaged(fmt.Sprintf("tombstone %q", lower), err)
	}
	return t, nil
}

// notFound is the error for a missing document; the CLI prints it as is.
func (db *DB) notFound(id string) error {
	return errorf(ErrNotFound, "Check the ID (IDs are not case-sensitive)", "document ID not found: %q is not in database %q", id, db.name)
}

// Get returns a document by ID.
func (db *DB) Get(id string) (*Document, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	d, err := db.readDoc(db.pdb, LowerID(id))
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, db.notFound(id)
	}
	return d, nil
}

func nowString() string { return time.Now().UTC().Format(TimeLayout) }

func (db *DB) localChangeVector(etag uint64) string {
	return "A:" + strconv.FormatUint(etag, 10) + "-" + db.dbID
}

// validateBody checks that body is one JSON object within the size limit.
func validateBody(body []byte) error {
	const todo = "Give a JSON object such as {\"Name\": \"x\"}"
	if len(body) > MaxDocumentBytes {
		return errorf(ErrInvalidInput, "Split the document; the limit is 64 MiB", "the document body is %d bytes", len(body))
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errorf(ErrInvalidInput, todo, "the document body is empty")
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return errorf(ErrInvalidInput, todo, "the document body is not valid JSON: %v", err)
	}
	if trimmed[0] != '{' {
		return errorf(ErrInvalidInput, todo, "the document body is JSON but not an object")
	}
	if err := checkDepth(trimmed); err != nil {
		return errorf(ErrInvalidInput, "Flatten the document", "the document body %v", err)
	}
	return nil
}

// Put stores a document, replacing any document with the same ID. The
// body's @metadata.@collection names the collection; the system metadata
// (@id, @change-vector, @last-modified, @attachments) is set by the store.
func (db *DB) Put(id string, body []byte) (*Document, error) {
	var d *Document
	err := db.Update(func(tx *Tx) error {
		var err error
		d, err = tx.Put(id, body)
		return err
	})
	return d, err
}

// Tx is a group of writes that land together, in one synced commit, or
// not at all. Reads inside a Tx see its own writes.
type Tx struct {
	db *DB
	b  *pebble.Batch
}

// Update runs fn with a Tx and commits its writes if fn returns nil. Writes
// to the database wait while fn runs.
func (db *DB) Update(fn func(tx *Tx) error) error {
	db.mu.Lock()
	saved := db.state.clone()
	b := db.pdb.NewIndexedBatch()
	if err := fn(&Tx{db: db, b: b}); err != nil {
		db.state = saved
		db.mu.Unlock()
		b.Close()
		return err
	}
	// The batch is applied under the lock, so changes become visible in
	// etag order (an incremental backup relies on it), but the wait for
	// the WAL's fsync happens outside it: writers that queue up meanwhile
	// share one fsync. Each still returns only once its change is durable;
	// as with any pebble write, others may read it a moment before.
	err := db.apply(b)
	db.mu.Unlock()
	if err == nil {
		if err = b.SyncWait(); err != nil {
			err = fmt.Errorf("database %q: write failed: %w", db.name, err)
		}
	}
	b.Close()
	return err
}

func (c counters) clone() counters {
	out := c
	out.collections = make(map[string]*collectionCount, len(c.collections))
	for k, v := range c.collections {
		cc := *v
		out.collections[k] = &cc
	}
	return out
}

// Put stores a document within tx; see DB.Put.
func (tx *Tx) Put(id string, body []byte) (*Document, error) {
	db := tx.db
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := validateBody(body); err != nil {
		return nil, err
	}
	collection, err := bodyCollection(bytes.TrimSpace(body))
	if err != nil {
		return nil, errorf(ErrInvalidInput, "Give @metadata as an object whose @collection is a string", "the document's metadata is not valid: %v", err)
	}
	if collection == "" {
		collection = EmptyCollection
	}
	lower := LowerID(id)
	old, err := db.readDoc(tx.b, lower)
	if err != nil {
		return nil, err
	}
	var refs []AttachmentRef
	if old != nil {
		if !strings.EqualFold(old.Collection, collection) {
			return nil, errorf(ErrInvalidInput, "Delete the document first, then put it in the new collection",
				"document %q is in collection %q and cannot move to %q", id, old.Collection, collection)
		}
		collection = old.Collection
		if refs, err = db.attachmentRefs(tx.b, lower); err != nil {
			return nil, err
		}
	}
	etag := db.nextEtag()
	d := &Document{ID: id, Collection: collection, Etag: etag, ChangeVector: db.localChangeVector(etag), LastModified: nowString(), Attachments: len(refs)}
	d.Body, err = renderDocument(bytes.TrimSpace(body), metadataFields{ID: id, Collection: collection, ChangeVector: d.ChangeVector, LastModified: d.LastModified, Attachments: refs})
	if err != nil {
		return nil, errorf(ErrInvalidInput, "Give @metadata as a JSON object", "the document's metadata is not valid: %v", err)
	}
	if err := db.writeDoc(tx.b, tx.b, d, old); err != nil {
		return nil, err
	}
	return d, nil
}

// Delete deletes a document within tx; see DB.Delete.
func (tx *Tx) Delete(id string) error {
	db := tx.db
	if err := ValidateID(id); err != nil {
		return err
	}
	old, err := db.readDoc(tx.b, LowerID(id))
	if err != nil {
		return err
	}
	if old == nil {
		return db.notFound(id)
	}
	return db.deleteDoc(tx.b, tx.b, old, "")
}

// writeDoc adds d to b, replacing old (nil when there is none) and any
// tombstone of the same ID, and updates the counters. Called with mu held.
func (db *DB) writeDoc(b *pebble.Batch, r pebble.Reader, d *Document, old *Document) error {
	lower := LowerID(d.ID)
	if old != nil {
		b.Delete(etagKey(old.Etag), nil)
	} else {
		db.state.docs++
		db.countCollection(d.Collection, 1)
		// With no tombstone in the database (an import into a new one,
		// say) the lookup can be skipped.
		if db.state.tombstones > 0 {
			t, err := db.readTombstone(r, lower)
			if err != nil {
				return err
			}
			if t != nil {
				b.Delete(etagKey(t.Etag), nil)
				b.Delete(tombstoneKey(lower), nil)
				db.state.tombstones--
			}
		}
	}
	b.Set(docKey(lower), encodeDoc(d), nil)
	b.Set(etagKey(d.Etag), etagValue(kindDocument, lower), nil)
	return nil
}

// Delete removes a document and its attachments and leaves a tombstone.
func (db *DB) Delete(id string) error {
	return db.Update(func(tx *Tx) error { return tx.Delete(id) })
}

// deleteDoc adds the deletion of old to b: its attachments are released
// and a tombstone with a new etag takes its place. changeVector, when set,
// is the tombstone's (imported deletions keep theirs).
func (db *DB) deleteDoc(b *pebble.Batch, r pebble.Reader, old *Document, changeVector string) error {
	lower := LowerID(old.ID)
	if err := db.removeAttachments(b, r, lower); err != nil {
		return err
	}
	b.Delete(docKey(lower), nil)
	b.Delete(etagKey(old.Etag), nil)
	db.state.docs--
	db.countCollection(old.Collection, -1)
	etag := db.nextEtag()
	if changeVector == "" {
		changeVector = db.localChangeVector(etag)
	}
	t := &Tombstone{LowerID: lower, Collection: old.Collection, ChangeVector: changeVector, LastModified: nowString(), Etag: etag, DeletedEtag: old.Etag}
	b.Set(tombstoneKey(lower), encodeTombstone(t), nil)
	b.Set(etagKey(etag), etagValue(kindTombstone, lower), nil)
	db.state.tombstones++
	return nil
}

// commit writes b with the counters and syncs it. Called with mu held. On
// failure the in-memory counters are reloaded from disk, since the batch
// that changed them did not land.
// apply is commit without the wait for the fsync: the caller must call
// b.SyncWait when it returns nil.
func (db *DB) apply(b *pebble.Batch) error {
	db.writeCounters(b)
	if err := db.pdb.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		if lerr := db.load(); lerr != nil {
			return fmt.Errorf("write failed (%v) and the database state could not be reloaded: %w", err, lerr)
		}
		return fmt.Errorf("database %q: write failed: %w", db.name, err)
	}
	return nil
}

func (db *DB) commit(b *pebble.Batch) error {
	db.writeCounters(b)
	if err := b.Commit(pebble.Sync); err != nil {
		if lerr := db.load(); lerr != nil {
			return fmt.Errorf("write failed (%v) and the database state could not be reloaded: %w", err, lerr)
		}
		return fmt.Errorf("database %q: write failed: %w", db.name, err)
	}
	return nil
}
