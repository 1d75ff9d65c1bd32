package smuggler

import (
	"errors"
	"fmt"
)

// ErrFormat is wrapped by every *Error that reports input which is not a
// well-formed RavenDB export (as opposed to one that ends early, which wraps
// io.ErrUnexpectedEOF, or one that cannot be read, which wraps the read
// error).
var ErrFormat = errors.New("not a well-formed RavenDB export")

// Error reports a problem with the input. Its text is two sentences: what is
// wrong (with the byte offset in the decompressed stream) and what to do.
type Error struct {
	// Offset is the byte offset in the decompressed stream where the
	// problem was found, or -1 when no position applies.
	Offset int64
	// Err is ErrFormat, io.ErrUnexpectedEOF (the input ends early) or the
	// error returned by the underlying reader or decompressor.
	Err error
	msg string
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.Err }

// Hints end every message; they are shared so the same situation always gets
// the same advice.
const (
	hintNotExport = "Check that the file is a .ravendbdump or a magpie/RavenDB backup."
	hintDamaged   = "The export is damaged; check that the file is complete and unmodified."
	hintTruncated = "Check that the file was copied or downloaded completely."
)

func formatErr(off int64, hint, format string, args ...any) *Error {
	return &Error{Offset: off, Err: ErrFormat, msg: fmt.Sprintf(format, args...) + ". " + hint}
}

// describeByte renders a byte for an error message so that control bytes and
// binary garbage stay readable.
func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
