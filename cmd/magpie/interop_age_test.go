package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// interopAgePrompt is what the stock age command (1.1.x) prints on the terminal
// before it reads a passphrase.
const interopAgePrompt = "Enter passphrase:"

// interopTimeout bounds every external command of the interop test, so a
// tool that waits for input that never comes fails the test instead of
// hanging it.
const interopTimeout = 60 * time.Second

// interopZstdMagic starts every zstd frame (RFC 8878, section 3.1.1).
var interopZstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// interopNeedTools fails (CI=true) or skips the test unless the commands are on PATH.
func interopNeedTools(t *testing.T, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the interop test needs " + strings.Join(missing, ", ") + " on PATH (Debian packages age and zstd: apt-get install -y age zstd)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// interopRun runs a command with a timeout and returns its combined output and
// exit code; it fails the test if the command cannot be started or times out.
func interopRun(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after %s", name, strings.Join(args, " "), interopTimeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return string(out), 0
}

// interopOK runs a command and fails the test unless it exits 0.
func interopOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, code := interopRun(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// interopTranscript collects everything a child writes to its terminal and
// signals once a marker has appeared.
type interopTranscript struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker []byte
	seen   chan struct{}
	once   sync.Once
	done   chan struct{}
}

func (p *interopTranscript) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	if bytes.Contains(p.buf.Bytes(), p.marker) {
		p.once.Do(func() { close(p.seen) })
	}
	return len(b), nil
}

func (p *interopTranscript) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// interopAgePassphrase runs `age -d -o out in` with a pty as its controlling
// terminal (the stock age reads passphrases only from a terminal), waits for
// its prompt and types the passphrase. It returns the terminal transcript
// (which never holds the passphrase: age turns echo off) and the exit code.
func interopAgePassphrase(t *testing.T, in, out, passphrase string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "age", "-d", "-o", out, in)
	cmd.WaitDelay = 5 * time.Second
	// pty.Start makes the pty the child's stdin, stdout, stderr and, with a
	// new session, its controlling terminal, which age opens as /dev/tty.
	master, err := pty.Start(cmd)
	if err != nil {
		t.Fatalf("starting age under a pty: %v", err)
	}
	defer master.Close()
	tr := &interopTranscript{marker: []byte(interopAgePrompt), seen: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		// Ends with EIO on Linux once the child has exited and the slave
		// side is closed, or when master is closed.
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				tr.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	redact := func(s string) string { return strings.ReplaceAll(s, passphrase, "<passphrase>") }
	var waitErr error
	select {
	case <-tr.seen:
		// age prints the prompt, then turns echo off and reads: type only
		// once echo is off, so the passphrase never shows on the terminal.
		interopWaitEchoOff(t, ctx, master)
		if _, err := master.Write([]byte(passphrase + "\n")); err != nil {
			t.Fatalf("typing the passphrase into the pty: %v", err)
		}
		select {
		case waitErr = <-exited:
		case <-ctx.Done():
			<-exited
			t.Fatalf("age did not finish within %s after the passphrase; terminal:\n%s", interopTimeout, redact(tr.String()))
		}
	case waitErr = <-exited:
		t.Fatalf("age exited (%v) before prompting for a passphrase; terminal:\n%s", waitErr, redact(tr.String()))
	case <-ctx.Done():
		<-exited
		t.Fatalf("age did not print %q within %s; terminal:\n%s", interopAgePrompt, interopTimeout, redact(tr.String()))
	}
	// Let the reader drain what age wrote last (its error message), bounded.
	select {
	case <-tr.done:
	case <-time.After(2 * time.Second):
	}
	transcript := redact(tr.String())
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		return transcript, ee.ExitCode()
	}
	if waitErr != nil {
		t.Fatalf("waiting for age: %v", waitErr)
	}
	return transcript, 0
}

// interopWaitEchoOff waits, bounded by ctx, until the terminal behind the
// pty master has echo turned off (on Linux the master reports the slave's
// termios). If it never happens the passphrase is typed anyway: age still
// reads it, and the transcript is redacted.
func interopWaitEchoOff(t *testing.T, ctx context.Context, master *os.File) {
	t.Helper()
	raw, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var tio *unix.Termios
		var terr error
		if err := raw.Control(func(fd uintptr) { tio, terr = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); err != nil || terr != nil {
			t.Logf("reading the pty's termios: %v %v", err, terr)
			return
		}
		if tio.Lflag&unix.ECHO == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("echo still on after the age prompt; typing the passphrase anyway")
}

// interopReimport checks that an age-decrypted backup is zstd, decompresses it with
// the stock zstd and imports the plain JSON into a new database that must
// equal the source.
func interopReimport(t *testing.T, e *env, decrypted, db, source string) {
	t.Helper()
	head := make([]byte, len(interopZstdMagic))
	f, err := os.Open(decrypted)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Read(head)
	f.Close()
	if err != nil || !bytes.Equal(head, interopZstdMagic) {
		t.Fatalf("%s does not start with the zstd magic: % x (%v)", decrypted, head, err)
	}
	plain := strings.TrimSuffix(decrypted, filepath.Ext(decrypted)) + ".json"
	interopOK(t, "zstd", "-q", "-d", "-o", plain, decrypted)
	b, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")) || !bytes.Contains(b, []byte(`"Docs"`)) {
		t.Fatalf("%s is not a RavenDB export: %.80q", plain, b)
	}
	e.ok("db", "create", db)
	e.ok("import", db, plain)
	compareDatabases(t, e, source, db)
}

// interopBackupFile runs `magpie backup run` with --json and returns the file.
func interopBackupFile(t *testing.T, e *env, args ...string) string {
	t.Helper()
	var res struct {
		File       string
		Encryption string
	}
	out := e.ok(append([]string{"backup", "run"}, append(args, "--json")...)...)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("backup run --json: %v\n%s", err, out)
	}
	if !strings.HasSuffix(res.File, ".full-backup.age") {
		t.Fatalf("backup file %q is not an age-wrapped full backup", res.File)
	}
	return res.File
}

// The interop proof of DESIGN.md section 4: the stock age command decrypts
// magpie's encrypted backups (key mode with the key's base64 text as the
// passphrase, typed into a pty; recipients mode with the identity file), and
// the stock zstd's output re-imports into magpie with equal documents.
func TestInteropStockAge(t *testing.T) {
	interopNeedTools(t, "age", "age-keygen", "zstd")
	sample := sharedData(t, "media_subset.ravendbdump")

	e := newEnv(t)
	e.ok("db", "create", "media")
	e.ok("import", "media", sample)
	attDump, _ := attachmentDump(t, e.dir)
	e.ok("import", "media", attDump)

	work := filepath.Join(e.dir, "interop")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}

	t.Run("key", func(t *testing.T) {
		keyPath, key := e.keyFile("backup.key")
		file := interopBackupFile(t, e, "media", "--to", filepath.Join(e.dir, "backups-key"), "--encryption", "key", "--key-file", keyPath)

		out := filepath.Join(work, "key.zst")
		transcript, code := interopAgePassphrase(t, file, out, key.Base64())
		t.Logf("age terminal transcript: %q", transcript)
		if code != 0 {
			t.Fatalf("age -d with the key as passphrase: exit %d; terminal:\n%s", code, transcript)
		}
		interopReimport(t, e, out, "from-age-key", "media")

		// Cross-check: magpie restores the same backup with the key file.
		e.ok("restore", file, "--as", "restored-key", "--key-file", keyPath)
		compareDatabases(t, e, "media", "restored-key")

		// Negative control: a wrong passphrase is refused, and writes nothing
		// usable, so this test can fail.
		_, other := e.keyFile("other.key")
		bad := filepath.Join(work, "wrong.zst")
		transcript, code = interopAgePassphrase(t, file, bad, other.Base64())
		if code == 0 {
			t.Fatalf("age -d with a wrong passphrase succeeded; terminal:\n%s", transcript)
		}
		if !strings.Contains(transcript, "incorrect passphrase") {
			t.Errorf("age with a wrong passphrase: want an %q error; terminal:\n%s", "incorrect passphrase", transcript)
		}
		if b, err := os.ReadFile(bad); err == nil && len(b) > 0 {
			t.Errorf("age with a wrong passphrase left %d bytes in %s", len(b), bad)
		}
	})

	t.Run("recipients", func(t *testing.T) {
		id := filepath.Join(work, "id.txt")
		interopOK(t, "age-keygen", "-o", id)
		recipient := strings.TrimSpace(interopOK(t, "age-keygen", "-y", id))
		if !strings.HasPrefix(recipient, "age1") {
			t.Fatalf("age-keygen -y: %q is not an age recipient", recipient)
		}
		file := interopBackupFile(t, e, "media", "--to", filepath.Join(e.dir, "backups-recipients"), "--encryption", "recipients", "--recipient", recipient)

		out := filepath.Join(work, "recipients.zst")
		interopOK(t, "age", "-d", "-i", id, "-o", out, file)
		interopReimport(t, e, out, "from-age-recipients", "media")

		// Cross-check: magpie restores the same backup with the identity.
		e.ok("restore", file, "--as", "restored-recipients", "--identity", id)
		compareDatabases(t, e, "media", "restored-recipients")

		// Negative control: another identity does not decrypt it.
		other := filepath.Join(work, "other-id.txt")
		interopOK(t, "age-keygen", "-o", other)
		if msg, code := interopRun(t, "age", "-d", "-i", other, "-o", filepath.Join(work, "wrong-id.zst"), file); code == 0 {
			t.Fatalf("age -d with another identity succeeded:\n%s", msg)
		}
	})
}
