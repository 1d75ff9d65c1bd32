package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// fakeAuth identifies callers by the X-Test-Who header, for permission
// tests without TLS.
type fakeAuth map[string]*Identity

func (f fakeAuth) Authenticate(r *http.Request) (*Identity, error) {
	id, ok := f[r.Header.Get("X-Test-Who")]
	if !ok {
		return nil, errors.New("This server requires a client certificate, but none was provided.")
	}
	return id, nil
}

type testServer struct {
	t    *testing.T
	srv  *Server
	http *httptest.Server
	data *store.DataDir
}

func openTestDataDir(t *testing.T) *store.DataDir {
	t.Helper()
	dir := t.TempDir()
	data, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), MasterKeyFile: filepath.Join(dir, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	return data
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return newTestServerOn(t, cfg, openTestDataDir(t))
}

func newTestServerOn(t *testing.T, cfg Config, data *store.DataDir) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := New(cfg, data)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &testServer{t: t, srv: srv, http: hs, data: data}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("answer (status %d) is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return v
}

// do sends a request; body may be nil, a string, []byte or any value to
// encode as JSON. headers are name/value pairs.
func (ts *testServer) do(method, path string, body any, headers ...string) *response {
	ts.t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		contentType = "application/json"
	case []byte:
		rd = bytes.NewReader(b)
		contentType = "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, ts.http.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: raw}
}

// expect checks the status, and for errors the RavenDB error shape.
func (ts *testServer) expect(r *response, status int) map[string]any {
	ts.t.Helper()
	if r.status != status {
		ts.t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	v := r.json(ts.t)
	if status >= 400 {
		typ, _ := v["Type"].(string)
		msg, _ := v["Error"].(string)
		if typ == "" || msg == "" || v["Message"] != msg {
			ts.t.Fatalf("error answer lacks Type/Error/Message: %s", r.body)
		}
	}
	return v
}

func (ts *testServer) createDB(name string, encrypted bool) {
	ts.t.Helper()
	ts.expect(ts.do("PUT", "/admin/databases?name="+name+"&replicationFactor=1&raft-request-id=x", map[string]any{"DatabaseName": name, "Encrypted": encrypted}, "ETag", `"undefined"`), http.StatusCreated)
}

func errorText(v map[string]any) string { s, _ := v["Error"].(string); return s }

func TestTopologyShapes(t *testing.T) {
	ts := newTestServer(t, Config{})
	v := ts.expect(ts.do("GET", "/cluster/topology?first-topology-update", nil, "Cluster-Topology-Etag", `"0"`), 200)
	if _, ok := v["Status"].(map[string]any); !ok {
		t.Fatalf("Status is not an object: %v", v)
	}
	top := v["Topology"].(map[string]any)
	members := top["Members"].(map[string]any)
	if members["A"] != ts.http.URL {
		t.Fatalf("Members = %v, want A -> %s", members, ts.http.URL)
	}
	if _, ok := top["Watchers"].(map[string]any); !ok {
		t.Fatalf("Watchers is not an object: %v", top)
	}
	if v["NodeTag"] != "A" || v["Leader"] != "A" {
		t.Fatalf("NodeTag/Leader: %v", v)
	}

	v = ts.expect(ts.do("GET", "/cluster/node-info", nil), 200)
	if v["NodeTag"] != "A" || v["ServerRole"] != "Member" {
		t.Fatalf("node-info: %v", v)
	}

	r := ts.do("GET", "/topology?name=nope&first-topology-update&applicationIdentifier=x", nil, "Topology-Etag", `"0"`)
	ts.expect(r, http.StatusServiceUnavailable)
	if r.header.Get("Database-Missing") != "nope" {
		t.Fatalf("Database-Missing = %q", r.header.Get("Database-Missing"))
	}

	ts.createDB("Shop", false)
	v = ts.expect(ts.do("GET", "/topology?name=shop", nil), 200)
	nodes := v["Nodes"].([]any)
	node := nodes[0].(map[string]any)
	if node["Url"] != ts.http.URL || node["ClusterTag"] != "A" || node["ServerRole"] != "Member" || node["Database"] != "Shop" {
		t.Fatalf("node: %v", node)
	}
	if v["Etag"] != float64(1) {
		t.Fatalf("Etag: %v", v["Etag"])
	}
	if r := ts.do("GET", "/topology", nil); r.status != 400 {
		t.Fatalf("no name: %d", r.status)
	}
}

func TestCreateListDeleteDatabases(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("alpha", false)
	ts.createDB("beta", false)

	v := ts.expect(ts.do("PUT", "/admin/databases?name=Alpha", map[string]any{"DatabaseName": "Alpha"}), http.StatusConflict)
	if !strings.Contains(v["Type"].(string), "ConcurrencyException") || !strings.Contains(v["Message"].(string), "already exists") {
		t.Fatalf("duplicate: %v", v)
	}
	ts.expect(ts.do("PUT", "/admin/databases", map[string]any{"DatabaseName": "bad/name"}), http.StatusBadRequest)
	ts.expect(ts.do("PUT", "/admin/databases", map[string]any{}), http.StatusBadRequest)
	ts.expect(ts.do("PUT", "/admin/databases?name=x", map[string]any{"DatabaseName": "y"}), http.StatusBadRequest)

	v = ts.expect(ts.do("GET", "/databases?start=undefined&pageSize=undefined&namesOnly=true", nil), 200)
	if fmt.Sprint(v["Databases"]) != "[alpha beta]" {
		t.Fatalf("names: %v", v)
	}
	v = ts.expect(ts.do("GET", "/databases?start=1&pageSize=5&namesOnly=true", nil), 200)
	if fmt.Sprint(v["Databases"]) != "[beta]" {
		t.Fatalf("paged names: %v", v)
	}
	v = ts.expect(ts.do("GET", "/databases", nil), 200)
	list := v["Databases"].([]any)
	first := list[0].(map[string]any)
	if first["Name"] != "alpha" || first["IsEncrypted"] != false || !strings.HasSuffix(first["Created"].(string), "Z") || len(first["Created"].(string)) != len("2006-01-02T15:04:05.0000000Z") {
		t.Fatalf("database info: %v", first)
	}

	// A missing name refuses the whole delete.
	v = ts.expect(ts.do("DELETE", "/admin/databases?raft-request-id=x", map[string]any{"DatabaseNames": []string{"alpha", "gamma"}, "HardDelete": true}), http.StatusBadRequest)
	if !strings.Contains(errorText(v), "gamma") {
		t.Fatalf("missing db: %v", v)
	}
	// Open alpha so that the delete must close it.
	ts.expect(ts.do("GET", "/databases/alpha/stats", nil), 200)
	v = ts.expect(ts.do("DELETE", "/admin/databases?raft-request-id=x", map[string]any{"DatabaseNames": []string{"alpha"}, "HardDelete": true}), 200)
	if _, ok := v["PendingDeletes"].([]any); !ok {
		t.Fatalf("delete result: %v", v)
	}
	v = ts.expect(ts.do("GET", "/databases?namesOnly=true", nil), 200)
	if fmt.Sprint(v["Databases"]) != "[beta]" {
		t.Fatalf("after delete: %v", v)
	}
	r := ts.do("GET", "/databases/alpha/stats", nil)
	ts.expect(r, http.StatusServiceUnavailable)
	if r.header.Get("Database-Missing") != "alpha" {
		t.Fatalf("deleted db: %v", r.header)
	}
	// The name can be used again.
	ts.createDB("alpha", false)
	v = ts.expect(ts.do("GET", "/databases/alpha/stats", nil), 200)
	if v["CountOfDocuments"] != float64(0) {
		t.Fatalf("recreated: %v", v)
	}
}

func TestEncryptedDatabaseNeedsPutKey(t *testing.T) {
	ts := newTestServer(t, Config{})
	v := ts.expect(ts.do("PUT", "/admin/databases?name=vault", map[string]any{"DatabaseName": "vault", "Encrypted": true}), http.StatusBadRequest)
	if !strings.Contains(errorText(v), "no secret key was put") {
		t.Fatalf("no key: %v", v)
	}

	r := ts.do("GET", "/admin/secrets/generate", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/base64" {
		t.Fatalf("generate: %d %v", r.status, r.header)
	}
	key, err := keys.Parse(string(r.body))
	if err != nil {
		t.Fatalf("generated key: %v", err)
	}

	// Bad keys are refused without being echoed.
	short := base64.StdEncoding.EncodeToString([]byte("sixteen bytes!!!"))
	ts.expect(ts.do("POST", "/admin/secrets?name=vault&overwrite=false", short, "Content-Type", "text/plain"), http.StatusBadRequest)
	if strings.Contains(string(ts.do("POST", "/admin/secrets?name=vault", short).body), short) {
		t.Fatal("the bad key is echoed")
	}
	ts.expect(ts.do("POST", "/admin/secrets?overwrite=false", key.Base64()), http.StatusBadRequest)

	ts.expect(ts.do("POST", "/admin/secrets?name=vault&overwrite=false", key.Base64()+"\n", "Content-Type", "text/plain"), http.StatusCreated)
	ts.expect(ts.do("POST", "/admin/secrets?name=vault&overwrite=false", key.Base64()), http.StatusConflict)
	ts.expect(ts.do("POST", "/admin/secrets?name=vault&overwrite=true", key.Base64()), http.StatusCreated)
	ts.createDB("vault", true)
	v = ts.expect(ts.do("GET", "/databases/vault/stats", nil), 200)
	if v["IsEncrypted"] != true {
		t.Fatalf("stats: %v", v)
	}
	infos, err := ts.data.Databases()
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].KeyFingerprint != key.Fingerprint() {
		t.Fatalf("the database is not encrypted with the key put: %s vs %s", infos[0].KeyFingerprint, key.Fingerprint())
	}
	// The key was used up and a secret for an existing database is refused.
	ts.expect(ts.do("POST", "/admin/secrets?name=vault", key.Base64()), http.StatusConflict)
	ts.srv.mu.Lock()
	n := len(ts.srv.secrets)
	ts.srv.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d secrets kept after create", n)
	}
}

func TestUnsecuredRefusesEncryption(t *testing.T) {
	data := openTestDataDir(t)
	secured := newTestServerOn(t, Config{}, data)
	k, _ := keys.Generate()
	secured.expect(secured.do("POST", "/admin/secrets?name=vault", k.Base64()), http.StatusCreated)
	secured.createDB("vault", true)
	secured.createDB("plain", false)
	if err := secured.srv.Close(); err != nil {
		t.Fatal(err)
	}

	ts := newTestServerOn(t, Config{Unsecured: true}, data)
	v := ts.expect(ts.do("PUT", "/admin/databases?name=v2", map[string]any{"DatabaseName": "v2", "Encrypted": true}), http.StatusBadRequest)
	if !strings.Contains(errorText(v), "--unsecured") {
		t.Fatalf("create: %v", v)
	}
	v = ts.expect(ts.do("POST", "/admin/secrets?name=v2", k.Base64()), http.StatusBadRequest)
	if !strings.Contains(errorText(v), "--unsecured") {
		t.Fatalf("secret: %v", v)
	}
	v = ts.expect(ts.do("GET", "/databases/vault/stats", nil), http.StatusBadRequest)
	if !strings.Contains(errorText(v), "--unsecured") || !strings.Contains(errorText(v), "encrypted") {
		t.Fatalf("open: %v", v)
	}
	ts.expect(ts.do("GET", "/databases/plain/stats", nil), 200)
}

func TestDocumentsCRUD(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("db", false)
	doc := `{"name":"Ada","note":"tab\there, bell\u0007","company":"companies/1","@metadata":{"@collection":"Users","Raven-Node-Type":"User"}}`
	v := ts.expect(ts.do("PUT", "/databases/db/docs?id=users/1", doc), http.StatusCreated)
	if v["Id"] != "users/1" || v["ChangeVector"] == "" {
		t.Fatalf("put: %v", v)
	}
	ts.expect(ts.do("PUT", "/databases/db/docs?id=companies/1", `{"name":"ACME","@metadata":{"@collection":"Companies"}}`), http.StatusCreated)

	v = ts.expect(ts.do("GET", "/databases/db/docs?&id=USERS%2F1", nil), 200)
	res := v["Results"].([]any)
	got := res[0].(map[string]any)
	meta := got["@metadata"].(map[string]any)
	if got["note"] != "tab\there, bell\u0007" || meta["@id"] != "users/1" || meta["@collection"] != "Users" || meta["Raven-Node-Type"] != "User" {
		t.Fatalf("load: %v", got)
	}
	if lm := meta["@last-modified"].(string); len(lm) != len(store.TimeLayout) || !strings.HasSuffix(lm, "Z") {
		t.Fatalf("@last-modified %q", lm)
	}
	if _, ok := v["Includes"].(map[string]any); !ok {
		t.Fatalf("Includes: %v", v)
	}

	// HEAD: existence and change vector.
	r := ts.do("HEAD", "/databases/db/docs?id=users/1", nil)
	if r.status != 200 || r.header.Get("ETag") != `"`+meta["@change-vector"].(string)+`"` {
		t.Fatalf("HEAD: %d %v", r.status, r.header)
	}
	if r := ts.do("HEAD", "/databases/db/docs?id=users/1", nil, "If-None-Match", r.header.Get("ETag")); r.status != 304 {
		t.Fatalf("HEAD If-None-Match: %d", r.status)
	}
	if r := ts.do("HEAD", "/databases/db/docs?id=users/404", nil); r.status != 404 {
		t.Fatalf("HEAD missing: %d", r.status)
	}

	// A single missing id: 404 without a body.
	r = ts.do("GET", "/databases/db/docs?&id=users/404", nil)
	if r.status != 404 || len(r.body) != 0 {
		t.Fatalf("missing: %d %q", r.status, r.body)
	}
	// Several: null in place.
	v = ts.expect(ts.do("GET", "/databases/db/docs?&id=users/1&id=users/404&include=company", nil), 200)
	res = v["Results"].([]any)
	if len(res) != 2 || res[1] != nil {
		t.Fatalf("results: %v", res)
	}
	inc := v["Includes"].(map[string]any)
	if c, ok := inc["companies/1"].(map[string]any); !ok || c["name"] != "ACME" {
		t.Fatalf("includes: %v", inc)
	}
	// The POST form.
	v = ts.expect(ts.do("POST", "/databases/db/docs?&loadHash=x", map[string]any{"Ids": []string{"companies/1"}}), 200)
	if len(v["Results"].([]any)) != 1 {
		t.Fatalf("post load: %v", v)
	}
	// Listing without ids.
	v = ts.expect(ts.do("GET", "/databases/db/docs?start=1&pageSize=5", nil), 200)
	if len(v["Results"].([]any)) != 1 {
		t.Fatalf("list: %v", v)
	}

	// Optimistic concurrency through If-Match.
	ts.expect(ts.do("PUT", "/databases/db/docs?id=users/1", doc, "If-Match", `"A:1-nope"`), http.StatusConflict)
	ts.expect(ts.do("DELETE", "/databases/db/docs?id=users/1", nil, "If-Match", `"A:1-nope"`), http.StatusConflict)

	v = ts.expect(ts.do("DELETE", "/databases/db/docs?id=users/1", nil), 200)
	if v["Deleted"] != true {
		t.Fatalf("delete: %v", v)
	}
	v = ts.expect(ts.do("DELETE", "/databases/db/docs?id=users/1", nil), 200)
	if v["Deleted"] != false {
		t.Fatalf("delete again: %v", v)
	}
	if r := ts.do("GET", "/databases/db/docs?id=users/1", nil); r.status != 404 {
		t.Fatalf("deleted doc: %d", r.status)
	}
	v = ts.expect(ts.do("GET", "/databases/db/stats", nil), 200)
	if v["CountOfDocuments"] != float64(1) || v["CountOfTombstones"] != float64(1) {
		t.Fatalf("stats: %v", v)
	}
}

func TestBadInput(t *testing.T) {
	ts := newTestServer(t, Config{MaxBodyBytes: 4096})
	ts.createDB("db", false)

	// Malformed JSON.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/databases/db/bulk_docs", `{"Commands":[`},
		{"PUT", "/databases/db/docs?id=a/1", `{"x":`},
		{"PUT", "/databases/db/docs?id=a/1", `[1,2]`},
		{"PUT", "/admin/databases", `{"DatabaseName":`},
		{"DELETE", "/admin/databases", `nope`},
		{"POST", "/databases/db/bulk_docs", `{"Commands":[]} trailing`},
		{"POST", "/databases/db/bulk_docs", ``},
	} {
		r := ts.do(c.method, c.path, c.body)
		if r.status != 400 {
			t.Errorf("%s %s %q: status %d, want 400: %s", c.method, c.path, c.body, r.status, r.body)
		} else {
			ts.expect(r, 400)
		}
	}

	// Over the body limit.
	big := `{"x":"` + strings.Repeat("a", 5000) + `"}`
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/databases/db/docs?id=a/1", big},
		{"POST", "/databases/db/bulk_docs", `{"Commands":[{"Id":"a/1","Type":"PUT","Document":` + big + `}]}`},
		{"PUT", "/databases/db/attachments?id=a/2&name=x", big},
	} {
		if c.path == "/databases/db/attachments?id=a/2&name=x" {
			ts.expect(ts.do("PUT", "/databases/db/docs?id=a/2", `{}`), 201)
		}
		v := ts.expect(ts.do(c.method, c.path, c.body), http.StatusRequestEntityTooLarge)
		if !strings.Contains(errorText(v), "4 KiB") {
			t.Errorf("413 message: %v", v)
		}
	}

	// Bad IDs.
	long := strings.Repeat("x", store.MaxIDBytes+1)
	for _, path := range []string{
		"/databases/db/docs?id=",
		"/databases/db/docs",
		"/databases/db/docs?id=" + long,
	} {
		ts.expect(ts.do("PUT", path, `{}`), http.StatusBadRequest)
	}
	ts.expect(ts.do("GET", "/databases/db/docs?id=&id=a", nil), http.StatusBadRequest)
	ts.expect(ts.do("GET", "/databases/db/docs?id="+long, nil), http.StatusBadRequest)
	ts.expect(ts.do("DELETE", "/databases/db/docs?id=", nil), http.StatusBadRequest)
	ts.expect(ts.do("POST", "/databases/db/bulk_docs", map[string]any{"Commands": []any{map[string]any{"Id": "", "Type": "DELETE"}}}), http.StatusBadRequest)
	// A PUT without an ID gets a GUID, as in RavenDB.
	v := ts.expect(ts.do("POST", "/databases/db/bulk_docs", map[string]any{"Commands": []any{map[string]any{"Id": nil, "Type": "PUT", "Document": map[string]any{"x": 1}}}}), http.StatusCreated)
	if id := v["Results"].([]any)[0].(map[string]any)["@id"].(string); len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Fatalf("generated ID %q", id)
	}
	ts.expect(ts.do("POST", "/databases/db/bulk_docs", map[string]any{"Commands": []any{map[string]any{"Id": long, "Type": "DELETE"}}}), http.StatusBadRequest)
	// Server-side ID generation is refused, not stored literally.
	ts.expect(ts.do("PUT", "/databases/db/docs?id=users/", `{}`), http.StatusNotImplemented)

	// Bad database names.
	ts.expect(ts.do("GET", "/databases/b@d/stats", nil), http.StatusBadRequest)
}

func TestBulkDocsJSON(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("db", false)
	batch := map[string]any{"Commands": []any{
		map[string]any{"Id": "users/1", "ChangeVector": nil, "Type": "PUT", "Document": map[string]any{"name": "Ada", "@metadata": map[string]any{"@collection": "Users", "Raven-Node-Type": "User", "@nested-object-types": map[string]any{}}}},
		map[string]any{"Id": "users/2", "ChangeVector": nil, "Type": "PUT", "Document": map[string]any{"name": "Bob", "@metadata": map[string]any{"@collection": "Users"}}},
		map[string]any{"Id": "plain/1", "ChangeVector": nil, "Type": "PUT", "Document": map[string]any{"x": 1, "@metadata": map[string]any{"Raven-Node-Type": nil}}},
		map[string]any{"Id": "users/2", "ChangeVector": nil, "Type": "DELETE"},
		map[string]any{"Id": "ghost/1", "ChangeVector": nil, "Type": "DELETE"},
	}}
	v := ts.expect(ts.do("POST", "/databases/db/bulk_docs?", batch), http.StatusCreated)
	res := v["Results"].([]any)
	if len(res) != 5 {
		t.Fatalf("results: %v", res)
	}
	put := res[0].(map[string]any)
	if put["Type"] != "PUT" || put["@id"] != "users/1" || put["@collection"] != "Users" || put["@change-vector"] == nil || len(put["@last-modified"].(string)) != len(store.TimeLayout) {
		t.Fatalf("PUT result: %v", put)
	}
	if c := res[2].(map[string]any)["@collection"]; c != "@empty" {
		t.Fatalf("no collection gives %v", c)
	}
	del := res[3].(map[string]any)
	if del["Type"] != "DELETE" || del["Id"] != "users/2" || del["Deleted"] != true {
		t.Fatalf("DELETE result: %v", del)
	}
	if res[4].(map[string]any)["Deleted"] != false {
		t.Fatalf("DELETE of a missing document: %v", res[4])
	}

	// A batch that fails its check writes nothing.
	cv := put["@change-vector"].(string)
	for _, bad := range []struct {
		status int
		cmds   []any
	}{
		{http.StatusConflict, []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "users/1", "ChangeVector": "", "Type": "PUT", "Document": map[string]any{"@metadata": map[string]any{"@collection": "Users"}}},
		}},
		{http.StatusConflict, []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "users/1", "ChangeVector": cv + "x", "Type": "DELETE"},
		}},
		{http.StatusBadRequest, []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "users/1", "Type": "PUT", "Document": map[string]any{"@metadata": map[string]any{"@collection": "Orders"}}},
		}},
		{http.StatusBadRequest, []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "users/1", "Name": "a.bin", "Type": "AttachmentPUT"},
		}},
		{http.StatusNotImplemented, []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "users/1", "Type": "PATCH", "Patch": map[string]any{}},
		}},
		{http.StatusBadRequest, []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "users/1", "Type": "PUT", "Document": "text"},
		}},
	} {
		ts.expect(ts.do("POST", "/databases/db/bulk_docs", map[string]any{"Commands": bad.cmds}), bad.status)
		if r := ts.do("GET", "/databases/db/docs?id=new/1", nil); r.status != 404 {
			t.Fatalf("a refused batch wrote new/1 (%v)", bad.cmds[1])
		}
	}
	// A matching change vector passes.
	ts.expect(ts.do("POST", "/databases/db/bulk_docs", map[string]any{"Commands": []any{
		map[string]any{"Id": "users/1", "ChangeVector": cv, "Type": "PUT", "Document": map[string]any{"name": "Ada 2", "@metadata": map[string]any{"@collection": "Users"}}},
	}}), http.StatusCreated)
	ts.expect(ts.do("POST", "/databases/db/bulk_docs", map[string]any{"Commands": []any{}}), http.StatusCreated)
}

// multipartBatch builds a bulk_docs body as undici's FormData does.
func multipartBatch(t *testing.T, commands any, attachments ...[]byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("----formdata-undici-063046295469")
	raw, _ := json.Marshal(commands)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="main"; filename="blob"`)
	h.Set("Content-Type", "application/json")
	p, _ := mw.CreatePart(h)
	p.Write(raw)
	for i, a := range attachments {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="attachment_%d"; filename="blob"`, i))
		h.Set("Content-Type", "application/octet-stream")
		p, _ := mw.CreatePart(h)
		p.Write(a)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestBulkDocsMultipartAttachments(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("db", false)
	photo := randomBytes(256 << 10)
	notes := []byte("hello")
	ct, body := multipartBatch(t, map[string]any{"Commands": []any{
		map[string]any{"Id": "users/1", "ChangeVector": nil, "Type": "PUT", "Document": map[string]any{"name": "Ada", "@metadata": map[string]any{"@collection": "Users"}}},
		map[string]any{"Id": "users/1", "Name": "photo.bin", "ChangeVector": nil, "Type": "AttachmentPUT", "ContentType": "application/octet-stream"},
		map[string]any{"Id": "users/1", "Name": "notes.txt", "ChangeVector": nil, "Type": "AttachmentPUT", "ContentType": nil},
	}}, photo, notes)
	v := ts.expect(ts.do("POST", "/databases/db/bulk_docs?", body, "Content-Type", ct), http.StatusCreated)
	res := v["Results"].([]any)
	if len(res) != 3 {
		t.Fatalf("results: %v", res)
	}
	a := res[1].(map[string]any)
	if a["Type"] != "AttachmentPUT" || a["Id"] != "users/1" || a["Name"] != "photo.bin" || a["Size"] != float64(len(photo)) ||
		a["ContentType"] != "application/octet-stream" || a["Hash"] == "" || a["ChangeVector"] == "" {
		t.Fatalf("AttachmentPUT result: %v", a)
	}
	if b := res[2].(map[string]any); b["ContentType"] != "" {
		t.Fatalf("null content type: %v", b)
	}

	// The document lists its attachments.
	v = ts.expect(ts.do("GET", "/databases/db/docs?&id=users/1", nil), 200)
	meta := v["Results"].([]any)[0].(map[string]any)["@metadata"].(map[string]any)
	if meta["@flags"] != "HasAttachments" || len(meta["@attachments"].([]any)) != 2 {
		t.Fatalf("metadata: %v", meta)
	}

	// Content and headers.
	r := ts.do("GET", "/databases/db/attachments?id=users%2F1&name=photo.bin", nil)
	if r.status != 200 || !bytes.Equal(r.body, photo) {
		t.Fatalf("attachment: %d, %d bytes", r.status, len(r.body))
	}
	if r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Attachment-Hash") != a["Hash"] ||
		r.header.Get("Attachment-Size") != fmt.Sprint(len(photo)) || !strings.HasPrefix(r.header.Get("ETag"), `"A:`) {
		t.Fatalf("attachment headers: %v", r.header)
	}
	r = ts.do("GET", "/databases/db/attachments?id=users%2F1&name=notes.txt", nil)
	if string(r.body) != "hello" || r.header.Get("Content-Type") != "" {
		t.Fatalf("notes: %q %v", r.body, r.header)
	}
	if r := ts.do("HEAD", "/databases/db/attachments?id=users%2F1&name=notes.txt", nil); r.status != 200 || r.header.Get("Attachment-Size") != "5" {
		t.Fatalf("HEAD: %d %v", r.status, r.header)
	}
	for _, q := range []string{"id=users%2F1&name=nope", "id=users%2F404&name=photo.bin"} {
		if r := ts.do("GET", "/databases/db/attachments?"+q, nil); r.status != 404 || len(r.body) != 0 {
			t.Fatalf("%s: %d %q", q, r.status, r.body)
		}
	}
	v = ts.expect(ts.do("GET", "/databases/db/stats", nil), 200)
	if v["CountOfDocuments"] != float64(1) || v["CountOfAttachments"] != float64(2) {
		t.Fatalf("stats: %v", v)
	}

	// PUT /attachments replaces one.
	v = ts.expect(ts.do("PUT", "/databases/db/attachments?id=users%2F1&name=notes.txt&contentType=text%2Fplain", "bye"), http.StatusCreated)
	if v["Size"] != float64(3) || v["ContentType"] != "text/plain" {
		t.Fatalf("PUT attachment: %v", v)
	}
	r = ts.do("GET", "/databases/db/attachments?id=users%2F1&name=notes.txt", nil)
	if string(r.body) != "bye" || r.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("after PUT: %q %v", r.body, r.header)
	}
	ts.expect(ts.do("PUT", "/databases/db/attachments?id=users%2F404&name=a", "x"), http.StatusBadRequest)

	// Part counts that do not match the commands write nothing.
	for _, parts := range [][][]byte{{}, {notes, notes}} {
		ct, body := multipartBatch(t, map[string]any{"Commands": []any{
			map[string]any{"Id": "new/1", "Type": "PUT", "Document": map[string]any{}},
			map[string]any{"Id": "new/1", "Name": "n", "Type": "AttachmentPUT"},
		}}, parts...)
		ts.expect(ts.do("POST", "/databases/db/bulk_docs", body, "Content-Type", ct), http.StatusBadRequest)
		if r := ts.do("GET", "/databases/db/docs?id=new/1", nil); r.status != 404 {
			t.Fatalf("a refused batch with %d parts wrote new/1", len(parts))
		}
	}
	// An attachment on a document deleted earlier in the batch.
	ct, body = multipartBatch(t, map[string]any{"Commands": []any{
		map[string]any{"Id": "users/1", "Type": "DELETE"},
		map[string]any{"Id": "users/1", "Name": "n", "Type": "AttachmentPUT"},
	}}, notes)
	ts.expect(ts.do("POST", "/databases/db/bulk_docs", body, "Content-Type", ct), http.StatusBadRequest)
	ts.expect(ts.do("GET", "/databases/db/docs?id=users/1", nil), 200)
}

func TestBulkDocsStreamsLargeAttachments(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("db", false)
	big := randomBytes(bulkBufferBytes + 1<<20)
	small := []byte("after the big one")
	ct, body := multipartBatch(t, map[string]any{"Commands": []any{
		map[string]any{"Id": "a/1", "Type": "PUT", "Document": map[string]any{}},
		map[string]any{"Id": "a/1", "Name": "big", "Type": "AttachmentPUT"},
		map[string]any{"Id": "a/1", "Name": "small", "Type": "AttachmentPUT"},
	}}, big, small)
	ts.expect(ts.do("POST", "/databases/db/bulk_docs", body, "Content-Type", ct), http.StatusCreated)
	if r := ts.do("GET", "/databases/db/attachments?id=a/1&name=big", nil); !bytes.Equal(r.body, big) {
		t.Fatalf("big attachment differs (%d bytes)", len(r.body))
	}
	if r := ts.do("GET", "/databases/db/attachments?id=a/1&name=small", nil); !bytes.Equal(r.body, small) {
		t.Fatalf("small attachment: %q", r.body)
	}
}

func TestPermissions(t *testing.T) {
	auth := fakeAuth{
		"admin":    {Name: "admin", Clearance: "ClusterAdmin"},
		"reader":   {Name: "reader", Clearance: "ValidUser", Permissions: map[string]string{"db": "Read"}},
		"writer":   {Name: "writer", Clearance: "ValidUser", Permissions: map[string]string{"db": "ReadWrite"}},
		"stranger": {Name: "stranger", Clearance: "ValidUser", Permissions: map[string]string{"other": "Admin"}},
		"operator": {Name: "operator", Clearance: "Operator"},
	}
	ts := newTestServer(t, Config{Auth: auth})
	as := func(who string) []string { return []string{"X-Test-Who", who} }
	ts.expect(ts.do("PUT", "/admin/databases", map[string]any{"DatabaseName": "db"}, as("operator")...), http.StatusCreated)
	ts.expect(ts.do("PUT", "/admin/databases", map[string]any{"DatabaseName": "other"}, as("admin")...), http.StatusCreated)

	// No certificate at all.
	for _, path := range []string{"/cluster/topology", "/databases/db/stats", "/no/such/route"} {
		v := ts.expect(ts.do("GET", path, nil), http.StatusForbidden)
		if v["Type"] != "InvalidAuth" {
			t.Fatalf("%s: %v", path, v)
		}
	}

	doc := `{"@metadata":{"@collection":"Users"}}`
	ts.expect(ts.do("PUT", "/databases/db/docs?id=u/1", doc, as("writer")...), http.StatusCreated)
	ts.expect(ts.do("GET", "/databases/db/docs?id=u/1", nil, as("reader")...), http.StatusOK)
	ts.expect(ts.do("GET", "/topology?name=db", nil, as("reader")...), http.StatusOK)

	// Read access writing.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/databases/db/docs?id=u/2", doc},
		{"DELETE", "/databases/db/docs?id=u/1", ""},
		{"POST", "/databases/db/bulk_docs", `{"Commands":[]}`},
		{"PUT", "/databases/db/attachments?id=u/1&name=a", "x"},
		{"POST", "/databases/db/smuggler/import", "x"},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		ts.expect(ts.do(c.method, c.path, body, as("reader")...), http.StatusForbidden)
	}
	// No access to the database at all, even to learn whether it exists.
	for _, path := range []string{"/databases/db/stats", "/databases/db/docs?id=u/1", "/topology?name=db", "/databases/nope/stats"} {
		ts.expect(ts.do("GET", path, nil, as("stranger")...), http.StatusForbidden)
	}
	// Server administration needs Operator.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/admin/databases", `{"DatabaseName":"x"}`},
		{"DELETE", "/admin/databases", `{"DatabaseNames":["db"]}`},
		{"GET", "/admin/secrets/generate", ""},
		{"POST", "/admin/secrets?name=x", "AAAA"},
		// Backups need database Admin, restores Operator.
		{"POST", "/databases/db/admin/backup", `{"BackupType":"Backup","LocalSettings":{"FolderPath":"/tmp/never"}}`},
		{"POST", "/databases/db/admin/periodic-backup", `{"BackupType":"Backup","LocalSettings":{"FolderPath":"/tmp/never"}}`},
		{"POST", "/admin/restore/database", `{"DatabaseName":"r","BackupLocation":"/tmp/never"}`},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		ts.expect(ts.do(c.method, c.path, body, as("writer")...), http.StatusForbidden)
	}
	// Listing shows only what a certificate may see.
	v := ts.expect(ts.do("GET", "/databases?namesOnly=true", nil, as("stranger")...), http.StatusOK)
	if fmt.Sprint(v["Databases"]) != "[other]" {
		t.Fatalf("stranger sees %v", v)
	}
	v = ts.expect(ts.do("GET", "/databases?namesOnly=true", nil, as("operator")...), http.StatusOK)
	if fmt.Sprint(v["Databases"]) != "[db other]" {
		t.Fatalf("operator sees %v", v)
	}
}

func TestUnsupportedRoutes(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("db", false)
	for _, c := range []struct{ method, path string }{
		{"GET", "/no/such/route"},
		{"GET", "/databases/db/hilo/next?tag=users"},
		{"PUT", "/databases/db/hilo/return?tag=users&end=1&last=1"},
		{"PATCH", "/databases/db/docs?id=a"},
		{"POST", "/databases/db/queries"},
		{"GET", "/"},
	} {
		v := ts.expect(ts.do(c.method, c.path, nil), http.StatusNotImplemented)
		if v["Type"] != "Raven.Client.Exceptions.RavenException" || !strings.Contains(errorText(v), "not supported by magpie") {
			t.Fatalf("%s %s: %v", c.method, c.path, v)
		}
	}
}

func TestSmugglerRoundTrip(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.createDB("src", false)
	att := randomBytes(10 << 10)
	ct, body := multipartBatch(t, map[string]any{"Commands": []any{
		map[string]any{"Id": "users/1", "Type": "PUT", "Document": map[string]any{"name": "Ada", "note": "bell\u0007", "@metadata": map[string]any{"@collection": "Users"}}},
		map[string]any{"Id": "users/1", "Name": "a.bin", "Type": "AttachmentPUT", "ContentType": "application/x-test"},
		map[string]any{"Id": "orders/1", "Type": "PUT", "Document": map[string]any{"total": 3, "@metadata": map[string]any{"@collection": "Orders"}}},
	}}, att)
	ts.expect(ts.do("POST", "/databases/src/bulk_docs", body, "Content-Type", ct), http.StatusCreated)

	for _, compression := range []string{"Zstd", "Gzip"} {
		r := ts.do("POST", "/databases/src/smuggler/export?operationId=1", map[string]any{"OperateOnTypes": "Documents,Attachments", "CompressionAlgorithm": compression})
		if r.status != 200 || r.header.Get("Content-Type") != "application/octet-stream" || len(r.body) == 0 {
			t.Fatalf("export: %d %v", r.status, r.header)
		}
		export := r.body

		// As RavenDB's clients send it: importOptions, then the file.
		dst := "dst" + compression
		ts.createDB(dst, false)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("importOptions", `{"OperateOnTypes":"Documents,Attachments","IncludeExpired":true}`)
		fw, _ := mw.CreateFormFile("name", "blob")
		fw.Write(export)
		mw.Close()
		ts.expect(ts.do("POST", "/databases/"+dst+"/smuggler/import?operationId=2", buf.Bytes(), "Content-Type", mw.FormDataContentType()), http.StatusOK)

		// The raw file as the body.
		raw := "raw" + compression
		ts.createDB(raw, false)
		ts.expect(ts.do("POST", "/databases/"+raw+"/smuggler/import", export, "Content-Type", "application/octet-stream"), http.StatusOK)

		for _, db := range []string{dst, raw} {
			v := ts.expect(ts.do("GET", "/databases/"+db+"/stats", nil), 200)
			if v["CountOfDocuments"] != float64(2) || v["CountOfAttachments"] != float64(1) {
				t.Fatalf("%s stats: %v", db, v)
			}
			v = ts.expect(ts.do("GET", "/databases/"+db+"/docs?id=users/1", nil), 200)
			if got := v["Results"].([]any)[0].(map[string]any); got["note"] != "bell\u0007" {
				t.Fatalf("%s users/1: %v", db, got)
			}
			r := ts.do("GET", "/databases/"+db+"/attachments?id=users/1&name=a.bin", nil)
			if !bytes.Equal(r.body, att) || r.header.Get("Content-Type") != "application/x-test" {
				t.Fatalf("%s attachment: %d bytes, %v", db, len(r.body), r.header)
			}
		}
	}

	// A damaged file imports nothing.
	ts.createDB("broken", false)
	v := ts.expect(ts.do("POST", "/databases/broken/smuggler/import", `{"Docs":[{"x":`, "Content-Type", "application/octet-stream"), http.StatusBadRequest)
	if !strings.Contains(errorText(v), "nothing was imported") {
		t.Fatalf("damaged import: %v", v)
	}
	// Unsupported options are refused.
	ts.expect(ts.do("POST", "/databases/src/smuggler/export", map[string]any{"TransformScript": "this.x = 1"}), http.StatusNotImplemented)
	ts.expect(ts.do("POST", "/databases/src/smuggler/export", map[string]any{"CompressionAlgorithm": "lz4"}), http.StatusBadRequest)
}

func TestHelpers(t *testing.T) {
	// storeError never answers 2xx and maps the sentinels.
	for _, c := range []struct {
		err    error
		status int
	}{
		{store.ErrInvalidInput, 400},
		{fmt.Errorf("x: %w", store.ErrExists), 409},
		{fmt.Errorf("x: %w", store.ErrNotFound), 404},
		{store.ErrEncryptionDenied, 400},
		{keys.ErrInvalidKey, 400},
		{&http.MaxBytesError{Limit: 1}, 413},
		{errors.New("disk on fire"), 500},
	} {
		status, _ := classify(c.err)
		if status != c.status {
			t.Errorf("%v: %d, want %d", c.err, status, c.status)
		}
	}
	ts := newTestServer(t, Config{})
	ts.createDB("Mixed", false)
	a, err := ts.srv.openDB("mixed")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.srv.openDB("MIXED")
	if err != nil || a != b {
		t.Fatalf("openDB does not share handles: %v", err)
	}
	if err := ts.srv.closeDB("Mixed"); err != nil {
		t.Fatal(err)
	}
	if c, err := ts.srv.openDB("mixed"); err != nil || c == a {
		t.Fatalf("closeDB did not forget the handle: %v", err)
	}
	if _, err := ts.srv.openDB("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing database: %v", err)
	}
}
