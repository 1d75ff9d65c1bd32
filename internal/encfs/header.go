package encfs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// The header that starts every regular file:
//
//	offset  size  field
//	0       8     magic "MAGPIEE1"
//	8       4     data key id, big-endian
//	12      4     reserved, zero
//	16      16    AES-CTR initial counter block (random per file)
const (
	// HeaderSize is how many bytes every encrypted file has before its
	// ciphertext. Offsets and sizes that pebble sees exclude it.
	HeaderSize = 32

	magic      = "MAGPIEE1"
	keyIDAt    = 8
	reservedAt = 12
	ivAt       = 16
	ivSize     = aes.BlockSize
)

// aesKeyPurpose derives the AES key from a data key, so a data key used
// elsewhere (sealing, say) never shares an AES key with the files.
const aesKeyPurpose = "encfs aes-256-ctr v1"

// ErrNotEncrypted is wrapped by the error for a file whose header is not a
// magpie header: a file from an unencrypted database, or a damaged one.
var ErrNotEncrypted = errors.New("not a magpie encrypted file")

// ErrUnknownKey is wrapped by the error for a file encrypted with a data key
// id that the keyring does not hold.
var ErrUnknownKey = errors.New("data key not in the keyring")

// header is a file's parsed header.
type header struct {
	keyID uint32
	iv    [ivSize]byte
}

func newHeader(keyID uint32) header {
	h := header{keyID: keyID}
	// crypto/rand.Read never fails (it crashes the program instead): a
	// repeated IV under one key would reveal the XOR of two files, so there
	// is no fallback worth having.
	_, _ = rand.Read(h.iv[:])
	return h
}

func (h header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, magic)
	binary.BigEndian.PutUint32(b[keyIDAt:], h.keyID)
	copy(b[ivAt:], h.iv[:])
	return b
}

// parseHeader reads b, the first HeaderSize bytes of the file name (or fewer
// if the file is shorter).
func parseHeader(name string, b []byte) (header, error) {
	if len(b) < HeaderSize || string(b[:len(magic)]) != magic ||
		binary.BigEndian.Uint32(b[reservedAt:]) != 0 {
		return header{}, notEncrypted(name)
	}
	var h header
	h.keyID = binary.BigEndian.Uint32(b[keyIDAt:])
	copy(h.iv[:], b[ivAt:])
	return h, nil
}

func notEncrypted(name string) error {
	return &wrapError{
		msg: fmt.Sprintf("file %s is not a magpie encrypted file (bad header): it was not written by magpie's encrypted store, or it was damaged", name),
		err: ErrNotEncrypted,
	}
}

func unknownKey(name string, id uint32) error {
	return &wrapError{
		msg: fmt.Sprintf("file %s is encrypted with data key %d, which the keyring does not hold: open the database with the key registry it was written with", name, id),
		err: ErrUnknownKey,
	}
}

// keystream produces the AES-256-CTR keystream of one file from any
// plaintext offset. Its methods are safe for concurrent use: the block
// cipher is stateless and each call builds its own counter.
type keystream struct {
	block cipher.Block
	iv    [ivSize]byte
}

// xor sets dst to src XOR the keystream starting at plaintext offset off.
// dst and src may be the same slice.
//
// Byte p uses counter block IV + p/16 (a 128-bit big-endian sum that wraps)
// at position p%16: exactly the keystream a single CTR pass from offset 0
// would produce, so random access and sequential writing agree.
func (ks *keystream) xor(dst, src []byte, off int64) {
	if len(src) == 0 {
		return
	}
	ctr := counterAt(ks.iv, uint64(off)/aes.BlockSize)
	stream := cipher.NewCTR(ks.block, ctr[:])
	if skip := int(uint64(off) % aes.BlockSize); skip != 0 {
		var discard [aes.BlockSize]byte
		stream.XORKeyStream(discard[:skip], discard[:skip])
	}
	stream.XORKeyStream(dst, src)
}

// counterAt returns iv + n as 128-bit big-endian integers, wrapping at 2^128
// as crypto/cipher's CTR does when it increments.
func counterAt(iv [ivSize]byte, n uint64) [ivSize]byte {
	hi := binary.BigEndian.Uint64(iv[:8])
	lo, carry := bits.Add64(binary.BigEndian.Uint64(iv[8:]), n, 0)
	hi += carry
	var ctr [ivSize]byte
	binary.BigEndian.PutUint64(ctr[:8], hi)
	binary.BigEndian.PutUint64(ctr[8:], lo)
	return ctr
}

// wrapError is an error with an exact message that still matches a sentinel
// with errors.Is.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }
