package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/magpiedb/magpie/internal/encfs"
)

// DB is one open database. Reads may run concurrently; writes are
// serialised by mu, which also guards the in-memory counters mirrored from
// the m and c keys (every batch that changes them writes them back).
type DB struct {
	name string
	dir  string
	rec  *record
	ring *keyRing
	pdb  *pebble.DB
	// popts are the options pdb was opened with (its file system, table
	// settings): imports write tables with them.
	popts *pebble.Options
	tune  tuning

	mu    sync.Mutex
	state counters
	// dbID names this database in change vectors ("A:etag-dbID").
	dbID string
}

type counters struct {
	lastEtag    uint64
	docs        int64
	tombstones  int64
	attachments int64
	blobSeq     uint64
	collections map[string]*collectionCount // by lower-cased name
}

type collectionCount struct {
	name  string
	count int64
	dirty bool
}

// quietLogger drops pebble's informational messages: they name files, not
// data, but a database's log should be magpie's own. Errors still surface.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	// Like Fatalf, details may quote keys: say only that something failed.
	fmt.Fprintln(os.Stderr, "magpie: storage: the storage engine reported an error (details withheld: they may quote document IDs)")
}
func (quietLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf for damage it cannot go on with. Its message
	// can quote keys (document IDs), which must not reach a log for an
	// encrypted database, so it is not printed.
	fmt.Fprintln(os.Stderr, "magpie: error: the storage engine found damaged database files, or could not write them (is the disk full?), and stopped. Free disk space, or restore the database from a backup.")
	os.Exit(1)
}

// Memory budget of one open database: memtables (up to
// MemTableStopWritesThreshold of them) plus cached blocks.
const (
	// closeFlushBytes: a WAL tail larger than this is flushed on Close.
	closeFlushBytes = 4 << 20
	memTableBytes   = 32 << 20
	blockCacheBytes = 96 << 20
)

// tuning is how a data dir opens its databases (Options.CacheBytes,
// Options.ReadMostly).
type tuning struct {
	cacheBytes int64
	readMostly bool
}

func pebbleOptions(ring *keyRing, tune tuning) (*pebble.Options, error) {
	cacheBytes := tune.cacheBytes
	if cacheBytes <= 0 {
		cacheBytes = blockCacheBytes
	}
	fs := vfs.Default
	if ring != nil {
		efs, err := encfs.New(vfs.Default, ring.ring)
		if err != nil {
			return nil, err
		}
		fs = efs
	}
	// The block cache also accounts for the memtables: it must be larger
	// than they are, or no data block stays cached at all.
	opts := &pebble.Options{
		Cache:                       pebble.NewCache(cacheBytes),
		FS:                          fs,
		Logger:                      quietLogger{},
		MemTableSize:                memTableBytes,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 1 },
		// A command that only reads (a backup, an export) would start
		// the compactions a past write left due, and then wait for them
		// when it closes: they are left to the next writer.
		DisableAutomaticCompactions: tune.readMostly,
	}
	// Bloom filters make the existence checks of puts and imports (most
	// of them for IDs that do not exist yet) cheap.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// MinLZ (table format v6) compresses about as well as snappy for less
	// CPU; flushes and compactions are most of an import's work.
	opts.FormatMajorVersion = pebble.FormatNewest
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	opts.EnsureDefaults()
	return opts, nil
}

// openPebble opens the pebble store in dir; create makes a new one and
// writes the database's identity.
func openPebble(dir string, ring *keyRing, name string, create bool, tune tuning) (*pebble.DB, *pebble.Options, error) {
	opts, err := pebbleOptions(ring, tune)
	if err != nil {
		return nil, nil, err
	}
	opts.ErrorIfNotExists = !create
	opts.ErrorIfExists = create
	// The store holds its own reference to the cache from Open on.
	defer opts.Cache.Unref()
	pdb, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, nil, errorf(ErrDatabaseDamaged, "If the database is encrypted, check that it is opened with its own key; otherwise restore it from a backup",
			"cannot open the storage of database %q: %v", name, err)
	}
	if create {
		if _, err := setIdentity(pdb); err != nil {
			pdb.Close()
			return nil, nil, err
		}
	}
	return pdb, opts, nil
}

// setIdentity gives a store a new random database id (22 base64
// characters, like RavenDB's).
func setIdentity(pdb *pebble.DB) (string, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	id := base64.RawStdEncoding.EncodeToString(raw)
	return id, pdb.Set(metaDatabaseID, []byte(id), pebble.Sync)
}

// newIdentity gives an open database a new id.
func (db *DB) newIdentity() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	id, err := setIdentity(db.pdb)
	if err != nil {
		return err
	}
	db.dbID = id
	return nil
}

func openDB(dir string, rec *record, ring *keyRing, tune tuning) (*DB, error) {
	if err := recoverImport(dir); err != nil {
		return nil, err
	}
	pdb, popts, err := openPebble(filepath.Join(dir, "db"), ring, rec.Name, false, tune)
	if err != nil {
		return nil, err
	}
	db := &DB{name: rec.Name, dir: dir, rec: rec, ring: ring, pdb: pdb, popts: popts, tune: tune}
	if err := db.load(); err != nil {
		pdb.Close()
		return nil, err
	}
	return db, nil
}

// load reads the counters and cleans up blobs whose writing was interrupted.
func (db *DB) load() error {
	id, err := db.getMeta(metaDatabaseID)
	if err != nil {
		return err
	}
	if id == nil {
		// A wrong key decrypts to noise that pebble usually rejects
		// earlier; reaching here without an id means the same.
		return errorf(ErrDatabaseDamaged, "Check the key, or restore the database from a backup", "database %q has no identity record", db.name)
	}
	db.dbID = string(id)
	s := counters{collections: map[string]*collectionCount{}}
	for _, f := range []struct {
		key []byte
		u   *uint64
		i   *int64
	}{{metaLastEtag, &s.lastEtag, nil}, {metaBlobSeq, &s.blobSeq, nil}, {metaDocs, nil, &s.docs}, {metaTombstones, nil, &s.tombstones}, {metaAttachments, nil, &s.attachments}} {
		v, err := db.getMeta(f.key)
		if err != nil {
			return err
		}
		if v == nil {
			continue
		}
		if len(v) != 8 {
			return errorf(ErrDatabaseDamaged, "Restore the database from a backup", "database %q has a damaged counter", db.name)
		}
		if f.u != nil {
			*f.u = binary.BigEndian.Uint64(v)
		} else {
			*f.i = int64(binary.BigEndian.Uint64(v))
		}
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCollection}, UpperBound: []byte{prefixCollection + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) < 8 {
			it.Close()
			return errorf(ErrDatabaseDamaged, "Restore the database from a backup", "database %q has a damaged collection counter", db.name)
		}
		lower := string(it.Key()[1:])
		s.collections[lower] = &collectionCount{name: string(v[8:]), count: int64(binary.BigEndian.Uint64(v))}
	}
	if err := it.Close(); err != nil {
		return err
	}
	db.state = s
	return db.cleanPendingBlobs()
}

func (db *DB) getMeta(key []byte) ([]byte, error) {
	v, closer, err := db.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// Name is the database's name.
func (db *DB) Name() string { return db.name }

// Encrypted reports whether the database's files are encrypted.
func (db *DB) Encrypted() bool { return db.rec.Encrypted }

// ID is the database's id, the one its change vectors carry. A restored
// copy gets its own.
func (db *DB) ID() string { return db.dbID }

// LastEtag is the etag of the database's latest change.
func (db *DB) LastEtag() uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.state.lastEtag
}

// Close flushes nothing extra (every acknowledged write is already in the
// synced WAL) and releases the store.
func (db *DB) Close() error {
	if db.pdb == nil {
		return nil
	}
	// Pebble replays the WAL's tail into a memtable when it next opens
	// and flushes it, which made the first command after a large write
	// (an import, say) pay for that write. Flushing here, when the tail is
	// large, leaves the cost with the write.
	if db.pdb.Metrics().WAL.Size > closeFlushBytes {
		db.pdb.Flush()
	}
	err := db.pdb.Close()
	db.pdb = nil
	return err
}

// writeCounters adds the changed counters to b. Called with mu held.
func (db *DB) writeCounters(b *pebble.Batch) {
	put := func(k []byte, v uint64) {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], v)
		b.Set(k, buf[:], nil)
	}
	put(metaLastEtag, db.state.lastEtag)
	put(metaDocs, uint64(db.state.docs))
	put(metaTombstones, uint64(db.state.tombstones))
	put(metaAttachments, uint64(db.state.attachments))
	put(metaBlobSeq, db.state.blobSeq)
	for lower, c := range db.state.collections {
		if !c.dirty {
			continue
		}
		c.dirty = false
		if c.count <= 0 {
			b.Delete(collectionKey(lower), nil)
			delete(db.state.collections, lower)
			continue
		}
		v := make([]byte, 8, 8+len(c.name))
		binary.BigEndian.PutUint64(v, uint64(c.count))
		b.Set(collectionKey(lower), append(v, c.name...), nil)
	}
}

func (db *DB) countCollection(name string, delta int64) {
	lower := strings.ToLower(name)
	c := db.state.collections[lower]
	if c == nil {
		c = &collectionCount{name: name}
		db.state.collections[lower] = c
	}
	c.count += delta
	c.dirty = true
}

func (db *DB) nextEtag() uint64 {
	db.state.lastEtag++
	return db.state.lastEtag
}
