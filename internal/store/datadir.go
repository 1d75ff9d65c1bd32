package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/magpiedb/magpie/internal/atomicfile"
	"github.com/magpiedb/magpie/internal/keys"
)

// A data dir holds every database of one magpie instance:
//
//	DIR/magpie.json                 format version and the master key's fingerprint
//	DIR/LOCK                        held while a process uses the data dir
//	DIR/databases/NAME/record.json  the database record (sealed secret key for encrypted ones)
//	DIR/databases/NAME/keys.json    data keys sealed with the database's secret key
//	DIR/databases/NAME/db/          the pebble store (every file encrypted when the database is)
//
// The master key lives outside the data dir (by default DIR.master.key, next
// to it) so that a copy of the data dir alone opens nothing.
//
// Invariant: a database directory under databases/ is complete. Databases
// are built under a dot-prefixed temporary name and renamed into place;
// dot-prefixed leftovers of a crash are removed when the data dir opens.

const (
	dataDirFormat   = 1
	manifestName    = "magpie.json"
	databasesDir    = "databases"
	lockName        = "LOCK"
	tempPrefix      = ".tmp-"
	deletingPrefix  = ".deleting-"
	masterKeySuffix = ".master.key"
)

// Options says where a data dir and its master key are.
type Options struct {
	Dir string
	// MasterKeyFile defaults to DefaultMasterKeyFile(Dir).
	MasterKeyFile string
	// Create initialises the data dir when it does not exist yet (and the
	// master key with it when that file does not exist either).
	Create bool
	// CacheBytes is the block cache of each open database (0: 96 MiB, for
	// a server). A command that runs once (restore, backup, import) does
	// well with less: it reads most blocks once.
	CacheBytes int64
	// ReadMostly opens databases without automatic compactions, for a
	// command that reads them once (a backup, an export): compactions
	// that a past write left due would otherwise start, and the command
	// would wait for them when it closes. The next writer does them.
	ReadMostly bool
}

// DefaultMasterKeyFile is where the master key of a data dir is kept when no
// path is given: beside the data dir, never inside it.
func DefaultMasterKeyFile(dir string) string {
	// Absolute first: "." or ".." would otherwise put the key inside.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Clean(dir) + masterKeySuffix
}

// DataDir is an open data dir. It holds the data dir's lock until Close, so
// two magpie processes never work on the same databases at once.
type DataDir struct {
	dir        string
	tune       tuning
	master     keys.Key
	lock       io.Closer
	createdNew bool
	createdKey bool
	masterPath string
}

type dataDirManifest struct {
	Format               int       `json:"format"`
	MasterKeyFingerprint string    `json:"masterKeyFingerprint"`
	Created              time.Time `json:"created"`
}

// Open opens (or with opts.Create, initialises) a data dir.
func Open(opts Options) (*DataDir, error) {
	dir := filepath.Clean(opts.Dir)
	masterPath := opts.MasterKeyFile
	if masterPath == "" {
		masterPath = DefaultMasterKeyFile(dir)
	}
	d := &DataDir{dir: dir, masterPath: masterPath, tune: tuning{cacheBytes: opts.CacheBytes, readMostly: opts.ReadMostly}}
	if inside(dir, masterPath) {
		return nil, errorf(ErrInvalidInput, "Keep it outside (the default is "+DefaultMasterKeyFile(dir)+"), so that a copy of the data dir alone opens nothing",
			"the master key file %s is inside the data dir %s", masterPath, dir)
	}

	// The lock is taken before the manifest is read or written, so two
	// processes initialising one data dir cannot race.
	_, statErr := os.Stat(dir)
	createdDir := false
	if errors.Is(statErr, fs.ErrNotExist) {
		if !opts.Create {
			return nil, errorf(ErrNoDataDir, "Create a database first with `magpie db create NAME`, or point --data (MAGPIE_DATA) at an existing data dir",
				"there is no magpie data dir at %s", dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create data dir %s: %w", dir, err)
		}
		createdDir = true
	} else if statErr != nil {
		return nil, fmt.Errorf("cannot use data dir %s: %w", dir, statErr)
	}
	lock, err := vfs.Default.Lock(filepath.Join(dir, lockName))
	if err != nil {
		if st, serr := os.Stat(dir); serr == nil && !st.IsDir() {
			return nil, errorf(ErrInvalidInput, "Point --data (MAGPIE_DATA) at a folder", "%s is a file, not a data dir", dir)
		}
		return nil, errorf(ErrLocked, "Wait for the other command to finish (or stop it) and try again",
			"data dir %s is in use by another magpie process", dir)
	}
	d.lock = lock
	if err := d.readOrInitialise(opts.Create); err != nil {
		d.Close()
		if createdDir {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	if err := d.sweep(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// inside reports whether path lies under dir.
func inside(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	if r, err := filepath.EvalSymlinks(d); err == nil {
		d = r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		p = filepath.Join(r, filepath.Base(p))
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// readOrInitialise checks the data dir's manifest and master key, or
// initialises a new data dir. Called with the lock held.
func (d *DataDir) readOrInitialise(create bool) error {
	dir, masterPath := d.dir, d.masterPath
	raw, err := os.ReadFile(filepath.Join(dir, manifestName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !create {
			return errorf(ErrNoDataDir, "Create a database first with `magpie db create NAME`, or point --data (MAGPIE_DATA) at an existing data dir",
				"there is no magpie data dir at %s", dir)
		}
		return d.initialise()
	case err != nil:
		return fmt.Errorf("cannot read %s: %w", filepath.Join(dir, manifestName), err)
	}
	var m dataDirManifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Format == 0 {
		return errorf(ErrDatabaseDamaged, "Restore the data dir from a backup",
			"%s is damaged or not a magpie data dir manifest", filepath.Join(dir, manifestName))
	}
	if m.Format > dataDirFormat {
		return fmt.Errorf("data dir %s has format %d, newer than this magpie understands (%d): upgrade magpie", dir, m.Format, dataDirFormat)
	}
	master, err := keys.ReadFile(masterPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errorf(ErrWrongMasterKey, "Pass the master key it was created with using --master-key or MAGPIE_MASTER_KEY_FILE; magpie never creates a new master key for an existing data dir",
				"the master key file %s does not exist, but data dir %s was initialised with master key %s", masterPath, dir, m.MasterKeyFingerprint)
		}
		return fmt.Errorf("master key: %w", err)
	}
	if master.Fingerprint() != m.MasterKeyFingerprint {
		return errorf(ErrWrongMasterKey, "Pass the master key it was created with using --master-key or MAGPIE_MASTER_KEY_FILE",
			"the master key in %s (fingerprint %s) is not the one data dir %s was initialised with (fingerprint %s)",
			masterPath, master.Fingerprint(), dir, m.MasterKeyFingerprint)
	}
	d.master = master
	return nil
}

// initialise creates a new data dir. The master key is read when its file
// exists (several data dirs may share one) and generated otherwise.
func (d *DataDir) initialise() error {
	master, err := keys.ReadFile(d.masterPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if master, err = keys.Generate(); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(d.masterPath), 0o700); err != nil {
			return fmt.Errorf("cannot create the folder for the master key: %w", err)
		}
		if err := keys.WriteFile(d.masterPath, master); err != nil {
			return err
		}
		d.createdKey = true
	case err != nil:
		return fmt.Errorf("master key: %w", err)
	}
	d.master = master
	if err := os.MkdirAll(filepath.Join(d.dir, databasesDir), 0o700); err != nil {
		return fmt.Errorf("cannot create data dir %s: %w", d.dir, err)
	}
	m := dataDirManifest{Format: dataDirFormat, MasterKeyFingerprint: master.Fingerprint(), Created: time.Now().UTC()}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := atomicfile.Replace(filepath.Join(d.dir, manifestName), append(raw, '\n'), 0o600); err != nil {
		return err
	}
	d.createdNew = true
	return nil
}

// sweep removes what an interrupted create or delete left behind, and
// finishes or rolls back interrupted imports.
func (d *DataDir) sweep() error {
	entries, err := os.ReadDir(filepath.Join(d.dir, databasesDir))
	if err != nil {
		return fmt.Errorf("cannot list databases in %s: %w", d.dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) || strings.HasPrefix(e.Name(), deletingPrefix) {
			if err := os.RemoveAll(filepath.Join(d.dir, databasesDir, e.Name())); err != nil {
				return fmt.Errorf("cannot remove leftover %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// Close releases the data dir lock.
func (d *DataDir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close()
	d.lock = nil
	return err
}

// Path is the data dir's location.
func (d *DataDir) Path() string { return d.dir }

// Contains reports whether path (a folder or file, not necessarily
// existing) is the data dir or inside it: backups must not go there,
// where they would be taken for databases or deleted with them.
func Contains(dataDir, path string) bool {
	d, err1 := filepath.Abs(dataDir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	// Resolve symlinks where the paths exist, so that a link into the
	// data dir is seen for what it is.
	if r, err := filepath.EvalSymlinks(d); err == nil {
		d = r
	}
	for probe, rest := p, ""; ; {
		if r, err := filepath.EvalSymlinks(probe); err == nil {
			p = filepath.Join(r, rest)
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		rest = filepath.Join(filepath.Base(probe), rest)
		probe = parent
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// MasterKeyFile is where the master key was read from or written to.
func (d *DataDir) MasterKeyFile() string { return d.masterPath }

// CreatedMasterKey reports whether Open generated a new master key, which the
// operator must be told to back up.
func (d *DataDir) CreatedMasterKey() bool { return d.createdKey }

func (d *DataDir) databasePath(name string) string {
	return filepath.Join(d.dir, databasesDir, name)
}

// Info describes one database.
type Info struct {
	Name           string    `json:"Name"`
	Encrypted      bool      `json:"Encrypted"`
	KeyFingerprint string    `json:"KeyFingerprint,omitempty"`
	Created        time.Time `json:"Created"`
	// Damaged says why the database's record cannot be read; one damaged
	// database does not hide the others.
	Damaged string `json:"Damaged,omitempty"`
}

// Databases lists the databases, sorted by name.
func (d *DataDir) Databases() ([]Info, error) {
	entries, err := os.ReadDir(filepath.Join(d.dir, databasesDir))
	if err != nil {
		return nil, fmt.Errorf("cannot list databases in %s: %w", d.dir, err)
	}
	var out []Info
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rec, err := readRecord(d.databasePath(e.Name()))
		if err != nil {
			out = append(out, Info{Name: e.Name(), Damaged: err.Error()})
			continue
		}
		out = append(out, Info{Name: rec.Name, Encrypted: rec.Encrypted, KeyFingerprint: rec.KeyFingerprint, Created: rec.Created})
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

// lookup finds a database's directory name case-insensitively: database
// names, like RavenDB's, are not case-sensitive.
func (d *DataDir) lookup(name string) (string, error) {
	if err := ValidateDatabaseName(name); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(filepath.Join(d.dir, databasesDir))
	if err != nil {
		return "", fmt.Errorf("cannot list databases in %s: %w", d.dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.EqualFold(e.Name(), name) {
			return e.Name(), nil
		}
	}
	return "", errorf(ErrNotFound, "List the databases with `magpie db list`", "database %q does not exist", name)
}

// CreateOptions configures a new database.
type CreateOptions struct {
	// Encrypted databases need a secret key: Key when set, a new random one
	// otherwise (CreateDatabase returns it so the operator can store it).
	Encrypted bool
	Key       *keys.Key
}

// CreateDatabase creates an empty database and returns its secret key when
// it is encrypted. The database appears under its name only when complete.
func (d *DataDir) CreateDatabase(name string, opts CreateOptions) (keys.Key, error) {
	return d.CreateDatabaseFrom(name, opts, nil)
}

// CreateDatabaseFrom creates a database and, when fill is set, lets fill
// write into it (a restore) before it appears under its name. If fill
// fails, no database is created.
func (d *DataDir) CreateDatabaseFrom(name string, opts CreateOptions, fill func(db *DB) error) (keys.Key, error) {
	if err := ValidateDatabaseName(name); err != nil {
		return keys.Key{}, err
	}
	if opts.Key != nil && !opts.Encrypted {
		return keys.Key{}, errorf(ErrInvalidInput, "Add --encrypted, or leave out --key-file", "a key was given for a database that is not encrypted")
	}
	if err := d.checkFree(name); err != nil {
		return keys.Key{}, err
	}
	var secret keys.Key
	if opts.Encrypted {
		if opts.Key != nil {
			secret = *opts.Key
		} else {
			var err error
			if secret, err = keys.Generate(); err != nil {
				return keys.Key{}, err
			}
		}
	}
	err := d.build(name, func(tmp string) error {
		rec := &record{Name: name, Encrypted: opts.Encrypted, Created: time.Now().UTC()}
		var ring *keyRing
		if opts.Encrypted {
			r, err := newKeyRing(secret)
			if err != nil {
				return err
			}
			ring = r
			rec.sealSecret(d.master, secret)
			if err := writeKeyRing(tmp, ring); err != nil {
				return err
			}
		}
		if err := writeRecord(tmp, rec); err != nil {
			return err
		}
		pdb, _, err := openPebble(filepath.Join(tmp, "db"), ring, name, true, d.tune)
		if err != nil {
			return err
		}
		if err := pdb.Close(); err != nil {
			return err
		}
		if fill == nil {
			return nil
		}
		db, err := openDB(tmp, rec, ring, d.tune)
		if err != nil {
			return err
		}
		if err := fill(db); err != nil {
			db.Close()
			return err
		}
		return db.Close()
	})
	return secret, err
}

// checkFree fails when a database called name (in any letter case) exists.
func (d *DataDir) checkFree(name string) error {
	if existing, err := d.lookup(name); err == nil {
		if existing != name {
			return errorf(ErrExists, "Choose another name, or delete it first with `magpie db delete "+existing+"`",
				"a database %q already exists (database names are not case-sensitive)", existing)
		}
		return errorf(ErrExists, "Choose another name, or delete it first with `magpie db delete "+name+"`", "database %q already exists", name)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// build creates a database in a temporary directory with fill, syncs it and
// renames it into place. Whatever fails, nothing appears under name.
func (d *DataDir) build(name string, fill func(dir string) error) error {
	parent := filepath.Join(d.dir, databasesDir)
	tmp, err := os.MkdirTemp(parent, tempPrefix+name+"-")
	if err != nil {
		return fmt.Errorf("cannot create a database directory in %s: %w", parent, err)
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	// A database of that name may have appeared meanwhile (another
	// process through the server, later); never replace it.
	if err := d.checkFree(name); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(parent, name)); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("cannot move the new database into place: %w", err)
	}
	return atomicfile.SyncDir(parent)
}

// DeleteDatabase removes a database and all its files. The directory is
// first renamed out of the way so that a crash never leaves half a database
// under its name.
func (d *DataDir) DeleteDatabase(name string) error {
	dirName, err := d.lookup(name)
	if err != nil {
		return err
	}
	parent := filepath.Join(d.dir, databasesDir)
	doomed := filepath.Join(parent, fmt.Sprintf("%s%s-%d", deletingPrefix, dirName, time.Now().UnixNano()))
	if err := os.Rename(filepath.Join(parent, dirName), doomed); err != nil {
		return fmt.Errorf("cannot delete database %q: %w", name, err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return err
	}
	return os.RemoveAll(doomed)
}

// OpenDatabase opens a database for reading and writing.
func (d *DataDir) OpenDatabase(name string) (*DB, error) {
	dirName, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	dir := d.databasePath(dirName)
	rec, err := readRecord(dir)
	if err != nil {
		return nil, err
	}
	var ring *keyRing
	if rec.Encrypted {
		secret, err := rec.openSecret(d.master)
		if err != nil {
			return nil, err
		}
		if ring, err = readKeyRing(dir, secret); err != nil {
			return nil, err
		}
	}
	return openDB(dir, rec, ring, d.tune)
}
