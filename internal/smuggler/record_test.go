package smuggler

import (
	"bytes"
	"strings"
	"testing"
)

// recordRecorder is a recorder that also takes the DatabaseRecord.
type recordRecorder struct {
	recorder
	records []string
}

func (r *recordRecorder) DatabaseRecord(rec []byte) error {
	r.records = append(r.records, string(rec))
	return r.add(event{kind: "record"})
}

func TestDatabaseRecord(t *testing.T) {
	rec := `{"DatabaseName":"db","Encrypted":false,"PeriodicBackups":[{"TaskId":1,"Name":"n\u0007"}]}`
	doc := `{"a":1,"@metadata":{"@id":"a/1","@collection":"As"}}`
	var buf bytes.Buffer
	w := NewWriter(&buf, 60000)
	if err := w.DatabaseRecord([]byte(rec)); err != nil {
		t.Fatal(err)
	}
	if err := w.Document([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := `{"BuildVersion":60000,"DatabaseRecord":` + rec + `,"Docs":[` + doc + `],"Tombstones":[],"Indexes":[]}`
	if buf.String() != want {
		t.Fatalf("output\n got %s\nwant %s", buf.String(), want)
	}

	// An empty export with a record still has its three arrays.
	var empty bytes.Buffer
	w = NewWriter(&empty, 1)
	if err := w.DatabaseRecord([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := empty.String(); got != `{"BuildVersion":1,"DatabaseRecord":{},"Docs":[],"Tombstones":[],"Indexes":[]}` {
		t.Fatalf("empty export %s", got)
	}

	// A RecordHandler gets the record (raw control characters made
	// strict); a plain Handler counts it as skipped, as before.
	raw := strings.Replace(want, `\u0007`, "\x07", 1)
	rr := &recordRecorder{}
	if err := Read(strings.NewReader(raw), rr); err != nil {
		t.Fatal(err)
	}
	if len(rr.records) != 1 || rr.records[0] != rec || rr.count("skip") != 0 || rr.count("doc") != 1 {
		t.Fatalf("records %q, events %v", rr.records, rr.events)
	}
	plain := &recorder{}
	if err := Read(strings.NewReader(raw), plain); err != nil {
		t.Fatal(err)
	}
	if plain.count("skip") != 1 || plain.events[1].section != "DatabaseRecord" || plain.events[1].n != 1 {
		t.Fatalf("plain handler events %v", plain.events)
	}
}

func TestDatabaseRecordMisuse(t *testing.T) {
	cases := []struct {
		name  string
		write func(w *Writer) error
		err   string
	}{
		{"after a document", func(w *Writer) error {
			if err := w.Document([]byte(`{}`)); err != nil {
				return err
			}
			return w.DatabaseRecord([]byte(`{}`))
		}, `smuggler: Writer.DatabaseRecord called after the "Docs" section was started. Write the DatabaseRecord first, once`},
		{"twice", func(w *Writer) error {
			if err := w.DatabaseRecord([]byte(`{}`)); err != nil {
				return err
			}
			return w.DatabaseRecord([]byte(`{}`))
		}, `smuggler: Writer.DatabaseRecord called after the "DatabaseRecord" section was started. Write the DatabaseRecord first, once`},
		{"not an object", func(w *Writer) error { return w.DatabaseRecord([]byte(`[]`)) },
			"smuggler: Writer.DatabaseRecord needs a JSON object without surrounding whitespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := c.write(NewWriter(&buf, 1))
			if err == nil || err.Error() != c.err {
				t.Fatalf("error %v, want %q", err, c.err)
			}
		})
	}
}
