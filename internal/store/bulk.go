package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/magpiedb/magpie/internal/atomicfile"
)

// Imports are all-or-nothing. Before the first write, the database is
// checkpointed into import-rollback/ (hard links: cheap and constant in
// time). The import then writes in large batches. Commit removes the
// checkpoint; a failure, or a crash found when the database next opens,
// puts the checkpoint back in place of the half-written store. So a
// database shows either everything an import read or nothing of it.
const (
	rollbackDir     = "import-rollback"
	rollbackTmpDir  = "import-rollback.tmp"
	rollbackDiscard = "import-rollback.discard"

	bulkBatchBytes = 8 << 20
)

// recoverImport runs before a database's store opens: an import-rollback
// folder means an import never committed, so its checkpoint replaces the
// store.
func recoverImport(dir string) error {
	leftovers := []string{rollbackTmpDir, rollbackDiscard, ingestDir}
	// Checkpoints of snapshots that were cut short pin old tables with
	// their hard links; no one else can be using them (the data dir is
	// locked).
	if cps, err := filepath.Glob(filepath.Join(dir, "checkpoint-*")); err == nil {
		for _, cp := range cps {
			leftovers = append(leftovers, filepath.Base(cp))
		}
	}
	for _, leftover := range leftovers {
		if err := os.RemoveAll(filepath.Join(dir, leftover)); err != nil {
			return fmt.Errorf("cannot remove leftover %s: %w", leftover, err)
		}
	}
	rb := filepath.Join(dir, rollbackDir)
	if _, err := os.Stat(rb); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	store := filepath.Join(dir, "db")
	if err := os.RemoveAll(store); err != nil {
		return fmt.Errorf("cannot roll back an interrupted import: %w", err)
	}
	if err := os.Rename(rb, store); err != nil {
		return fmt.Errorf("cannot roll back an interrupted import: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// ImportedDocument is a document as an export file holds it: its metadata
// already complete, Body strict JSON.
type ImportedDocument struct {
	ID, Collection, ChangeVector, LastModified string
	Attachments                                []AttachmentRef
	Body                                       []byte
}

// ImportedTombstone is a deletion carried by an export or incremental backup.
type ImportedTombstone struct {
	LowerID, Collection, ChangeVector string
}

// ImportCounts says what an import wrote.
type ImportCounts struct {
	Documents   int64 `json:"Documents"`
	Tombstones  int64 `json:"Tombstones"`
	Attachments int64 `json:"Attachments"`
	Indexes     int64 `json:"Indexes"`
}

// Bulk is an import in progress. It holds the database's write lock from
// BeginImport until Commit or Abort.
type Bulk struct {
	db      *DB
	b       *pebble.Batch
	created map[string]bool
	counts  ImportCounts
	done    bool
	// fresh is set when the database held no document and no tombstone
	// as the import began; then only IDs the filter has seen need a lookup.
	fresh *idFilter
	// ing, while set, takes the document and etag records of a fresh
	// import whose documents come in key order (ingest.go).
	ing *ingester
}

// BeginImport starts an all-or-nothing import.
func (db *DB) BeginImport() (*Bulk, error) {
	db.mu.Lock()
	tmp := filepath.Join(db.dir, rollbackTmpDir)
	if err := os.RemoveAll(tmp); err != nil {
		db.mu.Unlock()
		return nil, err
	}
	if err := db.pdb.Checkpoint(tmp, pebble.WithFlushedWAL()); err != nil {
		os.RemoveAll(tmp)
		db.mu.Unlock()
		return nil, fmt.Errorf("cannot prepare the import's rollback point: %w", err)
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		os.RemoveAll(tmp)
		db.mu.Unlock()
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(db.dir, rollbackDir)); err != nil {
		os.RemoveAll(tmp)
		db.mu.Unlock()
		return nil, fmt.Errorf("cannot prepare the import's rollback point: %w", err)
	}
	if err := atomicfile.SyncDir(db.dir); err != nil {
		db.mu.Unlock()
		return nil, err
	}
	bk := &Bulk{db: db, b: db.pdb.NewIndexedBatch(), created: map[string]bool{}}
	if db.state.docs == 0 && db.state.tombstones == 0 {
		bk.fresh = newIDFilter()
		// Without a place for its tables the import simply takes the
		// batch path.
		bk.ing, _ = newIngester(db)
	}
	return bk, nil
}

// stopIngest adds what the ingester holds to the store and sends every
// later write through batches.
func (bk *Bulk) stopIngest() error {
	if bk.ing == nil {
		return nil
	}
	in := bk.ing
	bk.ing = nil
	return in.ingest()
}

// Counts reports what the import has written so far.
func (bk *Bulk) Counts() ImportCounts { return bk.counts }

func (bk *Bulk) flushIfFull() error {
	if bk.b.Len() < bulkBatchBytes {
		return nil
	}
	return bk.flush(pebble.NoSync)
}

func (bk *Bulk) flush(opts *pebble.WriteOptions) error {
	bk.db.writeCounters(bk.b)
	err := bk.b.Commit(opts)
	bk.b.Close()
	bk.b = bk.db.pdb.NewIndexedBatch()
	return err
}

// Document imports one document, replacing a document with the same ID.
// Its attachments' content must have been given to Blob before.
func (bk *Bulk) Document(in *ImportedDocument) error {
	db := bk.db
	if err := ValidateID(in.ID); err != nil {
		return err
	}
	if len(in.Body) > MaxDocumentBytes {
		return errorf(ErrInvalidInput, "Split the document; the limit is 64 MiB", "document %q is %d bytes", in.ID, len(in.Body))
	}
	// Nesting needs no check here: imports come through the export reader,
	// which refuses documents nested deeper than MaxDepth.
	collection := in.Collection
	if collection == "" {
		collection = EmptyCollection
	}
	lower := LowerID(in.ID)
	dk := docKey(lower)
	// A document whose key is greater than every key ingested so far is
	// new (the database was empty), so it needs no lookup.
	ingest := bk.ing != nil && bk.ing.fits(dk)
	if bk.ing != nil && !ingest {
		if err := bk.stopIngest(); err != nil {
			return err
		}
	}
	var old *Document
	if bk.fresh == nil || bk.fresh.add(lower) && !ingest {
		var err error
		if old, err = db.readDoc(bk.b, lower); err != nil {
			return err
		}
	}
	// The new attachments take their references before the old ones are
	// released, so content that both share is never dropped in between.
	names := map[string]bool{}
	for _, a := range in.Attachments {
		if names[a.Name] {
			return errorf(ErrInvalidInput, "Fix the document in the input", "document %q lists attachment %q twice", in.ID, a.Name)
		}
		names[a.Name] = true
		rec, ok, err := db.readBlob(bk.b, nil, a.Hash)
		if err != nil {
			return err
		}
		if !ok {
			return errorf(ErrInvalidInput, "Export the source again with attachments included",
				"document %q lists attachment %q (hash %s) but the input holds no content with that hash", in.ID, a.Name, a.Hash)
		}
		if rec.size != a.Size {
			return errorf(ErrInvalidInput, "The input is damaged; export it again",
				"document %q lists attachment %q with size %d, but its content has %d bytes", in.ID, a.Name, a.Size, rec.size)
		}
		rec.refs++
		bk.b.Set(hashKey(a.Hash), encodeBlob(rec), nil)
	}
	if old != nil {
		if err := db.removeAttachments(bk.b, bk.b, lower); err != nil {
			return err
		}
		bk.b.Delete(etagKey(old.Etag), nil)
		db.state.docs--
		db.countCollection(old.Collection, -1)
	}
	for _, a := range in.Attachments {
		bk.b.Set(attachmentKey(lower, a.Name), encodeAttachment(a), nil)
		db.state.attachments++
		bk.counts.Attachments++
	}
	etag := db.nextEtag()
	d := &Document{ID: in.ID, Collection: collection, Etag: etag, ChangeVector: in.ChangeVector, LastModified: in.LastModified, Attachments: len(in.Attachments), Body: in.Body}
	var err error
	// Complete what the export left out, and drop an @export-type (it
	// marks items of the export stream, never a stored document); complete
	// documents keep their bytes as they were.
	if d.ChangeVector == "" || d.LastModified == "" || in.Collection == "" || bytes.Contains(in.Body, []byte(`"@export-type"`)) {
		if d.ChangeVector == "" {
			d.ChangeVector = db.localChangeVector(etag)
		}
		if d.LastModified == "" {
			d.LastModified = nowString()
		}
		d.Body, err = renderDocument(in.Body, metadataFields{ID: d.ID, Collection: collection, ChangeVector: d.ChangeVector, LastModified: d.LastModified, Attachments: in.Attachments})
		if err != nil {
			return errorf(ErrInvalidInput, "Fix the document in the input", "document %q is not valid: %v", in.ID, err)
		}
	}
	if ingest {
		// writeDoc for a new document in a database without tombstones.
		db.state.docs++
		db.countCollection(d.Collection, 1)
		ek := etagKey(d.Etag)
		if !bk.ing.fits(ek) {
			return fmt.Errorf("etag %d of document %q is not above the last one written", d.Etag, d.ID)
		}
		if err := bk.ing.add(dk, encodeDoc(d)); err != nil {
			return err
		}
		if err := bk.ing.add(ek, etagValue(kindDocument, lower)); err != nil {
			return err
		}
	} else if err := db.writeDoc(bk.b, bk.b, d, nil); err != nil {
		return err
	}
	bk.counts.Documents++
	return bk.flushIfFull()
}

// Blob imports attachment content announced with its hash and size. Content
// already stored is skipped.
func (bk *Bulk) Blob(hash string, size int64, content io.Reader) error {
	db := bk.db
	if _, ok, err := db.readBlob(bk.b, nil, hash); err != nil {
		return err
	} else if ok {
		_, err := io.Copy(io.Discard, content)
		return err
	}
	id := db.allocBlob()
	_, n, err := db.writeBlob(id, content, size)
	if err != nil {
		return err
	}
	if n != size {
		db.discardBlob(id)
		return errorf(ErrInvalidInput, "The input is truncated or damaged; export it again", "attachment %s announces %d bytes but has %d", hash, size, n)
	}
	// The blob is filed under the hash the export announced: that is the
	// name documents refer to it by.
	if err := db.recordBlob(bk.b, id, hash, size, false); err != nil {
		return err
	}
	bk.created[hash] = true
	return bk.flushIfFull()
}

// Tombstone imports a deletion: the document, if present, is deleted;
// otherwise the tombstone is recorded so that later exports carry it.
func (bk *Bulk) Tombstone(t *ImportedTombstone) error {
	db := bk.db
	if err := ValidateID(t.LowerID); err != nil {
		return errorf(ErrInvalidInput, "Fix the tombstone in the input", "a tombstone's key is not a valid document ID: %v", err)
	}
	lower := LowerID(t.LowerID)
	// A deletion looks documents up: what the ingester holds must be in
	// the store first.
	if err := bk.stopIngest(); err != nil {
		return err
	}
	old, err := db.readDoc(bk.b, lower)
	if err != nil {
		return err
	}
	if old != nil {
		if err := db.deleteDoc(bk.b, bk.b, old, t.ChangeVector); err != nil {
			return err
		}
	} else {
		prev, err := db.readTombstone(bk.b, lower)
		if err != nil {
			return err
		}
		if prev != nil {
			bk.b.Delete(etagKey(prev.Etag), nil)
		} else {
			db.state.tombstones++
		}
		etag := db.nextEtag()
		cv := t.ChangeVector
		if cv == "" {
			cv = db.localChangeVector(etag)
		}
		ts := &Tombstone{LowerID: lower, Collection: t.Collection, ChangeVector: cv, LastModified: nowString(), Etag: etag}
		bk.b.Set(tombstoneKey(lower), encodeTombstone(ts), nil)
		bk.b.Set(etagKey(etag), etagValue(kindTombstone, lower), nil)
	}
	bk.counts.Tombstones++
	return bk.flushIfFull()
}

// Index imports an index definition, kept as opaque JSON and keyed by its
// name.
func (bk *Bulk) Index(def []byte) error {
	name, err := indexName(def)
	if err != nil {
		return err
	}
	bk.b.Set(indexKey(name), append([]byte(nil), def...), nil)
	bk.counts.Indexes++
	return nil
}

func indexName(def []byte) (string, error) {
	var v struct {
		Name            string
		IndexDefinition struct{ Name string }
	}
	if err := json.Unmarshal(def, &v); err != nil {
		return "", errorf(ErrInvalidInput, "Fix the index definition in the input", "an index definition is not a JSON object: %v", err)
	}
	if v.IndexDefinition.Name != "" {
		return v.IndexDefinition.Name, nil
	}
	if v.Name != "" {
		return v.Name, nil
	}
	return "", errorf(ErrInvalidInput, "Fix the index definition in the input", "an index definition has no name")
}

// Commit makes the import durable and drops its rollback point.
func (bk *Bulk) Commit() error {
	if bk.done {
		return errors.New("import already finished")
	}
	db := bk.db
	for hash := range bk.created {
		rec, ok, err := db.readBlob(bk.b, nil, hash)
		if err != nil {
			return bk.fail(err)
		}
		if ok && rec.refs == 0 {
			// Content no document referenced: drop it.
			bk.b.Delete(hashKey(hash), nil)
			bk.b.DeleteRange(blobStart(rec.id), blobEnd(rec.id), nil)
		}
	}
	if err := bk.stopIngest(); err != nil {
		return bk.fail(err)
	}
	if err := bk.flush(pebble.Sync); err != nil {
		return bk.fail(err)
	}
	bk.done = true
	bk.b.Close()
	defer db.mu.Unlock()
	discard := filepath.Join(db.dir, rollbackDiscard)
	if err := os.Rename(filepath.Join(db.dir, rollbackDir), discard); err != nil {
		return fmt.Errorf("the import is complete but its rollback point could not be removed: %w", err)
	}
	if err := atomicfile.SyncDir(db.dir); err != nil {
		return err
	}
	return os.RemoveAll(discard)
}

func (bk *Bulk) fail(err error) error {
	if aerr := bk.Abort(); aerr != nil {
		return fmt.Errorf("%w (and rolling back failed: %v)", err, aerr)
	}
	return err
}

// Abort undoes everything the import wrote.
func (bk *Bulk) Abort() error {
	if bk.done {
		return nil
	}
	bk.done = true
	db := bk.db
	defer db.mu.Unlock()
	if bk.ing != nil {
		bk.ing.abort()
		bk.ing = nil
	}
	bk.b.Close()
	if err := db.pdb.Close(); err != nil {
		db.pdb = nil
		return fmt.Errorf("cannot close the store to roll back the import: %w", err)
	}
	db.pdb = nil
	if err := recoverImport(db.dir); err != nil {
		return err
	}
	pdb, popts, err := openPebble(filepath.Join(db.dir, "db"), db.ring, db.name, false, db.tune)
	if err != nil {
		return err
	}
	db.pdb, db.popts = pdb, popts
	return db.load()
}

// idFilter is a fixed-size Bloom filter of the IDs an import has written.
// An import into an empty database needs to look an ID up only when the
// filter says the import may have written it already (a duplicate in the
// input): that turns a million existence checks into a handful. Its size
// is fixed (4 MiB), so memory does not grow with the input; past about ten
// million IDs false positives rise and lookups come back gradually.
type idFilter struct {
	seed maphash.Seed
	bits []uint64
}

const (
	idFilterBits   = 32 << 20
	idFilterHashes = 7
)

func newIDFilter() *idFilter {
	return &idFilter{seed: maphash.MakeSeed(), bits: make([]uint64, idFilterBits/64)}
}

func (f *idFilter) positions(id string) (uint64, uint64) {
	h := maphash.String(f.seed, id)
	return h, h>>33 | h<<31 | 1
}

// add records id and reports whether it may have been added before.
func (f *idFilter) add(id string) (maybeSeen bool) {
	h1, h2 := f.positions(id)
	maybeSeen = true
	for i := uint64(0); i < idFilterHashes; i++ {
		bit := (h1 + i*h2) % idFilterBits
		w, m := bit/64, uint64(1)<<(bit%64)
		if f.bits[w]&m == 0 {
			maybeSeen = false
			f.bits[w] |= m
		}
	}
	return maybeSeen
}
