package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/magpiedb/magpie/internal/destination"
)

// Retention says which chains of a database a destination keeps. It works
// on whole chains, never on single files: an incremental is only useful
// with the full backup or snapshot and the incrementals before it, so a
// chain goes as a whole or stays as a whole.
//
// A chain is deleted only when every rule allows it: it is not among the
// KeepNewest newest intact chains, and its newest file is older than
// MinAge. The newest intact chain (the one incrementals extend) is always
// kept. Only intact chains (manifest and every file it lists present at
// its size) count toward KeepNewest: counting a chain whose full backup is
// gone would delete the last chain that can be restored.
type Retention struct {
	// MinAge keeps chains whose newest file is younger than this; 0
	// leaves age out.
	MinAge time.Duration
	// KeepNewest keeps this many newest intact chains; 0 leaves count
	// out.
	KeepNewest int
}

// Enabled reports whether the retention deletes anything at all.
func (r Retention) Enabled() bool { return r.MinAge > 0 || r.KeepNewest > 0 }

// Check refuses settings that make no sense.
func (r Retention) Check() error {
	switch {
	case r.MinAge < 0:
		return fmt.Errorf("retention minimum age %s is negative. Give a duration such as 720h, or 0 to keep chains of any age", r.MinAge)
	case r.KeepNewest < 0:
		return fmt.Errorf("retention keep-newest %d is negative. Give a number of chains of at least 1, or 0 to leave count out", r.KeepNewest)
	case r.MinAge > 0 && r.MinAge < time.Minute:
		return fmt.Errorf("retention minimum age %s is shorter than a minute, which would delete chains while they are still being extended. Give at least 1m", r.MinAge)
	}
	return nil
}

// Pruned is one chain retention deleted.
type Pruned struct {
	Chain string `json:"Chain"`
	// Files counts the objects deleted (manifest included).
	Files int `json:"Files"`
	// Reason says why it could go.
	Reason string `json:"Reason"`
}

// Prune applies r to the chains of database db in s and returns what it
// deleted. Chains whose first backup never finished (no manifest, only
// partial files) and are older than the newest intact chain go too. A
// damaged chain (no usable manifest, or a file it lists missing or of
// another size) is never deleted, since an operator must look at it, and
// does not count as kept.
func Prune(ctx context.Context, s destination.Store, db string, r Retention, now time.Time) ([]Pruned, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	if !r.Enabled() {
		return nil, nil
	}
	chains, err := FindChains(ctx, s)
	if err != nil {
		return nil, err
	}
	mine := chains[:0:0]
	for _, c := range chains {
		if IsChainOf(c.Name, db) {
			mine = append(mine, c)
		}
	}
	// Newest first; count intact chains as they come.
	var out []Pruned
	intact := 0
	for i := len(mine) - 1; i >= 0; i-- {
		c := mine[i]
		switch {
		case c.Interrupted:
			if intact == 0 {
				continue // may still be running
			}
			objs, err := s.List(ctx, c.Name+"/")
			if err != nil {
				return out, err
			}
			if n, err := deleteAll(ctx, s, objs, ""); err != nil {
				return out, err
			} else if n > 0 {
				out = append(out, Pruned{Chain: c.Name, Files: n, Reason: "its first backup never finished"})
			}
			continue
		case !c.Intact():
			continue
		}
		intact++
		if intact == 1 {
			continue // the newest intact chain: incrementals extend it
		}
		if r.KeepNewest > 0 && intact <= r.KeepNewest {
			continue
		}
		newest := c.Manifest.Files[len(c.Manifest.Files)-1].Created
		age := now.Sub(newest)
		if r.MinAge > 0 && age < r.MinAge {
			continue
		}
		objs, err := s.List(ctx, c.Name+"/")
		if err != nil {
			return out, err
		}
		// The manifest goes first: a chain interrupted halfway through
		// its deletion then claims no file that is gone, and the next
		// prune removes what is left.
		n, err := deleteAll(ctx, s, objs, c.Name+"/"+ManifestName)
		if err != nil {
			return out, err
		}
		reason := fmt.Sprintf("newest file %s old", age.Round(time.Second))
		if r.KeepNewest > 0 {
			reason += fmt.Sprintf(", beyond the %d newest chains", r.KeepNewest)
		}
		out = append(out, Pruned{Chain: c.Name, Files: n, Reason: reason})
	}
	return out, nil
}

// deleteAll deletes objs, first (when set) the one named first.
func deleteAll(ctx context.Context, s destination.Store, objs []destination.Object, first string) (int, error) {
	n := 0
	if first != "" {
		if err := s.Delete(ctx, first); err != nil {
			return n, fmt.Errorf("retention cannot delete %s: %w", Location(s, first), err)
		}
		n++
	}
	var errs []error
	for _, o := range objs {
		if o.Name == first {
			continue
		}
		if err := s.Delete(ctx, o.Name); err != nil {
			errs = append(errs, fmt.Errorf("retention cannot delete %s: %w", Location(s, o.Name), err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
