package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"db", "ls"}, {"backup", "frob"}, {"docs", "list"}, {"secrets", "make"}} {
		r := e.run(args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "`+args[1]+`" for "magpie `+args[0]+`"`) {
			t.Errorf("magpie %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := e.run("--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "magpie version ") {
		t.Errorf("--version: %d %q", r.code, r.stdout)
	}
}

func TestSecretsGenerateOut(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.dir, "new.key")
	r := e.run("secrets", "generate", "--out", path)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q (the key must not be printed)", r.code, r.stdout)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	e.ok("db", "create", "k", "--encrypted", "--key-file", path)
	r = e.run("secrets", "generate", "--out", path)
	wantError(t, r, exitFailure, "key file "+path+" already exists: magpie never overwrites a key; choose another path or remove it yourself if it is truly unused.")
}

func TestMasterKeyInsideDataDirRefused(t *testing.T) {
	e := newEnv(t)
	e.master = filepath.Join(e.data, "master.key")
	r := e.run("db", "create", "x")
	wantError(t, r, exitFailure, "the master key file "+e.master+" is inside the data dir "+e.data+". Keep it outside (the default is "+e.data+".master.key), so that a copy of the data dir alone opens nothing.")
	if _, err := os.Stat(e.data); !os.IsNotExist(err) {
		t.Fatal("a data dir was created")
	}
}

func TestExportToStdout(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "a")
	e.runStdin([]byte(`{"N":1.50,"@metadata":{"@collection":"Ns"}}`), "docs", "put", "a", "n/1", "-")
	out := e.ok("export", "a", "-")
	dec, err := zstd.NewReader(bytes.NewReader([]byte(out)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := dec.DecodeAll([]byte(out), nil)
	if err != nil || !bytes.Contains(plain, []byte(`{"N":1.50,"@metadata":{"@collection":"Ns","@id":"n/1"`)) {
		t.Fatalf("stdout export: %v %s", err, plain)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Fatal("a file named - was written")
	}
}

func TestBackupFolderRules(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "a")
	e.ok("db", "create", "b")
	to := filepath.Join(e.dir, "backups")
	r := e.run("backup", "run", "a", "--to", to, "--type", "snapshot", "--compression", "gzip")
	wantError(t, r, exitUsage, "a snapshot is not compressed (its files are compressed tables or ciphertext already). Leave out --compression.")
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Fatal("a refused backup created its destination")
	}
	e.ok("backup", "run", "a", "--to", to)
	e.ok("backup", "run", "b", "--to", to)
	r = e.run("restore", to, "--as", "c")
	wantError(t, r, exitFailure, "restore failed and no database was created: "+to+" holds backups of several databases (a, b). Give the chain folder to use (see `magpie backup ls "+to+"`).")

	// A restored snapshot is a database of its own, with its own id.
	e.ok("backup", "run", "a", "--to", filepath.Join(e.dir, "snap"), "--type", "snapshot")
	e.ok("restore", filepath.Join(e.dir, "snap"), "--as", "a2")
	var sa, sb struct{ DatabaseId string }
	json.Unmarshal([]byte(e.ok("stats", "a", "--json")), &sa)
	json.Unmarshal([]byte(e.ok("stats", "a2", "--json")), &sb)
	if sa.DatabaseId == "" || sa.DatabaseId == sb.DatabaseId {
		t.Fatalf("database ids %q and %q", sa.DatabaseId, sb.DatabaseId)
	}
}
