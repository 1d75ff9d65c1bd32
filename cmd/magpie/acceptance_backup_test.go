package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/restore"
)

// backupFile returns the single backup file of the single chain in dir.
func backupFile(t *testing.T, dir string) (chain, file string) {
	t.Helper()
	_, chains, err := restore.Chains(context.Background(), dir)
	if err != nil || len(chains) != 1 || !chains[0].Complete() || len(chains[0].Manifest.Files) != 1 {
		t.Fatalf("expected one complete chain with one file in %s: %v %v", dir, chains, err)
	}
	c := chains[0]
	return c.Location(), filepath.Join(c.Location(), c.Manifest.Files[0].Name)
}

// The acceptance test of encrypted backups on the real RavenDB dump.
func TestAcceptanceBackups(t *testing.T) {
	sample := sharedData(t, "media_subset.ravendbdump")
	e := newEnv(t)
	keyPath, key := e.keyFile("media.key")
	e.ok("db", "create", "media", "--encrypted", "--key-file", keyPath)
	e.ok("import", "media", sample)
	attDump, attContent := attachmentDump(t, e.dir)
	e.ok("import", "media", attDump)
	want := e.ok("docs", "get", "media", "lastfm/3771")

	snapDir := filepath.Join(e.dir, "snapshots")
	logicalDir := filepath.Join(e.dir, "logical")
	plainDir := filepath.Join(e.dir, "plain")
	e.ok("backup", "run", "media", "--type", "snapshot", "--to", snapDir)
	e.ok("backup", "run", "media", "--to", logicalDir)
	_, snapFile := backupFile(t, snapDir)
	_, logicalFile := backupFile(t, logicalDir)
	if !strings.HasSuffix(logicalFile, ".full-backup.age") || !strings.HasSuffix(snapFile, ".snapshot") {
		t.Fatalf("file names: %s %s", logicalFile, snapFile)
	}
	head := make([]byte, 22)
	f, _ := os.Open(logicalFile)
	f.Read(head)
	f.Close()
	if string(head) != "age-encryption.org/v1\n" {
		t.Fatalf("the encrypted logical backup starts with %q, not the age header", head)
	}

	// Restore both with the key.
	for _, c := range []struct{ from, as string }{{snapDir, "from_snapshot"}, {logicalDir, "from_logical"}} {
		e.ok("restore", c.from, "--as", c.as, "--key-file", keyPath)
		var stats struct{ CountOfDocuments, CountOfAttachments int64 }
		json.Unmarshal([]byte(e.ok("stats", c.as, "--json")), &stats)
		if stats.CountOfDocuments != 9331 || stats.CountOfAttachments != 1 {
			t.Errorf("%s: %+v", c.as, stats)
		}
		if got := e.ok("docs", "get", c.as, "lastfm/3771"); got != want {
			t.Errorf("%s: lastfm/3771 is\n%s\nwant\n%s", c.as, got, want)
		}
		compareDatabases(t, e, "media", c.as)
	}

	// Without the key, and with a wrong key: refused, no database left.
	wrongPath, wrong := e.keyFile("wrong.key")
	for _, from := range []string{snapDir, logicalDir} {
		r := e.run("restore", from, "--as", "nokey")
		if r.code != 1 || !strings.Contains(r.stderr, "no key was given") {
			t.Errorf("restore without a key: %d %q", r.code, r.stderr)
		}
		r = e.run("restore", from, "--as", "wrongkey", "--key-file", wrongPath)
		if r.code != 1 || !strings.Contains(r.stderr, "is not the key of the backup") {
			t.Errorf("restore with a wrong key: %d %q", r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, wrong.Base64()) || strings.Contains(r.stdout+r.stderr, key.Base64()) {
			t.Error("key material in the output")
		}
	}
	list := e.ok("db", "list", "--json")
	if strings.Contains(list, "nokey") || strings.Contains(list, "wrongkey") {
		t.Fatalf("a refused restore left a database: %s", list)
	}

	// Plaintext scan of the snapshot and the encrypted backup, beside its
	// positive control: an --encryption none backup of an unencrypted copy,
	// decompressed with the stock zstd.
	plain := newEnv(t)
	plain.ok("db", "create", "media")
	plain.ok("import", "media", sample)
	plain.ok("import", "media", attDump)
	plain.ok("backup", "run", "media", "--to", plainDir, "--encryption", "none")
	_, plainFile := backupFile(t, plainDir)
	needles := map[string][]byte{
		"id prefix":  []byte("lastfm/"),
		"title":      []byte("Slowly Turning"),
		"attachment": attContent[2000:2064],
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zstd is not installed (apt-get install zstd)")
		}
		t.Skip("zstd is not installed")
	}
	decompressed := filepath.Join(e.dir, "plain.json")
	if out, err := exec.Command("zstd", "-q", "-d", "-o", decompressed, plainFile).CombinedOutput(); err != nil {
		t.Fatalf("zstd -d: %v %s", err, out)
	}
	if found := scanTree(t, e.dir, needles); !found["id prefix"] || !found["title"] || !found["attachment"] {
		t.Fatalf("positive control failed: the decompressed unencrypted backup shows only %v", found)
	}
	os.Remove(decompressed)
	for _, dir := range []string{snapDir, logicalDir} {
		if found := scanTree(t, dir, needles); len(found) > 0 {
			t.Errorf("%s holds plaintext: %v", dir, found)
		}
		if found := scanTree(t, dir, map[string][]byte{"key": []byte(key.Base64())}); len(found) > 0 {
			t.Errorf("%s holds the key", dir)
		}
	}
}
