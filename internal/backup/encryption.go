package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"github.com/magpiedb/magpie/internal/keys"
)

// Mode is how a backup file is encrypted (DESIGN.md section 1).
type Mode string

const (
	// ModeNone writes the compressed stream in clear.
	ModeNone Mode = "none"
	// ModeDatabase encrypts with the database's own secret key.
	ModeDatabase Mode = "database"
	// ModeKey encrypts with a key the operator provides.
	ModeKey Mode = "key"
	// ModeRecipients encrypts to age public keys: the server writes
	// backups it cannot read.
	ModeRecipients Mode = "recipients"
)

// ParseMode reads an --encryption value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNone, ModeDatabase, ModeKey, ModeRecipients:
		return m, nil
	}
	return "", fmt.Errorf("encryption mode %q is not known: use none, database, key or recipients", s)
}

// ScryptWorkFactor is the age scrypt work factor (log2) for key and
// database modes. The passphrase is a 256-bit random key, so stretching it
// adds nothing; 2^10 keeps decryption instant and is still accepted by the
// stock age command.
const ScryptWorkFactor = 10

// ageHeader starts every age file.
var ageHeader = []byte("age-encryption.org/v1\n")

// IsAge reports whether b starts like an age file.
func IsAge(b []byte) bool { return bytes.HasPrefix(b, ageHeader) }

// Encryption is a resolved encryption setting: the mode and what it needs.
// Key is key material: never print it.
type Encryption struct {
	Mode       Mode
	Key        keys.Key
	Recipients []string
	recipients []age.Recipient
}

// KeyFingerprint names the key of database and key modes.
func (e *Encryption) KeyFingerprint() string {
	if e.Mode == ModeDatabase || e.Mode == ModeKey {
		return e.Key.Fingerprint()
	}
	return ""
}

// encrypts reports whether files are wrapped in age.
func (e *Encryption) encrypts() bool {
	return e.Mode == ModeKey || e.Mode == ModeDatabase || e.Mode == ModeRecipients
}

// wrap returns a writer that encrypts into w; Close finishes the age stream
// (writing its last, authenticated chunk) without closing w.
func (e *Encryption) wrap(w io.Writer) (io.WriteCloser, error) {
	switch e.Mode {
	case ModeKey, ModeDatabase:
		r, err := age.NewScryptRecipient(e.Key.Base64())
		if err != nil {
			return nil, err
		}
		r.SetWorkFactor(ScryptWorkFactor)
		return age.Encrypt(w, r)
	case ModeRecipients:
		return age.Encrypt(w, e.recipients...)
	}
	return nopCloser{w}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// ParseRecipients reads --recipient values: age X25519 recipients
// ("age1..."), SSH public keys ("ssh-ed25519 ...", "ssh-rsa ..."), or the
// path of a file of them (one per line, # comments), as the age command
// takes them.
func ParseRecipients(values []string) ([]age.Recipient, error) {
	rs, _, err := parseRecipients(values)
	return rs, err
}

// parseRecipients is ParseRecipients, which also returns each recipient's
// public key as text (an SSH key without its comment): what a manifest
// records, whatever file named the keys when the backup was made.
func parseRecipients(values []string) ([]age.Recipient, []string, error) {
	var out []age.Recipient
	var texts []string
	for i, v := range values {
		v = strings.TrimSpace(v)
		// A value that does not parse is never echoed: it may be a secret
		// pasted in the wrong place.
		which := fmt.Sprintf("--recipient number %d", i+1)
		if looksSecret(v) {
			return nil, nil, fmt.Errorf("%s looks like a secret key, not a public key. Give the public key (age-keygen -y IDENTITY prints it); keep the secret key away from the server", which)
		}
		switch {
		case strings.HasPrefix(v, "age1"):
			r, err := age.ParseX25519Recipient(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s is not a valid age public key. Give an age1... key from `age-keygen`, an SSH public key, or a file of them", which)
			}
			out, texts = append(out, r), append(texts, r.String())
		case strings.HasPrefix(v, "ssh-"):
			r, err := agessh.ParseRecipient(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s is not a usable SSH public key. Give an ssh-ed25519 or ssh-rsa public key", which)
			}
			out, texts = append(out, r), append(texts, strings.Join(strings.Fields(v)[:2], " "))
		default:
			f, err := os.Open(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s is neither an age public key (age1...), an SSH public key, nor a readable file. Give an age1... key from `age-keygen` or a recipients file", which)
			}
			rs, ts, err := parseRecipientFile(f)
			f.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("recipients file %s: %v. Put one age1... or SSH public key per line", v, err)
			}
			out, texts = append(out, rs...), append(texts, ts...)
		}
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no recipient was given. Give at least one with --recipient age1... (make one with `age-keygen`)")
	}
	return out, texts, nil
}

// looksSecret recognises age identities and magpie keys (44 base64
// characters) given where a public key belongs.
func looksSecret(v string) bool {
	if strings.HasPrefix(strings.ToUpper(v), "AGE-SECRET-KEY-") || strings.Contains(v, "PRIVATE KEY") {
		return true
	}
	_, err := keys.Parse(v)
	return err == nil
}

func parseRecipientFile(r io.Reader) ([]age.Recipient, []string, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	var out []age.Recipient
	var texts []string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "age1") && !strings.HasPrefix(line, "ssh-") {
			return nil, nil, fmt.Errorf("line %d is not a valid age or SSH public key", n+1)
		}
		rs, ts, err := parseRecipients([]string{line})
		if err != nil {
			return nil, nil, fmt.Errorf("line %d is not a valid age or SSH public key", n+1)
		}
		out, texts = append(out, rs...), append(texts, ts...)
	}
	if len(out) == 0 {
		return nil, nil, errors.New("it holds no recipient")
	}
	return out, texts, nil
}

// Request is what the operator asked for on the command line or in an API
// call, before it is checked against the database.
type Request struct {
	// Mode is empty for the default: database for an encrypted database,
	// none otherwise (or key / recipients when a key or recipients are
	// given).
	Mode    string
	KeyFile string
	// Key is the key for key mode given directly (an API request carries
	// it in base64), instead of KeyFile. Never logged.
	Key        *keys.Key
	Recipients []string
}

// Resolve checks a request against the rules of DESIGN.md section 1 and
// loads what it needs, so that nothing is written when encryption cannot be
// applied (failing closed). dbKey is the database's secret key (ok false
// for an unencrypted database).
func Resolve(req Request, typ Type, dbName string, dbKey keys.Key, encrypted bool) (*Encryption, error) {
	mode := Mode(req.Mode)
	if req.Mode == "" {
		switch {
		case req.KeyFile != "" || req.Key != nil:
			mode = ModeKey
		case len(req.Recipients) > 0:
			mode = ModeRecipients
		case encrypted:
			mode = ModeDatabase
		default:
			mode = ModeNone
		}
	} else if _, err := ParseMode(req.Mode); err != nil {
		return nil, err
	}
	if typ == Snapshot && encrypted && mode != ModeDatabase {
		return nil, fmt.Errorf("a snapshot of encrypted database %s is a copy of its encrypted files, so it can only use encryption mode database, not %s. Leave out --encryption (and any key or recipient), or make a logical backup", dbName, mode)
	}
	if mode == ModeDatabase && !encrypted {
		return nil, fmt.Errorf("encryption mode database needs an encrypted database, and %s is not encrypted. Use --encryption key --key-file FILE or --encryption recipients --recipient KEY", dbName)
	}
	if req.KeyFile != "" && req.Key != nil {
		return nil, errors.New("a key was given both directly and as a key file. Give only one of them")
	}
	if req.Key != nil && mode != ModeKey {
		return nil, fmt.Errorf("a key was given but encryption mode %s takes no key. Use encryption mode key, or leave out the key", mode)
	}
	if req.KeyFile != "" && mode != ModeKey {
		return nil, fmt.Errorf("--key-file was given but encryption mode %s takes no key. Use --encryption key, or leave out --key-file", mode)
	}
	if len(req.Recipients) > 0 && mode != ModeRecipients {
		return nil, fmt.Errorf("--recipient was given but encryption mode %s takes no recipients. Use --encryption recipients, or leave out --recipient", mode)
	}
	e := &Encryption{Mode: mode}
	switch mode {
	case ModeDatabase:
		e.Key = dbKey
	case ModeKey:
		if req.Key != nil {
			e.Key = *req.Key
			break
		}
		if req.KeyFile == "" {
			return nil, errors.New("encryption mode key needs a key. Give it with --key-file FILE (make one with `magpie secrets generate`)")
		}
		k, err := keys.ReadFile(req.KeyFile)
		if err != nil {
			return nil, err
		}
		e.Key = k
	case ModeRecipients:
		rs, texts, err := parseRecipients(req.Recipients)
		if err != nil {
			return nil, err
		}
		e.recipients = rs
		e.Recipients = texts
	}
	return e, nil
}

// Decryption holds what the operator gave to open encrypted backups.
type Decryption struct {
	Key        *keys.Key
	Identities []age.Identity
}

// LoadDecryption reads --key-file and --identity.
func LoadDecryption(keyFile, identityFile string) (*Decryption, error) {
	d := &Decryption{}
	if keyFile != "" {
		k, err := keys.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
		d.Key = &k
	}
	if identityFile != "" {
		f, err := os.Open(identityFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read identity file %s: %v. Check the path", identityFile, errors.Unwrap(err))
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("cannot read identity file %s: %v", identityFile, err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			id, serr := agessh.ParseIdentity(data)
			if serr != nil {
				return nil, fmt.Errorf("identity file %s holds no age identity (AGE-SECRET-KEY-1...) or unencrypted SSH private key. Give the file `age-keygen` wrote", identityFile)
			}
			ids = []age.Identity{id}
		}
		d.Identities = ids
	}
	return d, nil
}

// macKey is the key that MACs the chain's manifest: the backup key of
// database and key modes, none otherwise.
func (e *Encryption) macKey() *keys.Key {
	if e.Mode == ModeKey || e.Mode == ModeDatabase {
		k := e.Key
		return &k
	}
	return nil
}
