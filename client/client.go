// Package client is the Go SDK for a magpie server (`magpie serve`). It
// speaks the server's HTTP API (docs/API.md): databases, documents,
// statistics, import and export, backups and restores.
//
// Connect with the client certificate the server issued (first start of
// `magpie serve` writes an admin one to DATA/certs/admin.pem and
// admin-key.pem) and the server's CA (DATA/certs/ca.pem):
//
//	c, err := client.New("https://127.0.0.1:8443", client.Options{
//		CertFile: "admin.pem", KeyFile: "admin-key.pem", CAFile: "ca.pem",
//	})
//	if err != nil { ... }
//	ctx := context.Background()
//	if _, err := c.CreateDatabase(ctx, "media", client.CreateOptions{}); err != nil { ... }
//	if _, err := c.PutDocument(ctx, "media", "albums/1", []byte(`{"Title":"Blue"}`)); err != nil { ... }
//	doc, err := c.GetDocument(ctx, "media", "albums/1")
//	if errors.Is(err, client.ErrNotFound) { ... }
//
// A server started with --unsecured takes a plain http:// URL and no
// certificate. Every error the server answers is an *Error whose Error()
// is the server's sentence. Backup and Restore start a server operation
// and wait for it, polling its state every 500 ms; the paths they take are
// on the server's machine, as in RavenDB. Import and Export stream the
// file from and to the caller.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Options configures a Client.
type Options struct {
	// CertFile and KeyFile are the client certificate and its key (PEM).
	CertFile, KeyFile string
	// CAFile holds the CA certificates (PEM) that sign the server's
	// certificate; empty means the system's.
	CAFile string
	// HTTPClient, when set, is used as it is (and the files above must
	// be empty).
	HTTPClient *http.Client
	// PollInterval is how often a running operation's state is read;
	// 0 means 500 ms, as RavenDB's clients poll.
	PollInterval time.Duration
}

// Client talks to one magpie server. It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
	poll time.Duration
}

// ErrNotFound is matched (with errors.Is) by the error for a document or
// database that does not exist.
var ErrNotFound = errors.New("not found")

// Error is an error the server answered.
type Error struct {
	// Status is the HTTP status (for a failed operation, the status its
	// result carries).
	Status int
	// Type is the server's exception type, as RavenDB names it.
	Type string
	// Message is the server's sentence.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for a missing document or
// database.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && (e.Status == http.StatusNotFound || strings.HasSuffix(e.Type, "DatabaseDoesNotExistException"))
}

// New returns a client of the server at serverURL (https://HOST:PORT, or
// http:// for a server started with --unsecured).
func New(serverURL string, opts Options) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not a server URL. Give it as https://HOST:PORT", serverURL)
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), hc: opts.HTTPClient, poll: 500 * time.Millisecond}
	if opts.PollInterval > 0 {
		c.poll = opts.PollInterval
	}
	files := opts.CertFile != "" || opts.KeyFile != "" || opts.CAFile != ""
	if c.hc != nil {
		if files {
			return nil, errors.New("both an HTTPClient and certificate files were given. Configure TLS in the HTTPClient, or leave it out")
		}
		return c, nil
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("a client certificate and its key go together. Give both CertFile and KeyFile, or neither")
	}
	if u.Scheme == "http" {
		if files {
			return nil, fmt.Errorf("%s is plain http, which takes no certificates. Use an https:// URL, or leave out the certificate files", serverURL)
		}
		c.hc = &http.Client{}
		return c, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the CA file: %v. Check the path", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate. Give the server's ca.pem", opts.CAFile)
		}
	}
	if opts.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the client certificate %s with key %s: %v. Give the PEM files the server issued", opts.CertFile, opts.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	c.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}}
	return c, nil
}

// URL is the server's URL.
func (c *Client) URL() string { return c.base }

// do sends a request and returns the response of a 2xx answer; any other
// answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

// readError turns an error answer into an *Error.
func readError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Type, Message, Error string }
	if json.Unmarshal(raw, &e) == nil && (e.Error != "" || e.Message != "") {
		msg := e.Error
		if msg == "" {
			msg = e.Message
		}
		return &Error{Status: resp.StatusCode, Type: e.Type, Message: msg}
	}
	msg := fmt.Sprintf("the server answered %s", resp.Status)
	if text := strings.TrimSpace(string(raw)); text != "" && len(text) < 200 {
		msg += ": " + text
	}
	return &Error{Status: resp.StatusCode, Message: msg}
}

// call sends a JSON body (nil for none) and decodes a JSON answer into out
// (nil to ignore it).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, query, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("the server's answer to %s %s cannot be read: %v", method, path, err)
	}
	return nil
}

// dbPath is the path of a database route.
func dbPath(db, rest string) string { return "/databases/" + url.PathEscape(db) + rest }

// Database describes a database.
type Database struct {
	Name      string
	Encrypted bool
	Created   time.Time
}

// Databases lists the databases the caller may see.
func (c *Client) Databases(ctx context.Context) ([]Database, error) {
	var ans struct {
		Databases []struct {
			Name        string
			IsEncrypted bool
			Created     string
		}
	}
	if err := c.call(ctx, "GET", "/databases", nil, nil, &ans); err != nil {
		return nil, err
	}
	out := make([]Database, 0, len(ans.Databases))
	for _, d := range ans.Databases {
		created, _ := time.Parse(time.RFC3339Nano, d.Created)
		out = append(out, Database{Name: d.Name, Encrypted: d.IsEncrypted, Created: created})
	}
	return out, nil
}

// CreateOptions are the options of CreateDatabase.
type CreateOptions struct {
	// Encrypted encrypts the database at rest.
	Encrypted bool
	// Key is the encrypted database's secret key (base64 of 32 bytes);
	// nil asks the server for a new one, returned in Created.Key.
	Key *string
}

// Created describes a database just created.
type Created struct {
	Name           string
	Encrypted      bool
	KeyFingerprint string `json:",omitempty"`
	// Key is the secret key the server generated (when none was given):
	// shown only this once.
	Key string `json:",omitempty"`
}

// CreateDatabase creates a database. For an encrypted one the key is put
// with POST /admin/secrets first, over TLS.
func (c *Client) CreateDatabase(ctx context.Context, name string, opts CreateOptions) (*Created, error) {
	out := &Created{Name: name, Encrypted: opts.Encrypted}
	if opts.Key != nil && !opts.Encrypted {
		return nil, errors.New("a key was given for a database that is not encrypted. Set Encrypted, or leave out the Key")
	}
	if opts.Encrypted {
		var key string
		if opts.Key != nil {
			key = strings.TrimSpace(*opts.Key)
		} else {
			k, err := c.GenerateSecret(ctx)
			if err != nil {
				return nil, err
			}
			key, out.Key = k, k
		}
		q := url.Values{"name": {name}, "overwrite": {"true"}}
		resp, err := c.do(ctx, "POST", "/admin/secrets", q, strings.NewReader(key), "text/plain")
		if err != nil {
			return nil, err
		}
		var ans struct{ KeyFingerprint string }
		err = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("the server's answer to POST /admin/secrets cannot be read: %v", err)
		}
		out.KeyFingerprint = ans.KeyFingerprint
	}
	rec := map[string]any{"DatabaseName": name, "Encrypted": opts.Encrypted}
	if err := c.call(ctx, "PUT", "/admin/databases", url.Values{"name": {name}}, rec, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteDatabase deletes a database and its files.
func (c *Client) DeleteDatabase(ctx context.Context, name string) error {
	req := map[string]any{"DatabaseNames": []string{name}, "HardDelete": true}
	return c.call(ctx, "DELETE", "/admin/databases", nil, req, nil)
}

// Stats are a database's statistics, with RavenDB's field names.
type Stats struct {
	DatabaseName             string           `json:"DatabaseName"`
	DatabaseID               string           `json:"DatabaseId"`
	Encrypted                bool             `json:"IsEncrypted"`
	CountOfDocuments         int64            `json:"CountOfDocuments"`
	CountOfTombstones        int64            `json:"CountOfTombstones"`
	CountOfAttachments       int64            `json:"CountOfAttachments"`
	CountOfUniqueAttachments int64            `json:"CountOfUniqueAttachments"`
	CountOfIndexes           int64            `json:"CountOfIndexes"`
	LastDocEtag              uint64           `json:"LastDocEtag"`
	Collections              map[string]int64 `json:"Collections"`
}

// Stats returns a database's statistics.
func (c *Client) Stats(ctx context.Context, db string) (*Stats, error) {
	var s Stats
	if err := c.call(ctx, "GET", dbPath(db, "/stats"), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
