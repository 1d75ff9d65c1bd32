package certs

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/atomicfile"
)

// Files are the paths of a server's certificates under DATA/certs.
type Files struct {
	Dir          string
	CA, CAKey    string
	Server       string
	ServerKey    string
	Admin        string
	AdminKey     string
	AdminPFX     string
	RegistryFile string
}

// Layout names the files in dir (DATA/certs).
func Layout(dir string) Files {
	j := func(n string) string { return filepath.Join(dir, n) }
	return Files{
		Dir: dir,
		CA:  j("ca.pem"), CAKey: j("ca-key.pem"),
		Server: j("server.pem"), ServerKey: j("server-key.pem"),
		Admin: j("admin.pem"), AdminKey: j("admin-key.pem"), AdminPFX: j("admin.pfx"),
		RegistryFile: j("registry.json"),
	}
}

// AdminName is the name the first ClusterAdmin certificate is registered
// under.
const AdminName = "admin"

// Set is what EnsureServer found or made.
type Set struct {
	Files Files
	CA    *Pair
	// Server is nil when EnsureServer was told not to look after the
	// server certificate (the operator brings their own).
	Server *Pair
	// Admin is the admin client certificate (no key: it is only read when
	// the certificate is first made).
	Admin    *x509.Certificate
	Registry *Registry
	// Created lists the files written by this call, in order.
	Created []string
}

// EnsureServer makes sure dir (DATA/certs) holds a CA, a server certificate
// covering the default names plus hostnames, and an admin client
// certificate registered as ClusterAdmin. Files that exist are reused, never
// overwritten: a server certificate that does not cover a requested host
// name, or has expired, is reported with what to do.
func EnsureServer(dir string, hostnames []string) (*Set, error) {
	return ensure(dir, hostnames, true)
}

// EnsureClientAuth is EnsureServer without the server certificate, for a
// server that brings its own (--tls-cert): the CA, the admin certificate and
// the registry.
func EnsureClientAuth(dir string) (*Set, error) {
	return ensure(dir, nil, false)
}

func ensure(dir string, hostnames []string, server bool) (*Set, error) {
	f := Layout(dir)
	s := &Set{Files: f}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the certificate folder %s: %w", dir, err)
	}

	// The CA.
	caState, err := pairState(f.CA, f.CAKey)
	if err != nil {
		return nil, err
	}
	switch caState {
	case stateBoth:
		ca, err := LoadPair(f.CA, f.CAKey)
		if err != nil {
			return nil, err
		}
		if !ca.Cert.IsCA {
			return nil, fmt.Errorf("%s is not a certificate authority. Restore the CA that magpie made, or remove the certificate folder %s to start over (every client certificate must then be issued again)", f.CA, dir)
		}
		s.CA = ca
	case stateNone:
		for _, p := range []string{f.Server, f.ServerKey, f.Admin, f.AdminKey, f.AdminPFX} {
			if exists(p) {
				return nil, fmt.Errorf("%s exists but the CA that signed it (%s) does not. Restore ca.pem and ca-key.pem, or remove the certificate folder %s to start over (every client certificate must then be issued again)", p, f.CA, dir)
			}
		}
		ca, err := NewCA("magpie CA " + time.Now().UTC().Format("2006-01-02"))
		if err != nil {
			return nil, err
		}
		if err := s.write(f.CAKey, ca.KeyPEM(), 0o600); err != nil {
			return nil, err
		}
		if err := s.write(f.CA, ca.CertPEM(), 0o644); err != nil {
			return nil, err
		}
		s.CA = ca
	default:
		return nil, halfPair(f.CA, f.CAKey, caState)
	}
	if time.Now().After(s.CA.Cert.NotAfter) {
		return nil, fmt.Errorf("the certificate authority %s expired on %s. Remove the certificate folder %s to start over; every client certificate must then be issued again", f.CA, s.CA.Cert.NotAfter.UTC().Format(time.DateOnly), dir)
	}

	// The server certificate.
	if server {
		st, err := pairState(f.Server, f.ServerKey)
		if err != nil {
			return nil, err
		}
		switch st {
		case stateBoth:
			p, err := LoadPair(f.Server, f.ServerKey)
			if err != nil {
				return nil, err
			}
			if err := checkServer(p, s.CA, hostnames, f); err != nil {
				return nil, err
			}
			s.Server = p
		case stateNone:
			p, err := NewServer(s.CA, hostnames)
			if err != nil {
				return nil, err
			}
			if err := s.write(f.ServerKey, p.KeyPEM(), 0o600); err != nil {
				return nil, err
			}
			if err := s.write(f.Server, p.CertPEM(), 0o644); err != nil {
				return nil, err
			}
			s.Server = p
		default:
			return nil, halfPair(f.Server, f.ServerKey, st)
		}
	}

	reg, err := OpenRegistry(f.RegistryFile)
	if err != nil {
		return nil, err
	}
	s.Registry = reg

	// The admin certificate.
	st, err := pairState(f.Admin, f.AdminKey)
	if err != nil {
		return nil, err
	}
	switch st {
	case stateBoth:
		cert, err := readCert(f.Admin)
		if err != nil {
			return nil, err
		}
		s.Admin = cert
		if !exists(f.AdminPFX) {
			p, err := LoadPair(f.Admin, f.AdminKey)
			if err != nil {
				return nil, err
			}
			pfx, err := PFX(p, s.CA.Cert, "")
			if err != nil {
				return nil, err
			}
			if err := s.write(f.AdminPFX, pfx, 0o600); err != nil {
				return nil, err
			}
		}
	case stateNone:
		if exists(f.AdminPFX) {
			return nil, halfPair(f.Admin, f.AdminKey, st)
		}
		p, err := Issue(s.CA, AdminName, AdminValidity)
		if err != nil {
			return nil, err
		}
		pfx, err := PFX(p, s.CA.Cert, "")
		if err != nil {
			return nil, err
		}
		// Registered first: a crash after this leaves a registered
		// certificate whose files were never written (harmless); the
		// other order could leave an admin.pem nobody accepts.
		if err := reg.Put(EntryFor(p.Cert, AdminName, ClusterAdmin, nil)); err != nil {
			return nil, err
		}
		if err := s.write(f.AdminKey, p.KeyPEM(), 0o600); err != nil {
			return nil, err
		}
		if err := s.write(f.Admin, p.CertPEM(), 0o644); err != nil {
			return nil, err
		}
		if err := s.write(f.AdminPFX, pfx, 0o600); err != nil {
			return nil, err
		}
		s.Admin = p.Cert
	default:
		return nil, halfPair(f.Admin, f.AdminKey, st)
	}
	return s, nil
}

func (s *Set) write(path string, data []byte, perm fs.FileMode) error {
	if err := WriteNew(path, data, perm); err != nil {
		return err
	}
	s.Created = append(s.Created, path)
	return nil
}

// checkServer makes sure an existing server certificate is ours, current,
// and covers every requested host.
func checkServer(p *Pair, ca *Pair, hostnames []string, f Files) error {
	redo := fmt.Sprintf("Remove %s and %s: magpie serve then issues a new server certificate from the same CA, which clients already trust", f.Server, f.ServerKey)
	if err := p.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("the server certificate %s was not issued by the CA in %s. %s", f.Server, f.CA, redo)
	}
	if time.Now().After(p.Cert.NotAfter) {
		return fmt.Errorf("the server certificate %s expired on %s. %s", f.Server, p.Cert.NotAfter.UTC().Format(time.DateOnly), redo)
	}
	dns, ips, err := SplitHosts(hostnames)
	if err != nil {
		return err
	}
	var missing []string
	for _, h := range dns {
		if p.Cert.VerifyHostname(h) != nil {
			missing = append(missing, h)
		}
	}
	for _, ip := range ips {
		if p.Cert.VerifyHostname(ip.String()) != nil {
			missing = append(missing, ip.String())
		}
	}
	if len(missing) > 0 {
		var has []string
		has = append(has, p.Cert.DNSNames...)
		for _, ip := range p.Cert.IPAddresses {
			has = append(has, ip.String())
		}
		return fmt.Errorf("the server certificate %s does not cover %s (it covers %s). %s",
			f.Server, strings.Join(missing, ", "), strings.Join(has, ", "), redo)
	}
	return nil
}

type state int

const (
	stateNone state = iota
	stateCertOnly
	stateKeyOnly
	stateBoth
)

func pairState(cert, key string) (state, error) {
	c, k := exists(cert), exists(key)
	for _, p := range []string{cert, key} {
		if _, err := os.Stat(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("cannot read %s: %w", p, err)
		}
	}
	switch {
	case c && k:
		return stateBoth, nil
	case c:
		return stateCertOnly, nil
	case k:
		return stateKeyOnly, nil
	}
	return stateNone, nil
}

func halfPair(cert, key string, st state) error {
	have, missing := cert, key
	if st == stateKeyOnly {
		have, missing = key, cert
	}
	return fmt.Errorf("%s exists but %s does not. Restore the missing file, or remove both so that magpie makes a new pair", have, missing)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// LoadPair reads a PEM certificate and its RSA key.
func LoadPair(certPath, keyPath string) (*Pair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", keyPath, err)
	}
	cert, key, err := ParsePEMPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s / %s: %w", certPath, keyPath, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key in %s is not an RSA key; magpie's certificates use RSA", keyPath)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&rk.PublicKey) {
		return nil, fmt.Errorf("the key in %s does not belong to the certificate in %s", keyPath, certPath)
	}
	return &Pair{Cert: cert, Key: rk}, nil
}

func readCert(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	c, err := ParseCertPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ReadCertPool reads every certificate in a PEM file into a pool.
func ReadCertPool(path string) (*x509.CertPool, []*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	certs, err := ParseCertsPEM(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, certs, nil
}

// WriteNew writes data to path with mode perm, atomically and never over
// an existing file: the data goes to a temporary file in the same folder,
// is synced, and is then linked into place, which fails when path exists.
func WriteNew(path string, data []byte, perm fs.FileMode) error {
	if exists(path) {
		return fmt.Errorf("%s already exists; magpie never overwrites a certificate or key. Move it away or choose another place", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; magpie never overwrites a certificate or key. Move it away or choose another place", path)
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return atomicfile.SyncDir(dir)
}
