package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/magpiedb/magpie/internal/store"
)

// POST /databases/{db}/bulk_docs
//
// The body is {"Commands":[...]} as JSON or, when the batch stores
// attachments, multipart/form-data: the JSON first, then one part per
// AttachmentPUT command, in command order (part names and types do not
// matter). The answer has one result per command, in order.
//
// A batch is checked whole before anything is written: every ID, document
// body, collection, expected change vector and attachment target, and, for
// bodies up to bulkBufferBytes, every attachment part. Only a fault of the
// storage itself, or a large streamed attachment cut short, can leave a
// batch half applied, and the error then says how far it got.

// bulkBufferBytes is how much attachment content a batch reads into memory
// before writing anything; past it the rest is streamed into the store.
const bulkBufferBytes = 32 << 20

// batchCommand is one command of a batch, with the fields of the types
// magpie runs (PUT, DELETE, AttachmentPUT).
type batchCommand struct {
	ID           string          `json:"Id"`
	Type         string          `json:"Type"`
	ChangeVector *string         `json:"ChangeVector"`
	Document     json.RawMessage `json:"Document"`
	Name         string          `json:"Name"`
	ContentType  *string         `json:"ContentType"`
	// RemoteParameters marks a remote attachment (not supported).
	RemoteParameters json.RawMessage `json:"RemoteParameters"`
}

type batchRequest struct {
	Commands        []batchCommand `json:"Commands"`
	TransactionMode string         `json:"TransactionMode"`
}

// batchError is a refusal found while checking a batch.
type batchError struct {
	status int
	typ    string
	msg    string
}

func (e *batchError) Error() string { return e.msg }

func badBatch(i int, format string, args ...any) *batchError {
	return &batchError{http.StatusBadRequest, typeBadRequest, fmt.Sprintf("Command %d of the batch: ", i+1) + fmt.Sprintf(format, args...)}
}

// simDoc is what the check of a batch knows of a document after the
// commands before the current one.
type simDoc struct {
	exists     bool
	collection string
	// touched is set once a command of the batch changed the document:
	// its change vector is then not known until the batch runs.
	touched bool
	cv      string
}

func (s *Server) handleBulkDocs(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessWrite)
	if !ok {
		return
	}
	limit := s.cfg.MaxBodyBytes
	var req batchRequest
	var parts *attachmentParts
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mediaType, "multipart/") {
		if params["boundary"] == "" {
			writeError(w, http.StatusBadRequest, typeBadRequest, "The multipart request has no boundary in its Content-Type.")
			return
		}
		mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit), params["boundary"])
		main, err := mr.NextRawPart()
		if err != nil {
			s.bulkReadError(w, err, limit, "the first part (the commands)")
			return
		}
		raw, err := io.ReadAll(main)
		if err != nil {
			s.bulkReadError(w, err, limit, "the first part (the commands)")
			return
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			writeError(w, http.StatusBadRequest, typeBadRequest, "The commands of the batch are not valid JSON: "+jsonProblem(err)+".")
			return
		}
		parts = &attachmentParts{mr: mr}
	} else if !readJSON(w, r, limit, &req) {
		return
	}

	nAtt, err := s.checkBatch(db, &req, parts != nil)
	if err != nil {
		var be *batchError
		if errors.As(err, &be) {
			writeError(w, be.status, be.typ, be.msg)
		} else {
			s.storeError(w, err)
		}
		return
	}
	if parts != nil {
		if err := parts.prefetch(nAtt, bulkBufferBytes); err != nil {
			s.bulkReadError(w, err, limit, "the attachment parts")
			return
		}
	}

	if nAtt == 0 {
		// Documents only: the whole batch is one transaction, synced once.
		s.runTransaction(w, db, &req)
		return
	}
	results := make([]any, 0, len(req.Commands))
	for i, c := range req.Commands {
		res, err := s.runCommand(db, i, &c, parts)
		if err != nil {
			status, typ := classify(err)
			var be *batchError
			if errors.As(err, &be) {
				status, typ = be.status, be.typ
			}
			var tooLarge *http.MaxBytesError
			msg := err.Error()
			if errors.As(err, &tooLarge) {
				msg = tooLargeMessage(limit)
			}
			if i > 0 {
				msg += fmt.Sprintf(" (the batch stopped at command %d; commands 1 to %d were applied)", i+1, i)
			}
			if status >= 500 {
				s.log.Error("batch failed", "db", db.Name(), "err", msg)
			}
			writeError(w, status, typ, msg)
			return
		}
		results = append(results, res)
	}
	if parts != nil {
		if err := parts.finish(); err != nil {
			// Everything was written; only trailing data was wrong.
			s.log.Warn("batch had trailing multipart data", "db", db.Name(), "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"Results": results})
}

// runTransaction runs a batch of PUT and DELETE commands as one store
// transaction: all of them land, in one synced commit, or none does.
func (s *Server) runTransaction(w http.ResponseWriter, db *store.DB, req *batchRequest) {
	results := make([]any, 0, len(req.Commands))
	failed := -1
	err := db.Update(func(tx *store.Tx) error {
		for i := range req.Commands {
			c := &req.Commands[i]
			if err := checkCVNow(db, c); err != nil {
				failed = i
				return err
			}
			switch c.Type {
			case "PUT":
				d, err := tx.Put(c.ID, c.Document)
				if err != nil {
					failed = i
					return err
				}
				res := map[string]any{"Type": "PUT", "@id": d.ID, "@collection": d.Collection, "@change-vector": d.ChangeVector, "@last-modified": d.LastModified}
				if d.Attachments > 0 {
					res["@flags"] = "HasAttachments"
				}
				results = append(results, res)
			case "DELETE":
				deleted := true
				if err := tx.Delete(c.ID); errors.Is(err, store.ErrNotFound) {
					deleted = false
				} else if err != nil {
					failed = i
					return err
				}
				results = append(results, map[string]any{"Type": "DELETE", "Id": c.ID, "Deleted": deleted, "ChangeVector": nil})
			default:
				failed = i
				return badBatch(i, "unknown command type %s", c.Type)
			}
		}
		return nil
	})
	if err != nil {
		status, typ := classify(err)
		var be *batchError
		if errors.As(err, &be) {
			status, typ = be.status, be.typ
		}
		msg := err.Error()
		if failed >= 0 {
			msg += fmt.Sprintf(" (command %d of the batch; nothing was applied)", failed+1)
		}
		if status >= 500 {
			s.log.Error("batch failed", "db", db.Name(), "err", msg)
		}
		writeError(w, status, typ, msg)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"Results": results})
}

// bulkReadError answers for a body that could not be read.
func (s *Server) bulkReadError(w http.ResponseWriter, err error, limit int64, what string) {
	var tooLarge *http.MaxBytesError
	var be *batchError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, tooLargeMessage(limit))
	case errors.As(err, &be):
		writeError(w, be.status, be.typ, be.msg)
	default:
		writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot read "+what+" of the multipart request: "+err.Error()+".")
	}
}

// checkBatch validates every command against the database as the batch
// will find it, without writing. It returns the number of AttachmentPUT
// commands.
func (s *Server) checkBatch(db *store.DB, req *batchRequest, multipartBody bool) (int, error) {
	if req.Commands == nil {
		return 0, &batchError{http.StatusBadRequest, typeBadRequest, "The batch has no Commands array."}
	}
	if req.TransactionMode != "" && !strings.EqualFold(req.TransactionMode, "SingleNode") {
		return 0, &batchError{http.StatusNotImplemented, typeNotSupported, "Transaction mode " + req.TransactionMode + " is not supported by magpie."}
	}
	sim := map[string]*simDoc{}
	state := func(id string) (*simDoc, error) {
		lower := store.LowerID(id)
		if d, ok := sim[lower]; ok {
			return d, nil
		}
		d := &simDoc{}
		doc, err := db.Get(id)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			d.exists, d.collection, d.cv = true, doc.Collection, doc.ChangeVector
		}
		sim[lower] = d
		return d, nil
	}
	nAtt := 0
	for i := range req.Commands {
		c := &req.Commands[i]
		if c.Type == "PUT" && c.ID == "" {
			// RavenDB gives a document put without an ID a new GUID.
			c.ID = newGUID()
		}
		if err := store.ValidateID(c.ID); err != nil {
			return 0, badBatch(i, "%v", err)
		}
		d, err := state(c.ID)
		if err != nil {
			return 0, err
		}
		switch c.Type {
		case "PUT":
			if err := checkNewID(c.ID); err != nil {
				if errors.Is(err, errServerIDs) {
					return 0, &batchError{http.StatusNotImplemented, typeNotSupported, fmt.Sprintf("Command %d of the batch: %s is not supported by magpie; give the complete ID.", i+1, err)}
				}
				return 0, badBatch(i, "%v", err)
			}
			collection, err := documentCollection(c.Document)
			if err != nil {
				return 0, badBatch(i, "document %s: %v", c.ID, err)
			}
			if err := checkCV(i, c, d); err != nil {
				return 0, err
			}
			if d.exists && !strings.EqualFold(d.collection, collection) {
				return 0, badBatch(i, "document %s is in collection %q and cannot move to %q. Delete it first, then put it in the new collection.", c.ID, d.collection, collection)
			}
			if !d.exists {
				d.collection = collection
			}
			d.exists, d.touched = true, true
		case "DELETE":
			if err := checkCV(i, c, d); err != nil {
				return 0, err
			}
			d.exists, d.touched = false, true
		case "AttachmentPUT":
			if c.Name == "" {
				return 0, badBatch(i, "the attachment has no Name.")
			}
			if len(c.RemoteParameters) > 0 && string(c.RemoteParameters) != "null" {
				return 0, &batchError{http.StatusNotImplemented, typeNotSupported, "Remote attachments are not supported by magpie."}
			}
			if c.ChangeVector != nil {
				return 0, &batchError{http.StatusNotImplemented, typeNotSupported, "Optimistic concurrency on attachments (an AttachmentPUT with a ChangeVector) is not supported by magpie."}
			}
			if !multipartBody {
				return 0, badBatch(i, "AttachmentPUT needs the content: send the batch as multipart/form-data, the commands first and then one part per attachment.")
			}
			if !d.exists {
				return 0, &batchError{http.StatusBadRequest, typeDocumentMissing, fmt.Sprintf("Command %d of the batch: cannot put attachment %q on document %s: the document does not exist.", i+1, c.Name, c.ID)}
			}
			d.touched = true
			nAtt++
		case "":
			return 0, badBatch(i, "the command has no Type.")
		default:
			return 0, &batchError{http.StatusNotImplemented, typeNotSupported, fmt.Sprintf("Command %d of the batch: batch command type %s is not supported by magpie (it runs PUT, DELETE and AttachmentPUT).", i+1, c.Type)}
		}
	}
	return nAtt, nil
}

// checkCV checks a command's expected change vector against what the batch
// knows: null means no check, "" that the document must not exist.
func checkCV(i int, c *batchCommand, d *simDoc) error {
	if c.ChangeVector == nil {
		return nil
	}
	want := *c.ChangeVector
	switch {
	case want == "" && d.exists:
		return &batchError{http.StatusConflict, typeConcurrency, concurrencyError(c.ID, d.cvOrUnknown(), "")}
	case want != "" && !d.exists:
		return &batchError{http.StatusConflict, typeConcurrency, concurrencyError(c.ID, "", want)}
	case want != "" && !d.touched && d.cv != want:
		return &batchError{http.StatusConflict, typeConcurrency, concurrencyError(c.ID, d.cv, want)}
	}
	// A change vector expected after an earlier command of the same batch
	// changed the document is checked when the batch runs.
	return nil
}

func (d *simDoc) cvOrUnknown() string {
	if d.touched {
		return "(set earlier in this batch)"
	}
	return d.cv
}

// documentCollection checks a PUT's document and reads its collection.
func documentCollection(raw json.RawMessage) (string, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return "", errors.New("the command has no Document")
	}
	if trimmed[0] != '{' {
		return "", errors.New("the Document is not a JSON object")
	}
	if len(trimmed) > store.MaxDocumentBytes {
		return "", fmt.Errorf("the document is %d bytes; the limit is %s", len(trimmed), humanBytes(store.MaxDocumentBytes))
	}
	var v struct {
		Metadata json.RawMessage `json:"@metadata"`
	}
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return "", errors.New("the Document is not valid JSON")
	}
	if len(v.Metadata) == 0 || string(v.Metadata) == "null" {
		return store.EmptyCollection, nil
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(v.Metadata, &meta); err != nil {
		return "", errors.New("@metadata is not a JSON object")
	}
	rawColl, ok := meta["@collection"]
	if !ok || string(rawColl) == "null" {
		return store.EmptyCollection, nil
	}
	var coll string
	if err := json.Unmarshal(rawColl, &coll); err != nil {
		return "", errors.New("@metadata.@collection is not a string")
	}
	if coll == "" {
		return store.EmptyCollection, nil
	}
	return coll, nil
}

// runCommand applies one checked command and returns its result.
func (s *Server) runCommand(db *store.DB, i int, c *batchCommand, parts *attachmentParts) (any, error) {
	switch c.Type {
	case "PUT":
		if err := checkCVNow(db, c); err != nil {
			return nil, err
		}
		d, err := db.Put(c.ID, c.Document)
		if err != nil {
			return nil, err
		}
		res := map[string]any{
			"Type":           "PUT",
			"@id":            d.ID,
			"@collection":    d.Collection,
			"@change-vector": d.ChangeVector,
			"@last-modified": d.LastModified,
		}
		if d.Attachments > 0 {
			res["@flags"] = "HasAttachments"
		}
		return res, nil
	case "DELETE":
		if err := checkCVNow(db, c); err != nil {
			return nil, err
		}
		deleted := true
		if err := db.Delete(c.ID); errors.Is(err, store.ErrNotFound) {
			deleted = false
		} else if err != nil {
			return nil, err
		}
		return map[string]any{"Type": "DELETE", "Id": c.ID, "Deleted": deleted, "ChangeVector": nil}, nil
	case "AttachmentPUT":
		content, err := parts.next()
		if err != nil {
			return nil, err
		}
		contentType := ""
		if c.ContentType != nil {
			contentType = *c.ContentType
		}
		ref, err := db.PutAttachment(c.ID, c.Name, contentType, content)
		if err != nil {
			return nil, err
		}
		doc, err := db.Get(c.ID)
		if err != nil {
			return nil, err
		}
		return map[string]any{
			"Type":                 "AttachmentPUT",
			"Id":                   doc.ID,
			"Name":                 ref.Name,
			"ChangeVector":         doc.ChangeVector,
			"Hash":                 ref.Hash,
			"ContentType":          ref.ContentType,
			"Size":                 ref.Size,
			"DocumentChangeVector": doc.ChangeVector,
		}, nil
	}
	return nil, badBatch(i, "unknown command type %s", c.Type)
}

// checkCVNow checks an expected change vector when the command runs (the
// check before the batch cannot know vectors the batch itself makes).
func checkCVNow(db *store.DB, c *batchCommand) error {
	if c.ChangeVector == nil {
		return nil
	}
	cur, err := currentCV(db, c.ID)
	if err != nil {
		return err
	}
	if cur != *c.ChangeVector {
		return &batchError{http.StatusConflict, typeConcurrency, concurrencyError(c.ID, cur, *c.ChangeVector)}
	}
	return nil
}

// attachmentParts hands out the attachment parts of a multipart batch in
// order. prefetch reads them into memory up to a budget, so that a batch
// of small attachments is read completely (and its part count checked)
// before anything is written; parts past the budget are streamed.
type attachmentParts struct {
	mr      *multipart.Reader
	ready   []io.Reader
	served  int
	drained bool // every part was read by prefetch
}

func (p *attachmentParts) prefetch(n int, budget int64) error {
	used := int64(0)
	for i := 0; i < n; i++ {
		part, err := p.mr.NextRawPart()
		if err == io.EOF {
			return &batchError{http.StatusBadRequest, typeBadRequest, fmt.Sprintf("The batch has %d AttachmentPUT commands but only %d attachment parts.", n, i)}
		}
		if err != nil {
			return err
		}
		buf, err := io.ReadAll(io.LimitReader(part, budget-used+1))
		if err != nil {
			return err
		}
		if int64(len(buf)) > budget-used {
			// Over budget: this part continues from the wire, and so do
			// the ones after it.
			p.ready = append(p.ready, io.MultiReader(bytes.NewReader(buf), part))
			return nil
		}
		used += int64(len(buf))
		p.ready = append(p.ready, bytes.NewReader(buf))
	}
	if _, err := p.mr.NextRawPart(); err != io.EOF {
		if err != nil {
			return err
		}
		return &batchError{http.StatusBadRequest, typeBadRequest, fmt.Sprintf("The batch has %d AttachmentPUT commands but more attachment parts than that.", n)}
	}
	p.drained = true
	return nil
}

func (p *attachmentParts) next() (io.Reader, error) {
	if p.served < len(p.ready) {
		r := p.ready[p.served]
		p.served++
		return r, nil
	}
	if p.drained {
		return nil, &batchError{http.StatusBadRequest, typeBadRequest, "The batch has more AttachmentPUT commands than attachment parts."}
	}
	part, err := p.mr.NextRawPart()
	if err == io.EOF {
		return nil, &batchError{http.StatusBadRequest, typeBadRequest, "The batch has more AttachmentPUT commands than attachment parts."}
	}
	if err != nil {
		return nil, err
	}
	p.served++
	return part, nil
}

// finish checks that no attachment part was left over.
func (p *attachmentParts) finish() error {
	if p.drained {
		return nil
	}
	if _, err := p.mr.NextRawPart(); err != io.EOF {
		if err == nil {
			return errors.New("more attachment parts than AttachmentPUT commands")
		}
		return err
	}
	return nil
}

// newGUID returns a random (version 4) UUID in RavenDB's form: lower-case
// hex with dashes.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
