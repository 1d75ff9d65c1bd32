// Package backup writes magpie's backups: logical backups (a streamed
// RavenDB export of the database) and snapshots (a tar of a pebble
// checkpoint, the encrypted files as they are on disk), each in its chain
// folder with a manifest. docs/FORMAT.md specifies the layout byte by byte.
//
// The pipeline is store -> smuggler writer -> compressor -> age encryptor ->
// hashing file writer; package restore runs the same pipes backwards.
package backup

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Type is the kind of a chain: logical backups or snapshots.
type Type string

const (
	Logical  Type = "logical"
	Snapshot Type = "snapshot"
)

// ParseType reads a --type value.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case Logical, Snapshot:
		return t, nil
	}
	return "", fmt.Errorf("backup type %q is not known: use logical or snapshot", s)
}

// File kinds, the suffix of a backup file's name.
const (
	KindFull        = "full-backup"
	KindIncremental = "incremental-backup"
	KindSnapshot    = "snapshot"

	// AgeSuffix ends the name of every file magpie encrypted with age.
	AgeSuffix = ".age"
	// InProgressSuffix ends the name of a file still being written.
	InProgressSuffix = ".in-progress"
	// ManifestName is the chain's manifest.
	ManifestName = "manifest.json"
)

// StampLayout is RavenDB's backup time stamp, in UTC and with seven
// fractional digits so that two backups never share a name.
const StampLayout = "2006-01-02-15-04-05-0000000"

// Stamp formats t for a file or folder name.
func Stamp(t time.Time) string {
	return strings.Replace(t.UTC().Format("2006-01-02-15-04-05.0000000"), ".", "-", 1)
}

// ParseStamp reads a stamp back.
func ParseStamp(s string) (time.Time, error) {
	if len(s) != len(StampLayout) {
		return time.Time{}, fmt.Errorf("%q is not a backup time stamp", s)
	}
	return time.Parse("2006-01-02-15-04-05.0000000", s[:19]+"."+s[20:])
}

// ChainFolder names the folder of a chain started at t.
func ChainFolder(t time.Time, db string, typ Type) string {
	suffix := chainSuffixLogical
	if typ == Snapshot {
		suffix = chainSuffixSnapshot
	}
	return Stamp(t) + "." + escapeName(db) + suffix
}

// escapeName escapes a database name for a folder name.
func escapeName(db string) string { return url.PathEscape(db) }

// Chain folder kinds, the suffix of a chain folder's name.
const (
	chainSuffixLogical  = ".backup"
	chainSuffixSnapshot = ".snapshot"
)

// ParseChainFolder reads a chain folder's name, STAMP.DATABASE.KIND, back
// into the time of its first file, the database's name and the chain's
// type. ok is false for a name of any other form. The stamp has a fixed
// length, so a database name holding dots (a.media) is read whole rather
// than guessed from a suffix.
func ParseChainFolder(name string) (start time.Time, db string, typ Type, ok bool) {
	var suffix string
	switch {
	case strings.HasSuffix(name, chainSuffixLogical):
		typ, suffix = Logical, chainSuffixLogical
	case strings.HasSuffix(name, chainSuffixSnapshot):
		typ, suffix = Snapshot, chainSuffixSnapshot
	default:
		return time.Time{}, "", "", false
	}
	n := len(StampLayout)
	if len(name) < n+1+1+len(suffix) || name[n] != '.' {
		return time.Time{}, "", "", false
	}
	start, err := ParseStamp(name[:n])
	if err != nil {
		return time.Time{}, "", "", false
	}
	db, err = url.PathUnescape(name[n+1 : len(name)-len(suffix)])
	if err != nil || db == "" {
		return time.Time{}, "", "", false
	}
	return start, db, typ, true
}

// SameDatabase reports whether two database names name one database:
// magpie's names, like RavenDB's, are not case-sensitive.
func SameDatabase(a, b string) bool { return strings.EqualFold(a, b) }

// IsChainOf reports whether name is the folder of a chain of database db.
// The whole name is compared: a suffix match would take the chains of
// a.media for those of media, and retention would delete them.
func IsChainOf(name, db string) bool {
	_, got, _, ok := ParseChainFolder(name)
	return ok && SameDatabase(got, db)
}

// FileName names a backup file.
func FileName(t time.Time, kind string, encrypted bool) string {
	name := Stamp(t) + "." + kind
	if encrypted {
		name += AgeSuffix
	}
	return name
}
