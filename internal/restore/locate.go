// Package restore reads magpie backups back: it finds the chain a location
// names (a local path or an object store URL), checks keys and manifests,
// streams each file through the hashing, decrypting and decompressing
// pipes, and installs the database only after every byte was read and
// verified. Verify runs the same pipes without a database.
package restore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
)

// Target is the part of a chain a restore or verify reads: Files, in
// order, are the chain's files up to the point in time asked for.
type Target struct {
	Store destination.Store
	// Chain is the chain folder's name in Store; ChainDir its location.
	Chain    string
	ChainDir string
	Manifest *backup.Manifest
	Files    []backup.FileEntry
	// PassedOver lists the chains newer than this one that were passed
	// over because their first backup never finished (no manifest): a
	// run was interrupted, or the manifest was deleted. Callers say so.
	PassedOver []string
}

// Close releases the target's store.
func (t *Target) Close() error { return t.Store.Close() }

// Until chooses the point in time of a restore. Zero restores the whole
// chain.
type Until struct {
	// File names the last file to restore, with or without its .age
	// suffix (RavenDB's LastFileNameToRestore). A name that matches no
	// file is an error, never a silent full restore.
	File string
	// Time restores the files made at or before it.
	Time time.Time
}

// Locate resolves a location: a backup file (the chain up to that file), a
// chain folder (the whole chain) or a folder of chains (the newest complete
// one, or the one holding the point in time asked for). The caller closes
// the target.
func Locate(ctx context.Context, location string, until Until) (*Target, error) {
	root, chain, file, err := split(ctx, location)
	if err != nil {
		return nil, err
	}
	s, err := destination.Open(ctx, root)
	if err != nil {
		return nil, err
	}
	t, err := locateIn(ctx, s, location, chain, file, until)
	if err != nil {
		s.Close()
		return nil, err
	}
	return t, nil
}

// Split says what location names: the store root, and the chain folder
// and backup file inside it when the location names them.
func Split(ctx context.Context, location string) (root, chain, file string, err error) {
	return split(ctx, location)
}

// split finds what location names: the store root, and the chain folder
// and file inside it when the location names one.
func split(ctx context.Context, location string) (root, chain, file string, err error) {
	if !destination.IsURL(location) {
		if err := destination.CheckNotURL(location); err != nil {
			return "", "", "", err
		}
		st, err := os.Stat(location)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", "", "", fmt.Errorf("%s does not exist. Give a backup file, a chain folder or a folder of chains", location)
			}
			return "", "", "", fmt.Errorf("cannot read %s: %w", location, err)
		}
		clean := filepath.Clean(location)
		if !st.IsDir() {
			dir := filepath.Dir(clean)
			if strings.HasSuffix(dir, destination.InProgressSuffix) {
				return "", "", "", fmt.Errorf("%s is in %s, a chain that is still being written or whose backup was interrupted. Use a complete backup (see `magpie backup ls`)", location, dir)
			}
			if _, err := os.Stat(filepath.Join(dir, backup.ManifestName)); err != nil {
				return "", "", "", fmt.Errorf("%s is not a magpie backup file: its folder has no %s. Give a backup file inside its chain folder, a chain folder, or a folder of chains", location, backup.ManifestName)
			}
			return filepath.Dir(dir), filepath.Base(dir), filepath.Base(clean), nil
		}
		if _, err := os.Stat(filepath.Join(clean, backup.ManifestName)); err == nil || backup.IsChainName(filepath.Base(clean)) {
			return filepath.Dir(clean), filepath.Base(clean), "", nil
		}
		return clean, "", "", nil
	}
	// An object store has no folders: the last element of the path says
	// what the URL names.
	base, dir, query := urlParts(location)
	switch {
	case isBackupFileName(base):
		pbase, pdir, _ := urlParts(dir + query)
		return pdir + query, pbase, base, nil
	case backup.IsChainName(base):
		return dir + query, base, "", nil
	}
	return location, "", "", nil
}

// urlParts splits a URL into its last path element and the rest (without
// the query, returned apart).
func urlParts(u string) (base, dir, query string) {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u, query = u[:i], u[i:]
	}
	u = strings.TrimSuffix(u, "/")
	scheme := strings.Index(u, "://") + 3
	i := strings.LastIndexByte(u, '/')
	if i < scheme {
		return "", u, query
	}
	return u[i+1:], u[:i], query
}

// isBackupFileName recognises STAMP.KIND[.age].
func isBackupFileName(name string) bool {
	n := strings.TrimSuffix(name, backup.AgeSuffix)
	for _, k := range []string{backup.KindFull, backup.KindIncremental, backup.KindSnapshot} {
		if strings.HasSuffix(n, "."+k) {
			_, err := backup.ParseStamp(strings.TrimSuffix(n, "."+k))
			return err == nil
		}
	}
	return false
}

func locateIn(ctx context.Context, s destination.Store, location, chainName, file string, until Until) (*Target, error) {
	if file != "" {
		if until.File != "" || !until.Time.IsZero() {
			return nil, fmt.Errorf("%s names a backup file, which is already the point to restore up to. Give its chain folder with --until, or the file alone", location)
		}
		until.File = file
	}
	if chainName != "" {
		c, err := backup.ReadChain(ctx, s, chainName)
		if err != nil {
			return nil, err
		}
		if !c.Complete() {
			return nil, c.Err()
		}
		t, err := cut(c, until)
		if err != nil {
			return nil, err
		}
		if t == nil && file != "" {
			return nil, fmt.Errorf("%s is not listed in its chain's manifest, so it is not a complete backup file. Give a file that `magpie backup ls %s` lists", location, c.Location())
		}
		if t == nil {
			return nil, untilError(location, until)
		}
		return t, nil
	}
	chains, err := backup.FindChains(ctx, s)
	if err != nil {
		return nil, err
	}
	// A folder holding chains of several databases is ambiguous. Names
	// that differ only in case are one database, as in the store.
	names := map[string]string{}
	for _, c := range chains {
		if c.Complete() {
			if _, ok := names[strings.ToLower(c.Manifest.Database)]; !ok {
				names[strings.ToLower(c.Manifest.Database)] = c.Manifest.Database
			}
		}
	}
	if len(names) > 1 {
		var list []string
		for _, n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		return nil, fmt.Errorf("%s holds backups of several databases (%s). Give the chain folder to use (see `magpie backup ls %s`)", location, strings.Join(list, ", "), location)
	}
	// The newest chain (holding the point asked for) is the one to
	// restore. Chains whose first run never finished are passed over; a
	// damaged chain is not: an operator must hear about it rather than
	// silently get older data.
	var passed []string
	for i := len(chains) - 1; i >= 0; i-- {
		c := chains[i]
		if c.Interrupted {
			passed = append(passed, c.Location())
			continue
		}
		if !c.Complete() {
			if until.File != "" || !until.Time.IsZero() {
				continue // the point asked for may be in an older chain
			}
			return nil, fmt.Errorf("the newest backup chain in %s cannot be used: %s To restore an older chain, give its folder explicitly (see `magpie backup ls %s`)", location, sentence(c.Problem), location)
		}
		t, err := cut(c, until)
		if err != nil {
			return nil, err
		}
		if t != nil {
			t.PassedOver = passed
			return t, nil
		}
	}
	if until.File != "" || !until.Time.IsZero() {
		return nil, untilError(location, until)
	}
	return nil, NoChainError(location, chains)
}

// NoChainError says that location holds no complete chain, and why.
func NoChainError(location string, chains []*backup.Chain) error {
	if len(chains) > 0 {
		return fmt.Errorf("%s holds no complete backup chain: %d chain folder(s) in it never got their manifest.json, so their backups never finished. Use a complete backup (see `magpie backup ls %s`)", location, len(chains), location)
	}
	return fmt.Errorf("%s holds no complete backup chain. Give the folder `magpie backup run --to` wrote into, or a chain folder inside it", location)
}

// cut returns the part of chain c up to until, or nil when the point is
// not in c.
func cut(c *backup.Chain, until Until) (*Target, error) {
	m := c.Manifest
	n := len(m.Files)
	switch {
	case until.File != "":
		want := strings.TrimSuffix(path.Base(filepath.ToSlash(until.File)), backup.AgeSuffix)
		n = -1
		for i, f := range m.Files {
			if strings.TrimSuffix(f.Name, backup.AgeSuffix) == want {
				n = i + 1
			}
		}
		if n < 0 {
			return nil, nil
		}
	case !until.Time.IsZero():
		n = 0
		for i, f := range m.Files {
			if !f.Created.After(until.Time) {
				n = i + 1
			}
		}
		if n == 0 {
			return nil, nil
		}
	}
	t := TargetOf(c)
	t.Files = t.Files[:n]
	return t, nil
}

func untilError(location string, until Until) error {
	if until.File != "" {
		return fmt.Errorf("no backup file named %s is in %s, so there is no point in time to restore up to. Give a file name that `magpie backup ls %s` lists", until.File, location, location)
	}
	return fmt.Errorf("no backup in %s was made at or before %s. Give a later time (see `magpie backup ls %s`)", location, until.Time.UTC().Format(time.RFC3339), location)
}

// sentence ends s with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// Chains lists the chains at location: the one chain a chain folder (or a
// file in it) names, or every chain of a folder of
// chains. The caller closes the store.
func Chains(ctx context.Context, location string) (destination.Store, []*backup.Chain, error) {
	root, chain, _, err := split(ctx, location)
	if err != nil {
		return nil, nil, err
	}
	s, err := destination.Open(ctx, root)
	if err != nil {
		return nil, nil, err
	}
	var chains []*backup.Chain
	if chain != "" {
		var c *backup.Chain
		if c, err = backup.ReadChain(ctx, s, chain); err == nil {
			chains = []*backup.Chain{c}
		}
	} else {
		chains, err = backup.FindChains(ctx, s)
	}
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, chains, nil
}

// TargetOf is the whole of a complete chain.
func TargetOf(c *backup.Chain) *Target {
	return &Target{Store: c.Store, Chain: c.Name, ChainDir: c.Location(), Manifest: c.Manifest, Files: c.Manifest.Files}
}

// Sample picks about share (0..1] of files at random, at least one, in
// chain order.
func Sample(files []backup.FileEntry, share float64) []backup.FileEntry {
	var out []backup.FileEntry
	for _, f := range files {
		if rand.Float64() < share {
			out = append(out, f)
		}
	}
	if len(out) == 0 && len(files) > 0 {
		out = append(out, files[rand.IntN(len(files))])
	}
	return out
}
