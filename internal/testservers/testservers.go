// Package testservers starts real object-store servers for tests: versitygw
// for S3, Azurite for Azure Blob Storage and fake-gcs-server for Google
// Cloud Storage, each on a free loopback port with its data in a temporary
// folder, stopped when the test ends. It also has a FaultProxy to put in
// front of one of them.
//
// Each StartX function sets the credentials a client needs in the
// environment with t.Setenv, so a test that uses one cannot be parallel.
// When a server is not installed the test is skipped, or fails when the
// environment has CI=true (.ci/run installs them all).
package testservers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running storage server.
type Server struct {
	// Scheme is the destination scheme: "s3", "azblob" or "gs".
	Scheme string
	// Addr is the host:port the server listens on.
	Addr string
	// Bucket is the bucket (Azure: container) created at start.
	Bucket string

	create   func(ctx context.Context, addr, bucket string) error
	location func(addr, bucket, prefix string) string
	mu       sync.Mutex
	buckets  int
}

// Location is a destination URL for the server's bucket, with prefix as a
// path inside it (may be empty), for destination.Open.
func (s *Server) Location(prefix string) string {
	return s.location(s.Addr, s.Bucket, prefix)
}

// LocationVia is Location through addr instead of the server's own address:
// the address of a FaultProxy in front of it. For GCS, whose emulator
// address is an environment variable, it sets STORAGE_EMULATOR_HOST.
func (s *Server) LocationVia(t testing.TB, addr, prefix string) string {
	t.Helper()
	if s.Scheme == "gs" {
		t.Setenv("STORAGE_EMULATOR_HOST", addr)
	}
	return s.location(addr, s.Bucket, prefix)
}

// NewBucket creates one more empty bucket and returns its location, for a
// test that needs a clean one.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.buckets++
	name := fmt.Sprintf("%s-%d", s.Bucket, s.buckets)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.create(ctx, s.Addr, name); err != nil {
		t.Fatalf("cannot create bucket %s on the %s test server: %v", name, s.Scheme, err)
	}
	return s.location(s.Addr, name, "")
}

// missing skips the test, or fails it under CI=true, because a server
// cannot be run here.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this fails instead of skipping; .ci/run installs it)", msg)
	}
	t.Skip(msg)
}

var gopathOnce = sync.OnceValue(func() string {
	if p := os.Getenv("GOPATH"); p != "" {
		return strings.Split(p, string(os.PathListSeparator))[0]
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go")
})

// findBinary looks for a command on PATH, then in $(go env GOPATH)/bin,
// where go install puts it.
func findBinary(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	p := filepath.Join(gopathOnce(), "bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, true
	}
	return "", false
}

// RepoRoot is the folder holding go.mod, found by walking up from the
// working directory (a package's folder under go test).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// randomHex returns n random bytes in hex: secrets and bucket suffixes.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// output keeps the last 64 KiB a server printed, to show when it fails.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.buf.Len() > 64<<10 {
		b := o.buf.Bytes()[o.buf.Len()-32<<10:]
		o.buf = *bytes.NewBuffer(append([]byte(nil), b...))
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// launch describes how to start one server.
type launch struct {
	what  string                                       // "versitygw", for messages
	cmd   func(addr string) *exec.Cmd                  // the command listening on addr
	ready func(ctx context.Context, addr string) error // nil once it answers (and its bucket exists)
}

// start runs l on a free port, waits until it is ready and stops it at
// cleanup. A port taken in between is retried on another.
func start(t testing.TB, l launch) string {
	t.Helper()
	var lastErr error
	for try := 0; try < 3; try++ {
		addr := freePort(t)
		err := startOnce(t, l, addr)
		if err == nil {
			return addr
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("cannot start %s: %v", l.what, lastErr)
	return ""
}

var errExited = errors.New("the server exited")

func startOnce(t testing.TB, l launch, addr string) error {
	cmd := l.cmd(addr)
	out := &output{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	stop := func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	for {
		select {
		case <-done:
			return fmt.Errorf("%w: %s\n%s", errExited, cmd.ProcessState, out)
		default:
		}
		if err = l.ready(ctx, addr); err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("%s output:\n%s", l.what, out)
				}
			})
			return nil
		}
		select {
		case <-ctx.Done():
			stop()
			return fmt.Errorf("%s did not answer on %s within a minute: %v\n%s", l.what, addr, err, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialable reports whether something accepts connections on addr, so that
// readiness checks do not pile up SDK retries against a closed port.
func dialable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// httpURL is addr as an http:// URL.
func httpURL(addr string) string {
	return (&url.URL{Scheme: "http", Host: addr}).String()
}
