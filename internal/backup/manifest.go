package backup

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	Format          int         `json:"format"`
	Database        string      `json:"database"`
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

// ReadManifest reads and checks the checksum of a chain's manifest.
func ReadManifest(chainDir string) (*Manifest, error) {
	path := filepath.Join(chainDir, ManifestName)
	st, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s has no %s, so its backup never finished. Use a complete backup (see `magpie backup ls`)", chainDir, ManifestName)
		}
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxManifestBytes {
		return nil, fmt.Errorf("%s %w: it is not a regular file of at most 1 MiB. Use another backup", path, ErrIntegrity)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s %w: it is not valid JSON. The manifest was changed or damaged; use another backup", path, ErrIntegrity)
	}
	if err := m.CheckChecksum(path); err != nil {
		return nil, err
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s has format %d, which this magpie does not read (it reads %d). Use a matching magpie version", path, m.Format, ManifestFormat)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s %w: %v. Use another backup", path, ErrIntegrity, err)
	}
	return &m, nil
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
	}
	return nil
}

// writeManifest seals m and writes it atomically.
func writeManifest(chainDir string, m *Manifest, key *keys.Key) error {
	m.Format = ManifestFormat
	m.seal(key)
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeSmallFile(filepath.Join(chainDir, ManifestName), append(raw, '\n'))
}
