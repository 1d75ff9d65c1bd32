package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
)

// taskRoutes registers the backup task routes.
func (s *Server) taskRoutes() {
	s.mux.HandleFunc("POST /databases/{db}/admin/periodic-backup", s.handleUpdateBackupTask)
	s.mux.HandleFunc("POST /databases/{db}/admin/backup/database", s.handleStartBackup)
	s.mux.HandleFunc("GET /periodic-backup/status", s.handleBackupStatus)
	s.mux.HandleFunc("DELETE /databases/{db}/admin/tasks", s.handleDeleteTask)
	s.mux.HandleFunc("GET /databases/{db}/tasks", s.handleListTasks)
	s.mux.HandleFunc("GET /databases/{db}/task", s.handleTaskInfo)
	s.mux.HandleFunc("POST /databases/{db}/admin/tasks/state", s.handleToggleTask)
}

// POST /databases/{db}/admin/periodic-backup  body: PeriodicBackupConfiguration
func (s *Server) handleUpdateBackupTask(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	body, ok := readConfig(w, r)
	if !ok {
		return
	}
	c, key, err := tasks.Parse(body)
	if err == nil {
		var to []string
		if to, err = c.Destinations(); err == nil {
			err = s.checkOutsideDataDir(to)
		}
	}
	if err != nil {
		badRequest(w, err)
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
	old := tasks.Find(t.list, c.TaskID)
	if old != nil {
		old = old.Clone()
	}
	st := t.stateOf(c.TaskID)
	// An update that leaves out the provided key keeps the task's key:
	// clients that edit a task send back what they read, and the key is
	// never in it. When the server no longer holds that key (it
	// restarted), the update is still saved (to disable or rename the
	// task, say), and the task's runs keep failing until the key is given.
	if es := c.BackupEncryptionSettings; key == nil && old != nil && es != nil && es.MagpieKeyFile == "" {
		if m, _ := tasks.ParseRavenMode(es.EncryptionMode); m == backup.ModeKey || m == "" {
			if oes := old.BackupEncryptionSettings; oes != nil && oes.MagpieKeyFingerprint != "" && oes.MagpieKeyFile == "" {
				es.MagpieKeyFingerprint = oes.MagpieKeyFingerprint
				if st.key != nil && st.key.Fingerprint() == oes.MagpieKeyFingerprint {
					key = st.key
				}
			}
		}
	}
	saved, err := tasks.Put(db, c, key, time.Now())
	if err != nil {
		badRequest(w, apiError(err))
		return
	}
	t, err = ts.reloadLocked(db)
	if err != nil {
		s.storeError(w, err)
		return
	}
	st = t.stateOf(saved.TaskID)
	st.key = nil
	if saved.BackupEncryptionSettings.EncryptionMode == tasks.ModeKey && saved.BackupEncryptionSettings.MagpieKeyFile == "" {
		st.key = key
	}
	if old == nil || old.Disabled != saved.Disabled || old.FullBackupFrequency != saved.FullBackupFrequency || old.IncrementalBackupFrequency != saved.IncrementalBackupFrequency {
		st.changed = time.Now()
	}
	if old != nil && st.status != nil && chainChanged(old, saved) {
		ns := st.status.clone()
		ns.MagpieNeedsFullBackup = true
		st.status = ns
		if err := ts.saveLocked(t); err != nil {
			s.log.Error("cannot save the status of a backup task", "db", db.Name(), "task", saved.TaskID, "err", err)
		}
	}
	s.extras().sched.poke()
	s.log.Info("backup task saved", "db", db.Name(), "task", saved.TaskID, "name", saved.Name, "type", saved.BackupType,
		"encryption", saved.BackupEncryptionSettings.EncryptionMode, "disabled", saved.Disabled,
		"full", saved.FullBackupFrequency, "incremental", saved.IncrementalBackupFrequency)
	writeJSON(w, http.StatusOK, map[string]any{"TaskId": saved.TaskID, "RaftCommandIndex": nextRaftIndex()})
}

// chainChanged reports whether a task changed in a way the newest chain
// cannot follow, so that its next run must start a new chain.
func chainChanged(old, cur *tasks.Config) bool {
	od, _ := old.Destinations()
	cd, _ := cur.Destinations()
	oe, ce := old.BackupEncryptionSettings, cur.BackupEncryptionSettings
	if oe == nil {
		oe = &tasks.EncryptionSettings{}
	}
	if ce == nil {
		ce = &tasks.EncryptionSettings{}
	}
	return old.Type() != cur.Type() || !slices.Equal(od, cd) || !strings.EqualFold(old.MagpieCompression, cur.MagpieCompression) ||
		oe.EncryptionMode != ce.EncryptionMode || oe.MagpieKeyFile != ce.MagpieKeyFile || oe.MagpieKeyFingerprint != ce.MagpieKeyFingerprint ||
		!slices.Equal(oe.MagpieRecipients, ce.MagpieRecipients)
}

// POST /databases/{db}/admin/backup/database?isFullBackup=&taskId=
func (s *Server) handleStartBackup(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	q := r.URL.Query()
	full := true
	switch strings.ToLower(q.Get("isFullBackup")) {
	case "", "true":
	case "false":
		full = false
	default:
		badRequest(w, fmt.Errorf("isFullBackup %q is not true or false", q.Get("isFullBackup")))
		return
	}
	taskID, err := strconv.ParseInt(q.Get("taskId"), 10, 64)
	if err != nil || taskID <= 0 {
		badRequest(w, fmt.Errorf("taskId %q is not a backup task id. Give the TaskId that UpdatePeriodicBackupOperation answered", q.Get("taskId")))
		return
	}
	op, err := s.startTaskRun(db, taskID, full, false)
	if err != nil {
		var le *errTaskRunning
		if !errors.As(err, &le) && !errors.Is(err, errServerStopping) && isStoreError(err) {
			s.storeError(w, err)
			return
		}
		s.operationRefused(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "ResponsibleNode": NodeTag})
}

// isStoreError reports whether err comes from reading the database (a 500)
// rather than from the request.
func isStoreError(err error) bool {
	return errors.Is(err, store.ErrDatabaseDamaged)
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
	var status *backupStatus
	var c *tasks.Config
	if err == nil {
		if c = tasks.Find(t.list, taskID); c != nil {
			status = s.statusOfLocked(t, c)
		}
	}
	ts.mu.Unlock()
	switch {
	case err != nil:
		s.storeError(w, err)
	case c == nil:
		badRequest(w, fmt.Errorf("backup task %d does not exist in database %s", taskID, db.Name()))
	default:
		writeJSON(w, http.StatusOK, map[string]any{"IsSharded": false, "Status": status})
	}
}

// DELETE /databases/{db}/admin/tasks?id=&type=Backup (DeleteOngoingTaskOperation)
func (s *Server) handleDeleteTask(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	q := r.URL.Query()
	if !checkTaskType(w, q.Get("type")) {
		return
	}
	taskID, err := strconv.ParseInt(q.Get("id"), 10, 64)
	if err != nil || taskID <= 0 {
		badRequest(w, fmt.Errorf("id %q is not a backup task id", q.Get("id")))
		return
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	var gone *tasks.Config
	t, err := ts.loadLocked(db)
	if err == nil {
		gone, err = tasks.Delete(db, taskID)
	}
	if err == nil && gone != nil {
		if st := t.state[taskID]; st != nil && st.running != nil {
			st.running.cancel(fmt.Errorf("backup task %d was deleted", taskID))
		}
		delete(t.state, taskID)
		if t, err = ts.reloadLocked(db); err == nil {
			err = ts.saveLocked(t)
		}
	}
	ts.mu.Unlock()
	switch {
	case err != nil:
		s.storeError(w, err)
		return
	case gone == nil:
		badRequest(w, fmt.Errorf("backup task %d does not exist in database %s", taskID, db.Name()))
		return
	}
	s.extras().metrics.forget(db.Name(), taskID)
	s.extras().sched.poke()
	s.log.Info("backup task deleted", "db", db.Name(), "task", taskID, "name", gone.Name)
	writeJSON(w, http.StatusOK, map[string]any{"TaskId": taskID, "RaftCommandIndex": nextRaftIndex()})
}

// checkTaskType refuses ongoing task types other than Backup (501).
func checkTaskType(w http.ResponseWriter, typ string) bool {
	if strings.EqualFold(typ, "Backup") {
		return true
	}
	writeError(w, http.StatusNotImplemented, typeNotSupported, fmt.Sprintf("Ongoing tasks of type %q are not supported by magpie: its only tasks are backups (type=Backup).", typ))
	return false
}

// POST /databases/{db}/admin/tasks/state?key=&type=Backup&disable=
// (ToggleOngoingTaskStateOperation)
func (s *Server) handleToggleTask(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessDatabaseAdmin)
	if !ok {
		return
	}
	q := r.URL.Query()
	if !checkTaskType(w, q.Get("type")) {
		return
	}
	taskID, err := strconv.ParseInt(q.Get("key"), 10, 64)
	if err != nil || taskID <= 0 {
		badRequest(w, fmt.Errorf("key %q is not a backup task id", q.Get("key")))
		return
	}
	disable, err := strconv.ParseBool(q.Get("disable"))
	if err != nil {
		badRequest(w, fmt.Errorf("disable %q is not true or false", q.Get("disable")))
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
	c := tasks.Find(t.list, taskID)
	if c == nil {
		badRequest(w, fmt.Errorf("backup task %d does not exist in database %s", taskID, db.Name()))
		return
	}
	if c.Disabled != disable {
		// A new list with a new config, never a change in place: readers
		// encode the configs they got after the lock is released, and
		// a failed save must leave the cached list as the record is.
		nc := c.Clone()
		nc.Disabled = disable
		list := make([]*tasks.Config, len(t.list))
		for i, o := range t.list {
			list[i] = o
			if o == c {
				list[i] = nc
			}
		}
		if err := tasks.Save(db, list); err != nil {
			s.storeError(w, err)
			return
		}
		t.list = list
		if !disable {
			t.stateOf(taskID).changed = time.Now()
		}
		s.extras().sched.poke()
		s.log.Info("backup task state changed", "db", db.Name(), "task", taskID, "disabled", disable)
	}
	writeJSON(w, http.StatusOK, map[string]any{"TaskId": taskID, "RaftCommandIndex": nextRaftIndex(), "ResponsibleNode": NodeTag})
}

// ongoingTaskBackup is RavenDB's OngoingTaskBackup, plus the task's
// configuration and status (magpie's fields).
type ongoingTaskBackup struct {
	TaskID               int64  `json:"TaskId"`
	TaskType             string `json:"TaskType"`
	TaskName             string `json:"TaskName"`
	TaskState            string `json:"TaskState"`
	TaskConnectionStatus string `json:"TaskConnectionStatus"`
	ResponsibleNode      struct {
		NodeTag         string `json:"NodeTag"`
		NodeURL         string `json:"NodeUrl"`
		ResponsibleNode string `json:"ResponsibleNode"`
	} `json:"ResponsibleNode"`
	MentorNode            *string          `json:"MentorNode"`
	PinToMentorNode       bool             `json:"PinToMentorNode"`
	Error                 *string          `json:"Error"`
	BackupType            string           `json:"BackupType"`
	BackupDestinations    []string         `json:"BackupDestinations"`
	LastFullBackup        *wireTime        `json:"LastFullBackup"`
	LastIncrementalBackup *wireTime        `json:"LastIncrementalBackup"`
	OnGoingBackup         *runningBackup   `json:"OnGoingBackup"`
	NextBackup            *nextBackup      `json:"NextBackup"`
	RetentionPolicy       *retentionOfTask `json:"RetentionPolicy"`
	IsEncrypted           bool             `json:"IsEncrypted"`
	LastExecutingNodeTag  string           `json:"LastExecutingNodeTag"`
	MagpieConfiguration   *tasks.Config    `json:"MagpieConfiguration"`
	MagpieDestinations    []string         `json:"MagpieDestinations"`
	MagpieStatus          *backupStatus    `json:"MagpieStatus"`
	MagpieKeyInMemory     *bool            `json:"MagpieKeyInMemory,omitempty"`
}

type runningBackup struct {
	StartTime           wireTime `json:"StartTime"`
	IsFull              bool     `json:"IsFull"`
	RunningBackupTaskID int64    `json:"RunningBackupTaskId"`
}

type retentionOfTask struct {
	Disabled               bool    `json:"Disabled"`
	MinimumBackupAgeToKeep *string `json:"MinimumBackupAgeToKeep"`
	MagpieKeepNewest       int     `json:"MagpieKeepNewest"`
}

// ongoingTask describes task c. Called with the task store's lock held.
func (s *Server) ongoingTaskLocked(t *dbTasks, c *tasks.Config) *ongoingTaskBackup {
	o := &ongoingTaskBackup{TaskID: c.TaskID, TaskType: "Backup", TaskName: c.Name, TaskState: "Enabled", TaskConnectionStatus: "Active",
		BackupType: c.Type(), LastExecutingNodeTag: NodeTag, MagpieConfiguration: c, BackupDestinations: []string{}, MagpieDestinations: []string{}}
	o.ResponsibleNode.NodeTag, o.ResponsibleNode.ResponsibleNode = NodeTag, NodeTag
	if c.Disabled {
		o.TaskState, o.TaskConnectionStatus = "Disabled", "NotActive"
	}
	// BackupDestinations names the kinds, as RavenDB does; the locations
	// themselves are magpie's field.
	for _, d := range []struct {
		name string
		on   bool
	}{
		{"Local", c.LocalSettings != nil && !c.LocalSettings.Disabled && c.LocalSettings.FolderPath != ""},
		{"S3", c.S3Settings != nil && !c.S3Settings.Disabled},
		{"Azure", c.AzureSettings != nil && !c.AzureSettings.Disabled},
		{"GoogleCloud", c.GoogleCloudSettings != nil && !c.GoogleCloudSettings.Disabled},
		{"Magpie", len(c.MagpieDestinations) > 0},
	} {
		if d.on {
			o.BackupDestinations = append(o.BackupDestinations, d.name)
		}
	}
	if dests, err := c.Destinations(); err == nil {
		for _, d := range dests {
			o.MagpieDestinations = append(o.MagpieDestinations, destination.Redact(d))
		}
	}
	o.RetentionPolicy = &retentionOfTask{Disabled: true, MagpieKeepNewest: c.MagpieKeepNewest}
	if p := c.RetentionPolicy; p != nil {
		o.RetentionPolicy.Disabled, o.RetentionPolicy.MinimumBackupAgeToKeep = p.Disabled, p.MinimumBackupAgeToKeep
	}
	es := c.BackupEncryptionSettings
	if es != nil {
		m, _ := tasks.ParseRavenMode(es.EncryptionMode)
		o.IsEncrypted = m != backup.ModeNone && m != ""
		if m == backup.ModeKey && es.MagpieKeyFile == "" {
			held := t.stateOf(c.TaskID).key != nil
			o.MagpieKeyInMemory = &held
		}
	}
	st := t.stateOf(c.TaskID)
	o.MagpieStatus = s.statusOfLocked(t, c)
	if bs := st.status; bs != nil {
		o.LastFullBackup, o.LastIncrementalBackup = bs.LastFullBackup, bs.LastIncrementalBackup
		if bs.Error != nil {
			msg := bs.Error.Exception
			o.Error = &msg
		}
	}
	if op := s.runningOpLocked(st); op != nil {
		o.OnGoingBackup = &runningBackup{StartTime: wireTime(st.runningFrom.UTC()), IsFull: st.runningFull, RunningBackupTaskID: op.id}
	}
	o.NextBackup = nextOf(t, c)
	if _, _, err := c.Schedules(); err != nil {
		// A schedule that does not parse (one restored from an older
		// backup, say) would otherwise just never run.
		msg := apiError(err).Error() + ". The task does not run on a schedule until it is fixed"
		o.Error = &msg
	}
	return o
}

// GET /databases/{db}/tasks (GetOngoingTasksOperation): the backup tasks.
func (s *Server) handleListTasks(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, err := ts.loadLocked(db)
	list := []*ongoingTaskBackup{}
	if err == nil {
		for _, c := range t.list {
			list = append(list, s.ongoingTaskLocked(t, c))
		}
	}
	ts.mu.Unlock()
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"OngoingTasks": list, "SubscriptionsCount": 0, "PullReplications": []any{}})
}

// GET /databases/{db}/task?key=ID&type=Backup, or ?taskName=NAME&type=Backup
// (GetOngoingTaskInfoOperation).
func (s *Server) handleTaskInfo(w http.ResponseWriter, r *http.Request) {
	db, ok := s.database(w, r, AccessRead)
	if !ok {
		return
	}
	q := r.URL.Query()
	if !checkTaskType(w, q.Get("type")) {
		return
	}
	var id int64
	name := q.Get("taskName")
	if name == "" {
		n, err := strconv.ParseInt(q.Get("key"), 10, 64)
		if err != nil || n <= 0 {
			badRequest(w, fmt.Errorf("key %q is not a backup task id. Give ?key=ID or ?taskName=NAME", q.Get("key")))
			return
		}
		id = n
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, err := ts.loadLocked(db)
	var info *ongoingTaskBackup
	if err == nil {
		for _, c := range t.list {
			if c.TaskID == id || (name != "" && strings.EqualFold(c.Name, name)) {
				info = s.ongoingTaskLocked(t, c)
				break
			}
		}
	}
	ts.mu.Unlock()
	switch {
	case err != nil:
		s.storeError(w, err)
	case info == nil:
		what := fmt.Sprintf("task %d", id)
		if name != "" {
			what = fmt.Sprintf("task named %q", name)
		}
		writeError(w, http.StatusNotFound, typeBadRequest, fmt.Sprintf("Database %s has no backup %s.", db.Name(), what))
	default:
		writeJSON(w, http.StatusOK, info)
	}
}
