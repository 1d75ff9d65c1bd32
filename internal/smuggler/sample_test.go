package smuggler

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"testing/iotest"
)

// naiveStrict is the test oracle for RavenDB's raw control characters: it
// escapes every byte below 0x20 that is not JSON whitespace. Such a byte can
// only be legal inside a string, so on a well-formed export this equals the
// reader's escaping without sharing any of its code.
func naiveStrict(b []byte) []byte {
	var out []byte
	for _, c := range b {
		if c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			out = append(out, '\\', 'u', '0', '0', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
			continue
		}
		out = append(out, c)
	}
	return out
}

// naiveTitle finds the Title of a sample document by byte search: the
// sample writes Title before TimeStamp and @metadata.@id after both.
func naiveTitle(t *testing.T, plain []byte, id string) string {
	t.Helper()
	at := bytes.Index(plain, []byte(`"@id":"`+id+`"`))
	if at < 0 {
		t.Fatalf("%s not in the sample", id)
	}
	start := bytes.LastIndex(plain[:at], []byte(`"Title":"`)) + len(`"Title":"`)
	end := start + bytes.Index(plain[start:], []byte(`","TimeStamp"`))
	return string(plain[start:end])
}

func TestReadSample(t *testing.T) {
	compressed, plain := sampleData(t)

	var rec recorder
	if err := Import(bytes.NewReader(compressed), &rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.events[0]; got.kind != "build" || got.n != 41004 {
		t.Errorf("first event = %+v, want BuildVersion 41004", got)
	}
	docs := rec.docs()
	if len(docs) != 9330 {
		t.Fatalf("got %d documents, want 9330", len(docs))
	}
	if n := rec.count("index"); n != 1 {
		t.Errorf("got %d indexes, want 1", n)
	}
	if n := rec.count("att") + rec.count("tomb") + rec.count("skip"); n != 0 {
		t.Errorf("got %d attachments, tombstones or skipped sections, want 0", n)
	}

	// The oracle: encoding/json over the naively escaped file, keeping each
	// document's bytes (json.RawMessage) and its value.
	var oracle struct {
		Docs    []json.RawMessage
		Indexes []json.RawMessage
	}
	if err := json.Unmarshal(naiveStrict(plain), &oracle); err != nil {
		t.Fatal(err)
	}
	if len(oracle.Docs) != len(docs) {
		t.Fatalf("oracle has %d docs, reader %d", len(oracle.Docs), len(docs))
	}
	titles := map[string]string{}
	for i, d := range docs {
		if d.Collection != "LastFms" {
			t.Fatalf("doc %d (%s): collection %q, want LastFms", i, d.ID, d.Collection)
		}
		if !json.Valid(d.Body) {
			t.Fatalf("doc %d (%s): body is not valid JSON", i, d.ID)
		}
		if !bytes.Equal(d.Body, oracle.Docs[i]) {
			t.Fatalf("doc %d (%s): body differs from the input:\n got %s\nwant %s", i, d.ID, d.Body, oracle.Docs[i])
		}
		var got, want any
		dec := func(b []byte, v *any) {
			dd := json.NewDecoder(bytes.NewReader(b))
			dd.UseNumber()
			if err := dd.Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		dec(d.Body, &got)
		dec(oracle.Docs[i], &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("doc %d (%s): value differs", i, d.ID)
		}
		meta := want.(map[string]any)["@metadata"].(map[string]any)
		if d.ID != meta["@id"] || d.ChangeVector != meta["@change-vector"] || d.LastModified != meta["@last-modified"] || d.Flags != "" || d.Attachments != nil {
			t.Fatalf("doc %d: fields %+v do not match its metadata %v", i, d, meta)
		}
		titles[d.ID] = got.(map[string]any)["Title"].(string)
	}
	if !bytes.Equal(rec.events[len(rec.events)-1].raw, oracle.Indexes[0]) {
		t.Errorf("index bytes differ from the input")
	}

	// The three titles with raw control characters, as Python's
	// json.loads(strict=False) decodes them, and as found by byte search.
	for _, tc := range []struct{ id, title string }{
		{"lastfm/3771", "I\x19m Slowly Turning Into You"},
		{"lastfm/5870", "Castle Of K\x19of\x19w"},
		{"lastfm/6939", "Baila Baila \x13 Vent Remix"},
	} {
		if got := titles[tc.id]; got != tc.title {
			t.Errorf("Title of %s = %q, want %q", tc.id, got, tc.title)
		}
		if got := naiveTitle(t, plain, tc.id); got != tc.title {
			t.Errorf("byte search finds Title of %s = %q, want %q", tc.id, got, tc.title)
		}
	}
	wantBody := `"Title":"I\u0019m Slowly Turning Into You"`
	for _, d := range docs {
		if d.ID == "lastfm/3771" && !bytes.Contains(d.Body, []byte(wantBody)) {
			t.Errorf("body of lastfm/3771 lacks %s: %s", wantBody, d.Body)
		}
	}
}

// TestReadSampleOneByte feeds the sample one byte per Read, so every token,
// escape and document crosses a buffer refill somewhere, and expects the
// same events as a normal read.
func TestReadSampleOneByte(t *testing.T) {
	_, plain := sampleData(t)
	var want, got recorder
	if err := Read(bytes.NewReader(plain), &want); err != nil {
		t.Fatal(err)
	}
	if err := Read(iotest.OneByteReader(bytes.NewReader(plain)), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.events, want.events) {
		t.Fatal("one-byte reads give different events")
	}
}
