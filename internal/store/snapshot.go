package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/magpiedb/magpie/internal/keys"
)

// SecretKey returns an encrypted database's secret key, for backups in
// `database` mode. ok is false for an unencrypted database.
func (db *DB) SecretKey() (k keys.Key, ok bool) {
	if db.ring == nil {
		return keys.Key{}, false
	}
	return db.ring.secret, true
}

// Checkpoint is a consistent, read-only copy of a database's files, made
// with hard links while writes go on. Dir holds db/ (the pebble checkpoint,
// files exactly as on disk: ciphertext for an encrypted database) and, for
// an encrypted database, keys.json (data keys sealed with the secret key).
type Checkpoint struct {
	Dir      string
	Record   SnapshotRecord
	LastEtag uint64
	Stats    Stats
}

// SnapshotRecord is the part of the database record a snapshot carries. It
// holds no key: restoring needs the database's secret key from the operator.
type SnapshotRecord struct {
	Name           string    `json:"name"`
	Encrypted      bool      `json:"encrypted"`
	Created        time.Time `json:"created"`
	KeyFingerprint string    `json:"keyFingerprint,omitempty"`
}

// Checkpoint makes a checkpoint of the database under its own directory.
// The caller must Close it.
func (db *DB) Checkpoint() (*Checkpoint, error) {
	dir, err := os.MkdirTemp(db.dir, "checkpoint-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a checkpoint folder: %w", err)
	}
	c := &Checkpoint{Dir: dir, Record: SnapshotRecord{Name: db.rec.Name, Encrypted: db.rec.Encrypted, Created: db.rec.Created, KeyFingerprint: db.rec.KeyFingerprint}}
	// Holding the write lock while pebble links the files makes the
	// counters below describe exactly the checkpointed state; linking is
	// quick, so writers wait only briefly.
	db.mu.Lock()
	err = db.pdb.Checkpoint(filepath.Join(dir, "db"), pebble.WithFlushedWAL())
	s, snap := db.statsLocked()
	db.mu.Unlock()
	defer snap.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot checkpoint database %q: %w", db.name, err)
	}
	if err := db.countFrom(s, snap); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.Stats = *s
	c.LastEtag = s.LastDocEtag
	if db.ring != nil {
		if err := writeKeyRing(dir, db.ring); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return c, nil
}

// Close removes the checkpoint's files.
func (c *Checkpoint) Close() error { return os.RemoveAll(c.Dir) }

// KeyRingFile is the name of the sealed data keys inside a checkpoint and a
// snapshot.
const KeyRingFile = keyRingName

// InstallOptions says how a snapshot becomes a database.
type InstallOptions struct {
	// Key is the snapshot's database secret key (encrypted snapshots).
	Key *keys.Key
	// NewKey, when set, re-seals the data keys with this key, which then
	// becomes the restored database's secret key.
	NewKey *keys.Key
	// Check runs on the opened database before it is installed.
	Check func(db *DB) error
}

// ErrSnapshotNeedsKey is returned when an encrypted snapshot is installed
// without its key.
var ErrSnapshotNeedsKey = errors.New("snapshot needs its database key")

// InstallSnapshot creates database name from snapshot files: fill writes
// db/ and, for an encrypted database, keys.json into the directory it is
// given. The database is opened and checked before it appears.
func (d *DataDir) InstallSnapshot(name string, encrypted bool, opts InstallOptions, fill func(dir string) error) error {
	if err := ValidateDatabaseName(name); err != nil {
		return err
	}
	if err := d.checkFree(name); err != nil {
		return err
	}
	if encrypted && opts.Key == nil {
		return errorf(ErrSnapshotNeedsKey, "Give the database's secret key with --key-file", "the snapshot is of an encrypted database and no key was given")
	}
	if !encrypted && opts.NewKey != nil {
		return errorf(ErrInvalidInput, "Restore it unencrypted, then export and import it into an encrypted database",
			"a snapshot of an unencrypted database cannot be restored encrypted (its files would have to be rewritten)")
	}
	return d.build(name, func(tmp string) error {
		if err := fill(tmp); err != nil {
			return err
		}
		r := &record{Name: name, Encrypted: encrypted, Created: time.Now().UTC()}
		var ring *keyRing
		if encrypted {
			var err error
			if ring, err = readKeyRing(tmp, *opts.Key); err != nil {
				return err
			}
			if opts.NewKey != nil {
				ring.secret = *opts.NewKey
				if err := writeKeyRing(tmp, ring); err != nil {
					return err
				}
			}
			r.sealSecret(d.master, ring.secret)
		}
		if err := writeRecord(tmp, r); err != nil {
			return err
		}
		db, err := openDB(tmp, r, ring, d.tune)
		if err != nil {
			return err
		}
		// A restored copy is a database of its own: it gets a new id, so
		// its change vectors never collide with the original's.
		if err := db.newIdentity(); err != nil {
			db.Close()
			return err
		}
		if opts.Check != nil {
			if err := opts.Check(db); err != nil {
				db.Close()
				return err
			}
		}
		return db.Close()
	})
}

// MarshalSnapshotRecord encodes a snapshot record.
func MarshalSnapshotRecord(r SnapshotRecord) []byte {
	b, _ := json.Marshal(r)
	return b
}
