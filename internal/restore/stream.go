package restore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"filippo.io/age"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
)

// checkKeys makes sure the operator gave what the chain needs, and that a
// key is the chain's key, before anything is read or created. The MAC of a
// keyed manifest is checked here too.
func checkKeys(t *Target, dec *backup.Decryption) error {
	m := t.Manifest
	mpath := backup.Location(t.Store, t.Chain+"/"+backup.ManifestName)
	switch m.Encryption {
	case backup.ModeKey, backup.ModeDatabase:
		what := "its key"
		if m.Encryption == backup.ModeDatabase {
			what = "the database's secret key"
		}
		if dec.Key == nil {
			return fmt.Errorf("the backup in %s is encrypted (mode %s) and no key was given. Give %s with --key-file FILE", t.ChainDir, m.Encryption, what)
		}
		if dec.Key.Fingerprint() != m.KeyFingerprint {
			return fmt.Errorf("the key given (fingerprint %s) is not the key of the backup in %s (fingerprint %s). Give %s with --key-file FILE", dec.Key.Fingerprint(), t.ChainDir, m.KeyFingerprint, what)
		}
		return m.CheckMAC(mpath, *dec.Key)
	case backup.ModeRecipients:
		if len(dec.Identities) == 0 {
			return fmt.Errorf("the backup in %s is encrypted to age recipients and no identity was given. Give the matching age identity file with --identity FILE", t.ChainDir)
		}
	case backup.ModeNone:
	default:
		return fmt.Errorf("%s names encryption mode %q, which this magpie does not know. Use a matching magpie version", mpath, m.Encryption)
	}
	// A key given for a chain that no key protects: the manifest could
	// have been rewritten to drop the encryption, so nothing proves the
	// chain is what was backed up.
	if dec.Key != nil && !m.Keyed() {
		return fmt.Errorf("a key was given but the backup in %s is not encrypted with a key (mode %s), so the key cannot authenticate it. Leave out --key-file to read it anyway", t.ChainDir, m.Encryption)
	}
	return nil
}

// CheckKeys is checkKeys for callers that want to check before they
// create anything (the CLI checks before it opens a data dir).
func CheckKeys(t *Target, dec *backup.Decryption) error {
	if dec == nil {
		dec = &backup.Decryption{}
	}
	return checkKeys(t, dec)
}

// fileStream reads one backup file: it hashes every stored byte and, for
// files magpie encrypted, yields the decrypted stream.
type fileStream struct {
	path  string
	entry backup.FileEntry
	f     io.ReadCloser
	h     hash.Hash
	n     int64
	plain io.Reader
	// progress, when set, hears the bytes read so far.
	progress func(int64)
}

func (s *fileStream) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if s.progress != nil {
		s.progress(s.n)
	}
	return n, err
}

func integrityError(path, reason string) error {
	return fmt.Errorf("backup file %s %w: %s. The file was changed, damaged or cut short; use another backup", path, backup.ErrIntegrity, reason)
}

// openRaw opens a file of t for hashing only, after checking its size
// against the manifest.
func openRaw(ctx context.Context, t *Target, e backup.FileEntry) (*fileStream, error) {
	name := t.Chain + "/" + e.Name
	path := backup.Location(t.Store, name)
	f, err := t.Store.Open(ctx, name)
	if err != nil {
		if errors.Is(err, destination.ErrNotExist) {
			return nil, fmt.Errorf("backup file %s is missing although the manifest lists it. Restore the file, or use another backup", path)
		}
		return nil, fmt.Errorf("cannot read backup file %s: %w", path, err)
	}
	if f.Size() != e.Size {
		f.Close()
		return nil, integrityError(path, fmt.Sprintf("it is %d bytes but its manifest says %d", f.Size(), e.Size))
	}
	s := &fileStream{path: path, entry: e, f: f, h: sha256.New()}
	s.plain = bufio.NewReaderSize(s, 256<<10)
	return s, nil
}

// openStream opens a file of t and yields its decrypted stream.
func openStream(ctx context.Context, t *Target, e backup.FileEntry, dec *backup.Decryption) (*fileStream, error) {
	s, err := openRaw(ctx, t, e)
	if err != nil {
		return nil, err
	}
	path, f, buffered := s.path, s.f, s.plain
	if strings.HasSuffix(e.Name, backup.AgeSuffix) {
		var ids []age.Identity
		if dec.Key != nil {
			id, err := age.NewScryptIdentity(dec.Key.Base64())
			if err != nil {
				f.Close()
				return nil, err
			}
			id.SetMaxWorkFactor(backup.ScryptWorkFactor)
			ids = append(ids, id)
		}
		ids = append(ids, dec.Identities...)
		if len(ids) == 0 {
			f.Close()
			return nil, fmt.Errorf("backup file %s is encrypted and no key or identity was given. Give --key-file or --identity", path)
		}
		r, err := age.Decrypt(buffered, ids...)
		if err != nil {
			var nomatch *age.NoIdentityMatchError
			if errors.As(err, &nomatch) && dec.Key == nil {
				// A wrong identity, or a damaged header: the checksum
				// tells them apart.
				if ferr := s.finish(nil); ferr != nil {
					return nil, ferr
				}
				return nil, fmt.Errorf("the identity given does not open backup file %s: it was encrypted to other recipients. Give the matching identity with --identity", path)
			}
			// The key was checked against the manifest beforehand, so a
			// header that does not open with it is damaged.
			return nil, s.finish(&decryptError{err: err, at: -1})
		}
		s.plain = &decryptReader{r: r}
	}
	return s, nil
}

// decryptError marks a failure of age decryption: with a key that matched
// the manifest, that means damaged or changed data.
type decryptError struct {
	err error
	// at is how many plaintext bytes authenticated before the failure
	// (-1: the header failed). age authenticates 64 KiB chunks and yields
	// only authenticated ones, so at/64 KiB is the failing chunk.
	at int64
}

func (e *decryptError) Error() string { return e.err.Error() }
func (e *decryptError) Unwrap() error { return e.err }

// decryptReader marks every error of the age stream as a decryptError, so
// that it is recognised however the pipes above wrap it.
type decryptReader struct {
	r io.Reader
	n int64
}

func (d *decryptReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && err != io.EOF {
		err = &decryptError{err: err, at: d.n}
	}
	return n, err
}

// ageChunk is the plaintext size of an age STREAM chunk.
const ageChunk = 64 << 10

// finish reads what is left of the file, closes it and checks its SHA-256.
// A damaged file is reported as such, whatever error the reading pipes
// raised first; a sound file passes readErr through.
func (s *fileStream) finish(readErr error) error {
	defer s.f.Close()
	if _, err := io.Copy(io.Discard, s); err != nil {
		return fmt.Errorf("cannot read backup file %s: %w", s.path, err)
	}
	if s.n != s.entry.Size {
		return integrityError(s.path, fmt.Sprintf("it is %d bytes but its manifest says %d", s.n, s.entry.Size))
	}
	if hex.EncodeToString(s.h.Sum(nil)) != s.entry.SHA256 {
		return integrityError(s.path, "its SHA-256 does not match the manifest")
	}
	if readErr != nil {
		var de *decryptError
		if errors.As(readErr, &de) {
			if de.at < 0 {
				return integrityError(s.path, "its encrypted content did not authenticate")
			}
			return integrityError(s.path, fmt.Sprintf("its encrypted content did not authenticate at age chunk %d (after %d good bytes of plaintext)", de.at/ageChunk, de.at))
		}
		if errors.Is(readErr, io.ErrUnexpectedEOF) {
			return integrityError(s.path, "it ends before its content does")
		}
		return fmt.Errorf("backup file %s: %w", s.path, readErr)
	}
	return nil
}
