// Package server serves magpie over HTTPS with the RavenDB wire protocol
// (the subset DESIGN.md section 5 lists), so the official RavenDB clients
// work against it. Every route checks the caller's client certificate
// against the registry and its clearance (section 6).
package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"

	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// NodeTag is this server's tag in topologies and operation results: a
// single-node cluster, as RavenDB names its first node.
const NodeTag = "A"

// Config configures a Server.
type Config struct {
	// Unsecured serves plain HTTP and refuses encrypted databases.
	Unsecured bool
	// MaxBodyBytes bounds request bodies (413 past it); 0 means 256 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Auth decides who the caller is. Nil means everyone is a cluster
	// admin, which only the unsecured (loopback) mode and tests use.
	Auth Authenticator
	// BackupConcurrency caps the goroutines that compress a logical
	// backup (backup.Options.Concurrency); 0 means no cap.
	BackupConcurrency int
}

// Identity is an authenticated caller.
type Identity struct {
	Name       string
	Thumbprint string
	// Clearance is ClusterAdmin, Operator or ValidUser.
	Clearance string
	// Permissions maps database names (lower case) to Admin, ReadWrite or Read.
	Permissions map[string]string
}

// Authenticator identifies the caller of a request, or refuses it with a
// readable reason.
type Authenticator interface {
	Authenticate(r *http.Request) (*Identity, error)
}

// Server is the HTTP side of magpie.
type Server struct {
	cfg  Config
	data *store.DataDir
	mux  *http.ServeMux
	log  *slog.Logger

	mu sync.Mutex
	// dbs holds open databases by lower-case name.
	dbs map[string]*store.DB
	// secrets holds keys put with POST /admin/secrets, by lower-case
	// database name, until the encrypted database is created. Never
	// logged.
	secrets map[string]keys.Key
}

// New returns a server over an open data dir.
func New(cfg Config, data *store.DataDir) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 256 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, data: data, mux: http.NewServeMux(), log: cfg.Logger, dbs: map[string]*store.DB{}, secrets: map[string]keys.Key{}}
	s.routes()
	return s
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// writeJSON answers with status and v as JSON. RavenDB clients treat an
// empty 2xx body as a failure, so every answer has a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Documents go out as the bytes that were stored: no escaping of
	// <, >, & and U+2028/2029 behind the client's back.
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// Access is what a route needs from the caller.
type Access int

const (
	// AccessRead reads a database.
	AccessRead Access = iota
	// AccessWrite writes a database.
	AccessWrite
	// AccessDatabaseAdmin administers a database (its backups, say).
	AccessDatabaseAdmin
	// AccessOperator is server-wide administration short of certificates
	// (creating, restoring and deleting databases, secrets).
	AccessOperator
	// AccessClusterAdmin manages certificates.
	AccessClusterAdmin
)

// routes registers every route. coreRoutes (cluster, databases, documents,
// attachments, statistics) and backupRoutes (backups, restore,
// operations) live in their own files.
func (s *Server) routes() {
	s.coreRoutes()
	s.backupRoutes()
}

// allow checks that the caller may do what a route needs on database db
// ("" for server-wide routes) and answers 403 with a RavenDB-shaped error
// when not. Routes call it first.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, need Access, db string) (*Identity, bool) {
	if s.cfg.Auth == nil {
		return &Identity{Name: "local", Clearance: "ClusterAdmin"}, true
	}
	id, err := s.cfg.Auth.Authenticate(r)
	if err != nil {
		writeError(w, http.StatusForbidden, "InvalidAuth", err.Error())
		return nil, false
	}
	if why := id.denies(need, db); why != "" {
		writeError(w, http.StatusForbidden, "AuthorizationException", why)
		return nil, false
	}
	return id, true
}

// denies says why id may not do need on db, or "" when it may.
func (id *Identity) denies(need Access, db string) string {
	switch id.Clearance {
	case "ClusterAdmin":
		return ""
	case "Operator":
		if need == AccessClusterAdmin {
			return "certificate " + id.Name + " has clearance Operator; managing certificates needs ClusterAdmin. Use a ClusterAdmin certificate."
		}
		return ""
	}
	if need >= AccessOperator {
		return "certificate " + id.Name + " has clearance " + id.Clearance + "; this operation needs Operator or ClusterAdmin. Use an administrator's certificate."
	}
	perm := id.Permissions[lower(db)]
	if db == "" || perm == "" {
		if db == "" {
			return ""
		}
		return "certificate " + id.Name + " has no access to database " + db + ". Ask an administrator to grant it (magpie certs create --db " + db + ":ReadWrite)."
	}
	switch {
	case need == AccessRead:
		return ""
	case need == AccessWrite && (perm == "ReadWrite" || perm == "Admin"):
		return ""
	case need == AccessDatabaseAdmin && perm == "Admin":
		return ""
	}
	return "certificate " + id.Name + " has " + perm + " access to database " + db + ", which does not allow this operation. Use a certificate with more access."
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
