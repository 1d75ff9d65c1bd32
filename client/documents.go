package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// GetDocument returns a document, with its @metadata, as the strict JSON
// the server stored. A missing document is an error for which
// errors.Is(err, ErrNotFound).
func (c *Client) GetDocument(ctx context.Context, db, id string) ([]byte, error) {
	var ans struct{ Results []json.RawMessage }
	err := c.call(ctx, "GET", dbPath(db, "/docs"), url.Values{"id": {id}}, nil, &ans)
	if e, ok := err.(*Error); ok && e.Status == http.StatusNotFound && e.Type == "" {
		// The server answers a missing document with an empty 404.
		return nil, &Error{Status: http.StatusNotFound, Type: "DocumentDoesNotExistException",
			Message: fmt.Sprintf("document ID not found: %q is not in database %q", id, db)}
	}
	if err != nil {
		return nil, err
	}
	if len(ans.Results) != 1 || string(ans.Results[0]) == "null" {
		return nil, fmt.Errorf("the server answered %d documents for one ID", len(ans.Results))
	}
	return ans.Results[0], nil
}

// PutResult is what the server answers for a stored document.
type PutResult struct {
	ID           string `json:"Id"`
	ChangeVector string `json:"ChangeVector"`
}

// PutDocument stores a document (a JSON object; its
// @metadata.@collection, if any, names the collection), replacing any
// document with the same ID.
func (c *Client) PutDocument(ctx context.Context, db, id string, body []byte) (*PutResult, error) {
	resp, err := c.do(ctx, "PUT", dbPath(db, "/docs"), url.Values{"id": {id}}, bytes.NewReader(body), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out PutResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("the server's answer to a document PUT cannot be read: %v", err)
	}
	return &out, nil
}

// DeleteDocument deletes a document. Unlike RavenDB's clients, it reports
// a document that did not exist as an error for which
// errors.Is(err, ErrNotFound).
func (c *Client) DeleteDocument(ctx context.Context, db, id string) error {
	var ans struct{ Deleted bool }
	if err := c.call(ctx, "DELETE", dbPath(db, "/docs"), url.Values{"id": {id}}, nil, &ans); err != nil {
		return err
	}
	if !ans.Deleted {
		return &Error{Status: http.StatusNotFound, Type: "DocumentDoesNotExistException",
			Message: fmt.Sprintf("document ID not found: %q is not in database %q", id, db)}
	}
	return nil
}

// ImportResult counts what an import read.
type ImportResult struct {
	Documents   int64          `json:"Documents"`
	Tombstones  int64          `json:"Tombstones"`
	Attachments int64          `json:"Attachments"`
	Indexes     int64          `json:"Indexes"`
	Skipped     map[string]int `json:"Skipped,omitempty"`
}

// Import streams a RavenDB export (gzip, zstd or plain) from r into
// database db. It is all-or-nothing: on any error the database is left as
// it was.
func (c *Client) Import(ctx context.Context, db string, r io.Reader) (*ImportResult, error) {
	resp, err := c.do(ctx, "POST", dbPath(db, "/smuggler/import"), nil, io.NopCloser(r), "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	type count struct{ ReadCount int64 }
	var ans struct {
		Documents struct {
			ReadCount   int64
			Attachments count
		}
		Tombstones, Indexes count
		Skipped             map[string]int
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return nil, fmt.Errorf("the server's answer to the import cannot be read: %v", err)
	}
	return &ImportResult{
		Documents: ans.Documents.ReadCount, Attachments: ans.Documents.Attachments.ReadCount,
		Tombstones: ans.Tombstones.ReadCount, Indexes: ans.Indexes.ReadCount, Skipped: ans.Skipped,
	}, nil
}

// Export streams database db to w in RavenDB's export format, compressed
// with compression: "zstd" (the default when empty), "gzip" or "none". It
// returns the number of bytes written; an error after some were written
// means w holds an incomplete file.
func (c *Client) Export(ctx context.Context, db string, w io.Writer, compression string) (int64, error) {
	var opts map[string]any
	if compression != "" {
		opts = map[string]any{"CompressionAlgorithm": compression}
	} else {
		opts = map[string]any{}
	}
	b, _ := json.Marshal(opts)
	resp, err := c.do(ctx, "POST", dbPath(db, "/smuggler/export"), nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("the export of %s broke off after %d bytes: %v", db, n, err)
	}
	return n, nil
}
