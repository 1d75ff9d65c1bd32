package server

// Long-running operations: backups and restores run in goroutines and
// clients poll their state, as RavenDB's clients do (every 500 ms at
// /databases/{db}/operations/state?id= or /operations/state?id=). The
// contract the official clients rely on:
//
//   - every id the server handed out answers 200 with {Status, Result,
//     Progress}, and finished states are kept (operationRetention), never a
//     404: the Node.js client crashes on one;
//   - Status is InProgress, Completed, Faulted or Canceled; a Faulted
//     operation's Result is {Type, Message, Error, StatusCode}, and Error
//     becomes the client's exception message;
//   - kill cancels an operation through its context and answers 204, the
//     one status the client's kill command accepts without a body.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// OperationStatus is the state of a long-running operation, as RavenDB
// names it.
type OperationStatus string

const (
	OperationInProgress OperationStatus = "InProgress"
	OperationCompleted  OperationStatus = "Completed"
	OperationFaulted    OperationStatus = "Faulted"
	OperationCanceled   OperationStatus = "Canceled"
)

// operationRetention is how long a finished operation's state stays
// readable. Clients poll every 500 ms, so minutes are plenty, but a client
// that was paused still finds its answer.
const operationRetention = 15 * time.Minute

// errServerStopping is the cancellation cause of operations canceled by
// CancelOperations.
var errServerStopping = errors.New("the server is shutting down")

// errKilled is the cancellation cause of a killed operation.
var errKilled = errors.New("the operation was canceled on request")

// operationFault is the Result of a Faulted operation: RavenDB's error
// shape, which the clients turn into an exception.
type operationFault struct {
	Type       string `json:"Type"`
	Message    string `json:"Message"`
	Error      string `json:"Error"`
	StatusCode int    `json:"StatusCode"`
}

// operation is one long-running operation.
type operation struct {
	id int64
	// db is the database the operation works on, "" for server-level
	// operations (restores).
	db   string
	kind string
	// need is what a caller must be allowed to kill the operation (and,
	// for server-level operations, to read its state).
	need   Access
	cancel context.CancelCauseFunc
	done   chan struct{}

	// Guarded by operations.mu.
	status   OperationStatus
	progress any
	result   any
	ended    time.Time
}

// operations is the server's registry of long-running operations.
type operations struct {
	log    *slog.Logger
	base   context.Context
	stop   context.CancelCauseFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	next   int64
	ops    map[int64]*operation
	closed bool
}

func newOperations(s *Server) *operations {
	base, stop := context.WithCancelCause(context.Background())
	return &operations{log: s.log, base: base, stop: stop, ops: map[int64]*operation{}}
}

// operationFunc does an operation's work. It returns the operation's
// result (any JSON value) or an error; when ctx is done it should stop
// soon and return an error.
type operationFunc func(ctx context.Context, op *operation) (any, error)

// start registers an operation and runs fn in its own goroutine. It fails
// only when the server is shutting down.
func (o *operations) start(db, kind string, need Access, fn operationFunc) (*operation, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errServerStopping
	}
	o.pruneLocked(time.Now())
	o.next++
	ctx, cancel := context.WithCancelCause(o.base)
	op := &operation{id: o.next, db: db, kind: kind, need: need, cancel: cancel, done: make(chan struct{}), status: OperationInProgress}
	o.ops[op.id] = op
	o.wg.Add(1)
	go o.run(ctx, op, fn)
	return op, nil
}

func (o *operations) run(ctx context.Context, op *operation, fn operationFunc) {
	defer o.wg.Done()
	defer close(op.done)
	defer op.cancel(nil)
	start := time.Now()
	var result any
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("internal error in %s operation %d: %v", op.kind, op.id, p)
			}
		}()
		result, err = fn(ctx, op)
	}()
	o.mu.Lock()
	defer o.mu.Unlock()
	op.ended = time.Now()
	switch {
	case err == nil:
		op.status, op.result = OperationCompleted, result
	case ctx.Err() != nil:
		op.status, op.result = OperationCanceled, nil
	default:
		op.status, op.result = OperationFaulted, faultOf(err)
	}
	o.log.Info("operation finished", "id", op.id, "kind", op.kind, "database", op.db, "status", op.status, "duration", time.Since(start).Round(time.Millisecond))
}

// faultOf turns an operation's error into RavenDB's error shape: 400 for
// what the caller can fix (a wrong key, a name taken, a damaged backup),
// 500 otherwise.
func faultOf(err error) *operationFault {
	msg := sentence(err.Error())
	code := http.StatusInternalServerError
	var ue *userFault
	switch {
	case errors.As(err, &ue):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrInvalidInput), errors.Is(err, store.ErrNotFound),
		errors.Is(err, store.ErrEncryptionDenied), errors.Is(err, store.ErrSnapshotNeedsKey), errors.Is(err, store.ErrWrongDatabaseKey),
		errors.Is(err, backup.ErrIntegrity), errors.Is(err, keys.ErrInvalidKey):
		code = http.StatusBadRequest
	}
	return &operationFault{Type: typeRaven, Message: msg, Error: msg, StatusCode: code}
}

// userFault marks an error the caller can fix (StatusCode 400 in a
// Faulted result).
type userFault struct{ msg string }

func (e *userFault) Error() string { return e.msg }

func faultf(format string, args ...any) error { return &userFault{msg: fmt.Sprintf(format, args...)} }

// setProgress publishes an operation's progress (any JSON value).
func (o *operations) setProgress(op *operation, p any) {
	o.mu.Lock()
	op.progress = p
	o.mu.Unlock()
}

// pruneLocked forgets operations that ended more than operationRetention
// ago.
func (o *operations) pruneLocked(now time.Time) {
	for id, op := range o.ops {
		if op.status != OperationInProgress && now.Sub(op.ended) > operationRetention {
			delete(o.ops, id)
		}
	}
}

// get returns an operation by id.
func (o *operations) get(id int64) *operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ops[id]
}

// operationState is what the state routes answer.
type operationState struct {
	Status   OperationStatus `json:"Status"`
	Result   any             `json:"Result"`
	Progress any             `json:"Progress"`
}

func (o *operations) state(op *operation) operationState {
	o.mu.Lock()
	defer o.mu.Unlock()
	return operationState{Status: op.status, Result: op.result, Progress: op.progress}
}

// cancelWhere cancels the running operations that match and waits for them
// to end.
func (o *operations) cancelWhere(cause error, match func(*operation) bool) {
	o.mu.Lock()
	var waits []chan struct{}
	for _, op := range o.ops {
		if op.status == OperationInProgress && match(op) {
			op.cancel(cause)
			waits = append(waits, op.done)
		}
	}
	o.mu.Unlock()
	for _, w := range waits {
		<-w
	}
}

// CancelOperations cancels every running operation and waits for them to
// end; operations started afterwards are refused. A canceled backup
// removes what it wrote; a restore cannot be interrupted part-way, so it
// finishes its pass and then removes the database it created. Call it
// before closing the data dir.
func (s *Server) CancelOperations() {
	// The scheduler goes first, so that it starts no run meanwhile.
	s.stopScheduler()
	o := s.extras().ops
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.stop(errServerStopping)
	o.cancelWhere(errServerStopping, func(*operation) bool { return true })
	o.wg.Wait()
}

// cancelDatabaseOperations cancels the running operations on database name
// and waits for them to end. Deleting a database calls it before closing
// the database, so that no backup reads a closed database.
func (s *Server) cancelDatabaseOperations(name string) {
	s.extras().ops.cancelWhere(fmt.Errorf("database %s is being deleted", name), func(op *operation) bool {
		return op.db != "" && strings.EqualFold(op.db, name)
	})
}

// dropBackupState prepares the deletion of database name: it cancels the
// running operations on it, waits for them to end, and forgets its backup
// tasks' state (in memory, DATA/backup-tasks/NAME.json and the metrics;
// the tasks themselves go with the database). Call it before closing and
// deleting the database, without holding s.mu.
func (s *Server) dropBackupState(name string) {
	s.cancelDatabaseOperations(name)
	if err := s.extras().tasks.forget(name); err != nil {
		s.log.Warn("cannot remove the backup task status of a deleted database", "db", name, "err", err)
	}
	s.extras().metrics.forget(name, 0)
	s.extras().sched.poke()
}

// operationRoutes registers the state and kill routes, database-level and
// server-level.
func (s *Server) operationRoutes() {
	s.mux.HandleFunc("GET /databases/{db}/operations/state", func(w http.ResponseWriter, r *http.Request) {
		s.operationState(w, r, r.PathValue("db"))
	})
	s.mux.HandleFunc("GET /operations/state", func(w http.ResponseWriter, r *http.Request) {
		s.operationState(w, r, "")
	})
	s.mux.HandleFunc("POST /databases/{db}/operations/kill", func(w http.ResponseWriter, r *http.Request) {
		s.operationKill(w, r, r.PathValue("db"))
	})
	s.mux.HandleFunc("POST /operations/kill", func(w http.ResponseWriter, r *http.Request) {
		s.operationKill(w, r, "")
	})
	// KillServerOperationCommand's path.
	s.mux.HandleFunc("POST /admin/operations/kill", func(w http.ResponseWriter, r *http.Request) {
		s.operationKill(w, r, "")
	})
}

// lookupOperation finds the operation named by ?id=, or answers an
// error. A database route (db set) finds only that database's operations;
// the server-level routes find any operation. The caller may read a
// database's operations with read access to it; server-level operations
// (restores), and killing any operation, need what starting it needed.
func (s *Server) lookupOperation(w http.ResponseWriter, r *http.Request, db string, kill bool) (*operation, bool) {
	who, ok := s.allow(w, r, AccessRead, db)
	if !ok {
		return nil, false
	}
	raw := r.URL.Query().Get("id")
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n <= 0 {
		if raw == "" {
			writeError(w, http.StatusBadRequest, typeBadRequest, "No operation id was given. Give it as ?id=N, the OperationId the server answered.")
		} else {
			writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf("Operation id %q is not a positive number. Give the OperationId the server answered.", raw))
		}
		return nil, false
	}
	op := s.extras().ops.get(n)
	if op == nil || (db != "" && !strings.EqualFold(op.db, db)) {
		where := "on this server"
		if db != "" {
			where = "for database " + db
		}
		writeError(w, http.StatusBadRequest, typeBadRequest, fmt.Sprintf(
			"Operation %d does not exist %s. Operations are kept for %d minutes after they end, and not across server restarts.",
			n, where, int(operationRetention/time.Minute)))
		return nil, false
	}
	need := AccessRead
	if kill || op.db == "" {
		need = op.need
	}
	if why := who.denies(need, op.db); why != "" {
		writeError(w, http.StatusForbidden, "AuthorizationException", why)
		return nil, false
	}
	return op, true
}

func (s *Server) operationState(w http.ResponseWriter, r *http.Request, db string) {
	op, ok := s.lookupOperation(w, r, db, false)
	if !ok {
		return
	}
	// Never an ETag here: a 304 would freeze the client's polling loop.
	writeJSON(w, http.StatusOK, s.extras().ops.state(op))
}

func (s *Server) operationKill(w http.ResponseWriter, r *http.Request, db string) {
	op, ok := s.lookupOperation(w, r, db, true)
	if !ok {
		return
	}
	// Killing a finished operation changes nothing, as in RavenDB.
	op.cancel(errKilled)
	// The client's kill command reads no body: 204 is the answer it takes.
	w.WriteHeader(http.StatusNoContent)
}
