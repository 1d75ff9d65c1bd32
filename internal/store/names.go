package store

import (
	"strings"
	"unicode/utf8"
)

// MaxIDBytes is the longest document ID magpie accepts, in UTF-8 bytes.
// RavenDB's own limit is 2025 bytes; 2 KiB keeps the pebble keys small and
// is what operators are told.
const MaxIDBytes = 2048

// ValidateDatabaseName checks a database name. Names become directory names
// under the data dir, so they are restricted to a portable alphabet (the
// same one RavenDB accepts, minus characters that need escaping in paths).
func ValidateDatabaseName(name string) error {
	const todo = "Use 1 to 128 letters, digits, '_', '-' or '.', starting with a letter or digit"
	if name == "" {
		return errorf(ErrInvalidInput, todo, "the database name is empty")
	}
	if len(name) > 128 {
		return errorf(ErrInvalidInput, todo, "the database name is %d characters long", len(name))
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			(i > 0 && (r == '_' || r == '-' || r == '.'))
		if !ok {
			return errorf(ErrInvalidInput, todo, "the database name %q is not valid", name)
		}
	}
	return nil
}

// ValidateID checks a document ID. IDs are compared case-insensitively, as
// in RavenDB, so the store keys documents by LowerID.
func ValidateID(id string) error {
	if id == "" {
		return errorf(ErrInvalidInput, "Give a non-empty ID such as users/1", "the document ID is empty")
	}
	if len(id) > MaxIDBytes {
		return errorf(ErrInvalidInput, "Use an ID of at most 2048 bytes", "the document ID is %d bytes long", len(id))
	}
	if !utf8.ValidString(id) {
		return errorf(ErrInvalidInput, "Use an ID in valid UTF-8", "the document ID is not valid UTF-8")
	}
	for _, r := range id {
		if r < 0x20 {
			return errorf(ErrInvalidInput, "Remove control characters from the ID", "the document ID contains a control character (U+%04X)", r)
		}
	}
	return nil
}

// LowerID is the case-folded form under which a document is stored.
func LowerID(id string) string { return strings.ToLower(id) }
