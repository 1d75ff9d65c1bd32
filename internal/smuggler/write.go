package smuggler

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// section is where a Writer is in the export object. Sections only move
// forward: the optional DatabaseRecord, Docs, Tombstones, Indexes, then
// closed.
type section int

const (
	secNone section = iota
	secRecord
	secDocs
	secTombstones
	secIndexes
	secClosed
)

var sectionNames = [...]string{secRecord: "DatabaseRecord", secDocs: "Docs", secTombstones: "Tombstones", secIndexes: "Indexes"}

// Writer writes an export in RavenDB's format:
//
//	{"BuildVersion":N,"DatabaseRecord":{...},"Docs":[...],"Tombstones":[...],"Indexes":[...]}
//
// The three arrays are always written, empty when nothing went into them,
// so an empty database exports a file RavenDB imports; DatabaseRecord only
// when DatabaseRecord is called, first, as RavenDB writes it. Items must
// come in that section order; attachments go inside Docs before the
// document that references them, as RavenDB writes them. After the first
// error the Writer is broken (the output is incomplete) and every call
// returns that error.
type Writer struct {
	w     *bufio.Writer
	sec   section
	first bool // no item written yet in the open section
	err   error
	buf   []byte
}

// NewWriter starts an export on w (compressed by the caller if wanted).
// Nothing is written until the first item or Close.
func NewWriter(w io.Writer, buildVersion int64) *Writer {
	ew := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	ew.buf = append(ew.buf, `{"BuildVersion":`...)
	ew.buf = strconv.AppendInt(ew.buf, buildVersion, 10)
	return ew
}

// enter moves to section s, closing and opening arrays as needed (including
// the empty sections skipped over), and writes the separator for a new item.
func (w *Writer) enter(s section, call string) error {
	if w.err != nil {
		return w.err
	}
	if w.sec == secClosed {
		return fmt.Errorf("smuggler: Writer.%s called after Close", call)
	}
	if s < w.sec {
		return fmt.Errorf("smuggler: Writer.%s called after the %q section was started. Write Docs, then Tombstones, then Indexes", call, sectionNames[w.sec])
	}
	for w.sec < s {
		if w.sec >= secDocs {
			w.buf = append(w.buf, ']')
		}
		w.sec++
		if w.sec == secRecord {
			// An object, written whole by DatabaseRecord; skipped
			// when it was not called.
			continue
		}
		if w.sec != secClosed {
			w.buf = append(w.buf, `,"`...)
			w.buf = append(w.buf, sectionNames[w.sec]...)
			w.buf = append(w.buf, `":[`...)
			w.first = true
		}
	}
	if s != secClosed {
		if !w.first {
			w.buf = append(w.buf, ',')
		}
		w.first = false
	}
	return nil
}

// flushBuf moves the pending bytes to the buffered writer.
func (w *Writer) flushBuf() error {
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = err
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// checkObject refuses an item that cannot be a JSON object. Full
// validation is the producer's job (the store keeps validated bodies); this
// catches a caller passing the wrong bytes.
func checkObject(call string, b []byte) error {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return fmt.Errorf("smuggler: Writer.%s needs a JSON object without surrounding whitespace", call)
	}
	return nil
}

// DatabaseRecord writes the "DatabaseRecord" object: the database's
// configuration as RavenDB's DatabaseRecord names it (DatabaseName,
// Encrypted, PeriodicBackups, ...), strict JSON. It must come before any
// item, and at most once.
func (w *Writer) DatabaseRecord(rec []byte) error {
	if err := checkObject("DatabaseRecord", rec); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if w.sec != secNone {
		return fmt.Errorf("smuggler: Writer.DatabaseRecord called after the %q section was started. Write the DatabaseRecord first, once", sectionNames[w.sec])
	}
	w.sec = secRecord
	w.buf = append(w.buf, `,"DatabaseRecord":`...)
	w.buf = append(w.buf, rec...)
	return w.flushBuf()
}

// Document writes one document; body is its strict JSON object, @metadata
// included.
func (w *Writer) Document(body []byte) error {
	if err := checkObject("Document", body); err != nil {
		return err
	}
	if err := w.enter(secDocs, "Document"); err != nil {
		return err
	}
	if err := w.flushBuf(); err != nil {
		return err
	}
	if _, err := w.w.Write(body); err != nil {
		w.err = err
	}
	return w.err
}

// Attachment writes an attachment stream: RavenDB's header object followed
// by exactly size raw bytes from content. It must precede the document
// whose @metadata.@attachments references it. The hash is written as given
// (base64 BLAKE2b-256 of the content; the reader verifies it).
func (w *Writer) Attachment(hash string, size int64, tag string, content io.Reader) error {
	if size < 0 {
		return fmt.Errorf("smuggler: Writer.Attachment got a negative size %d", size)
	}
	if err := w.enter(secDocs, "Attachment"); err != nil {
		return err
	}
	w.buf = append(w.buf, `{"@metadata":{"@export-type":"Attachment"},"Hash":`...)
	w.buf = appendString(w.buf, hash)
	w.buf = append(w.buf, `,"Size":`...)
	w.buf = strconv.AppendInt(w.buf, size, 10)
	w.buf = append(w.buf, `,"Tag":`...)
	w.buf = appendString(w.buf, tag)
	w.buf = append(w.buf, '}')
	if err := w.flushBuf(); err != nil {
		return err
	}
	n, err := io.CopyN(w.w, content, size)
	switch {
	case errors.Is(err, io.EOF):
		w.err = fmt.Errorf("smuggler: attachment %s has %d bytes of content but its size is %d; the export is incomplete", hash, n, size)
	case err != nil:
		w.err = fmt.Errorf("smuggler: copying attachment %s: %w", hash, err)
	}
	return w.err
}

// Tombstone writes one tombstone with RavenDB's field order.
func (w *Writer) Tombstone(t *Tombstone) error {
	if err := w.enter(secTombstones, "Tombstone"); err != nil {
		return err
	}
	b := append(w.buf, `{"Key":`...)
	b = appendString(b, t.Key)
	b = append(b, `,"Type":`...)
	b = appendString(b, t.Type)
	b = append(b, `,"Collection":`...)
	b = appendString(b, t.Collection)
	b = append(b, `,"Flags":`...)
	b = appendString(b, t.Flags)
	b = append(b, `,"ChangeVector":`...)
	b = appendString(b, t.ChangeVector)
	b = append(b, `,"DeletedEtag":`...)
	b = strconv.AppendInt(b, t.DeletedEtag, 10)
	b = append(b, `,"Etag":`...)
	b = strconv.AppendInt(b, t.Etag, 10)
	b = append(b, `,"LastModified":`...)
	b = appendString(b, t.LastModified)
	w.buf = append(b, '}')
	if len(w.buf) >= 32<<10 {
		return w.flushBuf()
	}
	return nil
}

// Index writes one item of "Indexes" (opaque JSON, as Read delivers it).
func (w *Writer) Index(def []byte) error {
	if err := checkObject("Index", def); err != nil {
		return err
	}
	if err := w.enter(secIndexes, "Index"); err != nil {
		return err
	}
	w.buf = append(w.buf, def...)
	return w.flushBuf()
}

// Close writes the sections not yet written, ends the export object and
// flushes. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.sec == secClosed {
		return w.err
	}
	if err := w.enter(secClosed, "Close"); err != nil {
		return err
	}
	w.buf = append(w.buf, '}')
	if err := w.flushBuf(); err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

// appendString appends s as a JSON string. Control characters are written
// as \u00XX like Body's; everything else (UTF-8 included) is copied.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
