package smuggler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// attHeader is RavenDB's attachment stream header for content.
func attHeader(content []byte, tag string) string {
	// The tag goes in raw: RavenDB writes its record separators (0x1E)
	// unescaped.
	return fmt.Sprintf(`{"@metadata":{"@export-type":"Attachment"},"Hash":"%s","Size":%d,"Tag":"%s"}`, hashOf(content), len(content), tag)
}

func TestReadErrors(t *testing.T) {
	const (
		notExport = " Check that the file is a .ravendbdump or a magpie/RavenDB backup."
		damaged   = " The export is damaged; check that the file is complete and unmodified."
		truncated = " Check that the file was copied or downloaded completely."
		needsID   = " Every exported document needs one; check that the file was exported by RavenDB or magpie."
	)
	short := attHeader(make([]byte, 100), "t")
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error // what the error wraps
	}{
		{"empty", "", "the input is empty: a RavenDB export is a JSON object (possibly gzip- or zstd-compressed). Check the file.", ErrFormat},
		{"only whitespace", " \n\t", "the input is empty: a RavenDB export is a JSON object (possibly gzip- or zstd-compressed). Check the file.", ErrFormat},
		{"random bytes", string(randomBytes(7, 4096)),
			"the input is not a RavenDB export: it starts with byte 0x19 at byte 0 where a JSON object was expected." + notExport + " RavenDB encrypted exports (.ravendb-encrypted-*) are not supported yet.", ErrFormat},
		{"age file", "age-encryption.org/v1\n-> scrypt x 10\n",
			"the input is an age-encrypted file, not a RavenDB export. Restore it with magpie restore and its key or identity, or decrypt it with age first.", ErrFormat},
		{"array", "[1,2]", "the input is not a RavenDB export: it is a JSON array at byte 0, not a JSON object." + notExport, ErrFormat},
		{"number", " 42", "the input is not a RavenDB export: it is a JSON number at byte 1, not a JSON object." + notExport, ErrFormat},
		{"string", `"x"`, "the input is not a RavenDB export: it is a JSON string at byte 0, not a JSON object." + notExport, ErrFormat},
		{"unknown property", `{"foo":1}`, `the input is not a RavenDB export: unexpected top-level property "foo" at byte 2.` + notExport, ErrFormat},
		{"Docs not an array", `{"Docs":{}}`, `the input is not a RavenDB export: "Docs" at byte 8 is not a JSON array.` + notExport, ErrFormat},
		{"BuildVersion not an integer", `{"BuildVersion":4.5}`, `the input is not a RavenDB export: BuildVersion at byte 16 is not an integer.` + notExport, ErrFormat},
		{"invalid literal", `{"Docs":[{"a":tru}]}`, `invalid JSON at byte 17 in item 0 of "Docs": found '}' in what should be the literal true.` + damaged, ErrFormat},
		{"bad escape", `{"Docs":[{"a":"\x"}]}`, `invalid JSON at byte 16 in item 0 of "Docs": found 'x' after a backslash, which is not a valid escape.` + damaged, ErrFormat},
		{"bad unicode escape", `{"Docs":[{"a":"\u12G4"}]}`, `invalid JSON at byte 19 in item 0 of "Docs": found 'G' where a hex digit of a \u escape was expected.` + damaged, ErrFormat},
		{"leading zero", `{"Docs":[{"a":01}]}`, `invalid JSON at byte 15 in item 0 of "Docs": found '1' where ',' or '}' was expected in an object.` + damaged, ErrFormat},
		{"bare minus", `{"Docs":[{"a":-}]}`, `invalid JSON at byte 15 in item 0 of "Docs": found '}' where a digit was expected in a number.` + damaged, ErrFormat},
		{"missing colon", `{"Docs":[{"a" 1}]}`, `invalid JSON at byte 14 in item 0 of "Docs": found '1' where ':' was expected after a property name.` + damaged, ErrFormat},
		{"unquoted key", `{"Docs":[{a:1}]}`, `invalid JSON at byte 10 in item 0 of "Docs": found 'a' where a property name was expected.` + damaged, ErrFormat},
		{"trailing comma in array", `{"Docs":[{"@metadata":{"@id":"a"}},]}`, `invalid JSON at byte 35 in "Docs": found ']' after ',' where another item was expected.` + damaged, ErrFormat},
		{"trailing comma at top", `{"Docs":[],}`, `invalid JSON at byte 11: found '}' where a top-level property name was expected.` + damaged, ErrFormat},
		{"item not an object", `{"Docs":[1]}`, `item 0 of "Docs" (byte 9) is not a JSON object.` + damaged, ErrFormat},
		{"doc without metadata", `{"Docs":[{"a":1}]}`,
			`the document at index 0 of "Docs" (byte 9) has no "@metadata" object. Every exported document needs its @metadata with an @id; check that the file was exported by RavenDB or magpie.`, ErrFormat},
		{"doc without id", `{"Docs":[{"@metadata":{"@id":"a"}},{"@metadata":{"@id":"b"}},{"a":1,"@metadata":{"@collection":"X"}}]}`,
			`the document at index 2 of "Docs" (byte 61) has no "@id" in its "@metadata".` + needsID, ErrFormat},
		{"id not a string", `{"Docs":[{"@metadata":{"@id":1}}]}`, `item 0 of "Docs" (byte 9) is malformed: its @metadata.@id is not a string.` + damaged, ErrFormat},
		{"unknown export type", `{"Docs":[{"@metadata":{"@id":"a","@export-type":"Weird"}}]}`, `item 0 of "Docs" (byte 9) has an unknown @metadata.@export-type "Weird".` + notExport, ErrFormat},
		{"attachment without tag", `{"Docs":[{"@metadata":{"@export-type":"Attachment"},"Hash":"x","Size":1}]}`,
			`the attachment header at byte 9 in item 0 of "Docs" lacks one of "Hash", "Size" and "Tag".` + damaged, ErrFormat},
		{"attachment with a bad hash", `{"Docs":[{"@metadata":{"@export-type":"Attachment"},"Hash":"aGk=","Size":0,"Tag":"t"}]}`,
			`the attachment header at byte 9 in item 0 of "Docs" has a Hash that is not base64 of a 32-byte BLAKE2b-256 digest.` + damaged, ErrFormat},
		{"attachment content does not match", `{"Docs":[` + attHeader([]byte("abc"), "t") + `abd]}`,
			`the content of the attachment whose header is at byte 9 in item 0 of "Docs" does not match its Hash.` + damaged, ErrFormat},
		{"attachment longer than the input", `{"Docs":[` + short + "abc",
			fmt.Sprintf(`the input ends early at byte %d in item 0 of "Docs", inside the content of the attachment whose header is at byte 9: the header declares Size 100 but only 3 bytes follow.`, 9+len(short)+3) + truncated, io.ErrUnexpectedEOF},
		{"tombstone without key", `{"Tombstones":[{"Type":"Document"}]}`, `the tombstone at index 0 of "Tombstones" (byte 15) has no "Key".` + damaged, ErrFormat},
		{"tombstone etag not a number", `{"Tombstones":[{"Key":"a","Etag":"x"}]}`, `item 0 of "Tombstones" (byte 15) is malformed: its "Etag" is not an integer.` + damaged, ErrFormat},
		{"DatabaseRecord not an object", `{"DatabaseRecord":[]}`, `the input is not a RavenDB export: "DatabaseRecord" at byte 18 is not a JSON object.` + notExport, ErrFormat},
		{"truncated in a document", `{"Docs":[{"@metadata":{"@id":"a"}}`, `the input ends early at byte 34 in "Docs": the export is truncated.` + truncated, io.ErrUnexpectedEOF},
		{"truncated in a string", `{"Docs":[{"@metadata":{"@id":"a`, `the input ends early at byte 31 in item 0 of "Docs": the export is truncated.` + truncated, io.ErrUnexpectedEOF},
		{"truncated at top level", `{"Docs"`, `the input ends early at byte 7: the export is truncated.` + truncated, io.ErrUnexpectedEOF},
		{"trailing garbage", `{"Docs":[]} x`, `the input has unexpected data ('x') at byte 12, after the export ended at byte 11. Check that the file holds a single, undamaged export.`, ErrFormat},
		{"second object", `{"Docs":[]}{}`, `the input has unexpected data ('{') at byte 11, after the export ended at byte 11. Check that the file holds a single, undamaged export.`, ErrFormat},
		{"deeply nested objects", `{"Docs":[{"a":` + strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat("}", 601) + `]}`,
			`the input nests objects and arrays more than 512 levels deep at byte 2559 in item 0 of "Docs".` + damaged, ErrFormat},
		{"deeply nested arrays", `{"Docs":[{"a":` + strings.Repeat(`[`, 100000) + `]}`,
			`the input nests objects and arrays more than 512 levels deep at byte 523 in item 0 of "Docs".` + damaged, ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Read(strings.NewReader(tc.in), &recorder{})
			if err == nil {
				t.Fatalf("Read succeeded, want error %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error does not wrap %v", tc.wantErr)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is a %T, want *Error", err)
			}
		})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadSourceError(t *testing.T) {
	boom := errors.New("disk on fire")
	err := Read(&failingReader{data: []byte(`{"Docs":[{"a"`), err: boom}, &recorder{})
	want := `reading the input failed at byte 13 in item 0 of "Docs": disk on fire. Check the file and the storage it is on.`
	if err == nil || err.Error() != want || !errors.Is(err, boom) {
		t.Fatalf("error = %v, want %q wrapping the read error", err, want)
	}
}

func TestReadHandlerErrors(t *testing.T) {
	content := []byte("hello")
	dump := `{"BuildVersion":1,"DatabaseRecord":{},"Docs":[` + attHeader(content, "t") + string(content) +
		`,{"@metadata":{"@id":"a"}}],"Tombstones":[{"Key":"b"}],"Indexes":[{"Name":"i"}]}`
	for _, kind := range []string{"build", "skip", "att", "doc", "tomb", "index"} {
		t.Run(kind, func(t *testing.T) {
			rec := &recorder{failOn: kind}
			err := Read(strings.NewReader(dump), rec)
			if err != errStop {
				t.Fatalf("Read returned %v, want the handler's error unchanged", err)
			}
			if last := rec.events[len(rec.events)-1]; last.kind != kind {
				t.Errorf("last event is %q, want Read to stop right after %q", last.kind, kind)
			}
		})
	}
	var rec recorder
	if err := Read(strings.NewReader(dump), &rec); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range rec.events {
		kinds = append(kinds, e.kind)
	}
	if want := []string{"build", "skip", "att", "doc", "tomb", "index"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

func TestReadMetadata(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Document // Body is checked separately
	}{
		{"plain", `{"@metadata":{"@collection":"Users","@id":"users/1","@change-vector":"A:1-x","@last-modified":"2024-01-02T03:04:05.0000000Z"}}`,
			Document{ID: "users/1", Collection: "Users", ChangeVector: "A:1-x", LastModified: "2024-01-02T03:04:05.0000000Z"}},
		{"escaped id", `{"@metadata":{"@id":"us\"ers\\\/\u00e9\ud83d\ude00\t1"}}`, Document{ID: "us\"ers\\/é😀\t1"}},
		{"raw UTF-8 and control character in id", "{\"@metadata\":{\"@id\":\"caf\u00e9\x01\"}}", Document{ID: "café\x01"}},
		{"lone surrogate like encoding/json", `{"@metadata":{"@id":"a\ud800b\udc00\ud800\u0041"}}`, Document{ID: "a\uFFFDb\uFFFD\uFFFDA"}},
		{"invalid UTF-8 like encoding/json", "{\"@metadata\":{\"@id\":\"a\xffb\"}}", Document{ID: "a\uFFFDb"}},
		{"escaped keys", `{"\u0040metadata":{"\u0040id":"x","@coll\u0065ction":"C"}}`, Document{ID: "x", Collection: "C"}},
		{"nulls and flags", `{"@metadata":{"@id":"x","@collection":null,"@flags":"HasAttachments, HasRevisions","@attachments":null}}`,
			Document{ID: "x", Flags: "HasAttachments, HasRevisions"}},
		{"legacy export type", `{"@metadata":{"@export-type":"Document","@id":"x"}}`, Document{ID: "x"}},
		{"attachments", `{"@metadata":{"@id":"x","@attachments":[{"Name":"a.png","Hash":"h1","ContentType":"image/png","Size":12},{"Name":"b","Hash":"h2","ContentType":"","Size":0,"Extra":[1,{"x":"]"}]}]}}`,
			Document{ID: "x", Attachments: []AttachmentRef{{"a.png", "h1", "image/png", 12}, {"b", "h2", "", 0}}}},
		{"nested @metadata is not the metadata", `{"x":{"@metadata":{"@id":"wrong"}},"@metadata":{"@id":"right"}}`, Document{ID: "right"}},
		{"whitespace everywhere", " {\n \"@metadata\" : {\r\n\t\"@id\" : \"x\" , \"@collection\":\"C\" } , \"n\" : [ 1 , -2.5e+3 , true , false , null ] } ",
			Document{ID: "x", Collection: "C"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			if err := Read(strings.NewReader(`{"Docs":[`+tc.doc+`]}`), &rec); err != nil {
				t.Fatal(err)
			}
			docs := rec.docs()
			if len(docs) != 1 {
				t.Fatalf("got %d docs", len(docs))
			}
			got := docs[0]
			wantBody := strings.TrimSpace(tc.doc)
			if !bytes.Contains([]byte(wantBody), []byte{1}) && string(got.Body) != wantBody {
				t.Errorf("body %q, want the input %q", got.Body, wantBody)
			}
			got.Body = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadStrictBody(t *testing.T) {
	// Raw control characters inside strings (keys included) become
	// \u00XX; whitespace between tokens and existing escapes stay as they are.
	in := "{\"a\x1f\":\"x\ty\x00\",\n\t\"b\":\"\\\"\\u0001\x19\",\"@metadata\":{\"@id\":\"d\x02\"}}"
	want := "{\"a\\u001F\":\"x\\u0009y\\u0000\",\n\t\"b\":\"\\\"\\u0001\\u0019\",\"@metadata\":{\"@id\":\"d\\u0002\"}}"
	var rec recorder
	if err := Read(strings.NewReader(`{"Docs":[`+in+`],"Indexes":[`+in+`]}`), &rec); err != nil {
		t.Fatal(err)
	}
	d := rec.docs()[0]
	if string(d.Body) != want {
		t.Errorf("body:\n got %q\nwant %q", d.Body, want)
	}
	if d.ID != "d\x02" {
		t.Errorf("id %q, want %q", d.ID, "d\x02")
	}
	if idx := rec.events[1].raw; string(idx) != want {
		t.Errorf("index:\n got %q\nwant %q", idx, want)
	}
}

func TestReadSkippedSections(t *testing.T) {
	att := []byte("revision attachment \x00]}\"")
	seg := []byte("\x00\x01raw]},segment{\"")
	dump := `{"BuildVersion":54000,` +
		`"DatabaseRecord":{"DatabaseName":"db","Settings":{"a":[1,2,{"b":null}]}},` +
		`"Docs":[{"@metadata":{"@id":"a"}}],` +
		`"RevisionDocuments":[` + attHeader(att, "r") + string(att) + `,{"@metadata":{"@id":"a"}},{"@metadata":{"@id":"a"}}],` +
		`"Tombstones":[],` +
		`"Conflicts":[],"Identities":[{"Key":"users|","Value":3}],"CompareExchange":[{"Key":"k","Value":{"Object":1}}],` +
		`"CompareExchangeTombstones":[],"Counters":[],"CounterGroups":[{"DocumentId":"a","Values":{"x":1}}],` +
		`"Subscriptions":[],"ReplicationHubCertificates":[],` +
		`"TimeSeries":[{"@document":{"DocId":"a","Name":"hr","Baseline":"2020-01-01T00:00:00.0000000Z"},"@size":` + fmt.Sprint(len(seg)) + `}` + string(seg) +
		`,{"@document":{"DocId":"a","Name":"hr"},"@size":0}],` +
		`"TimeSeriesDeletedRanges":[],"DocsDeletions":[],"AttachmentsDeletions":[{"Key":"x"}],` +
		`"Indexes":[],"docs":[{"@metadata":{"@id":"b"}}]}`
	var rec recorder
	if err := Read(strings.NewReader(dump), &rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rec.events {
		switch e.kind {
		case "skip":
			got = append(got, fmt.Sprintf("skip %s %d", e.section, e.n))
		case "doc":
			got = append(got, "doc "+e.doc.ID)
		case "build":
			got = append(got, fmt.Sprintf("build %d", e.n))
		default:
			got = append(got, e.kind)
		}
	}
	want := []string{
		"build 54000", "skip DatabaseRecord 1", "doc a", "skip RevisionDocuments 2",
		"skip Conflicts 0", "skip Identities 1", "skip CompareExchange 1", "skip CompareExchangeTombstones 0",
		"skip Counters 0", "skip CounterGroups 1", "skip Subscriptions 0", "skip ReplicationHubCertificates 0",
		"skip TimeSeries 2", "skip TimeSeriesDeletedRanges 0", "skip DocsDeletions 0", "skip AttachmentsDeletions 1",
		"doc b", // section names match case-insensitively, as in RavenDB
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

// attachmentDump is a hand-written export with two attachment streams (64
// KiB of random bytes including JSON delimiters and NULs, and an empty one)
// before the document that references them, then a tombstone and an index.
func attachmentDump() (dump []byte, big []byte) {
	big = randomBytes(42, 64<<10)
	copy(big[100:], "\"{]\x00}[,")
	big[0], big[len(big)-1] = '"', 0
	empty := []byte{}
	// RavenDB's tags hold raw record separators (0x1E).
	tag1 := "users/1\x1ed\x1ephoto.jpg\x1e" + hashOf(big) + "\x1eimage/jpeg"
	var b bytes.Buffer
	b.WriteString(`{"BuildVersion":42000,"Docs":[`)
	b.WriteString(attHeader(big, tag1))
	b.Write(big)
	b.WriteString(",")
	b.WriteString(attHeader(empty, "users/1\x1ed\x1eempty.txt"))
	b.WriteString(" ,\n")
	fmt.Fprintf(&b, `{"Name":"Ann","@metadata":{"@collection":"Users","@flags":"HasAttachments","@attachments":[{"Name":"photo.jpg","Hash":%q,"ContentType":"image/jpeg","Size":65536},{"Name":"empty.txt","Hash":%q,"ContentType":"text/plain","Size":0}],"@id":"users/1","@change-vector":"A:1-x","@last-modified":"2024-01-01T00:00:00.0000000Z"}}`,
		hashOf(big), hashOf(empty))
	b.WriteString(`],"Tombstones":[{"Key":"users/2","Type":"Document","Collection":"Users","Flags":"HasAttachments","ChangeVector":"A:3-x","DeletedEtag":2,"Etag":3,"LastModified":"2019-01-04T07:46:44.5002849Z"}],`)
	b.WriteString(`"Indexes":[{"Type":"Map","IndexDefinition":{"Name":"Users/ByName","Maps":["from u in docs.Users select new { u.Name }"]}}]}`)
	return b.Bytes(), big
}

func TestReadAttachments(t *testing.T) {
	dump, big := attachmentDump()
	for _, src := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(dump) }},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(dump)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(dump)) }},
	} {
		t.Run(src.name, func(t *testing.T) {
			var rec recorder
			if err := Read(src.r(), &rec); err != nil {
				t.Fatal(err)
			}
			if len(rec.events) != 6 {
				t.Fatalf("got %d events, want 6", len(rec.events))
			}
			a1, a2 := rec.events[1].att, rec.events[2].att
			if !bytes.Equal(a1.Content, big) || a1.Size != 65536 || a1.Hash != hashOf(big) || !strings.HasPrefix(a1.Tag, "users/1\x1ed\x1ephoto.jpg\x1e") {
				t.Errorf("first attachment: size %d, hash %s, tag %q, content equal: %v", a1.Size, a1.Hash, a1.Tag, bytes.Equal(a1.Content, big))
			}
			if len(a2.Content) != 0 || a2.Size != 0 || a2.Hash != hashOf(nil) || a2.Tag != "users/1\x1ed\x1eempty.txt" {
				t.Errorf("second attachment: %+v", a2)
			}
			d := rec.events[3].doc
			want := []AttachmentRef{{"photo.jpg", hashOf(big), "image/jpeg", 65536}, {"empty.txt", hashOf(nil), "text/plain", 0}}
			if d.ID != "users/1" || d.Flags != "HasAttachments" || !reflect.DeepEqual(d.Attachments, want) {
				t.Errorf("document: %+v", d)
			}
			wantTomb := Tombstone{Key: "users/2", Type: "Document", Collection: "Users", Flags: "HasAttachments", ChangeVector: "A:3-x", DeletedEtag: 2, Etag: 3, LastModified: "2019-01-04T07:46:44.5002849Z"}
			if rec.events[4].tomb != wantTomb {
				t.Errorf("tombstone %+v, want %+v", rec.events[4].tomb, wantTomb)
			}
		})
	}
}

// partialHandler reads only the first bytes of each attachment; the reader
// must skip (and still verify) the rest.
type partialHandler struct {
	recorder
	n int
}

func (p *partialHandler) Attachment(a *Attachment) error {
	buf := make([]byte, p.n)
	n, err := io.ReadFull(a.Content, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return err
	}
	return p.add(event{kind: "att", att: struct {
		Hash, Tag string
		Size      int64
		Content   []byte
	}{Hash: a.Hash, Size: a.Size, Content: buf[:n]}})
}

func TestReadAttachmentNotDrained(t *testing.T) {
	dump, big := attachmentDump()
	for _, n := range []int{0, 1, 1000, 64 << 10} {
		h := &partialHandler{n: n}
		if err := Read(iotest.HalfReader(bytes.NewReader(dump)), h); err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
		if got := h.events[1].att.Content; !bytes.Equal(got, big[:min(n, len(big))]) {
			t.Errorf("reading %d bytes: got different content", n)
		}
		if h.count("doc") != 1 || h.count("tomb") != 1 || h.count("index") != 1 {
			t.Errorf("reading %d bytes: the items after the attachments were not all read", n)
		}
	}

	// A damaged content is reported even when the handler reads nothing.
	bad := bytes.Clone(dump)
	i := bytes.Index(bad, big[1000:1010])
	bad[i] ^= 1
	err := Read(bytes.NewReader(bad), &partialHandler{n: 0})
	want := `the content of the attachment whose header is at byte 30 in item 0 of "Docs" does not match its Hash. The export is damaged; check that the file is complete and unmodified.`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestReadLargeDocument(t *testing.T) {
	// A document four times the initial buffer forces the buffer to grow;
	// it must come back byte for byte.
	big := strings.Repeat("x\x01", 2*readBufSize)
	doc := `{"big":"` + big + `","@metadata":{"@id":"big"}}`
	dump := `{"Docs":[{"@metadata":{"@id":"small"}},` + doc + `,{"@metadata":{"@id":"after"}}]}`
	var rec recorder
	if err := Read(iotest.HalfReader(strings.NewReader(dump)), &rec); err != nil {
		t.Fatal(err)
	}
	docs := rec.docs()
	if len(docs) != 3 || docs[1].ID != "big" || docs[2].ID != "after" {
		t.Fatalf("docs: %d", len(docs))
	}
	if want := strings.ReplaceAll(doc, "\x01", `\u0001`); string(docs[1].Body) != want {
		t.Errorf("large body differs")
	}
}

// patternReader yields n bytes of a fixed pattern, generated on the fly.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off == p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestReadMemoryBounded streams a 256 MiB attachment and 20,000 documents
// generated on the fly: the read buffer must not grow and allocations must
// stay far below the input size.
func TestReadMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 260 MB")
	}
	const size = 256 << 20
	h := newHash()
	io.Copy(h, &patternReader{n: size})
	header := fmt.Sprintf(`{"@metadata":{"@export-type":"Attachment"},"Hash":"%s","Size":%d,"Tag":"t"}`, h.sum(), size)
	docs := genDump(20000)
	docs = docs[bytes.IndexByte(docs, '[')+1:]
	input := io.MultiReader(strings.NewReader(`{"Docs":[`+header), &patternReader{n: size}, strings.NewReader(","), bytes.NewReader(docs))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	dr := &docReader{reader: newReader(input), h: &countHandler{}}
	if err := dr.run(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if len(dr.buf) != readBufSize {
		t.Errorf("the read buffer grew to %d bytes", len(dr.buf))
	}
	if got := dr.h.(*countHandler).docs; got != 20000 {
		t.Errorf("read %d documents", got)
	}
	// Per document a few strings and the Document itself; nothing per
	// attachment byte.
	t.Logf("allocated %d KiB", (after.TotalAlloc-before.TotalAlloc)>>10)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d MiB to read %d MiB", alloc>>20, (size+len(docs))>>20)
	}
}

func TestReadItemTooBig(t *testing.T) {
	defer func(old int) { maxItemSize = old }(maxItemSize)
	maxItemSize = 1 << 20
	dump := `{"Docs":[{"@metadata":{"@id":"a"}},{"x":"` + strings.Repeat("y", 2<<20) + `"}]}`
	err := Read(strings.NewReader(dump), &recorder{})
	want := `item 1 of "Docs" (byte 35) is larger than 1 MiB, the most magpie holds in memory for one item. Check that the file is an undamaged export; magpie cannot import an item this large.`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
