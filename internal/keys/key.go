// Package keys holds magpie's secret keys: how they are made, written down,
// read back, told apart, derived and used to seal small secrets.
//
// Every magpie key is 32 random bytes. The hierarchy (magpie's design,
// section 3) is
//
//	server master key            file 0600 outside the data dir
//	  seals each database key    the key the operator keeps
//	    seals its data keys      registry inside the database dir
//	      encrypt pebble files   package encfs
//
// # Common use
//
// Make a key with [Generate] and keep it with [WriteFile], which creates a
// new 0600 file and never overwrites one. Load it with [ReadFile], which
// refuses a file other users can read. Keys the operator types or pastes
// (an HTTP body, a restore request) go through [Parse].
//
// Wrap a smaller secret, such as a data key or a database record, with
// [Seal] and unwrap it with [Open]. Sealing is XChaCha20-Poly1305 with a
// random 24-byte nonce, so the same key can seal any number of secrets, and
// anything changed, truncated or opened with the wrong key fails with
// [ErrAuth]. The additional data binds a sealed value to where it belongs
// (for example the database name), so it cannot be moved elsewhere.
//
// Use [Key.Derive] to get independent keys for separate jobs (a MAC key for
// backup manifests, say) instead of using one key for two algorithms.
//
// # Text form
//
// A key's text form is standard padded base64 of its 32 bytes: 44
// characters ending in "=". Surrounding whitespace and a trailing newline
// are accepted, so a key file written by `magpie secrets generate > FILE`
// reads back. [Key.Fingerprint] names a key without revealing it, for logs,
// manifests and "wrong key" messages.
//
// # Keeping key material out of logs
//
// A Key formats as "key " followed by its fingerprint under every fmt verb,
// refuses to be marshalled as JSON or text, and no error from this package
// includes key bytes or the text it was given. Only [Key.Base64] reveals
// the key; call it only to hand the key to the operator.
package keys

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Size is the length of every magpie key in bytes.
const Size = 32

// Key is a 32-byte secret key.
type Key [Size]byte

// ErrInvalidKey is wrapped by every error [Parse] returns, and by [ReadFile]
// when the file's content is not a key.
var ErrInvalidKey = errors.New("invalid magpie key")

// keyHint ends every Parse error: the operator learns what a key looks like
// and how to make one, without the message repeating what they gave.
const keyHint = "a magpie key is the base64 text of 32 random bytes (make one with `magpie secrets generate`)"

// fingerprintPrefix separates fingerprints from every other use of SHA-256
// over a key, and the version lets a later scheme coexist.
const fingerprintPrefix = "magpie key fingerprint v1\x00"

// Generate returns a new random key.
func Generate() (Key, error) {
	var k Key
	// crypto/rand.Read never fails on supported systems (it crashes the
	// program instead), but keep the error in the signature so callers do not
	// change if a future source of randomness can fail.
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("cannot generate a key: %w", err)
	}
	return k, nil
}

// Parse reads a key from its text form: standard padded base64 of exactly
// 32 bytes, with optional surrounding whitespace. Its errors wrap
// [ErrInvalidKey] and never contain the text.
func Parse(text string) (Key, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Key{}, &wrapError{msg: "the key is empty: " + keyHint, err: ErrInvalidKey}
	}
	// Strict rejects text whose unused trailing bits are not zero, so each
	// key has exactly one text form and a mistyped last character is caught
	// more often instead of silently naming a different key.
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		// The decoder's error quotes an offset into the text; drop it rather
		// than risk describing the key.
		return Key{}, &wrapError{msg: "the key is not valid base64: " + keyHint, err: ErrInvalidKey}
	}
	if len(b) != Size {
		n := len(b)
		clear(b)
		return Key{}, &wrapError{msg: fmt.Sprintf("the key decodes to %d bytes, not 32: %s", n, keyHint), err: ErrInvalidKey}
	}
	var k Key
	copy(k[:], b)
	clear(b)
	return k, nil
}

// Base64 returns the key's text form, the one the operator keeps. It is the
// only method that reveals the key.
func (k Key) Base64() string {
	return base64.StdEncoding.EncodeToString(k[:])
}

// String returns "key " and the key's fingerprint, never the key itself, so
// a key that slips into a log line with %v or %s reveals nothing.
func (k Key) String() string {
	return "key " + k.Fingerprint()
}

// Format makes every fmt verb print [Key.String]. Without it, %d, %x on the
// underlying array or %#v would print the key bytes.
func (k Key) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte(k.String()))
}

// MarshalText refuses, so a Key inside a struct that is logged as JSON (slog's
// JSON handler, encoding/json) is never written out as bytes. Store a key
// sealed with [Seal], or write [Key.Base64] where the operator asked for it.
func (k Key) MarshalText() ([]byte, error) {
	return nil, errors.New("a magpie key cannot be marshalled: seal it with keys.Seal, or write its Base64 text where the operator asked for it")
}

// Fingerprint identifies the key without revealing it: the first 8 bytes of
// SHA-256("magpie key fingerprint v1\x00" || key), as 16 lowercase hex
// digits. Two keys with the same fingerprint are, for all practical
// purposes, the same key; the fingerprint is short enough to compare by eye.
func (k Key) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(fingerprintPrefix))
	h.Write(k[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Derive returns a key for one purpose, independent of k and of keys
// derived for any other purpose: HKDF-SHA256 with no salt and info
// "magpie " + purpose. Name purposes for what the key does, with a
// version, such as "manifest mac v1".
func (k Key) Derive(purpose string) Key {
	b, err := hkdf.Key(sha256.New, k[:], nil, "magpie "+purpose, Size)
	if err != nil {
		// hkdf.Key fails only when asked for more than 255 hash lengths.
		panic("keys: HKDF refused a 32-byte output: " + err.Error())
	}
	var d Key
	copy(d[:], b)
	clear(b)
	return d
}

// wrapError is an error with an exact message that still matches a sentinel
// with errors.Is: the messages here are part of the interface (tests and
// operators read them), so the sentinel's own text must not be prepended.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }
