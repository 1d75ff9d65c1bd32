package store

import (
	"errors"
	"fmt"
)

// Sentinel errors let callers (the CLI, later the HTTP layer) map a failure
// to an exit code or a status without parsing text. The messages wrapped
// around them are written for an operator: what is wrong, then what to do.
var (
	ErrNotFound         = errors.New("not found")
	ErrExists           = errors.New("already exists")
	ErrInvalidInput     = errors.New("invalid input")
	ErrWrongMasterKey   = errors.New("wrong master key")
	ErrNoDataDir        = errors.New("no data dir")
	ErrLocked           = errors.New("data dir in use")
	ErrDatabaseDamaged  = errors.New("database damaged")
	ErrEncryptionDenied = errors.New("encryption not allowed here")
)

// userError is an error with a sentence of what is wrong and a sentence of
// what to do; Error joins them so that both reach the operator.
type userError struct {
	kind error
	what string
	todo string
}

func (e *userError) Error() string {
	if e.todo == "" {
		return e.what
	}
	return e.what + ". " + e.todo
}

func (e *userError) Unwrap() error { return e.kind }

func errorf(kind error, todo string, format string, args ...any) error {
	return &userError{kind: kind, what: fmt.Sprintf(format, args...), todo: todo}
}
