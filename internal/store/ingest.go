package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// An import into a new database whose documents arrive in key order (a
// restore of magpie's own full backup: it walks documents in key order)
// does not need pebble's write path at all. The ingester writes the
// document and etag records straight into sorted tables, one run of tables
// per key prefix, and ingests them at the end: no WAL, no memtable, no
// flush, no compaction, and the tables land in the bottom level.
//
// It serves only while that holds: the first key that is not greater than
// the last one of its prefix (documents out of order, or an ID seen
// twice), and the first tombstone (whose handling reads documents), make
// the import ingest what it has and go on through batches.
//
// The tables are written through the database's file system, so they are
// encrypted like every other file, into ingestDir beside the store; the
// import's rollback point covers them (recoverImport removes the folder).
const (
	ingestDir = "import-ingest"
	// ingestTableBytes starts a new table of a prefix beyond this size.
	ingestTableBytes = 256 << 20
)

type ingester struct {
	db   *DB
	dir  string
	last map[byte][]byte // the last key added, by prefix
	// The tables are built (encoded, compressed, encrypted, written) by
	// a goroutine of their own, so that an import parses on one core
	// while its tables are written on the other.
	pending []kv
	ch      chan []kv
	result  chan error
	closed  bool
	w       tableWriter
}

type kv struct{ key, value []byte }

// ingestChunk is how many records go to the table writer at once.
const ingestChunk = 256

// tableWriter is the goroutine's side: the tables being written.
type tableWriter struct {
	db     *DB
	dir    string
	tables map[byte]*ingestTable // the table being written, by prefix
	done   []string              // finished tables, ready to ingest
	seq    int
}

type ingestTable struct {
	w    *sstable.Writer
	path string
}

func newIngester(db *DB) (*ingester, error) {
	dir := filepath.Join(db.dir, ingestDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	in := &ingester{db: db, dir: dir, last: map[byte][]byte{}, ch: make(chan []kv, 8), result: make(chan error, 1),
		w: tableWriter{db: db, dir: dir, tables: map[byte]*ingestTable{}}}
	go in.w.run(in.ch, in.result)
	return in, nil
}

// fits reports whether key can be added: it is greater than every key
// added with its prefix so far.
func (in *ingester) fits(key []byte) bool {
	last, ok := in.last[key[0]]
	return !ok || bytes.Compare(key, last) > 0
}

// add queues key and value (which the ingester now owns); the caller
// checked fits.
func (in *ingester) add(key, value []byte) error {
	in.last[key[0]] = append(in.last[key[0]][:0], key...)
	in.pending = append(in.pending, kv{key, value})
	if len(in.pending) >= ingestChunk {
		in.ch <- in.pending
		in.pending = make([]kv, 0, ingestChunk)
	}
	return nil
}

// finish waits for the table writer and returns its error.
func (in *ingester) finish() error {
	if in.closed {
		return errors.New("the import's table writer already finished")
	}
	in.closed = true
	if len(in.pending) > 0 {
		in.ch <- in.pending
		in.pending = nil
	}
	close(in.ch)
	return <-in.result
}

// run writes what arrives on ch; after an error it only drains ch.
func (w *tableWriter) run(ch chan []kv, result chan error) {
	var err error
	for chunk := range ch {
		for _, r := range chunk {
			if err == nil {
				err = w.add(r.key, r.value)
			}
		}
	}
	if err == nil {
		for p := range w.tables {
			if err = w.finishTable(p); err != nil {
				break
			}
		}
	}
	result <- err
}

func (w *tableWriter) add(key, value []byte) error {
	t := w.tables[key[0]]
	if t != nil && t.w.Raw().EstimatedSize() >= ingestTableBytes {
		// Tables of one prefix follow each other in key order, so they
		// never overlap, as ingestion requires.
		if err := w.finishTable(key[0]); err != nil {
			return err
		}
		t = nil
	}
	if t == nil {
		var err error
		if t, err = w.newTable(); err != nil {
			return err
		}
		w.tables[key[0]] = t
	}
	return t.w.Set(key, value)
}

func (w *tableWriter) newTable() (*ingestTable, error) {
	opts := w.db.popts
	w.seq++
	path := filepath.Join(w.dir, fmt.Sprintf("%06d.sst", w.seq))
	f, err := opts.FS.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	wo := opts.MakeWriterOptions(len(opts.Levels)-1, w.db.pdb.FormatMajorVersion().MaxTableFormat())
	return &ingestTable{w: sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo), path: path}, nil
}

func (w *tableWriter) finishTable(prefix byte) error {
	t := w.tables[prefix]
	delete(w.tables, prefix)
	if err := t.w.Close(); err != nil { // Close syncs the file
		return err
	}
	w.done = append(w.done, t.path)
	return nil
}

// ingest finishes the tables and adds them to the store.
func (in *ingester) ingest() error {
	if err := in.finish(); err != nil {
		in.abort()
		return fmt.Errorf("cannot write the imported tables: %w", err)
	}
	if len(in.w.done) > 0 {
		if err := in.db.pdb.Ingest(context.Background(), in.w.done); err != nil {
			return fmt.Errorf("cannot add the imported tables to the store: %w", err)
		}
	}
	return os.RemoveAll(in.dir)
}

// abort drops the tables.
func (in *ingester) abort() {
	if !in.closed {
		in.pending = nil
		in.finish()
	}
	for _, t := range in.w.tables {
		t.w.Close()
	}
	os.RemoveAll(in.dir)
}
