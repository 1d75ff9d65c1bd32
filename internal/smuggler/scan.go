package smuggler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// The scanner below is a hand-written validating JSON scanner over a buffer
// the reader manages itself. encoding/json would need the whole document
// decoded into values (or a token per call) and rejects the raw control
// characters RavenDB writes; a byte loop over a reusable buffer validates
// and locates a document in one pass at several hundred MB/s.
//
// Buffer invariant: buf[pos:end] is unread input; buf[0] is at stream
// offset base. While an item is being scanned, mark is its first byte and
// fill keeps buf[mark:end] (growing buf if needed), so an item is always
// contiguous once scanned. With no item open (mark < 0) fill keeps nothing
// before pos, so memory is bounded by the largest item, not the input.

const (
	// readBufSize is the initial read buffer. It holds hundreds of typical
	// documents, so the per-fill compaction copies at most one partial
	// document.
	readBufSize = 256 << 10

	// maxDepth bounds nesting of objects and arrays (the export's own
	// top-level object is depth 1), so hostile input gets an error instead
	// of a deep recursion.
	maxDepth = 512
)

// maxItemSize bounds the one thing the reader buffers: a single item
// (document, index, tombstone, ...). It keeps a damaged or hostile input
// from growing the buffer without limit. A variable so tests can lower it.
var maxItemSize = 1 << 30

// errItemTooBig is recorded as the read error when an item outgrows
// maxItemSize; eofError turns it into a message.
var errItemTooBig = errors.New("item too big")

// strPlain marks bytes that need no attention inside a JSON string: anything
// but the closing quote, a backslash or a raw control character.
var strPlain = func() (t [256]bool) {
	for i := range t {
		t[i] = i >= 0x20 && i != '"' && i != '\\'
	}
	return t
}()

type reader struct {
	src      io.Reader
	buf      []byte
	pos, end int
	base     int64 // stream offset of buf[0]
	mark     int   // first byte of the item being scanned, or -1
	srcErr   error // sticky: io.EOF at the end of input, or a read error

	// Per item, reset by beginItem.
	itemDepth int  // depth of the item's own object, whose keys are watched
	ctrl      bool // a raw control character was seen inside a string
	meta      span // value of the item's top-level "@metadata", relative to mark
	size      span // value of the item's top-level "@size" (TimeSeries)

	// Where we are, for error messages.
	section string // current top-level section, "" outside
	item    int    // index of the current item in its section, -1 outside
}

// span is a half-open byte range relative to reader.mark; start < 0 means
// absent.
type span struct{ start, end int }

func newReader(src io.Reader) *reader {
	return &reader{src: src, buf: make([]byte, readBufSize), mark: -1, item: -1, meta: span{-1, -1}, size: span{-1, -1}}
}

// off converts a buffer index to a stream offset.
func (r *reader) off(i int) int64 { return r.base + int64(i) }

// fill reads more input into buf. It reports false at the end of input, on
// a read error, or when the open item would exceed maxItemSize; srcErr then
// says which.
func (r *reader) fill() bool {
	if r.srcErr != nil {
		return false
	}
	keep := r.pos
	if r.mark >= 0 {
		keep = r.mark
	}
	if keep > 0 {
		n := copy(r.buf, r.buf[keep:r.end])
		r.base += int64(keep)
		r.pos -= keep
		r.end = n
		if r.mark >= 0 {
			r.mark -= keep
		}
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= maxItemSize {
			r.srcErr = errItemTooBig
			return false
		}
		nb := make([]byte, min(2*len(r.buf), maxItemSize))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.srcErr = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	r.srcErr = io.ErrNoProgress
	return false
}

// where describes the current position for error messages.
func (r *reader) where() string {
	switch {
	case r.section == "":
		return ""
	case r.item < 0:
		return fmt.Sprintf(" in %q", r.section)
	default:
		return fmt.Sprintf(" in item %d of %q", r.item, r.section)
	}
}

// eofError explains why fill returned false in the middle of something.
func (r *reader) eofError() error {
	at := r.off(r.end)
	switch err := r.srcErr; {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Offset: at, Err: io.ErrUnexpectedEOF, msg: fmt.Sprintf(
			"the input ends early at byte %d%s: the export is truncated. %s", at, r.where(), hintTruncated)}
	case err == errItemTooBig:
		what := fmt.Sprintf("the value at byte %d%s", r.off(r.mark), r.where())
		if r.item >= 0 {
			what = fmt.Sprintf("item %d of %q (byte %d)", r.item, r.section, r.off(r.mark))
		}
		return formatErr(r.off(r.mark), "Check that the file is an undamaged export; magpie cannot import an item this large.",
			"%s is larger than %d MiB, the most magpie holds in memory for one item", what, maxItemSize>>20)
	default:
		var ce *codecError
		if errors.As(err, &ce) {
			return &Error{Offset: at, Err: err, msg: fmt.Sprintf(
				"decompressing the %s data fails at byte %d%s: %v. %s", ce.kind, at, r.where(), ce.err, hintDamaged)}
		}
		return &Error{Offset: at, Err: err, msg: fmt.Sprintf(
			"reading the input failed at byte %d%s: %v. Check the file and the storage it is on.", at, r.where(), err)}
	}
}

// syntaxError reports invalid JSON at buffer index i.
func (r *reader) syntaxError(i int, format string, args ...any) error {
	return formatErr(r.off(i), hintDamaged, "invalid JSON at byte %d%s: %s", r.off(i), r.where(), fmt.Sprintf(format, args...))
}

// peek returns the next byte without consuming it; the end of input is an
// error because callers are inside a value.
func (r *reader) peek() (byte, error) {
	if r.pos == r.end && !r.fill() {
		return 0, r.eofError()
	}
	return r.buf[r.pos], nil
}

// skipSpace skips JSON whitespace and returns the next byte, unconsumed.
func (r *reader) skipSpace() (byte, error) {
	// Exports are mostly written without whitespace: the next byte is
	// usually the token, and this check inlines.
	if b := r.buf[r.pos:r.end]; len(b) > 0 && b[0] > ' ' {
		return b[0], nil
	}
	return r.skipSpaceSlow()
}

func (r *reader) skipSpaceSlow() (byte, error) {
	c, ok, err := r.skipSpaceOrEOF()
	if err == nil && !ok {
		err = r.eofError()
	}
	return c, err
}

// skipSpaceOrEOF is skipSpace for the places where the input may end: ok is
// false at a clean end of input.
func (r *reader) skipSpaceOrEOF() (c byte, ok bool, err error) {
	for {
		b := r.buf[r.pos:r.end]
		for i, c := range b {
			if c > ' ' || (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
				r.pos += i
				return c, true, nil
			}
		}
		r.pos = r.end
		if !r.fill() {
			if r.srcErr == io.EOF {
				return 0, false, nil
			}
			return 0, false, r.eofError()
		}
	}
}

// beginItem starts an item at pos: it is kept contiguous in buf until
// endItem, and the keys of its object at depth itemDepth are watched.
func (r *reader) beginItem(itemDepth int) {
	r.mark = r.pos
	r.itemDepth = itemDepth
	r.ctrl = false
	r.meta = span{-1, -1}
	r.size = span{-1, -1}
}

// itemBytes returns the item scanned since beginItem.
func (r *reader) itemBytes() []byte { return r.buf[r.mark:r.pos] }

func (r *reader) endItem() { r.mark = -1 }

// scanValue validates one JSON value at depth (the depth of the container
// holding it) and leaves pos after it.
func (r *reader) scanValue(depth int) error {
	// skipSpace is too big to inline; the hot paths here test for the
	// common compact layout first and call it only for whitespace.
	var c byte
	if r.pos < r.end {
		c = r.buf[r.pos]
	}
	if c <= ' ' {
		var err error
		if c, err = r.skipSpace(); err != nil {
			return err
		}
	}
	switch c {
	case '"':
		r.pos++
		return r.scanString()
	case '{':
		return r.scanObject(depth + 1)
	case '[':
		return r.scanArray(depth + 1)
	case 't':
		return r.scanLiteral("true")
	case 'f':
		return r.scanLiteral("false")
	case 'n':
		return r.scanLiteral("null")
	}
	if c == '-' || (c >= '0' && c <= '9') {
		return r.scanNumber()
	}
	return r.syntaxError(r.pos, "found %s where a value was expected", describeByte(c))
}

func (r *reader) depthError() error {
	return formatErr(r.off(r.pos), hintDamaged, "the input nests objects and arrays more than %d levels deep at byte %d%s", maxDepth, r.off(r.pos), r.where())
}

// scanObject validates an object whose '{' is at pos.
func (r *reader) scanObject(depth int) error {
	if depth > maxDepth {
		return r.depthError()
	}
	r.pos++
	c, err := r.skipSpace()
	if err != nil {
		return err
	}
	if c == '}' {
		r.pos++
		return nil
	}
	for {
		if c != '"' {
			return r.syntaxError(r.pos, "found %s where a property name was expected", describeByte(c))
		}
		r.pos++
		keyStart := r.pos - r.mark
		if err := r.scanString(); err != nil {
			return err
		}
		var watch *span
		if depth == r.itemDepth {
			watch = r.watched(r.buf[r.mark+keyStart : r.pos-1])
		}
		if r.pos < r.end && r.buf[r.pos] == ':' {
			r.pos++
		} else {
			if c, err = r.skipSpace(); err != nil {
				return err
			}
			if c != ':' {
				return r.syntaxError(r.pos, "found %s where ':' was expected after a property name", describeByte(c))
			}
			r.pos++
		}
		if watch != nil {
			if _, err := r.skipSpace(); err != nil {
				return err
			}
			watch.start = r.pos - r.mark
		}
		if err := r.scanValue(depth); err != nil {
			return err
		}
		if watch != nil {
			watch.end = r.pos - r.mark
		}
		c = 0
		if r.pos < r.end {
			c = r.buf[r.pos]
		}
		if c <= ' ' {
			if c, err = r.skipSpace(); err != nil {
				return err
			}
		}
		switch c {
		case ',':
			r.pos++
			c = 0
			if r.pos < r.end {
				c = r.buf[r.pos]
			}
			if c <= ' ' {
				if c, err = r.skipSpace(); err != nil {
					return err
				}
			}
		case '}':
			r.pos++
			return nil
		default:
			return r.syntaxError(r.pos, "found %s where ',' or '}' was expected in an object", describeByte(c))
		}
	}
}

// watched returns where to record the value of an item-level key, or nil.
// Only "@metadata" (documents, attachment headers) and "@size" (time series
// segments) matter to the reader.
func (r *reader) watched(rawKey []byte) *span {
	switch string(rawKey) {
	case "@metadata":
		return &r.meta
	case "@size":
		return &r.size
	}
	for _, c := range rawKey {
		if c == '\\' {
			// An escaped spelling of a watched key is still that key.
			if k := unescapeString(rawKey); k == "@metadata" || k == "@size" {
				return r.watched([]byte(k))
			}
			break
		}
	}
	return nil
}

// scanArray validates an array whose '[' is at pos.
func (r *reader) scanArray(depth int) error {
	if depth > maxDepth {
		return r.depthError()
	}
	r.pos++
	c, err := r.skipSpace()
	if err != nil {
		return err
	}
	if c == ']' {
		r.pos++
		return nil
	}
	for {
		if err := r.scanValue(depth); err != nil {
			return err
		}
		c = 0
		if r.pos < r.end {
			c = r.buf[r.pos]
		}
		if c <= ' ' {
			if c, err = r.skipSpace(); err != nil {
				return err
			}
		}
		switch c {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return nil
		default:
			return r.syntaxError(r.pos, "found %s where ',' or ']' was expected in an array", describeByte(c))
		}
	}
}

// scanString validates a string whose opening quote was just consumed.
// Raw control characters are accepted (RavenDB writes them) and noted in
// ctrl so the item gets escaped into strict JSON.
func (r *reader) scanString() error {
	for {
		b := r.buf[r.pos:r.end]
		i := plainPrefix(b)
		r.pos += i
		if i == len(b) {
			if !r.fill() {
				return r.eofError()
			}
			continue
		}
		switch c := b[i]; c {
		case '"':
			r.pos++
			return nil
		case '\\':
			if err := r.scanEscape(); err != nil {
				return err
			}
		default:
			r.ctrl = true
			r.pos++
		}
	}
}

// plainPrefix returns how many bytes at the start of b need no attention
// inside a string. It tests eight bytes at a time with the classic SWAR
// zero-byte trick: a byte that is '"', '\\' or below 0x20 sets the high bit
// of its lane in m. Borrows can only set lanes above a real hit, so the
// lowest set lane is exact.
func plainPrefix(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (lo * '"')
		s := x ^ (lo * '\\')
		m := ((q - lo) &^ q) | ((s - lo) &^ s) | ((x - lo*0x20) &^ x)
		if m &= hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(b) && strPlain[b[i]] {
		i++
	}
	return i
}

// scanEscape validates an escape sequence whose backslash is at pos.
func (r *reader) scanEscape() error {
	r.pos++
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		r.pos++
		return nil
	case 'u':
		r.pos++
		for range 4 {
			h, err := r.peek()
			if err != nil {
				return err
			}
			if !isHex(h) {
				return r.syntaxError(r.pos, "found %s where a hex digit of a \\u escape was expected", describeByte(h))
			}
			r.pos++
		}
		return nil
	}
	return r.syntaxError(r.pos, "found %s after a backslash, which is not a valid escape", describeByte(c))
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanLiteral validates true, false or null at pos.
func (r *reader) scanLiteral(lit string) error {
	for i := 0; i < len(lit); i++ {
		c, err := r.peek()
		if err != nil {
			return err
		}
		if c != lit[i] {
			return r.syntaxError(r.pos, "found %s in what should be the literal %s", describeByte(c), lit)
		}
		r.pos++
	}
	return nil
}

// scanNumber validates a number at pos: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// The byte after it is checked by the caller, which expects a delimiter.
func (r *reader) scanNumber() error {
	c, err := r.peek()
	if err != nil {
		return err
	}
	if c == '-' {
		r.pos++
		if c, err = r.peek(); err != nil {
			return err
		}
	}
	switch {
	case c == '0':
		r.pos++
	case c >= '1' && c <= '9':
		if err := r.scanDigits(); err != nil {
			return err
		}
	default:
		return r.syntaxError(r.pos, "found %s where a digit was expected in a number", describeByte(c))
	}
	if c, err = r.peek(); err != nil {
		return err
	}
	if c == '.' {
		r.pos++
		if err := r.scanRequiredDigits(); err != nil {
			return err
		}
		if c, err = r.peek(); err != nil {
			return err
		}
	}
	if c == 'e' || c == 'E' {
		r.pos++
		if c, err = r.peek(); err != nil {
			return err
		}
		if c == '+' || c == '-' {
			r.pos++
		}
		return r.scanRequiredDigits()
	}
	return nil
}

func (r *reader) scanRequiredDigits() error {
	c, err := r.peek()
	if err != nil {
		return err
	}
	if c < '0' || c > '9' {
		return r.syntaxError(r.pos, "found %s where a digit was expected in a number", describeByte(c))
	}
	return r.scanDigits()
}

func (r *reader) scanDigits() error {
	for {
		b := r.buf[r.pos:r.end]
		i := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		r.pos += i
		if i < len(b) {
			return nil
		}
		if !r.fill() {
			return r.eofError()
		}
	}
}
