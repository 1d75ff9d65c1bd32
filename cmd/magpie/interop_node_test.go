package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInteropNodeClient runs the official RavenDB Node.js client
// (tests/interop, ravendb@7.2.6, unchanged) through the seed scenario
// against `magpie serve` with fresh certificates: an encrypted database
// created after its key was put, documents and an attachment, a backup,
// a restore refused with a wrong key (leaving no database) and one with
// the right key, the documents read back identical.
func TestInteropNodeClient(t *testing.T) {
	node, dir := interopSuite(t)
	e := newEnv(t)
	srv := startServe(t, e, nil)
	certs := filepath.Join(e.data, "certs")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "scenario.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MAGPIE_URL="+srv.url,
		"MAGPIE_CERT="+filepath.Join(certs, "admin.pem"),
		"MAGPIE_KEY="+filepath.Join(certs, "admin-key.pem"),
		"MAGPIE_CA="+filepath.Join(certs, "ca.pem"),
		"MAGPIE_BACKUP_DIR="+filepath.Join(e.dir, "backups"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SCENARIO PASSED") {
		t.Fatalf("the Node.js client scenario failed (%v):\n%s\nserver log:\n%s", err, out, srv.errOut())
	}
	t.Logf("%s", out)
}

// TestInteropNodeCases runs tests/interop/cases.mjs with the official
// RavenDB Node.js client against `magpie serve`: CRUD with change vectors,
// attachments, a Read certificate refused a write, a ValidUser certificate
// without access refused a read and a client without a certificate
// refused, each with a readable AuthorizationException.
func TestInteropNodeCases(t *testing.T) {
	node, dir := interopSuite(t)
	e := newEnv(t)
	// certs create needs the CA that the first serve makes, and a data dir
	// no server holds: start once, stop, issue, start again.
	startServe(t, e, nil).stop()
	issued := filepath.Join(e.dir, "issued")
	e.ok("certs", "create", "reader", "--clearance", "ValidUser", "--db", "interop:Read", "--out", issued)
	e.ok("certs", "create", "noaccess", "--clearance", "ValidUser", "--out", issued)
	e.ok("db", "create", "interop")
	srv := startServe(t, e, nil)
	certs := filepath.Join(e.data, "certs")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "cases.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MAGPIE_URL="+srv.url,
		"MAGPIE_CERT="+filepath.Join(certs, "admin.pem"),
		"MAGPIE_KEY="+filepath.Join(certs, "admin-key.pem"),
		"MAGPIE_CA="+filepath.Join(certs, "ca.pem"),
		"MAGPIE_READ_CERT="+filepath.Join(issued, "reader.pem"),
		"MAGPIE_READ_KEY="+filepath.Join(issued, "reader-key.pem"),
		"MAGPIE_NOACCESS_CERT="+filepath.Join(issued, "noaccess.pem"),
		"MAGPIE_NOACCESS_KEY="+filepath.Join(issued, "noaccess-key.pem"),
		"MAGPIE_DB=interop",
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CASES PASSED") || strings.Contains(string(out), "FAIL ") {
		t.Fatalf("the Node.js client cases failed (%v):\n%s\nserver log:\n%s", err, out, srv.errOut())
	}
	t.Logf("%s", out)
	srv.stop()
}

// interopSuite finds node and tests/interop with its npm packages; without
// them the test is skipped, or fails under CI=true.
func interopSuite(t *testing.T) (node, dir string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "tests", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	node, err = exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "ravendb"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the interop suite needs node and `npm ci` in tests/interop: %v", err)
		}
		t.Skipf("the interop suite needs node and `npm ci` in tests/interop: %v", err)
	}
	return node, dir
}
