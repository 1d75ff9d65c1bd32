package restore

import (
	"context"
	"fmt"
	"io"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/smuggler"
)

// FileReport is what Verify found in one file.
type FileReport struct {
	Name        string
	Size        int64
	Documents   int64
	Tombstones  int64
	Attachments int64
	// Decrypted is false when the file is encrypted and no key was given:
	// then only its checksum was verified.
	Decrypted bool
}

// Report is the outcome of a successful Verify.
type Report struct {
	ChainDir string
	Manifest *backup.Manifest
	Files    []FileReport
}

// Verify reads every file of the chain t: it checks sizes and SHA-256
// against the manifest and, given the key or identity, decrypts and
// authenticates every byte and parses the content, comparing counts with
// the manifest. The first problem found is returned.
//
// progress, when not nil, hears the bytes read of each file (from 0 for
// every file).
func Verify(ctx context.Context, t *Target, dec *backup.Decryption, progress func(int64)) (*Report, error) {
	if dec == nil {
		dec = &backup.Decryption{}
	}
	m := t.Manifest
	canDecrypt := m.Encryption == backup.ModeNone ||
		(m.Keyed() && dec.Key != nil) ||
		(m.Encryption == backup.ModeRecipients && len(dec.Identities) > 0)
	if canDecrypt {
		if err := checkKeys(t, dec); err != nil {
			return nil, err
		}
	}
	rep := &Report{ChainDir: t.ChainDir, Manifest: m}
	for _, e := range t.Files {
		fr := FileReport{Name: e.Name, Size: e.Size, Decrypted: canDecrypt}
		if !canDecrypt {
			// The content cannot be read: report what the manifest says.
			fr.Documents, fr.Tombstones, fr.Attachments = e.Documents, e.Tombstones, e.Attachments
			s, err := openRaw(ctx, t, e)
			if err != nil {
				return nil, err
			}
			s.progress = progress
			if err := s.finish(nil); err != nil {
				return nil, err
			}
			rep.Files = append(rep.Files, fr)
			continue
		}
		s, err := openStream(ctx, t, e, dec)
		if err != nil {
			return nil, err
		}
		s.progress = progress
		var rerr error
		if e.Kind == backup.KindSnapshot {
			_, rerr = readSnapshot(s.plain, dec.Key, "")
			fr.Documents = e.Documents
		} else {
			c := &counter{}
			rerr = smuggler.Import(s.plain, c)
			fr.Documents, fr.Tombstones, fr.Attachments = c.docs, c.tombstones, c.attachments
		}
		if err := s.finish(rerr); err != nil {
			return nil, err
		}
		if e.Kind != backup.KindSnapshot && (fr.Documents != e.Documents || fr.Tombstones != e.Tombstones) {
			return nil, fmt.Errorf("backup file %s %w: it holds %d documents and %d tombstones but its manifest says %d and %d. Use another backup",
				s.path, backup.ErrIntegrity, fr.Documents, fr.Tombstones, e.Documents, e.Tombstones)
		}
		rep.Files = append(rep.Files, fr)
	}
	return rep, nil
}

// counter is a smuggler handler that only counts.
type counter struct {
	docs, tombstones, attachments int64
}

func (c *counter) BuildVersion(int64) error            { return nil }
func (c *counter) Document(*smuggler.Document) error   { c.docs++; return nil }
func (c *counter) Tombstone(*smuggler.Tombstone) error { c.tombstones++; return nil }
func (c *counter) Index([]byte) error                  { return nil }
func (c *counter) Skipped(string, int) error           { return nil }
func (c *counter) Attachment(a *smuggler.Attachment) error {
	c.attachments++
	_, err := io.Copy(io.Discard, a.Content)
	return err
}
