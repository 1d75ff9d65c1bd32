package certs

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// katCert was made with `openssl req -x509`; katThumbprint is what
// `openssl x509 -noout -fingerprint -sha1` printed for it, colons removed.
const katCert = `-----BEGIN CERTIFICATE-----
MIIDIzCCAgugAwIBAgIUe8F6DDshT3dn6Dvfft3xLAy0XKEwDQYJKoZIhvcNAQEL
BQAwITEfMB0GA1UEAwwWbWFncGllIHRodW1icHJpbnQgdGVzdDAeFw0yNjEyMDMx
ODE3NTBaFw0zNjExMzAxODE3NTBaMCExHzAdBgNVBAMMFm1hZ3BpZSB0aHVtYnBy
aW50IHRlc3QwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCaVMdieCV1
dRlA9G1P6aDCsJfRyuHKKmoG0XyGyElVBcDvu3AYjLteB46L8gSGU+00NqgbXCEp
+xBsu9+LZwloit2/ZQuNoZnY+oxeFNvBo6QU9TcvDNpNC3lyYwHrCJM08aW7NmFE
kjg8dVJ0xn6qrY1Y1VH6s9MX+m0UCx1IwYEvtbNML75F7rMypzVyhdh2E89Z6M0/
LlfKiDO1Qfd4MlXMBPNFaoq5ehgHB+WkWBcWJemqGrfWC64ipRWl5PaR62767aEy
+xlotUFLMb02gyrw0D3hkbDuYa736jXohBvH6W3LKdMpneLWaTN+Lni5Oko14/+0
mSjl4aGuUsDTAgMBAAGjUzBRMB0GA1UdDgQWBBQUK9y62mebIlNaO0k16NSZj3+h
JTAfBgNVHSMEGDAWgBQUK9y62mebIlNaO0k16NSZj3+hJTAPBgNVHRMBAf8EBTAD
AQH/MA0GCSqGSIb3DQEBCwUAA4IBAQBgYqhPkjduxNkqULtCz8oX6xsla8iyrdu/
0nWAsExdfugdUfKsKEKj1SITTtmzN1u88UJiwg+cW/HnGoDUaUhk02xHVKgT6IFb
N6JeYcC2wixq8+eUbHRVA+cTXLTwo4wDD0gPUg/lyQDdzrVrPaD+f8U9lHkhvT2M
f5L2Lkrkog+dDMhiQrme3+wjZpAF2/ek4pBkkAS7fWF+tbeU1QYMzsY3avMj9jtx
pWW2/2XOC3nNorJukG+S4Mh6Rvpbz8FEvU/2F0QuqTn1Z0crN45awCEIyuHbN9oD
vm+uzLGs/Hm5CO3E+8ukSuEKH/znqABMRCf1DfvLTikWWJ07EmKa
-----END CERTIFICATE-----
`

const katThumbprint = "0EF9423831A9B1FE30559E9A9A6F42C8DBDC2BAF"

func TestThumbprintKnownAnswer(t *testing.T) {
	c, err := ParseCertPEM([]byte(katCert))
	if err != nil {
		t.Fatal(err)
	}
	if got := Thumbprint(c); got != katThumbprint {
		t.Fatalf("Thumbprint = %s, want %s", got, katThumbprint)
	}
}

// TestThumbprintMatchesOpenSSL compares with the openssl command on a
// certificate magpie made.
func TestThumbprintMatchesOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not found")
		}
		t.Skip("openssl not found")
	}
	s := ensureT(t, t.TempDir(), nil)
	out, err := exec.Command(bin, "x509", "-noout", "-fingerprint", "-sha1", "-in", s.Files.Admin).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	_, fp, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		t.Fatalf("openssl printed %q", out)
	}
	if want := strings.ReplaceAll(fp, ":", ""); Thumbprint(s.Admin) != want {
		t.Fatalf("Thumbprint = %s, openssl says %s", Thumbprint(s.Admin), want)
	}
}

func ensureT(t *testing.T, dir string, hosts []string) *Set {
	t.Helper()
	s, err := EnsureServer(filepath.Join(dir, "certs"), hosts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// pemTypes lists the PEM block types in a file.
func pemTypes(t *testing.T, p string) []string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		types = append(types, b.Type)
	}
	return types
}

func TestEnsureServerFirstStart(t *testing.T) {
	s := ensureT(t, t.TempDir(), []string{"db.example.com", "10.1.2.3", "DB2.Example.com."})
	f := s.Files

	for p, want := range map[string]os.FileMode{
		f.CA: 0o644, f.CAKey: 0o600, f.Server: 0o644, f.ServerKey: 0o600,
		f.Admin: 0o644, f.AdminKey: 0o600, f.AdminPFX: 0o600, f.RegistryFile: 0o600,
	} {
		if got := mode(t, p); got != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(p), got, want)
		}
	}
	if got := mode(t, f.Dir); got != 0o700 {
		t.Errorf("certs dir mode %o, want 700", got)
	}
	if len(s.Created) != 7 {
		t.Errorf("created %v", s.Created)
	}

	// Keys are PKCS#1 RSA PEM, nothing else.
	for _, p := range []string{f.CAKey, f.ServerKey, f.AdminKey} {
		if got := pemTypes(t, p); len(got) != 1 || got[0] != "RSA PRIVATE KEY" {
			t.Errorf("%s: PEM blocks %v, want one RSA PRIVATE KEY", filepath.Base(p), got)
		}
		raw, _ := os.ReadFile(p)
		b, _ := pem.Decode(raw)
		k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		if err != nil {
			t.Errorf("%s: not PKCS#1: %v", filepath.Base(p), err)
		} else if k.N.BitLen() != KeyBits {
			t.Errorf("%s: %d bits", filepath.Base(p), k.N.BitLen())
		}
	}
	for _, p := range []string{f.CA, f.Server, f.Admin} {
		if got := pemTypes(t, p); len(got) != 1 || got[0] != "CERTIFICATE" {
			t.Errorf("%s: PEM blocks %v, want one CERTIFICATE", filepath.Base(p), got)
		}
	}

	// The CA: 10 years.
	if !s.CA.Cert.IsCA || s.CA.Cert.NotAfter.Sub(s.CA.Cert.NotBefore) < CAValidity {
		t.Errorf("CA: IsCA %v, valid %v", s.CA.Cert.IsCA, s.CA.Cert.NotAfter.Sub(s.CA.Cert.NotBefore))
	}

	// The server certificate covers the defaults and the extra names, and
	// chains to the CA for each of them.
	roots := x509.NewCertPool()
	roots.AddCert(s.CA.Cert)
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "db.example.com", "10.1.2.3", "db2.example.com"} {
		if _, err := s.Server.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err != nil {
			t.Errorf("server certificate for %s: %v", h, err)
		}
	}
	if _, err := s.Server.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example.com"}); err == nil {
		t.Error("server certificate covers other.example.com")
	}
	wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.1.2.3")}
	if len(s.Server.Cert.IPAddresses) != len(wantIPs) {
		t.Errorf("IP SANs %v", s.Server.Cert.IPAddresses)
	}
	if strings.Join(s.Server.Cert.DNSNames, ",") != "localhost,db.example.com,db2.example.com" {
		t.Errorf("DNS SANs %v", s.Server.Cert.DNSNames)
	}

	// The admin certificate is a client certificate of our CA, registered
	// as ClusterAdmin.
	if _, err := s.Admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate: %v", err)
	}
	e, ok := s.Registry.Get(Thumbprint(s.Admin))
	if !ok || e.Clearance != ClusterAdmin || e.Name != AdminName || !e.NotAfter.Equal(s.Admin.NotAfter) {
		t.Errorf("admin registry entry %+v, %v", e, ok)
	}
	reg, err := OpenRegistry(f.RegistryFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(Thumbprint(s.Admin)); !ok {
		t.Error("admin not in the registry file")
	}

	// admin.pfx opens with an empty password and holds the admin pair and
	// the CA.
	pfx, err := os.ReadFile(f.AdminPFX)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, chain, err := pkcs12.DecodeChain(pfx, "")
	if err != nil {
		t.Fatalf("admin.pfx: %v", err)
	}
	admin, err := LoadPair(f.Admin, f.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(s.Admin) || !key.(*rsa.PrivateKey).Equal(admin.Key) || len(chain) != 1 || !chain[0].Equal(s.CA.Cert) {
		t.Error("admin.pfx does not hold the admin pair and the CA")
	}
	// Modern encoding: AES (PBES2), not RC2 or 3DES.
	if bytes.Contains(pfx, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x06}) {
		t.Error("admin.pfx uses pbeWithSHAAnd40BitRC2-CBC")
	}
	if !bytes.Contains(pfx, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}) {
		t.Error("admin.pfx does not use PBES2")
	}
}

func TestEnsureServerReuses(t *testing.T) {
	dir := t.TempDir()
	first := ensureT(t, dir, []string{"db.example.com"})
	before := snapshot(t, first.Files.Dir)

	again := ensureT(t, dir, []string{"db.example.com"})
	if len(again.Created) != 0 {
		t.Errorf("second start created %v", again.Created)
	}
	if !again.CA.Cert.Equal(first.CA.Cert) || !again.Server.Cert.Equal(first.Server.Cert) || !again.Admin.Equal(first.Admin) {
		t.Error("second start did not reuse the certificates")
	}
	// Fewer host names are fine too.
	ensureT(t, dir, nil)
	if after := snapshot(t, first.Files.Dir); !equalMaps(before, after) {
		t.Error("files changed on later starts")
	}

	// A host name the certificate does not cover is reported, and nothing
	// is overwritten.
	_, err := EnsureServer(first.Files.Dir, []string{"new.example.com"})
	if err == nil || !strings.Contains(err.Error(), "does not cover new.example.com") || !strings.Contains(err.Error(), "Remove") {
		t.Fatalf("new host name: %v", err)
	}
	if after := snapshot(t, first.Files.Dir); !equalMaps(before, after) {
		t.Error("files changed after a refused start")
	}

	// Removing the server pair issues a new one from the same CA; the admin
	// certificate stays.
	os.Remove(first.Files.Server)
	os.Remove(first.Files.ServerKey)
	s := ensureT(t, dir, []string{"new.example.com"})
	if !s.CA.Cert.Equal(first.CA.Cert) || !s.Admin.Equal(first.Admin) || s.Server.Cert.Equal(first.Server.Cert) {
		t.Error("re-issue changed the CA or admin, or kept the server certificate")
	}
	if s.Server.Cert.VerifyHostname("new.example.com") != nil {
		t.Error("re-issued certificate does not cover new.example.com")
	}

	// A lost admin.pfx is written again from the pair.
	os.Remove(first.Files.AdminPFX)
	s = ensureT(t, dir, nil)
	if len(s.Created) != 1 || s.Created[0] != first.Files.AdminPFX {
		t.Errorf("created %v", s.Created)
	}
}

func TestEnsureServerInconsistent(t *testing.T) {
	dir := t.TempDir()
	s := ensureT(t, dir, nil)
	f := s.Files

	os.Remove(f.ServerKey)
	if _, err := EnsureServer(f.Dir, nil); err == nil || !strings.Contains(err.Error(), "server-key.pem does not") {
		t.Errorf("missing server key: %v", err)
	}

	os.Rename(f.CA, f.CA+".away")
	if _, err := EnsureServer(f.Dir, nil); err == nil || !strings.Contains(err.Error(), "ca.pem does not") {
		t.Errorf("missing CA cert: %v", err)
	}
	os.Rename(f.CAKey, f.CAKey+".away")
	if _, err := EnsureServer(f.Dir, nil); err == nil || !strings.Contains(err.Error(), "the CA that signed it") {
		t.Errorf("missing CA: %v", err)
	}
	if _, err := os.Stat(f.CA); err == nil {
		t.Error("a new CA was made next to certificates of the old one")
	}
}

func TestEnsureClientAuthSkipsServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	s, err := EnsureClientAuth(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Server != nil {
		t.Error("server pair made")
	}
	if _, err := os.Stat(s.Files.Server); err == nil {
		t.Error("server.pem written")
	}
	if _, ok := s.Registry.Get(Thumbprint(s.Admin)); !ok {
		t.Error("admin not registered")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := e.Info()
		out[e.Name()] = fi.Mode().String() + fi.ModTime().String() + string(raw)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestWriteNewNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.pem")
	if err := WriteNew(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, p); got != 0o600 {
		t.Errorf("mode %o", got)
	}
	err := WriteNew(p, []byte("two"), 0o600)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second write: %v", err)
	}
	if raw, _ := os.ReadFile(p); string(raw) != "one" {
		t.Errorf("file now holds %q", raw)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	// A dangling symlink counts as existing: nothing is written through it.
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link.pem")
	os.Symlink(target, link)
	if err := WriteNew(link, []byte("x"), 0o600); err == nil {
		t.Error("wrote through a symlink")
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("symlink target created")
	}
}

func TestIssue(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Issue(ca, "alice", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cert.Subject.CommonName != "alice" {
		t.Errorf("CN %q", c.Cert.Subject.CommonName)
	}
	if d := time.Until(c.Cert.NotAfter); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("valid for %v", d)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate is valid for servers")
	}
	// Never past the CA.
	long, err := Issue(ca, "bob", 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if long.Cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Error("client certificate outlives its CA")
	}
	if _, err := Issue(ca, " ", time.Hour); err == nil {
		t.Error("empty name accepted")
	}
	if Thumbprint(c.Cert) == Thumbprint(long.Cert) || len(Thumbprint(c.Cert)) != 40 || strings.ToUpper(Thumbprint(c.Cert)) != Thumbprint(c.Cert) {
		t.Error("thumbprints")
	}
}

func TestSplitHosts(t *testing.T) {
	if _, _, err := SplitHosts([]string{"bad host"}); err == nil {
		t.Error("a name with a space accepted")
	}
	if _, _, err := SplitHosts([]string{"a_b.example"}); err == nil {
		t.Error("underscore accepted")
	}
	dns, ips, err := SplitHosts([]string{"[fe80::1]", "*.Example.org", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dns, ",") != "localhost,*.example.org" || len(ips) != 3 {
		t.Errorf("dns %v ips %v", dns, ips)
	}
}

func TestParseClientCertificate(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Issue(ca, "carol", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := PFX(c, ca.Cert, "")
	if err != nil {
		t.Fatal(err)
	}
	pfxPw, err := pkcs12.Modern.Encode(c.Key, c.Cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][2]string{
		"base64 DER":  {base64.StdEncoding.EncodeToString(c.Cert.Raw), ""},
		"PEM":         {string(c.CertPEM()), ""},
		"base64 PEM":  {base64.StdEncoding.EncodeToString(c.CertPEM()), ""},
		"PFX":         {base64.StdEncoding.EncodeToString(pfx), ""},
		"PFX with pw": {base64.StdEncoding.EncodeToString(pfxPw), "pw"},
	} {
		got, err := ParseClientCertificate(in[0], in[1])
		if err != nil || !got.Equal(c.Cert) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string]string{"empty": "", "junk": "!!!", "base64 junk": "aGVsbG8=", "wrong pw": base64.StdEncoding.EncodeToString(pfxPw)} {
		if _, err := ParseClientCertificate(in, ""); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.json")
	r, err := OpenRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.List()) != 0 {
		t.Fatal("new registry not empty")
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("opening wrote the file")
	}
	ca, _ := NewCA("test CA")
	c, _ := Issue(ca, "dave", time.Hour)
	e := EntryFor(c.Cert, "dave", ValidUser, map[string]string{"Orders": ReadWrite})
	if err := r.Put(e); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("registry mode %o", got)
	}
	for _, bad := range []Entry{
		EntryFor(c.Cert, "dave", "Root", nil),
		EntryFor(c.Cert, "dave", ValidUser, map[string]string{"x": "Write"}),
		{Name: "x", Clearance: ValidUser, Certificate: "nope"},
	} {
		if err := r.Put(bad); err == nil {
			t.Errorf("bad entry %+v accepted", bad)
		}
	}
	r2, err := OpenRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := r2.Get(strings.ToLower(Thumbprint(c.Cert)))
	if !ok || got.Name != "dave" || got.Permissions["Orders"] != ReadWrite || got.Clearance != ValidUser {
		t.Fatalf("reloaded %+v %v", got, ok)
	}
	if l := r2.List(); len(l) != 1 || l[0].Thumbprint != Thumbprint(c.Cert) {
		t.Errorf("list %+v", l)
	}
	if ok, err := r2.Delete(Thumbprint(c.Cert)); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, _ := r2.Delete(Thumbprint(c.Cert)); ok {
		t.Error("deleted twice")
	}
	r3, _ := OpenRegistry(path)
	if len(r3.List()) != 0 {
		t.Error("delete not saved")
	}

	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := OpenRegistry(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged registry: %v", err)
	}
}
