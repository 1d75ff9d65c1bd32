// Package dump moves a database to and from the RavenDB export format: it
// joins the store to the smuggler reader and writer. Imports are
// all-or-nothing (the store rolls back anything a failed import wrote);
// both directions stream, so memory does not grow with the data.
package dump

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// BuildVersion is what magpie writes as the export's BuildVersion: RavenDB
// 6.0's build, a version whose readers accept zstd-compressed exports.
const BuildVersion = 60000

// ErrEncryptedExport refuses RavenDB's own encrypted export files.
var ErrEncryptedExport = errors.New("RavenDB encrypted exports are not supported yet")

// CheckFileName refuses file names that RavenDB gives its encrypted exports
// and backups, whose format (libsodium secretstream) magpie does not read.
func CheckFileName(path string) error {
	base := strings.ToLower(filepath.Base(path))
	if strings.Contains(base, ".ravendb-encrypted") {
		return &encryptedExportError{path: path}
	}
	return nil
}

type encryptedExportError struct{ path string }

func (e *encryptedExportError) Error() string {
	return e.path + " is a RavenDB encrypted export, which magpie does not support yet. Export the database from RavenDB without encryption and import that file"
}

func (e *encryptedExportError) Unwrap() error { return ErrEncryptedExport }

// Result says what an import did.
type Result struct {
	store.ImportCounts
	Skipped map[string]int `json:"Skipped,omitempty"`
}

// Import reads an export (gzip, zstd or plain, sniffed) into db. Either all
// of it lands or, on any error, none of it does. The export's
// DatabaseRecord is counted as skipped: importing data into a database
// does not change its configuration (ImportWith does, for restores).
func Import(db *store.DB, r io.Reader) (*Result, error) {
	return ImportWith(db, r, ImportOptions{})
}

// ImportOptions changes what an import takes from the export.
type ImportOptions struct {
	// KeepRecord makes the export's DatabaseRecord the database's: each
	// field of RecordSettings it holds replaces the database's setting of
	// that name (with storage credentials and keys removed), and a field it
	// lacks removes the setting. An export without a DatabaseRecord (an
	// older backup, a RavenDB dump without one) leaves the settings alone.
	// Restores use it, so that a database comes back with its backup
	// tasks.
	KeepRecord bool
	// Documents, when set, counts the documents read, for progress
	// reports from another goroutine.
	Documents *atomic.Int64
}

// ImportWith is Import with options.
func ImportWith(db *store.DB, r io.Reader, opts ImportOptions) (*Result, error) {
	bulk, err := db.BeginImport()
	if err != nil {
		return nil, err
	}
	imp := &importer{bulk: bulk, res: &Result{Skipped: map[string]int{}}, docs: opts.Documents}
	var h smuggler.Handler = imp
	if opts.KeepRecord {
		h = &recordImporter{imp}
	}
	if err := smuggler.Import(r, h); err != nil {
		if aerr := bulk.Abort(); aerr != nil {
			return nil, fmt.Errorf("%w (rolling back the import also failed: %v)", err, aerr)
		}
		return nil, err
	}
	if err := bulk.Commit(); err != nil {
		return nil, err
	}
	imp.res.ImportCounts = bulk.Counts()
	return imp.res, nil
}

type importer struct {
	bulk  *store.Bulk
	res   *Result
	count int64
	docs  *atomic.Int64
}

func (h *importer) BuildVersion(int64) error { return nil }

func (h *importer) Document(d *smuggler.Document) error {
	h.count++
	if h.docs != nil {
		h.docs.Add(1)
	}
	refs := make([]store.AttachmentRef, len(d.Attachments))
	for i, a := range d.Attachments {
		refs[i] = store.AttachmentRef{Name: a.Name, Hash: a.Hash, ContentType: a.ContentType, Size: a.Size}
	}
	err := h.bulk.Document(&store.ImportedDocument{
		ID: d.ID, Collection: d.Collection, ChangeVector: d.ChangeVector, LastModified: d.LastModified,
		Attachments: refs, Body: d.Body,
	})
	if err != nil {
		return fmt.Errorf("document %d (%q): %w", h.count, d.ID, err)
	}
	return nil
}

func (h *importer) Attachment(a *smuggler.Attachment) error {
	return h.bulk.Blob(a.Hash, a.Size, a.Content)
}

func (h *importer) Tombstone(t *smuggler.Tombstone) error {
	return h.bulk.Tombstone(&store.ImportedTombstone{LowerID: t.Key, Collection: t.Collection, ChangeVector: t.ChangeVector})
}

func (h *importer) Index(def []byte) error { return h.bulk.Index(def) }

func (h *importer) Skipped(section string, items int) error {
	if items > 0 {
		h.res.Skipped[section] += items
	}
	return nil
}

// Export writes db in the RavenDB export format to w, compressed with c.
// Documents changed after etag since are exported (0: everything); the
// result's LastEtag is where the next incremental export starts. When the
// database has settings (RecordSettings), the export starts with a
// DatabaseRecord that holds them, as RavenDB's exports do, so that every
// backup file carries the configuration of its time.
func Export(db *store.DB, w io.Writer, c smuggler.Compression, since uint64) (store.WalkResult, error) {
	return ExportWith(db, w, ExportOptions{Compression: c, Since: since})
}

// ExportOptions configures ExportWith.
type ExportOptions struct {
	Compression smuggler.Compression
	// Since exports the changes after this etag (0: everything).
	Since uint64
	// Documents, when set, counts the documents written, for progress
	// reports from another goroutine.
	Documents *atomic.Int64
	// Concurrency is how many goroutines compress (0: the default, 2; 1
	// keeps the whole export on one core).
	Concurrency int
}

// ExportWith is Export with options.
func ExportWith(db *store.DB, w io.Writer, opts ExportOptions) (store.WalkResult, error) {
	since, docs := opts.Since, opts.Documents
	rec, err := record(db)
	if err != nil {
		return store.WalkResult{}, err
	}
	cw, err := smuggler.CompressConcurrency(w, opts.Compression, opts.Concurrency)
	if err != nil {
		return store.WalkResult{}, err
	}
	sw := smuggler.NewWriter(cw, BuildVersion)
	if rec != nil {
		if err := sw.DatabaseRecord(rec); err != nil {
			return store.WalkResult{}, err
		}
	}
	res, err := db.Walk(since, store.Walker{
		Attachment: func(ref store.AttachmentRef, content io.Reader) error {
			return sw.Attachment(ref.Hash, ref.Size, "Attachment", content)
		},
		Document: func(d *store.Document) error {
			if docs != nil {
				docs.Add(1)
			}
			return sw.Document(d.Body)
		},
		Tombstone: func(t *store.Tombstone) error {
			return sw.Tombstone(&smuggler.Tombstone{
				Key: t.LowerID, Type: "Document", Collection: t.Collection, Flags: "None",
				ChangeVector: t.ChangeVector, DeletedEtag: int64(t.DeletedEtag), Etag: int64(t.Etag), LastModified: t.LastModified,
			})
		},
		Index: func(def []byte) error { return sw.Index(def) },
	})
	if err != nil {
		return res, err
	}
	if err := sw.Close(); err != nil {
		return res, err
	}
	return res, cw.Close()
}
