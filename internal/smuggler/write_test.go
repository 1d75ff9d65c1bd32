package smuggler

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestWriterExact(t *testing.T) {
	tomb := &Tombstone{Key: "users/2", Type: "Document", Collection: "Users", Flags: "None", ChangeVector: "A:3-x", DeletedEtag: 2, Etag: 3, LastModified: "2019-01-04T07:46:44.5002849Z"}
	odd := &Tombstone{Key: "q\"b\\s\x1e\x00é", Type: "Attachment"}
	tests := []struct {
		name  string
		write func(w *Writer) error
		want  string
	}{
		{"empty database", func(w *Writer) error { return nil },
			`{"BuildVersion":60000,"Docs":[],"Tombstones":[],"Indexes":[]}`},
		{"documents only", func(w *Writer) error {
			if err := w.Document([]byte(`{"a":1,"@metadata":{"@id":"a"}}`)); err != nil {
				return err
			}
			return w.Document([]byte(`{"@metadata":{"@id":"b"}}`))
		}, `{"BuildVersion":60000,"Docs":[{"a":1,"@metadata":{"@id":"a"}},{"@metadata":{"@id":"b"}}],"Tombstones":[],"Indexes":[]}`},
		{"tombstones only, RavenDB's field order and escaping", func(w *Writer) error {
			if err := w.Tombstone(tomb); err != nil {
				return err
			}
			return w.Tombstone(odd)
		}, `{"BuildVersion":60000,"Docs":[],"Tombstones":[` +
			`{"Key":"users/2","Type":"Document","Collection":"Users","Flags":"None","ChangeVector":"A:3-x","DeletedEtag":2,"Etag":3,"LastModified":"2019-01-04T07:46:44.5002849Z"},` +
			`{"Key":"q\"b\\s\u001E\u0000é","Type":"Attachment","Collection":"","Flags":"","ChangeVector":"","DeletedEtag":0,"Etag":0,"LastModified":""}],"Indexes":[]}`},
		{"index only", func(w *Writer) error { return w.Index([]byte(`{"Type":"Map"}`)) },
			`{"BuildVersion":60000,"Docs":[],"Tombstones":[],"Indexes":[{"Type":"Map"}]}`},
		{"everything", func(w *Writer) error {
			if err := w.Attachment("h1", 5, "t\x1e1", strings.NewReader("a\"]\x00b")); err != nil {
				return err
			}
			if err := w.Attachment("h2", 0, "t2", strings.NewReader("")); err != nil {
				return err
			}
			if err := w.Document([]byte(`{"@metadata":{"@id":"a"}}`)); err != nil {
				return err
			}
			if err := w.Tombstone(tomb); err != nil {
				return err
			}
			if err := w.Index([]byte(`{"Type":"Map"}`)); err != nil {
				return err
			}
			return w.Index([]byte(`{"Type":"Reduce"}`))
		}, `{"BuildVersion":60000,"Docs":[` +
			`{"@metadata":{"@export-type":"Attachment"},"Hash":"h1","Size":5,"Tag":"t\u001E1"}a"]` + "\x00" + `b,` +
			`{"@metadata":{"@export-type":"Attachment"},"Hash":"h2","Size":0,"Tag":"t2"},` +
			`{"@metadata":{"@id":"a"}}],"Tombstones":[` +
			`{"Key":"users/2","Type":"Document","Collection":"Users","Flags":"None","ChangeVector":"A:3-x","DeletedEtag":2,"Etag":3,"LastModified":"2019-01-04T07:46:44.5002849Z"}` +
			`],"Indexes":[{"Type":"Map"},{"Type":"Reduce"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, 60000)
			if err := tc.write(w); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("output:\n got %s\nwant %s", buf.String(), tc.want)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 1)
	if err := w.Tombstone(&Tombstone{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"document after tombstones", w.Document([]byte(`{}`)),
			`smuggler: Writer.Document called after the "Tombstones" section was started. Write Docs, then Tombstones, then Indexes`},
		{"attachment after tombstones", w.Attachment("h", 0, "t", strings.NewReader("")),
			`smuggler: Writer.Attachment called after the "Tombstones" section was started. Write Docs, then Tombstones, then Indexes`},
		{"not an object", w.Index([]byte(` {"a":1}`)), `smuggler: Writer.Index needs a JSON object without surrounding whitespace`},
		{"negative size", w.Attachment("h", -1, "t", strings.NewReader("")), `smuggler: Writer.Attachment got a negative size -1`},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: error %v, want %s", tc.name, tc.err, tc.want)
		}
	}
	// Misuse leaves the output intact.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := `{"BuildVersion":1,"Docs":[],"Tombstones":[{"Key":"a","Type":"","Collection":"","Flags":"","ChangeVector":"","DeletedEtag":0,"Etag":0,"LastModified":""}],"Indexes":[]}`; buf.String() != want {
		t.Errorf("output %s, want %s", buf.String(), want)
	}
	if err := w.Document([]byte(`{}`)); err == nil || err.Error() != "smuggler: Writer.Document called after Close" {
		t.Errorf("Document after Close: %v", err)
	}
}

func TestWriterShortAttachment(t *testing.T) {
	w := NewWriter(io.Discard, 1)
	err := w.Attachment("h1", 10, "t", strings.NewReader("abc"))
	want := "smuggler: attachment h1 has 3 bytes of content but its size is 10; the export is incomplete"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	// The output is now invalid, so the Writer stays broken.
	if err2 := w.Document([]byte(`{}`)); err2 != err {
		t.Errorf("Document after a failure: %v, want the first error", err2)
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close after a failure: %v, want the first error", err2)
	}
}

type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestWriterPropagatesWriteErrors(t *testing.T) {
	w := NewWriter(&failWriter{n: 100 << 10}, 1)
	body := []byte(`{"x":"` + strings.Repeat("y", 1000) + `"}`)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = w.Document(body)
	}
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("error %v, want the destination's error", err)
	}
}

// TestRoundTrip reads exports, writes them back through Compress, and reads
// the result: every item must come back identical (bodies byte for byte).
func TestRoundTrip(t *testing.T) {
	inputs := map[string][]byte{}
	dump, _ := attachmentDump()
	inputs["attachments"] = dump
	inputs["control characters"] = []byte("{\"BuildVersion\":1,\"Docs\":[{\"t\":\"a\x01\tb\",\"@metadata\":{\"@id\":\"x\x02\",\"@collection\":\"C\"}}],\"Indexes\":[{\"m\":\"\x1f\"}]}")
	if testing.Short() {
		t.Log("skipping the sample in -short mode")
	} else {
		_, plain := sampleData(t)
		inputs["sample"] = plain
	}
	for name, in := range inputs {
		var want recorder
		if err := Read(bytes.NewReader(in), &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range []Compression{None, Gzip, Zstd} {
			t.Run(name+"/"+c.String(), func(t *testing.T) {
				var file bytes.Buffer
				cw, err := Compress(&file, c)
				if err != nil {
					t.Fatal(err)
				}
				w := NewWriter(cw, want.events[0].n)
				for _, e := range want.events[1:] {
					switch e.kind {
					case "doc":
						err = w.Document(e.doc.Body)
					case "att":
						err = w.Attachment(e.att.Hash, e.att.Size, e.att.Tag, bytes.NewReader(e.att.Content))
					case "tomb":
						err = w.Tombstone(&e.tomb)
					case "index":
						err = w.Index(e.raw)
					default:
						t.Fatalf("unexpected event %q", e.kind)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if err := cw.Close(); err != nil {
					t.Fatal(err)
				}

				rc, kind, err := Decompress(bytes.NewReader(file.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				if kind != c {
					t.Errorf("Decompress detected %v, want %v", kind, c)
				}
				rc.Close()
				var got recorder
				if err := Import(bytes.NewReader(file.Bytes()), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.events) != len(want.events) {
					t.Fatalf("got %d events, want %d", len(got.events), len(want.events))
				}
				for i := range want.events {
					if !reflect.DeepEqual(got.events[i], want.events[i]) {
						t.Fatalf("event %d differs:\n got %+v\nwant %+v", i, got.events[i], want.events[i])
					}
				}
			})
		}
	}
}
