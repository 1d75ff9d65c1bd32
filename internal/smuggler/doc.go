// Package smuggler reads and writes the RavenDB export format ("smuggler"
// format), used by .ravendbdump files and by magpie's and RavenDB's logical
// backups (.ravendb-full-backup, .ravendb-incremental-backup).
//
// # Reading
//
// Import reads a file whatever its compression:
//
//	err := smuggler.Import(f, handler)
//
// It is Decompress (which sniffs gzip and zstd magic) followed by Read,
// which calls the Handler for each item in stream order: BuildVersion,
// then documents and attachments, tombstones and index definitions as they
// appear. Sections magpie does not import (revisions, counters, time
// series, compare-exchange, ...) are read, validated and reported to
// Handler.Skipped with their item count; so is DatabaseRecord, unless the
// handler is a RecordHandler, which receives it. Any other top-level
// property is an error: the input is probably not an export.
//
// Read validates all JSON and stops at the first problem with an *Error
// that names the byte offset in the decompressed stream. It accepts one
// deviation RavenDB itself produces: raw control characters (0x00-0x1F)
// inside strings. Their values are kept, and Document.Body and Index bytes
// are strict JSON, with those characters escaped as \u00XX (uppercase hex).
//
// Memory does not grow with the input: Read buffers one item at a time (up
// to 1 GiB for a single item) and streams attachment content through
// Attachment.Content. Byte slices given to the Handler are valid only until
// it returns.
//
// # The format
//
// The decompressed payload is one JSON object:
//
//	{"BuildVersion":41004,"Docs":[...],"Tombstones":[...],"Indexes":[...]}
//
// Each document carries its @metadata (@id, @collection, @change-vector,
// @last-modified, @flags, @attachments). An attachment's content is not
// JSON: inside "Docs", before the document that references it, RavenDB
// writes the header
//
//	{"@metadata":{"@export-type":"Attachment"},"Hash":"<base64>","Size":N,"Tag":"..."}
//
// immediately followed by exactly N raw bytes, then the usual comma. Hash is
// the base64 BLAKE2b-256 digest of the content, which Read verifies.
// "TimeSeries" items similarly carry "@size" raw bytes, which are skipped.
//
// # Writing
//
// Writer produces the same format: DatabaseRecord, when called, writes the
// database's configuration first (as RavenDB does); Document and
// Attachment fill "Docs",
// then Tombstone fills "Tombstones" and Index fills "Indexes"; Close writes
// any section left empty, so every export has all three. Wrap the
// destination with Compress first to get a compressed file: zstd (what
// RavenDB 6+ reads, magpie's default) or gzip (for RavenDB 4.x and 5.x).
//
// RavenDB's encrypted exports (.ravendb-encrypted-*) are not supported: they
// begin with a random libsodium header, so Read reports them as data that is
// not an export.
package smuggler
