package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"github.com/magpiedb/magpie/internal/atomicfile"
)

// fileWriter writes one backup file as NAME.in-progress, hashing what it
// stores; Commit syncs it and renames it to NAME, Abort removes it. So a
// file under its final name is always complete.
type fileWriter struct {
	f     *os.File
	path  string
	h     hash.Hash
	size  int64
	state int // 0 open, 1 committed, 2 aborted
}

func createFile(path string) (*fileWriter, error) {
	f, err := os.OpenFile(path+InProgressSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot create backup file: %w", err)
	}
	return &fileWriter{f: f, path: path, h: sha256.New()}, nil
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	return n, err
}

// Commit makes the file durable under its final name and returns its size
// and SHA-256.
func (w *fileWriter) Commit() (int64, string, error) {
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return 0, "", fmt.Errorf("cannot sync %s: %w", w.path, err)
	}
	if err := w.f.Close(); err != nil {
		w.Abort()
		return 0, "", fmt.Errorf("cannot write %s: %w", w.path, err)
	}
	if err := os.Rename(w.path+InProgressSuffix, w.path); err != nil {
		w.Abort()
		return 0, "", fmt.Errorf("cannot rename %s into place: %w", w.path, err)
	}
	w.state = 1
	if err := atomicfile.SyncDir(filepath.Dir(w.path)); err != nil {
		return 0, "", err
	}
	return w.size, hex.EncodeToString(w.h.Sum(nil)), nil
}

// Abort removes the partial file. It is safe to call after Commit (it
// does nothing then).
func (w *fileWriter) Abort() {
	if w.state != 0 {
		return
	}
	w.state = 2
	w.f.Close()
	os.Remove(w.path + InProgressSuffix)
}

// writeSmallFile writes a small file atomically (temporary name, sync,
// rename, sync of the folder).
func writeSmallFile(path string, data []byte) error {
	w, err := createFile(path)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	_, _, err = w.Commit()
	return err
}
