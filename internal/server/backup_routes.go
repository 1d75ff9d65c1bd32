package server

// Backup and restore routes, as RavenDB's clients call them (wire notes,
// section 5 and 6; docs/API.md lists them with magpie's extension fields):
//
//	POST /databases/{db}/admin/backup            one-time backup (C# BackupOperation)
//	POST /databases/{db}/admin/periodic-backup   create or update a backup task
//	POST /databases/{db}/admin/backup/database   run a task's backup now (StartBackupOperation)
//	GET  /periodic-backup/status?name=&taskId=   a task's last backup
//	DELETE /databases/{db}/admin/tasks?id=&type=Backup
//	POST /admin/restore/database                 restore a backup as a new database
//	POST /admin/restore/points                   the restore points in a folder
//
// Backups and restores are long-running operations (operations.go). Paths
// are on the server's machine, as in RavenDB. Backup tasks are kept in
// DATA/backup-tasks/NAME.json (0600), without their keys: a key given with
// UseProvidedKey stays in memory only. Schedules (the cron frequencies) are
// stored but not run yet.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/magpiedb/magpie/internal/atomicfile"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// maxConfigBody bounds backup and restore request bodies.
const maxConfigBody = 1 << 20

// backupExtras is the server's state for operations and backup tasks.
// Server (server.go) has no field for it, so it is kept beside the server
// in extrasOf.
type backupExtras struct {
	ops   *operations
	tasks *taskStore
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
		e = &backupExtras{ops: newOperations(s), tasks: &taskStore{dir: filepath.Join(s.data.Path(), "backup-tasks"), dbs: map[string]*dbTasks{}}}
		extrasOf[s] = e
	}
	return e
}

// backupRoutes registers the backup, restore and operation routes.
func (s *Server) backupRoutes() {
	s.extras()
	s.operationRoutes()
	s.mux.HandleFunc("POST /databases/{db}/admin/backup", s.handleOneTimeBackup)
	s.mux.HandleFunc("POST /databases/{db}/admin/periodic-backup", s.handleUpdateBackupTask)
	s.mux.HandleFunc("POST /databases/{db}/admin/backup/database", s.handleStartBackup)
	s.mux.HandleFunc("GET /periodic-backup/status", s.handleBackupStatus)
	s.mux.HandleFunc("DELETE /databases/{db}/admin/tasks", s.handleDeleteTask)
	s.mux.HandleFunc("POST /admin/restore/database", s.handleRestore)
	s.mux.HandleFunc("POST /admin/restore/points", s.handleRestorePoints)
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

func wireNow(t time.Time) *wireTime { w := wireTime(t.UTC()); return &w }

// localSettingsJSON is RavenDB's LocalSettings.
type localSettingsJSON struct {
	FolderPath string `json:"FolderPath"`
	Disabled   bool   `json:"Disabled"`
}

// encryptionSettingsJSON is RavenDB's BackupEncryptionSettings plus
// magpie's MagpieRecipients (age public keys: the server writes backups it
// cannot read).
type encryptionSettingsJSON struct {
	Key              *string  `json:"Key"`
	EncryptionMode   string   `json:"EncryptionMode"`
	MagpieRecipients []string `json:"MagpieRecipients"`
}

// backupConfigurationJSON is RavenDB's BackupConfiguration and, with the
// task fields, PeriodicBackupConfiguration. Fields magpie does not use
// (MentorNode, RetentionPolicy, SnapshotSettings, BackupUploadMode, ...)
// are accepted and ignored; upload destinations are refused.
type backupConfigurationJSON struct {
	TaskID                     int64                   `json:"TaskId"`
	Name                       string                  `json:"Name"`
	Disabled                   bool                    `json:"Disabled"`
	BackupType                 string                  `json:"BackupType"`
	FullBackupFrequency        string                  `json:"FullBackupFrequency"`
	IncrementalBackupFrequency string                  `json:"IncrementalBackupFrequency"`
	LocalSettings              *localSettingsJSON      `json:"LocalSettings"`
	BackupEncryptionSettings   *encryptionSettingsJSON `json:"BackupEncryptionSettings"`
	// MagpieCompression is zstd (the default, which RavenDB 6+ reads) or
	// gzip (for RavenDB 4.x and 5.x) for logical backups.
	MagpieCompression   string          `json:"MagpieCompression"`
	S3Settings          json.RawMessage `json:"S3Settings"`
	GlacierSettings     json.RawMessage `json:"GlacierSettings"`
	AzureSettings       json.RawMessage `json:"AzureSettings"`
	FtpSettings         json.RawMessage `json:"FtpSettings"`
	GoogleCloudSettings json.RawMessage `json:"GoogleCloudSettings"`
}

// RavenDB's encryption modes, and magpie's for age recipients.
const (
	ravenModeNone       = "None"
	ravenModeDatabase   = "UseDatabaseKey"
	ravenModeKey        = "UseProvidedKey"
	ravenModeRecipients = "MagpieRecipients"
)

var ravenModes = map[string]backup.Mode{
	"none": backup.ModeNone, "usedatabasekey": backup.ModeDatabase,
	"useprovidedkey": backup.ModeKey, "magpierecipients": backup.ModeRecipients,
}

func ravenMode(m backup.Mode) string {
	switch m {
	case backup.ModeNone:
		return ravenModeNone
	case backup.ModeDatabase:
		return ravenModeDatabase
	case backup.ModeKey:
		return ravenModeKey
	case backup.ModeRecipients:
		return ravenModeRecipients
	}
	return string(m)
}

// backupSpec is a checked backup request.
type backupSpec struct {
	To          string
	Type        backup.Type
	Encryption  backup.Mode
	Key         *keys.Key
	Recipients  []string
	Compression smuggler.Compression
}

func (b backupSpec) options(ctx context.Context) backup.Options {
	return backup.Options{
		To:          []string{b.To},
		Type:        b.Type,
		Encryption:  backup.Request{Mode: string(b.Encryption), Key: b.Key, Recipients: b.Recipients},
		Compression: b.Compression,
		Context:     ctx,
	}
}

func ravenBackupType(t backup.Type) string {
	if t == backup.Snapshot {
		return "Snapshot"
	}
	return "Backup"
}

// resolveBackup checks a backup configuration against the database and the
// rules of DESIGN.md section 1, in the API's terms, so that a request that
// cannot be honoured is refused (400) before anything is written.
func resolveBackup(c *backupConfigurationJSON, db *store.DB) (backupSpec, error) {
	var spec backupSpec
	switch strings.ToLower(c.BackupType) {
	case "", "backup":
		spec.Type = backup.Logical
	case "snapshot":
		spec.Type = backup.Snapshot
	default:
		return spec, fmt.Errorf("BackupType %q is not known. Use Backup (a logical backup) or Snapshot", c.BackupType)
	}
	if err := checkDestinations(c); err != nil {
		return spec, err
	}
	if c.LocalSettings == nil || c.LocalSettings.Disabled || strings.TrimSpace(c.LocalSettings.FolderPath) == "" {
		return spec, errors.New("LocalSettings.FolderPath is missing. Give the folder on the server's machine that receives the backups")
	}
	spec.To = filepath.Clean(c.LocalSettings.FolderPath)
	if !filepath.IsAbs(spec.To) {
		return spec, fmt.Errorf("LocalSettings.FolderPath %q is not an absolute path. Give the full path of a folder on the server's machine", c.LocalSettings.FolderPath)
	}
	switch strings.ToLower(c.MagpieCompression) {
	case "", "zstd":
		spec.Compression = smuggler.Zstd
	case "gzip":
		spec.Compression = smuggler.Gzip
	default:
		return spec, fmt.Errorf("MagpieCompression %q is not known. Use zstd (the default) or gzip (for RavenDB 4.x and 5.x)", c.MagpieCompression)
	}
	if spec.Type == backup.Snapshot && c.MagpieCompression != "" {
		return spec, errors.New("MagpieCompression applies to logical backups only: a snapshot's files are already compressed. Leave it out")
	}
	_, encrypted := db.SecretKey()
	mode, err := encryptionMode(c.BackupEncryptionSettings, spec.Type, db.Name(), encrypted)
	if err != nil {
		return spec, err
	}
	spec.Encryption = mode
	if es := c.BackupEncryptionSettings; es != nil {
		if mode == backup.ModeKey {
			k, err := keys.Parse(*es.Key)
			if err != nil {
				return spec, fmt.Errorf("BackupEncryptionSettings.Key: %v", err)
			}
			spec.Key = &k
		}
		spec.Recipients = es.MagpieRecipients
	}
	// The last word is backup's own check (it reads recipient files, too).
	dbKey, _ := db.SecretKey()
	if _, err := backup.Resolve(backup.Request{Mode: string(spec.Encryption), Key: spec.Key, Recipients: spec.Recipients}, spec.Type, db.Name(), dbKey, encrypted); err != nil {
		return spec, errors.New(apiWording(err.Error()))
	}
	return spec, nil
}

// encryptionMode reads BackupEncryptionSettings. With no mode, a key means
// UseProvidedKey, recipients mean MagpieRecipients, and otherwise an
// encrypted database uses its own key and an unencrypted one none.
func encryptionMode(es *encryptionSettingsJSON, typ backup.Type, dbName string, encrypted bool) (backup.Mode, error) {
	if es == nil {
		es = &encryptionSettingsJSON{}
	}
	hasKey := es.Key != nil && *es.Key != ""
	if !hasKey {
		es.Key = nil
	}
	var mode backup.Mode
	if es.EncryptionMode == "" {
		switch {
		case hasKey:
			mode = backup.ModeKey
		case len(es.MagpieRecipients) > 0:
			mode = backup.ModeRecipients
		case encrypted:
			mode = backup.ModeDatabase
		default:
			mode = backup.ModeNone
		}
	} else if m, ok := ravenModes[strings.ToLower(es.EncryptionMode)]; ok {
		mode = m
	} else {
		return "", fmt.Errorf("BackupEncryptionSettings.EncryptionMode %q is not known. Use None, UseDatabaseKey, UseProvidedKey or MagpieRecipients", es.EncryptionMode)
	}
	rm := ravenMode(mode)
	switch {
	case typ == backup.Snapshot && encrypted && mode != backup.ModeDatabase:
		return "", fmt.Errorf("a snapshot of encrypted database %s is a copy of its encrypted files, so it can only use EncryptionMode UseDatabaseKey, not %s. Leave out BackupEncryptionSettings, or make a logical backup (BackupType Backup)", dbName, rm)
	case mode == backup.ModeDatabase && !encrypted:
		return "", fmt.Errorf("EncryptionMode UseDatabaseKey needs an encrypted database, and %s is not encrypted. Use UseProvidedKey with a Key, MagpieRecipients, or None", dbName)
	case hasKey && mode != backup.ModeKey:
		return "", fmt.Errorf("BackupEncryptionSettings.Key was given but EncryptionMode %s takes no key. Use UseProvidedKey, or leave out the Key", rm)
	case !hasKey && mode == backup.ModeKey:
		return "", errors.New("EncryptionMode UseProvidedKey needs BackupEncryptionSettings.Key: the base64 text of 32 random bytes (GET /admin/secrets/generate makes one)")
	case len(es.MagpieRecipients) > 0 && mode != backup.ModeRecipients:
		return "", fmt.Errorf("BackupEncryptionSettings.MagpieRecipients was given but EncryptionMode %s takes no recipients. Use MagpieRecipients, or leave them out", rm)
	case len(es.MagpieRecipients) == 0 && mode == backup.ModeRecipients:
		return "", errors.New("EncryptionMode MagpieRecipients needs BackupEncryptionSettings.MagpieRecipients: age public keys (age1...) or SSH public keys")
	}
	return mode, nil
}

// checkDestinations refuses the upload destinations magpie does not have
// yet; a destination sent with Disabled: true is ignored.
func checkDestinations(c *backupConfigurationJSON) error {
	for _, d := range []struct {
		name string
		raw  json.RawMessage
	}{{"S3Settings", c.S3Settings}, {"GlacierSettings", c.GlacierSettings}, {"AzureSettings", c.AzureSettings}, {"FtpSettings", c.FtpSettings}, {"GoogleCloudSettings", c.GoogleCloudSettings}} {
		if len(d.raw) == 0 || string(d.raw) == "null" {
			continue
		}
		var v struct{ Disabled bool }
		if json.Unmarshal(d.raw, &v) == nil && v.Disabled {
			continue
		}
		return &notSupported{fmt.Sprintf("%s: uploading backups to %s is not supported by magpie yet. Use LocalSettings.FolderPath, a folder on the server's machine", d.name, strings.TrimSuffix(d.name, "Settings"))}
	}
	return nil
}

// notSupported is a request for a feature magpie does not have (501).
type notSupported struct{ msg string }

func (e *notSupported) Error() string { return e.msg }

// badRequest answers 400 (or 501 for a missing feature) with err's
// sentence.
func badRequest(w http.ResponseWriter, err error) {
	var ns *notSupported
	if errors.As(err, &ns) {
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
}

type readCount struct {
	ReadCount int64 `json:"ReadCount"`
}

// POST /databases/{db}/admin/backup  body: BackupConfiguration
func (s *Server) handleOneTimeBackup(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	var c backupConfigurationJSON
	if !readJSON(w, r, maxConfigBody, &c) {
		return
	}
	spec, err := resolveBackup(&c, db)
	if err != nil {
		badRequest(w, err)
		return
	}
	op, err := s.startBackup(db, spec, 0)
	if err != nil {
		s.operationRefused(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "OperationNodeTag": NodeTag})
}

// operationRefused answers when no operation could be started.
func (s *Server) operationRefused(w http.ResponseWriter, err error) {
	if errors.Is(err, errServerStopping) {
		writeError(w, http.StatusServiceUnavailable, typeRaven, "The server is shutting down, so it starts no new operation. Try again once it is back.")
		return
	}
	badRequest(w, err)
}

// startBackup runs a backup of db as an operation. taskID names the backup
// task whose status it updates (0 for a one-time backup); the status is
// saved before the operation reports Completed.
func (s *Server) startBackup(db *store.DB, spec backupSpec, taskID int64) (*operation, error) {
	ts := s.extras().tasks
	kind := "Backup"
	if taskID != 0 {
		kind = fmt.Sprintf("Backup task %d", taskID)
	}
	ops := s.extras().ops
	// Holding the task store's lock while the operation is registered
	// makes "one running backup per task" atomic.
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var task *backupTask
	if taskID != 0 {
		t, err := ts.loadLocked(db)
		if err != nil {
			return nil, err
		}
		if task = t.find(taskID); task == nil {
			return nil, fmt.Errorf("backup task %d does not exist in database %s", taskID, db.Name())
		}
		if task.running != nil {
			if st := ops.state(task.running); st.Status == OperationInProgress {
				return nil, fmt.Errorf("a backup of task %d is already running (operation %d). Wait for it to end", taskID, task.running.id)
			}
		}
	}
	op, err := ops.start(db.Name(), kind, AccessDatabaseAdmin, func(ctx context.Context, op *operation) (any, error) {
		ops.setProgress(op, map[string]any{"Message": "writing the backup of " + db.Name()})
		if testHookBackup != nil {
			testHookBackup(ctx)
		}
		start := time.Now()
		res, err := backup.Run(db, spec.options(ctx))
		if task != nil {
			s.recordBackup(db, task, op, spec, res, err, time.Since(start))
		}
		if err != nil {
			if errors.Is(err, backup.ErrCanceled) {
				s.log.Info("backup canceled", "db", db.Name(), "operation", op.id)
			} else {
				s.log.Warn("backup failed", "db", db.Name(), "operation", op.id, "err", err)
			}
			return nil, err
		}
		out := &backupResult{
			Message:          fmt.Sprintf("Backup of %s written to %s (%d documents).", db.Name(), res.File, res.Entry.Documents),
			Documents:        readCount{res.Entry.Documents},
			Tombstones:       readCount{res.Entry.Tombstones},
			Attachments:      readCount{res.Entry.Attachments},
			LastEtag:         res.Entry.ToEtag,
			IsEncrypted:      res.Manifest.Encryption != backup.ModeNone,
			MagpieEncryption: res.Manifest.Encryption,
			MagpieSize:       res.Entry.Size,
		}
		out.LocalBackup.BackupDirectory = res.ChainDir
		out.LocalBackup.FileName = res.Entry.Name
		out.SnapshotBackup.Skipped = spec.Type != backup.Snapshot
		s.log.Info("backup written", "db", db.Name(), "operation", op.id, "chain", res.ChainDir, "documents", res.Entry.Documents)
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	if task != nil {
		task.running = op
	}
	return op, nil
}

// recordBackup saves a task's status after a run, before its operation
// reports its end.
func (s *Server) recordBackup(db *store.DB, task *backupTask, op *operation, spec backupSpec, res *backup.Result, runErr error, took time.Duration) {
	ts := s.extras().tasks
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := time.Now().UTC()
	st := task.Status
	if st == nil {
		st = &backupStatus{TaskID: task.TaskID, NodeTag: NodeTag}
	}
	st.BackupType = ravenBackupType(spec.Type)
	st.Version++
	id := op.id
	st.LastOperationID = &id
	if st.LocalBackup == nil {
		st.LocalBackup = &localBackupStatus{}
	}
	ms := took.Milliseconds()
	if runErr != nil {
		msg := runErr.Error()
		st.Error = &backupError{Exception: msg, At: *wireNow(now)}
		st.LocalBackup.Exception = &msg
	} else {
		at := wireNow(res.Entry.Created)
		st.IsFull = true
		st.LastFullBackup, st.LastFullBackupInternal = at, at
		st.LocalBackup.LastFullBackup = at
		st.LocalBackup.BackupDirectory = res.ChainDir
		st.LocalBackup.FileName = res.Entry.Name
		st.LocalBackup.FullBackupDurationInMs = &ms
		st.LocalBackup.Exception = nil
		etag := res.Entry.ToEtag
		st.LastEtag = &etag
		st.LastRaftIndex = &raftIndexStatus{LastEtag: nextRaftIndex()}
		st.FolderName = filepath.Base(res.ChainDir)
		st.DurationInMs = ms
		st.Error = nil
		st.IsEncrypted = res.Manifest.Encryption != backup.ModeNone
	}
	task.Status = st
	t, err := ts.loadLocked(db)
	if err == nil {
		err = ts.saveLocked(t)
	}
	if err != nil {
		// The backup itself is complete; only its status may be lost
		// across a restart.
		s.log.Error("cannot save the status of a backup task", "db", db.Name(), "task", task.TaskID, "err", err)
	}
}

// ---------------------------------------------------------------------
// Backup tasks.

// backupTask is a backup task as kept in memory and (without key) on disk.
type backupTask struct {
	TaskID                     int64       `json:"TaskId"`
	Name                       string      `json:"Name"`
	Disabled                   bool        `json:"Disabled"`
	BackupType                 string      `json:"BackupType"`
	FullBackupFrequency        string      `json:"FullBackupFrequency"`
	IncrementalBackupFrequency string      `json:"IncrementalBackupFrequency"`
	FolderPath                 string      `json:"FolderPath"`
	Encryption                 backup.Mode `json:"Encryption"`
	// KeyFingerprint names the provided key (UseProvidedKey), which is
	// never written to disk.
	KeyFingerprint string        `json:"KeyFingerprint,omitempty"`
	Recipients     []string      `json:"Recipients,omitempty"`
	Compression    string        `json:"Compression"`
	CreatedAt      wireTime      `json:"CreatedAt"`
	Status         *backupStatus `json:"Status"`

	// key is the provided key, in memory only.
	key *keys.Key
	// running is the task's last backup operation.
	running *operation
}

func (t *backupTask) spec() (backupSpec, error) {
	spec := backupSpec{To: t.FolderPath, Type: backup.Logical, Encryption: t.Encryption, Key: t.key, Recipients: t.Recipients, Compression: smuggler.Zstd}
	if t.BackupType == "Snapshot" {
		spec.Type = backup.Snapshot
	}
	if t.Compression == "gzip" {
		spec.Compression = smuggler.Gzip
	}
	if t.Encryption == backup.ModeKey && t.key == nil {
		return spec, fmt.Errorf("the key of backup task %d (fingerprint %s) is kept in memory only, and the server restarted since it was given. Give it again with UpdatePeriodicBackupOperation (BackupEncryptionSettings.Key)", t.TaskID, t.KeyFingerprint)
	}
	return spec, nil
}

// testHookBackup, when set by a test, runs in a backup operation just
// before the backup starts writing.
var testHookBackup func(ctx context.Context)

// backupStatus is RavenDB's PeriodicBackupStatus.
type backupStatus struct {
	TaskID                        int64              `json:"TaskId"`
	BackupType                    string             `json:"BackupType"`
	IsFull                        bool               `json:"IsFull"`
	NodeTag                       string             `json:"NodeTag"`
	LastFullBackup                *wireTime          `json:"LastFullBackup"`
	LastIncrementalBackup         *wireTime          `json:"LastIncrementalBackup"`
	LastFullBackupInternal        *wireTime          `json:"LastFullBackupInternal"`
	LastIncrementalBackupInternal *wireTime          `json:"LastIncrementalBackupInternal"`
	DelayUntil                    *wireTime          `json:"DelayUntil"`
	OriginalBackupTime            *wireTime          `json:"OriginalBackupTime"`
	LocalBackup                   *localBackupStatus `json:"LocalBackup"`
	UploadToS3                    any                `json:"UploadToS3"`
	UploadToGlacier               any                `json:"UploadToGlacier"`
	UploadToAzure                 any                `json:"UploadToAzure"`
	UploadToGoogleCloud           any                `json:"UploadToGoogleCloud"`
	UploadToFtp                   any                `json:"UploadToFtp"`
	LastEtag                      *uint64            `json:"LastEtag"`
	LastDatabaseChangeVector      *string            `json:"LastDatabaseChangeVector"`
	LastRaftIndex                 *raftIndexStatus   `json:"LastRaftIndex"`
	FolderName                    string             `json:"FolderName"`
	DurationInMs                  int64              `json:"DurationInMs"`
	LocalRetentionDurationInMs    *int64             `json:"LocalRetentionDurationInMs"`
	Version                       int64              `json:"Version"`
	Error                         *backupError       `json:"Error"`
	LastOperationID               *int64             `json:"LastOperationId"`
	IsEncrypted                   bool               `json:"IsEncrypted"`
}

type localBackupStatus struct {
	BackupDirectory               string    `json:"BackupDirectory"`
	FileName                      string    `json:"FileName"`
	TempFolderUsed                bool      `json:"TempFolderUsed"`
	LastFullBackup                *wireTime `json:"LastFullBackup"`
	LastIncrementalBackup         *wireTime `json:"LastIncrementalBackup"`
	FullBackupDurationInMs        *int64    `json:"FullBackupDurationInMs"`
	IncrementalBackupDurationInMs *int64    `json:"IncrementalBackupDurationInMs"`
	Exception                     *string   `json:"Exception"`
}

type raftIndexStatus struct {
	LastEtag int64 `json:"LastEtag"`
}

type backupError struct {
	Exception string   `json:"Exception"`
	At        wireTime `json:"At"`
}

// tasksFileFormat is the version of DATA/backup-tasks/NAME.json.
const tasksFileFormat = 1

// tasksFile is one database's backup tasks. DatabaseID ties it to the
// database it was written for: a later database of the same name (deleted
// and created again, or restored) does not inherit its tasks.
type tasksFile struct {
	Format     int           `json:"Format"`
	Database   string        `json:"Database"`
	DatabaseID string        `json:"DatabaseId"`
	NextTaskID int64         `json:"NextTaskId"`
	Tasks      []*backupTask `json:"Tasks"`
}

type dbTasks struct {
	// db is the open database these tasks were checked against.
	db   *store.DB
	file tasksFile
}

func (t *dbTasks) find(id int64) *backupTask {
	for _, task := range t.file.Tasks {
		if task.TaskID == id {
			return task
		}
	}
	return nil
}

// taskStore holds the backup tasks of every database, loaded on first use.
type taskStore struct {
	dir string
	mu  sync.Mutex
	dbs map[string]*dbTasks
}

func (ts *taskStore) path(name string) string { return filepath.Join(ts.dir, lower(name)+".json") }

// loadLocked returns db's tasks. Called with mu held.
func (ts *taskStore) loadLocked(db *store.DB) (*dbTasks, error) {
	key := lower(db.Name())
	t := ts.dbs[key]
	if t != nil && t.db == db {
		return t, nil
	}
	st, err := db.Stats()
	if err != nil {
		return nil, err
	}
	if t != nil && t.file.DatabaseID == st.DatabaseID {
		t.db = db
		return t, nil
	}
	t = &dbTasks{db: db, file: tasksFile{Format: tasksFileFormat, Database: db.Name(), DatabaseID: st.DatabaseID, NextTaskID: 1}}
	data, err := os.ReadFile(ts.path(db.Name()))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cannot read the backup tasks of %s: %w", db.Name(), err)
	default:
		var f tasksFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("the backup tasks file %s is damaged (%v). Move it away to start with no tasks", ts.path(db.Name()), err)
		}
		if f.Format != tasksFileFormat {
			return nil, fmt.Errorf("the backup tasks file %s has format %d, which this magpie does not know. Use a matching magpie version", ts.path(db.Name()), f.Format)
		}
		if f.DatabaseID == st.DatabaseID {
			t.file = f
			t.file.Database = db.Name()
			if t.file.NextTaskID < 1 {
				t.file.NextTaskID = 1
			}
		}
	}
	ts.dbs[key] = t
	return t, nil
}

// saveLocked writes db's tasks atomically, 0600, without key material.
func (ts *taskStore) saveLocked(t *dbTasks) error {
	data, err := json.MarshalIndent(t.file, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ts.dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", ts.dir, err)
	}
	return atomicfile.Replace(ts.path(t.file.Database), append(data, '\n'), 0o600)
}

// POST /databases/{db}/admin/periodic-backup  body: PeriodicBackupConfiguration
func (s *Server) handleUpdateBackupTask(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	var c backupConfigurationJSON
	if !readJSON(w, r, maxConfigBody, &c) {
		return
	}
	spec, err := resolveBackup(&c, db)
	if err != nil {
		badRequest(w, err)
		return
	}
	if c.TaskID < 0 {
		badRequest(w, fmt.Errorf("TaskId %d is not valid. Give 0 (or leave it out) for a new task, or the id of the task to update", c.TaskID))
		return
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.loadLocked(db)
	if err != nil {
		s.storeError(w, err)
		return
	}
	var task *backupTask
	if c.TaskID != 0 {
		if task = t.find(c.TaskID); task == nil {
			badRequest(w, fmt.Errorf("backup task %d does not exist in database %s. Give TaskId 0 to create a task", c.TaskID, db.Name()))
			return
		}
	}
	name := strings.TrimSpace(c.Name)
	for _, other := range t.file.Tasks {
		if name != "" && other != task && strings.EqualFold(other.Name, name) {
			badRequest(w, fmt.Errorf("database %s already has a backup task named %q (task %d). Choose another name, or give TaskId %d to update it", db.Name(), other.Name, other.TaskID, other.TaskID))
			return
		}
	}
	updated := &backupTask{
		Name:                       name,
		Disabled:                   c.Disabled,
		BackupType:                 ravenBackupType(spec.Type),
		FullBackupFrequency:        c.FullBackupFrequency,
		IncrementalBackupFrequency: c.IncrementalBackupFrequency,
		FolderPath:                 spec.To,
		Encryption:                 spec.Encryption,
		Recipients:                 spec.Recipients,
		Compression:                spec.Compression.String(),
		key:                        spec.Key,
	}
	if spec.Key != nil {
		updated.KeyFingerprint = spec.Key.Fingerprint()
	}
	if task == nil {
		updated.TaskID = t.file.NextTaskID
		updated.CreatedAt = wireTime(time.Now().UTC())
		t.file.NextTaskID++
		if updated.Name == "" {
			updated.Name = fmt.Sprintf("Backup #%d", updated.TaskID)
		}
		t.file.Tasks = append(t.file.Tasks, updated)
		task = updated
	} else {
		if updated.Name == "" {
			updated.Name = task.Name
		}
		updated.TaskID, updated.CreatedAt, updated.Status, updated.running = task.TaskID, task.CreatedAt, task.Status, task.running
		*task = *updated
	}
	if err := ts.saveLocked(t); err != nil {
		s.storeError(w, err)
		return
	}
	s.log.Info("backup task saved", "db", db.Name(), "task", task.TaskID, "type", task.BackupType, "encryption", task.Encryption)
	writeJSON(w, http.StatusOK, map[string]any{"TaskId": task.TaskID, "RaftCommandIndex": nextRaftIndex()})
}

// POST /databases/{db}/admin/backup/database?isFullBackup=&taskId=
func (s *Server) handleStartBackup(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	q := r.URL.Query()
	switch strings.ToLower(q.Get("isFullBackup")) {
	case "", "true":
	case "false":
		writeError(w, http.StatusNotImplemented, typeNotSupported, "Incremental backups through the API are not supported by magpie yet. Run a full backup (isFullBackup=true).")
		return
	default:
		badRequest(w, fmt.Errorf("isFullBackup %q is not true or false", q.Get("isFullBackup")))
		return
	}
	taskID, err := strconv.ParseInt(q.Get("taskId"), 10, 64)
	if err != nil || taskID <= 0 {
		badRequest(w, fmt.Errorf("taskId %q is not a backup task id. Give the TaskId that UpdatePeriodicBackupOperation answered", q.Get("taskId")))
		return
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, err := ts.loadLocked(db)
	var task *backupTask
	if err == nil {
		task = t.find(taskID)
	}
	var spec backupSpec
	var specErr error
	if task != nil {
		spec, specErr = task.spec()
		if task.Disabled && specErr == nil {
			specErr = fmt.Errorf("backup task %d (%s) is disabled. Enable it (Disabled: false) with UpdatePeriodicBackupOperation first", task.TaskID, task.Name)
		}
	}
	ts.mu.Unlock()
	switch {
	case err != nil:
		s.storeError(w, err)
		return
	case task == nil:
		badRequest(w, fmt.Errorf("backup task %d does not exist in database %s. Create it with UpdatePeriodicBackupOperation", taskID, db.Name()))
		return
	case specErr != nil:
		badRequest(w, specErr)
		return
	}
	op, err := s.startBackup(db, spec, taskID)
	if err != nil {
		s.operationRefused(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "ResponsibleNode": NodeTag})
}

// GET /periodic-backup/status?name=&taskId=
func (s *Server) handleBackupStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		badRequest(w, errors.New("no database was given. Give it as ?name=DB"))
		return
	}
	if _, ok := s.allow(w, r, AccessRead, name); !ok {
		return
	}
	taskID, err := strconv.ParseInt(q.Get("taskId"), 10, 64)
	if err != nil || taskID <= 0 {
		badRequest(w, fmt.Errorf("taskId %q is not a backup task id. Give the TaskId that UpdatePeriodicBackupOperation answered", q.Get("taskId")))
		return
	}
	db, err := s.openDB(name)
	if err != nil {
		s.databaseError(w, name, err)
		return
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, err := ts.loadLocked(db)
	var body []byte
	var task *backupTask
	if err == nil {
		if task = t.find(taskID); task != nil {
			body, err = json.Marshal(map[string]any{"IsSharded": false, "Status": task.Status})
		}
	}
	ts.mu.Unlock()
	switch {
	case err != nil:
		s.storeError(w, err)
	case task == nil:
		badRequest(w, fmt.Errorf("backup task %d does not exist in database %s", taskID, db.Name()))
	default:
		writeJSON(w, http.StatusOK, json.RawMessage(body))
	}
}

// DELETE /databases/{db}/admin/tasks?id=&type=Backup (DeleteOngoingTaskOperation)
func (s *Server) handleDeleteTask(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	q := r.URL.Query()
	if typ := q.Get("type"); !strings.EqualFold(typ, "Backup") {
		writeError(w, http.StatusNotImplemented, typeNotSupported, fmt.Sprintf("Ongoing tasks of type %q are not supported by magpie: its only tasks are backups (type=Backup).", typ))
		return
	}
	taskID, err := strconv.ParseInt(q.Get("id"), 10, 64)
	if err != nil || taskID <= 0 {
		badRequest(w, fmt.Errorf("id %q is not a backup task id", q.Get("id")))
		return
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, err := ts.loadLocked(db)
	var task *backupTask
	if err == nil {
		if task = t.find(taskID); task != nil {
			kept := t.file.Tasks[:0]
			for _, other := range t.file.Tasks {
				if other != task {
					kept = append(kept, other)
				}
			}
			t.file.Tasks = kept
			err = ts.saveLocked(t)
			if task.running != nil {
				task.running.cancel(fmt.Errorf("backup task %d was deleted", taskID))
			}
		}
	}
	ts.mu.Unlock()
	switch {
	case err != nil:
		s.storeError(w, err)
		return
	case task == nil:
		badRequest(w, fmt.Errorf("backup task %d does not exist in database %s", taskID, db.Name()))
		return
	}
	s.log.Info("backup task deleted", "db", db.Name(), "task", taskID)
	writeJSON(w, http.StatusOK, map[string]any{"TaskId": taskID, "RaftCommandIndex": nextRaftIndex()})
}

// ---------------------------------------------------------------------
// Restore.

// restoreConfigurationJSON is RavenDB's RestoreBackupConfiguration plus
// magpie's MagpieIdentity: the path, on the server's machine, of the age
// identity file that opens a backup made for MagpieRecipients.
type restoreConfigurationJSON struct {
	DatabaseName             string                  `json:"DatabaseName"`
	BackupLocation           string                  `json:"BackupLocation"`
	LastFileNameToRestore    string                  `json:"LastFileNameToRestore"`
	DataDirectory            string                  `json:"DataDirectory"`
	EncryptionKey            *string                 `json:"EncryptionKey"`
	DisableOngoingTasks      bool                    `json:"DisableOngoingTasks"`
	SkipIndexes              bool                    `json:"SkipIndexes"`
	Type                     string                  `json:"Type"`
	ShardRestoreSettings     json.RawMessage         `json:"ShardRestoreSettings"`
	BackupEncryptionSettings *encryptionSettingsJSON `json:"BackupEncryptionSettings"`
	MagpieIdentity           string                  `json:"MagpieIdentity"`
}

// restoreRequest is a checked restore request. newKey and dec.Key are key
// material: never logged.
type restoreRequest struct {
	name     string
	location string
	last     string
	newKey   *keys.Key
	dec      *backup.Decryption
	// keyFrom names the field the decryption key came from.
	keyFrom string
}

// restoreResult is a finished restore's operation Result.
type restoreResult struct {
	Message          string   `json:"Message"`
	DatabaseName     string   `json:"DatabaseName"`
	BackupDirectory  string   `json:"BackupDirectory"`
	Files            []string `json:"Files"`
	IsEncrypted      bool     `json:"IsEncrypted"`
	KeyFingerprint   string   `json:"KeyFingerprint,omitempty"`
	CountOfDocuments int64    `json:"CountOfDocuments"`
}

// POST /admin/restore/database  body: RestoreBackupConfiguration
func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	var c restoreConfigurationJSON
	if !readJSON(w, r, maxConfigBody, &c) {
		return
	}
	req, err := s.checkRestore(&c)
	if err != nil {
		badRequest(w, err)
		return
	}
	ops := s.extras().ops
	op, err := ops.start("", "Restore "+req.name, AccessOperator, func(ctx context.Context, op *operation) (any, error) {
		return s.runRestore(ctx, op, req)
	})
	if err != nil {
		s.operationRefused(w, err)
		return
	}
	s.log.Info("restore started", "db", req.name, "location", req.location, "operation", op.id)
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "OperationNodeTag": NodeTag})
}

// checkRestore checks what can be checked without reading the backup; the
// rest (the backup's keys, the name being free) faults the operation.
func (s *Server) checkRestore(c *restoreConfigurationJSON) (*restoreRequest, error) {
	switch {
	case strings.TrimSpace(c.DatabaseName) == "":
		return nil, errors.New("DatabaseName is missing. Give the name of the new database")
	case strings.TrimSpace(c.BackupLocation) == "":
		return nil, errors.New("BackupLocation is missing. Give the backup folder (or a backup file) on the server's machine")
	case c.Type != "" && !strings.EqualFold(c.Type, "Local"):
		return nil, &notSupported{fmt.Sprintf("restoring from %s is not supported by magpie yet. Use Type Local with BackupLocation a folder on the server's machine", c.Type)}
	case c.DataDirectory != "":
		return nil, errors.New("DataDirectory is not supported by magpie: every database lives in the server's data dir. Leave it out")
	case len(c.ShardRestoreSettings) > 0 && string(c.ShardRestoreSettings) != "null":
		return nil, &notSupported{"sharded restores are not supported by magpie, which has no shards"}
	}
	if err := store.ValidateDatabaseName(c.DatabaseName); err != nil {
		return nil, err
	}
	location := filepath.Clean(c.BackupLocation)
	if !filepath.IsAbs(location) {
		return nil, fmt.Errorf("BackupLocation %q is not an absolute path. Give the full path of the backup folder on the server's machine", c.BackupLocation)
	}
	req := &restoreRequest{name: c.DatabaseName, location: location, last: c.LastFileNameToRestore, dec: &backup.Decryption{}}
	if c.EncryptionKey != nil && *c.EncryptionKey != "" {
		if s.cfg.Unsecured {
			return nil, errors.New(unsecuredCreateMessage(c.DatabaseName))
		}
		k, err := keys.Parse(*c.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("EncryptionKey: %v", err)
		}
		req.newKey = &k
		req.dec.Key = &k
		req.keyFrom = "EncryptionKey"
	}
	if es := c.BackupEncryptionSettings; es != nil {
		if len(es.MagpieRecipients) > 0 {
			return nil, errors.New("BackupEncryptionSettings.MagpieRecipients is for making backups. To open a backup made for age recipients, give MagpieIdentity, the path of the identity file on the server's machine")
		}
		mode := strings.ToLower(es.EncryptionMode)
		if _, known := ravenModes[mode]; mode != "" && !known {
			return nil, fmt.Errorf("BackupEncryptionSettings.EncryptionMode %q is not known. Use None, UseDatabaseKey or UseProvidedKey", es.EncryptionMode)
		}
		if es.Key != nil && *es.Key != "" {
			if mode == "none" {
				return nil, errors.New("BackupEncryptionSettings.Key was given with EncryptionMode None. Leave out the Key, or use UseProvidedKey")
			}
			k, err := keys.Parse(*es.Key)
			if err != nil {
				return nil, fmt.Errorf("BackupEncryptionSettings.Key: %v", err)
			}
			// This key only decrypts; EncryptionKey, if any, still
			// becomes the restored database's key.
			req.dec.Key = &k
			req.keyFrom = "BackupEncryptionSettings.Key"
		} else if mode == "useprovidedkey" {
			return nil, errors.New("BackupEncryptionSettings.EncryptionMode UseProvidedKey needs BackupEncryptionSettings.Key, the backup's key")
		}
	}
	if c.MagpieIdentity != "" {
		if !filepath.IsAbs(c.MagpieIdentity) {
			return nil, fmt.Errorf("MagpieIdentity %q is not an absolute path. Give the full path of the age identity file on the server's machine", c.MagpieIdentity)
		}
		d, err := backup.LoadDecryption("", c.MagpieIdentity)
		if err != nil {
			return nil, err
		}
		req.dec.Identities = d.Identities
	}
	return req, nil
}

// runRestore is a restore operation. Whatever fails, no database is left
// under the name.
func (s *Server) runRestore(ctx context.Context, op *operation, req *restoreRequest) (any, error) {
	ops := s.extras().ops
	fail := func(err error) error {
		s.log.Warn("restore failed", "db", req.name, "operation", op.id, "err", err)
		return err
	}
	if _, err := s.lookupInfo(req.name); err == nil {
		return nil, fail(faultf("database %s already exists. Choose another DatabaseName, or delete it first", req.name))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fail(err)
	}
	ops.setProgress(op, map[string]any{"Message": "reading " + req.location})
	t, err := restore.Locate(ctx, req.location, restore.Until{File: req.last})
	if err != nil {
		return nil, fail(&userFault{msg: apiWording(strings.Replace(err.Error(), "--until", "LastFileNameToRestore", 1))})
	}
	defer t.Close()
	m := t.Manifest
	if err := checkRestoreKeys(t, req); err != nil {
		return nil, fail(err)
	}
	encrypted := req.newKey != nil || m.SourceEncrypted
	if encrypted && s.cfg.Unsecured {
		return nil, fail(faultf("%s", unsecuredCreateMessage(req.name)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ops.setProgress(op, map[string]any{"Message": "restoring " + t.ChainDir + " as " + req.name})
	res, err := restore.Restore(s.data, t, restore.Options{As: req.name, Decryption: req.dec, NewKey: req.newKey, Context: ctx})
	if testHookRestored != nil {
		testHookRestored(ctx)
	}
	if err != nil {
		var ue *userFault
		if !errors.As(err, &ue) {
			err = &wrappedFault{msg: apiWording(err.Error()), err: err}
		}
		return nil, fail(err)
	}
	if ctx.Err() != nil {
		// A restore cannot stop part-way: it finished, and is undone.
		s.closeDB(req.name)
		if derr := s.data.DeleteDatabase(req.name); derr != nil {
			s.log.Error("cannot remove the database of a canceled restore", "db", req.name, "err", derr)
		}
		return nil, context.Cause(ctx)
	}
	// Drop any handle cached under the name before the restore (none is
	// expected), so the next request opens the restored database.
	if err := s.closeDB(req.name); err != nil {
		s.log.Warn("closing a stale handle after a restore failed", "db", req.name, "err", err)
	}
	var docs int64
	if res.Stats != nil {
		docs = res.Stats.CountOfDocuments
	}
	s.log.Info("database restored", "db", req.name, "operation", op.id, "chain", res.ChainDir, "documents", docs, "encrypted", res.Encrypted)
	return &restoreResult{
		Message:          fmt.Sprintf("Restored %s from %s (%d documents).", req.name, res.ChainDir, docs),
		DatabaseName:     req.name,
		BackupDirectory:  res.ChainDir,
		Files:            res.Files,
		IsEncrypted:      res.Encrypted,
		KeyFingerprint:   res.KeyFingerprint,
		CountOfDocuments: docs,
	}, nil
}

// testHookRestored, when set by a test, runs in a restore operation just
// after the restore itself.
var testHookRestored func(ctx context.Context)

// wrappedFault is an error of restore whose text was reworded for the API;
// errors.Is still sees the original.
type wrappedFault struct {
	msg string
	err error
}

func (e *wrappedFault) Error() string { return e.msg }
func (e *wrappedFault) Unwrap() error { return e.err }

// apiWording rewords the CLI hints in backup and restore errors for API
// callers.
var apiReplacer = strings.NewReplacer(
	"with --key-file FILE", "in EncryptionKey or BackupEncryptionSettings.Key",
	"with --key-file", "in EncryptionKey or BackupEncryptionSettings.Key",
	"with --identity FILE", "in MagpieIdentity",
	"--new-key-file", "EncryptionKey",
	"--recipient number ", "MagpieRecipients entry ",
	"Use --encryption key --key-file FILE or --encryption recipients --recipient KEY", "Use UseProvidedKey with a Key, or MagpieRecipients",
)

func apiWording(s string) string { return apiReplacer.Replace(s) }

// checkRestoreKeys makes sure the request carries what the chain needs, in
// the API's terms, before anything is created (restore checks again).
func checkRestoreKeys(t *restore.Target, req *restoreRequest) error {
	m := t.Manifest
	switch m.Encryption {
	case backup.ModeKey, backup.ModeDatabase:
		what := "its key (BackupEncryptionSettings.Key)"
		if m.Encryption == backup.ModeDatabase {
			what = "the database's secret key (EncryptionKey, which the restored database then keeps, or BackupEncryptionSettings.Key)"
		}
		if req.dec.Key == nil {
			return faultf("the backup in %s is encrypted and no key was given. Give %s", t.ChainDir, what)
		}
		if req.dec.Key.Fingerprint() != m.KeyFingerprint {
			return faultf("the key given in %s (fingerprint %s) is not the key of the backup in %s (fingerprint %s). Give %s", req.keyFrom, req.dec.Key.Fingerprint(), t.ChainDir, m.KeyFingerprint, what)
		}
	case backup.ModeRecipients:
		if len(req.dec.Identities) == 0 {
			return faultf("the backup in %s is encrypted to age recipients and no identity was given. Give MagpieIdentity, the path of the matching age identity file on the server's machine", t.ChainDir)
		}
	}
	// A logical backup of an encrypted database that was not made with the
	// database's key would be restored with a new key nobody was shown.
	if m.SourceEncrypted && req.newKey == nil && m.Encryption != backup.ModeDatabase {
		return faultf("the backup in %s comes from encrypted database %s, so the restored database is encrypted too. Give its secret key in EncryptionKey (GET /admin/secrets/generate makes one)", t.ChainDir, m.Database)
	}
	return nil
}

// ---------------------------------------------------------------------
// Restore points.

// restorePoint is RavenDB's RestorePoint: one file a restore can stop at.
type restorePoint struct {
	DateTime          wireTime `json:"DateTime"`
	Location          string   `json:"Location"`
	FileName          string   `json:"FileName"`
	IsSnapshotRestore bool     `json:"IsSnapshotRestore"`
	IsIncremental     bool     `json:"IsIncremental"`
	FilesToRestore    int      `json:"FilesToRestore"`
	DatabaseName      string   `json:"DatabaseName"`
	IsEncrypted       bool     `json:"IsEncrypted"`
	// MagpieEncryption is the chain's mode: none, database, key or
	// recipients.
	MagpieEncryption backup.Mode `json:"MagpieEncryption"`
}

// POST /admin/restore/points?type=Local  body: {"FolderPath": "..."}
func (s *Server) handleRestorePoints(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	if typ := r.URL.Query().Get("type"); typ != "" && !strings.EqualFold(typ, "Local") {
		writeError(w, http.StatusNotImplemented, typeNotSupported, fmt.Sprintf("Restore points from %s are not supported by magpie yet. Use type=Local with a folder on the server's machine.", typ))
		return
	}
	var body struct {
		FolderPath string `json:"FolderPath"`
	}
	if !readJSON(w, r, maxConfigBody, &body) {
		return
	}
	if strings.TrimSpace(body.FolderPath) == "" || !filepath.IsAbs(body.FolderPath) {
		badRequest(w, errors.New("FolderPath must be the absolute path of a backup folder on the server's machine"))
		return
	}
	folder, err := destination.OpenLocal(filepath.Clean(body.FolderPath))
	if err != nil {
		badRequest(w, err)
		return
	}
	chains, err := backup.FindChains(r.Context(), folder)
	if err != nil {
		badRequest(w, errors.New(apiWording(err.Error())))
		return
	}
	list := []restorePoint{}
	type skipped struct {
		Location string `json:"Location"`
		Problem  string `json:"Problem"`
	}
	skips := []skipped{}
	for _, c := range chains {
		if !c.Complete() {
			skips = append(skips, skipped{c.Location(), c.Problem})
			continue
		}
		m := c.Manifest
		for i, f := range m.Files {
			list = append(list, restorePoint{
				DateTime:          wireTime(f.Created),
				Location:          c.Location(),
				FileName:          f.Name,
				IsSnapshotRestore: f.Kind == backup.KindSnapshot,
				IsIncremental:     f.Kind == backup.KindIncremental,
				FilesToRestore:    i + 1,
				DatabaseName:      m.Database,
				IsEncrypted:       m.Encryption != backup.ModeNone,
				MagpieEncryption:  m.Encryption,
			})
		}
	}
	// Newest first, as RavenDB lists them.
	sort.SliceStable(list, func(i, j int) bool { return time.Time(list[i].DateTime).After(time.Time(list[j].DateTime)) })
	writeJSON(w, http.StatusOK, map[string]any{"List": list, "MagpieSkipped": skips})
}
