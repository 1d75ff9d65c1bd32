package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/magpiedb/magpie/internal/store"
)

// GET /databases/{db}/stats
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	st, err := db.Stats()
	if err != nil {
		s.storeError(w, err)
		return
	}
	var cv any
	if st.LastDocEtag > 0 {
		cv = "A:" + strconv.FormatUint(st.LastDocEtag, 10) + "-" + st.DatabaseID
	}
	// RavenDB's DatabaseStatistics field names; what magpie does not have
	// (revisions, conflicts, counters, time series) counts zero.
	writeJSON(w, http.StatusOK, map[string]any{
		"DatabaseName":                             st.DatabaseName,
		"DatabaseId":                               st.DatabaseID,
		"IsEncrypted":                              st.Encrypted,
		"CountOfDocuments":                         st.CountOfDocuments,
		"CountOfTombstones":                        st.CountOfTombstones,
		"CountOfAttachments":                       st.CountOfAttachments,
		"CountOfUniqueAttachments":                 st.CountOfUniqueAttachments,
		"CountOfIndexes":                           st.CountOfIndexes,
		"CountOfRevisionDocuments":                 0,
		"CountOfConflicts":                         0,
		"CountOfDocumentsConflicts":                0,
		"CountOfCounterEntries":                    0,
		"CountOfTimeSeriesSegments":                0,
		"CountOfTimeSeriesDeletedRanges":           0,
		"LastDocEtag":                              st.LastDocEtag,
		"LastDatabaseEtag":                         st.LastDocEtag,
		"DatabaseChangeVector":                     cv,
		"Is64Bit":                                  true,
		"Pager":                                    "magpie/pebble",
		"LastIndexingTime":                         nil,
		"Indexes":                                  []any{},
		"NumberOfTransactionMergerQueueOperations": 0,
		"Collections":                              st.Collections,
	})
}

// docIDs reads the id query values. RavenDB clients send "?&id=a&id=b".
func docIDs(r *http.Request) []string {
	return r.URL.Query()["id"]
}

// GET /databases/{db}/docs?id=...&id=...&include=path
//
// One missing id answers 404 with no body, which the client reads as null;
// with several ids a missing document is a null in Results. Without ids the
// documents are listed in etag order, paged by start and pageSize.
func (s *Server) handleGetDocs(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	ids := docIDs(r)
	if len(ids) == 0 {
		s.listDocs(w, r, db)
		return
	}
	s.loadDocs(w, r, db, ids, r.URL.Query()["include"])
}

// HEAD /databases/{db}/docs?id=ID: whether a document exists, and its
// change vector in the ETag (304 when If-None-Match still matches).
func (s *Server) handleHeadDoc(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	id := r.URL.Query().Get("id")
	if err := store.ValidateID(id); err != nil {
		s.storeError(w, err)
		return
	}
	d, err := db.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w)
		return
	} else if err != nil {
		s.storeError(w, err)
		return
	}
	w.Header().Set("ETag", `"`+d.ChangeVector+`"`)
	if strings.Trim(r.Header.Get("If-None-Match"), `"`) == d.ChangeVector {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// POST /databases/{db}/docs  body: {"Ids":[...]}: the client's form of a
// load whose ids would make the URL too long.
func (s *Server) handlePostDocs(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	var req struct {
		Ids []string `json:"Ids"`
	}
	if !readJSON(w, r, s.cfg.MaxBodyBytes, &req) {
		return
	}
	if len(req.Ids) == 0 {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The request body has no Ids.")
		return
	}
	s.loadDocs(w, r, db, req.Ids, r.URL.Query()["include"])
}

func (s *Server) loadDocs(w http.ResponseWriter, r *http.Request, db *store.DB, ids, includes []string) {
	for _, id := range ids {
		if err := store.ValidateID(id); err != nil {
			s.storeError(w, err)
			return
		}
	}
	results := make([]json.RawMessage, len(ids))
	missing := 0
	for i, id := range ids {
		d, err := db.Get(id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			results[i] = json.RawMessage("null")
			missing++
		case err != nil:
			s.storeError(w, err)
			return
		default:
			results[i] = d.Body
		}
	}
	if len(ids) == 1 && missing == 1 {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	included, err := s.includes(db, results, includes)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Results": results, "Includes": included})
}

// includes loads the documents that the include paths of the loaded
// documents name (a top-level or dotted property holding an id or an array
// of ids), keyed by id; ids that name no document map to null.
func (s *Server) includes(db *store.DB, docs []json.RawMessage, paths []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if len(paths) == 0 {
		return out, nil
	}
	seen := map[string]bool{}
	for _, raw := range docs {
		if string(raw) == "null" {
			continue
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			continue
		}
		for _, p := range paths {
			for _, id := range valuesAt(doc, strings.Split(p, ".")) {
				if seen[store.LowerID(id)] || store.ValidateID(id) != nil {
					continue
				}
				seen[store.LowerID(id)] = true
				d, err := db.Get(id)
				switch {
				case errors.Is(err, store.ErrNotFound):
					out[id] = json.RawMessage("null")
				case err != nil:
					return nil, err
				default:
					out[id] = d.Body
				}
			}
		}
	}
	return out, nil
}

// valuesAt collects the strings found at a property path, looking through
// arrays on the way.
func valuesAt(v any, path []string) []string {
	switch t := v.(type) {
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, valuesAt(e, path)...)
		}
		return out
	case map[string]any:
		if len(path) == 0 {
			return nil
		}
		return valuesAt(t[strings.TrimSuffix(path[0], "[]")], path[1:])
	case string:
		if len(path) == 0 {
			return []string{t}
		}
	}
	return nil
}

// errStopWalk ends a listing walk early.
var errStopWalk = errors.New("stop")

// listDocs answers GET /docs without ids: documents in etag order.
func (s *Server) listDocs(w http.ResponseWriter, r *http.Request, db *store.DB) {
	q := r.URL.Query()
	if q.Get("startsWith") != "" {
		writeNotSupported(w, "Loading documents by ID prefix (startsWith)")
		return
	}
	start := queryInt(r, "start", 0)
	pageSize := queryInt(r, "pageSize", 1024)
	results := []json.RawMessage{}
	seen := 0
	_, err := db.Walk(0, store.Walker{Document: func(d *store.Document) error {
		if len(results) >= pageSize {
			return errStopWalk
		}
		if seen >= start {
			results = append(results, append(json.RawMessage(nil), d.Body...))
		}
		seen++
		return nil
	}})
	if err != nil && !errors.Is(err, errStopWalk) {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Results": results, "Includes": map[string]any{}})
}

// checkNewID refuses IDs that ask RavenDB to generate the rest (a trailing
// '/' or '|'), which magpie does not do: stored as given they would not be
// what the client meant.
func checkNewID(id string) error {
	if err := store.ValidateID(id); err != nil {
		return err
	}
	if strings.HasSuffix(id, "/") || strings.HasSuffix(id, "|") {
		return errServerIDs
	}
	return nil
}

var errServerIDs = errors.New("Server-side ID generation (an ID ending in '/' or '|')")

// ifMatch reads the expected change vector of an optimistic-concurrency
// write from the If-Match header: nil when the header is absent, "" when
// the document must not exist.
func ifMatch(r *http.Request) *string {
	v, ok := r.Header["If-Match"]
	if !ok || len(v) == 0 {
		return nil
	}
	cv := strings.Trim(v[0], `"`)
	return &cv
}

// concurrencyError is RavenDB's optimistic-concurrency failure.
func concurrencyError(id, actual string, expected string) string {
	if actual == "" {
		return fmt.Sprintf("Document %s does not exist, but the write expected change vector %s. Optimistic concurrency violation, transaction will be aborted.", id, expected)
	}
	if expected == "" {
		return fmt.Sprintf("Document %s exists (change vector %s), but the write expected it not to exist. Optimistic concurrency violation, transaction will be aborted.", id, actual)
	}
	return fmt.Sprintf("Document %s has change vector %s, but the write expected change vector %s. Optimistic concurrency violation, transaction will be aborted.", id, actual, expected)
}

// currentCV is a document's change vector, or "" when it does not exist.
func currentCV(db *store.DB, id string) (string, error) {
	d, err := db.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return d.ChangeVector, nil
}

// readBody reads a whole request body up to max, answering 413 past it.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, tooLargeMessage(max))
		} else {
			writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot read the request body: "+err.Error())
		}
		return nil, false
	}
	return raw, true
}

// PUT /databases/{db}/docs?id=ID  body: the document
func (s *Server) handlePutDoc(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessWrite)
	if !ok {
		return
	}
	id := r.URL.Query().Get("id")
	if err := checkNewID(id); err != nil {
		s.idError(w, err)
		return
	}
	body, ok := readBody(w, r, min(s.cfg.MaxBodyBytes, store.MaxDocumentBytes))
	if !ok {
		return
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || !json.Valid(trimmed) || trimmed[0] != '{' {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The document body is not a JSON object.")
		return
	}
	if want := ifMatch(r); want != nil {
		cur, err := currentCV(db, id)
		if err != nil {
			s.storeError(w, err)
			return
		}
		if cur != *want {
			writeError(w, http.StatusConflict, typeConcurrency, concurrencyError(id, cur, *want))
			return
		}
	}
	d, err := db.Put(id, body)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"Id": d.ID, "ChangeVector": d.ChangeVector})
}

// idError answers for an ID that checkNewID refused.
func (s *Server) idError(w http.ResponseWriter, err error) {
	if errors.Is(err, errServerIDs) {
		writeNotSupported(w, err.Error()+"; give the complete ID")
		return
	}
	s.storeError(w, err)
}

// DELETE /databases/{db}/docs?id=ID
//
// Deleting a document that does not exist is not an error, as in RavenDB.
func (s *Server) handleDeleteDoc(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessWrite)
	if !ok {
		return
	}
	id := r.URL.Query().Get("id")
	if err := store.ValidateID(id); err != nil {
		s.storeError(w, err)
		return
	}
	if want := ifMatch(r); want != nil {
		cur, err := currentCV(db, id)
		if err != nil {
			s.storeError(w, err)
			return
		}
		if cur != *want {
			writeError(w, http.StatusConflict, typeConcurrency, concurrencyError(id, cur, *want))
			return
		}
	}
	deleted := true
	if err := db.Delete(id); errors.Is(err, store.ErrNotFound) {
		deleted = false
	} else if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Id": id, "Deleted": deleted})
}
