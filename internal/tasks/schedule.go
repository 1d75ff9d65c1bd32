package tasks

import (
	"time"
)

// History is what the scheduler knows of a task when it works out its next
// run.
type History struct {
	// Start is when the scheduler started (the server's start): the base
	// of a task that has no run and no change since.
	Start time.Time
	// Changed is when the task was created, updated or enabled, if that
	// happened since the server started: runs before it do not count, so
	// a changed schedule starts afresh instead of catching up.
	Changed time.Time
	// LastFull and LastIncremental are the starts of the last attempts
	// of each kind (zero: none). A run that was due while the server was
	// down is therefore due at once when it starts again.
	LastFull, LastIncremental time.Time
	// Failures counts the failed attempts in a row, the last of which
	// started at FailedAt and was a full run when FailedFull.
	Failures   int
	FailedAt   time.Time
	FailedFull bool
	// Now, when set, is the time the scheduler looks at: when both a
	// full and an incremental run are overdue (the server was down), one
	// full run is made, not an incremental and then at once a full.
	Now time.Time
}

// retryDelays are the waits before a failed run is tried again: after the
// first failure, the second, and every later one. A scheduled run that
// comes sooner goes first.
var retryDelays = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}

// Backoff is the wait before the retry of a run that failed failures times
// in a row.
func Backoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	return retryDelays[min(failures, len(retryDelays))-1]
}

// Next says when the task runs next and whether that run is a full backup.
// ok is false for a disabled task or one without a schedule (it runs only
// when asked). Schedules are read in the server's local time zone, as
// RavenDB reads them; a full and an incremental due at once make one full
// run.
func (c *Config) Next(h History) (at time.Time, full bool, ok bool) {
	if c.Disabled {
		return time.Time{}, false, false
	}
	fs, is, err := c.Schedules()
	if err != nil {
		return time.Time{}, false, false
	}
	base := func(times ...time.Time) time.Time {
		b := h.Changed
		for _, t := range times {
			if t.After(b) {
				b = t
			}
		}
		if b.IsZero() {
			b = h.Start
		}
		return b.In(time.Local)
	}
	// A zero time from a schedule means it never falls due again: it
	// gives no run.
	var fullAt time.Time
	if fs != nil {
		if n := fs.Next(base(h.LastFull)); !n.IsZero() {
			at, full, ok, fullAt = n, true, true, n
		}
	}
	if is != nil {
		// An incremental extends the newest chain, whichever kind of
		// run last touched it.
		if n := is.Next(base(h.LastFull, h.LastIncremental)); !n.IsZero() && (!ok || n.Before(at)) {
			at, full, ok = n, false, true
		}
	}
	if !full && !fullAt.IsZero() && !h.Now.IsZero() && !fullAt.After(h.Now) {
		full = true // both overdue: the full run covers the incremental
	}
	if !ok {
		return time.Time{}, false, false
	}
	if h.Failures > 0 && !h.FailedAt.Before(h.Changed) {
		if r := h.FailedAt.Add(Backoff(h.Failures)); r.Before(at) {
			at, full = r, h.FailedFull
		}
	}
	return at, full, true
}
