package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/magpiedb/magpie/internal/atomicfile"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
)

// A backup task's configuration is the database's (package tasks keeps it
// in the database record); what the task did is the server's run state,
// kept here: in memory, and its status in DATA/backup-tasks/NAME.json
// (0600), tied to the database's id so that a later database of the same
// name (deleted and created again, or restored) does not inherit it.

// statusFileFormat is the version of DATA/backup-tasks/NAME.json. Format 1
// held the tasks themselves too; it is read once and its tasks moved into
// the database record.
const statusFileFormat = 2

// statusFile is one database's task statuses.
type statusFile struct {
	Format     int                      `json:"Format"`
	Database   string                   `json:"Database"`
	DatabaseID string                   `json:"DatabaseId"`
	Status     map[string]*backupStatus `json:"Status"`
}

// backupStatus is RavenDB's PeriodicBackupStatus plus magpie's fields
// (Magpie*), which say what RavenDB's leave out: the size and file of the
// last backups, retries, what retention deleted, what runs next.
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

	// MagpieLastFullBackupSize and MagpieLastFullBackupFile describe the
	// last full backup (or snapshot): its size in bytes and its location
	// in the first destination; likewise the last incremental.
	MagpieLastFullBackupSize        *int64  `json:"MagpieLastFullBackupSize"`
	MagpieLastFullBackupFile        *string `json:"MagpieLastFullBackupFile"`
	MagpieLastIncrementalBackupSize *int64  `json:"MagpieLastIncrementalBackupSize"`
	MagpieLastIncrementalBackupFile *string `json:"MagpieLastIncrementalBackupFile"`
	// MagpieLocations are the chain folder of the last backup in every
	// destination.
	MagpieLocations []string `json:"MagpieLocations"`
	// MagpieFailures counts the runs that failed in a row (0 after a
	// success); a failed scheduled run is retried after 1, 5, then every
	// 15 minutes, or at its next scheduled time when that comes first.
	// MagpieFailedFull says the failing run was a full one.
	MagpieFailures   int  `json:"MagpieFailures"`
	MagpieFailedFull bool `json:"MagpieFailedFull"`
	// MagpieNeedsFullBackup is set when the task changed in a way its
	// chain cannot follow (type, encryption, destinations): its next run
	// is a full backup whatever its schedule says.
	MagpieNeedsFullBackup bool `json:"MagpieNeedsFullBackup"`
	// MagpieRetention is what retention did after the last successful
	// run.
	MagpieRetention *retentionStatus `json:"MagpieRetention"`
	// MagpieNextBackup and MagpieRunningOperationId are worked out when
	// the status is read, never stored.
	MagpieNextBackup         *nextBackup `json:"MagpieNextBackup"`
	MagpieRunningOperationID *int64      `json:"MagpieRunningOperationId"`
}

// clone is a deep copy of b (nil for nil).
func (b *backupStatus) clone() *backupStatus {
	if b == nil {
		return nil
	}
	raw, err := json.Marshal(b)
	if err != nil {
		panic(err) // a status always encodes
	}
	var out backupStatus
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return &out
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

// retentionStatus is what retention deleted after a run, in every
// destination.
type retentionStatus struct {
	At           wireTime        `json:"At"`
	DurationInMs int64           `json:"DurationInMs"`
	Deleted      []prunedChain   `json:"Deleted"`
	Errors       []string        `json:"Errors"`
	Policy       retentionPolicy `json:"Policy"`
}

type retentionPolicy struct {
	MinimumBackupAgeToKeep string `json:"MinimumBackupAgeToKeep"`
	KeepNewest             int    `json:"KeepNewest"`
}

type prunedChain struct {
	Destination string `json:"Destination"`
	Chain       string `json:"Chain"`
	Files       int    `json:"Files"`
	Bytes       int64  `json:"Bytes"`
	Reason      string `json:"Reason"`
}

// nextBackup is RavenDB's NextBackup (of OngoingTaskBackup).
type nextBackup struct {
	TimeSpan string   `json:"TimeSpan"`
	DateTime wireTime `json:"DateTime"`
	IsFull   bool     `json:"IsFull"`
}

// taskState is the server's state of one task.
type taskState struct {
	status *backupStatus
	// key is the key of UseProvidedKey given with the task, in memory
	// only.
	key *keys.Key
	// running is the task's last run; runningFull says what kind it is.
	running     *operation
	runningFull bool
	runningFrom time.Time
	// changed is when the task was created, updated or enabled since the
	// server started (tasks.History.Changed).
	changed time.Time
}

// dbTasks is one database's tasks, as loaded from its record.
type dbTasks struct {
	// db is the open database these tasks were read from.
	db    *store.DB
	name  string
	dbID  string
	list  []*tasks.Config
	state map[int64]*taskState
	// loaded is when the server first read the tasks: the scheduling
	// base of a task that never ran (tasks.History.Start).
	loaded time.Time
}

func (t *dbTasks) stateOf(id int64) *taskState {
	st := t.state[id]
	if st == nil {
		st = &taskState{}
		t.state[id] = st
	}
	return st
}

// history is what the scheduler needs of a task.
func (t *dbTasks) history(id int64) tasks.History {
	st := t.stateOf(id)
	h := tasks.History{Start: t.loaded, Changed: st.changed}
	if s := st.status; s != nil {
		h.LastFull = s.LastFullBackupInternal.time()
		h.LastIncremental = s.LastIncrementalBackupInternal.time()
		if s.Error != nil && s.MagpieFailures > 0 {
			h.Failures, h.FailedAt, h.FailedFull = s.MagpieFailures, time.Time(s.Error.At), s.MagpieFailedFull
		}
	}
	return h
}

// taskStore holds the backup tasks of every database, loaded on first use
// (and, under magpie serve, by the scheduler at start).
type taskStore struct {
	s   *Server
	dir string
	mu  sync.Mutex
	dbs map[string]*dbTasks
}

func newTaskStore(s *Server) *taskStore {
	return &taskStore{s: s, dir: filepath.Join(s.data.Path(), "backup-tasks"), dbs: map[string]*dbTasks{}}
}

func (ts *taskStore) path(name string) string { return filepath.Join(ts.dir, lower(name)+".json") }

// loadLocked returns db's tasks, reading its record and status file the
// first time (or when db is another database than the one loaded under
// its name). Called with mu held.
func (ts *taskStore) loadLocked(db *store.DB) (*dbTasks, error) {
	key := lower(db.Name())
	t := ts.dbs[key]
	if t != nil && t.db == db {
		return t, nil
	}
	list, err := tasks.Load(db)
	if err != nil {
		return nil, err
	}
	if t != nil && t.dbID == db.ID() {
		// The same database, opened again: keep the run state.
		t.db, t.list = db, list
		return t, nil
	}
	t = &dbTasks{db: db, name: db.Name(), dbID: db.ID(), list: list, state: map[int64]*taskState{}, loaded: time.Now()}
	if err := ts.readStatus(t); err != nil {
		return nil, err
	}
	ts.dbs[key] = t
	return t, nil
}

// readStatus reads the status file of t's database. A file of another
// database of the same name is ignored; a format 1 file (tasks and
// status) has its tasks moved into the record, when the record has none.
func (ts *taskStore) readStatus(t *dbTasks) error {
	path := ts.path(t.name)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("cannot read the backup task status of %s: %w", t.name, err)
	}
	var head struct {
		Format     int    `json:"Format"`
		DatabaseID string `json:"DatabaseId"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("the backup task status file %s is damaged (%v). Move it away to start with no status", path, err)
	}
	if head.DatabaseID != t.dbID {
		return nil
	}
	switch head.Format {
	case 1:
		return ts.migrate(t, data)
	case statusFileFormat:
	default:
		return fmt.Errorf("the backup task status file %s has format %d, which this magpie does not know. Use a matching magpie version", path, head.Format)
	}
	var f statusFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("the backup task status file %s is damaged (%v). Move it away to start with no status", path, err)
	}
	for idText, st := range f.Status {
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil || st == nil || tasks.Find(t.list, id) == nil {
			continue
		}
		st.MagpieNextBackup, st.MagpieRunningOperationID = nil, nil
		t.stateOf(id).status = st
	}
	return nil
}

// migrate reads a format 1 file, which held the tasks beside their status
// (the tasks of magpie before they moved into the database record).
func (ts *taskStore) migrate(t *dbTasks, data []byte) error {
	var f struct {
		Tasks []struct {
			TaskID                     int64         `json:"TaskId"`
			Name                       string        `json:"Name"`
			Disabled                   bool          `json:"Disabled"`
			BackupType                 string        `json:"BackupType"`
			FullBackupFrequency        string        `json:"FullBackupFrequency"`
			IncrementalBackupFrequency string        `json:"IncrementalBackupFrequency"`
			FolderPath                 string        `json:"FolderPath"`
			Encryption                 backup.Mode   `json:"Encryption"`
			KeyFingerprint             string        `json:"KeyFingerprint"`
			Recipients                 []string      `json:"Recipients"`
			Compression                string        `json:"Compression"`
			CreatedAt                  wireTime      `json:"CreatedAt"`
			Status                     *backupStatus `json:"Status"`
		} `json:"Tasks"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("the backup tasks file %s is damaged (%v). Move it away to start with no tasks", ts.path(t.name), err)
	}
	if len(t.list) == 0 && len(f.Tasks) > 0 {
		var list []*tasks.Config
		for _, old := range f.Tasks {
			c := &tasks.Config{
				TaskID: old.TaskID, Name: old.Name, Disabled: old.Disabled, BackupType: old.BackupType,
				FullBackupFrequency: old.FullBackupFrequency, IncrementalBackupFrequency: old.IncrementalBackupFrequency,
				LocalSettings: &tasks.LocalSettings{FolderPath: old.FolderPath},
				BackupEncryptionSettings: &tasks.EncryptionSettings{
					EncryptionMode: tasks.RavenMode(old.Encryption), MagpieRecipients: old.Recipients, MagpieKeyFingerprint: old.KeyFingerprint,
				},
				CreatedAt: time.Time(old.CreatedAt).UTC().Format(store.TimeLayout),
			}
			if old.Compression == "gzip" {
				c.MagpieCompression = "gzip"
			}
			list = append(list, c)
		}
		if err := tasks.Save(t.db, list); err != nil {
			return err
		}
		t.list = list
		ts.s.log.Info("backup tasks moved into the database record", "db", t.name, "tasks", len(list))
	}
	for _, old := range f.Tasks {
		if old.Status != nil && tasks.Find(t.list, old.TaskID) != nil {
			t.stateOf(old.TaskID).status = old.Status
		}
	}
	return ts.saveLocked(t)
}

// saveLocked writes t's statuses atomically, 0600. Called with mu held.
func (ts *taskStore) saveLocked(t *dbTasks) error {
	f := statusFile{Format: statusFileFormat, Database: t.name, DatabaseID: t.dbID, Status: map[string]*backupStatus{}}
	ids := make([]int64, 0, len(t.state))
	for id := range t.state {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if st := t.state[id].status; st != nil {
			c := *st
			c.MagpieNextBackup, c.MagpieRunningOperationID = nil, nil
			f.Status[strconv.FormatInt(id, 10)] = &c
		}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ts.dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", ts.dir, err)
	}
	return atomicfile.Replace(ts.path(t.name), append(data, '\n'), 0o600)
}

// reloadLocked reads db's task list from its record again, after it
// changed (a task saved or deleted, a restore). Called with mu held.
func (ts *taskStore) reloadLocked(db *store.DB) (*dbTasks, error) {
	t, err := ts.loadLocked(db)
	if err != nil {
		return nil, err
	}
	list, err := tasks.Load(db)
	if err != nil {
		return nil, err
	}
	t.list = list
	return t, nil
}

// forget drops the state of database name (it is being deleted) and its
// status file.
func (ts *taskStore) forget(name string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.dbs, lower(name))
	if err := os.Remove(ts.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// all returns the loaded databases' tasks. Called with mu held.
func (ts *taskStore) allLocked() []*dbTasks {
	out := make([]*dbTasks, 0, len(ts.dbs))
	for _, t := range ts.dbs {
		out = append(out, t)
	}
	return out
}
