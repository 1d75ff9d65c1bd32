package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Chain is one chain folder as found on disk.
type Chain struct {
	Dir string
	// Manifest is nil when the chain is incomplete (Problem and Err say
	// why).
	Manifest *Manifest
	Problem  string
	err      error
	// Stray lists files in the folder that the manifest does not name:
	// left by an interrupted run, and ignored.
	Stray []string
}

// Err says why an incomplete chain cannot be used.
func (c *Chain) Err() error { return c.err }

// Complete reports whether the chain can be restored.
func (c *Chain) Complete() bool { return c.Manifest != nil }

func isChainName(name string) bool {
	return strings.HasSuffix(name, ".backup") || strings.HasSuffix(name, ".snapshot") ||
		strings.HasSuffix(name, ".backup"+InProgressSuffix) || strings.HasSuffix(name, ".snapshot"+InProgressSuffix)
}

// ReadChain reads one chain folder.
func ReadChain(dir string) *Chain {
	c := &Chain{Dir: dir}
	if strings.HasSuffix(dir, InProgressSuffix) {
		c.Problem = "still being written, or its backup was interrupted"
		c.err = fmt.Errorf("%s is %s. Give a chain folder without the %s suffix", dir, c.Problem, InProgressSuffix)
		return c
	}
	m, err := ReadManifest(dir)
	if err != nil {
		c.Problem = err.Error()
		c.err = err
		return c
	}
	// The folder's name must agree with its (checksummed, for keyed
	// modes MACed) manifest: a renamed copy of an old chain must not pass
	// for a newer one.
	if want := ChainFolder(m.Files[0].Created, m.Database, m.Type); filepath.Base(dir) != want {
		c.Problem = fmt.Sprintf("the folder's name does not match its manifest, which says %s", want)
		c.err = fmt.Errorf("%s %w: %s. Use the chain under its own name, or another backup", dir, ErrIntegrity, c.Problem)
		return c
	}
	c.Manifest = m
	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !listed[e.Name()] {
			c.Stray = append(c.Stray, e.Name())
		}
	}
	return c
}

// FindChains lists the chains at path: path itself when it is a chain
// folder, else the chain folders inside it, oldest first.
func FindChains(path string) ([]*Chain, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist. Give a backup file, a chain folder or a folder of chains", path)
		}
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a folder of backups. Give the folder `magpie backup run --to` wrote into, or a chain folder", path)
	}
	if _, err := os.Stat(filepath.Join(path, ManifestName)); err == nil || isChainName(filepath.Base(path)) {
		return []*Chain{ReadChain(path)}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []*Chain
	for _, e := range entries {
		if e.IsDir() && isChainName(e.Name()) {
			out = append(out, ReadChain(filepath.Join(path, e.Name())))
		}
	}
	// Chain folders start with their UTC stamp, so name order is time order.
	sort.Slice(out, func(i, j int) bool { return filepath.Base(out[i].Dir) < filepath.Base(out[j].Dir) })
	return out, nil
}
