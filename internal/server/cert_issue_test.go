package server

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/certs"
	"software.sslmate.com/src/go-pkcs12"
)

func TestCreateCertificate(t *testing.T) {
	f := newAuthFix(t)
	post := func(body string, cert *certs.Pair) *http.Response {
		return f.do(request("POST", "/admin/certificates", []byte(body), cert)).Result()
	}

	// Without the CA's key the server cannot issue.
	if w := f.do(request("POST", "/admin/certificates", []byte(`{"Name":"x"}`), f.admin)); w.Code != 400 ||
		decodeError(t, w).Message != "This server has no certificate authority key to issue client certificates with. Issue the certificate elsewhere and register it with PUT /admin/certificates." {
		t.Fatalf("no issuer: %d %s", w.Code, w.Body)
	}
	f.auth.IssueWith(f.set.CA)

	for _, c := range []struct {
		name, body string
		cert       *certs.Pair
		code       int
		msg        string
	}{
		{"not admin", `{"Name":"x","SecurityClearance":"ClusterAdmin"}`, f.user, 403, ""},
		{"no certificate", `{"Name":"x"}`, nil, 403, ""},
		{"bad name", `{"Name":"../x"}`, f.admin, 400, `Certificate name "../x" is not valid. Use up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit.`},
		{"bad clearance", `{"Name":"x","SecurityClearance":"Root"}`, f.admin, 400, `SecurityClearance "Root" is not supported by magpie. Use ClusterAdmin, Operator or ValidUser.`},
		{"bad permission", `{"Name":"x","Permissions":{"Orders":"Write"}}`, f.admin, 400, `Permission "Write" for database "Orders" is not valid. Use Admin, ReadWrite or Read for a named database.`},
		{"permissions of an admin", `{"Name":"x","SecurityClearance":"Operator","Permissions":{"Orders":"Read"}}`, f.admin, 400, "Permissions grant access to single databases, and a Operator certificate already reaches every database. Leave Permissions out, or use SecurityClearance ValidUser."},
		{"past", `{"Name":"x","NotAfter":"2001-01-01T00:00:00Z"}`, f.admin, 400, "NotAfter 2001-01-01T00:00:00Z is in the past. Give a date in the future."},
		{"bad date", `{"Name":"x","NotAfter":"soon"}`, f.admin, 400, `NotAfter "soon" is not a date. Give it as RFC 3339, such as 2027-12-31T00:00:00Z.`},
		{"not json", `{"Name":`, f.admin, 400, ""},
	} {
		w := f.do(request("POST", "/admin/certificates", []byte(c.body), c.cert))
		if w.Code != c.code || c.msg != "" && decodeError(t, w).Message != c.msg {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body)
		}
	}
	if n := len(f.set.Registry.List()); n != 3 {
		t.Fatalf("refused requests registered certificates: %d in the registry", n)
	}

	resp := post(`{"Name":"app","SecurityClearance":"ValidUser","Permissions":{"Orders":"ReadWrite"},"Password":"pw","NotAfter":"`+time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)+`"}`, f.admin)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("issue: %d %s", resp.StatusCode, raw)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		files[zf.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if len(files) != 3 || files["app.crt"] == nil || files["app.key"] == nil || files["app.pfx"] == nil {
		t.Fatalf("archive holds %v", len(files))
	}
	cert, err := certs.ParseCertPEM(files["app.crt"])
	if err != nil {
		t.Fatal(err)
	}
	if _, c, _, err := pkcs12.DecodeChain(files["app.pfx"], "pw"); err != nil || !c.Equal(cert) {
		t.Fatalf("pfx with its password: %v", err)
	}
	if d := time.Until(cert.NotAfter); d < 47*time.Hour || d > 49*time.Hour {
		t.Fatalf("valid for %v, want 48h", d)
	}
	e, ok := f.set.Registry.Get(certs.Thumbprint(cert))
	if !ok || e.Name != "app" || e.Clearance != certs.ValidUser || e.Permissions["Orders"] != certs.ReadWrite {
		t.Fatalf("registry entry %+v %v", e, ok)
	}
	// The new certificate authenticates at once.
	pair := &certs.Pair{Cert: cert}
	if w := f.do(request("GET", "/certificates/whoami", nil, pair)); w.Code != 200 {
		t.Fatalf("whoami with the new certificate: %d %s", w.Code, w.Body)
	}
}
