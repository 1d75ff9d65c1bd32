package server

// Backup and restore routes, as RavenDB's clients call them (wire notes,
// section 5 and 6; docs/API.md lists them with magpie's extension fields):
//
//	POST /databases/{db}/admin/backup            one-time backup (C# BackupOperation)
//	POST /databases/{db}/admin/periodic-backup   create or update a backup task
//	POST /databases/{db}/admin/backup/database   run a task's backup now (StartBackupOperation)
//	GET  /periodic-backup/status?name=&taskId=   a task's status
//	GET  /databases/{db}/tasks                   the backup tasks (GetOngoingTasksOperation)
//	GET  /databases/{db}/task?key=&type=Backup   one task (GetOngoingTaskInfoOperation)
//	POST /databases/{db}/admin/tasks/state?key=&type=Backup&disable=   enable or disable a task
//	DELETE /databases/{db}/admin/tasks?id=&type=Backup
//	POST /admin/restore/database                 restore a backup as a new database
//	POST /admin/restore/points?type=             the restore points in a folder or bucket
//
// Backups and restores are long-running operations (operations.go). Paths
// are on the server's machine, as in RavenDB, and destinations may also be
// object store URLs. Backup tasks live in the database record (package
// tasks); their status is the server's (task_store.go), and the scheduler
// (scheduler.go) runs them on their cron schedules.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
)

// maxConfigBody bounds backup and restore request bodies.
const maxConfigBody = 1 << 20

// backupExtras is the server's state for operations and backup tasks.
// Server (server.go) has no field for it, so it is kept beside the server
// in extrasOf.
type backupExtras struct {
	ops     *operations
	tasks   *taskStore
	metrics *backupMetrics
	sched   *scheduler
}

var (
	extrasMu sync.Mutex
	extrasOf = map[*Server]*backupExtras{}
)

func (s *Server) extras() *backupExtras {
	extrasMu.Lock()
	defer extrasMu.Unlock()
	e := extrasOf[s]
	if e == nil {
		e = &backupExtras{ops: newOperations(s), tasks: newTaskStore(s), metrics: newBackupMetrics(), sched: newScheduler()}
		extrasOf[s] = e
	}
	return e
}

// backupRoutes registers the backup, restore and operation routes.
func (s *Server) backupRoutes() {
	s.extras()
	s.operationRoutes()
	s.mux.HandleFunc("POST /databases/{db}/admin/backup", s.handleOneTimeBackup)
	s.taskRoutes()
	s.mux.HandleFunc("POST /admin/restore/database", s.handleRestore)
	s.mux.HandleFunc("POST /admin/restore/points", s.handleRestorePoints)
	s.mux.HandleFunc("POST /admin/backup/verify", s.handleVerify)
}

// ---------------------------------------------------------------------
// Wire types.

// wireTime is a date on the wire: RavenDB's yyyy-MM-ddTHH:mm:ss.fffffffZ,
// always with seven fractional digits (the Node.js client cannot parse a
// date without a fraction).
type wireTime time.Time

func (t wireTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(store.TimeLayout) + `"`), nil
}

func (t *wireTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = wireTime(v)
	return nil
}

func (t *wireTime) time() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Time(*t)
}

func wireNow(t time.Time) *wireTime { w := wireTime(t.UTC()); return &w }

// encryptionSettingsJSON is RavenDB's BackupEncryptionSettings plus
// magpie's MagpieRecipients, as restore requests carry it.
type encryptionSettingsJSON struct {
	Key              *string  `json:"Key"`
	EncryptionMode   string   `json:"EncryptionMode"`
	MagpieRecipients []string `json:"MagpieRecipients"`
}

// planBackup reads a BackupConfiguration or PeriodicBackupConfiguration
// body and checks it against db (package tasks), in the API's terms, so
// that a request that cannot be honoured is refused (400, or 501 for what
// magpie does not do) before anything is written. key is the key of
// UseProvidedKey the request carried, never stored.
func planBackup(body []byte, db *store.DB) (*tasks.Config, *keys.Key, *tasks.Plan, error) {
	c, key, err := tasks.Parse(body)
	if err != nil {
		return nil, nil, nil, err
	}
	plan, err := c.Plan(db, key)
	if err != nil {
		return nil, nil, nil, apiError(err)
	}
	return c, key, plan, nil
}

// checkOutsideDataDir refuses destinations in the server's data dir,
// where backups would be taken for databases or deleted with them.
func (s *Server) checkOutsideDataDir(to []string) error {
	for _, d := range to {
		if p, ok := destination.LocalPath(d); ok && store.Contains(s.data.Path(), p) {
			return fmt.Errorf("the destination %s is inside the server's data dir %s; backups there would be taken for databases or deleted with them. Give a folder outside the data dir", d, s.data.Path())
		}
	}
	return nil
}

// apiError rewords the CLI hints of an error from package backup for API
// callers, keeping what it wraps.
func apiError(err error) error {
	var ue *tasks.UnsupportedError
	if errors.As(err, &ue) {
		return err
	}
	if msg := apiWording(err.Error()); msg != err.Error() {
		return &wrappedFault{msg: msg, err: err}
	}
	return err
}

// notSupported is a request for a feature magpie does not have (501).
type notSupported struct{ msg string }

func (e *notSupported) Error() string { return e.msg }

// badRequest answers 400 (or 501 for a missing feature) with err's
// sentence.
func badRequest(w http.ResponseWriter, err error) {
	var ns *notSupported
	var ue *tasks.UnsupportedError
	if errors.As(err, &ns) || errors.As(err, &ue) {
		writeError(w, http.StatusNotImplemented, typeNotSupported, sentence(err.Error()))
		return
	}
	writeError(w, http.StatusBadRequest, typeBadRequest, sentence(err.Error()))
}

// sentence capitalises s and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// readConfig reads a JSON request body of at most maxConfigBody bytes, or
// answers 400 and returns false.
func readConfig(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var raw json.RawMessage
	if !readJSON(w, r, maxConfigBody, &raw) {
		return nil, false
	}
	return raw, true
}

// ---------------------------------------------------------------------
// Backups.

// backupResult is a finished backup's operation Result, shaped like
// RavenDB's BackupResult where the fields match.
type backupResult struct {
	Message     string `json:"Message"`
	LocalBackup struct {
		BackupDirectory string `json:"BackupDirectory"`
		FileName        string `json:"FileName"`
		Skipped         bool   `json:"Skipped"`
	} `json:"LocalBackup"`
	SnapshotBackup struct {
		Skipped bool `json:"Skipped"`
	} `json:"SnapshotBackup"`
	Documents   readCount `json:"Documents"`
	Tombstones  readCount `json:"Tombstones"`
	Attachments readCount `json:"Attachments"`
	LastEtag    uint64    `json:"LastEtag"`
	IsEncrypted bool      `json:"IsEncrypted"`
	// MagpieEncryption is the manifest's mode: none, database, key or
	// recipients.
	MagpieEncryption backup.Mode `json:"MagpieEncryption"`
	MagpieSize       int64       `json:"MagpieSize"`
	// MagpieKind is the file written: full-backup, incremental-backup or
	// snapshot; MagpieUnchanged says an incremental found nothing changed
	// and wrote no file.
	MagpieKind      string `json:"MagpieKind"`
	MagpieUnchanged bool   `json:"MagpieUnchanged"`
	// MagpieLocations are the chain folders in every destination.
	MagpieLocations []string `json:"MagpieLocations"`
	// MagpieRetention is what retention deleted after a task's run.
	MagpieRetention *retentionStatus `json:"MagpieRetention,omitempty"`
	// MagpieFullReason says why an incremental run made a full backup
	// instead (no chain to extend, a damaged newest chain, ...).
	MagpieFullReason string `json:"MagpieFullReason,omitempty"`
}

type readCount struct {
	ReadCount int64 `json:"ReadCount"`
}

func newBackupResult(db string, plan *tasks.Plan, res *backup.Result) *backupResult {
	out := &backupResult{
		Documents:        readCount{res.Entry.Documents},
		Tombstones:       readCount{res.Entry.Tombstones},
		Attachments:      readCount{res.Entry.Attachments},
		LastEtag:         res.Entry.ToEtag,
		IsEncrypted:      res.Manifest.Encryption != backup.ModeNone,
		MagpieEncryption: res.Manifest.Encryption,
		MagpieSize:       res.Entry.Size,
		MagpieKind:       res.Entry.Kind,
		MagpieUnchanged:  res.Unchanged,
		MagpieLocations:  res.Locations,
		MagpieFullReason: res.FullReason,
	}
	if res.Unchanged {
		out.Message = fmt.Sprintf("Nothing changed in %s since %s (etag %d): no file written.", db, res.Entry.Name, res.Entry.ToEtag)
		out.MagpieSize = 0
	} else {
		out.Message = fmt.Sprintf("Backup of %s written to %s (%d documents).", db, res.File, res.Entry.Documents)
	}
	out.LocalBackup.BackupDirectory = res.ChainDir
	out.LocalBackup.FileName = res.Entry.Name
	out.LocalBackup.Skipped = res.Unchanged
	out.SnapshotBackup.Skipped = plan.Type != backup.Snapshot
	return out
}

// POST /databases/{db}/admin/backup  body: BackupConfiguration, plus
// magpie's MagpieIncremental (extend the newest chain).
func (s *Server) handleOneTimeBackup(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	body, ok := readConfig(w, r)
	if !ok {
		return
	}
	var ext struct {
		MagpieIncremental bool `json:"MagpieIncremental"`
	}
	json.Unmarshal(body, &ext)
	_, _, plan, err := planBackup(body, db)
	if err == nil {
		err = s.checkOutsideDataDir(plan.To)
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	ops := s.extras().ops
	op, err := ops.start(db.Name(), "Backup", AccessDatabaseAdmin, func(ctx context.Context, op *operation) (any, error) {
		ops.setProgress(op, map[string]any{"Message": "writing the backup of " + db.Name()})
		if testHookBackup != nil {
			testHookBackup(ctx)
		}
		res, err := backup.Run(db, s.backupOptions(ctx, op, db, plan, ext.MagpieIncremental))
		if err != nil {
			if errors.Is(err, backup.ErrCanceled) {
				s.log.Info("backup canceled", "db", db.Name(), "operation", op.id)
			} else {
				s.log.Warn("backup failed", "db", db.Name(), "operation", op.id, "err", err)
			}
			return nil, err
		}
		if res.Unchanged {
			s.log.Info("backup: nothing changed", "db", db.Name(), "operation", op.id, "chain", res.ChainDir, "etag", res.Entry.ToEtag)
		} else {
			s.log.Info("backup written", "db", db.Name(), "operation", op.id, "chain", res.ChainDir, "kind", res.Entry.Kind, "file", res.Entry.Name, "documents", res.Entry.Documents)
		}
		return newBackupResult(db.Name(), plan, res), nil
	})
	if err != nil {
		s.operationRefused(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "OperationNodeTag": NodeTag})
}

// testHookBackup, when set by a test, runs in a backup operation just
// before the backup starts writing.
var testHookBackup func(ctx context.Context)

// operationRefused answers when no operation could be started.
// backupOptions are the options of a backup run by operation op: the
// server's concurrency cap, and progress that GET /operations/state shows
// while it runs (documents written of those in the database, bytes stored),
// refreshed at most every progressEvery.
func (s *Server) backupOptions(ctx context.Context, op *operation, db *store.DB, plan *tasks.Plan, incremental bool) backup.Options {
	o := plan.Options(ctx, incremental)
	o.Concurrency = s.cfg.BackupConcurrency
	o.Documents = new(atomic.Int64)
	var total int64
	if st, err := db.Stats(); err == nil {
		total = st.CountOfDocuments
	}
	ops := s.extras().ops
	var last atomic.Int64 // unix nanoseconds of the last refresh
	o.Progress = func(stored int64) {
		now := time.Now().UnixNano()
		if prev := last.Load(); now-prev >= int64(progressEvery) && last.CompareAndSwap(prev, now) {
			ops.setProgress(op, map[string]any{
				"Message":              "writing the backup of " + db.Name(),
				"Documents":            map[string]any{"ReadCount": o.Documents.Load()},
				"MagpieDocumentsTotal": total,
				"MagpieBytesStored":    stored,
			})
		}
	}
	return o
}

// progressEvery is how often a running backup refreshes its progress.
const progressEvery = 200 * time.Millisecond

func (s *Server) operationRefused(w http.ResponseWriter, err error) {
	if errors.Is(err, errServerStopping) {
		writeError(w, http.StatusServiceUnavailable, typeRaven, "The server is shutting down, so it starts no new operation. Try again once it is back.")
		return
	}
	badRequest(w, err)
}
