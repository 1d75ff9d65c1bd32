package restore

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// The test vector in testdata is a backup made by an earlier magpie
// (docs/FORMAT.md, format 1): a key-mode logical backup of a database with
// one document (its title holding U+0019) and one deletion. Every later
// magpie must still read it. Its key is a published test value, not a
// secret.
const (
	vectorChain = "testdata/2026-12-03-18-36-33-5356304.vector.backup"
	vectorKey   = "bWFncGllIHRlc3QgdmVjdG9yIGtleSwgbm90IHNlY3I="
)

func TestFormatVector(t *testing.T) {
	k, err := keys.Parse(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := Locate(context.Background(), vectorChain, Until{})
	if err != nil {
		t.Fatal(err)
	}
	m := tg.Manifest
	if m.Format != 1 || m.Encryption != backup.ModeKey || m.KeyFingerprint != "65a17a6ccc33fe11" || len(tg.Files) != 1 ||
		tg.Files[0].Documents != 1 || tg.Files[0].Tombstones != 1 || tg.Files[0].ToEtag != 3 {
		t.Fatalf("manifest: %+v", m)
	}
	rep, err := Verify(context.Background(), tg, &backup.Decryption{Key: &k}, nil)
	if err != nil || !rep.Files[0].Decrypted || rep.Files[0].Documents != 1 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	dir := t.TempDir()
	d, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), MasterKeyFile: filepath.Join(dir, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := Restore(d, tg, Options{As: "restored", Decryption: &backup.Decryption{Key: &k}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.CountOfDocuments != 1 || res.Stats.CountOfTombstones != 1 || res.Encrypted {
		t.Fatalf("restored: %+v", res.Stats)
	}
	db, err := d.OpenDatabase("restored")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	doc, err := db.Get("tracks/1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(doc.Body), `{"Title":"I\u0019m Slowly Turning Into You","Plays":12.50,"@metadata":{"@collection":"Tracks","@id":"tracks/1"`) {
		t.Fatalf("body %s", doc.Body)
	}
	var v struct{ Title string }
	if err := json.Unmarshal(doc.Body, &v); err != nil || v.Title != "I\x19m Slowly Turning Into You" {
		t.Fatalf("title %q %v", v.Title, err)
	}
	// Any other key is refused before anything is read.
	other, _ := keys.Generate()
	if _, err := Restore(d, tg, Options{As: "wrong", Decryption: &backup.Decryption{Key: &other}}); err == nil || !strings.Contains(err.Error(), "is not the key of the backup") {
		t.Fatalf("wrong key: %v", err)
	}
}
