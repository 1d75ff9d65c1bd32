package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
)

// Exception types as RavenDB names them. The Node.js client names the error
// it throws after the last dotted segment of a "Raven.Client.Exceptions."
// type and calls anything else a RavenException; the message it shows is
// the answer's "Error" field (wire notes, section 7).
const (
	typeRaven            = "Raven.Client.Exceptions.RavenException"
	typeBadRequest       = "Raven.Client.Exceptions.BadRequestException"
	typeConcurrency      = "Raven.Client.Exceptions.ConcurrencyException"
	typeDocumentMissing  = "Raven.Client.Exceptions.Documents.DocumentDoesNotExistException"
	typeDatabaseMissing  = "Raven.Client.Exceptions.Database.DatabaseDoesNotExistException"
	typeNotSupported     = "Raven.Client.Exceptions.RavenException"
	typeTooLarge         = "Raven.Client.Exceptions.BadRequestException"
	typeEncryptionDenied = "Raven.Client.Exceptions.Security.SecurityException"
)

// writeError answers with status and a RavenDB-shaped error body. Message
// and Error carry the same sentence: the client reads Error for every
// status but 409, where it reads Message. The body never carries a stack
// trace or key material; callers pass sentences written for an operator.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	h := w.Header()
	// An error is never cacheable, and a stale ETag or a sniffed type
	// would only confuse the client.
	h.Del("ETag")
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
		Error   string `json:"Error"`
	}{typ, msg, msg})
}

// writeNotSupported answers 501 for a feature magpie does not have.
func writeNotSupported(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotImplemented, typeNotSupported, what+" is not supported by magpie.")
}

// writeNotSupportedHint answers 501 with what to do instead.
func writeNotSupportedHint(w http.ResponseWriter, what, hint string) {
	writeError(w, http.StatusNotImplemented, typeNotSupported, what+" is not supported by magpie. "+hint)
}

// unsecuredEncryptionMessage is DESIGN rule 6's refusal on a server
// started with --unsecured.
func unsecuredEncryptionMessage(db string) string {
	return fmt.Sprintf("Database %q is encrypted, and this server runs with --unsecured: encrypted databases are served only where access is secured (TLS with client certificates). Restart `magpie serve` without --unsecured to use it.", db)
}

// unsecuredCreateMessage refuses to create an encrypted database on an
// unsecured server.
func unsecuredCreateMessage(db string) string {
	return fmt.Sprintf("Cannot create encrypted database %q: this server runs with --unsecured, and encrypted databases are allowed only where access is secured (TLS with client certificates). Restart `magpie serve` without --unsecured, or create the database without encryption.", db)
}

// errEncryptedUnsecured is what openDB returns for an encrypted database on
// an unsecured server.
type errEncryptedUnsecured struct{ name string }

func (e *errEncryptedUnsecured) Error() string { return unsecuredEncryptionMessage(e.name) }
func (e *errEncryptedUnsecured) Unwrap() error { return store.ErrEncryptionDenied }

// storeError answers for an error of the store (or of what the routes use
// with it: keys, the smuggler, body limits). The status follows the
// sentinel the error wraps; the message is the error's own sentence, which
// the store writes for operators and which never holds key material.
func (s *Server) storeError(w http.ResponseWriter, err error) {
	status, typ := classify(err)
	msg := err.Error()
	if status >= 500 {
		s.log.Error("request failed", "status", status, "err", msg)
	}
	writeError(w, status, typ, msg)
}

// classify maps an error to an HTTP status and an exception type.
func classify(err error) (int, string) {
	var tooLarge *http.MaxBytesError
	var smugErr *smuggler.Error
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, typeTooLarge
	case errors.Is(err, store.ErrEncryptionDenied):
		return http.StatusBadRequest, typeEncryptionDenied
	case errors.Is(err, store.ErrInvalidInput), errors.Is(err, keys.ErrInvalidKey):
		return http.StatusBadRequest, typeBadRequest
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict, typeConcurrency
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, typeDocumentMissing
	case errors.Is(err, dump.ErrEncryptedExport):
		return http.StatusNotImplemented, typeNotSupported
	case errors.As(err, &smugErr):
		// A damaged or foreign export file: bad input, not a fault.
		return http.StatusBadRequest, typeBadRequest
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, typeBadRequest
	}
	return http.StatusInternalServerError, typeRaven
}

// tooLargeMessage is the 413 sentence.
func tooLargeMessage(limit int64) string {
	return fmt.Sprintf("The request body is larger than this server accepts (%s). Send less at once, or raise the server's body limit.", humanBytes(limit))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readJSON decodes one JSON value from the request body into v, reading at
// most max bytes. It answers 413 past the limit and 400 for a body that is
// not one JSON value, and then returns false.
func readJSON(w http.ResponseWriter, r *http.Request, max int64, v any) bool {
	body := http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		// Only whitespace may follow the value.
		var extra json.RawMessage
		if derr := dec.Decode(&extra); derr != io.EOF {
			if derr == nil {
				err = errors.New("there is more data after the JSON value")
			} else {
				err = derr
			}
		}
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, tooLargeMessage(max))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, typeBadRequest, "The request body is empty; a JSON object was expected.")
	default:
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			writeError(w, http.StatusBadRequest, typeBadRequest, "The request body does not have the shape this route takes: "+jsonProblem(err)+".")
		} else {
			writeError(w, http.StatusBadRequest, typeBadRequest, "The request body is not valid JSON: "+jsonProblem(err)+".")
		}
	}
	return false
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string { return tasks.JSONProblem(err) }
