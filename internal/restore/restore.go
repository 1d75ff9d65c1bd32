package restore

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/magpiedb/magpie/internal/atomicfile"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// Options configures a restore.
type Options struct {
	// As names the new database; it must not exist.
	As         string
	Decryption *backup.Decryption
	// NewKey makes the restored database encrypted with this key.
	NewKey *keys.Key
	// Context, when set, cancels the restore (nothing is left behind).
	Context context.Context
	// Progress, when set, hears the bytes read of each file as it goes
	// (the count starts again with every file).
	Progress func(read int64)
	// Documents, when set, counts the documents restored as they go.
	Documents *atomic.Int64
}

// Result describes a restored database.
type Result struct {
	Database  string
	ChainDir  string
	Files     []string
	Encrypted bool
	// KeyFingerprint names the restored database's secret key.
	KeyFingerprint string
	// GeneratedKey is set when the restore made a new secret key (the
	// backup came from an encrypted database but carried no usable key for
	// it): the operator must be shown it once.
	GeneratedKey *keys.Key
	Stats        *store.Stats
}

// Restore restores the chain t as a new database. Nothing appears under
// opts.As unless every file was read, decrypted and matched its manifest.
func Restore(d *store.DataDir, t *Target, opts Options) (*Result, error) {
	if opts.Decryption == nil {
		opts.Decryption = &backup.Decryption{}
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if err := store.ValidateDatabaseName(opts.As); err != nil {
		return nil, err
	}
	if err := checkKeys(t, opts.Decryption); err != nil {
		return nil, err
	}
	res := &Result{Database: opts.As, ChainDir: t.ChainDir}
	for _, f := range t.Files {
		res.Files = append(res.Files, f.Name)
	}
	var err error
	switch t.Manifest.Type {
	case backup.Logical:
		err = restoreLogical(d, t, opts, res)
	case backup.Snapshot:
		err = restoreSnapshot(d, t, opts, res)
	default:
		err = fmt.Errorf("%s names backup type %q, which this magpie does not know. Use a matching magpie version", t.ChainDir, t.Manifest.Type)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func restoreLogical(d *store.DataDir, t *Target, opts Options, res *Result) error {
	m := t.Manifest
	create := store.CreateOptions{}
	switch {
	case opts.NewKey != nil:
		create = store.CreateOptions{Encrypted: true, Key: opts.NewKey}
	case m.SourceEncrypted && m.Encryption == backup.ModeDatabase:
		// The key that opened the backup is the database's own key: the
		// restored database keeps it.
		create = store.CreateOptions{Encrypted: true, Key: opts.Decryption.Key}
	case m.SourceEncrypted:
		// The database was encrypted; its restore is too, with a new key
		// since the backup's key is not the database's.
		create = store.CreateOptions{Encrypted: true}
	}
	secret, err := d.CreateDatabaseFrom(opts.As, create, func(db *store.DB) error {
		if err := importFiles(db, t, t.Files, opts); err != nil {
			return err
		}
		st, err := db.Stats()
		res.Stats = st
		return err
	})
	if err != nil {
		return err
	}
	res.Encrypted = create.Encrypted
	if create.Encrypted {
		res.KeyFingerprint = secret.Fingerprint()
		if create.Key == nil {
			res.GeneratedKey = &secret
		}
	}
	return nil
}

// importFiles imports logical files (a full backup and incrementals, or a
// snapshot's incrementals) in chain order.
func importFiles(db *store.DB, t *Target, files []backup.FileEntry, opts Options) error {
	for _, e := range files {
		s, err := openStream(opts.Context, t, e, opts.Decryption)
		if err != nil {
			return err
		}
		if opts.Progress != nil {
			s.progress = opts.Progress
		}
		// The files' DatabaseRecord brings the database's backup tasks
		// back; each file carries the configuration of its time.
		got, ierr := dump.ImportWith(db, s.plain, dump.ImportOptions{KeepRecord: true, Documents: opts.Documents})
		if err := s.finish(ierr); err != nil {
			return err
		}
		// Checksums prove the bytes; the counts prove the stream held
		// what the backup wrote.
		if got.Documents != e.Documents || got.Tombstones != e.Tombstones {
			return fmt.Errorf("backup file %s %w: it holds %d documents and %d tombstones but its manifest says %d and %d. Use another backup",
				s.path, backup.ErrIntegrity, got.Documents, got.Tombstones, e.Documents, e.Tombstones)
		}
	}
	return nil
}

func restoreSnapshot(d *store.DataDir, t *Target, opts Options, res *Result) error {
	m := t.Manifest
	if len(t.Files) == 0 || t.Files[0].Kind != backup.KindSnapshot {
		return fmt.Errorf("the chain in %s does not start with a snapshot. Its manifest is inconsistent; use another backup", t.ChainDir)
	}
	e := t.Files[0]
	install := store.InstallOptions{Key: opts.Decryption.Key, NewKey: opts.NewKey, Check: func(db *store.DB) error {
		st, err := db.Stats()
		if err != nil {
			return err
		}
		if st.CountOfDocuments != e.Documents || st.LastDocEtag != e.ToEtag {
			return fmt.Errorf("the restored snapshot holds %d documents up to etag %d, but its manifest says %d up to etag %d. The backup is inconsistent; use another backup",
				st.CountOfDocuments, st.LastDocEtag, e.Documents, e.ToEtag)
		}
		// The incrementals after the snapshot are logical files.
		if err := importFiles(db, t, t.Files[1:], opts); err != nil {
			return err
		}
		res.Stats, err = db.Stats()
		return err
	}}
	err := d.InstallSnapshot(opts.As, m.SourceEncrypted, install, func(dir string) error {
		s, err := openStream(opts.Context, t, e, opts.Decryption)
		if err != nil {
			return err
		}
		if opts.Progress != nil {
			s.progress = opts.Progress
		}
		_, xerr := readSnapshot(s.plain, opts.Decryption.Key, dir)
		return s.finish(xerr)
	})
	if err != nil {
		return err
	}
	res.Encrypted = m.SourceEncrypted
	if res.Encrypted {
		k := opts.Decryption.Key
		if opts.NewKey != nil {
			k = opts.NewKey
		}
		res.KeyFingerprint = k.Fingerprint()
	}
	return nil
}

// readSnapshot reads a snapshot tar. With dir set it writes the files
// there (db/ and keys.json); otherwise it only reads them. It checks the
// sealed record with key when the snapshot is of an encrypted database.
func readSnapshot(r io.Reader, key *keys.Key, dir string) (*backup.SnapshotInfo, error) {
	tr := tar.NewReader(r)
	var info *backup.SnapshotInfo
	sawRecord := false
	if dir != "" {
		if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
			return nil, err
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the snapshot is not a valid archive: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("the snapshot holds %q, which is not a regular file", h.Name)
		}
		switch {
		case h.Name == backup.SnapshotInfoName:
			var si backup.SnapshotInfo
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&si); err != nil {
				return nil, fmt.Errorf("the snapshot's %s is damaged: %v", h.Name, err)
			}
			info = &si
		case h.Name == backup.SealedRecordName:
			sealed, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return nil, err
			}
			if key == nil {
				return nil, errors.New("the snapshot is of an encrypted database and no key was given. Give the database's secret key with --key-file")
			}
			if _, err := backup.OpenRecord(*key, sealed); err != nil {
				return nil, errors.New("the key does not open the snapshot's sealed record. Give the database's secret key with --key-file")
			}
			sawRecord = true
		case h.Name == backup.RecordName:
			sawRecord = true
		case h.Name == store.KeyRingFile, strings.HasPrefix(h.Name, "db/"):
			base := path.Base(h.Name)
			if h.Name != store.KeyRingFile && (h.Name != "db/"+base || base == "." || base == ".." || strings.Contains(base, "\\")) {
				return nil, fmt.Errorf("the snapshot holds an unexpected path %q", h.Name)
			}
			if dir == "" {
				if _, err := io.Copy(io.Discard, tr); err != nil {
					return nil, err
				}
				continue
			}
			if err := extract(tr, filepath.Join(dir, filepath.FromSlash(h.Name))); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("the snapshot holds an unexpected entry %q", h.Name)
		}
	}
	if info == nil || !sawRecord {
		return nil, errors.New("the snapshot is incomplete: it lacks its record")
	}
	if dir != "" {
		if err := atomicfile.SyncDir(filepath.Join(dir, "db")); err != nil {
			return nil, err
		}
	}
	return info, nil
}

func extract(r io.Reader, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
