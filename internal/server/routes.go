package server

import (
	"net/http"
)

// coreRoutes registers the cluster, database, document, attachment,
// statistics and smuggler routes, and the catch-all that answers every
// other request with a RavenDB-shaped "not supported" error.
func (s *Server) coreRoutes() {
	m := s.mux
	// Cluster and topology.
	m.HandleFunc("GET /cluster/topology", s.handleClusterTopology)
	m.HandleFunc("GET /cluster/node-info", s.handleNodeInfo)
	m.HandleFunc("GET /topology", s.handleTopology)

	// Databases and their secret keys.
	m.HandleFunc("GET /databases", s.handleListDatabases)
	m.HandleFunc("PUT /admin/databases", s.handleCreateDatabase)
	m.HandleFunc("DELETE /admin/databases", s.handleDeleteDatabases)
	m.HandleFunc("GET /admin/secrets/generate", s.handleGenerateSecret)
	m.HandleFunc("POST /admin/secrets", s.handlePutSecret)

	// One database.
	m.HandleFunc("GET /databases/{db}/stats", s.handleStats)
	m.HandleFunc("GET /databases/{db}/docs", s.handleGetDocs)
	m.HandleFunc("HEAD /databases/{db}/docs", s.handleHeadDoc)
	m.HandleFunc("POST /databases/{db}/docs", s.handlePostDocs)
	m.HandleFunc("PUT /databases/{db}/docs", s.handlePutDoc)
	m.HandleFunc("DELETE /databases/{db}/docs", s.handleDeleteDoc)
	m.HandleFunc("POST /databases/{db}/bulk_docs", s.handleBulkDocs)
	m.HandleFunc("GET /databases/{db}/attachments", s.handleGetAttachment)
	m.HandleFunc("PUT /databases/{db}/attachments", s.handlePutAttachment)
	m.HandleFunc("POST /databases/{db}/smuggler/import", s.handleSmugglerImport)
	m.HandleFunc("POST /databases/{db}/smuggler/export", s.handleSmugglerExport)

	// Client-side ID generation asks these; say what to do instead.
	m.HandleFunc("GET /databases/{db}/hilo/next", s.handleHiLo)
	m.HandleFunc("PUT /databases/{db}/hilo/return", s.handleHiLo)

	m.HandleFunc("/", s.handleUnsupported)
}

// handleUnsupported answers every route magpie does not serve: 501 with
// RavenDB's error shape, so a client throws a readable exception instead
// of failing to parse a page (or waiting for an answer that never comes).
func (s *Server) handleUnsupported(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessRead, ""); !ok {
		return
	}
	writeNotSupported(w, r.Method+" "+r.URL.Path)
}

// handleHiLo answers the HiLo ID generator of RavenDB's clients, which a
// session uses when a document is stored without an ID.
func (s *Server) handleHiLo(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessRead, r.PathValue("db")); !ok {
		return
	}
	writeNotSupportedHint(w, "Client-side ID generation (HiLo, used when a document is stored without an ID)",
		"Give each document its ID when storing it, e.g. session.store(entity, \"users/1\").")
}
