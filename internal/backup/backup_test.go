package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
)

func TestStamp(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 39, 11, 497467700, time.FixedZone("CET", 3600))
	if got := Stamp(at); got != "2026-12-03-16-39-11-4974677" {
		t.Fatalf("Stamp = %q", got)
	}
	back, err := ParseStamp(Stamp(at))
	if err != nil || !back.Equal(at.Truncate(100*time.Nanosecond)) {
		t.Fatalf("ParseStamp = %v, %v", back, err)
	}
	if got := ChainFolder(at, "media", Snapshot); got != "2026-12-03-16-39-11-4974677.media.snapshot" {
		t.Fatalf("ChainFolder = %q", got)
	}
	if got := FileName(at, KindFull, true); got != "2026-12-03-16-39-11-4974677.full-backup.age" {
		t.Fatalf("FileName = %q", got)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	k, _ := keys.Generate()
	if err := keys.WriteFile(keyFile, k); err != nil {
		t.Fatal(err)
	}
	dbKey, _ := keys.Generate()
	const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	cases := []struct {
		name      string
		req       Request
		typ       Type
		encrypted bool
		mode      Mode
		err       string
	}{
		{"default encrypted", Request{}, Logical, true, ModeDatabase, ""},
		{"default plain", Request{}, Logical, false, ModeNone, ""},
		{"key inferred", Request{KeyFile: keyFile}, Logical, false, ModeKey, ""},
		{"recipients inferred", Request{Recipients: []string{recipient}}, Logical, true, ModeRecipients, ""},
		{"snapshot encrypted default", Request{}, Snapshot, true, ModeDatabase, ""},
		{"snapshot plain key", Request{Mode: "key", KeyFile: keyFile}, Snapshot, false, ModeKey, ""},
		{"database on plain", Request{Mode: "database"}, Logical, false, "", "encryption mode database needs an encrypted database, and db is not encrypted. Use --encryption key --key-file FILE or --encryption recipients --recipient KEY"},
		{"snapshot encrypted none", Request{Mode: "none"}, Snapshot, true, "", "a snapshot of encrypted database db is a copy of its encrypted files, so it can only use encryption mode database, not none. Leave out --encryption (and any key or recipient), or make a logical backup"},
		{"snapshot encrypted key", Request{Mode: "key", KeyFile: keyFile}, Snapshot, true, "", "a snapshot of encrypted database db is a copy of its encrypted files, so it can only use encryption mode database, not key. Leave out --encryption (and any key or recipient), or make a logical backup"},
		{"snapshot encrypted recipients", Request{Recipients: []string{recipient}}, Snapshot, true, "", "a snapshot of encrypted database db is a copy of its encrypted files, so it can only use encryption mode database, not recipients. Leave out --encryption (and any key or recipient), or make a logical backup"},
		{"key where none", Request{Mode: "none", KeyFile: keyFile}, Logical, false, "", "--key-file was given but encryption mode none takes no key. Use --encryption key, or leave out --key-file"},
		{"key where database", Request{Mode: "database", KeyFile: keyFile}, Logical, true, "", "--key-file was given but encryption mode database takes no key. Use --encryption key, or leave out --key-file"},
		{"recipient where key", Request{Mode: "key", KeyFile: keyFile, Recipients: []string{recipient}}, Logical, false, "", "--recipient was given but encryption mode key takes no recipients. Use --encryption recipients, or leave out --recipient"},
		{"key mode without key", Request{Mode: "key"}, Logical, false, "", "encryption mode key needs a key. Give it with --key-file FILE (make one with `magpie secrets generate`)"},
		{"recipients without any", Request{Mode: "recipients"}, Logical, false, "", "no recipient was given. Give at least one with --recipient age1... (make one with `age-keygen`)"},
		{"unknown mode", Request{Mode: "rot13"}, Logical, false, "", `encryption mode "rot13" is not known: use none, database, key or recipients`},
		{"missing key file", Request{Mode: "key", KeyFile: filepath.Join(dir, "nope")}, Logical, false, "", "key file " + filepath.Join(dir, "nope") + " does not exist"},
		{"direct key inferred", Request{Key: &k}, Logical, false, ModeKey, ""},
		{"direct key", Request{Mode: "key", Key: &k}, Snapshot, false, ModeKey, ""},
		{"direct key where database", Request{Mode: "database", Key: &k}, Logical, true, "", "a key was given but encryption mode database takes no key. Use encryption mode key, or leave out the key"},
		{"direct key and key file", Request{Key: &k, KeyFile: keyFile}, Logical, false, "", "a key was given both directly and as a key file. Give only one of them"},
		{"bad recipient", Request{Recipients: []string{"age1notakey"}}, Logical, false, "", "--recipient number 1 is not a valid age public key"},
		{"secret as recipient", Request{Recipients: []string{"AGE-SECRET-KEY-1QQQ"}}, Logical, false, "", "--recipient number 1 looks like a secret key, not a public key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Resolve(c.req, c.typ, "db", dbKey, c.encrypted)
			if c.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.err) {
					t.Fatalf("err = %v, want prefix %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Mode != c.mode {
				t.Fatalf("mode %s, want %s", e.Mode, c.mode)
			}
			if c.mode == ModeDatabase && e.Key != dbKey || c.mode == ModeKey && e.Key != k {
				t.Fatal("wrong key chosen")
			}
		})
	}
}

func TestManifestIntegrity(t *testing.T) {
	root := t.TempDir()
	s, _ := destination.OpenLocal(root)
	ctx := context.Background()
	k, _ := keys.Generate()
	at := time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC)
	m := &Manifest{Database: "db", Type: Logical, Encryption: ModeKey, KeyFingerprint: k.Fingerprint(), Compression: "zstd",
		Files: []FileEntry{{Name: FileName(at, KindFull, true), Kind: KindFull, Created: at, Size: 10, SHA256: strings.Repeat("ab", 32), ToEtag: 7}}}
	if err := writeManifest(ctx, []destination.Store{s}, "c", m, &k, nil, m.Files[0].Name); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "c")
	got, err := ReadManifest(ctx, s, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckMAC("m", k); err != nil {
		t.Fatal(err)
	}
	other, _ := keys.Generate()
	if err := got.CheckMAC("m", other); err == nil || !strings.Contains(err.Error(), "failed its integrity check") {
		t.Fatalf("MAC with another key: %v", err)
	}
	// A changed entry with a recomputed checksum passes the checksum but
	// not the MAC.
	got.Files[0].SHA256 = strings.Repeat("cd", 32)
	got.seal(nil)
	if err := got.CheckChecksum("m"); err != nil {
		t.Fatal(err)
	}
	if err := got.CheckMAC("m", k); err == nil {
		t.Fatal("a forged manifest passed the MAC")
	}
	// A changed byte in the file fails the checksum.
	raw, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	raw = []byte(strings.Replace(string(raw), `"toEtag": 7`, `"toEtag": 8`, 1))
	os.WriteFile(filepath.Join(dir, ManifestName), raw, 0o600)
	if _, err := ReadManifest(ctx, s, "c"); err == nil || !strings.Contains(err.Error(), "failed its integrity check: its checksum does not match") {
		t.Fatalf("changed manifest: %v", err)
	}
}
