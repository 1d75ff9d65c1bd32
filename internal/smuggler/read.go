package smuggler

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// AttachmentRef is one entry of a document's @metadata.@attachments.
type AttachmentRef struct {
	Name, Hash, ContentType string
	Size                    int64
}

// Document is one document of the "Docs" section.
type Document struct {
	// From @metadata: @id, @collection, @change-vector, @last-modified,
	// @flags, with JSON escapes decoded. Collection is "" when absent.
	ID, Collection, ChangeVector, LastModified, Flags string
	// Attachments is @metadata.@attachments.
	Attachments []AttachmentRef
	// Body is the whole document object as strict JSON: the input bytes
	// unchanged (key order, number literals, escapes) except that raw
	// control characters inside strings are rewritten as \u00XX with
	// uppercase hex digits (\u0019). It is valid only until the handler
	// returns and must not be retained; copy it to keep it.
	Body []byte
}

// Attachment is one attachment stream of the "Docs" section. It comes
// before the document whose @metadata.@attachments references it.
type Attachment struct {
	Hash string // base64 of the BLAKE2b-256 of the content
	Size int64
	Tag  string
	// Content yields exactly Size bytes, valid until the handler returns.
	// The reader checks them against Hash: if they do not match, the final
	// Read of Content returns an error instead of io.EOF (and so does
	// Read). Whatever the handler does not read is read and checked after
	// it returns.
	Content io.Reader
}

// Tombstone is one item of the "Tombstones" section.
type Tombstone struct {
	Key, Type, Collection, Flags, ChangeVector, LastModified string
	DeletedEtag, Etag                                        int64
}

// Handler receives the items of an export in stream order. An error it
// returns stops Read, which returns that error unchanged.
type Handler interface {
	BuildVersion(v int64) error
	Document(d *Document) error
	Attachment(a *Attachment) error
	Tombstone(t *Tombstone) error
	// Index receives one item of "Indexes" as strict JSON, valid until it
	// returns.
	Index(def []byte) error
	// Skipped is called once for each section magpie reads but does not
	// import, with its number of items (1 for DatabaseRecord, an object,
	// unless the Handler is a RecordHandler).
	Skipped(section string, items int) error
}

// RecordHandler is a Handler that also takes the export's DatabaseRecord
// (the database's configuration, an object) instead of having it counted
// as skipped.
type RecordHandler interface {
	Handler
	// DatabaseRecord receives the DatabaseRecord object as strict JSON,
	// valid until it returns.
	DatabaseRecord(rec []byte) error
}

// Import reads a possibly compressed export: Decompress, then Read.
func Import(r io.Reader, h Handler) error {
	rc, _, err := Decompress(r)
	if err != nil {
		return err
	}
	err = Read(rc, h)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}

// sectionKind says how Read treats a top-level property.
type sectionKind int

const (
	kindUnknown sectionKind = iota
	kindBuildVersion
	kindDocs
	kindTombstones
	kindIndexes
	kindDatabaseRecord // an object, skipped
	kindSkip           // an array, skipped; attachment streams inside are skipped too
	kindTimeSeries     // an array, skipped; each item is followed by @size raw bytes
)

// sections maps the top-level properties of a RavenDB export to how they
// are read. RavenDB matches these names case-insensitively, and so do we.
var sections = []struct {
	name string
	kind sectionKind
}{
	{"BuildVersion", kindBuildVersion},
	{"Docs", kindDocs},
	{"Tombstones", kindTombstones},
	{"Indexes", kindIndexes},
	{"DatabaseRecord", kindDatabaseRecord},
	{"RevisionDocuments", kindSkip},
	{"Conflicts", kindSkip},
	{"Identities", kindSkip},
	{"CompareExchange", kindSkip},
	{"CompareExchangeTombstones", kindSkip},
	{"Counters", kindSkip},
	{"CounterGroups", kindSkip},
	{"Subscriptions", kindSkip},
	{"ReplicationHubCertificates", kindSkip},
	{"TimeSeries", kindTimeSeries},
	{"TimeSeriesDeletedRanges", kindSkip},
	{"DocsDeletions", kindSkip},
	{"AttachmentsDeletions", kindSkip},
}

func lookupSection(name string) (string, sectionKind) {
	for _, s := range sections {
		if strings.EqualFold(s.name, name) {
			return s.name, s.kind
		}
	}
	return name, kindUnknown
}

// Read parses a decompressed export and calls h for each item in order. It
// validates all JSON, accepts raw control characters inside strings (as
// RavenDB writes them), and rejects anything after the closing brace. Its
// memory is bounded by the largest single item, never the input.
func Read(src io.Reader, h Handler) error {
	r := newReader(src)
	rd := &docReader{reader: r, h: h}
	return rd.run()
}

// docReader holds what Read needs beyond the scanner.
type docReader struct {
	*reader
	h              Handler
	body           []byte // reusable buffer for bodies that need escaping
	lastCollection string // documents come grouped by collection: reuse the string
	hasher         hash.Hash
}

func (r *docReader) run() error {
	c, ok, err := r.skipSpaceOrEOF()
	if err != nil {
		return err
	}
	if !ok {
		return formatErr(-1, "Check the file.", "the input is empty: a RavenDB export is a JSON object (possibly gzip- or zstd-compressed)")
	}
	if c != '{' {
		return r.notAnObject(c)
	}
	r.pos++
	if c, err = r.skipSpace(); err != nil {
		return err
	}
	if c != '}' {
		for {
			if err := r.topLevelMember(c); err != nil {
				return err
			}
			if c, err = r.skipSpace(); err != nil {
				return err
			}
			if c == '}' {
				break
			}
			if c != ',' {
				return r.syntaxError(r.pos, "found %s where ',' or '}' was expected after a top-level property", describeByte(c))
			}
			r.pos++
			if c, err = r.skipSpace(); err != nil {
				return err
			}
		}
	}
	r.pos++
	at := r.pos
	c, ok, err = r.skipSpaceOrEOF()
	if err != nil {
		return err
	}
	if ok {
		return formatErr(r.off(r.pos), "Check that the file holds a single, undamaged export.",
			"the input has unexpected data (%s) at byte %d, after the export ended at byte %d", describeByte(c), r.off(r.pos), r.off(at))
	}
	return nil
}

// notAnObject explains a first byte that cannot start a RavenDB export.
func (r *docReader) notAnObject(c byte) error {
	at := r.off(r.pos)
	var what string
	switch {
	case c == '[':
		what = "a JSON array"
	case c == '"':
		what = "a JSON string"
	case c == '-' || (c >= '0' && c <= '9'):
		what = "a JSON number"
	case c == 't' || c == 'f' || c == 'n':
		what = "a JSON literal"
	}
	if what != "" {
		return formatErr(at, hintNotExport, "the input is not a RavenDB export: it is %s at byte %d, not a JSON object", what, at)
	}
	// An age file is what a magpie encrypted backup looks like before
	// decryption; say so rather than call it garbage.
	head := r.buf[r.pos:min(r.pos+64, r.end)]
	if strings.HasPrefix(string(head), "age-encryption.org/") || strings.HasPrefix(string(head), "-----BEGIN AGE ENCRYPTED FILE-----") {
		return formatErr(at, "Restore it with magpie restore and its key or identity, or decrypt it with age first.",
			"the input is an age-encrypted file, not a RavenDB export")
	}
	// RavenDB's encrypted exports (libsodium secretstream) start with a
	// random 24-byte header, so they cannot be told from other binary data.
	return formatErr(at, hintNotExport+" RavenDB encrypted exports (.ravendb-encrypted-*) are not supported yet.",
		"the input is not a RavenDB export: it starts with %s at byte %d where a JSON object was expected", describeByte(c), at)
}

// topLevelMember reads one property of the export object; c is its first
// byte, at pos.
func (r *docReader) topLevelMember(c byte) error {
	if c != '"' {
		return r.syntaxError(r.pos, "found %s where a top-level property name was expected", describeByte(c))
	}
	r.pos++
	r.beginItem(-1)
	keyAt := r.off(r.pos)
	if err := r.scanString(); err != nil {
		return err
	}
	raw := r.buf[r.mark : r.pos-1]
	name, kind := lookupSection(unescapeString(raw))
	r.endItem()
	if kind == kindUnknown {
		return formatErr(keyAt, hintNotExport, "the input is not a RavenDB export: unexpected top-level property %q at byte %d", name, keyAt)
	}
	c, err := r.skipSpace()
	if err != nil {
		return err
	}
	if c != ':' {
		return r.syntaxError(r.pos, "found %s where ':' was expected after a property name", describeByte(c))
	}
	r.pos++
	r.section = name
	defer func() { r.section, r.item = "", -1 }()
	switch kind {
	case kindBuildVersion:
		return r.buildVersion()
	case kindDatabaseRecord:
		return r.databaseRecord()
	}
	return r.array(kind)
}

func (r *docReader) buildVersion() error {
	if _, err := r.skipSpace(); err != nil {
		return err
	}
	at := r.pos
	r.beginItem(-1)
	defer r.endItem()
	if err := r.scanValue(1); err != nil {
		return err
	}
	v, ok := intValue(r.itemBytes())
	if !ok {
		return formatErr(r.off(at), hintNotExport, "the input is not a RavenDB export: BuildVersion at byte %d is not an integer", r.off(at))
	}
	return r.h.BuildVersion(v)
}

func (r *docReader) databaseRecord() error {
	c, err := r.skipSpace()
	if err != nil {
		return err
	}
	if c != '{' {
		return formatErr(r.off(r.pos), hintNotExport, "the input is not a RavenDB export: %q at byte %d is not a JSON object", r.section, r.off(r.pos))
	}
	r.beginItem(-1)
	defer r.endItem()
	if err := r.scanValue(1); err != nil {
		return err
	}
	if rh, ok := r.h.(RecordHandler); ok {
		return rh.DatabaseRecord(r.strict())
	}
	return r.h.Skipped(r.section, 1)
}

// array reads a section that is an array of items.
func (r *docReader) array(kind sectionKind) error {
	c, err := r.skipSpace()
	if err != nil {
		return err
	}
	if c != '[' {
		return formatErr(r.off(r.pos), hintNotExport, "the input is not a RavenDB export: %q at byte %d is not a JSON array", r.section, r.off(r.pos))
	}
	r.pos++
	if c, err = r.skipSpace(); err != nil {
		return err
	}
	skipped := 0
	for i := 0; c != ']'; i++ {
		r.item = i
		if c != '{' {
			return formatErr(r.off(r.pos), hintDamaged, "item %d of %q (byte %d) is not a JSON object", i, r.section, r.off(r.pos))
		}
		// Items are at depth 3: the export object, the section array, the item.
		r.beginItem(3)
		if err := r.scanValue(2); err != nil {
			return err
		}
		counted, err := r.handleItem(kind)
		r.endItem()
		r.item = -1
		if err != nil {
			return err
		}
		if counted {
			skipped++
		}
		if c, err = r.skipSpace(); err != nil {
			return err
		}
		switch c {
		case ',':
			r.pos++
			if c, err = r.skipSpace(); err != nil {
				return err
			}
			if c == ']' {
				return r.syntaxError(r.pos, "found ']' after ',' where another item was expected")
			}
		case ']':
		default:
			return r.syntaxError(r.pos, "found %s where ',' or ']' was expected after an item", describeByte(c))
		}
	}
	r.pos++
	r.item = -1
	switch kind {
	case kindSkip, kindTimeSeries:
		return r.h.Skipped(r.section, skipped)
	}
	return nil
}

// strict returns the scanned item as strict JSON.
func (r *docReader) strict() []byte {
	if !r.ctrl {
		return r.itemBytes()
	}
	r.body = appendStrict(r.body[:0], r.itemBytes())
	return r.body
}

// handleItem dispatches the item just scanned. counted reports whether it
// counts as an item of a skipped section (attachment streams do not, as in
// RavenDB's own count).
func (r *docReader) handleItem(kind sectionKind) (counted bool, err error) {
	switch kind {
	case kindTombstones:
		return false, r.tombstone()
	case kindIndexes:
		return false, r.h.Index(r.strict())
	case kindTimeSeries:
		return true, r.timeSeriesSegment()
	}
	var m docMeta
	if err := r.parseMeta(&m); err != nil {
		return false, err
	}
	switch m.exportType {
	case "Attachment":
		return false, r.attachment(kind == kindDocs)
	case "", "Document":
	default:
		if kind != kindDocs {
			return true, nil
		}
		return false, formatErr(r.off(r.mark), hintNotExport, "item %d of %q (byte %d) has an unknown @metadata.@export-type %q", r.item, r.section, r.off(r.mark), m.exportType)
	}
	if kind != kindDocs {
		return true, nil
	}
	return false, r.document(&m)
}

func (r *docReader) fieldError(field, want string) error {
	return formatErr(r.off(r.mark), hintDamaged, "item %d of %q (byte %d) is malformed: its %s is not %s", r.item, r.section, r.off(r.mark), field, want)
}

// docMeta holds the raw values of the @metadata members the reader uses.
type docMeta struct {
	present                                                        bool // the item has an @metadata object
	notObj                                                         bool // the item has an @metadata that is not an object
	exportType                                                     string
	id, collection, changeVector, lastModified, flags, attachments []byte
}

// parseMeta reads the item's top-level @metadata, located by the scanner,
// in one pass.
func (r *docReader) parseMeta(m *docMeta) error {
	if r.meta.start < 0 {
		return nil
	}
	meta := r.buf[r.mark+r.meta.start : r.mark+r.meta.end]
	if meta[0] != '{' {
		m.notObj = true
		return nil
	}
	m.present = true
	o := newObject(meta)
	for {
		k, v, ok := o.next()
		if !ok {
			break
		}
		switch string(k) {
		case "@id":
			m.id = v
		case "@collection":
			m.collection = v
		case "@change-vector":
			m.changeVector = v
		case "@last-modified":
			m.lastModified = v
		case "@flags":
			m.flags = v
		case "@attachments":
			m.attachments = v
		case "@export-type":
			t, ok := stringValue(v)
			if !ok {
				return r.fieldError("@metadata.@export-type", "a string")
			}
			m.exportType = t
		}
	}
	return nil
}

// metaString decodes one @metadata string member; absent and null read as "".
func (r *docReader) metaString(v []byte, name string) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := stringValue(v)
	if !ok {
		return "", r.fieldError("@metadata."+name, "a string")
	}
	return s, nil
}

func (r *docReader) document(m *docMeta) error {
	if !m.present {
		what := "has no \"@metadata\" object"
		if m.notObj {
			what = "has a \"@metadata\" that is not an object"
		}
		return formatErr(r.off(r.mark), "Every exported document needs its @metadata with an @id; check that the file was exported by RavenDB or magpie.",
			"the document at index %d of %q (byte %d) %s", r.item, r.section, r.off(r.mark), what)
	}
	d := &Document{}
	var err error
	if d.ID, err = r.metaString(m.id, "@id"); err != nil {
		return err
	}
	if d.ID == "" {
		return formatErr(r.off(r.mark), "Every exported document needs one; check that the file was exported by RavenDB or magpie.",
			"the document at index %d of %q (byte %d) has no \"@id\" in its \"@metadata\"", r.item, r.section, r.off(r.mark))
	}
	// Documents come grouped by collection: share the string.
	if c := m.collection; len(c) > 1 && c[0] == '"' && !hasByte(c, '\\') && string(c[1:len(c)-1]) == r.lastCollection {
		d.Collection = r.lastCollection
	} else if d.Collection, err = r.metaString(c, "@collection"); err != nil {
		return err
	}
	if d.ChangeVector, err = r.metaString(m.changeVector, "@change-vector"); err != nil {
		return err
	}
	if d.LastModified, err = r.metaString(m.lastModified, "@last-modified"); err != nil {
		return err
	}
	if d.Flags, err = r.metaString(m.flags, "@flags"); err != nil {
		return err
	}
	if m.attachments != nil {
		if err := r.attachmentRefs(d, m.attachments); err != nil {
			return err
		}
	}
	r.lastCollection = d.Collection
	d.Body = r.strict()
	return r.h.Document(d)
}

func (r *docReader) attachmentRefs(d *Document, v []byte) error {
	if string(v) == "null" {
		return nil
	}
	if v[0] != '[' {
		return r.fieldError("@metadata.@attachments", "an array")
	}
	arr := newArray(v)
	for {
		e, ok := arr.next()
		if !ok {
			return nil
		}
		if e[0] != '{' {
			return r.fieldError("@metadata.@attachments entry", "an object")
		}
		var a AttachmentRef
		o := newObject(e)
		for {
			k, v, ok := o.next()
			if !ok {
				break
			}
			want := "a string"
			switch string(k) {
			case "Name":
				a.Name, ok = stringValue(v)
			case "Hash":
				a.Hash, ok = stringValue(v)
			case "ContentType":
				a.ContentType, ok = stringValue(v)
			case "Size":
				a.Size, ok = intValue(v)
				want = "an integer"
			}
			if !ok {
				return r.fieldError(strconv.Quote(string(k))+" in @metadata.@attachments", want)
			}
		}
		d.Attachments = append(d.Attachments, a)
	}
}

// attachment handles an attachment header: the raw content follows the
// header's closing brace directly. For Docs it goes to the handler; in
// other sections it is only skipped.
func (r *docReader) attachment(deliver bool) error {
	var a Attachment
	var hasHash, hasSize, hasTag bool
	o := newObject(r.itemBytes())
	for {
		k, v, ok := o.next()
		if !ok {
			break
		}
		want := "a string"
		switch string(k) {
		case "Hash":
			a.Hash, ok = stringValue(v)
			hasHash = true
		case "Size":
			a.Size, ok = intValue(v)
			ok, want = ok && a.Size >= 0, "a non-negative integer"
			hasSize = true
		case "Tag":
			a.Tag, ok = stringValue(v)
			hasTag = true
		}
		if !ok {
			return r.fieldError(strconv.Quote(string(k)), want)
		}
	}
	if !hasHash || !hasSize || !hasTag {
		return formatErr(r.off(r.mark), hintDamaged, "the attachment header at byte %d%s lacks one of \"Hash\", \"Size\" and \"Tag\"", r.off(r.mark), r.where())
	}
	header := r.off(r.mark)
	r.endItem()
	cr := &contentReader{r: r, header: header, size: a.Size, left: a.Size}
	if !deliver {
		return cr.discard()
	}
	want, err := base64.StdEncoding.DecodeString(a.Hash)
	if err != nil || len(want) != blake2b.Size256 {
		return formatErr(header, hintDamaged, "the attachment header at byte %d%s has a Hash that is not base64 of a 32-byte BLAKE2b-256 digest", header, r.where())
	}
	if r.hasher == nil {
		r.hasher, _ = blake2b.New256(nil)
	}
	r.hasher.Reset()
	cr.hash, cr.want = r.hasher, want
	a.Content = cr
	if err := r.h.Attachment(&a); err != nil {
		return err
	}
	// The raw bytes must be consumed before the JSON resumes, and checked
	// even if the handler did not read them all.
	if cr.err == nil {
		return cr.discard()
	}
	if cr.err != io.EOF {
		return cr.err
	}
	return nil
}

// contentReader yields an attachment's raw bytes from the reader's buffer
// and source, hashing them as they pass.
type contentReader struct {
	r      *docReader
	header int64 // stream offset of the attachment header
	size   int64
	left   int64
	hash   hash.Hash // nil when only skipping
	want   []byte
	err    error // sticky: io.EOF when done and verified, or the failure
}

func (c *contentReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left == 0 {
		return 0, c.finish()
	}
	r := c.r
	if r.pos == r.end {
		// Large reads bypass the buffer once it is drained.
		if int64(len(p)) >= int64(len(r.buf)) && r.srcErr == nil {
			r.base += int64(r.end)
			r.pos, r.end = 0, 0
			n, err := r.src.Read(p[:min(int64(len(p)), c.left)])
			r.base += int64(n)
			c.consume(p[:n])
			if err != nil {
				r.srcErr = err
				if n == 0 && c.left > 0 {
					return 0, c.short()
				}
			}
			return n, nil
		}
		if !r.fill() {
			return 0, c.short()
		}
	}
	n := copy(p[:min(int64(len(p)), c.left)], r.buf[r.pos:r.end])
	r.pos += n
	c.consume(p[:n])
	return n, nil
}

func (c *contentReader) consume(b []byte) {
	c.left -= int64(len(b))
	if c.hash != nil {
		c.hash.Write(b)
	}
}

// discard reads and checks what the handler left unread.
func (c *contentReader) discard() error {
	r := c.r
	for c.left > 0 {
		if r.pos == r.end && !r.fill() {
			return c.short()
		}
		n := int(min(int64(r.end-r.pos), c.left))
		c.consume(r.buf[r.pos : r.pos+n])
		r.pos += n
	}
	if err := c.finish(); err != io.EOF {
		return err
	}
	return nil
}

// short records that the input ended inside the content.
func (c *contentReader) short() error {
	if e, ok := c.r.eofError().(*Error); ok && e.Err == io.ErrUnexpectedEOF {
		c.err = &Error{Offset: e.Offset, Err: io.ErrUnexpectedEOF, msg: fmt.Sprintf(
			"the input ends early at byte %d%s, inside the content of the attachment whose header is at byte %d: the header declares Size %d but only %d bytes follow. %s",
			e.Offset, c.r.where(), c.header, c.size, c.size-c.left, hintTruncated)}
	} else {
		c.err = c.r.eofError()
	}
	return c.err
}

// finish verifies the hash once all content has been read.
func (c *contentReader) finish() error {
	c.err = io.EOF
	if c.hash != nil && subtle.ConstantTimeCompare(c.hash.Sum(nil), c.want) != 1 {
		c.err = formatErr(c.header, hintDamaged, "the content of the attachment whose header is at byte %d%s does not match its Hash", c.header, c.r.where())
	}
	return c.err
}

// timeSeriesSegment skips the raw segment bytes that follow a TimeSeries
// item, whose length is its "@size".
func (r *docReader) timeSeriesSegment() error {
	if r.size.start < 0 {
		return nil
	}
	n, ok := intValue(r.buf[r.mark+r.size.start : r.mark+r.size.end])
	if !ok || n < 0 {
		return r.fieldError("@size", "a non-negative integer")
	}
	header := r.off(r.mark)
	r.endItem()
	cr := &contentReader{r: r, header: header, size: n, left: n}
	return cr.discard()
}

func (r *docReader) tombstone() error {
	var t Tombstone
	var hasKey bool
	o := newObject(r.itemBytes())
	for {
		k, v, ok := o.next()
		if !ok {
			break
		}
		want := "a string"
		switch string(k) {
		case "Key":
			t.Key, ok = stringValue(v)
			hasKey = true
		case "Type":
			t.Type, ok = stringValue(v)
		case "Collection":
			t.Collection, ok = stringValue(v)
		case "Flags":
			t.Flags, ok = stringValue(v)
		case "ChangeVector":
			t.ChangeVector, ok = stringValue(v)
		case "LastModified":
			t.LastModified, ok = stringValue(v)
		case "DeletedEtag":
			t.DeletedEtag, ok = intValue(v)
			want = "an integer"
		case "Etag":
			t.Etag, ok = intValue(v)
			want = "an integer"
		}
		if !ok {
			return r.fieldError(strconv.Quote(string(k)), want)
		}
	}
	if !hasKey || t.Key == "" {
		return formatErr(r.off(r.mark), hintDamaged, "the tombstone at index %d of %q (byte %d) has no \"Key\"", r.item, r.section, r.off(r.mark))
	}
	return r.h.Tombstone(&t)
}
