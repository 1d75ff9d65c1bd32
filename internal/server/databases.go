package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// raftIndex stands in for RavenDB's Raft command index, which clients read
// from database and task changes but never interpret: it only has to grow.
var raftIndex atomic.Int64

func nextRaftIndex() int64 { return raftIndex.Add(1) }

// openDB returns the open database called name (in any letter case),
// opening it on first use. The data dir allows one handle per database, so
// handles stay open and are shared until closeDB or Close. On an unsecured
// server an encrypted database is refused before it is opened (DESIGN
// rule 6).
func (s *Server) openDB(name string) (*store.DB, error) {
	if err := store.ValidateDatabaseName(name); err != nil {
		return nil, err
	}
	key := lower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if db, ok := s.dbs[key]; ok {
		return db, nil
	}
	if s.cfg.Unsecured {
		info, err := s.lookupInfo(name)
		if err != nil {
			return nil, err
		}
		if info.Encrypted {
			return nil, &errEncryptedUnsecured{name: info.Name}
		}
	}
	db, err := s.data.OpenDatabase(name)
	if err != nil {
		return nil, err
	}
	s.dbs[key] = db
	return db, nil
}

// closeDB closes the open handle of database name, if any, and forgets it;
// call it before deleting or replacing the database's files.
func (s *Server) closeDB(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked(name)
}

func (s *Server) closeLocked(name string) error {
	key := lower(name)
	db, ok := s.dbs[key]
	if !ok {
		return nil
	}
	delete(s.dbs, key)
	return db.Close()
}

// Close closes every open database.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for key, db := range s.dbs {
		if err := db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("database %q: %w", db.Name(), err))
		}
		delete(s.dbs, key)
	}
	return errors.Join(errs...)
}

// lookupInfo finds a database's description by name, in any letter case.
// The error wraps store.ErrNotFound when there is none.
func (s *Server) lookupInfo(name string) (store.Info, error) {
	infos, err := s.data.Databases()
	if err != nil {
		return store.Info{}, err
	}
	for _, in := range infos {
		if strings.EqualFold(in.Name, name) {
			return in, nil
		}
	}
	return store.Info{}, fmt.Errorf("database %q does not exist: %w", name, store.ErrNotFound)
}

// database resolves the {db} path value of a database route: it checks the
// caller's access, opens the database and, on failure, answers (403, 400
// for a malformed name, 503 with Database-Missing for an unknown database,
// as RavenDB does) and returns false.
func (s *Server) database(w http.ResponseWriter, r *http.Request, need Access) (*store.DB, bool) {
	name := r.PathValue("db")
	if _, ok := s.allow(w, r, need, name); !ok {
		return nil, false
	}
	db, err := s.openDB(name)
	if err != nil {
		s.databaseError(w, name, err)
		return nil, false
	}
	return db, true
}

// databaseError answers for a failure to open database name.
func (s *Server) databaseError(w http.ResponseWriter, name string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeDatabaseMissing(w, name)
		return
	}
	s.storeError(w, err)
}

// writeDatabaseMissing is RavenDB's answer for an unknown database: 503
// with the Database-Missing header, which the client turns into a
// DatabaseDoesNotExistException (and which makes it fetch the topology
// again once the database exists).
func writeDatabaseMissing(w http.ResponseWriter, name string) {
	w.Header().Set("Database-Missing", name)
	writeError(w, http.StatusServiceUnavailable, typeDatabaseMissing, fmt.Sprintf("Database '%s' wasn't found", name))
}

// nodeURL is this node's URL as the client sees it: RavenDB echoes the
// scheme and host the client used, so the topology stays reachable through
// whatever name or address the client connected to.
func nodeURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// topologyID names this single-node cluster; it is stable for a data dir.
func (s *Server) topologyID() string {
	sum := sha256.Sum256([]byte("magpie topology " + s.data.Path()))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// GET /cluster/topology
func (s *Server) handleClusterTopology(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessRead, ""); !ok {
		return
	}
	url := nodeURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"Topology": map[string]any{
			"TopologyId":  s.topologyID(),
			"AllNodes":    map[string]string{NodeTag: url},
			"Members":     map[string]string{NodeTag: url},
			"Promotables": map[string]string{},
			"Watchers":    map[string]string{},
			"LastNodeId":  NodeTag,
			"Etag":        1,
		},
		"Etag":               1,
		"Leader":             NodeTag,
		"LeaderShipDuration": 0,
		"CurrentState":       "Leader",
		"NodeTag":            NodeTag,
		"CurrentTerm":        1,
		"Status":             map[string]any{},
	})
}

// GET /cluster/node-info
func (s *Server) handleNodeInfo(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessRead, ""); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"NodeTag":             NodeTag,
		"TopologyId":          s.topologyID(),
		"Certificate":         nil,
		"ClusterStatus":       "Ok",
		"NumberOfCores":       runtime.NumCPU(),
		"InstalledMemoryInGb": 0,
		"UsableMemoryInGb":    0,
		"OsInfo":              map[string]any{"Type": runtime.GOOS},
		"ServerId":            s.topologyID(),
		"ServerRole":          "Member",
		"HasFixedPort":        true,
		"ServerSchemaVersion": 0,
	})
}

// GET /topology?name=DB
func (s *Server) handleTopology(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The query parameter 'name' (the database name) is missing.")
		return
	}
	if _, ok := s.allow(w, r, AccessRead, name); !ok {
		return
	}
	db, err := s.openDB(name)
	if err != nil {
		s.databaseError(w, name, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Nodes": []map[string]any{{
			"Url":        nodeURL(r),
			"ClusterTag": NodeTag,
			"ServerRole": "Member",
			"Database":   db.Name(),
		}},
		"Promotables": []any{},
		"Etag":        1,
	})
}

// queryInt reads a non-negative integer query value; anything else
// (including the client's literal "undefined") gives def.
func queryInt(r *http.Request, name string, def int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v < 0 {
		return def
	}
	return v
}

// GET /databases[?namesOnly=true&start=&pageSize=]
func (s *Server) handleListDatabases(w http.ResponseWriter, r *http.Request) {
	id, ok := s.allow(w, r, AccessRead, "")
	if !ok {
		return
	}
	infos, err := s.data.Databases()
	if err != nil {
		s.storeError(w, err)
		return
	}
	// A certificate without server-wide clearance sees only the databases
	// it was granted.
	visible := infos[:0]
	for _, in := range infos {
		if id.Clearance == "ClusterAdmin" || id.Clearance == "Operator" || id.Permissions[lower(in.Name)] != "" {
			visible = append(visible, in)
		}
	}
	start := queryInt(r, "start", 0)
	pageSize := queryInt(r, "pageSize", len(visible))
	if start > len(visible) {
		start = len(visible)
	}
	end := len(visible)
	if pageSize < end-start {
		end = start + pageSize
	}
	page := visible[start:end]
	if strings.EqualFold(r.URL.Query().Get("namesOnly"), "true") {
		names := make([]string, len(page))
		for i, in := range page {
			names[i] = in.Name
		}
		writeJSON(w, http.StatusOK, map[string]any{"Databases": names})
		return
	}
	url := nodeURL(r)
	list := make([]map[string]any, len(page))
	for i, in := range page {
		list[i] = map[string]any{
			"Name":        in.Name,
			"Disabled":    false,
			"IsAdmin":     id.Clearance == "ClusterAdmin" || id.Clearance == "Operator" || id.Permissions[lower(in.Name)] == "Admin",
			"IsEncrypted": in.Encrypted,
			"IsSharded":   false,
			"Created":     in.Created.UTC().Format(store.TimeLayout),
			"LoadError":   nil,
			"NodesTopology": map[string]any{
				"Members":     []map[string]any{{"NodeTag": NodeTag, "NodeUrl": url, "ResponsibleNode": NodeTag}},
				"Promotables": []any{},
				"Rehabs":      []any{},
				"Status":      map[string]any{},
			},
			"DeletionInProgress": map[string]any{},
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"Databases": list})
}

// databaseRecord is the part of RavenDB's DatabaseRecord magpie reads;
// everything else a client may send (Settings, Topology, ...) is ignored.
type databaseRecord struct {
	DatabaseName string `json:"DatabaseName"`
	Encrypted    bool   `json:"Encrypted"`
	Disabled     bool   `json:"Disabled"`
}

// PUT /admin/databases?name=DB  body: DatabaseRecord
func (s *Server) handleCreateDatabase(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	var rec databaseRecord
	if !readJSON(w, r, min(s.cfg.MaxBodyBytes, 1<<20), &rec) {
		return
	}
	name := rec.DatabaseName
	if q := r.URL.Query().Get("name"); q != "" {
		if name == "" {
			name = q
		} else if !strings.EqualFold(q, name) {
			writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf("The query names database %q but the database record names %q; give one name.", q, name))
			return
		}
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The database record has no DatabaseName.")
		return
	}
	if err := store.ValidateDatabaseName(name); err != nil {
		s.storeError(w, err)
		return
	}
	if rec.Disabled {
		writeNotSupported(w, "Creating a disabled database")
		return
	}
	opts := store.CreateOptions{Encrypted: rec.Encrypted}
	if rec.Encrypted {
		if s.cfg.Unsecured {
			writeError(w, http.StatusBadRequest, typeEncryptionDenied, unsecuredCreateMessage(name))
			return
		}
		s.mu.Lock()
		k, ok := s.secrets[lower(name)]
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusBadRequest, typeEncryptionDenied, fmt.Sprintf(
				"Cannot create encrypted database %q: no secret key was put for it. Generate one (GET /admin/secrets/generate, or `magpie secrets generate`), keep it safe, and put it with POST /admin/secrets?name=%s first.", name, name))
			return
		}
		opts.Key = &k
	}
	if _, err := s.data.CreateDatabase(name, opts); err != nil {
		if errors.Is(err, store.ErrExists) {
			writeError(w, http.StatusConflict, typeConcurrency, fmt.Sprintf("Database '%s' already exists!", name))
			return
		}
		s.storeError(w, err)
		return
	}
	if rec.Encrypted {
		// The key now lives sealed in the database record; the server
		// forgets its copy.
		s.mu.Lock()
		delete(s.secrets, lower(name))
		s.mu.Unlock()
	}
	s.log.Info("database created", "db", name, "encrypted", rec.Encrypted)
	writeJSON(w, http.StatusCreated, map[string]any{
		"RaftCommandIndex": nextRaftIndex(),
		"Name":             name,
		"Topology": map[string]any{
			"Members":           []string{NodeTag},
			"Promotables":       []string{},
			"Rehabs":            []string{},
			"ReplicationFactor": 1,
		},
		"NodesAddedTo": []string{nodeURL(r)},
	})
}

// deleteRequest is DeleteDatabasesOperation's body.
type deleteRequest struct {
	DatabaseNames []string `json:"DatabaseNames"`
	HardDelete    bool     `json:"HardDelete"`
	FromNodes     []string `json:"FromNodes"`
}

// DELETE /admin/databases  body: {DatabaseNames, HardDelete, FromNodes, ...}
//
// A database is always removed with its files: magpie has no detached
// databases to keep them for, so HardDelete false deletes as well.
func (s *Server) handleDeleteDatabases(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	var req deleteRequest
	if !readJSON(w, r, min(s.cfg.MaxBodyBytes, 1<<20), &req) {
		return
	}
	if len(req.DatabaseNames) == 0 {
		writeError(w, http.StatusBadRequest, typeBadRequest, "DatabaseNames is empty: name the databases to delete.")
		return
	}
	for _, n := range req.FromNodes {
		if n != NodeTag {
			writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf("Node %q is not part of this cluster; magpie is the single node %q.", n, NodeTag))
			return
		}
	}
	// Check every name before deleting any.
	for _, name := range req.DatabaseNames {
		if err := store.ValidateDatabaseName(name); err != nil {
			s.storeError(w, err)
			return
		}
		if _, err := s.lookupInfo(name); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeError(w, http.StatusBadRequest, typeDatabaseMissing, fmt.Sprintf("Database '%s' does not exist; nothing was deleted.", name))
				return
			}
			s.storeError(w, err)
			return
		}
	}
	for _, name := range req.DatabaseNames {
		if err := s.dropDatabase(name); err != nil {
			s.storeError(w, err)
			return
		}
		s.log.Info("database deleted", "db", name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"RaftCommandIndex": nextRaftIndex(), "PendingDeletes": []string{}})
}

// dropDatabase cancels a database's running operations, then closes and
// deletes it, holding s.mu so that no request reopens it in between.
func (s *Server) dropDatabase(name string) error {
	// Running backups of the database end first, and its backup tasks go
	// with it (without s.mu: they may need it to finish).
	s.dropBackupState(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closeLocked(name); err != nil {
		s.log.Warn("closing a database before deleting it failed", "db", name, "err", err)
	}
	return s.data.DeleteDatabase(name)
}

// GET /admin/secrets/generate: the base64 text of 32 random bytes.
func (s *Server) handleGenerateSecret(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	k, err := keys.Generate()
	if err != nil {
		s.storeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/base64")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, k.Base64())
}

// maxSecretBody bounds POST /admin/secrets bodies: a key is 44 characters.
const maxSecretBody = 4 << 10

// POST /admin/secrets?name=DB&overwrite=false  body: the base64 key
//
// The key waits in memory (never logged, never written in clear) until
// PUT /admin/databases creates the encrypted database, which seals it.
func (s *Server) handlePutSecret(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The query parameter 'name' (the database the key is for) is missing.")
		return
	}
	if err := store.ValidateDatabaseName(name); err != nil {
		s.storeError(w, err)
		return
	}
	if s.cfg.Unsecured {
		writeError(w, http.StatusBadRequest, typeEncryptionDenied, fmt.Sprintf(
			"Cannot accept a secret key for database %q: this server runs with --unsecured, and keys are accepted only where access is secured (TLS with client certificates). Restart `magpie serve` without --unsecured.", name))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSecretBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, "The request body is too large for a secret key: send only the base64 text of 32 bytes.")
			return
		}
		writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot read the request body.")
		return
	}
	k, err := keys.Parse(string(raw))
	clear(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The secret key is not valid: "+err.Error()+".")
		return
	}
	overwrite := strings.EqualFold(r.URL.Query().Get("overwrite"), "true")
	if _, err := s.lookupInfo(name); err == nil {
		writeError(w, http.StatusConflict, typeConcurrency, fmt.Sprintf("Database %q already exists; its secret key cannot be replaced. A key is put only before an encrypted database is created.", name))
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		s.storeError(w, err)
		return
	}
	s.mu.Lock()
	_, had := s.secrets[lower(name)]
	if had && !overwrite {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, typeConcurrency, fmt.Sprintf("A secret key was already put for database %q. Pass overwrite=true to replace it.", name))
		return
	}
	s.secrets[lower(name)] = k
	s.mu.Unlock()
	s.log.Info("secret key put", "db", name, "fingerprint", k.Fingerprint())
	writeJSON(w, http.StatusCreated, map[string]any{"DatabaseName": name, "KeyFingerprint": k.Fingerprint()})
}
