package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// Options configures one backup run.
type Options struct {
	// To lists the destinations: local folders (created if missing) or
	// object store URLs. Every destination receives the same bytes.
	To          []string
	Type        Type
	Encryption  Request
	Compression smuggler.Compression
	// Incremental extends the newest chain of the database in the
	// destinations with the changes since its last file. Without a chain
	// to extend, the run makes a full backup (or snapshot) instead.
	Incremental bool
	// Now stamps the file; zero means the current time.
	Now time.Time
	// Context, when set, cancels the run: the next write fails once it is
	// done, and the run removes what it wrote, as for any failed run.
	Context context.Context
	// Progress, when set, hears how many bytes were stored so far.
	Progress func(stored int64)
	// Documents, when set, counts the documents written as they go.
	Documents *atomic.Int64
	// Concurrency caps the goroutines that compress a logical backup: 1
	// keeps the whole backup on one core (a server does, to leave the
	// other to requests); 0 is the default, 2.
	Concurrency int
}

// Result describes a finished backup.
type Result struct {
	// Chain is the chain folder's name; ChainDir its location in the
	// first destination, File the new file's.
	Chain     string
	ChainDir  string
	File      string
	Locations []string
	Entry     FileEntry
	Manifest  *Manifest
	// Unchanged is set when an incremental run found nothing changed
	// since the chain's last file: no file was written.
	Unchanged bool
	// FullInstead is set when an incremental run made a full backup (a
	// new chain) instead: there was no chain to extend, or the newest
	// chain could not be extended safely.
	FullInstead bool
	// FullReason says, when FullInstead is set, why the run did not
	// extend a chain, as a clause to print or log: "the newest chain X is
	// damaged: file Y is missing".
	FullReason string
}

// Kind is the file kind the run wrote.
func (r *Result) Kind() string { return r.Entry.Kind }

// runLocks serialises runs per database: two runs extending one chain
// would each rewrite its manifest and lose the other's file.
var runLocks sync.Map // database name -> *sync.Mutex

func lockRuns(db string) func() {
	m, _ := runLocks.LoadOrStore(db, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Run makes a backup of db. A full backup or snapshot starts a new chain
// folder in every destination; an incremental adds a file to the newest
// chain. Files are written first and the manifest last, so a chain never
// names a file that is not complete; a failed run leaves every earlier
// file and manifest as it was.
func Run(db *store.DB, opts Options) (*Result, error) {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Type == "" {
		opts.Type = Logical
	}
	if opts.Type != Logical && opts.Type != Snapshot {
		return nil, fmt.Errorf("backup type %q is not known: use logical or snapshot", opts.Type)
	}
	if len(opts.To) == 0 {
		return nil, errors.New("no destination was given. Give a folder or a URL with --to")
	}
	stores := make([]destination.Store, 0, len(opts.To))
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	for _, to := range opts.To {
		s, err := destination.Open(ctx, to)
		if err != nil {
			return nil, err
		}
		stores = append(stores, s)
	}
	defer lockRuns(db.Name())()

	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	dbKey, encrypted := db.SecretKey()

	var res *Result
	var err error
	if opts.Incremental {
		chains, reason, seen, cerr := chainToExtend(ctx, stores, db)
		if cerr != nil {
			return nil, cerr
		}
		var enc *Encryption
		if chains != nil {
			if enc, reason, err = encryptionForChain(opts.Encryption, chains[0], db.Name(), dbKey, encrypted); err != nil {
				return nil, err
			}
			if reason == "" {
				reason = unauthenticated(chains, enc)
			}
			if reason != "" {
				chains = nil
			}
		}
		if chains == nil {
			// A new chain must not be weaker than the one it
			// replaces, whatever is wrong with that one: a key left
			// out would otherwise write the data in clear.
			if err := newChainNotWeaker(opts, seen, db.Name(), dbKey, encrypted); err != nil {
				return nil, err
			}
		}
		if chains != nil {
			res, err = runIncremental(ctx, db, stores, chains, now, opts, enc)
		} else {
			res, err = runFull(ctx, db, stores, now, opts, dbKey, encrypted)
			if res != nil {
				res.FullInstead, res.FullReason = true, reason
			}
		}
	} else {
		res, err = runFull(ctx, db, stores, now, opts, dbKey, encrypted)
	}
	if err != nil {
		return nil, err
	}
	for _, s := range stores {
		res.Locations = append(res.Locations, Location(s, res.Chain))
	}
	res.ChainDir = res.Locations[0]
	if !res.Unchanged {
		res.File = Location(stores[0], res.Chain+"/"+res.Entry.Name)
	}
	return res, nil
}

// chainToExtend finds the chain an incremental extends: the newest chain
// of db, which must be intact, of this database id and the same in every
// destination. It returns that chain as found in each destination, or nil
// and the reason to make a full backup instead. A chain that cannot be
// extended is no reason to fail: a scheduled incremental would fail until
// the next full backup, so the run starts a new chain now.
func chainToExtend(ctx context.Context, stores []destination.Store, db *store.DB) (chains []*Chain, reason string, newest []*Chain, err error) {
	newest = make([]*Chain, len(stores))
	damaged := ""
	for i, s := range stores {
		chains, err := FindChains(ctx, s)
		if err != nil {
			return nil, "", nil, fmt.Errorf("cannot extend the newest chain: %w", err)
		}
		c := newestOf(chains, db.Name())
		if c != nil && !c.Intact() {
			// A store that failed to give the manifest is not a
			// damaged chain: the run fails, to be tried again.
			var re *readError
			if errors.As(c.Err(), &re) {
				return nil, "", nil, fmt.Errorf("cannot extend the newest chain: %w", c.Err())
			}
			if damaged == "" {
				damaged = fmt.Sprintf("the newest chain %s is damaged: %s", c.Location(), c.damage())
			}
		}
		newest[i] = c
	}
	if damaged != "" {
		return nil, damaged, newest, nil
	}
	first := newest[0]
	for i, c := range newest[1:] {
		// A run killed between two destinations' manifests leaves them
		// apart; a new chain in all of them brings them together again.
		// Every destination gets the same manifest bytes: any
		// difference is a divergence (or a rewrite in one of them).
		if (c == nil) != (first == nil) || (c != nil && (c.Name != first.Name || !bytes.Equal(c.raw, first.raw))) {
			return nil, fmt.Sprintf("the destinations %s and %s do not hold the same newest chain of %s", stores[0], stores[i+1], db.Name()), newest, nil
		}
	}
	if first == nil {
		where := make([]string, len(stores))
		for i, s := range stores {
			where[i] = s.String()
		}
		return nil, fmt.Sprintf("%s has no backup chain to extend in %s", db.Name(), strings.Join(where, ", ")), newest, nil
	}
	if m := first.Manifest; m.DatabaseID != "" && m.DatabaseID != db.ID() {
		// A database restored, or deleted and created again, under the
		// same name has a new id: its changes do not follow the chain.
		return nil, fmt.Sprintf("the newest chain %s is of another database named %s (id %s, this one is %s)", first.Location(), m.Database, m.DatabaseID, db.ID()), newest, nil
	}
	return newest, "", newest, nil
}

// newChainNotWeaker refuses an incremental that starts a new chain
// encrypted more weakly than the newest chain of any destination whose
// manifest could be read.
func newChainNotWeaker(opts Options, newest []*Chain, dbName string, dbKey keys.Key, encrypted bool) error {
	want, err := Resolve(opts.Encryption, opts.Type, dbName, dbKey, encrypted)
	if err != nil {
		return err
	}
	for _, c := range newest {
		if c != nil && c.Manifest != nil {
			if err := notWeaker(want, c.Manifest, c.Location(), opts.Encryption); err != nil {
				return err
			}
		}
	}
	return nil
}

func runFull(ctx context.Context, db *store.DB, stores []destination.Store, now time.Time, opts Options, dbKey keys.Key, encrypted bool) (*Result, error) {
	enc, err := Resolve(opts.Encryption, opts.Type, db.Name(), dbKey, encrypted)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Database:        db.Name(),
		DatabaseID:      db.ID(),
		Type:            opts.Type,
		Encryption:      enc.Mode,
		KeyFingerprint:  enc.KeyFingerprint(),
		Recipients:      enc.Recipients,
		Compression:     opts.Compression.String(),
		SourceEncrypted: encrypted,
	}
	// The snapshot of an encrypted database is its ciphertext files as
	// they are; only key and recipients modes wrap a snapshot in age.
	wrapped := enc.encrypts() && !(opts.Type == Snapshot && enc.Mode == ModeDatabase)
	kind := KindFull
	if opts.Type == Snapshot {
		kind = KindSnapshot
		m.Compression = "none"
	}
	chain := ChainFolder(now, db.Name(), opts.Type)
	entry := FileEntry{Name: FileName(now, kind, wrapped), Kind: kind, Created: now}
	if kind == KindFull {
		entry.Compression = opts.Compression.String()
	}
	if err := writeFile(ctx, db, stores, chain, &entry, opts, enc, wrapped, 0); err != nil {
		return nil, err
	}
	m.Files = []FileEntry{entry}
	if err := writeManifest(ctx, stores, chain, m, enc.macKey(), nil, entry.Name); err != nil {
		return nil, manifestError(ctx, db, err)
	}
	return &Result{Chain: chain, Entry: entry, Manifest: m}, nil
}

// unauthenticated checks the MAC of each destination's copy of the chain
// an incremental extends, when the chain's mode has a key, and says why
// the chain must not be extended if one fails. The checksum alone is no
// proof: anyone who can write to a destination can rewrite it, and an
// incremental would then seal the changed manifest with a valid MAC.
func unauthenticated(chains []*Chain, enc *Encryption) string {
	k := enc.macKey()
	if k == nil {
		return ""
	}
	for _, c := range chains {
		if err := c.Manifest.CheckMAC(Location(c.Store, c.Name+"/"+ManifestName), *k); err != nil {
			return fmt.Sprintf("the manifest of the newest chain %s failed its integrity check: its MAC does not match", c.Location())
		}
	}
	return ""
}

// runIncremental extends chains, the newest chain of db as found in each
// destination (the same in all of them).
func runIncremental(ctx context.Context, db *store.DB, stores []destination.Store, chains []*Chain, now time.Time, opts Options, enc *Encryption) (*Result, error) {
	chain := chains[0]
	m := chain.Manifest
	last := m.Files[len(m.Files)-1]
	since := last.ToEtag
	cur := db.LastEtag()
	switch {
	case cur == since:
		// No document changed; the configuration may have. A file of an
		// older magpie records no digest: nothing to compare with.
		if last.ConfigDigest == "" {
			return &Result{Chain: chain.Name, Manifest: m, Entry: last, Unchanged: true}, nil
		}
		digest, err := dump.ConfigDigest(db)
		if err != nil {
			return nil, err
		}
		if digest == last.ConfigDigest {
			return &Result{Chain: chain.Name, Manifest: m, Entry: last, Unchanged: true}, nil
		}
	case cur < since:
		return nil, fmt.Errorf("database %s is at etag %d but its newest chain %s already holds changes up to etag %d, so the chain is not of this database's history. Run a full backup to start a new chain", db.Name(), cur, chain.Location(), since)
	}
	if !now.After(last.Created) {
		now = last.Created.Add(time.Microsecond)
	}
	comp := opts.Compression
	if m.Type == Logical {
		// A chain keeps one compression, so that RavenDB readers of its
		// full backup read its incrementals too.
		if c, err := smuggler.ParseCompression(m.Compression); err == nil {
			comp = c
		}
	}
	opts.Compression = comp
	entry := FileEntry{Name: FileName(now, KindIncremental, enc.encrypts()), Kind: KindIncremental, Created: now, FromEtag: since, Compression: comp.String()}
	if err := writeFile(ctx, db, stores, chain.Name, &entry, opts, enc, enc.encrypts(), since); err != nil {
		return nil, err
	}
	next := *m
	next.Files = append(append([]FileEntry(nil), m.Files...), entry)
	prev := make([][]byte, len(chains))
	for i, c := range chains {
		prev[i] = c.raw
	}
	if err := writeManifest(ctx, stores, chain.Name, &next, enc.macKey(), prev, entry.Name); err != nil {
		return nil, manifestError(ctx, db, err)
	}
	return &Result{Chain: chain.Name, Entry: entry, Manifest: &next}, nil
}

// manifestError is the error of a run whose manifest could not be
// written.
func manifestError(ctx context.Context, db *store.DB, err error) error {
	if cerr := canceled(ctx); cerr != nil {
		// The run stopped because it was asked to; whether the
		// destinations are back as they were still matters.
		var ue *undoError
		if errors.As(err, &ue) {
			return fmt.Errorf("%w; %w", cerr, ue)
		}
		return cerr
	}
	return fmt.Errorf("backup of %s failed: %w", db.Name(), err)
}

// encryptionForChain works out how this run encrypts, exactly as a full
// backup would (the operator's flags or the task's settings, else the
// database's key for an encrypted database, else none), and returns it
// when the chain is encrypted the same way (DESIGN rule 4).
//
// The chain's mode is never adopted from its manifest: for modes without
// a key nothing authenticates the manifest, and one rewritten to
// recipients or none would have the incremental encrypt the changes for
// someone else, or not at all. A run that would encrypt more weakly than
// the chain (a key over recipients over none) fails: that is an
// operator's slip, such as a key left out, and must not weaken the
// backups. A run that encrypts as strongly or more, but otherwise (another
// mode, key or recipients: a rotated key, a changed task, a rewritten
// manifest), returns why it makes a full backup in a new chain instead.
func encryptionForChain(req Request, c *Chain, dbName string, dbKey keys.Key, encrypted bool) (*Encryption, string, error) {
	m := c.Manifest
	want, err := Resolve(req, Logical, dbName, dbKey, encrypted)
	if err != nil {
		return nil, "", err
	}
	if err := notWeaker(want, m, c.Location(), req); err != nil {
		return nil, "", err
	}
	if reason := differs(want, m); reason != "" {
		return nil, fmt.Sprintf("the newest chain %s is encrypted %s, and this run encrypts %s", c.Location(), describeChain(m), reason), nil
	}
	return want, "", nil
}

// notWeaker refuses a run that would encrypt more weakly than chain m,
// found at where.
func notWeaker(want *Encryption, m *Manifest, where string, req Request) error {
	if strength(want.Mode) >= strength(m.Encryption) {
		return nil
	}
	if m.Encryption == ModeKey && req.Mode == "" && req.KeyFile == "" && req.Key == nil {
		return fmt.Errorf("the chain in %s is encrypted with a key, and so are its incrementals: encryption mode key needs a key. Give it with --key-file FILE (make one with `magpie secrets generate`)", where)
	}
	return fmt.Errorf("the chain in %s is encrypted in mode %s, and an incremental is encrypted like its chain, not in mode %s. Give the chain's encryption (see `magpie backup ls`), or run a full backup to start a new chain", where, m.Encryption, want.Mode)
}

// differs says how want encrypts unlike chain m ("" when alike).
func differs(want *Encryption, m *Manifest) string {
	switch {
	case want.Mode != m.Encryption:
		return "in mode " + string(want.Mode)
	case want.Mode == ModeDatabase || want.Mode == ModeKey:
		if fp := want.Key.Fingerprint(); fp != m.KeyFingerprint {
			return fmt.Sprintf("with the key of fingerprint %s", fp)
		}
	case want.Mode == ModeRecipients:
		if !sameSet(want.Recipients, m.Recipients) {
			return "to other recipients"
		}
	}
	return ""
}

// strength orders the modes by what protects a backup: a key (which also
// authenticates the manifest), then age recipients, then nothing.
func strength(m Mode) int {
	switch m {
	case ModeKey, ModeDatabase:
		return 2
	case ModeRecipients:
		return 1
	}
	return 0
}

// describeChain says how a chain is encrypted, for a reason.
func describeChain(m *Manifest) string {
	switch m.Encryption {
	case ModeDatabase, ModeKey:
		return fmt.Sprintf("in mode %s with the key of fingerprint %s", m.Encryption, m.KeyFingerprint)
	case ModeRecipients:
		return fmt.Sprintf("in mode recipients to %d recipient(s)", len(m.Recipients))
	}
	return "in mode " + string(m.Encryption)
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// writeFile streams one backup file into every destination: the snapshot
// or the export of the changes after etag since, compressed, encrypted
// when wrapped, hashed. It fills entry's counts, size and checksum.
func writeFile(ctx context.Context, db *store.DB, stores []destination.Store, chain string, entry *FileEntry, opts Options, enc *Encryption, wrapped bool, since uint64) error {
	// The digest is taken before the file: a change while it is written
	// makes the next digest differ, and at worst one more file.
	digest, err := dump.ConfigDigest(db)
	if err != nil {
		return err
	}
	entry.ConfigDigest = digest
	fw, err := createFile(ctx, stores, chain+"/"+entry.Name)
	if err != nil {
		return err
	}
	defer fw.Abort()
	fw.progress = opts.Progress
	var sink io.Writer = &ctxWriter{ctx: ctx, w: fw}
	var out io.WriteCloser = nopCloser{sink}
	if wrapped {
		if out, err = enc.wrap(sink); err != nil {
			return err
		}
	}
	if entry.Kind == KindSnapshot {
		err = writeSnapshot(db, out, entry)
	} else {
		var wr store.WalkResult
		wr, err = dump.ExportWith(db, out, dump.ExportOptions{Compression: opts.Compression, Since: since, Documents: opts.Documents, Concurrency: opts.Concurrency})
		entry.ToEtag, entry.Documents, entry.Tombstones = wr.LastEtag, wr.Documents, wr.Tombstones
		entry.Attachments = wr.Attachments
	}
	if err == nil {
		err = out.Close()
	}
	if err == nil {
		err = canceled(ctx)
	}
	if err != nil {
		if cerr := canceled(ctx); cerr != nil {
			return cerr
		}
		return fmt.Errorf("backup of %s failed: %w", db.Name(), err)
	}
	entry.Size, entry.SHA256, err = fw.Commit()
	return err
}

// ErrCanceled is wrapped by the error of a run whose Context was canceled.
var ErrCanceled = errors.New("the backup was canceled")

// canceled returns ErrCanceled (and the context's cause) once ctx is done.
func canceled(ctx context.Context) error {
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
}

// ctxWriter fails every write once its context is done, which stops the
// export or snapshot writing into it.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := canceled(c.ctx); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
