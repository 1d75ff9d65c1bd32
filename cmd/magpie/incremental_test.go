package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
)

type runJSON struct {
	ChainDir  string
	File      string
	Unchanged bool
	LastEtag  uint64
	Entry     backup.FileEntry
}

func (e *env) backupJSON(args ...string) runJSON {
	e.t.Helper()
	var r runJSON
	out := e.ok(append([]string{"backup", "run", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("backup run --json: %v\n%s", err, out)
	}
	return r
}

func (e *env) putDoc(db, id, body string) {
	e.t.Helper()
	e.runStdinOK([]byte(body), "docs", "put", db, id, "-")
}

func (e *env) runStdinOK(stdin []byte, args ...string) {
	e.t.Helper()
	if r := e.runStdin(stdin, args...); r.code != 0 {
		e.t.Fatalf("magpie %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
}

// docCount reads CountOfDocuments of db.
func (e *env) docCount(db string) int {
	e.t.Helper()
	var st struct{ CountOfDocuments int }
	if err := json.Unmarshal([]byte(e.ok("stats", db, "--json")), &st); err != nil {
		e.t.Fatal(err)
	}
	return st.CountOfDocuments
}

// An incremental chain end to end, through the CLI: nothing changed writes
// nothing; changes and deletions land in an incremental encrypted like its
// full backup; restore replays the chain, or stops at a file or a time.
func TestIncrementalChain(t *testing.T) {
	e := newEnv(t)
	dbKeyPath, _ := e.keyFile("db.key")
	e.ok("db", "create", "shop", "--encrypted", "--key-file", dbKeyPath)
	for i := 1; i <= 5; i++ {
		e.putDoc("shop", fmt.Sprintf("orders/%d", i), fmt.Sprintf(`{"N":%d}`, i))
	}
	to := filepath.Join(e.dir, "backups")
	full := e.backupJSON("shop", "--to", to)
	if !strings.HasSuffix(full.File, ".full-backup.age") || full.Entry.ToEtag != 5 {
		t.Fatalf("full backup: %+v", full)
	}

	// Nothing changed: exit 0, said, no file.
	out := e.ok("backup", "run", "shop", "--to", to, "--incremental")
	want := fmt.Sprintf("nothing changed in shop since %s (etag 5): no file written\n", filepath.Base(full.File))
	if out != want {
		t.Fatalf("unchanged incremental printed %q, want %q", out, want)
	}
	if files, _ := os.ReadDir(full.ChainDir); len(files) != 2 {
		t.Fatalf("an unchanged incremental wrote a file: %v", files)
	}

	// Changes: two updates, one new document, one deletion.
	e.putDoc("shop", "orders/1", `{"N":100}`)
	e.putDoc("shop", "orders/6", `{"N":6}`)
	e.ok("docs", "delete", "shop", "orders/2")
	inc1 := e.backupJSON("shop", "--to", to, "--incremental")
	if inc1.ChainDir != full.ChainDir || !strings.HasSuffix(inc1.File, ".incremental-backup.age") {
		t.Fatalf("incremental not in the full backup's chain: %+v", inc1)
	}
	if got := inc1.Entry; got.FromEtag != 5 || got.ToEtag != 8 || got.Documents != 2 || got.Tombstones != 1 {
		t.Fatalf("incremental entry %+v, want etags 5..8, 2 documents, 1 tombstone", got)
	}
	// Encrypted exactly like the chain: age, with the database's key.
	head := make([]byte, 22)
	f, _ := os.Open(inc1.File)
	f.Read(head)
	f.Close()
	if !backup.IsAge(head) {
		t.Fatalf("incremental %s is not an age file", inc1.File)
	}
	time.Sleep(20 * time.Millisecond)
	between := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	e.putDoc("shop", "orders/3", `{"N":300}`)
	inc2 := e.backupJSON("shop", "--to", to, "--incremental")

	restoreKey := []string{"--key-file", dbKeyPath}
	// Every point of this history holds five documents.
	check := func(as string, docs map[string]string) {
		t.Helper()
		if n := e.docCount(as); n != 5 {
			t.Errorf("%s holds %d documents, want 5", as, n)
		}
		for id, body := range docs {
			r := e.run("docs", "get", as, id)
			if body == "" {
				if r.code == 0 {
					t.Errorf("%s: %s exists, but it was deleted", as, id)
				}
				continue
			}
			var got struct{ N int }
			json.Unmarshal([]byte(r.stdout), &got)
			if r.code != 0 || fmt.Sprintf(`{"N":%d}`, got.N) != body {
				t.Errorf("%s: %s = %q (exit %d), want %s", as, id, r.stdout, r.code, body)
			}
		}
	}
	// The whole chain.
	e.ok(append([]string{"restore", to, "--as", "all"}, restoreKey...)...)
	check("all", map[string]string{"orders/1": `{"N":100}`, "orders/2": "", "orders/3": `{"N":300}`, "orders/4": `{"N":4}`, "orders/5": `{"N":5}`, "orders/6": `{"N":6}`})
	// Up to the first incremental, by name without .age, and by time.
	e.ok(append([]string{"restore", to, "--as", "upto1", "--until", strings.TrimSuffix(filepath.Base(inc1.File), ".age")}, restoreKey...)...)
	check("upto1", map[string]string{"orders/1": `{"N":100}`, "orders/2": "", "orders/3": `{"N":3}`, "orders/6": `{"N":6}`})
	e.ok(append([]string{"restore", to, "--as", "bytime", "--until-time", between.Format(time.RFC3339Nano)}, restoreKey...)...)
	check("bytime", map[string]string{"orders/1": `{"N":100}`, "orders/3": `{"N":3}`, "orders/2": ""})
	// The full backup alone, given as the file.
	e.ok(append([]string{"restore", full.File, "--as", "fullonly"}, restoreKey...)...)
	check("fullonly", map[string]string{"orders/1": `{"N":1}`, "orders/2": `{"N":2}`, "orders/6": ""})
	// Into a database encrypted with a new key.
	newKeyPath, _ := e.keyFile("new.key")
	e.ok(append([]string{"restore", to, "--as", "rekeyed", "--new-key-file", newKeyPath}, restoreKey...)...)
	check("rekeyed", map[string]string{"orders/3": `{"N":300}`, "orders/2": ""})

	// verify walks the chain.
	out = e.ok(append([]string{"backup", "verify", to}, restoreKey...)...)
	for _, f := range []string{full.File, inc1.File, inc2.File} {
		if !strings.Contains(out, filepath.Base(f)+"  ") {
			t.Errorf("verify does not report %s:\n%s", filepath.Base(f), out)
		}
	}

	// --sample reads a share of the files, at least one; manifests always.
	out = e.ok(append([]string{"backup", "verify", to, "--sample", "0.001"}, restoreKey...)...)
	if !strings.Contains(out, "  2 more files not read (--sample)\n") || strings.Count(out, "decrypted, authenticated and parsed") != 1 {
		t.Errorf("verify --sample 0.001:\n%s", out)
	}
	for _, bad := range []string{"0", "150", "-3"} {
		wantError(t, e.run("backup", "verify", to, "--sample", bad), exitUsage,
			fmt.Sprintf("--sample %s is not a percentage above 0 and at most 100. Give e.g. --sample 10.", bad))
	}
	// A second chain in the folder: verify checks both.
	e.backupJSON("shop", "--to", to)
	out = e.ok(append([]string{"backup", "verify", to}, restoreKey...)...)
	if strings.Count(out, "verified ") != 2 || strings.Count(out, "decrypted, authenticated and parsed") != 4 {
		t.Errorf("verify of a folder of two chains:\n%s", out)
	}

	// A file name that matches nothing is an error, never a full restore.
	const nope = "2020-01-01-00-00-00-0000000.incremental-backup"
	wantError(t, e.run(append([]string{"restore", to, "--as", "nope", "--until", nope}, restoreKey...)...), exitFailure,
		fmt.Sprintf("restore failed and no database was created: no backup file named %s is in %s, so there is no point in time to restore up to. Give a file name that `magpie backup ls %s` lists.", nope, to, to))
	wantError(t, e.run(append([]string{"restore", to, "--as", "nope", "--until-time", "2001-01-01T00:00:00Z"}, restoreKey...)...), exitFailure,
		fmt.Sprintf("restore failed and no database was created: no backup in %s was made at or before 2001-01-01T00:00:00Z. Give a later time (see `magpie backup ls %s`).", to, to))
	wantError(t, e.run(append([]string{"restore", to, "--as", "nope", "--until-time", "yesterday"}, restoreKey...)...), exitUsage,
		`--until-time "yesterday" is not a time in RFC 3339 form. Give e.g. 2026-12-03T18:00:00Z.`)
	if r := e.run("stats", "nope"); r.code == 0 {
		t.Fatal("a failed restore left a database")
	}
}

// The faults of an incremental chain: each is detected before a database
// is created, and said in one sentence naming the file.
func TestIncrementalChainFaults(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "plain")
	keyPath, bk := e.keyFile("bk.key")
	otherPath, other := e.keyFile("other.key")
	plainTo := filepath.Join(e.dir, "plain")
	keyTo := filepath.Join(e.dir, "keyed")
	e.putDoc("plain", "a/1", `{"N":1}`)
	fullP := e.backupJSON("plain", "--to", plainTo)
	fullK := e.backupJSON("plain", "--to", keyTo, "--key-file", keyPath)
	e.putDoc("plain", "a/2", `{"N":2}`)
	incP := e.backupJSON("plain", "--to", plainTo, "--incremental")
	// A key mode chain needs its key again, and only its key.
	wantError(t, e.run("backup", "run", "plain", "--to", keyTo, "--incremental"), exitFailure,
		fmt.Sprintf("the chain in %s is encrypted with a key, and so are its incrementals: encryption mode key needs a key. Give it with --key-file FILE (make one with `magpie secrets generate`).", fullK.ChainDir))
	// Another key (a rotated one) starts a new chain in that key (in a
	// copy of the folder, to keep the key chain going).
	rotatedTo := filepath.Join(e.dir, "rotated")
	bbCopyChain(t, fullK.ChainDir, rotatedTo)
	r := e.run("backup", "run", "plain", "--to", rotatedTo, "--incremental", "--key-file", otherPath)
	if want := fmt.Sprintf("magpie: note: the newest chain %s is encrypted in mode key with the key of fingerprint %s, and this run encrypts with the key of fingerprint %s, so this is a full backup that starts a new chain\n", filepath.Join(rotatedTo, filepath.Base(fullK.ChainDir)), bk.Fingerprint(), other.Fingerprint()); r.code != 0 || r.stderr != want {
		t.Errorf("another key over a key chain: exit %d, stderr %q; want %q", r.code, r.stderr, want)
	}
	// A run that encrypts more strongly than the chain starts a new
	// chain (in a copy of the folder, to keep the plain chain going);
	// one that encrypts more weakly is refused.
	strongerTo := filepath.Join(e.dir, "stronger")
	bbCopyChain(t, fullP.ChainDir, strongerTo)
	r = e.run("backup", "run", "plain", "--to", strongerTo, "--incremental", "--encryption", "key", "--key-file", keyPath)
	if want := fmt.Sprintf("magpie: note: the newest chain %s is encrypted in mode none, and this run encrypts in mode key, so this is a full backup that starts a new chain\n", filepath.Join(strongerTo, filepath.Base(fullP.ChainDir))); r.code != 0 || r.stderr != want {
		t.Errorf("a key over a chain in mode none: exit %d, stderr %q; want %q", r.code, r.stderr, want)
	}
	wantError(t, e.run("backup", "run", "plain", "--to", keyTo, "--incremental", "--encryption", "none", "--key-file", keyPath), exitFailure,
		"--key-file was given but encryption mode none takes no key. Use --encryption key, or leave out --key-file.")
	wantError(t, e.run("backup", "run", "plain", "--to", keyTo, "--incremental", "--encryption", "none"), exitFailure,
		fmt.Sprintf("the chain in %s is encrypted in mode key, and an incremental is encrypted like its chain, not in mode none. Give the chain's encryption (see `magpie backup ls`), or run a full backup to start a new chain.", fullK.ChainDir))
	incK := e.backupJSON("plain", "--to", keyTo, "--incremental", "--key-file", keyPath)
	if !strings.HasSuffix(incK.File, ".incremental-backup.age") {
		t.Fatalf("key chain incremental: %+v", incK)
	}
	e.putDoc("plain", "a/3", `{"N":3}`)
	e.backupJSON("plain", "--to", plainTo, "--incremental")

	restoreFails := func(t *testing.T, path string, msg string, extra ...string) {
		t.Helper()
		wantError(t, e.run(append([]string{"restore", path, "--as", "r"}, extra...)...), exitFailure, "restore failed and no database was created: "+msg, bk)
		if r := e.run("stats", "r"); r.code == 0 {
			t.Fatal("a failed restore left a database")
		}
	}
	t.Run("file missing", func(t *testing.T) {
		chain := bbCopyChain(t, fullP.ChainDir, t.TempDir())
		os.Remove(filepath.Join(chain, filepath.Base(incP.File)))
		restoreFails(t, chain, fmt.Sprintf("backup file %s is missing although the manifest lists it. Restore the file, or use another backup.", filepath.Join(chain, filepath.Base(incP.File))))
		// backup ls says so.
		if out := e.ok("backup", "ls", chain); !strings.Contains(out, "  DAMAGED: ") || !strings.Contains(out, filepath.Base(incP.File)) {
			t.Fatalf("backup ls of a chain with a file missing:\n%s", out)
		}
	})
	t.Run("files reordered", func(t *testing.T) {
		chain := bbCopyChain(t, fullP.ChainDir, t.TempDir())
		bbRewriteManifest(t, chain, func(m *backup.Manifest) { m.Files[1], m.Files[2] = m.Files[2], m.Files[1] })
		m := bbReadManifest(t, chain)
		restoreFails(t, chain, fmt.Sprintf("%s failed its integrity check: file 2 (%s) starts after etag %d but the file before it ends at etag %d: the chain has a gap. Use another backup.",
			filepath.Join(chain, backup.ManifestName), m.Files[1].Name, m.Files[1].FromEtag, m.Files[0].ToEtag))
	})
	t.Run("a file dropped from the manifest", func(t *testing.T) {
		chain := bbCopyChain(t, fullP.ChainDir, t.TempDir())
		bbRewriteManifest(t, chain, func(m *backup.Manifest) { m.Files = append(m.Files[:1], m.Files[2:]...) })
		m := bbReadManifest(t, chain)
		restoreFails(t, chain, fmt.Sprintf("%s failed its integrity check: file 2 (%s) starts after etag %d but the file before it ends at etag %d: the chain has a gap. Use another backup.",
			filepath.Join(chain, backup.ManifestName), m.Files[1].Name, m.Files[1].FromEtag, m.Files[0].ToEtag))
	})
	t.Run("a file from another chain", func(t *testing.T) {
		chain := bbCopyChain(t, fullP.ChainDir, t.TempDir())
		// The key chain's incremental, under the name of this chain's.
		data, _ := os.ReadFile(incK.File)
		bbWrite(t, filepath.Join(chain, filepath.Base(incP.File)), data, 0o600)
		path := filepath.Join(chain, filepath.Base(incP.File))
		var reason string
		if int64(len(data)) != incP.Entry.Size {
			reason = fmt.Sprintf("it is %d bytes but its manifest says %d", len(data), incP.Entry.Size)
		} else {
			reason = "its SHA-256 does not match the manifest"
		}
		restoreFails(t, chain, bbFileIntegrity(path, reason))
	})
	t.Run("an incremental encrypted with another key", func(t *testing.T) {
		chain := bbCopyChain(t, fullK.ChainDir, t.TempDir())
		// Encrypt the same content with another key, same name and size.
		other := filepath.Join(e.dir, "otherchain")
		e.backupJSON("plain", "--to", other, "--key-file", otherPath)
		e.putDoc("plain", "a/9", `{"N":9}`)
		o := e.backupJSON("plain", "--to", other, "--incremental", "--key-file", otherPath)
		data, _ := os.ReadFile(o.File)
		path := filepath.Join(chain, filepath.Base(incK.File))
		bbWrite(t, path, data, 0o600)
		var reason string
		if int64(len(data)) != incK.Entry.Size {
			reason = fmt.Sprintf("it is %d bytes but its manifest says %d", len(data), incK.Entry.Size)
		} else {
			reason = "its SHA-256 does not match the manifest"
		}
		restoreFails(t, chain, bbFileIntegrity(path, reason), "--key-file", keyPath)
		wantError(t, e.run("backup", "verify", chain, "--key-file", keyPath), exitFailure, bbFileIntegrity(path, reason), bk)
	})
	t.Run("a chain of another database of the same name", func(t *testing.T) {
		e.ok("db", "delete", "plain")
		e.ok("db", "create", "plain")
		e.putDoc("plain", "b/1", `{"N":1}`)
		// An incremental does not extend the old database's chain: it
		// starts a chain of this database, and says why.
		r := e.run("backup", "run", "plain", "--to", plainTo, "--incremental", "--json")
		if r.code != 0 || !strings.Contains(r.stderr, "is of another database named plain") || !strings.HasSuffix(strings.TrimSpace(r.stderr), "so this is a full backup that starts a new chain") {
			t.Fatalf("incremental onto another database's chain: exit %d, %s", r.code, r.stderr)
		}
		var res struct{ File string }
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !strings.HasSuffix(res.File, ".full-backup") {
			t.Fatalf("incremental onto another database's chain wrote %s (%v)", r.stdout, err)
		}
	})
}

// A snapshot chain continues with logical incrementals, encrypted with the
// database's key like the snapshot; restore installs the snapshot and
// replays them.
func TestSnapshotChainIncrementals(t *testing.T) {
	e := newEnv(t)
	keyPath, _ := e.keyFile("db.key")
	e.ok("db", "create", "s", "--encrypted", "--key-file", keyPath)
	e.putDoc("s", "x/1", `{"N":1}`)
	e.putDoc("s", "x/2", `{"N":2}`)
	to := filepath.Join(e.dir, "snaps")
	snap := e.backupJSON("s", "--to", to, "--type", "snapshot")
	e.ok("docs", "delete", "s", "x/1")
	e.putDoc("s", "x/3", `{"N":3}`)
	inc := e.backupJSON("s", "--to", to, "--incremental")
	if inc.ChainDir != snap.ChainDir || !strings.HasSuffix(inc.File, ".incremental-backup.age") {
		t.Fatalf("snapshot chain incremental: %+v (snapshot %+v)", inc, snap)
	}
	e.ok("restore", to, "--as", "back", "--key-file", keyPath)
	if n := e.docCount("back"); n != 2 {
		t.Fatalf("restored %d documents, want 2", n)
	}
	if r := e.run("docs", "get", "back", "x/1"); r.code == 0 {
		t.Fatal("x/1 was deleted in the incremental but is back")
	}
	if got := e.ok("docs", "get", "back", "x/3"); !strings.Contains(got, `"N":3`) {
		t.Fatalf("x/3 = %s", got)
	}
	// The snapshot alone.
	e.ok("restore", snap.File, "--as", "snaponly", "--key-file", keyPath)
	if r := e.run("docs", "get", "snaponly", "x/1"); r.code != 0 {
		t.Fatal("x/1 missing from the snapshot alone")
	}
}

// TestVerifyFolderChecksEveryChain: a bad chain in a folder does not stop
// verify from checking the others; it names every chain that failed.
func TestVerifyFolderChecksEveryChain(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "plain")
	to := filepath.Join(e.dir, "backups")
	var chains []runJSON
	for i := range 3 {
		e.putDoc("plain", fmt.Sprintf("a/%d", i), `{"N":1}`)
		chains = append(chains, e.backupJSON("plain", "--to", to))
	}
	// The middle chain: one byte of its backup file changed.
	bbFlip(t, chains[1].File, chains[1].Entry.Size/2)
	bad := fmt.Sprintf("backup file %s failed its integrity check", chains[1].File)
	r := e.run("backup", "verify", to)
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, "magpie: error: "+bad) || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stdout, "verified "+chains[0].ChainDir) || !strings.Contains(r.stdout, "verified "+chains[2].ChainDir) {
		t.Fatalf("one bad chain of three: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// And the newest one's manifest removed too: both are named.
	os.Remove(filepath.Join(chains[2].ChainDir, "manifest.json"))
	os.WriteFile(filepath.Join(chains[2].ChainDir, "2099-01-01-00-00-00-0000000.incremental-backup"), []byte("x"), 0o600)
	r = e.run("backup", "verify", to)
	if r.code != exitFailure || !strings.Contains(r.stdout, "verified "+chains[0].ChainDir) ||
		!strings.Contains(r.stderr, "magpie: FAILED "+chains[1].ChainDir+": "+bad) ||
		!strings.Contains(r.stderr, "magpie: FAILED "+chains[2].ChainDir+": "+chains[2].ChainDir+" has no manifest.json but holds 2 finished backup files") ||
		!strings.HasSuffix(r.stderr, "1 more chain failed as well (listed above).\n") {
		t.Fatalf("two bad chains of three: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestURLWithoutSlashes: a location like s3:USER:PASS@bucket (its "//"
// lost) is refused by every command that reads backups, without echoing
// it.
func TestURLWithoutSlashes(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "plain")
	loc := "s3:USER:hunter2@bk/p"
	for _, args := range [][]string{
		{"backup", "run", "plain", "--to", loc},
		{"backup", "ls", loc},
		{"backup", "verify", loc},
		{"restore", loc, "--as", "r"},
	} {
		r := e.run(args...)
		if r.code == 0 || strings.Contains(r.stdout+r.stderr, "hunter2") || !strings.Contains(r.stderr, `destination s3:... looks like a URL without its "//"`) {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestVerifyFolderAfterKeyRotation: a folder holds chains of an old key
// and of the new one. verify with the new key authenticates the new
// chains and checks the old ones by their checksums, saying so.
func TestVerifyFolderAfterKeyRotation(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "plain")
	oldPath, old := e.keyFile("old.key")
	newPath, nu := e.keyFile("new.key")
	to := filepath.Join(e.dir, "backups")
	e.putDoc("plain", "a/1", `{"N":1}`)
	first := e.backupJSON("plain", "--to", to, "--key-file", oldPath)
	e.putDoc("plain", "a/2", `{"N":2}`)
	second := e.backupJSON("plain", "--to", to, "--key-file", newPath, "--incremental")
	if second.ChainDir == first.ChainDir {
		t.Fatal("the rotated key extended the old key's chain")
	}
	out := e.ok("backup", "verify", to, "--key-file", newPath)
	for _, want := range []string{
		"checked the checksums of " + first.ChainDir + " (logical, encryption key",
		"  encrypted with another key (fingerprint " + old.Fingerprint() + ") than the one given (" + nu.Fingerprint() + "): only its checksums were checked\n",
		"verified " + second.ChainDir + " (logical, encryption key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
}
