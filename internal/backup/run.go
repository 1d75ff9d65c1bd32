package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/magpiedb/magpie/internal/atomicfile"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// Options configures one backup run.
type Options struct {
	// To is the folder that receives the chain folder; created if missing.
	To          string
	Type        Type
	Encryption  Request
	Compression smuggler.Compression
	// Now stamps the chain; zero means the current time.
	Now time.Time
	// Context, when set, cancels the run: the next write fails once it is
	// done, and the run removes what it wrote, as for any failed run.
	Context context.Context
}

// Result describes a finished backup.
type Result struct {
	ChainDir string
	File     string
	Entry    FileEntry
	Manifest *Manifest
}

// Run makes a full backup or snapshot of db in a new chain folder under
// opts.To. The chain is assembled under CHAIN.in-progress and renamed into
// place once its file and manifest are synced, so a chain folder under its
// final name is always complete; a failed run removes what it wrote.
func Run(db *store.DB, opts Options) (*Result, error) {
	if opts.Type == "" {
		opts.Type = Logical
	}
	if opts.Type != Logical && opts.Type != Snapshot {
		return nil, fmt.Errorf("backup type %q is not known: use logical or snapshot", opts.Type)
	}
	dbKey, encrypted := db.SecretKey()
	enc, err := Resolve(opts.Encryption, opts.Type, db.Name(), dbKey, encrypted)
	if err != nil {
		return nil, err
	}
	if opts.To == "" {
		return nil, errors.New("no destination was given. Give a folder with --to DIR")
	}
	if err := os.MkdirAll(opts.To, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the destination folder %s: %w", opts.To, err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	chain := filepath.Join(opts.To, ChainFolder(now, db.Name(), opts.Type))
	building := chain + InProgressSuffix
	if err := os.Mkdir(building, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the chain folder in %s: %w", opts.To, err)
	}
	res, err := runInto(db, building, now, opts, enc, encrypted)
	if err != nil {
		os.RemoveAll(building)
		return nil, err
	}
	if err := atomicfile.SyncDir(building); err != nil {
		os.RemoveAll(building)
		return nil, err
	}
	if err := canceled(opts.Context); err != nil {
		os.RemoveAll(building)
		return nil, err
	}
	if err := os.Rename(building, chain); err != nil {
		os.RemoveAll(building)
		return nil, fmt.Errorf("cannot move the finished chain into place: %w", err)
	}
	if err := atomicfile.SyncDir(opts.To); err != nil {
		return nil, err
	}
	res.ChainDir = chain
	res.File = filepath.Join(chain, res.Entry.Name)
	return res, nil
}

func runInto(db *store.DB, dir string, now time.Time, opts Options, enc *Encryption, encrypted bool) (*Result, error) {
	m := &Manifest{
		Database:        db.Name(),
		Type:            opts.Type,
		Encryption:      enc.Mode,
		KeyFingerprint:  enc.KeyFingerprint(),
		Recipients:      enc.Recipients,
		Compression:     opts.Compression.String(),
		SourceEncrypted: encrypted,
	}
	// The snapshot of an encrypted database is its ciphertext files as
	// they are; only key and recipients modes wrap a snapshot in age.
	wrapped := enc.encrypts() && !(opts.Type == Snapshot && enc.Mode == ModeDatabase)
	kind := KindFull
	if opts.Type == Snapshot {
		kind = KindSnapshot
		m.Compression = "none"
	}
	entry := FileEntry{Name: FileName(now, kind, wrapped), Kind: kind, Created: now}
	fw, err := createFile(filepath.Join(dir, entry.Name))
	if err != nil {
		return nil, err
	}
	defer fw.Abort()
	var sink io.Writer = fw
	if opts.Context != nil {
		sink = &ctxWriter{ctx: opts.Context, w: fw}
	}
	var out io.WriteCloser = nopCloser{sink}
	if wrapped {
		if out, err = enc.wrap(sink); err != nil {
			return nil, err
		}
	}
	if opts.Type == Snapshot {
		err = writeSnapshot(db, out, &entry)
	} else {
		var wr store.WalkResult
		wr, err = dump.Export(db, out, opts.Compression, 0)
		entry.ToEtag, entry.Documents, entry.Tombstones = wr.LastEtag, wr.Documents, wr.Tombstones
		entry.Attachments = wr.Attachments
	}
	if err != nil {
		return nil, fmt.Errorf("backup of %s failed: %w", db.Name(), err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("backup of %s failed: %w", db.Name(), err)
	}
	if err := canceled(opts.Context); err != nil {
		return nil, err
	}
	if entry.Size, entry.SHA256, err = fw.Commit(); err != nil {
		return nil, err
	}
	m.Files = []FileEntry{entry}
	var macKey *keys.Key
	if enc.Mode == ModeKey || enc.Mode == ModeDatabase {
		macKey = &enc.Key
	}
	if err := writeManifest(dir, m, macKey); err != nil {
		return nil, err
	}
	return &Result{Entry: entry, Manifest: m}, nil
}

// ErrCanceled is wrapped by the error of a run whose Context was canceled.
var ErrCanceled = errors.New("the backup was canceled")

// canceled returns ErrCanceled (and the context's cause) once ctx is done.
func canceled(ctx context.Context) error {
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
}

// ctxWriter fails every write once its context is done, which stops the
// export or snapshot writing into it.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := canceled(c.ctx); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
