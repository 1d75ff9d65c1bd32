package certs

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/magpiedb/magpie/internal/atomicfile"
)

// Entry is one registered client certificate.
type Entry struct {
	Name string `json:"Name"`
	// Clearance is ClusterAdmin, Operator or ValidUser.
	Clearance string `json:"Clearance"`
	// Permissions maps database names (as given) to Admin, ReadWrite or
	// Read. Only ValidUser certificates need them.
	Permissions map[string]string `json:"Permissions"`
	NotBefore   time.Time         `json:"NotBefore"`
	NotAfter    time.Time         `json:"NotAfter"`
	// Certificate is the DER certificate in base64 (never a key).
	Certificate string `json:"Certificate"`
}

// EntryFor describes cert for the registry.
func EntryFor(cert *x509.Certificate, name, clearance string, perms map[string]string) Entry {
	if perms == nil {
		perms = map[string]string{}
	}
	return Entry{
		Name:        name,
		Clearance:   clearance,
		Permissions: perms,
		NotBefore:   cert.NotBefore.UTC(),
		NotAfter:    cert.NotAfter.UTC(),
		Certificate: base64.StdEncoding.EncodeToString(cert.Raw),
	}
}

// Registry maps certificate thumbprints to what the certificate may do. It
// is one JSON file (DATA/certs/registry.json, mode 0600), rewritten
// atomically on every change.
type Registry struct {
	path    string
	mu      sync.RWMutex
	entries map[string]Entry
}

type registryFile struct {
	Format       int              `json:"Format"`
	Certificates map[string]Entry `json:"Certificates"`
}

const registryFormat = 1

// OpenRegistry reads the registry at path; a missing file is an empty
// registry (the file is written on the first change).
func OpenRegistry(path string) (*Registry, error) {
	r := &Registry{path: path, entries: map[string]Entry{}}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the certificate registry %s: %w", path, err)
	}
	var f registryFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Format == 0 {
		return nil, fmt.Errorf("the certificate registry %s is damaged. Restore it from a backup, or remove it and register the client certificates again with magpie certs create", path)
	}
	if f.Format > registryFormat {
		return nil, fmt.Errorf("the certificate registry %s has format %d, newer than this magpie understands (%d). Upgrade magpie", path, f.Format, registryFormat)
	}
	for t, e := range f.Certificates {
		if e.Permissions == nil {
			e.Permissions = map[string]string{}
		}
		r.entries[strings.ToUpper(t)] = e
	}
	return r, nil
}

// Path is the registry file.
func (r *Registry) Path() string { return r.path }

// Get returns the entry for a thumbprint.
func (r *Registry) Get(thumbprint string) (Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[strings.ToUpper(thumbprint)]
	return e, ok
}

// Registered is an entry with its thumbprint.
type Registered struct {
	Thumbprint string
	Entry
}

// List returns every entry, sorted by name then thumbprint.
func (r *Registry) List() []Registered {
	r.mu.RLock()
	out := make([]Registered, 0, len(r.entries))
	for t, e := range r.entries {
		out = append(out, Registered{Thumbprint: t, Entry: e})
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Thumbprint < out[j].Thumbprint
	})
	return out
}

// Put registers (or replaces) the entry for the certificate e describes.
func (r *Registry) Put(e Entry) error {
	raw, err := base64.StdEncoding.DecodeString(e.Certificate)
	if err != nil {
		return errors.New("registry entry without a valid certificate")
	}
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		return fmt.Errorf("registry entry without a valid certificate: %w", err)
	}
	if NormalizeClearance(e.Clearance) != e.Clearance {
		return fmt.Errorf("unknown clearance %q", e.Clearance)
	}
	for db, p := range e.Permissions {
		if NormalizePermission(p) != p {
			return fmt.Errorf("unknown permission %q for database %s", p, db)
		}
	}
	t := Thumbprint(cert)
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.entries[t]
	r.entries[t] = e
	if err := r.saveLocked(); err != nil {
		if had {
			r.entries[t] = old
		} else {
			delete(r.entries, t)
		}
		return err
	}
	return nil
}

// Delete removes a thumbprint; it reports whether it was registered.
func (r *Registry) Delete(thumbprint string) (bool, error) {
	t := strings.ToUpper(thumbprint)
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.entries[t]
	if !had {
		return false, nil
	}
	delete(r.entries, t)
	if err := r.saveLocked(); err != nil {
		r.entries[t] = old
		return false, err
	}
	return true, nil
}

func (r *Registry) saveLocked() error {
	raw, err := json.MarshalIndent(registryFile{Format: registryFormat, Certificates: r.entries}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(r.path, append(raw, '\n'), 0o600)
}
