package server

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// Import and export stream a database in the RavenDB export format through
// the API (DESIGN section 5). An import is all-or-nothing, as the store
// makes it; its body is not bound by MaxBodyBytes, since a dump is streamed
// into the store and never held in memory.

// maxSmugglerOptions bounds the JSON options part of an import or the
// options body of an export.
const maxSmugglerOptions = 1 << 20

// smugglerOptions is the part of RavenDB's DatabaseSmugglerOptions magpie
// reads. Go's decoder matches the client's PascalCase names.
type smugglerOptions struct {
	OperateOnTypes       string `json:"OperateOnTypes"`
	TransformScript      string `json:"TransformScript"`
	EncryptionKey        string `json:"EncryptionKey"`
	CompressionAlgorithm string `json:"CompressionAlgorithm"`
}

// check refuses the options magpie cannot honour, rather than silently
// doing something else.
func (o *smugglerOptions) check() (string, bool) {
	if strings.TrimSpace(o.TransformScript) != "" {
		return "Transform scripts in import and export", false
	}
	if o.EncryptionKey != "" {
		return "RavenDB's encrypted export files (an EncryptionKey in the smuggler options)", false
	}
	return "", true
}

// POST /databases/{db}/smuggler/import[?operationId=N]
//
// The body is either multipart/form-data, as RavenDB's clients send it (an
// "importOptions" JSON field, then the file), or the export file itself.
// Gzip, zstd and plain exports are recognised by their content.
func (s *Server) handleSmugglerImport(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessWrite)
	if !ok {
		return
	}
	var file io.Reader = r.Body
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mediaType, "multipart/") {
		if params["boundary"] == "" {
			writeError(w, http.StatusBadRequest, typeBadRequest, "The multipart request has no boundary in its Content-Type.")
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		file = nil
		for file == nil {
			part, err := mr.NextPart()
			if err == io.EOF {
				writeError(w, http.StatusBadRequest, typeBadRequest, "The multipart request has no file part: send the export file after the importOptions field.")
				return
			}
			if err != nil {
				writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot read the multipart request: "+err.Error()+".")
				return
			}
			if part.FormName() != "importOptions" {
				file = part
				break
			}
			raw, err := io.ReadAll(io.LimitReader(part, maxSmugglerOptions+1))
			if err != nil {
				writeError(w, http.StatusBadRequest, typeBadRequest, "Cannot read the importOptions field: "+err.Error()+".")
				return
			}
			if len(raw) > maxSmugglerOptions {
				writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, "The importOptions field is larger than 1 MiB.")
				return
			}
			var opts smugglerOptions
			if err := json.Unmarshal(raw, &opts); err != nil {
				writeError(w, http.StatusBadRequest, typeBadRequest, "The importOptions field is not valid JSON: "+jsonProblem(err)+".")
				return
			}
			if what, ok := opts.check(); !ok {
				writeNotSupported(w, what)
				return
			}
		}
	}
	start := time.Now()
	res, err := dump.Import(db, file)
	if err != nil {
		status, typ := classify(err)
		if status == http.StatusNotFound {
			status = http.StatusBadRequest
		}
		msg := "The import failed and nothing was imported: " + err.Error()
		if status >= 500 {
			s.log.Error("import failed", "db", db.Name(), "err", err)
		}
		writeError(w, status, typ, msg)
		return
	}
	s.log.Info("import done", "db", db.Name(), "documents", res.Documents, "attachments", res.Attachments,
		"tombstones", res.Tombstones, "indexes", res.Indexes, "duration", time.Since(start).Round(time.Millisecond))
	writeJSON(w, http.StatusOK, smugglerResult(res.ImportCounts, res.Skipped, time.Since(start)))
}

// smugglerResult is RavenDB's SmugglerResult, reduced to what magpie
// counts.
func smugglerResult(c store.ImportCounts, skipped map[string]int, took time.Duration) map[string]any {
	count := func(n int64) map[string]any {
		return map[string]any{"ReadCount": n, "ErroredCount": 0, "SkippedCount": 0}
	}
	docs := count(c.Documents)
	docs["Attachments"] = count(c.Attachments)
	res := map[string]any{
		"Documents":  docs,
		"Tombstones": count(c.Tombstones),
		"Indexes":    count(c.Indexes),
		"Elapsed":    took.String(),
		"Messages":   []string{},
	}
	if len(skipped) > 0 {
		res["Skipped"] = skipped
	}
	return res
}

// POST /databases/{db}/smuggler/export[?operationId=N]  body: the options
//
// The answer streams the export file, compressed with zstd (RavenDB 6's
// default) or gzip (CompressionAlgorithm "Gzip", for RavenDB 4.x and 5.x).
func (s *Server) handleSmugglerExport(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	var opts smugglerOptions
	if r.ContentLength != 0 {
		if !readJSON(w, r, maxSmugglerOptions, &opts) {
			return
		}
	}
	if what, ok := opts.check(); !ok {
		writeNotSupported(w, what)
		return
	}
	compression := smuggler.Zstd
	switch strings.ToLower(opts.CompressionAlgorithm) {
	case "", "zstd":
	case "gzip":
		compression = smuggler.Gzip
	case "none":
		compression = smuggler.None
	default:
		writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf("Unknown CompressionAlgorithm %q. Use Zstd or Gzip.", opts.CompressionAlgorithm))
		return
	}
	stamp := time.Now().UTC().Format("2006-01-02-15-04")
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s.ravendbdump"`, stamp, db.Name()))
	h.Set("Cache-Control", "no-store")
	cw := &countingWriter{w: w}
	res, err := dump.Export(db, cw, compression, 0)
	if err != nil {
		if cw.n == 0 {
			h.Del("Content-Disposition")
			s.storeError(w, err)
			return
		}
		// The status is out: cutting the connection tells the client the
		// file is incomplete, where a clean end would not.
		s.log.Error("export failed", "db", db.Name(), "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("export done", "db", db.Name(), "documents", res.Documents, "attachments", res.Attachments, "bytes", cw.n)
}

// countingWriter counts what was written, to tell whether an error came
// before the first byte of the answer.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
