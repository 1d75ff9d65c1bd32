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
	// Interrupted is set for a chain folder that has no manifest and
	// holds only partial files (NAME.in-progress), or its first file
	// alone: its first backup did not finish. Such a chain is passed
	// over, unlike a damaged one (a folder of several finished files and
	// no manifest).
	Interrupted bool
	// Stray lists objects in the folder that the manifest does not name:
	// left by an interrupted run, and ignored.
	Stray []string
	// Damaged is set for a chain whose manifest is fine but whose folder
	// lacks a file the manifest lists, or holds it at another size than
	// recorded (seen in the listing; nothing is read). Such a chain is
	// not extended, and retention does not count it as a chain kept.
	Damaged string
	// raw is the manifest as read, which a failed run writes back.
	raw []byte
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

// Err says why an incomplete or damaged chain cannot be used; nil for an
// intact chain.
func (c *Chain) Err() error { return c.err }

// Complete reports whether the chain has a manifest that passed its
// checks. Its files may still be gone: see Intact.
func (c *Chain) Complete() bool { return c.Manifest != nil }

// Intact reports whether the chain is complete and its folder holds every
// file the manifest lists, at its recorded size. Only an intact chain is
// extended by an incremental or counted by retention as a chain kept.
func (c *Chain) Intact() bool { return c.Manifest != nil && c.Damaged == "" }

// damage says in one clause what is wrong with a chain that is not intact.
func (c *Chain) damage() string {
	if c.Damaged != "" {
		return c.Damaged
	}
	if c.err == nil {
		return ""
	}
	// Errors are "what is wrong. What to do": keep what is wrong.
	msg := c.err.Error()
	if i := strings.Index(msg, ". "); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// IsChainName reports whether name looks like a chain folder.
func IsChainName(name string) bool {
	return strings.HasSuffix(name, chainSuffixLogical) || strings.HasSuffix(name, chainSuffixSnapshot)
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
		var finished []string
		for _, o := range objs {
			n := strings.TrimPrefix(o.Name, name+"/")
			c.Stray = append(c.Stray, n)
			if !o.Partial && isBackupFileName(n) {
				finished = append(finished, n)
			}
		}
		if len(finished) == 0 || (len(finished) == 1 && isFirstFile(name, finished[0])) {
			// Only files still being written, or left by a killed run,
			// or the chain's first file alone: a run writes the first
			// file into every destination before any manifest, so a
			// run killed between two destinations leaves it without
			// one. Either way the chain's first backup never finished.
			c.Interrupted = true
			c.Problem = "its first backup never finished (it has no " + ManifestName + ")"
			c.err = fmt.Errorf("%s has no %s, so its backup never finished. Use a complete backup (see `magpie backup ls`)", c.Location(), ManifestName)
			return c
		}
		// Several finished files without a manifest: the manifest was
		// lost or deleted after the chain grew. That is not passed over
		// silently.
		what := fmt.Sprintf("%d finished backup files", len(finished))
		if len(finished) == 1 {
			what = "the finished backup file " + finished[0] + ", which is not its first"
		}
		c.err = fmt.Errorf("%s has no %s but holds %s, so its manifest was lost or deleted. Copy the manifest back from another destination, or use another backup (see `magpie backup ls`)", c.Location(), ManifestName, what)
		c.Problem = c.err.Error() + "."
		return c
	}
	m, raw, err := readManifest(ctx, s, name)
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
	c.Manifest, c.raw = m, raw
	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
	}
	found := map[string]int64{}
	for _, o := range objs {
		n := strings.TrimPrefix(o.Name, name+"/")
		if !listed[n] {
			c.Stray = append(c.Stray, n)
		} else if !o.Partial {
			found[n] = o.Size
		}
	}
	// The listing is at hand, so checking that every file is there at
	// its size costs nothing; an incremental appended to a chain whose
	// full backup is gone would be reported as a success and be useless.
	for _, f := range m.Files {
		size, ok := found[f.Name]
		switch {
		case !ok:
			c.Damaged = fmt.Sprintf("file %s is missing", f.Name)
		case size != f.Size:
			c.Damaged = fmt.Sprintf("file %s is %d bytes, not the %d its manifest records", f.Name, size, f.Size)
		default:
			continue
		}
		c.err = fmt.Errorf("%s is damaged: %s. Restore the file, or use another backup (see `magpie backup ls`)", c.Location(), c.Damaged)
		break
	}
	return c
}

// isBackupFileName reports whether name is named like a backup file:
// STAMP.KIND, with .age when encrypted. Other files (notes, .DS_Store) in a
// chain folder say nothing about its backups.
func isBackupFileName(name string) bool {
	name = strings.TrimSuffix(name, AgeSuffix)
	for _, kind := range []string{KindFull, KindIncremental, KindSnapshot} {
		if stamp, ok := strings.CutSuffix(name, "."+kind); ok {
			_, err := ParseStamp(stamp)
			return err == nil
		}
	}
	return false
}

// isFirstFile reports whether file is the name the first file of chain
// folder chain has: its full backup or snapshot, stamped with the
// folder's time.
func isFirstFile(chain, file string) bool {
	start, _, typ, ok := ParseChainFolder(chain)
	if !ok {
		return false
	}
	kind := KindFull
	if typ == Snapshot {
		kind = KindSnapshot
	}
	return file == FileName(start, kind, false) || file == FileName(start, kind, true)
}

// NewestChain returns the newest intact chain of database db in s, or
// nil. A newer chain that is damaged is an error: an incremental must not
// silently extend an older chain. Interrupted chains are passed over.
func NewestChain(ctx context.Context, s destination.Store, db string) (*Chain, error) {
	chains, err := FindChains(ctx, s)
	if err != nil {
		return nil, err
	}
	c := newestOf(chains, db)
	if c != nil && !c.Intact() {
		return nil, c.Err()
	}
	return c, nil
}

// newestOf returns the newest chain of database db in chains (oldest
// first), intact or not, passing over interrupted ones; nil if there is
// none.
func newestOf(chains []*Chain, db string) *Chain {
	for i := len(chains) - 1; i >= 0; i-- {
		if c := chains[i]; IsChainOf(c.Name, db) && !c.Interrupted {
			return c
		}
	}
	return nil
}
