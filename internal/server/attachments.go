package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/magpiedb/magpie/internal/store"
)

// GET (and HEAD) /databases/{db}/attachments?id=ID&name=NAME
//
// The body is the content; the headers carry what the client reports as
// the attachment's details. A missing document or attachment is a 404
// with no body, which the client reads as null.
func (s *Server) handleGetAttachment(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	q := r.URL.Query()
	id, name := q.Get("id"), q.Get("name")
	if err := store.ValidateID(id); err != nil {
		s.storeError(w, err)
		return
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The query parameter 'name' (the attachment name) is missing.")
		return
	}
	doc, err := db.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w)
		return
	} else if err != nil {
		s.storeError(w, err)
		return
	}
	att, err := db.GetAttachment(id, name)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w)
		return
	} else if err != nil {
		s.storeError(w, err)
		return
	}
	defer att.Close()
	h := w.Header()
	if att.Ref.ContentType != "" {
		h.Set("Content-Type", att.Ref.ContentType)
	} else {
		// No Content-Type at all rather than one net/http would sniff.
		h["Content-Type"] = nil
	}
	h.Set("Content-Length", strconv.FormatInt(att.Ref.Size, 10))
	h.Set("ETag", `"`+doc.ChangeVector+`"`)
	h.Set("Attachment-Hash", att.Ref.Hash)
	h.Set("Attachment-Size", strconv.FormatInt(att.Ref.Size, 10))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, att); err != nil {
		// The status is out; cutting the connection is the only way left
		// to tell the client the content is incomplete.
		s.log.Error("attachment read failed", "db", db.Name(), "err", err)
		panic(http.ErrAbortHandler)
	}
}

// notFound is the empty 404 that RavenDB clients read as null.
func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNotFound)
}

// PUT /databases/{db}/attachments?id=ID&name=NAME&contentType=TYPE
// body: the content, streamed into the store.
func (s *Server) handlePutAttachment(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessWrite)
	if !ok {
		return
	}
	q := r.URL.Query()
	id, name, contentType := q.Get("id"), q.Get("name"), q.Get("contentType")
	if err := store.ValidateID(id); err != nil {
		s.storeError(w, err)
		return
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, typeBadRequest, "The query parameter 'name' (the attachment name) is missing.")
		return
	}
	if _, err := db.Get(id); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusBadRequest, typeDocumentMissing, fmt.Sprintf("Cannot put attachment %q on document %s: the document does not exist.", name, id))
		return
	} else if err != nil {
		s.storeError(w, err)
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	ref, err := db.PutAttachment(id, name, contentType, body)
	if err != nil {
		s.attachmentError(w, err, s.cfg.MaxBodyBytes)
		return
	}
	doc, err := db.Get(id)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"ChangeVector": doc.ChangeVector,
		"Name":         ref.Name,
		"DocumentId":   doc.ID,
		"ContentType":  ref.ContentType,
		"Hash":         ref.Hash,
		"Size":         ref.Size,
	})
}

// attachmentError answers for a failed PutAttachment: past the body limit
// it is a 413 with the limit, not the store's wrapped reader error.
func (s *Server) attachmentError(w http.ResponseWriter, err error, limit int64) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, tooLargeMessage(limit))
		return
	}
	s.storeError(w, err)
}
