package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/certs"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// served is a `magpie serve` child process.
type served struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

var servingLine = regexp.MustCompile(`magpie: serving (https?://\S+) `)

// startServe starts magpie serve on a free loopback port and waits until
// it listens.
func startServe(t *testing.T, e *env, extraEnv []string, args ...string) *served {
	t.Helper()
	s := &served{t: t, done: make(chan struct{})}
	full := append([]string{"--data", e.data, "--master-key", e.master, "serve"}, args...)
	if !containsFlag(args, "--listen") {
		full = append(full, "--listen", "127.0.0.1:0")
	}
	s.cmd = exec.Command(magpieBin, full...)
	s.cmd.Env = append(append(os.Environ(), "MAGPIE_DATA=", "MAGPIE_MASTER_KEY_FILE="), extraEnv...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.stderr}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stdout.WriteString(line + "\n")
			s.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				urlc <- m[1]
			}
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.url = <-urlc:
	case <-s.done:
		t.Fatalf("magpie serve exited before listening: %v\nstdout: %s\nstderr: %s", s.err, s.out(), s.errOut())
	case <-time.After(2 * time.Minute):
		t.Fatalf("magpie serve did not listen\nstdout: %s\nstderr: %s", s.out(), s.errOut())
	}
	return s
}

func containsFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *served) out() string    { s.mu.Lock(); defer s.mu.Unlock(); return s.stdout.String() }
func (s *served) errOut() string { s.mu.Lock(); defer s.mu.Unlock(); return s.stderr.String() }

// stop sends SIGTERM and expects a clean exit 0 within a few seconds.
func (s *served) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	s.waitExit(0, 10*time.Second)
}

func (s *served) waitExit(code int, within time.Duration) {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(within):
		s.t.Fatalf("magpie serve still running %s after SIGTERM\nstderr: %s", within, s.errOut())
	}
	got := 0
	if ee, ok := s.err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if s.err != nil {
		s.t.Fatal(s.err)
	}
	if got != code {
		s.t.Fatalf("magpie serve exited %d, want %d\nstderr: %s", got, code, s.errOut())
	}
}

// client is an HTTPS client that trusts the data dir's CA and presents
// the certificate in certFile/keyFile ("" for none).
func client(t *testing.T, e *env, certFile, keyFile string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(e.data, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: roots}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func adminClient(t *testing.T, e *env) *http.Client {
	d := filepath.Join(e.data, "certs")
	return client(t, e, filepath.Join(d, "admin.pem"), filepath.Join(d, "admin-key.pem"))
}

func httpDo(t *testing.T, c *http.Client, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestServeSecured(t *testing.T) {
	e := newEnv(t)
	s := startServe(t, e, nil)
	certDir := filepath.Join(e.data, "certs")

	// First start: the certificates, with the right modes, and the help.
	for name, want := range map[string]os.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600, "server.pem": 0o644, "server-key.pem": 0o600,
		"admin.pem": 0o644, "admin-key.pem": 0o600, "admin.pfx": 0o600, "registry.json": 0o600,
	} {
		if got := fileMode(t, filepath.Join(certDir, name)); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	out := s.out()
	for _, want := range []string{
		"created now",
		`new DocumentStore("` + s.url + `", "db", {`,
		`fs.readFileSync("` + filepath.Join(certDir, "admin.pem") + `", "utf8") + fs.readFileSync("` + filepath.Join(certDir, "admin-key.pem") + `", "utf8")`,
		`type: "pem"`,
		`ca: fs.readFileSync("` + filepath.Join(certDir, "ca.pem") + `")`,
		"curl --cacert " + filepath.Join(certDir, "ca.pem") + " --cert " + filepath.Join(certDir, "admin.pem") + " --key " + filepath.Join(certDir, "admin-key.pem") + " " + s.url + "/databases?namesOnly=true",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// Key material never reaches the output.
	keyPEM, _ := os.ReadFile(filepath.Join(certDir, "admin-key.pem"))
	block, _ := pem.Decode(keyPEM)
	for _, text := range []string{s.out(), s.errOut()} {
		if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, string(keyPEM[40:80])) || bytes.Contains([]byte(text), block.Bytes[10:30]) {
			t.Error("key material in the output")
		}
	}

	admin := adminClient(t, e)
	if code, body := httpDo(t, admin, "GET", s.url+"/cluster/topology", nil); code != 200 || !strings.Contains(body, "Topology") {
		t.Errorf("topology with the admin certificate: %d %s", code, body)
	}

	// No client certificate: a readable 403.
	anon := client(t, e, "", "")
	code, body := httpDo(t, anon, "GET", s.url+"/cluster/topology", nil)
	var refusal struct{ Type, Message, Error string }
	if err := json.Unmarshal([]byte(body), &refusal); err != nil || code != 403 || refusal.Type != "InvalidAuth" ||
		refusal.Error != "This server requires a client certificate, but none was provided. Connect with the certificate magpie serve printed (DATA/certs/admin.pem)." {
		t.Errorf("without a certificate: %d %s", code, body)
	}
	if code, _ := httpDo(t, anon, "GET", s.url+"/metrics", nil); code != 403 {
		t.Errorf("metrics without a certificate: %d", code)
	}

	// A client that connects and says nothing does not hold up others.
	slow, err := net.Dial("tcp", strings.TrimPrefix(s.url, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := httpDo(t, admin, "GET", s.url+"/databases?namesOnly=true", nil); code != 200 {
		t.Errorf("list databases beside a stalled connection: %d", code)
	}
	slow.Close()

	// Metrics count requests by route pattern and status.
	code, body = httpDo(t, admin, "GET", s.url+"/metrics", nil)
	if code != 200 || !strings.Contains(body, `magpie_http_requests_total{code="200",route="GET /cluster/topology"} 1`) ||
		!strings.Contains(body, `magpie_http_requests_total{code="403",route="GET /cluster/topology"} 1`) ||
		!strings.Contains(body, "magpie_http_requests_in_flight") {
		t.Errorf("metrics: %d\n%s", code, body)
	}

	// The data dir is held: certs create refuses.
	r := e.run("certs", "create", "x", "--clearance", "ValidUser", "--out", filepath.Join(e.dir, "x"))
	if r.code != 1 || !strings.Contains(r.stderr, "is held by a running magpie serve") || !strings.Contains(r.stderr, "Issue the certificate through the server: add --server URL") {
		t.Errorf("certs create while serving: %d %s", r.code, r.stderr)
	}

	// SIGTERM while a request is running: the request finishes, the
	// process exits 0.
	pr, pw := io.Pipe()
	type answer struct {
		code int
		body string
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("PUT", s.url+"/admin/certificates", pr)
		resp, err := admin.Do(req)
		if err != nil {
			answered <- answer{-1, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{resp.StatusCode, string(b)}
	}()
	pw.Write([]byte(`{"Name": "late", `))
	time.Sleep(300 * time.Millisecond) // the request is in the handler
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-s.done:
		t.Fatal("exited with a request running")
	default:
	}
	// New connections are no longer accepted.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "https://"), time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after SIGTERM")
	}
	pw.Write([]byte(`"Certificate": "AAAA"}`))
	pw.Close()
	select {
	case a := <-answered:
		if a.code != 400 || !strings.Contains(a.body, "cannot be read") {
			t.Errorf("running request: %d %s", a.code, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("running request not answered")
	}
	s.waitExit(0, 10*time.Second)
	if !strings.Contains(s.errOut(), "stopped") {
		t.Errorf("stderr: %s", s.errOut())
	}

	// A second start reuses the certificates; the admin certificate still
	// works.
	before, _ := os.ReadFile(filepath.Join(certDir, "server.pem"))
	s = startServe(t, e, nil)
	if !strings.Contains(s.out(), "(reused)") {
		t.Errorf("second start: %s", s.out())
	}
	if after, _ := os.ReadFile(filepath.Join(certDir, "server.pem")); !bytes.Equal(before, after) {
		t.Error("server.pem changed")
	}
	if code, _ := httpDo(t, adminClient(t, e), "GET", s.url+"/cluster/topology", nil); code != 200 {
		t.Errorf("after restart: %d", code)
	}
	s.stop()

	// A host name the certificate does not cover is refused with what to
	// do, and the files stay.
	r = e.run("serve", "--listen", "127.0.0.1:0", "--hostname", "db.example.com")
	if r.code != 1 || !strings.Contains(r.stderr, "does not cover db.example.com") || !strings.Contains(r.stderr, "Remove") {
		t.Errorf("new hostname: %d %s", r.code, r.stderr)
	}
}

func TestServeUsage(t *testing.T) {
	e := newEnv(t)
	conf := filepath.Join(e.dir, "magpie.yaml")
	for _, c := range []struct {
		name string
		env  []string
		file string
		args []string
		says string
	}{
		{"unsecured public", nil, "", []string{"--unsecured", "--listen", "0.0.0.0:0"}, "--unsecured serves plain HTTP with no authentication, so it listens only on a loopback address, and 0.0.0.0:0 is not one"},
		{"unsecured all interfaces", nil, "", []string{"--unsecured", "--listen", ":8080"}, "is not one"},
		{"unsecured from env", []string{"MAGPIE_UNSECURED=true", "MAGPIE_LISTEN=0.0.0.0:0"}, "", nil, "0.0.0.0:0 is not one"},
		{"unsecured from file", nil, "unsecured: true\nlisten: 10.0.0.1:80\n", nil, "10.0.0.1:80 is not one"},
		{"unsecured with tls", nil, "", []string{"--unsecured", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "have no use with it"},
		{"cert without key", nil, "", []string{"--tls-cert", "c.pem"}, "go together"},
		{"bad listen", nil, "", []string{"--listen", "nonsense"}, "is not HOST:PORT"},
		{"bad hostname", nil, "", []string{"--hostname", "bad host"}, "neither a host name nor an IP address"},
		{"unknown setting", nil, "listn: 127.0.0.1:1\n", nil, `sets "listn"`},
		{"bad bool", []string{"MAGPIE_UNSECURED=maybe"}, "", nil, "must be true or false"},
		{"bad file", nil, "listen: [\n", nil, "not valid YAML or JSON"},
		{"missing file", nil, "", []string{"--config", filepath.Join(e.dir, "nope.yaml")}, "cannot read the config file"},
		{"negative backup concurrency", nil, "", []string{"--backup-concurrency", "-1"}, "backup concurrency -1 (--backup-concurrency, MAGPIE_BACKUP_CONCURRENCY or backup-concurrency in the config file) is not between 0 and 64. Give 1 to keep backups on one core, or 0 for two"},
		{"huge backup concurrency", []string{"MAGPIE_BACKUP_CONCURRENCY=100000"}, "", nil, "backup concurrency 100000 (--backup-concurrency, MAGPIE_BACKUP_CONCURRENCY or backup-concurrency in the config file) is not between 0 and 64."},
		{"bad backup concurrency env", []string{"MAGPIE_BACKUP_CONCURRENCY=two"}, "", nil, `setting backup-concurrency must be a whole number of cores, not "two"`},
		{"fractional backup concurrency", nil, "backup-concurrency: 1.5\n", nil, "setting backup-concurrency must be a whole number of cores, not 1.5"},
	} {
		args := append([]string{"serve"}, c.args...)
		if c.file != "" {
			os.WriteFile(conf, []byte(c.file), 0o600)
			args = append(args, "--config", conf)
		}
		cmd := exec.Command(magpieBin, append([]string{"--data", e.data, "--master-key", e.master}, args...)...)
		cmd.Env = append(append(os.Environ(), "MAGPIE_DATA=", "MAGPIE_MASTER_KEY_FILE="), c.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("%s: %v\n%s", c.name, err, stderr.String())
		}
		if _, err := os.Stat(e.data); err == nil {
			t.Fatalf("%s: the data dir was created", c.name)
		}
	}
}

// TestServeUnsecured: plain HTTP on loopback; a flag wins over the config
// file.
func TestServeUnsecured(t *testing.T) {
	e := newEnv(t)
	conf := filepath.Join(e.dir, "magpie.yaml")
	os.WriteFile(conf, []byte("unsecured: true\nlisten: 0.0.0.0:1\n"), 0o600)
	s := startServe(t, e, nil, "--config", conf, "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(s.url, "http://127.0.0.1:") || !strings.Contains(s.out(), "WARNING: --unsecured") {
		t.Fatalf("url %s\n%s", s.url, s.out())
	}
	if code, body := httpDo(t, http.DefaultClient, "GET", s.url+"/cluster/topology", nil); code != 200 {
		t.Errorf("topology: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(e.data, "certs")); err == nil {
		t.Error("certificates made for an unsecured server")
	}
	s.stop()
}

func TestCertsCreate(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(e.dir, "issued")

	// Before any serve there is no data dir (nor CA).
	r := e.run("certs", "create", "reader", "--clearance", "ValidUser", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "Run magpie serve once") {
		t.Errorf("no data dir: %d %s", r.code, r.stderr)
	}
	e.ok("db", "create", "orders")
	r = e.run("certs", "create", "reader", "--clearance", "ValidUser", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "no certificate authority") {
		t.Errorf("no CA: %d %s", r.code, r.stderr)
	}

	s := startServe(t, e, nil)
	s.stop()

	// Usage errors: exit 2, nothing written.
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"x", "--out", out}, "--clearance is required"},
		{[]string{"x", "--clearance", "Root", "--out", out}, `"Root" is not a clearance`},
		{[]string{"x", "--clearance", "ValidUser", "--db", "orders:Write", "--out", out}, "is not a permission"},
		{[]string{"x", "--clearance", "ValidUser", "--db", "orders", "--out", out}, "is not NAME:PERM"},
		{[]string{"x", "--clearance", "ClusterAdmin", "--db", "orders:Read", "--out", out}, "already reaches every database"},
		{[]string{"x", "--clearance", "ValidUser"}, "--out is required"},
		{[]string{"../x", "--clearance", "ValidUser", "--out", out}, "is not valid"},
		{[]string{"x", "--clearance", "ValidUser", "--days", "0", "--out", out}, "--days"},
	} {
		r := e.run(append([]string{"certs", "create"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.says) {
			t.Errorf("%v: %d %s", c.args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("files written by a refused command")
	}

	stdout := e.ok("certs", "create", "reader", "--clearance", "validuser", "--db", "orders:Read", "--out", out, "--days", "30")
	for name, want := range map[string]os.FileMode{"reader.pem": 0o644, "reader-key.pem": 0o600, "reader.pfx": 0o600} {
		if got := fileMode(t, filepath.Join(out, name)); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	pair, err := certs.LoadPair(filepath.Join(out, "reader.pem"), filepath.Join(out, "reader-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(out, "reader-key.pem"))
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "RSA PRIVATE KEY" {
		t.Error("key is not PKCS#1 PEM")
	}
	pfx, _ := os.ReadFile(filepath.Join(out, "reader.pfx"))
	if _, c, _, err := pkcs12.DecodeChain(pfx, ""); err != nil || !c.Equal(pair.Cert) {
		t.Errorf("pfx: %v", err)
	}
	if !strings.Contains(stdout, certs.Thumbprint(pair.Cert)) || !strings.Contains(stdout, "ValidUser; orders: Read") {
		t.Errorf("stdout: %s", stdout)
	}
	if d := time.Until(pair.Cert.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("valid for %v", d)
	}

	// Never overwrite: the same name again fails and changes nothing.
	r = e.run("certs", "create", "reader", "--clearance", "ValidUser", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("again: %d %s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(out, "reader-key.pem")); !bytes.Equal(again, keyPEM) {
		t.Error("key overwritten")
	}

	e.ok("certs", "create", "ops", "--clearance", "Operator", "--out", out)
	e.ok("certs", "create", "boss", "--clearance", "ClusterAdmin", "--out", out)

	// The server accepts each per its clearance.
	s = startServe(t, e, nil)
	reader := client(t, e, filepath.Join(out, "reader.pem"), filepath.Join(out, "reader-key.pem"))
	ops := client(t, e, filepath.Join(out, "ops.pem"), filepath.Join(out, "ops-key.pem"))
	boss := client(t, e, filepath.Join(out, "boss.pem"), filepath.Join(out, "boss-key.pem"))
	check := func(who string, c *http.Client, method, path string, want int, says string) {
		t.Helper()
		code, body := httpDo(t, c, method, s.url+path, nil)
		if code != want || !strings.Contains(body, says) {
			t.Errorf("%s %s %s: %d %s", who, method, path, code, body)
		}
	}
	check("reader", reader, "GET", "/certificates/whoami", 200, `"Name":"reader"`)
	check("reader", reader, "GET", "/metrics", 200, "magpie_http_requests_total")
	check("reader", reader, "GET", "/databases/orders/stats", 200, "CountOfDocuments")
	check("reader", reader, "GET", "/admin/certificates", 403, "AuthorizationException")
	check("reader", reader, "GET", "/admin/secrets/generate", 403, "needs Operator or ClusterAdmin")
	check("ops", ops, "GET", "/admin/secrets/generate", 200, "")
	check("ops", ops, "GET", "/admin/certificates", 403, "needs ClusterAdmin")
	check("boss", boss, "GET", "/admin/certificates", 200, `"Name":"reader"`)
	code, body := httpDo(t, boss, "GET", s.url+"/admin/certificates", nil)
	var list struct {
		Results []struct{ Name, SecurityClearance string }
	}
	json.Unmarshal([]byte(body), &list)
	if code != 200 || len(list.Results) != 4 {
		t.Errorf("list: %d %s", code, body)
	}
	// Revoked through the API: the reader is refused from then on.
	check("boss", boss, "DELETE", "/admin/certificates?thumbprint="+certs.Thumbprint(pair.Cert), 204, "")
	reader = client(t, e, filepath.Join(out, "reader.pem"), filepath.Join(out, "reader-key.pem"))
	check("revoked reader", reader, "GET", "/certificates/whoami", 403, "unknown to this server")
	s.stop()
}

// TestCertsCreateRemote: with --server the running server issues and
// registers the certificate, which works at once with its permissions; a
// certificate without ClusterAdmin clearance cannot issue one.
func TestCertsCreateRemote(t *testing.T) {
	r := startRemote(t)
	r.remoteOK("db", "create", "orders")
	r.remoteOK("db", "create", "other")
	out := filepath.Join(r.dir, "issued")

	// The data dir is held by the server: the embedded path says to go
	// through it.
	res := r.run("certs", "create", "reader", "--clearance", "ValidUser", "--out", out)
	if res.code != 1 || !strings.Contains(res.stderr, "Issue the certificate through the server: add --server URL") {
		t.Fatalf("embedded while serving: %d %s", res.code, res.stderr)
	}
	stdout := r.remoteOK("certs", "create", "reader", "--clearance", "ValidUser", "--db", "orders:Read", "--out", out, "--days", "30")
	for name, want := range map[string]os.FileMode{"reader.pem": 0o644, "reader-key.pem": 0o600, "reader.pfx": 0o600} {
		if got := fileMode(t, filepath.Join(out, name)); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	pair, err := certs.LoadPair(filepath.Join(out, "reader.pem"), filepath.Join(out, "reader-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pfx, _ := os.ReadFile(filepath.Join(out, "reader.pfx"))
	if _, c, _, err := pkcs12.DecodeChain(pfx, ""); err != nil || !c.Equal(pair.Cert) {
		t.Errorf("pfx: %v", err)
	}
	if !strings.Contains(stdout, certs.Thumbprint(pair.Cert)) || !strings.Contains(stdout, "ValidUser; orders: Read") ||
		!strings.Contains(stdout, "Registered with "+r.s.url+": it works at once.") {
		t.Errorf("stdout: %s", stdout)
	}
	if d := time.Until(pair.Cert.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("valid for %v", d)
	}

	// The new certificate works at once, within its permissions.
	reader := []string{"--server", r.s.url, "--client-cert", filepath.Join(out, "reader.pem"), "--client-key", filepath.Join(out, "reader-key.pem"), "--ca", r.ca}
	if res := r.run(append(reader, "stats", "orders", "--json")...); res.code != 0 {
		t.Fatalf("read with the new certificate: %d %s", res.code, res.stderr)
	}
	res = r.runStdin([]byte(`{"a":1}`), append(reader, "docs", "put", "orders", "a/1", "-")...)
	if res.code != 1 || !strings.Contains(res.stderr, "Read") {
		t.Fatalf("write with a Read certificate: %d %s", res.code, res.stderr)
	}
	if res := r.run(append(reader, "stats", "other", "--json")...); res.code != 1 {
		t.Fatalf("a database the certificate has no access to: %d %s", res.code, res.stderr)
	}
	// It cannot issue certificates; nothing is written for a refusal.
	res = r.run(append(reader, "certs", "create", "sneaky", "--clearance", "ClusterAdmin", "--out", out)...)
	if res.code != 1 || !strings.Contains(res.stderr, "ClusterAdmin") {
		t.Fatalf("issue with a ValidUser certificate: %d %s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "sneaky.pem")); err == nil {
		t.Fatal("a refused request wrote files")
	}
	// Never overwrite: the same name again fails before asking the server.
	res = r.remote("certs", "create", "reader", "--clearance", "ValidUser", "--out", out)
	if res.code != 1 || !strings.Contains(res.stderr, "already exists") {
		t.Errorf("again: %d %s", res.code, res.stderr)
	}
	// An --out that cannot take the files fails before the server
	// registers anything: the key would be lost with it.
	blocker := filepath.Join(r.dir, "a-file")
	os.WriteFile(blocker, nil, 0o600)
	res = r.remote("certs", "create", "lost", "--clearance", "ValidUser", "--out", filepath.Join(blocker, "certs"))
	if res.code != 1 || !strings.Contains(res.stderr, "cannot create --out folder "+filepath.Join(blocker, "certs")) {
		t.Errorf("--out under a file: %d %s", res.code, res.stderr)
	}
	var list []map[string]any
	code, body := httpDo(t, adminClient(t, r.env), "GET", r.s.url+"/admin/certificates", nil)
	if code != 200 || json.Unmarshal([]byte(body), &struct{ Results *[]map[string]any }{&list}) != nil {
		t.Fatalf("certificates: %d %s", code, body)
	}
	names := []string{}
	for _, c := range list {
		names = append(names, c["Name"].(string))
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "admin,reader" {
		t.Fatalf("registered certificates %v, want admin and reader", names)
	}
	r.s.stop()
}
