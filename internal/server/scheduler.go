package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
)

// The scheduler runs backup tasks on their cron schedules, under magpie
// serve only (StartScheduler); a server without it runs tasks when asked.
//
// One goroutine works out every enabled task's next run (tasks.Config.Next
// over the task's history: its last attempts, its failures, when it last
// changed), starts the runs that are due as operations, and sleeps until
// the earliest next run or until something changes (a task saved, a run
// ended, a database restored or deleted). A task never has two runs at
// once: a run due while the previous one still goes is started when that
// one ends, once. After a restart the next runs are worked out again from
// the stored status, so a run that fell due while the server was down
// runs at once.

// maxSleep bounds the scheduler's sleep, so that a clock that jumps is
// noticed within the minute.
const maxSleep = time.Minute

type scheduler struct {
	wake chan struct{}
	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

func newScheduler() *scheduler { return &scheduler{wake: make(chan struct{}, 1)} }

// poke makes the scheduler look at the tasks again.
func (sc *scheduler) poke() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// StartScheduler loads the backup tasks of every database and runs them
// on their schedules until CancelOperations. Databases that cannot be
// opened (an encrypted one on an unsecured server, a damaged one) are
// logged and left out.
func (s *Server) StartScheduler() {
	e := s.extras()
	sc := e.sched
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stop != nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	sc.stop, sc.done = stop, make(chan struct{})
	infos, err := s.data.Databases()
	if err != nil {
		s.log.Error("the scheduler cannot list the databases; backup tasks run only when asked", "err", err)
	}
	for _, in := range infos {
		db, err := s.openDB(in.Name)
		if err != nil {
			s.log.Warn("the backup tasks of a database are not scheduled: it cannot be opened", "db", in.Name, "err", err)
			continue
		}
		e.tasks.mu.Lock()
		t, err := e.tasks.loadLocked(db)
		e.tasks.mu.Unlock()
		if err != nil {
			s.log.Warn("the backup tasks of a database are not scheduled", "db", in.Name, "err", err)
			continue
		}
		if len(t.list) > 0 {
			s.log.Info("backup tasks loaded", "db", in.Name, "tasks", len(t.list))
		}
	}
	go s.schedule(ctx, sc)
}

// stopScheduler stops the scheduler and waits for it; runs it started go
// on until CancelOperations cancels them.
func (s *Server) stopScheduler() {
	sc := s.extras().sched
	sc.mu.Lock()
	stop, done := sc.stop, sc.done
	sc.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}

func (s *Server) schedule(ctx context.Context, sc *scheduler) {
	defer close(sc.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := s.startDueRuns(ctx, time.Now())
		sleep := maxSleep
		if !next.IsZero() {
			sleep = min(max(time.Until(next), 0), maxSleep)
		}
		timer.Reset(sleep)
		select {
		case <-ctx.Done():
			return
		case <-sc.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		}
	}
}

// dueRun is a run the scheduler starts.
type dueRun struct {
	db   *store.DB
	id   int64
	full bool
}

// startDueRuns starts the runs due at now and returns when the next one is
// due (zero: none is scheduled).
func (s *Server) startDueRuns(ctx context.Context, now time.Time) time.Time {
	ts := s.extras().tasks
	ops := s.extras().ops
	var due []dueRun
	var next time.Time
	ts.mu.Lock()
	for _, t := range ts.allLocked() {
		for _, c := range t.list {
			st := t.stateOf(c.TaskID)
			if st.running != nil && ops.state(st.running).Status == OperationInProgress {
				continue // its end pokes the scheduler
			}
			h := t.history(c.TaskID)
			h.Now = now
			at, full, ok := c.Next(h)
			if !ok {
				continue
			}
			if !at.After(now) {
				due = append(due, dueRun{t.db, c.TaskID, full})
				continue
			}
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	ts.mu.Unlock()
	for _, d := range due {
		if ctx.Err() != nil {
			break
		}
		if _, err := s.startTaskRun(d.db, d.id, d.full, true); err != nil && !errors.Is(err, errServerStopping) {
			s.log.Warn("a scheduled backup could not start", "db", d.db.Name(), "task", d.id, "err", err)
		}
	}
	if len(due) > 0 {
		// The runs changed the tasks' histories: look again at once.
		s.extras().sched.poke()
	}
	return next
}

// errTaskRunning refuses a second run of a task.
type errTaskRunning struct{ msg string }

func (e *errTaskRunning) Error() string { return e.msg }

// startTaskRun starts a run of task id of db as an operation: a full
// backup (a new chain) or an incremental one. scheduled says the scheduler
// started it: a run that cannot even start (its key is gone, its settings
// no longer hold) is then recorded as a failure in the task's status, so
// that it shows and is retried. The status is saved before the operation
// reports its end.
func (s *Server) startTaskRun(db *store.DB, id int64, full, scheduled bool) (*operation, error) {
	e := s.extras()
	ts, ops := e.tasks, e.ops
	// Holding the task store's lock while the operation is registered
	// makes "one run per task at a time" atomic.
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.loadLocked(db)
	if err != nil {
		return nil, err
	}
	c := tasks.Find(t.list, id)
	if c == nil {
		return nil, fmt.Errorf("backup task %d does not exist in database %s. Create it with UpdatePeriodicBackupOperation", id, db.Name())
	}
	st := t.stateOf(id)
	if st.running != nil && ops.state(st.running).Status == OperationInProgress {
		return nil, &errTaskRunning{fmt.Sprintf("a backup of task %d is already running (operation %d). Wait for it to end", id, st.running.id)}
	}
	if !scheduled && c.Disabled {
		return nil, fmt.Errorf("backup task %d (%s) is disabled. Enable it (Disabled: false) with UpdatePeriodicBackupOperation first", id, c.Name)
	}
	if st.status != nil && st.status.MagpieNeedsFullBackup {
		full = true
	}
	start := time.Now()
	plan, err := c.Plan(db, st.key)
	if err == nil {
		// A task restored with its database was never checked against
		// this server's data dir.
		err = s.checkOutsideDataDir(plan.To)
	}
	if err != nil {
		err = apiError(err)
		if scheduled {
			s.recordRunLocked(t, c, nil, full, start, nil, nil, err)
			s.extras().metrics.run(db.Name(), id, full, "failure")
		}
		return nil, err
	}
	kind := "full"
	if !full {
		kind = "incremental"
	}
	cfg := c.Clone()
	op, err := ops.start(db.Name(), fmt.Sprintf("Backup task %d", id), AccessDatabaseAdmin, func(ctx context.Context, op *operation) (any, error) {
		ops.setProgress(op, map[string]any{"Message": fmt.Sprintf("writing the %s backup of %s (task %d)", kind, db.Name(), id)})
		return s.runTask(ctx, op, db, cfg, plan, full, start)
	})
	if err != nil {
		return nil, err
	}
	st.running, st.runningFull, st.runningFrom = op, full, start
	// The scheduler skips a task while its run goes on, so it looks again
	// once the operation has ended.
	go func() {
		<-op.done
		e.sched.poke()
	}()
	how := "on request"
	if scheduled {
		how = "on schedule"
	}
	s.log.Info("backup task started", "db", db.Name(), "task", id, "kind", kind, "trigger", how, "operation", op.id)
	return op, nil
}

// runTask is the work of a task's run: the backup, then retention in every
// destination, then the status.
func (s *Server) runTask(ctx context.Context, op *operation, db *store.DB, c *tasks.Config, plan *tasks.Plan, full bool, start time.Time) (any, error) {
	if testHookBackup != nil {
		testHookBackup(ctx)
	}
	res, err := backup.Run(db, s.backupOptions(ctx, op, db, plan, !full))
	var ret *retentionStatus
	if err == nil && !res.Unchanged && plan.Retention.Enabled() {
		ret = s.applyRetention(ctx, db, c, plan)
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, lerr := ts.loadLocked(db)
	if lerr == nil && tasks.Find(t.list, c.TaskID) != nil {
		s.recordRunLocked(t, c, op, full, start, res, ret, err)
	}
	ts.mu.Unlock()
	s.extras().sched.poke()

	m := s.extras().metrics
	ranFull := full || (res != nil && res.FullInstead)
	switch {
	case err != nil && errors.Is(err, backup.ErrCanceled):
		m.run(db.Name(), c.TaskID, ranFull, "canceled")
	case err != nil:
		m.run(db.Name(), c.TaskID, ranFull, "failure")
	case res.Unchanged:
		m.run(db.Name(), c.TaskID, false, "unchanged")
	default:
		m.run(db.Name(), c.TaskID, ranFull, "success")
		m.last(db.Name(), c.TaskID, ranFull, time.Since(start), res.Entry.Size)
	}
	if ret != nil {
		m.pruned(db.Name(), c.TaskID, ret)
	}
	if err != nil {
		if errors.Is(err, backup.ErrCanceled) {
			s.log.Info("backup task canceled", "db", db.Name(), "task", c.TaskID, "operation", op.id)
		} else {
			s.log.Warn("backup task failed", "db", db.Name(), "task", c.TaskID, "operation", op.id, "err", err)
		}
		return nil, err
	}
	if res.FullInstead {
		s.log.Warn("backup task made a full backup instead of an incremental", "db", db.Name(), "task", c.TaskID, "operation", op.id, "reason", res.FullReason)
	}
	if res.Unchanged {
		s.log.Info("backup task done: nothing changed", "db", db.Name(), "task", c.TaskID, "operation", op.id, "chain", res.ChainDir, "etag", res.Entry.ToEtag)
	} else {
		s.log.Info("backup task done", "db", db.Name(), "task", c.TaskID, "operation", op.id, "kind", res.Entry.Kind, "chain", res.ChainDir, "file", res.Entry.Name, "documents", res.Entry.Documents, "size", res.Entry.Size)
	}
	out := newBackupResult(db.Name(), plan, res)
	out.MagpieRetention = ret
	return out, nil
}

// applyRetention deletes, in every destination of the task, the chains its
// retention lets go, and logs each. A destination where it fails keeps its
// chains until the next run; the backup itself stands.
func (s *Server) applyRetention(ctx context.Context, db *store.DB, c *tasks.Config, plan *tasks.Plan) *retentionStatus {
	start := time.Now()
	r := plan.Retention
	out := &retentionStatus{Deleted: []prunedChain{}, Errors: []string{}, Policy: retentionPolicy{KeepNewest: r.KeepNewest}}
	if r.MinAge > 0 {
		out.Policy.MinimumBackupAgeToKeep = r.MinAge.String()
	}
	for _, to := range plan.To {
		err := func() error {
			st, err := destination.Open(ctx, to)
			if err != nil {
				return err
			}
			defer st.Close()
			// Sizes come from a listing taken before: Prune reports
			// chains and files.
			objs, err := st.List(ctx, "")
			if err != nil {
				return err
			}
			pruned, err := backup.Prune(ctx, st, db.Name(), r, time.Now())
			for _, p := range pruned {
				var bytes int64
				for _, o := range objs {
					if strings.HasPrefix(o.Name, p.Chain+"/") {
						bytes += o.Size
					}
				}
				loc := backup.Location(st, p.Chain)
				out.Deleted = append(out.Deleted, prunedChain{Destination: st.String(), Chain: p.Chain, Files: p.Files, Bytes: bytes, Reason: p.Reason})
				s.log.Info("retention deleted a backup chain", "db", db.Name(), "task", c.TaskID, "chain", loc, "files", p.Files, "bytes", bytes, "reason", p.Reason)
			}
			return err
		}()
		if err != nil {
			msg := fmt.Sprintf("retention in %s: %v", destination.Redact(to), err)
			out.Errors = append(out.Errors, msg)
			s.log.Warn("retention failed", "db", db.Name(), "task", c.TaskID, "destination", destination.Redact(to), "err", err)
		}
	}
	out.At = wireTime(time.Now().UTC())
	out.DurationInMs = time.Since(start).Milliseconds()
	return out
}

// recordRunLocked saves a task's status after a run (op nil: a run that
// could not start). Called with the task store's lock held.
func (s *Server) recordRunLocked(t *dbTasks, c *tasks.Config, op *operation, full bool, start time.Time, res *backup.Result, ret *retentionStatus, runErr error) {
	now := time.Now().UTC()
	st := t.stateOf(c.TaskID)
	// A new value, never a change in place: readers encode the status
	// they got after the lock is released.
	bs := st.status.clone()
	if bs == nil {
		bs = &backupStatus{TaskID: c.TaskID, NodeTag: NodeTag}
	}
	bs.BackupType = c.Type()
	bs.Version++
	if op != nil {
		id := op.id
		bs.LastOperationID = &id
	}
	if bs.LocalBackup == nil {
		bs.LocalBackup = &localBackupStatus{}
	}
	if res != nil && res.FullInstead {
		full = true
	}
	if full {
		bs.LastFullBackupInternal = wireNow(start)
	} else {
		bs.LastIncrementalBackupInternal = wireNow(start)
	}
	ms := time.Since(start).Milliseconds()
	switch {
	case runErr != nil:
		msg := runErr.Error()
		bs.Error = &backupError{Exception: msg, At: *wireNow(now)}
		bs.LocalBackup.Exception = &msg
		bs.MagpieFailures++
		bs.MagpieFailedFull = full
	case res.Unchanged:
		// Nothing to write: the chain is up to date, which is a success.
		etag := res.Entry.ToEtag
		bs.LastEtag = &etag
		bs.Error, bs.LocalBackup.Exception = nil, nil
		bs.MagpieFailures, bs.MagpieFailedFull = 0, false
	default:
		at := wireNow(res.Entry.Created)
		size, file := res.Entry.Size, res.File
		bs.IsFull = full
		if full {
			bs.LastFullBackup = at
			bs.LocalBackup.LastFullBackup = at
			bs.LocalBackup.FullBackupDurationInMs = &ms
			bs.MagpieLastFullBackupSize, bs.MagpieLastFullBackupFile = &size, &file
			bs.MagpieNeedsFullBackup = false
		} else {
			bs.LastIncrementalBackup = at
			bs.LocalBackup.LastIncrementalBackup = at
			bs.LocalBackup.IncrementalBackupDurationInMs = &ms
			bs.MagpieLastIncrementalBackupSize, bs.MagpieLastIncrementalBackupFile = &size, &file
		}
		bs.LocalBackup.BackupDirectory = res.ChainDir
		bs.LocalBackup.FileName = res.Entry.Name
		bs.LocalBackup.Exception = nil
		etag := res.Entry.ToEtag
		bs.LastEtag = &etag
		bs.LastRaftIndex = &raftIndexStatus{LastEtag: nextRaftIndex()}
		bs.FolderName = filepath.Base(res.ChainDir)
		if destination.IsURL(res.ChainDir) {
			bs.FolderName = res.Chain
		}
		bs.MagpieLocations = res.Locations
		bs.DurationInMs = ms
		bs.Error = nil
		bs.MagpieFailures, bs.MagpieFailedFull = 0, false
		bs.IsEncrypted = res.Manifest.Encryption != backup.ModeNone
		if ret != nil {
			bs.MagpieRetention = ret
			rms := ret.DurationInMs
			bs.LocalRetentionDurationInMs = &rms
		}
	}
	// The task may have changed while it ran (its type, encryption or
	// destinations): then the chain this run wrote cannot be extended by
	// the task as it is now, and its next run must be a full backup.
	if cur := tasks.Find(t.list, c.TaskID); cur != nil && chainChanged(c, cur) {
		bs.MagpieNeedsFullBackup = true
	}
	st.status = bs
	s.extras().metrics.failures(t.name, c.TaskID, bs.MagpieFailures)
	if err := s.extras().tasks.saveLocked(t); err != nil {
		// The backup itself is complete; only its status may be lost
		// across a restart.
		s.log.Error("cannot save the status of a backup task", "db", t.name, "task", c.TaskID, "err", err)
	}
}

// statusOf is a task's status as the API shows it: the stored status with
// the next run and the running operation filled in, or nil when the task
// never ran. Called with the task store's lock held.
func (s *Server) statusOfLocked(t *dbTasks, c *tasks.Config) *backupStatus {
	st := t.stateOf(c.TaskID)
	if st.status == nil {
		return nil
	}
	out := st.status.clone()
	out.MagpieNextBackup = nextOf(t, c)
	if op := s.runningOpLocked(st); op != nil {
		id := op.id
		out.MagpieRunningOperationID = &id
	}
	return out
}

// runningOpLocked is the task's running operation, if any.
func (s *Server) runningOpLocked(st *taskState) *operation {
	if st.running != nil && s.extras().ops.state(st.running).Status == OperationInProgress {
		return st.running
	}
	return nil
}

// nextOf is RavenDB's NextBackup of a task, or nil when it has no next
// scheduled run (disabled, no schedule).
func nextOf(t *dbTasks, c *tasks.Config) *nextBackup {
	at, full, ok := c.Next(t.history(c.TaskID))
	if !ok {
		return nil
	}
	// A task that changed since its chain began runs a full backup next,
	// whatever its schedule says (startRunLocked does the same).
	if st := t.state[c.TaskID]; st != nil && st.status != nil && st.status.MagpieNeedsFullBackup {
		full = true
	}
	wait := time.Until(at)
	if wait < 0 {
		wait = 0
	}
	return &nextBackup{TimeSpan: timeSpan(wait), DateTime: wireTime(at.UTC()), IsFull: full}
}

// timeSpan writes d as a .NET TimeSpan, [d.]hh:mm:ss.fffffff, as RavenDB's
// clients read it.
func timeSpan(d time.Duration) string {
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	sec := d / time.Second
	d -= sec * time.Second
	out := fmt.Sprintf("%02d:%02d:%02d.%07d", h, m, sec, d/100)
	if days > 0 {
		out = strconv.FormatInt(int64(days), 10) + "." + out
	}
	return out
}
