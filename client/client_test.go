package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/server"
	"github.com/magpiedb/magpie/internal/store"
)

// newServer serves a fresh data dir in process over TLS (no client
// certificates: Config.Auth nil makes every caller a cluster admin) and
// returns a client of it.
func newServer(t *testing.T) (*client.Client, string) {
	t.Helper()
	dir := t.TempDir()
	data, err := store.Open(store.Options{Dir: filepath.Join(dir, "data"), MasterKeyFile: filepath.Join(dir, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{}, data)
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.CancelOperations()
		srv.Close()
		data.Close()
	})
	c, err := client.New(ts.URL, client.Options{HTTPClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func key(t *testing.T) string {
	t.Helper()
	k, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Base64()
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		url  string
		opts client.Options
		says string
	}{
		{"ftp://x", client.Options{}, "is not a server URL"},
		{"127.0.0.1:8443", client.Options{}, "is not a server URL"},
		{"https://127.0.0.1:1", client.Options{CertFile: "a.pem"}, "go together"},
		{"http://127.0.0.1:1", client.Options{CertFile: "a.pem", KeyFile: "b.pem"}, "plain http"},
		{"https://127.0.0.1:1", client.Options{CertFile: "nope.pem", KeyFile: "nope-key.pem"}, "cannot load the client certificate"},
		{"https://127.0.0.1:1", client.Options{CAFile: "nope.pem"}, "cannot read the CA file"},
		{"https://127.0.0.1:1", client.Options{CAFile: "x", HTTPClient: http.DefaultClient}, "both an HTTPClient"},
	} {
		if _, err := client.New(c.url, c.opts); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("New(%q, %+v): %v, want %q", c.url, c.opts, err, c.says)
		}
	}
	if _, err := client.New("http://127.0.0.1:8080/", client.Options{}); err != nil {
		t.Errorf("plain http: %v", err)
	}
}

func TestDatabasesAndDocuments(t *testing.T) {
	c, _ := newServer(t)
	ctx := context.Background()

	created, err := c.CreateDatabase(ctx, "plain", client.CreateOptions{})
	if err != nil || created.Encrypted || created.Key != "" {
		t.Fatalf("create plain: %+v %v", created, err)
	}
	k := key(t)
	created, err = c.CreateDatabase(ctx, "secret", client.CreateOptions{Encrypted: true, Key: &k})
	if err != nil || !created.Encrypted || created.KeyFingerprint == "" || created.Key != "" {
		t.Fatalf("create encrypted: %+v %v", created, err)
	}
	created, err = c.CreateDatabase(ctx, "generated", client.CreateOptions{Encrypted: true})
	if err != nil || created.Key == "" || created.KeyFingerprint == "" {
		t.Fatalf("create with a generated key: %+v %v", created, err)
	}
	if _, err := c.CreateDatabase(ctx, "x", client.CreateOptions{Key: &k}); err == nil {
		t.Error("a key for an unencrypted database was accepted")
	}

	// An existing database: a typed error with the server's sentence.
	_, err = c.CreateDatabase(ctx, "plain", client.CreateOptions{})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Error() != "Database 'plain' already exists!" {
		t.Errorf("existing database: %#v", err)
	}

	dbs, err := c.Databases(ctx)
	if err != nil || len(dbs) != 3 || dbs[2].Name != "secret" || !dbs[2].Encrypted || dbs[1].Encrypted || dbs[0].Created.IsZero() {
		t.Errorf("databases: %+v %v", dbs, err)
	}

	// Documents: the exact bytes come back, <, > and & included.
	body := []byte(`{"Title":"Tom & Jerry <3>","@metadata":{"@collection":"Cartoons"}}`)
	put, err := c.PutDocument(ctx, "secret", "cartoons/1", body)
	if err != nil || put.ID != "cartoons/1" || put.ChangeVector == "" {
		t.Fatalf("put: %+v %v", put, err)
	}
	got, err := c.GetDocument(ctx, "secret", "cartoons/1")
	if err != nil || !bytes.HasPrefix(got, []byte(`{"Title":"Tom & Jerry <3>","@metadata":{"@collection":"Cartoons"`)) {
		t.Errorf("get: %s %v", got, err)
	}
	if _, err := c.PutDocument(ctx, "secret", "bad/1", []byte(`[1]`)); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("bad body: %v", err)
	}
	st, err := c.Stats(ctx, "secret")
	if err != nil || st.CountOfDocuments != 1 || !st.Encrypted || st.Collections["Cartoons"] != 1 || st.LastDocEtag == 0 {
		t.Errorf("stats: %+v %v", st, err)
	}

	if err := c.DeleteDocument(ctx, "secret", "cartoons/1"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetDocument(ctx, "secret", "cartoons/1")
	if !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), "document ID not found") {
		t.Errorf("missing document: %v", err)
	}
	if err := c.DeleteDocument(ctx, "secret", "cartoons/1"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("deleting a missing document: %v", err)
	}
	if _, err := c.Stats(ctx, "nope"); !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), "wasn't found") {
		t.Errorf("missing database: %v", err)
	}

	if err := c.DeleteDatabase(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDatabase(ctx, "plain"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("deleting a missing database: %v", err)
	}

	s, err := c.GenerateSecret(ctx)
	if _, perr := keys.Parse(s); err != nil || perr != nil {
		t.Errorf("generate secret: %q %v %v", s, err, perr)
	}
}

func TestImportExport(t *testing.T) {
	c, _ := newServer(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := c.CreateDatabase(ctx, n, client.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"users/1", "users/2", "users/3"} {
		if _, err := c.PutDocument(ctx, "a", id, []byte(`{"Name":"x","@metadata":{"@collection":"Users"}}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, comp := range []string{"", "gzip", "none"} {
		var buf bytes.Buffer
		n, err := c.Export(ctx, "a", &buf, comp)
		if err != nil || n != int64(buf.Len()) || n == 0 {
			t.Fatalf("export %q: %d %v", comp, n, err)
		}
		if comp == "none" && !bytes.Contains(buf.Bytes(), []byte(`"users/2"`)) {
			t.Errorf("uncompressed export lacks a document")
		}
		res, err := c.Import(ctx, "b", &buf)
		if err != nil || res.Documents != 3 {
			t.Fatalf("import %q: %+v %v", comp, res, err)
		}
	}
	if st, err := c.Stats(ctx, "b"); err != nil || st.CountOfDocuments != 3 {
		t.Errorf("after import: %+v %v", st, err)
	}
	// A damaged file: refused with the server's sentence, nothing imported.
	_, err := c.Import(ctx, "b", strings.NewReader("not an export"))
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || !strings.Contains(e.Message, "nothing was imported") {
		t.Errorf("bad import: %#v", err)
	}
	if _, err := c.Export(ctx, "a", &bytes.Buffer{}, "lz4"); err == nil || !strings.Contains(err.Error(), "Unknown CompressionAlgorithm") {
		t.Errorf("bad compression: %v", err)
	}
}

func TestBackupRestore(t *testing.T) {
	c, dir := newServer(t)
	ctx := context.Background()
	k := key(t)
	if _, err := c.CreateDatabase(ctx, "media", client.CreateOptions{Encrypted: true, Key: &k}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"albums/1", "albums/2"} {
		if _, err := c.PutDocument(ctx, "media", id, []byte(`{"Title":"t"}`)); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(dir, "backups")
	res, err := c.Backup(ctx, "media", client.BackupRequest{FolderPath: to})
	if err != nil || res.Documents != 2 || res.Encryption != "database" || !res.Encrypted || res.Size == 0 ||
		!strings.HasPrefix(res.BackupDirectory, to) || res.FileName == "" {
		t.Fatalf("backup: %+v %v", res, err)
	}
	other := key(t)
	res2, err := c.Backup(ctx, "media", client.BackupRequest{Type: "Backup", FolderPath: to, EncryptionMode: "UseProvidedKey", Key: other, Compression: "gzip"})
	if err != nil || res2.Encryption != "key" {
		t.Fatalf("backup with a key: %+v %v", res2, err)
	}
	// Refused before anything is written: a relative path.
	if _, err := c.Backup(ctx, "media", client.BackupRequest{FolderPath: "relative"}); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("relative path: %v", err)
	}

	// A wrong key: the operation faults with the server's reason, and no
	// database is left.
	_, err = c.Restore(ctx, client.RestoreRequest{DatabaseName: "wrong", BackupLocation: res.BackupDirectory, DecryptionKey: other})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || !strings.Contains(e.Message, "is not the key of the backup") {
		t.Errorf("wrong key: %#v", err)
	}
	dbs, _ := c.Databases(ctx)
	for _, d := range dbs {
		if d.Name == "wrong" {
			t.Error("a refused restore left a database")
		}
	}

	r, err := c.Restore(ctx, client.RestoreRequest{DatabaseName: "copy", BackupLocation: res.BackupDirectory, EncryptionKey: k})
	if err != nil || r.CountOfDocuments != 2 || !r.IsEncrypted || r.DatabaseName != "copy" {
		t.Fatalf("restore: %+v %v", r, err)
	}
	r, err = c.Restore(ctx, client.RestoreRequest{DatabaseName: "copy2", BackupLocation: res2.BackupDirectory, DecryptionKey: other, EncryptionKey: k})
	if err != nil || r.CountOfDocuments != 2 {
		t.Fatalf("restore with a decryption key: %+v %v", r, err)
	}
	if got, err := c.GetDocument(ctx, "copy2", "albums/2"); err != nil || !bytes.Contains(got, []byte(`"Title":"t"`)) {
		t.Errorf("restored document: %s %v", got, err)
	}
	// A name taken faults too.
	if _, err := c.Restore(ctx, client.RestoreRequest{DatabaseName: "copy", BackupLocation: res.BackupDirectory, EncryptionKey: k}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("name taken: %v", err)
	}
	// A canceled context stops waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Backup(cctx, "media", client.BackupRequest{FolderPath: to}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

// Documents come back as the bytes that were stored, <, > and & included.
func TestGetDocumentExactBytes(t *testing.T) {
	c, _ := newServer(t)
	ctx := context.Background()
	if _, err := c.CreateDatabase(ctx, "exact", client.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	body := `{"Html":"<b>a & b</b>","Escaped":"\u003c","@metadata":{"@collection":"Pages"}}`
	if _, err := c.PutDocument(ctx, "exact", "pages/1", []byte(body)); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetDocument(ctx, "exact", "pages/1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), `{"Html":"<b>a & b</b>","Escaped":"\u003c","@metadata":{"@collection":"Pages","@id":"pages/1"`) {
		t.Fatalf("got %s", got)
	}
}
