package backup

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
)

// ManifestFormat is the version of manifest.json this code writes.
const ManifestFormat = 1

// Manifest describes one chain: its files in order, how they are encrypted
// and their checksums. It never holds a key, only a key's fingerprint.
//
// Integrity: Checksum is the SHA-256 of the manifest (with Checksum and MAC
// empty) and catches accidental damage. For database and key modes MAC is an
// HMAC-SHA256 of the same bytes with a key derived from the backup key, so
// a changed manifest (and through its SHA-256 entries, a changed file) is
// detected even by someone who could rewrite the checksums.
type Manifest struct {
	Format   int    `json:"format"`
	Database string `json:"database"`
	// DatabaseID is the id of the database backed up: an incremental only
	// extends a chain of the same database.
	DatabaseID      string      `json:"databaseId,omitempty"`
	Type            Type        `json:"type"`
	Encryption      Mode        `json:"encryption"`
	KeyFingerprint  string      `json:"keyFingerprint,omitempty"`
	Recipients      []string    `json:"recipients,omitempty"`
	Compression     string      `json:"compression"`
	SourceEncrypted bool        `json:"sourceEncrypted"`
	Files           []FileEntry `json:"files"`
	Checksum        string      `json:"checksum"`
	MAC             string      `json:"mac,omitempty"`
}

// FileEntry describes one backup file of a chain.
type FileEntry struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Created     time.Time `json:"created"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	FromEtag    uint64    `json:"fromEtag"`
	ToEtag      uint64    `json:"toEtag"`
	Documents   int64     `json:"documents"`
	Tombstones  int64     `json:"tombstones"`
	Attachments int64     `json:"attachments"`
	// Compression of a logical file; a snapshot chain's incrementals are
	// compressed although its snapshot is not.
	Compression string `json:"compression,omitempty"`
	// ConfigDigest is dump.ConfigDigest of the database when the file
	// was made: an incremental with no document change is still written
	// when it differs.
	ConfigDigest string `json:"configDigest,omitempty"`
}

// ErrIntegrity is wrapped by every error about damaged or tampered data.
var ErrIntegrity = errors.New("failed its integrity check")

func macKey(k keys.Key) keys.Key { return k.Derive("backup manifest mac") }

// body is the manifest as hashed and MACed: Checksum and MAC empty.
func (m *Manifest) body() []byte {
	c := *m
	c.Checksum, c.MAC = "", ""
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// seal sets Checksum, and MAC when the mode has a key.
func (m *Manifest) seal(key *keys.Key) {
	b := m.body()
	sum := sha256.Sum256(b)
	m.Checksum = hex.EncodeToString(sum[:])
	m.MAC = ""
	if key != nil {
		k := macKey(*key)
		h := hmac.New(sha256.New, k[:])
		h.Write(b)
		m.MAC = hex.EncodeToString(h.Sum(nil))
	}
}

// CheckChecksum verifies the unkeyed checksum.
func (m *Manifest) CheckChecksum(path string) error {
	sum := sha256.Sum256(m.body())
	if hex.EncodeToString(sum[:]) != m.Checksum {
		return fmt.Errorf("%s %w: its checksum does not match its content. The manifest was changed or damaged; use another backup", path, ErrIntegrity)
	}
	return nil
}

// CheckMAC verifies the MAC with the backup key.
func (m *Manifest) CheckMAC(path string, key keys.Key) error {
	want, err := hex.DecodeString(m.MAC)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%s %w: it has no valid MAC. The manifest was changed or damaged; use another backup", path, ErrIntegrity)
	}
	k := macKey(key)
	h := hmac.New(sha256.New, k[:])
	h.Write(m.body())
	if !hmac.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%s %w: its MAC does not match. The manifest was changed or damaged; use another backup", path, ErrIntegrity)
	}
	return nil
}

// Keyed reports whether the chain's files are encrypted with a key (and
// its manifest MACed with it).
func (m *Manifest) Keyed() bool { return m.Encryption == ModeKey || m.Encryption == ModeDatabase }

// ReadManifest reads the manifest of chain folder chain in s and checks
// its checksum and shape.
func ReadManifest(ctx context.Context, s destination.Store, chain string) (*Manifest, error) {
	m, _, err := readManifest(ctx, s, chain)
	return m, err
}

// readError marks a manifest that could not be read at all (the store
// failed), as opposed to one that is missing or damaged: a run must not
// take a network error for a damaged chain.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readManifest is ReadManifest that also returns the manifest's bytes as
// stored, which a failed run writes back.
func readManifest(ctx context.Context, s destination.Store, chain string) (*Manifest, []byte, error) {
	name := chain + "/" + ManifestName
	path := Location(s, name)
	r, err := s.Open(ctx, name)
	if err != nil {
		if errors.Is(err, destination.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s has no %s, so its backup never finished. Use a complete backup (see `magpie backup ls`)", Location(s, chain), ManifestName)
		}
		return nil, nil, &readError{fmt.Errorf("cannot read %s: %w", path, err)}
	}
	defer r.Close()
	if r.Size() > maxManifestBytes {
		return nil, nil, fmt.Errorf("%s %w: it is larger than 1 MiB. Use another backup", path, ErrIntegrity)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, nil, &readError{fmt.Errorf("cannot read %s: %w", path, err)}
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("%s %w: it is not valid JSON. The manifest was changed or damaged; use another backup", path, ErrIntegrity)
	}
	if err := m.CheckChecksum(path); err != nil {
		return nil, nil, err
	}
	if m.Format != ManifestFormat {
		return nil, nil, fmt.Errorf("%s has format %d, which this magpie does not read (it reads %d). Use a matching magpie version", path, m.Format, ManifestFormat)
	}
	if err := m.validate(); err != nil {
		return nil, nil, fmt.Errorf("%s %w: %v. Use another backup", path, ErrIntegrity, err)
	}
	return &m, raw, nil
}

// maxManifestBytes bounds what is read as a manifest.
const maxManifestBytes = 1 << 20

// validate checks what a reader relies on: at least one file, plain file
// names (never a path), known kinds in a sensible order.
func (m *Manifest) validate() error {
	if len(m.Files) == 0 {
		return errors.New("it lists no file")
	}
	if m.Type != Logical && m.Type != Snapshot {
		return fmt.Errorf("its type %q is not logical or snapshot", m.Type)
	}
	if _, err := ParseMode(string(m.Encryption)); err != nil {
		return fmt.Errorf("its encryption mode %q is not one magpie writes", m.Encryption)
	}
	for i, f := range m.Files {
		// A file is wrapped in age exactly when the mode encrypts it
		// (a database mode snapshot is the encrypted files as they
		// are): a name that disagrees betrays a rewritten mode.
		wrapped := m.Encryption != ModeNone && !(f.Kind == KindSnapshot && m.Encryption == ModeDatabase)
		if strings.HasSuffix(f.Name, AgeSuffix) != wrapped {
			return fmt.Errorf("file %d (%s) is named as if it were %s, which its encryption mode %s contradicts", i+1, f.Name, map[bool]string{true: "encrypted with age", false: "not encrypted with age"}[strings.HasSuffix(f.Name, AgeSuffix)], m.Encryption)
		}
	}
	for i, f := range m.Files {
		if f.Name == "" || f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." || f.Name == ManifestName || strings.HasSuffix(f.Name, InProgressSuffix) {
			return fmt.Errorf("file %d has the unusable name %q", i+1, f.Name)
		}
		first := KindFull
		if m.Type == Snapshot {
			first = KindSnapshot
		}
		switch {
		case i == 0 && f.Kind != first:
			return fmt.Errorf("its first file is a %s, not a %s", f.Kind, first)
		case i > 0 && f.Kind != KindIncremental:
			return fmt.Errorf("file %d is a %s, not an incremental-backup", i+1, f.Kind)
		}
		if f.Size < 0 {
			return fmt.Errorf("file %d has a negative size", i+1)
		}
		if !strings.HasPrefix(f.Name, Stamp(f.Created)+"."+f.Kind) {
			return fmt.Errorf("file %d is named %q, which does not match its time and kind", i+1, f.Name)
		}
		if i > 0 {
			prev := m.Files[i-1]
			if !f.Created.After(prev.Created) {
				return fmt.Errorf("file %d (%s) is not newer than the file before it", i+1, f.Name)
			}
			// An incremental holds the changes after the etag its
			// predecessor ends at: anything else is a gap or an overlap.
			if f.FromEtag != prev.ToEtag {
				return fmt.Errorf("file %d (%s) starts after etag %d but the file before it ends at etag %d: the chain has a gap", i+1, f.Name, f.FromEtag, prev.ToEtag)
			}
		}
	}
	return nil
}

// writeManifest seals m and writes it to chain folder chain of every
// store. A store replaces an object atomically, so a reader sees the old
// manifest or the new one.
//
// When a store fails, every store ends as it was before the run: prev[i]
// is store i's manifest as read at the start of the run (prev nil for a
// new chain, which had none), put back where the new one was written; and
// file, the run's new file, is removed from every store whose manifest no
// longer lists it. Otherwise one destination would list a file the others
// lack, and every later incremental would find them apart.
func writeManifest(ctx context.Context, stores []destination.Store, chain string, m *Manifest, key *keys.Key, prev [][]byte, file string) error {
	m.Format = ManifestFormat
	m.seal(key)
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	for i, s := range stores {
		if err := putObject(ctx, s, chain+"/"+ManifestName, raw); err != nil {
			// The failed store is put back too: a local commit can
			// fail after its rename.
			if uerr := undoManifest(context.WithoutCancel(ctx), stores, i+1, chain, prev, file); uerr != nil {
				return fmt.Errorf("%w; %w", err, uerr)
			}
			return err
		}
	}
	return nil
}

// putObject writes name in s with the bytes raw.
func putObject(ctx context.Context, s destination.Store, name string, raw []byte) error {
	w, err := s.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// undoError says that a failed run could not put every destination back.
type undoError struct{ errs []error }

func (e *undoError) Error() string {
	return fmt.Sprintf("the destinations could not all be put back as they were (%v), so they may now hold different chains. The next incremental backup makes a full backup instead", errors.Join(e.errs...))
}

// undoManifest puts back the manifest of chain in the first written stores
// (see writeManifest) and removes file wherever the manifest is back as
// before. A store whose manifest cannot be put back keeps file, which its
// new manifest lists.
func undoManifest(ctx context.Context, stores []destination.Store, written int, chain string, prev [][]byte, file string) error {
	name := chain + "/" + ManifestName
	var errs []error
	for i, s := range stores {
		var before []byte
		if prev != nil {
			before = prev[i]
		}
		if i < written {
			if err := putBack(ctx, s, name, before); err != nil {
				errs = append(errs, fmt.Errorf("cannot put back %s: %w", Location(s, name), err))
				continue
			}
		}
		if err := s.Delete(ctx, chain+"/"+file); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &undoError{errs}
	}
	return nil
}

// putBack makes name in s hold before again, or be absent when before is
// nil. A store that still holds before is left alone: the write that
// failed there may never have touched it, and writing it again could fail
// the same way.
func putBack(ctx context.Context, s destination.Store, name string, before []byte) error {
	r, err := s.Open(ctx, name)
	switch {
	case errors.Is(err, destination.ErrNotExist):
		if before == nil {
			return nil
		}
	case err != nil:
		return err
	default:
		cur, rerr := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
		r.Close()
		if rerr == nil && before != nil && bytes.Equal(cur, before) {
			return nil
		}
	}
	if before == nil {
		return s.Delete(ctx, name)
	}
	return putObject(ctx, s, name, before)
}

// ReadLocalManifest reads the manifest of the local chain folder dir.
func ReadLocalManifest(dir string) (*Manifest, error) {
	s, err := destination.OpenLocal(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return nil, err
	}
	return ReadManifest(context.Background(), s, filepath.Base(filepath.Clean(dir)))
}
