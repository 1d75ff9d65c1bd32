package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/keys"
)

// The CLI tests run the real binary, so exit codes, stdout and stderr are
// exactly what an operator sees.
var magpieBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "magpie-cli-test-")
	if err != nil {
		panic(err)
	}
	magpieBin = filepath.Join(dir, "magpie")
	out, err := exec.Command("go", "build", "-o", magpieBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building magpie: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one data dir with its master key, in a test's temp dir.
type env struct {
	t      *testing.T
	dir    string
	data   string
	master string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	return &env{t: t, dir: dir, data: filepath.Join(dir, "data"), master: filepath.Join(dir, "master.key")}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs magpie with the env's data dir and master key.
func (e *env) run(args ...string) result {
	return e.runStdin(nil, args...)
}

func (e *env) runStdin(stdin []byte, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(magpieBin, append([]string{"--data", e.data, "--master-key", e.master}, args...)...)
	cmd.Env = append(os.Environ(), "MAGPIE_DATA=", "MAGPIE_MASTER_KEY_FILE=")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running magpie: %v", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs magpie and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("magpie %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// keyFile writes a fresh key to a 0600 file and returns its path and key.
func (e *env) keyFile(name string) (string, keys.Key) {
	e.t.Helper()
	k, err := keys.Generate()
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.dir, name)
	if err := keys.WriteFile(p, k); err != nil {
		e.t.Fatal(err)
	}
	return p, k
}

// sharedData finds the project's shared test data (DESIGN.md section 8).
func sharedData(t *testing.T, name string) string {
	t.Helper()
	var candidates []string
	if d := os.Getenv("MAGPIE_SHARED_DATA"); d != "" {
		candidates = append(candidates, filepath.Join(d, name))
	}
	if top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(top)), "..", "shared", "data", name))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("shared test data %s not found (set MAGPIE_SHARED_DATA)", name)
	}
	t.Skipf("shared test data %s not found (set MAGPIE_SHARED_DATA)", name)
	return ""
}

// wantError checks a failed run: the exit code, the exact error message and
// that no key material leaked into the output.
func wantError(t *testing.T, r result, code int, msg string, secrets ...keys.Key) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	first := strings.SplitN(r.stderr, "\n", 2)[0]
	if first != "magpie: error: "+msg {
		t.Errorf("stderr\n  %q\nwant\n  %q", first, "magpie: error: "+msg)
	}
	for _, k := range secrets {
		if strings.Contains(r.stdout+r.stderr, k.Base64()) {
			t.Errorf("output contains key material")
		}
	}
}
