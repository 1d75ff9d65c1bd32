package keys

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrAuth is returned by [Open] for every sealed value it cannot open: the
// wrong key, different additional data, a changed byte, or a truncated value.
// These cases are deliberately not told apart; the AEAD cannot tell them
// apart either.
var ErrAuth = errors.New("the data failed its authentication check: wrong key or damaged data")

// SealOverhead is how many bytes [Seal] adds to its plaintext: a 24-byte
// nonce before the ciphertext and a 16-byte tag after it.
const SealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Seal encrypts and authenticates plaintext with k, binding additionalData
// (which is not stored: [Open] must be given the same bytes). The result is
// a 24-byte random nonce followed by the XChaCha20-Poly1305 ciphertext and
// tag.
//
// XChaCha20's 24-byte nonce is large enough to pick at random for every
// message, so one key can seal any number of values without a counter to
// keep.
func Seal(k Key, plaintext, additionalData []byte) []byte {
	aead := newAEAD(k)
	out := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plaintext)+chacha20poly1305.Overhead)
	// crypto/rand.Read never returns an error: it crashes the program
	// instead, which is right for a nonce that must never repeat.
	_, _ = rand.Read(out)
	return aead.Seal(out, out, plaintext, additionalData)
}

// Open checks and decrypts a value made by [Seal] with the same key and
// additional data. Every failure is [ErrAuth].
func Open(k Key, sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < SealOverhead {
		return nil, ErrAuth
	}
	aead := newAEAD(k)
	nonce, ciphertext := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	plaintext, err := aead.Open(nil, nonce, ciphertext, additionalData)
	if err != nil {
		return nil, ErrAuth
	}
	return plaintext, nil
}

func newAEAD(k Key) cipher.AEAD {
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		// NewX fails only for a key that is not 32 bytes; Key is always 32.
		panic("keys: chacha20poly1305.NewX refused a 32-byte key: " + err.Error())
	}
	return aead
}
