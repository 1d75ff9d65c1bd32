package destination

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/magpiedb/magpie/internal/atomicfile"
)

// InProgressSuffix ends the name of a local file still being written.
const InProgressSuffix = ".in-progress"

// Local is a folder on a local file system. Objects are files; a name's
// slashes are subfolders.
type Local struct {
	root string
}

// OpenLocal opens the folder root; it is created (0700) on the first write.
func OpenLocal(root string) (*Local, error) {
	if root == "" {
		return nil, errors.New("no destination was given. Give a folder or a URL (s3://, azblob://, gs://)")
	}
	if st, err := os.Stat(root); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a folder. Give a folder for backups", root)
	}
	return &Local{root: filepath.Clean(root)}, nil
}

// Root is the folder.
func (l *Local) Root() string { return l.root }

func (l *Local) String() string { return l.root }

func (l *Local) Close() error { return nil }

// path maps a name to a file path, refusing names that would leave root.
func (l *Local) path(name string) (string, error) {
	clean := filepath.FromSlash(name)
	if name == "" || filepath.IsAbs(clean) || !filepath.IsLocal(clean) {
		return "", fmt.Errorf("%q is not a name inside %s", name, l.root)
	}
	return filepath.Join(l.root, clean), nil
}

// Create writes NAME.in-progress; Commit syncs it, renames it to NAME and
// syncs its folder, so a file under its final name is always complete.
func (l *Local) Create(ctx context.Context, name string) (Writer, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return nil, localError("cannot create the folder "+filepath.Dir(p), err)
	}
	f, err := os.OpenFile(p+InProgressSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// A file left by a killed run (one run writes a database's
		// chains at a time): it was never complete, so it goes.
		if st, serr := os.Lstat(p + InProgressSuffix); serr == nil && st.Mode().IsRegular() {
			if rerr := os.Remove(p + InProgressSuffix); rerr == nil {
				f, err = os.OpenFile(p+InProgressSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			}
		}
	}
	if err != nil {
		return nil, localError("cannot create "+p, err)
	}
	return &localWriter{ctx: ctx, f: f, path: p}, nil
}

// mkdirAll creates dir and its missing parents (0700), syncing each parent
// whose entries changed so that the new folders survive a crash.
func mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is a file", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return atomicfile.SyncDir(parent)
}

// localError names the problem; a full disk gets its own advice.
func localError(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%s: the disk is full. Free space or choose another destination: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

type localWriter struct {
	ctx   context.Context
	f     *os.File
	path  string
	state int // 0 open, 1 committed, 2 aborted
}

func (w *localWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	if err != nil {
		err = localError("cannot write "+w.path, err)
	}
	return n, err
}

func (w *localWriter) Commit() error {
	if w.state != 0 {
		return fmt.Errorf("%s was already finished", w.path)
	}
	if err := w.ctx.Err(); err != nil {
		w.Abort()
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return localError("cannot sync "+w.path, err)
	}
	if err := w.f.Close(); err != nil {
		w.Abort()
		return localError("cannot write "+w.path, err)
	}
	if err := os.Rename(w.path+InProgressSuffix, w.path); err != nil {
		w.Abort()
		return localError("cannot rename "+w.path+" into place", err)
	}
	w.state = 1
	return atomicfile.SyncDir(filepath.Dir(w.path))
}

func (w *localWriter) Abort() {
	if w.state != 0 {
		return
	}
	w.state = 2
	w.f.Close()
	os.Remove(w.path + InProgressSuffix)
	// A folder this write created (a new chain) goes too; removing fails,
	// as it should, while the folder holds anything.
	os.Remove(filepath.Dir(w.path))
}

func (l *Local) Open(ctx context.Context, name string) (Reader, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: %w", p, ErrNotExist)
		}
		return nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return &localReader{File: f, size: st.Size()}, nil
}

type localReader struct {
	*os.File
	size int64
}

func (r *localReader) Size() int64 { return r.size }

// List walks the folder that holds prefix. Files still being written, or
// left by a killed run (NAME.in-progress), are listed as Partial.
func (l *Local) List(ctx context.Context, prefix string) ([]Object, error) {
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		p, err := l.path(prefix[:i])
		if err != nil {
			return nil, err
		}
		start = p
	}
	var out []Object
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while listing
		}
		out = append(out, Object{Name: name, Size: info.Size(), ModTime: info.ModTime(), Partial: strings.HasSuffix(name, InProgressSuffix)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", l.root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes name and then its folder when that became empty.
func (l *Local) Delete(ctx context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cannot delete %s: %w", p, err)
	}
	dir := filepath.Dir(p)
	// Removing the folder fails, as it should, while it holds files.
	if dir != l.root && os.Remove(dir) == nil {
		return atomicfile.SyncDir(filepath.Dir(dir))
	}
	return atomicfile.SyncDir(dir)
}
