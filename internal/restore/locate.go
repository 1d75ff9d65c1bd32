// Package restore reads magpie backups back: it finds the chain a path
// names, checks keys and manifests, streams each file through the hashing,
// decrypting and decompressing pipes, and installs the database only after
// every byte was read and verified. Verify runs the same pipes without a
// database.
package restore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/magpiedb/magpie/internal/backup"
)

// Target is the part of a chain a restore or verify reads: Files, in
// order, are the chain's files up to the one the operator named.
type Target struct {
	ChainDir string
	Manifest *backup.Manifest
	Files    []backup.FileEntry
}

// Locate resolves PATH: a backup file (the chain up to that file), a chain
// folder (the whole chain) or a folder of chains (the newest complete one).
func Locate(path string) (*Target, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist. Give a backup file, a chain folder or a folder of chains", path)
		}
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if !st.IsDir() {
		return locateFile(path)
	}
	chains, err := backup.FindChains(path)
	if err != nil {
		return nil, err
	}
	if len(chains) == 1 && chains[0].Dir == path {
		c := chains[0]
		if !c.Complete() {
			return nil, c.Err()
		}
		return &Target{ChainDir: path, Manifest: c.Manifest, Files: c.Manifest.Files}, nil
	}
	// A folder holding chains of several databases is ambiguous.
	names := map[string]bool{}
	for _, c := range chains {
		if c.Complete() {
			names[c.Manifest.Database] = true
		}
	}
	if len(names) > 1 {
		var list []string
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		return nil, fmt.Errorf("%s holds backups of several databases (%s). Give the chain folder to use (see `magpie backup ls %s`)", path, strings.Join(list, ", "), path)
	}
	// The newest chain is the one to restore. Chains still being written
	// (or whose run was killed) are passed over; a damaged chain is not: an
	// operator must hear about it rather than silently get older data.
	for i := len(chains) - 1; i >= 0; i-- {
		c := chains[i]
		if strings.HasSuffix(c.Dir, backup.InProgressSuffix) {
			continue
		}
		if !c.Complete() {
			return nil, fmt.Errorf("the newest backup chain in %s cannot be used: %s To restore an older chain, give its folder explicitly (see `magpie backup ls %s`)", path, sentence(c.Problem), path)
		}
		return &Target{ChainDir: c.Dir, Manifest: c.Manifest, Files: c.Manifest.Files}, nil
	}
	return nil, fmt.Errorf("%s holds no complete backup chain. Give the folder `magpie backup run --to` wrote into, or a chain folder inside it", path)
}

func locateFile(path string) (*Target, error) {
	dir := filepath.Dir(path)
	name := filepath.Base(path)
	if strings.HasSuffix(dir, backup.InProgressSuffix) {
		return nil, fmt.Errorf("%s is in %s, a chain that is still being written or whose backup was interrupted. Use a complete backup (see `magpie backup ls`)", path, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, backup.ManifestName)); err != nil {
		return nil, fmt.Errorf("%s is not a magpie backup file: its folder has no %s. Give a backup file inside its chain folder, a chain folder, or a folder of chains", path, backup.ManifestName)
	}
	c := backup.ReadChain(dir)
	if !c.Complete() {
		return nil, c.Err()
	}
	m := c.Manifest
	for i, f := range m.Files {
		if f.Name == name {
			return &Target{ChainDir: dir, Manifest: m, Files: m.Files[:i+1]}, nil
		}
	}
	return nil, fmt.Errorf("%s is not listed in its chain's manifest, so it is not a complete backup file. Give a file that `magpie backup ls %s` lists", path, dir)
}

// sentence ends s with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}
