package restore

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	// Sampled counts the files --sample left unread.
	Sampled int
	// Note says why a chain of a folder was checked less than the
	// others (another key than the one given).
	Note string `json:",omitempty"`
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

// VerifyOptions tune VerifyAll.
type VerifyOptions struct {
	Decryption *backup.Decryption
	// Sample is the share of each chain's files read, in (0, 1]; 0 reads
	// them all. Manifests are always checked in full.
	Sample float64
	// Start, when set, hears of each chain before it is read, with the
	// bytes it will read, and returns the progress function of its bytes
	// (nil for none) and a function called when it is done.
	Start func(chain string, bytes int64) (progress func(int64), done func())
}

// Verified is the outcome of VerifyAll.
type Verified struct {
	Chains []*Report
	// Interrupted are the locations of the chains whose first backup
	// never finished (no manifest); they are not restore points and were
	// passed over.
	Interrupted []string
	// Failed are the chains of a folder that failed their checks, with
	// why; VerifyAll's error is then the first of them.
	Failed []Failure `json:",omitempty"`
	first  error
}

// Failure is a chain that failed verification.
type Failure struct {
	Chain string
	Error string
}

// VerifyAll verifies what location names: a backup file, a chain folder
// (its whole chain) or a folder of chains (every complete chain, passing
// over those whose first backup was interrupted). In a folder every chain
// is checked, the bad ones too: the error is the first problem found,
// naming the file and the reason, and out lists what verified and what
// failed.
func VerifyAll(ctx context.Context, location string, opts VerifyOptions) (*Verified, error) {
	var targets []*Target
	out := &Verified{}
	_, chainName, file, err := Split(ctx, location)
	if err != nil {
		return nil, err
	}
	if file != "" {
		t, err := Locate(ctx, location, Until{})
		if err != nil {
			return nil, err
		}
		defer t.Close()
		targets = append(targets, t)
	} else {
		s, chains, err := Chains(ctx, location)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		for _, c := range chains {
			switch {
			case c.Complete():
				targets = append(targets, TargetOf(c))
			case c.Interrupted && chainName == "":
				out.Interrupted = append(out.Interrupted, c.Location())
			case chainName == "":
				out.fail(c.Location(), c.Err())
			default:
				return nil, c.Err()
			}
		}
		if len(targets) == 0 && len(out.Failed) == 0 {
			return nil, NoChainError(location, chains)
		}
	}
	for _, t := range targets {
		all := len(t.Files)
		if opts.Sample > 0 && opts.Sample < 1 {
			t.Files = Sample(t.Files, opts.Sample)
		}
		var progress func(int64)
		done := func() {}
		if opts.Start != nil {
			var size int64
			for _, f := range t.Files {
				size += f.Size
			}
			progress, done = opts.Start(t.Chain, size)
		}
		dec := opts.Decryption
		note := ""
		if m := t.Manifest; file == "" && chainName == "" && dec != nil && dec.Key != nil {
			// A folder of chains may hold unencrypted chains, or
			// chains of an older key, beside those of the key given:
			// the key is for those. The others are checked by their
			// checksums, as without a key, and said to be.
			switch {
			case m.Encryption == backup.ModeNone:
				dec = &backup.Decryption{Identities: dec.Identities}
			case m.Keyed() && m.KeyFingerprint != dec.Key.Fingerprint() && opensAny(targets, dec.Key.Fingerprint()):
				dec = &backup.Decryption{Identities: dec.Identities}
				note = fmt.Sprintf("encrypted with another key (fingerprint %s) than the one given (%s): only its checksums were checked", m.KeyFingerprint, opts.Decryption.Key.Fingerprint())
			}
		}
		rep, err := Verify(ctx, t, dec, progress)
		done()
		if rep != nil {
			rep.Note = note
		}
		if err != nil {
			if len(targets) == 1 && len(out.Failed) == 0 || ctx.Err() != nil {
				return nil, err
			}
			out.fail(t.ChainDir, err)
			continue
		}
		rep.Sampled = all - len(t.Files)
		out.Chains = append(out.Chains, rep)
	}
	return out, out.err()
}

// opensAny reports whether a key of fingerprint fp opens one of the
// targets: when it opens none, it is a wrong key, not a newer one.
func opensAny(targets []*Target, fp string) bool {
	for _, t := range targets {
		if t.Manifest.Keyed() && t.Manifest.KeyFingerprint == fp {
			return true
		}
	}
	return false
}

func (v *Verified) fail(chain string, err error) {
	v.Failed = append(v.Failed, Failure{Chain: chain, Error: err.Error()})
	if v.first == nil {
		v.first = err
	}
}

// err is the error of a verification with failed chains: the first
// failure, and how many more there are.
func (v *Verified) err() error {
	switch len(v.Failed) {
	case 0:
		return nil
	case 1:
		return v.first
	}
	return &moreFailed{first: v.first, more: len(v.Failed) - 1}
}

// moreFailed is the first failure of several.
type moreFailed struct {
	first error
	more  int
}

func (e *moreFailed) Error() string {
	msg := strings.TrimSuffix(e.first.Error(), ".")
	n := "chain"
	if e.more > 1 {
		n = "chains"
	}
	return fmt.Sprintf("%s. %d more %s failed as well (listed above)", msg, e.more, n)
}

func (e *moreFailed) Unwrap() error { return e.first }
