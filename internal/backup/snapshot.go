package backup

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// A snapshot is a tar (no compression: the files are sstables, already
// block-compressed, or ciphertext) of:
//
//	snapshot.json   format, whether the database is encrypted, last etag (clear)
//	record.json     the database record (unencrypted databases), or
//	record.sealed   the record sealed with the database's secret key
//	keys.json       the data keys sealed with the secret key (encrypted only)
//	db/NAME         every file of the pebble checkpoint, byte for byte
const (
	SnapshotInfoName   = "snapshot.json"
	RecordName         = "record.json"
	SealedRecordName   = "record.sealed"
	snapshotDBPrefix   = "db/"
	sealedRecordAD     = "magpie snapshot record v1"
	snapshotInfoFormat = 1
)

// SnapshotInfo is snapshot.json.
type SnapshotInfo struct {
	Format    int    `json:"format"`
	Encrypted bool   `json:"encrypted"`
	LastEtag  uint64 `json:"lastEtag"`
}

// SealRecord seals a snapshot record with the database's secret key.
func SealRecord(k keys.Key, rec []byte) []byte {
	return keys.Seal(k, rec, []byte(sealedRecordAD))
}

// OpenRecord opens a sealed snapshot record.
func OpenRecord(k keys.Key, sealed []byte) ([]byte, error) {
	return keys.Open(k, sealed, []byte(sealedRecordAD))
}

func writeSnapshot(db *store.DB, w io.Writer, entry *FileEntry) error {
	cp, err := db.Checkpoint()
	if err != nil {
		return err
	}
	defer cp.Close()
	entry.ToEtag = cp.LastEtag
	entry.Documents = cp.Stats.CountOfDocuments
	entry.Tombstones = cp.Stats.CountOfTombstones
	entry.Attachments = cp.Stats.CountOfAttachments

	tw := tar.NewWriter(w)
	mtime := time.Now().UTC().Truncate(time.Second)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	info, _ := json.Marshal(SnapshotInfo{Format: snapshotInfoFormat, Encrypted: cp.Record.Encrypted, LastEtag: cp.LastEtag})
	if err := add(SnapshotInfoName, info); err != nil {
		return err
	}
	rec := store.MarshalSnapshotRecord(cp.Record)
	if k, ok := db.SecretKey(); ok {
		if err := add(SealedRecordName, SealRecord(k, rec)); err != nil {
			return err
		}
		ring, err := os.ReadFile(filepath.Join(cp.Dir, store.KeyRingFile))
		if err != nil {
			return err
		}
		if err := add(store.KeyRingFile, ring); err != nil {
			return err
		}
	} else if err := add(RecordName, rec); err != nil {
		return err
	}
	dbDir := filepath.Join(cp.Dir, "db")
	entries, err := os.ReadDir(dbDir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "LOCK" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if err := addFile(tw, filepath.Join(dbDir, name), snapshotDBPrefix+name, mtime); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, path, name string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return err
	}
	if n != st.Size() {
		return fmt.Errorf("checkpoint file %s changed size while it was read", name)
	}
	return nil
}
