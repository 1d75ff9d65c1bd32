package server

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/magpiedb/magpie/internal/certs"
)

// CertAuth identifies callers by their TLS client certificate (DESIGN.md
// section 6). TLS only requests the certificate (tls.RequestClientCert), so
// that a refusal reaches the client as a readable 403 JSON answer instead of
// a broken handshake; CertAuth therefore checks everything TLS did not: the
// certificate's validity, its chain to one of our client CAs, and its entry
// in the registry.
type CertAuth struct {
	reg   *certs.Registry
	roots *x509.CertPool
	// Now is the clock; tests set it.
	Now func() time.Time

	// verified remembers leaf certificates whose chain checked out, by
	// thumbprint: the signature check is by far the most expensive part
	// of a request, and a chain's validity does not change (the validity
	// dates and the registry are still checked on every request).
	mu       sync.Mutex
	verified map[string]bool

	// issuer, when set, signs the certificates POST /admin/certificates
	// issues.
	issuer *certs.Pair
}

// maxVerified bounds the cache of verified chains.
const maxVerified = 4096

// NewCertAuth checks client certificates against roots (the server's CA,
// plus any --tls-client-ca) and the registry.
func NewCertAuth(reg *certs.Registry, roots *x509.CertPool) *CertAuth {
	return &CertAuth{reg: reg, roots: roots, Now: time.Now}
}

// Registry is the registry the authenticator reads.
func (a *CertAuth) Registry() *certs.Registry { return a.reg }

// errNoCertificate is the answer to a caller without a client certificate.
var errNoCertificate = errors.New("This server requires a client certificate, but none was provided. Connect with the certificate magpie serve printed (DATA/certs/admin.pem).")

// Authenticate implements Authenticator.
func (a *CertAuth) Authenticate(r *http.Request) (*Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errNoCertificate
	}
	leaf := r.TLS.PeerCertificates[0]
	thumb := certs.Thumbprint(leaf)
	if err := a.verify(leaf, r.TLS.PeerCertificates[1:]); err != nil {
		return nil, err
	}
	e, ok := a.reg.Get(thumb)
	if !ok {
		return nil, fmt.Errorf("The client certificate %s is unknown to this server. Ask an administrator to register it (magpie certs create, or PUT /admin/certificates).", describe(leaf.Subject.CommonName, thumb))
	}
	if now := a.Now(); now.After(e.NotAfter) {
		return nil, fmt.Errorf("The client certificate %s expired on %s. Ask an administrator for a new one (magpie certs create).", describe(e.Name, thumb), e.NotAfter.UTC().Format(time.DateTime+" MST"))
	}
	perms := make(map[string]string, len(e.Permissions))
	for db, p := range e.Permissions {
		perms[lower(db)] = p
	}
	return &Identity{Name: e.Name, Thumbprint: thumb, Clearance: e.Clearance, Permissions: perms}, nil
}

// verify checks a certificate's own validity and its chain to one of the
// client CAs.
func (a *CertAuth) verify(leaf *x509.Certificate, more []*x509.Certificate) error {
	thumb := certs.Thumbprint(leaf)
	now := a.Now()
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("The client certificate %s expired on %s. Ask an administrator for a new one (magpie certs create).", describe(leaf.Subject.CommonName, thumb), leaf.NotAfter.UTC().Format(time.DateTime+" MST"))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("The client certificate %s is not valid before %s. Check the clock of this server and of the client.", describe(leaf.Subject.CommonName, thumb), leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	}
	a.mu.Lock()
	ok := a.verified[thumb]
	a.mu.Unlock()
	if ok {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range more {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         a.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage {
			return fmt.Errorf("The client certificate %s is not meant for client authentication. Use a client certificate from magpie certs create.", describe(leaf.Subject.CommonName, thumb))
		}
		return fmt.Errorf("The client certificate %s was not issued by this server's certificate authority. Use a certificate from magpie certs create (or DATA/certs/admin.pem).", describe(leaf.Subject.CommonName, thumb))
	}
	a.mu.Lock()
	if a.verified == nil || len(a.verified) >= maxVerified {
		a.verified = map[string]bool{}
	}
	a.verified[thumb] = true
	a.mu.Unlock()
	return nil
}

func describe(name, thumb string) string {
	if name == "" {
		return "(thumbprint " + thumb + ")"
	}
	return fmt.Sprintf("'%s' (thumbprint %s)", name, thumb)
}

// RegisterCertificateRoutes serves the certificate registry as RavenDB does,
// for ClusterAdmin callers: PUT, POST (issue), GET and DELETE
// /admin/certificates, plus GET
// /certificates/whoami for any registered caller. serve calls it after New
// on a secured server.
func (s *Server) RegisterCertificateRoutes(a *CertAuth) {
	s.certRoutes(a)
}

func (s *Server) certRoutes(a *CertAuth) {
	s.mux.HandleFunc("PUT /admin/certificates", func(w http.ResponseWriter, r *http.Request) { s.handlePutCertificate(w, r, a) })
	s.mux.HandleFunc("POST /admin/certificates", func(w http.ResponseWriter, r *http.Request) { s.handleCreateCertificate(w, r, a) })
	s.mux.HandleFunc("GET /admin/certificates", func(w http.ResponseWriter, r *http.Request) { s.handleGetCertificates(w, r, a) })
	s.mux.HandleFunc("DELETE /admin/certificates", func(w http.ResponseWriter, r *http.Request) { s.handleDeleteCertificate(w, r, a) })
	s.mux.HandleFunc("GET /certificates/whoami", func(w http.ResponseWriter, r *http.Request) { s.handleWhoAmI(w, r, a) })
}

// certificateDefinition is RavenDB's CertificateDefinition on the wire.
type certificateDefinition struct {
	Name                    string            `json:"Name"`
	Certificate             string            `json:"Certificate"`
	Thumbprint              string            `json:"Thumbprint"`
	SecurityClearance       string            `json:"SecurityClearance"`
	Permissions             map[string]string `json:"Permissions"`
	NotBefore               string            `json:"NotBefore"`
	NotAfter                string            `json:"NotAfter"`
	PublicKeyPinningHash    string            `json:"PublicKeyPinningHash"`
	CollectionSecondaryKeys []string          `json:"CollectionSecondaryKeys"`
	CollectionPrimaryKey    string            `json:"CollectionPrimaryKey"`
}

// ravenDate is RavenDB's wire format for dates: always 7 fractional digits.
func ravenDate(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// pinningHash is RavenDB's PublicKeyPinningHash: base64 of the SHA-256 of
// the certificate's SubjectPublicKeyInfo.
func pinningHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func definitionOf(r certs.Registered) certificateDefinition {
	d := certificateDefinition{
		Name:                    r.Name,
		Certificate:             r.Certificate,
		Thumbprint:              r.Thumbprint,
		SecurityClearance:       r.Clearance,
		Permissions:             r.Permissions,
		NotBefore:               ravenDate(r.NotBefore),
		NotAfter:                ravenDate(r.NotAfter),
		CollectionSecondaryKeys: []string{},
	}
	if d.Permissions == nil {
		d.Permissions = map[string]string{}
	}
	if raw, err := base64.StdEncoding.DecodeString(r.Certificate); err == nil {
		if c, err := x509.ParseCertificate(raw); err == nil {
			d.PublicKeyPinningHash = pinningHash(c)
		}
	}
	return d
}

// putCertificateRequest is the body of PUT /admin/certificates.
type putCertificateRequest struct {
	Name              string            `json:"Name"`
	Certificate       string            `json:"Certificate"`
	SecurityClearance string            `json:"SecurityClearance"`
	Permissions       map[string]string `json:"Permissions"`
	Password          string            `json:"Password"`
}

// parseAccess checks a certificate request's name and reads its clearance
// (empty: ValidUser) and per-database permissions; msg says what is wrong,
// if anything.
func parseAccess(name, clearanceName string, permissions map[string]string) (clearance string, perms map[string]string, msg string) {
	if !certs.ValidName(name) {
		return "", nil, fmt.Sprintf("Certificate name %q is not valid. Use up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit.", name)
	}
	clearance = certs.ValidUser
	if clearanceName != "" {
		if clearance = certs.NormalizeClearance(clearanceName); clearance == "" {
			return "", nil, fmt.Sprintf("SecurityClearance %q is not supported by magpie. Use ClusterAdmin, Operator or ValidUser.", clearanceName)
		}
	}
	perms = map[string]string{}
	for db, p := range permissions {
		np := certs.NormalizePermission(p)
		if np == "" || strings.TrimSpace(db) == "" {
			return "", nil, fmt.Sprintf("Permission %q for database %q is not valid. Use Admin, ReadWrite or Read for a named database.", p, db)
		}
		perms[db] = np
	}
	if len(perms) > 0 && clearance != certs.ValidUser {
		return "", nil, fmt.Sprintf("Permissions grant access to single databases, and a %s certificate already reaches every database. Leave Permissions out, or use SecurityClearance ValidUser.", clearance)
	}
	return clearance, perms, ""
}

// maxCertificateBody bounds a PUT /admin/certificates body.
const maxCertificateBody = 1 << 20

func (s *Server) handlePutCertificate(w http.ResponseWriter, r *http.Request, a *CertAuth) {
	caller, ok := s.allow(w, r, AccessClusterAdmin, "")
	if !ok {
		return
	}
	var req putCertificateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCertificateBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The body of PUT /admin/certificates is not a certificate definition: "+err.Error()+". Send JSON with Name, Certificate (base64 DER), SecurityClearance and Permissions.")
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The certificate definition has no Name. Give the certificate a name.")
		return
	}
	clearance, perms, msg := parseAccess(req.Name, req.SecurityClearance, req.Permissions)
	if msg != "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, msg)
		return
	}
	cert, err := certs.ParseClientCertificate(req.Certificate, req.Password)
	if err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The Certificate of the definition cannot be read: "+err.Error()+". Send the certificate as base64 of its DER bytes (or as PEM).")
		return
	}
	if err := a.verify(cert, nil); err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot register this certificate: "+err.Error())
		return
	}
	thumb := certs.Thumbprint(cert)
	if err := a.reg.Put(certs.EntryFor(cert, req.Name, clearance, perms)); err != nil {
		s.log.Error("cannot save the certificate registry", "err", err)
		writeError(w, http.StatusInternalServerError, typeRaven, "The certificate registry cannot be saved. See the server log.")
		return
	}
	s.log.Info("certificate registered", "name", req.Name, "thumbprint", thumb, "clearance", clearance, "by", caller.Name)
	// RavenDB answers 201 with no body; the Node.js client's command has
	// no response parser and fails on a body.
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) handleGetCertificates(w http.ResponseWriter, r *http.Request, a *CertAuth) {
	if _, ok := s.allow(w, r, AccessClusterAdmin, ""); !ok {
		return
	}
	list := a.reg.List()
	results := []certificateDefinition{}
	if thumb := r.URL.Query().Get("thumbprint"); thumb != "" {
		e, ok := a.reg.Get(thumb)
		if !ok {
			writeError(w, http.StatusNotFound, typeRaven, "No certificate with thumbprint "+strings.ToUpper(thumb)+" is registered.")
			return
		}
		results = append(results, definitionOf(certs.Registered{Thumbprint: strings.ToUpper(thumb), Entry: e}))
	} else {
		start, size := queryInt(r, "start", 0), queryInt(r, "pageSize", len(list))
		if start < 0 {
			start = 0
		}
		for i := start; i < len(list) && i-start < size; i++ {
			results = append(results, definitionOf(list[i]))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Results":             results,
		"LoadedServerCert":    nil,
		"WellKnownAdminCerts": []string{},
	})
}

func (s *Server) handleDeleteCertificate(w http.ResponseWriter, r *http.Request, a *CertAuth) {
	caller, ok := s.allow(w, r, AccessClusterAdmin, "")
	if !ok {
		return
	}
	thumb := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("thumbprint")))
	if thumb == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "DELETE /admin/certificates needs the thumbprint query parameter. Add ?thumbprint=THUMBPRINT.")
		return
	}
	if thumb == caller.Thumbprint {
		writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot delete the certificate "+describe(caller.Name, thumb)+" because it is the one this request uses. Delete it with another ClusterAdmin certificate.")
		return
	}
	deleted, err := a.reg.Delete(thumb)
	if err != nil {
		s.log.Error("cannot save the certificate registry", "err", err)
		writeError(w, http.StatusInternalServerError, typeRaven, "The certificate registry cannot be saved. See the server log.")
		return
	}
	if deleted {
		s.log.Info("certificate deleted", "thumbprint", thumb, "by", caller.Name)
	}
	// RavenDB answers 204 whether or not the thumbprint was registered; the
	// Node.js client's command reads no body.
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request, a *CertAuth) {
	id, ok := s.allow(w, r, AccessRead, "")
	if !ok {
		return
	}
	e, found := a.reg.Get(id.Thumbprint)
	if !found {
		writeError(w, http.StatusNotFound, typeRaven, "The certificate of this request is not registered.")
		return
	}
	writeJSON(w, http.StatusOK, definitionOf(certs.Registered{Thumbprint: id.Thumbprint, Entry: e}))
}
