package smuggler

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The helpers here read values out of an item the scanner has already
// validated, so they skip all checks and never fail on syntax. They only
// ever look at small parts of an item (the @metadata object, a tombstone,
// an attachment header), which keeps the hot path to the one scanning pass.

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string whose opening quote is at
// i, and whether the string holds an escape.
func skipString(b []byte, i int) (int, bool) {
	esc := false
	for i++; i < len(b); i++ {
		c := b[i]
		if strPlain[c] {
			continue
		}
		switch c {
		case '\\':
			esc = true
			i++
		case '"':
			return i + 1, esc
		}
	}
	return i, esc
}

// skipValue returns the index after the value starting at i (no leading
// whitespace).
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		i, _ = skipString(b, i)
		return i
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i, _ = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	// A number or literal: runs to the next delimiter.
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// object iterates over the members of a validated JSON object.
type object struct {
	b []byte
	i int
}

func newObject(b []byte) object { return object{b, skipWS(b, 1)} }

// next returns the next member: its key with escapes decoded (so callers
// can switch on string(key)) and its raw value.
func (o *object) next() (key, val []byte, ok bool) {
	b, i := o.b, o.i
	if i >= len(b) || b[i] != '"' {
		return nil, nil, false
	}
	ke, esc := skipString(b, i)
	key = b[i+1 : ke-1]
	if esc {
		key = []byte(unescapeString(key))
	}
	vs := skipWS(b, skipWS(b, ke)+1) // past the ':'
	ve := skipValue(b, vs)
	i = skipWS(b, ve)
	if i < len(b) && b[i] == ',' {
		i = skipWS(b, i+1)
	}
	o.i = i
	return key, b[vs:ve], true
}

// array iterates over the elements of a validated JSON array.
type array struct {
	b []byte
	i int
}

func newArray(b []byte) array { return array{b, skipWS(b, 1)} }

func (a *array) next() (val []byte, ok bool) {
	b, i := a.b, a.i
	if i >= len(b) || b[i] == ']' {
		return nil, false
	}
	ve := skipValue(b, i)
	val = b[i:ve]
	i = skipWS(b, ve)
	if i < len(b) && b[i] == ',' {
		i = skipWS(b, i+1)
	}
	a.i = i
	return val, true
}

// stringValue decodes a raw JSON value that should be a string. null reads
// as "" (RavenDB writes null for absent optional strings); ok is false for
// any other type.
func stringValue(val []byte) (s string, ok bool) {
	if len(val) > 0 && val[0] == '"' {
		return unescapeString(val[1 : len(val)-1]), true
	}
	return "", string(val) == "null"
}

// intValue parses a raw JSON value that should be an integer.
func intValue(val []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(val), 10, 64)
	return n, err == nil
}

// unescapeString decodes the contents of a JSON string (between the
// quotes). It decodes as encoding/json does: raw control characters are kept,
// lone surrogates and invalid UTF-8 become U+FFFD, so an id read here equals
// the one a Go client would decode from the same body.
func unescapeString(raw []byte) string {
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain || (utf8.Valid(raw) && !hasByte(raw, '\\')) {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			i += size
			continue
		}
		// Validated input: a backslash is always followed by a valid escape.
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r1 := hex4(raw[i:])
			i += 4
			if utf16.IsSurrogate(r1) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r := utf16.DecodeRune(r1, hex4(raw[i+2:])); r != utf8.RuneError {
						out = utf8.AppendRune(out, r)
						i += 6
						continue
					}
				}
				r1 = utf8.RuneError
			}
			out = utf8.AppendRune(out, r1)
		default: // '"', '\\', '/'
			out = append(out, e)
		}
	}
	return string(out)
}

func hasByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

const hexDigits = "0123456789ABCDEF"

// appendStrict appends the validated JSON value src to dst with every raw
// control character inside a string rewritten as \u00XX (uppercase hex, as
// in \u001F). Everything else, including key order, number literals and
// existing escapes, is copied byte for byte. Outside strings a byte below
// 0x20 can only be whitespace, which is kept.
func appendStrict(dst, src []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case !inString:
			if c == '"' {
				inString = true
			}
		case c == '\\':
			i++
		case c == '"':
			inString = false
		case c < 0x20:
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}
