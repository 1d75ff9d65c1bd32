package server

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/magpiedb/magpie/internal/certs"
)

// Issuing client certificates through the server, as RavenDB's
// CreateClientCertificateOperation does: POST /admin/certificates makes a
// key and a certificate signed by the server's CA, registers it, and
// answers with a zip of NAME.pfx, NAME.crt and NAME.key. The key is made
// here and leaves only in that answer (over TLS); it is never logged.

// IssueWith lets POST /admin/certificates issue client certificates
// signed by ca (the server's CA, with its key). Without it the route
// answers that the server cannot issue.
func (a *CertAuth) IssueWith(ca *certs.Pair) { a.issuer = ca }

// createCertificateRequest is the body of POST /admin/certificates.
type createCertificateRequest struct {
	Name              string            `json:"Name"`
	SecurityClearance string            `json:"SecurityClearance"`
	Permissions       map[string]string `json:"Permissions"`
	Password          string            `json:"Password"`
	// NotAfter (RavenDB's ExpirationDateTime) ends the validity; empty
	// means certs.ClientValidity from now.
	NotAfter string `json:"NotAfter"`
}

func (s *Server) handleCreateCertificate(w http.ResponseWriter, r *http.Request, a *CertAuth) {
	caller, ok := s.allow(w, r, AccessClusterAdmin, "")
	if !ok {
		return
	}
	if a.issuer == nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, "This server has no certificate authority key to issue client certificates with. Issue the certificate elsewhere and register it with PUT /admin/certificates.")
		return
	}
	var req createCertificateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCertificateBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The body of POST /admin/certificates is not a certificate request: "+err.Error()+". Send JSON with Name, SecurityClearance, Permissions and optionally Password and NotAfter.")
		return
	}
	clearance, perms, msg := parseAccess(req.Name, req.SecurityClearance, req.Permissions)
	if msg != "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, msg)
		return
	}
	validity := certs.ClientValidity
	if req.NotAfter != "" {
		end, err := time.Parse(time.RFC3339Nano, req.NotAfter)
		if err != nil {
			writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf("NotAfter %q is not a date. Give it as RFC 3339, such as 2027-12-31T00:00:00Z.", req.NotAfter))
			return
		}
		if validity = time.Until(end); validity <= 0 {
			writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf("NotAfter %s is in the past. Give a date in the future.", req.NotAfter))
			return
		}
	}
	pair, err := certs.Issue(a.issuer, req.Name, validity)
	if err != nil {
		s.log.Error("cannot issue a client certificate", "name", req.Name, "err", err)
		writeError(w, http.StatusInternalServerError, typeRaven, "The certificate cannot be issued. See the server log.")
		return
	}
	pfx, err := certs.PFX(pair, a.issuer.Cert, req.Password)
	if err != nil {
		s.log.Error("cannot encode a client certificate", "name", req.Name, "err", err)
		writeError(w, http.StatusInternalServerError, typeRaven, "The certificate cannot be encoded. See the server log.")
		return
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{req.Name + ".pfx", pfx}, {req.Name + ".crt", pair.CertPEM()}, {req.Name + ".key", pair.KeyPEM()}} {
		fw, err := zw.Create(f.name)
		if err == nil {
			_, err = fw.Write(f.data)
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, typeRaven, "The certificate archive cannot be written.")
			return
		}
	}
	if err := zw.Close(); err != nil {
		writeError(w, http.StatusInternalServerError, typeRaven, "The certificate archive cannot be written.")
		return
	}
	thumb := certs.Thumbprint(pair.Cert)
	if err := a.reg.Put(certs.EntryFor(pair.Cert, req.Name, clearance, perms)); err != nil {
		s.log.Error("cannot save the certificate registry", "err", err)
		writeError(w, http.StatusInternalServerError, typeRaven, "The certificate registry cannot be saved. See the server log.")
		return
	}
	s.log.Info("certificate issued", "name", req.Name, "thumbprint", thumb, "clearance", clearance, "by", caller.Name)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+req.Name+`.zip"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}
