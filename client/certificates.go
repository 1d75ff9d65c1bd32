package client

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"
)

// CertificateRequest asks the server to issue a client certificate.
type CertificateRequest struct {
	Name string
	// Clearance is ClusterAdmin, Operator or ValidUser.
	Clearance string
	// Permissions maps database names to Admin, ReadWrite or Read (for a
	// ValidUser).
	Permissions map[string]string
	// Password protects the PFX; empty for none.
	Password string
	// NotAfter ends the validity; zero means the server's default.
	NotAfter time.Time
}

// IssuedCertificate is a client certificate the server issued and
// registered: its key was made by the server and is only in KeyPEM and PFX.
type IssuedCertificate struct {
	CertPEM, KeyPEM, PFX []byte
}

// maxCertificateArchive bounds the answer of POST /admin/certificates: a
// few kilobytes of certificates and keys.
const maxCertificateArchive = 1 << 20

// CreateCertificate has the server issue, sign with its CA and register a
// client certificate, as RavenDB's CreateClientCertificateOperation.
func (c *Client) CreateCertificate(ctx context.Context, req CertificateRequest) (*IssuedCertificate, error) {
	body := map[string]any{"Name": req.Name, "SecurityClearance": req.Clearance, "Permissions": req.Permissions, "Password": req.Password}
	if !req.NotAfter.IsZero() {
		body["NotAfter"] = req.NotAfter.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, "POST", "/admin/certificates", nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxCertificateArchive+1))
	if err != nil {
		return nil, fmt.Errorf("the server's certificate archive cannot be read: %w", err)
	}
	if len(raw) > maxCertificateArchive {
		return nil, fmt.Errorf("the server's certificate archive is over %d bytes, which no certificate needs", maxCertificateArchive)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("the server's answer is not a certificate archive: %w", err)
	}
	out := &IssuedCertificate{}
	for _, f := range zr.File {
		var dst *[]byte
		switch f.Name {
		case req.Name + ".crt":
			dst = &out.CertPEM
		case req.Name + ".key":
			dst = &out.KeyPEM
		case req.Name + ".pfx":
			dst = &out.PFX
		default:
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("the server's certificate archive is damaged: %w", err)
		}
		*dst, err = io.ReadAll(io.LimitReader(rc, maxCertificateArchive))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("the server's certificate archive is damaged: %w", err)
		}
	}
	if out.CertPEM == nil || out.KeyPEM == nil || out.PFX == nil {
		return nil, fmt.Errorf("the server's certificate archive lacks %s.crt, %s.key or %s.pfx", req.Name, req.Name, req.Name)
	}
	return out, nil
}

// DeleteCertificate removes the certificate with this thumbprint from the
// server's registry, as RavenDB's DeleteCertificateOperation.
func (c *Client) DeleteCertificate(ctx context.Context, thumbprint string) error {
	resp, err := c.do(ctx, "DELETE", "/admin/certificates", url.Values{"thumbprint": {thumbprint}}, nil, "")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
