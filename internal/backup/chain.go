package backup

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/magpiedb/magpie/internal/destination"
)

// Chain is one chain folder as found in a destination.
type Chain struct {
	Store destination.Store
	// Name is the chain folder's name, relative to the store's root.
	Name string
	// Manifest is nil when the chain is incomplete (Problem and Err say
	// why).
	Manifest *Manifest
	Problem  string
	err      error
	// Interrupted is set for a chain folder that holds only partial files
	// (NAME.in-progress) and no manifest: its first backup did not finish.
	// Such a chain is passed over, unlike a damaged one.
	Interrupted bool
	// Stray lists objects in the folder that the manifest does not name:
	// left by an interrupted run, and ignored.
	Stray []string
}

// Location is where the chain is, as an operator would write it.
func (c *Chain) Location() string { return Location(c.Store, c.Name) }

// Location joins a store's location and a name inside it.
func Location(s destination.Store, name string) string {
	root := strings.TrimSuffix(s.String(), "/")
	if name == "" {
		return root
	}
	if destination.IsURL(root) {
		if i := strings.IndexByte(root, '?'); i >= 0 {
			return root[:i] + "/" + name + root[i:]
		}
		return root + "/" + name
	}
	return root + string(os.PathSeparator) + strings.ReplaceAll(name, "/", string(os.PathSeparator))
}

// Err says why an incomplete chain cannot be used.
func (c *Chain) Err() error { return c.err }

// Complete reports whether the chain can be restored.
func (c *Chain) Complete() bool { return c.Manifest != nil }

// IsChainName reports whether name looks like a chain folder.
func IsChainName(name string) bool {
	return strings.HasSuffix(name, ".backup") || strings.HasSuffix(name, ".snapshot")
}

// FindChains lists the chains in s, oldest first. One listing of the store
// is enough: a chain is the objects under its folder's name.
func FindChains(ctx context.Context, s destination.Store) ([]*Chain, error) {
	objs, err := s.List(ctx, "")
	if err != nil {
		return nil, err
	}
	byChain := map[string][]destination.Object{}
	var names []string
	for _, o := range objs {
		i := strings.IndexByte(o.Name, '/')
		if i <= 0 || !IsChainName(o.Name[:i]) || strings.Contains(o.Name[i+1:], "/") {
			continue
		}
		c := o.Name[:i]
		if _, ok := byChain[c]; !ok {
			names = append(names, c)
		}
		byChain[c] = append(byChain[c], o)
	}
	// Chain folders start with their UTC stamp, so name order is time order.
	sort.Strings(names)
	out := make([]*Chain, 0, len(names))
	for _, n := range names {
		out = append(out, readChain(ctx, s, n, byChain[n]))
	}
	return out, nil
}

// ReadChain reads the chain folder name of s.
func ReadChain(ctx context.Context, s destination.Store, name string) (*Chain, error) {
	objs, err := s.List(ctx, name+"/")
	if err != nil {
		return nil, err
	}
	return readChain(ctx, s, name, objs), nil
}

func readChain(ctx context.Context, s destination.Store, name string, objs []destination.Object) *Chain {
	c := &Chain{Store: s, Name: name}
	hasManifest := false
	for _, o := range objs {
		if o.Name == name+"/"+ManifestName && !o.Partial {
			hasManifest = true
		}
	}
	if !hasManifest {
		complete := false
		for _, o := range objs {
			c.Stray = append(c.Stray, strings.TrimPrefix(o.Name, name+"/"))
			complete = complete || !o.Partial
		}
		if !complete {
			// Only files still being written, or left by a killed run:
			// the chain's first backup never finished.
			c.Interrupted = true
			c.Problem = "its first backup never finished (it has no " + ManifestName + ")"
			c.err = fmt.Errorf("%s has no %s, so its backup never finished. Use a complete backup (see `magpie backup ls`)", c.Location(), ManifestName)
			return c
		}
		// Finished files without a manifest: the manifest was lost (or
		// the run died in the instant between the two). That is not
		// passed over silently.
		c.Problem = c.Location() + " has no " + ManifestName + ", so its backup never finished. Use a complete backup (see `magpie backup ls`)."
		c.err = fmt.Errorf("%s has no %s, so its backup never finished. Use a complete backup (see `magpie backup ls`)", c.Location(), ManifestName)
		return c
	}
	m, err := ReadManifest(ctx, s, name)
	if err != nil {
		c.Problem = err.Error()
		c.err = err
		return c
	}
	// The folder's name must agree with its (checksummed, for keyed
	// modes MACed) manifest: a renamed copy of an old chain must not pass
	// for a newer one.
	if want := ChainFolder(m.Files[0].Created, m.Database, m.Type); name != want {
		c.Problem = fmt.Sprintf("the folder's name does not match its manifest, which says %s", want)
		c.err = fmt.Errorf("%s %w: %s. Use the chain under its own name, or another backup", c.Location(), ErrIntegrity, c.Problem)
		return c
	}
	c.Manifest = m
	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
	}
	for _, o := range objs {
		if n := strings.TrimPrefix(o.Name, name+"/"); !listed[n] {
			c.Stray = append(c.Stray, n)
		}
	}
	return c
}

// NewestChain returns the newest complete chain of database db in s, or
// nil. A newer chain that is damaged is an error: an incremental must not
// silently extend an older chain. Interrupted chains are passed over.
func NewestChain(ctx context.Context, s destination.Store, db string) (*Chain, error) {
	chains, err := FindChains(ctx, s)
	if err != nil {
		return nil, err
	}
	suffixes := []string{"." + escapeName(db) + ".backup", "." + escapeName(db) + ".snapshot"}
	for i := len(chains) - 1; i >= 0; i-- {
		c := chains[i]
		if !strings.HasSuffix(c.Name, suffixes[0]) && !strings.HasSuffix(c.Name, suffixes[1]) {
			continue
		}
		if c.Interrupted {
			continue
		}
		if !c.Complete() {
			return nil, c.Err()
		}
		return c, nil
	}
	return nil, nil
}
