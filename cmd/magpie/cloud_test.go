package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/testservers"
)

// readObject reads one object of a destination.
func readObject(t *testing.T, location, name string) []byte {
	t.Helper()
	s, err := destination.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A chain written to a local folder and an object store at once: both hold
// the same bytes, and ls, verify and restore (whole and point in time) work
// from the URL alone. Run against each object store.
func TestCloudDestinations(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(testing.TB) *testservers.Server
	}{
		{"s3", testservers.StartS3},
		{"azure", testservers.StartAzure},
		{"gcs", testservers.StartGCS},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := c.start(t)
			e := newEnv(t)
			keyPath, k := e.keyFile("bk.key")
			e.ok("db", "create", "media")
			for i := 1; i <= 50; i++ {
				e.putDoc("media", fmt.Sprintf("tracks/%d", i), fmt.Sprintf(`{"N":%d,"Pad":%q}`, i, strings.Repeat("x", 2000)))
			}
			local := filepath.Join(e.dir, "local")
			url := srv.Location("nightly/media")
			full := e.backupJSON("media", "--to", local, "--to", url, "--key-file", keyPath)
			e.ok("docs", "delete", "media", "tracks/1")
			e.putDoc("media", "tracks/51", `{"N":51}`)
			inc := e.backupJSON("media", "--to", local, "--to", url, "--incremental", "--key-file", keyPath)

			// The same bytes in both destinations, manifest included.
			chain := filepath.Base(full.ChainDir)
			for _, f := range []string{filepath.Base(full.File), filepath.Base(inc.File), "manifest.json"} {
				want, err := os.ReadFile(filepath.Join(local, chain, f))
				if err != nil {
					t.Fatal(err)
				}
				if got := readObject(t, url, chain+"/"+f); !bytes.Equal(got, want) {
					t.Errorf("%s differs between the destinations (%d and %d bytes)", f, len(got), len(want))
				}
			}

			// Restore points from the URL.
			var chains []struct {
				Dir      string
				Complete bool
				Manifest struct{ Files []struct{ Name string } }
			}
			if err := json.Unmarshal([]byte(e.ok("backup", "ls", url, "--json")), &chains); err != nil {
				t.Fatal(err)
			}
			if len(chains) != 1 || !chains[0].Complete || len(chains[0].Manifest.Files) != 2 || chains[0].Dir != srv.Location("nightly/media/"+chain) {
				t.Fatalf("backup ls %s: %+v", url, chains)
			}
			out := e.ok("backup", "verify", url, "--key-file", keyPath)
			if !strings.Contains(out, "verified "+srv.Location("nightly/media/"+chain)) || strings.Count(out, "decrypted, authenticated and parsed") != 2 {
				t.Errorf("verify %s:\n%s", url, out)
			}
			// Whole chain, and up to the full backup, streamed from the
			// object store.
			e.ok("restore", url, "--as", "whole", "--key-file", keyPath)
			if n := e.docCount("whole"); n != 50 {
				t.Errorf("restored %d documents, want 50", n)
			}
			if r := e.run("docs", "get", "whole", "tracks/1"); r.code == 0 {
				t.Error("tracks/1 was deleted but is back")
			}
			e.ok("restore", url, "--as", "first", "--key-file", keyPath, "--until", filepath.Base(full.File))
			if got := e.ok("docs", "get", "first", "tracks/1"); !strings.Contains(got, `"N":1,`) {
				t.Errorf("tracks/1 in the full backup: %s", got)
			}
			// A file URL names the point in time as well.
			e.ok("restore", srv.Location("nightly/media/"+chain+"/"+filepath.Base(full.File)), "--as", "byfile", "--key-file", keyPath)
			if n := e.docCount("byfile"); n != 50 {
				t.Errorf("restored by file URL: %d documents, want 50", n)
			}
			for _, r := range []result{e.run("backup", "ls", url), e.run("backup", "verify", url, "--key-file", keyPath)} {
				if strings.Contains(r.stdout+r.stderr, k.Base64()) || strings.Contains(r.stdout+r.stderr, os.Getenv("AWS_SECRET_ACCESS_KEY")+"x") {
					t.Error("output holds secrets")
				}
			}
		})
	}
}

// A destination that is down: the run fails with one clear sentence,
// neither destination holds anything new, and once it is back the next
// run succeeds.
func TestCloudDestinationDown(t *testing.T) {
	srv := testservers.StartS3(t)
	proxy := testservers.NewFaultProxy(t, srv.Addr)
	e := newEnv(t)
	e.ok("db", "create", "d")
	e.putDoc("d", "a/1", `{"N":1}`)
	local := filepath.Join(e.dir, "local")
	url := srv.LocationVia(t, proxy.Addr(), "b")
	t.Setenv("AWS_MAX_ATTEMPTS", "2")

	proxy.Down()
	r := e.run("backup", "run", "d", "--to", local, "--to", url)
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, "magpie: error: ") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("backup to a destination that is down: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("destination down: %s", r.stderr)
	if !strings.Contains(r.stderr, srv.LocationVia(t, proxy.Addr(), "b")[:len("s3://")+len(srv.Bucket)]) {
		t.Errorf("the error does not name the destination: %s", r.stderr)
	}
	if secret := os.Getenv("AWS_SECRET_ACCESS_KEY"); secret != "" && strings.Contains(r.stderr, secret) {
		t.Error("the error holds the secret key")
	}
	// Nothing that looks like a backup anywhere.
	if out := e.ok("backup", "ls", local); out != "no backup chains in "+local+"\n" {
		t.Errorf("local destination after the failed run:\n%s", out)
	}
	proxy.Up()
	if out := e.ok("backup", "ls", url); out != "no backup chains in "+url+"\n" {
		t.Errorf("S3 destination after the failed run:\n%s", out)
	}
	// Back up: the next run succeeds in both.
	res := e.backupJSON("d", "--to", local, "--to", url)
	if !strings.HasSuffix(res.File, ".full-backup") {
		t.Fatalf("run after recovery: %+v", res)
	}
	e.ok("restore", url, "--as", "back")
	if n := e.docCount("back"); n != 1 {
		t.Errorf("restored %d documents, want 1", n)
	}
}
