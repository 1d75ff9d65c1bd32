package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/certs"
	"github.com/magpiedb/magpie/internal/store"
)

// authFix is a secured server over a temp data dir, with its certificates.
type authFix struct {
	set  *certs.Set
	auth *CertAuth
	srv  *Server
	// admin is the admin pair; user a registered ValidUser with Read on
	// "Orders"; stranger an unregistered certificate of our CA; foreign a
	// registered certificate of another CA.
	admin, user, stranger, foreign *certs.Pair
}

func newAuthFix(t *testing.T) *authFix {
	t.Helper()
	dir := t.TempDir()
	set, err := certs.EnsureServer(filepath.Join(dir, "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := certs.LoadPair(set.Files.Admin, set.Files.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &authFix{set: set, admin: admin}
	must := func(p *certs.Pair, err error) *certs.Pair {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := must(certs.NewCA("someone else's CA"))
	f.user = must(certs.Issue(set.CA, "reader", time.Hour))
	f.stranger = must(certs.Issue(set.CA, "stranger", time.Hour))
	f.foreign = must(certs.Issue(other, "foreigner", time.Hour))
	for _, e := range []certs.Entry{
		certs.EntryFor(f.user.Cert, "reader", certs.ValidUser, map[string]string{"Orders": certs.Read}),
		certs.EntryFor(f.foreign.Cert, "foreigner", certs.ClusterAdmin, nil),
	} {
		if err := set.Registry.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(set.CA.Cert)
	f.auth = NewCertAuth(set.Registry, roots)

	data, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), MasterKeyFile: filepath.Join(dir, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	f.srv = New(Config{Auth: f.auth, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, data)
	f.srv.RegisterCertificateRoutes(f.auth)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// request builds a request as TLS would hand it over with cert (nil: no
// certificate; tlsOff: plain HTTP).
func request(method, target string, body []byte, cert *certs.Pair) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	if cert != nil {
		r.TLS.PeerCertificates = []*x509.Certificate{cert.Cert}
	}
	return r
}

func (f *authFix) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	return w
}

type ravenError struct {
	Type, Message, Error string
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) ravenError {
	t.Helper()
	var e ravenError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("status %d, body not JSON: %q", w.Code, w.Body.String())
	}
	return e
}

func TestAuthenticate(t *testing.T) {
	f := newAuthFix(t)
	a := f.auth
	wantErr := func(name string, r *http.Request, parts ...string) {
		t.Helper()
		id, err := a.Authenticate(r)
		if err == nil {
			t.Errorf("%s: accepted as %+v", name, id)
			return
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %q does not say %q", name, err, p)
			}
		}
	}

	// No certificate: plain HTTP, or TLS without one.
	plain := httptest.NewRequest("GET", "/databases", nil)
	wantErr("plain HTTP", plain, "This server requires a client certificate, but none was provided. Connect with the certificate magpie serve printed (DATA/certs/admin.pem).")
	wantErr("no certificate", request("GET", "/", nil, nil), "This server requires a client certificate, but none was provided.")

	// Our CA, not registered.
	wantErr("unknown", request("GET", "/", nil, f.stranger), "'stranger'", certs.Thumbprint(f.stranger.Cert), "unknown to this server", "magpie certs create")

	// Another CA, even though registered.
	wantErr("wrong CA", request("GET", "/", nil, f.foreign), "not issued by this server's certificate authority")

	// The server's own certificate is not a client certificate.
	srvPair := &certs.Pair{Cert: f.set.Server.Cert}
	wantErr("server cert", request("GET", "/", nil, srvPair), "not meant for client authentication")

	// Expired by its own validity.
	a.Now = func() time.Time { return f.user.Cert.NotAfter.Add(time.Minute) }
	wantErr("expired", request("GET", "/", nil, f.user), "'reader'", "expired on")
	a.Now = func() time.Time { return f.user.Cert.NotBefore.Add(-time.Minute) }
	wantErr("not yet valid", request("GET", "/", nil, f.user), "not valid before")
	a.Now = time.Now

	// Expired in the registry (the registry's NotAfter is authoritative
	// too).
	e, _ := f.set.Registry.Get(certs.Thumbprint(f.user.Cert))
	e.NotAfter = time.Now().Add(-time.Minute)
	if err := f.set.Registry.Put(e); err != nil {
		t.Fatal(err)
	}
	wantErr("expired in registry", request("GET", "/", nil, f.user), "expired on")
	e.NotAfter = f.user.Cert.NotAfter
	f.set.Registry.Put(e)

	// Accepted.
	id, err := a.Authenticate(request("GET", "/", nil, f.admin))
	if err != nil || id.Clearance != "ClusterAdmin" || id.Name != "admin" || id.Thumbprint != certs.Thumbprint(f.admin.Cert) {
		t.Errorf("admin: %+v %v", id, err)
	}
	id, err = a.Authenticate(request("GET", "/", nil, f.user))
	if err != nil || id.Clearance != "ValidUser" || id.Permissions["orders"] != "Read" || len(id.Permissions) != 1 {
		t.Errorf("user: %+v %v", id, err)
	}
}

func TestAuthHTTP(t *testing.T) {
	f := newAuthFix(t)

	// No certificate: 403 InvalidAuth JSON, what the Node.js client shows.
	w := f.do(request("GET", "/admin/certificates", nil, nil))
	if w.Code != 403 {
		t.Fatalf("no cert: %d %s", w.Code, w.Body)
	}
	e := decodeError(t, w)
	if e.Type != "InvalidAuth" || !strings.HasPrefix(e.Error, "This server requires a client certificate") || e.Message != e.Error {
		t.Errorf("no cert: %+v", e)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	// Unknown certificate: same shape.
	w = f.do(request("GET", "/admin/certificates", nil, f.stranger))
	if e := decodeError(t, w); w.Code != 403 || e.Type != "InvalidAuth" || !strings.Contains(e.Error, "unknown") {
		t.Errorf("stranger: %d %+v", w.Code, e)
	}
	// A ValidUser may not manage certificates.
	w = f.do(request("GET", "/admin/certificates", nil, f.user))
	if e := decodeError(t, w); w.Code != 403 || e.Type != "AuthorizationException" || !strings.Contains(e.Error, "ValidUser") {
		t.Errorf("user: %d %+v", w.Code, e)
	}

	// The admin lists the registry, RavenDB-shaped.
	w = f.do(request("GET", "/admin/certificates?start=0&pageSize=2147483647", nil, f.admin))
	if w.Code != 200 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	var list struct{ Results []certificateDefinition }
	json.Unmarshal(w.Body.Bytes(), &list)
	if len(list.Results) != 3 {
		t.Fatalf("list: %s", w.Body)
	}
	var adminDef *certificateDefinition
	for i, d := range list.Results {
		if d.Thumbprint == certs.Thumbprint(f.admin.Cert) {
			adminDef = &list.Results[i]
		}
	}
	if adminDef == nil || adminDef.SecurityClearance != "ClusterAdmin" || adminDef.Name != "admin" ||
		adminDef.NotAfter != f.admin.Cert.NotAfter.UTC().Format("2006-01-02T15:04:05")+".0000000Z" ||
		adminDef.Certificate != base64.StdEncoding.EncodeToString(f.admin.Cert.Raw) || adminDef.PublicKeyPinningHash == "" {
		t.Errorf("admin definition %+v", adminDef)
	}
	// One by thumbprint; an unknown thumbprint is 404.
	w = f.do(request("GET", "/admin/certificates?thumbprint="+strings.ToLower(certs.Thumbprint(f.user.Cert)), nil, f.admin))
	json.Unmarshal(w.Body.Bytes(), &list)
	if w.Code != 200 || len(list.Results) != 1 || list.Results[0].Permissions["Orders"] != "Read" {
		t.Errorf("get one: %d %s", w.Code, w.Body)
	}
	if w = f.do(request("GET", "/admin/certificates?thumbprint=00", nil, f.admin)); w.Code != 404 {
		t.Errorf("get unknown: %d", w.Code)
	}

	// whoami, for any registered caller.
	w = f.do(request("GET", "/certificates/whoami", nil, f.user))
	var me certificateDefinition
	json.Unmarshal(w.Body.Bytes(), &me)
	if w.Code != 200 || me.Name != "reader" {
		t.Errorf("whoami: %d %s", w.Code, w.Body)
	}

	// PUT registers a certificate of our CA: 201 with no body.
	put := func(caller *certs.Pair, body any) *httptest.ResponseRecorder {
		raw, _ := json.Marshal(body)
		return f.do(request("PUT", "/admin/certificates", raw, caller))
	}
	der := base64.StdEncoding.EncodeToString(f.stranger.Cert.Raw)
	w = put(f.admin, map[string]any{"Name": "stranger", "Certificate": der, "SecurityClearance": "ValidUser", "Permissions": map[string]string{"Orders": "ReadWrite"}})
	if w.Code != 201 || w.Body.Len() != 0 {
		t.Fatalf("put: %d %q", w.Code, w.Body)
	}
	id, err := f.auth.Authenticate(request("GET", "/", nil, f.stranger))
	if err != nil || id.Permissions["orders"] != "ReadWrite" {
		t.Fatalf("after put: %+v %v", id, err)
	}
	// PEM works too; a certificate of another CA, a bad clearance or
	// permission, junk, and a non-admin caller are refused.
	for name, c := range map[string]struct {
		caller *certs.Pair
		body   any
		code   int
		says   string
	}{
		"foreign CA": {f.admin, map[string]any{"Name": "x", "Certificate": base64.StdEncoding.EncodeToString(f.foreign.Cert.Raw)}, 400, "not issued by this server's certificate authority"},
		"clearance":  {f.admin, map[string]any{"Name": "x", "Certificate": der, "SecurityClearance": "ClusterNode"}, 400, "Use ClusterAdmin, Operator or ValidUser"},
		"permission": {f.admin, map[string]any{"Name": "x", "Certificate": der, "Permissions": map[string]string{"db": "Write"}}, 400, "Use Admin, ReadWrite or Read"},
		"junk":       {f.admin, map[string]any{"Name": "x", "Certificate": "AAAA"}, 400, "cannot be read"},
		"no name":    {f.admin, map[string]any{"Certificate": der}, 400, "no Name"},
		"not json":   {f.admin, "[", 400, "not a certificate definition"},
		"user":       {f.user, map[string]any{"Name": "x", "Certificate": der}, 403, "ValidUser"},
	} {
		w := put(c.caller, c.body)
		if e := decodeError(t, w); w.Code != c.code || !strings.Contains(e.Error, c.says) {
			t.Errorf("%s: %d %+v", name, w.Code, e)
		}
	}
	w = put(f.admin, map[string]any{"Name": "stranger-pem", "Certificate": string(f.stranger.CertPEM()), "SecurityClearance": "operator"})
	if w.Code != 201 {
		t.Errorf("put PEM: %d %s", w.Code, w.Body)
	}
	if id, _ := f.auth.Authenticate(request("GET", "/", nil, f.stranger)); id == nil || id.Clearance != "Operator" || id.Name != "stranger-pem" {
		t.Errorf("after PEM put: %+v", id)
	}
	// An Operator may not manage certificates either.
	if w := f.do(request("GET", "/admin/certificates", nil, f.stranger)); w.Code != 403 {
		t.Errorf("operator list: %d", w.Code)
	}

	// DELETE: 204; the certificate is then unknown. Deleting one's own
	// certificate, or without a thumbprint, is refused.
	w = f.do(request("DELETE", "/admin/certificates?thumbprint="+certs.Thumbprint(f.stranger.Cert), nil, f.admin))
	if w.Code != 204 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, err := f.auth.Authenticate(request("GET", "/", nil, f.stranger)); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("after delete: %v", err)
	}
	if w := f.do(request("DELETE", "/admin/certificates?thumbprint="+certs.Thumbprint(f.stranger.Cert), nil, f.admin)); w.Code != 204 {
		t.Errorf("delete again: %d", w.Code)
	}
	if w := f.do(request("DELETE", "/admin/certificates?thumbprint="+certs.Thumbprint(f.admin.Cert), nil, f.admin)); w.Code != 400 || !strings.Contains(decodeError(t, w).Error, "the one this request uses") {
		t.Errorf("delete self: %d %s", w.Code, w.Body)
	}
	if w := f.do(request("DELETE", "/admin/certificates", nil, f.admin)); w.Code != 400 {
		t.Errorf("delete without thumbprint: %d", w.Code)
	}
	if w := f.do(request("DELETE", "/admin/certificates?thumbprint="+certs.Thumbprint(f.user.Cert), nil, f.user)); w.Code != 403 {
		t.Errorf("delete by user: %d", w.Code)
	}

	// The registry file has the changes.
	reg, err := certs.OpenRegistry(f.set.Files.RegistryFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(certs.Thumbprint(f.stranger.Cert)); ok || len(reg.List()) != 3 {
		t.Errorf("registry file: %+v", reg.List())
	}
}

// TestAuthOverTLS runs the real handshake: TLS only requests a certificate,
// so a client without one still gets the readable 403.
func TestAuthOverTLS(t *testing.T) {
	f := newAuthFix(t)
	ts := httptest.NewUnstartedServer(f.srv.Handler())
	roots := x509.NewCertPool()
	roots.AddCert(f.set.CA.Cert)
	ts.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{f.set.Server.Cert.Raw}, PrivateKey: f.set.Server.Key, Leaf: f.set.Server.Cert}},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	ts.StartTLS()
	defer ts.Close()
	url := strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)

	client := func(p *certs.Pair) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if p != nil {
			cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Key}}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	get := func(c *http.Client, path string) (int, string) {
		t.Helper()
		resp, err := c.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(client(nil), "/admin/certificates"); code != 403 || !strings.Contains(body, `"Type":"InvalidAuth"`) || !strings.Contains(body, "none was provided") {
		t.Errorf("no cert: %d %s", code, body)
	}
	if code, body := get(client(f.foreign), "/admin/certificates"); code != 403 || !strings.Contains(body, "not issued by this server") {
		t.Errorf("foreign: %d %s", code, body)
	}
	if code, body := get(client(f.admin), "/admin/certificates"); code != 200 || !strings.Contains(body, `"Results"`) {
		t.Errorf("admin: %d %s", code, body)
	}
}
