package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/store"
)

// remoteEnv runs the CLI with --server against a `magpie serve` of e's
// data dir, with the admin certificate.
type remoteEnv struct {
	*env
	s                  *served
	cert, key, ca      string
	certArgs, noCAArgs []string
}

func startRemote(t *testing.T) *remoteEnv {
	e := newEnv(t)
	s := startServe(t, e, nil)
	d := filepath.Join(e.data, "certs")
	r := &remoteEnv{env: e, s: s, cert: filepath.Join(d, "admin.pem"), key: filepath.Join(d, "admin-key.pem"), ca: filepath.Join(d, "ca.pem")}
	r.noCAArgs = []string{"--server", s.url, "--client-cert", r.cert, "--client-key", r.key}
	r.certArgs = append(append([]string{}, r.noCAArgs...), "--ca", r.ca)
	return r
}

func (r *remoteEnv) remote(args ...string) result {
	r.t.Helper()
	return r.run(append(append([]string{}, r.certArgs...), args...)...)
}

func (r *remoteEnv) remoteOK(args ...string) string {
	r.t.Helper()
	return r.ok(append(append([]string{}, r.certArgs...), args...)...)
}

func (r *remoteEnv) stats(db string) store.Stats {
	r.t.Helper()
	var st store.Stats
	if err := json.Unmarshal([]byte(r.remoteOK("stats", db, "--json")), &st); err != nil {
		r.t.Fatal(err)
	}
	return st
}

func (r *remoteEnv) dbNames() string {
	r.t.Helper()
	var dbs []store.Info
	if err := json.Unmarshal([]byte(r.remoteOK("db", "list", "--json")), &dbs); err != nil {
		r.t.Fatal(err)
	}
	var names []string
	for _, d := range dbs {
		names = append(names, d.Name)
	}
	return strings.Join(names, ",")
}

func TestRemoteCommands(t *testing.T) {
	r := startRemote(t)
	e := r.env
	keyPath, k := e.keyFile("media.key")

	// An encrypted database with the key from a local key file.
	var created struct {
		Name           string
		Encrypted      bool
		KeyFingerprint string
		Key            string
	}
	if err := json.Unmarshal([]byte(r.remoteOK("db", "create", "media", "--encrypted", "--key-file", keyPath, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Name != "media" || !created.Encrypted || created.KeyFingerprint != k.Fingerprint() || created.Key != "" {
		t.Errorf("db create: %+v", created)
	}
	wantError(t, r.remote("db", "create", "media"), 1, "Database 'media' already exists!")
	if out := r.remoteOK("db", "create", "gen", "--encrypted"); !strings.Contains(out, "shown only this once") {
		t.Errorf("db create with a generated key: %s", out)
	}
	r.remoteOK("db", "delete", "gen")
	if names := r.dbNames(); names != "media" {
		t.Errorf("db list: %s", names)
	}

	// Documents: put, get (the stored bytes), delete.
	doc := filepath.Join(e.dir, "doc.json")
	os.WriteFile(doc, []byte(`{"Title": "Tom & Jerry <3>", "N": 1.50, "@metadata": {"@collection": "Cartoons"}}`), 0o600)
	var put struct{ Id, Collection, ChangeVector, LastModified string }
	if err := json.Unmarshal([]byte(r.remoteOK("docs", "put", "media", "cartoons/1", doc, "--json")), &put); err != nil {
		t.Fatal(err)
	}
	if put.Id != "cartoons/1" || put.Collection != "Cartoons" || put.ChangeVector == "" || put.LastModified == "" {
		t.Errorf("docs put: %+v", put)
	}
	got := r.remoteOK("docs", "get", "media", "cartoons/1")
	if !strings.HasPrefix(got, `{"Title":"Tom & Jerry <3>","N":1.50,`) || !json.Valid([]byte(got)) {
		t.Errorf("docs get: %s", got)
	}
	r.remoteOK("docs", "put", "media", "cartoons/2", doc)
	if st := r.stats("media"); st.CountOfDocuments != 2 || !st.Encrypted || st.Collections["Cartoons"] != 2 {
		t.Errorf("stats: %+v", st)
	}
	r.remoteOK("docs", "delete", "media", "cartoons/2")
	wantError(t, r.remote("docs", "get", "media", "cartoons/2"), 1, `document ID not found: "cartoons/2" is not in database "media". Check the ID (IDs are not case-sensitive).`)
	wantError(t, r.remote("docs", "delete", "media", "cartoons/2"), 1, `document ID not found: "cartoons/2" is not in database "media". Check the ID (IDs are not case-sensitive).`)
	res := r.remote("stats", "nope")
	if res.code != 1 || !strings.Contains(res.stderr, "Database 'nope' wasn't found. List the databases with `magpie db list --server") {
		t.Errorf("missing database: %d %s", res.code, res.stderr)
	}

	// Backup to a folder on the server's machine, restore with the key.
	backups := filepath.Join(e.dir, "backups")
	var b struct{ ChainDir, File, Encryption string }
	if err := json.Unmarshal([]byte(r.remoteOK("backup", "run", "media", "--to", backups, "--json")), &b); err != nil {
		t.Fatal(err)
	}
	if b.Encryption != "database" || !strings.HasPrefix(b.ChainDir, backups) {
		t.Errorf("backup run: %+v", b)
	}
	if _, err := os.Stat(b.File); err != nil {
		t.Errorf("backup file: %v", err)
	}
	wantError(t, r.remote("backup", "run", "media", "--to", "relative"), 2,
		"--to relative is not an absolute path; with --server it names a folder on the server's machine. Give its full path.")
	out := r.remoteOK("restore", b.ChainDir, "--as", "copy", "--key-file", keyPath)
	if !strings.Contains(out, "copy") || !strings.Contains(out, k.Fingerprint()) {
		t.Errorf("restore: %s", out)
	}
	if st := r.stats("copy"); st.CountOfDocuments != 1 || !st.Encrypted {
		t.Errorf("restored stats: %+v", st)
	}
	// A wrong key is refused, and no database is left.
	wrongPath, wrong := e.keyFile("wrong.key")
	res = r.remote("restore", b.ChainDir, "--as", "wrong", "--key-file", wrongPath)
	if res.code != 1 || !strings.HasPrefix(res.stderr, "magpie: error: restore failed and no database was created: the key given in --key-file (fingerprint "+wrong.Fingerprint()+") is not the key of the backup") {
		t.Errorf("wrong key: %d %s", res.code, res.stderr)
	}
	if names := r.dbNames(); names != "copy,media" {
		t.Errorf("after a refused restore: %s", names)
	}

	// backup ls through the server lists what it lists on this machine.
	remoteLs, localLs := r.remoteOK("backup", "ls", backups), r.ok("backup", "ls", backups)
	if remoteLs != localLs || !strings.Contains(remoteLs, filepath.Base(b.File)) || !strings.Contains(remoteLs, "encryption database (key fingerprint ") {
		t.Errorf("backup ls through the server:\n%s\non this machine:\n%s", remoteLs, localLs)
	}
	if remoteJSON, localJSON := r.remoteOK("backup", "ls", backups, "--json"), r.ok("backup", "ls", backups, "--json"); remoteJSON != localJSON {
		t.Errorf("backup ls --json through the server:\n%s\non this machine:\n%s", remoteJSON, localJSON)
	}
	missing := filepath.Join(e.dir, "no-such-folder")
	wantError(t, r.remote("backup", "ls", missing), 1, missing+" does not exist. Give a backup file, a chain folder or a folder of chains.")
	wantError(t, r.run("backup", "ls", missing), 1, missing+" does not exist. Give a backup file, a chain folder or a folder of chains.")
	wantError(t, r.remote("backup", "ls", "relative"), 2, "relative is not an absolute path; with --server it names a backup folder on the server's machine. Give its full path, or a URL.")
	os.Mkdir(filepath.Join(e.dir, "empty"), 0o700)
	if out := r.remoteOK("backup", "ls", filepath.Join(e.dir, "empty")); out != "no backup chains in "+filepath.Join(e.dir, "empty")+"\n" {
		t.Errorf("backup ls of an empty folder through the server: %q", out)
	}

	// backup verify through the server: the server reads and decrypts,
	// with the key sent from here, and reports as on this machine.
	remoteVerify, localVerify := r.remoteOK("backup", "verify", backups, "--key-file", keyPath), r.ok("backup", "verify", backups, "--key-file", keyPath)
	if remoteVerify != localVerify || !strings.Contains(remoteVerify, "decrypted, authenticated and parsed") {
		t.Errorf("backup verify through the server:\n%s\non this machine:\n%s", remoteVerify, localVerify)
	}
	res = r.remote("backup", "verify", backups, "--key-file", wrongPath)
	if res.code != 1 || !strings.Contains(res.stderr, wrong.Fingerprint()) {
		t.Errorf("verify with a wrong key through the server: %d %s", res.code, res.stderr)
	}
	wantError(t, r.remote("backup", "verify", "relative"), 2, "relative is not an absolute path; with --server it names a backup on the server's machine. Give its full path, or a URL.")
	// A damaged file is named, through the server as here.
	raw, err := os.ReadFile(b.File)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(b.File, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	res, local := r.remote("backup", "verify", backups, "--key-file", keyPath), r.run("backup", "verify", backups, "--key-file", keyPath)
	if res.code != 1 || local.code != 1 || !strings.Contains(res.stderr, filepath.Base(b.File)) || !strings.Contains(res.stderr, "integrity") {
		t.Errorf("verify of a damaged backup through the server: %d %s\non this machine: %d %s", res.code, res.stderr, local.code, local.stderr)
	}
	wantError(t, r.remote("serve"), 2, "magpie serve serves the local data dir, and --server (or MAGPIE_SERVER) names a server to talk to. Leave out --server, or unset MAGPIE_SERVER.")

	// Connection problems.
	res = e.run("--server", r.s.url, "db", "list")
	if res.code != 2 || !strings.Contains(res.stderr, "no client certificate was given for "+r.s.url+". Give --client-cert FILE --client-key FILE") {
		t.Errorf("no client certificate: %d %s", res.code, res.stderr)
	}
	res = e.run(append(r.noCAArgs, "db", "list")...)
	if res.code != 1 || !strings.Contains(res.stderr, "is not signed by a CA this machine trusts. Give the server's CA with --ca FILE") {
		t.Errorf("no CA: %d %s", res.code, res.stderr)
	}
	res = e.run("--server", "https://127.0.0.1:1", "--client-cert", r.cert, "--client-key", r.key, "db", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "cannot reach the magpie server at https://127.0.0.1:1") {
		t.Errorf("no server: %d %s", res.code, res.stderr)
	}

	// The environment names the server too.
	cmd := exec.Command(magpieBin, "db", "list")
	cmd.Env = append(os.Environ(), "MAGPIE_DATA="+filepath.Join(e.dir, "nowhere"), "MAGPIE_SERVER="+r.s.url,
		"MAGPIE_CLIENT_CERT="+r.cert, "MAGPIE_CLIENT_KEY="+r.key, "MAGPIE_CA="+r.ca)
	if envOut, err := cmd.Output(); err != nil || !strings.Contains(string(envOut), "copy") {
		t.Errorf("with the environment: %v %s", err, envOut)
	}

	// A command on the data dir the server holds points at --server.
	res = e.run("db", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "is held by a running magpie serve ("+r.s.url+"). Run the command through it with --server "+r.s.url) {
		t.Errorf("embedded while serving: %d %s", res.code, res.stderr)
	}

	// The bytes the server returned are the stored ones.
	r.s.stop()
	if local := e.ok("docs", "get", "media", "cartoons/1"); local != got {
		t.Errorf("docs get remote\n  %s\nlocal\n  %s", got, local)
	}
	if _, err := os.Stat(filepath.Join(e.data, servedFile)); err == nil {
		t.Errorf("%s left after the server stopped", servedFile)
	}
}

func TestRemoteImportExport(t *testing.T) {
	sample := sharedData(t, "media_subset.ravendbdump")
	r := startRemote(t)
	e := r.env
	r.remoteOK("db", "create", "media")
	var imp struct{ Documents int64 }
	if err := json.Unmarshal([]byte(r.remoteOK("import", "media", sample, "--json")), &imp); err != nil {
		t.Fatal(err)
	}
	if st := r.stats("media"); imp.Documents != 9330 || st.CountOfDocuments != 9330 || st.Collections["LastFms"] != 9330 {
		t.Fatalf("import: %+v %+v", imp, st)
	}

	// Export to a local file, atomically; never over an existing file.
	file := filepath.Join(e.dir, "out.ravendbdump")
	var exp struct {
		File string
		Size int64
	}
	if err := json.Unmarshal([]byte(r.remoteOK("export", "media", file, "--compression", "gzip", "--json")), &exp); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() != exp.Size || exp.File != file {
		t.Fatalf("export: %+v %v", exp, err)
	}
	wantError(t, r.remote("export", "media", file), 1, file+" already exists. Choose another file name; magpie does not overwrite exports.")
	res := r.remote("export", "nope", filepath.Join(e.dir, "nope.ravendbdump"))
	if res.code != 1 || !strings.Contains(res.stderr, "wasn't found") {
		t.Errorf("export of a missing database: %d %s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "nope.ravendbdump.in-progress")); err == nil {
		t.Error("a failed export left its file")
	}

	// Re-import the export, and stream one through stdin and stdout.
	r.remoteOK("db", "create", "again")
	r.remoteOK("import", "again", file)
	if st := r.stats("again"); st.CountOfDocuments != 9330 {
		t.Errorf("re-imported: %+v", st)
	}
	stdout := r.remoteOK("export", "media", "-", "--compression", "none")
	if !strings.Contains(stdout, `"Docs"`) {
		t.Errorf("export to stdout: %.200s", stdout)
	}
	r.remoteOK("db", "create", "piped")
	if res := r.runStdin([]byte(stdout), append(append([]string{}, r.certArgs...), "import", "piped", "-")...); res.code != 0 {
		t.Fatalf("import from stdin: %s", res.stderr)
	}
	if st := r.stats("piped"); st.CountOfDocuments != 9330 {
		t.Errorf("piped: %+v", st)
	}
	// A broken file: refused, nothing imported.
	broken := filepath.Join(e.dir, "broken.ravendbdump")
	os.WriteFile(broken, bytes.Repeat([]byte("x"), 100), 0o600)
	res = r.remote("import", "piped", broken)
	if res.code != 1 || !strings.Contains(res.stderr, "nothing was imported") {
		t.Errorf("broken import: %d %s", res.code, res.stderr)
	}
}
