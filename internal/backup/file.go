package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/magpiedb/magpie/internal/destination"
)

// teeFile writes one backup file to every destination at once: the same
// bytes (one encrypted stream) go to each, hashed once. Nothing is visible
// in a destination until Commit; a failed run aborts every upload.
type teeFile struct {
	ctx     context.Context
	name    string
	stores  []destination.Store
	writers []destination.Writer
	h       hash.Hash
	size    int64
	// progress, when set, hears the stored bytes so far.
	progress func(int64)
}

func createFile(ctx context.Context, stores []destination.Store, name string) (*teeFile, error) {
	t := &teeFile{ctx: ctx, name: name, stores: stores, h: sha256.New()}
	for _, s := range stores {
		w, err := s.Create(ctx, name)
		if err != nil {
			t.Abort()
			return nil, fmt.Errorf("cannot create backup file %s: %w", Location(s, name), err)
		}
		t.writers = append(t.writers, w)
	}
	return t, nil
}

func (t *teeFile) Write(p []byte) (int, error) {
	for i, w := range t.writers {
		if _, err := w.Write(p); err != nil {
			return 0, fmt.Errorf("cannot write backup file %s: %w", Location(t.stores[i], t.name), err)
		}
	}
	t.h.Write(p)
	t.size += int64(len(p))
	if t.progress != nil {
		t.progress(t.size)
	}
	return len(p), nil
}

// Commit finishes the file in every destination and returns its size and
// SHA-256. If one destination fails, the others' copies are removed again
// (best effort: a copy left behind is not in any manifest, so readers
// ignore it).
func (t *teeFile) Commit() (int64, string, error) {
	for i, w := range t.writers {
		if err := w.Commit(); err != nil {
			for _, rest := range t.writers[i+1:] {
				rest.Abort()
			}
			for _, s := range t.stores[:i] {
				s.Delete(context.WithoutCancel(t.ctx), t.name)
			}
			return 0, "", fmt.Errorf("cannot finish backup file %s: %w", Location(t.stores[i], t.name), err)
		}
	}
	return t.size, hex.EncodeToString(t.h.Sum(nil)), nil
}

// Abort discards the file everywhere; safe after Commit.
func (t *teeFile) Abort() {
	for _, w := range t.writers {
		w.Abort()
	}
}
