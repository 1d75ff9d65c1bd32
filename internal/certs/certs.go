// Package certs makes and keeps the certificates of a secured magpie
// server (DESIGN.md section 6): a certificate authority of its own, the
// server's TLS certificate, client certificates, and the registry that says
// what each client certificate may do.
//
// Every private key is RSA and written as PKCS#1 PEM (`RSA PRIVATE KEY`):
// the RavenDB Node.js client reads only that block and otherwise silently
// connects with no certificate. PFX files use the modern PKCS#12 encoding
// with an empty password (Node.js 20 / OpenSSL 3 refuse the legacy RC2 one).
package certs

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Clearances, as RavenDB names them.
const (
	ClusterAdmin = "ClusterAdmin"
	Operator     = "Operator"
	ValidUser    = "ValidUser"
)

// Per-database permissions, as RavenDB names them.
const (
	Admin     = "Admin"
	ReadWrite = "ReadWrite"
	Read      = "Read"
)

// Validity periods.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 10 * 365 * 24 * time.Hour
	AdminValidity  = 5 * 365 * 24 * time.Hour
	// ClientValidity is the default for `magpie certs create`.
	ClientValidity = 365 * 24 * time.Hour
)

// KeyBits is the size of every RSA key magpie generates.
const KeyBits = 3072

// backdate makes a new certificate valid a little before now, so a client
// whose clock is slightly behind accepts it.
const backdate = time.Hour

// Pair is a certificate with its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// CertPEM is the certificate as a PEM `CERTIFICATE` block.
func (p *Pair) CertPEM() []byte { return EncodeCertPEM(p.Cert) }

// KeyPEM is the key as a PKCS#1 `RSA PRIVATE KEY` block.
func (p *Pair) KeyPEM() []byte { return EncodeKeyPEM(p.Key) }

// Thumbprint is RavenDB's name for a certificate: the SHA-1 of its DER bytes
// in upper-case hex (what `openssl x509 -fingerprint -sha1` prints, without
// the colons).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// EncodeCertPEM encodes a certificate as a PEM block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// EncodeKeyPEM encodes an RSA key as a PKCS#1 `RSA PRIVATE KEY` PEM block.
func EncodeKeyPEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// PFX encodes the pair, with the CA certificate as its chain, as PKCS#12 with
// the modern encoding, protected by password (empty for none).
func PFX(p *Pair, ca *x509.Certificate, password string) ([]byte, error) {
	var chain []*x509.Certificate
	if ca != nil {
		chain = []*x509.Certificate{ca}
	}
	return pkcs12.Modern.Encode(p.Key, p.Cert, chain, password)
}

// validName is what a client certificate's name may be: it names files
// too.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidName reports whether name may name a client certificate (and its
// files): up to 64 letters, digits, '.', '_' and '-', starting with a
// letter or digit.
func ValidName(name string) bool { return validName.MatchString(name) }

// NewCA makes a self-signed certificate authority valid for CAValidity.
func NewCA(name string) (*Pair, error) {
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("cannot generate the CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"magpie"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, key, nil)
}

// NewServer issues a TLS server certificate signed by ca for 127.0.0.1, ::1
// and localhost plus the given host names and IP addresses.
func NewServer(ca *Pair, hostnames []string) (*Pair, error) {
	dns, ips, err := SplitHosts(hostnames)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("cannot generate the server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "magpie server", Organization: []string{"magpie"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    capAt(now.Add(ServerValidity), ca.Cert.NotAfter),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	return sign(tmpl, key, ca)
}

// Issue makes a client certificate named name, signed by ca and valid for
// validity (never past the CA's own expiry).
func Issue(ca *Pair, name string, validity time.Duration) (*Pair, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("a client certificate needs a name")
	}
	if validity <= 0 {
		return nil, errors.New("a client certificate needs a positive validity")
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("cannot generate the key of certificate %s: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"magpie"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    capAt(now.Add(validity), ca.Cert.NotAfter),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return sign(tmpl, key, ca)
}

func capAt(t, limit time.Time) time.Time {
	if t.After(limit) {
		return limit
	}
	return t
}

// sign fills in the serial number and key ids and signs tmpl with parent
// (self-signed when parent is nil).
func sign(tmpl *x509.Certificate, key *rsa.PrivateKey, parent *Pair) (*Pair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	tmpl.SubjectKeyId = keyID(&key.PublicKey)
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
		tmpl.AuthorityKeyId = parent.Cert.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("cannot sign certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, Key: key}, nil
}

func keyID(pub *rsa.PublicKey) []byte {
	sum := sha1.Sum(x509.MarshalPKCS1PublicKey(pub))
	return sum[:]
}

var dnsName = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// DefaultHosts are the names every server certificate covers.
var DefaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// SplitHosts sorts host names and IP addresses (the defaults included) into
// the certificate's DNS and IP subject alternative names.
func SplitHosts(hostnames []string) ([]string, []net.IP, error) {
	var dns []string
	var ips []net.IP
	seen := map[string]bool{}
	for _, h := range append(append([]string{}, DefaultHosts...), hostnames...) {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if !dnsName.MatchString(h) || len(h) > 253 {
			return nil, nil, fmt.Errorf("%q is neither a host name nor an IP address; give --hostname a name such as db.example.com or an address such as 10.0.0.5", h)
		}
		if !seen[h] {
			seen[h] = true
			dns = append(dns, h)
		}
	}
	return dns, ips, nil
}

// ParsePEMPair reads a certificate and its key from PEM. The key may be
// PKCS#1, PKCS#8 or SEC 1 when read, although magpie writes only PKCS#1.
func ParsePEMPair(certPEM, keyPEM []byte) (*x509.Certificate, any, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, nil, err
	}
	var block *pem.Block
	rest := keyPEM
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, nil, errors.New("no private key PEM block found")
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the private key cannot be parsed: %w", err)
	}
	return cert, key, nil
}

// ParseCertPEM returns the first certificate in PEM text.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCertsPEM returns every certificate in PEM text (at least one).
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a certificate cannot be parsed: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

// ParseClientCertificate reads a certificate as a client sends it to PUT
// /admin/certificates: base64 of DER (RavenDB's form) or of a PFX (opened
// with password), or PEM text. A private key in a PFX is ignored.
func ParseClientCertificate(text, password string) (*x509.Certificate, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("the certificate is empty")
	}
	if strings.HasPrefix(text, "-----BEGIN") {
		return ParseCertPEM([]byte(text))
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, errors.New("the certificate is neither base64 nor PEM")
	}
	if bytes.HasPrefix(raw, []byte("-----BEGIN")) {
		return ParseCertPEM(raw)
	}
	if c, err := x509.ParseCertificate(raw); err == nil {
		return c, nil
	}
	if _, c, _, err := pkcs12.DecodeChain(raw, password); err == nil {
		return c, nil
	}
	if certs, err := pkcs12.DecodeTrustStore(raw, password); err == nil && len(certs) > 0 {
		return certs[0], nil
	}
	return nil, errors.New("the certificate is not a DER, PEM or PFX certificate (or the PFX password is wrong)")
}

// NormalizeClearance returns the canonical spelling of a clearance, or "" when
// c is not one.
func NormalizeClearance(c string) string {
	for _, v := range []string{ClusterAdmin, Operator, ValidUser} {
		if strings.EqualFold(c, v) {
			return v
		}
	}
	return ""
}

// NormalizePermission returns the canonical spelling of a database
// permission, or "" when p is not one.
func NormalizePermission(p string) string {
	for _, v := range []string{Admin, ReadWrite, Read} {
		if strings.EqualFold(p, v) {
			return v
		}
	}
	return ""
}
