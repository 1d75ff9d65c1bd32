package smuggler_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/magpiedb/magpie/internal/smuggler"
)

// printer is a Handler that prints what it is given.
type printer struct{}

func (printer) BuildVersion(v int64) error { fmt.Println("build", v); return nil }
func (printer) Document(d *smuggler.Document) error {
	fmt.Printf("document %s in %s: %s\n", d.ID, d.Collection, d.Body)
	return nil
}
func (printer) Attachment(a *smuggler.Attachment) error {
	fmt.Println("attachment of", a.Size, "bytes")
	return nil
}
func (printer) Tombstone(t *smuggler.Tombstone) error { fmt.Println("tombstone", t.Key); return nil }
func (printer) Index(def []byte) error                { fmt.Printf("index %s\n", def); return nil }
func (printer) Skipped(section string, items int) error {
	fmt.Println("skipped", items, section)
	return nil
}

func Example() {
	// Write a small export, zstd-compressed, then read it back.
	var file bytes.Buffer
	zw, err := smuggler.Compress(&file, smuggler.Zstd)
	if err != nil {
		log.Fatal(err)
	}
	w := smuggler.NewWriter(zw, 60000)
	w.Document([]byte(`{"Name":"Ann","@metadata":{"@collection":"Users","@id":"users/1"}}`))
	w.Tombstone(&smuggler.Tombstone{Key: "users/2", Type: "Document", Collection: "Users"})
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}

	if err := smuggler.Import(&file, printer{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// build 60000
	// document users/1 in Users: {"Name":"Ann","@metadata":{"@collection":"Users","@id":"users/1"}}
	// tombstone users/2
}

func ExampleRead_controlCharacters() {
	// RavenDB writes some control characters raw inside strings; Read keeps
	// their values and hands out strict JSON.
	export := "{\"Docs\":[{\"Title\":\"I\x19m\",\"@metadata\":{\"@id\":\"lastfm/3771\"}}],\"Counters\":[]}"
	if err := smuggler.Read(strings.NewReader(export), printer{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// document lastfm/3771 in : {"Title":"I\u0019m","@metadata":{"@id":"lastfm/3771"}}
	// skipped 0 Counters
}
