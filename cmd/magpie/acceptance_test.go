package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/magpiedb/magpie/internal/store"
	"golang.org/x/crypto/blake2b"
)

// attachmentDump writes a RavenDB export holding one document with an
// attachment of random bytes, inline as RavenDB writes it (a header object
// followed by the raw bytes), and returns the file and the content.
func attachmentDump(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	content := make([]byte, 64<<10)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	sum := blake2b.Sum256(content)
	hash := base64.StdEncoding.EncodeToString(sum[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"BuildVersion":41004,"Docs":[{"@metadata":{"@export-type":"Attachment"},"Hash":%q,"Size":%d,"Tag":"x"}`, hash, len(content))
	b.Write(content)
	fmt.Fprintf(&b, `,{"Name":"with attachment","@metadata":{"@collection":"Files","@flags":"HasAttachments","@attachments":[{"Name":"random.bin","Hash":%q,"ContentType":"application/octet-stream","Size":%d}],"@id":"files/1","@change-vector":"A:1-x","@last-modified":"2024-01-01T00:00:00.0000000Z"}}]}`, hash, len(content))
	p := filepath.Join(dir, "attachment.ravendbdump")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, content
}

// scanTree reports which of the needles occur in any file under dir.
func scanTree(t *testing.T, dir string, needles map[string][]byte) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, n := range needles {
			if bytes.Contains(data, n) {
				found[name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// The acceptance test of the encrypted store on the real RavenDB dump.
func TestAcceptanceMediaDump(t *testing.T) {
	sample := sharedData(t, "media_subset.ravendbdump")

	enc := newEnv(t)
	keyPath, key := enc.keyFile("media.key")
	enc.ok("db", "create", "media", "--encrypted", "--key-file", keyPath)
	enc.ok("import", "media", sample)
	attDump, attContent := attachmentDump(t, enc.dir)
	enc.ok("import", "media", attDump)

	var stats store.Stats
	if err := json.Unmarshal([]byte(enc.ok("stats", "media", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.CountOfDocuments != 9331 || stats.Collections["LastFms"] != 9330 || stats.Collections["Files"] != 1 ||
		stats.CountOfAttachments != 1 || stats.CountOfIndexes != 1 || !stats.Encrypted {
		t.Fatalf("stats: %+v", stats)
	}

	titles := map[string]string{
		"lastfm/3771": "I\u0019m Slowly Turning Into You",
		"lastfm/5870": "Castle Of K\u0019of\u0019w",
		"lastfm/6939": "Baila Baila \u0013 Vent Remix",
	}
	for id, want := range titles {
		out := enc.ok("docs", "get", "media", id)
		if !json.Valid([]byte(out)) {
			t.Fatalf("%s: output is not strict JSON: %q", id, out)
		}
		var doc struct {
			Title    string
			Metadata map[string]any `json:"@metadata"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Title != want || doc.Metadata["@id"] != id || doc.Metadata["@collection"] != "LastFms" {
			t.Errorf("%s: Title %q, metadata %v; want Title %q", id, doc.Title, doc.Metadata, want)
		}
	}

	// Positive control: the same imports into an unencrypted database,
	// in its own data dir, leave the markers findable on disk.
	plain := newEnv(t)
	plain.ok("db", "create", "media")
	plain.ok("import", "media", sample)
	plain.ok("import", "media", attDump)
	needles := map[string][]byte{
		"id prefix":  []byte("lastfm/"),
		"attachment": attContent[1000:1064],
		// pebble's sstable footer magic (the format it writes)
		"table magic": {0xf0, 0x9f, 0xaa, 0xb3, 0xf0, 0x9f, 0xaa, 0xb3},
	}
	if found := scanTree(t, plain.data, needles); !found["id prefix"] || !found["attachment"] || !found["table magic"] {
		t.Fatalf("positive control failed: the unencrypted data dir shows %v; the scan cannot prove anything", found)
	}
	if found := scanTree(t, enc.data, needles); len(found) > 0 {
		t.Fatalf("the encrypted data dir holds plaintext: %v", found)
	}
	if found := scanTree(t, enc.data, map[string][]byte{"key": []byte(key.Base64())}); len(found) > 0 {
		t.Fatal("the database key is stored in clear in the data dir")
	}

	// Export, re-import into a second database: every document equal.
	exported := filepath.Join(enc.dir, "media.ravendbdump")
	enc.ok("export", "media", exported)
	enc.ok("db", "create", "copy", "--encrypted")
	enc.ok("import", "copy", exported)
	compareDatabases(t, enc, "media", "copy")
}

// compareDatabases checks that two databases hold the same documents
// (byte-identical bodies: same values, key order and number literals) and
// the same attachments.
func compareDatabases(t *testing.T, e *env, a, b string) {
	t.Helper()
	d, err := store.Open(store.Options{Dir: e.data, MasterKeyFile: e.master})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dbA, err := d.OpenDatabase(a)
	if err != nil {
		t.Fatal(err)
	}
	defer dbA.Close()
	dbB, err := d.OpenDatabase(b)
	if err != nil {
		t.Fatal(err)
	}
	defer dbB.Close()
	var n int
	_, err = dbA.Walk(0, store.Walker{Document: func(da *store.Document) error {
		n++
		db, err := dbB.Get(da.ID)
		if err != nil {
			return err
		}
		if !bytes.Equal(da.Body, db.Body) {
			return fmt.Errorf("document %s differs:\n%s\n%s", da.ID, da.Body, db.Body)
		}
		ra, _ := dbA.Attachments(da.ID)
		rb, _ := dbB.Attachments(da.ID)
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			return fmt.Errorf("attachments of %s differ: %v vs %v", da.ID, ra, rb)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := dbA.Stats()
	sb, _ := dbB.Stats()
	if n != int(sa.CountOfDocuments) || sa.CountOfDocuments != sb.CountOfDocuments || sa.CountOfAttachments != sb.CountOfAttachments || sa.CountOfIndexes != sb.CountOfIndexes {
		t.Fatalf("walked %d; stats %+v vs %+v", n, sa, sb)
	}
}
