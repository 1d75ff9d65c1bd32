package server

// Restores and restore points, from a local folder or an object store.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
)

// restoreConfigurationJSON is RavenDB's RestoreBackupConfiguration (and
// RestoreFromS3Configuration, RestoreFromAzureConfiguration,
// RestoreFromGoogleCloudConfiguration: Type and Settings) plus magpie's
// MagpieIdentity: the path, on the server's machine, of the age identity
// file that opens a backup made for MagpieRecipients. BackupLocation may
// be an object store URL.
type restoreConfigurationJSON struct {
	DatabaseName             string                  `json:"DatabaseName"`
	BackupLocation           string                  `json:"BackupLocation"`
	Settings                 json.RawMessage         `json:"Settings"`
	LastFileNameToRestore    string                  `json:"LastFileNameToRestore"`
	DataDirectory            string                  `json:"DataDirectory"`
	EncryptionKey            *string                 `json:"EncryptionKey"`
	DisableOngoingTasks      bool                    `json:"DisableOngoingTasks"`
	SkipIndexes              bool                    `json:"SkipIndexes"`
	Type                     string                  `json:"Type"`
	ShardRestoreSettings     json.RawMessage         `json:"ShardRestoreSettings"`
	BackupEncryptionSettings *encryptionSettingsJSON `json:"BackupEncryptionSettings"`
	MagpieIdentity           string                  `json:"MagpieIdentity"`
}

// restoreRequest is a checked restore request. newKey and dec.Key are key
// material: never logged.
type restoreRequest struct {
	name     string
	location string
	last     string
	// disableTasks disables the restored database's backup tasks
	// (DisableOngoingTasks); otherwise they come back as they were.
	disableTasks bool
	newKey       *keys.Key
	dec          *backup.Decryption
	// keyFrom names the field the decryption key came from.
	keyFrom string
}

// restoreResult is a finished restore's operation Result.
type restoreResult struct {
	Message          string   `json:"Message"`
	DatabaseName     string   `json:"DatabaseName"`
	BackupDirectory  string   `json:"BackupDirectory"`
	Files            []string `json:"Files"`
	IsEncrypted      bool     `json:"IsEncrypted"`
	KeyFingerprint   string   `json:"KeyFingerprint,omitempty"`
	CountOfDocuments int64    `json:"CountOfDocuments"`
	// MagpieBackupTasks counts the backup tasks the database came back
	// with, and MagpieDisabledTasks those DisableOngoingTasks disabled.
	MagpieBackupTasks   int `json:"MagpieBackupTasks"`
	MagpieDisabledTasks int `json:"MagpieDisabledTasks"`
	// MagpiePassedOver are newer chains passed over: they have no
	// manifest (an interrupted first backup, or a deleted manifest).
	MagpiePassedOver []string `json:"MagpiePassedOver,omitempty"`
}

// POST /admin/restore/database  body: RestoreBackupConfiguration
func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	var c restoreConfigurationJSON
	if !readJSON(w, r, maxConfigBody, &c) {
		return
	}
	req, err := s.checkRestore(&c)
	if err != nil {
		badRequest(w, err)
		return
	}
	ops := s.extras().ops
	op, err := ops.start("", "Restore "+req.name, AccessOperator, func(ctx context.Context, op *operation) (any, error) {
		return s.runRestore(ctx, op, req)
	})
	if err != nil {
		s.operationRefused(w, err)
		return
	}
	s.log.Info("restore started", "db", req.name, "location", req.location, "operation", op.id)
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "OperationNodeTag": NodeTag})
}

// checkRestore checks what can be checked without reading the backup; the
// rest (the backup's keys, the name being free) faults the operation.
func (s *Server) checkRestore(c *restoreConfigurationJSON) (*restoreRequest, error) {
	switch {
	case strings.TrimSpace(c.DatabaseName) == "":
		return nil, errors.New("DatabaseName is missing. Give the name of the new database")
	case c.DataDirectory != "":
		return nil, errors.New("DataDirectory is not supported by magpie: every database lives in the server's data dir. Leave it out")
	case len(c.ShardRestoreSettings) > 0 && string(c.ShardRestoreSettings) != "null":
		return nil, &notSupported{"sharded restores are not supported by magpie, which has no shards"}
	}
	if err := store.ValidateDatabaseName(c.DatabaseName); err != nil {
		return nil, err
	}
	location, err := restoreLocation(c)
	if err != nil {
		return nil, err
	}
	req := &restoreRequest{name: c.DatabaseName, location: location, last: c.LastFileNameToRestore, dec: &backup.Decryption{}, disableTasks: c.DisableOngoingTasks}
	if c.EncryptionKey != nil && *c.EncryptionKey != "" {
		if s.cfg.Unsecured {
			return nil, errors.New(unsecuredCreateMessage(c.DatabaseName))
		}
		k, err := keys.Parse(*c.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("EncryptionKey: %v", err)
		}
		req.newKey = &k
		req.dec.Key = &k
		req.keyFrom = "EncryptionKey"
	}
	if es := c.BackupEncryptionSettings; es != nil {
		if len(es.MagpieRecipients) > 0 {
			return nil, errors.New("BackupEncryptionSettings.MagpieRecipients is for making backups. To open a backup made for age recipients, give MagpieIdentity, the path of the identity file on the server's machine")
		}
		mode := strings.ToLower(es.EncryptionMode)
		if _, known := tasks.ParseRavenMode(mode); !known {
			return nil, fmt.Errorf("BackupEncryptionSettings.EncryptionMode %q is not known. Use None, UseDatabaseKey or UseProvidedKey", es.EncryptionMode)
		}
		if es.Key != nil && *es.Key != "" {
			if mode == "none" {
				return nil, errors.New("BackupEncryptionSettings.Key was given with EncryptionMode None. Leave out the Key, or use UseProvidedKey")
			}
			k, err := keys.Parse(*es.Key)
			if err != nil {
				return nil, fmt.Errorf("BackupEncryptionSettings.Key: %v", err)
			}
			// This key only decrypts; EncryptionKey, if any, still
			// becomes the restored database's key.
			req.dec.Key = &k
			req.keyFrom = "BackupEncryptionSettings.Key"
		} else if mode == "useprovidedkey" {
			return nil, errors.New("BackupEncryptionSettings.EncryptionMode UseProvidedKey needs BackupEncryptionSettings.Key, the backup's key")
		}
	}
	if c.MagpieIdentity != "" {
		if !filepath.IsAbs(c.MagpieIdentity) {
			return nil, fmt.Errorf("MagpieIdentity %q is not an absolute path. Give the full path of the age identity file on the server's machine", c.MagpieIdentity)
		}
		d, err := backup.LoadDecryption("", c.MagpieIdentity)
		if err != nil {
			return nil, err
		}
		req.dec.Identities = d.Identities
	}
	return req, nil
}

// restoreLocation is where a restore reads: BackupLocation (a folder or
// file on the server's machine, or a URL) for Type Local, or the bucket
// the Settings of Type S3, Azure or GoogleCloud name (RemoteFolderName
// may name a folder of chains, a chain folder or a backup file in it).
func restoreLocation(c *restoreConfigurationJSON) (string, error) {
	switch strings.ToLower(c.Type) {
	case "", "local":
		if len(c.Settings) > 0 && string(c.Settings) != "null" {
			return "", errors.New("Settings was given with Type Local. Give the backup's location in BackupLocation, or Type S3, Azure or GoogleCloud with Settings")
		}
		if strings.TrimSpace(c.BackupLocation) == "" {
			return "", errors.New("BackupLocation is missing. Give the backup folder (or a backup file) on the server's machine, or an s3://, azblob:// or gs:// URL")
		}
		loc, err := tasks.CheckLocation(c.BackupLocation)
		if err != nil {
			return "", fmt.Errorf("BackupLocation %s", strings.TrimPrefix(err.Error(), "the location "))
		}
		return loc, nil
	}
	if len(c.Settings) == 0 || string(c.Settings) == "null" {
		if destination.IsURL(c.BackupLocation) && tasks.IsSettingsType(c.Type) {
			return tasks.CheckLocation(c.BackupLocation)
		}
	}
	return tasks.SettingsLocation(c.Type, c.Settings, "Settings")
}

// runRestore is a restore operation. Whatever fails, no database is left
// under the name.
func (s *Server) runRestore(ctx context.Context, op *operation, req *restoreRequest) (any, error) {
	ops := s.extras().ops
	fail := func(err error) error {
		s.log.Warn("restore failed", "db", req.name, "operation", op.id, "err", err)
		return err
	}
	if _, err := s.lookupInfo(req.name); err == nil {
		return nil, fail(faultf("database %s already exists. Choose another DatabaseName, or delete it first", req.name))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fail(err)
	}
	ops.setProgress(op, map[string]any{"Message": "reading " + req.location})
	t, err := restore.Locate(ctx, req.location, restore.Until{File: req.last})
	if err != nil {
		return nil, fail(&userFault{msg: apiWording(strings.Replace(err.Error(), "--until", "LastFileNameToRestore", 1))})
	}
	defer t.Close()
	for _, p := range t.PassedOver {
		s.log.Warn("restore passed over a newer chain without a manifest (an interrupted first backup, or a deleted manifest)", "operation", op.id, "chain", p)
	}
	m := t.Manifest
	if err := checkRestoreKeys(t, req); err != nil {
		return nil, fail(err)
	}
	encrypted := req.newKey != nil || m.SourceEncrypted
	if encrypted && s.cfg.Unsecured {
		return nil, fail(faultf("%s", unsecuredCreateMessage(req.name)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ops.setProgress(op, map[string]any{"Message": "restoring " + t.ChainDir + " as " + req.name})
	res, err := restore.Restore(s.data, t, restore.Options{As: req.name, Decryption: req.dec, NewKey: req.newKey, Context: ctx})
	if testHookRestored != nil {
		testHookRestored(ctx)
	}
	if err != nil {
		var ue *userFault
		if !errors.As(err, &ue) {
			err = &wrappedFault{msg: apiWording(err.Error()), err: err}
		}
		return nil, fail(err)
	}
	if ctx.Err() != nil {
		// A restore cannot stop part-way: it finished, and is undone.
		s.closeDB(req.name)
		if derr := s.data.DeleteDatabase(req.name); derr != nil {
			s.log.Error("cannot remove the database of a canceled restore", "db", req.name, "err", derr)
		}
		return nil, context.Cause(ctx)
	}
	// Drop any handle cached under the name before the restore (none is
	// expected), so the next request opens the restored database.
	if err := s.closeDB(req.name); err != nil {
		s.log.Warn("closing a stale handle after a restore failed", "db", req.name, "err", err)
	}
	var docs int64
	if res.Stats != nil {
		docs = res.Stats.CountOfDocuments
	}
	n, disabled, err := s.restoredTasks(req)
	if err != nil {
		// The data is restored; only its tasks are in doubt, so the
		// restore stands and says so.
		s.log.Error("the backup tasks of a restored database could not be loaded", "db", req.name, "err", err)
	}
	s.log.Info("database restored", "db", req.name, "operation", op.id, "chain", res.ChainDir, "documents", docs, "encrypted", res.Encrypted, "tasks", n, "disabled_tasks", disabled)
	out := &restoreResult{
		Message:             fmt.Sprintf("Restored %s from %s (%d documents).", req.name, res.ChainDir, docs),
		DatabaseName:        req.name,
		BackupDirectory:     res.ChainDir,
		Files:               res.Files,
		IsEncrypted:         res.Encrypted,
		KeyFingerprint:      res.KeyFingerprint,
		CountOfDocuments:    docs,
		MagpieBackupTasks:   n,
		MagpieDisabledTasks: disabled,
		MagpiePassedOver:    t.PassedOver,
	}
	for _, p := range t.PassedOver {
		out.Message += fmt.Sprintf(" Passed over the newer chain %s: it has no %s.", p, backup.ManifestName)
	}
	if err != nil {
		out.Message += fmt.Sprintf(" Its backup tasks could not be loaded: %v.", strings.TrimSuffix(err.Error(), "."))
	}
	return out, nil
}

// restoredTasks brings a restored database's backup tasks under the
// server: disabled first when the request says DisableOngoingTasks, then
// loaded (with no status: a restored database is a new database) and
// scheduled. It returns how many tasks there are and how many it disabled.
func (s *Server) restoredTasks(req *restoreRequest) (n, disabled int, err error) {
	db, err := s.openDB(req.name)
	if err != nil {
		return 0, 0, err
	}
	if req.disableTasks {
		if disabled, err = tasks.DisableAll(db); err != nil {
			return 0, 0, err
		}
	}
	ts := s.extras().tasks
	ts.mu.Lock()
	t, err := ts.reloadLocked(db)
	if err == nil {
		n = len(t.list)
	}
	ts.mu.Unlock()
	s.extras().sched.poke()
	return n, disabled, err
}

// testHookRestored, when set by a test, runs in a restore operation just
// after the restore itself.
var testHookRestored func(ctx context.Context)

// wrappedFault is an error of restore whose text was reworded for the API;
// errors.Is still sees the original.
type wrappedFault struct {
	msg string
	err error
}

func (e *wrappedFault) Error() string { return e.msg }
func (e *wrappedFault) Unwrap() error { return e.err }

// apiWording rewords the CLI hints in backup and restore errors for API
// callers.
var apiReplacer = strings.NewReplacer(
	"with --key-file FILE", "in EncryptionKey or BackupEncryptionSettings.Key",
	"with --key-file", "in EncryptionKey or BackupEncryptionSettings.Key",
	"with --identity FILE", "in MagpieIdentity",
	"--new-key-file", "EncryptionKey",
	"--recipient number ", "MagpieRecipients entry ",
	"Use --encryption key --key-file FILE or --encryption recipients --recipient KEY", "Use UseProvidedKey with a Key, or MagpieRecipients",
)

func apiWording(s string) string { return apiReplacer.Replace(s) }

// checkRestoreKeys makes sure the request carries what the chain needs, in
// the API's terms, before anything is created (restore checks again).
func checkRestoreKeys(t *restore.Target, req *restoreRequest) error {
	m := t.Manifest
	switch m.Encryption {
	case backup.ModeKey, backup.ModeDatabase:
		what := "its key (BackupEncryptionSettings.Key)"
		if m.Encryption == backup.ModeDatabase {
			what = "the database's secret key (EncryptionKey, which the restored database then keeps, or BackupEncryptionSettings.Key)"
		}
		if req.dec.Key == nil {
			return faultf("the backup in %s is encrypted and no key was given. Give %s", t.ChainDir, what)
		}
		if req.dec.Key.Fingerprint() != m.KeyFingerprint {
			return faultf("the key given in %s (fingerprint %s) is not the key of the backup in %s (fingerprint %s). Give %s", req.keyFrom, req.dec.Key.Fingerprint(), t.ChainDir, m.KeyFingerprint, what)
		}
	case backup.ModeRecipients:
		if len(req.dec.Identities) == 0 {
			return faultf("the backup in %s is encrypted to age recipients and no identity was given. Give MagpieIdentity, the path of the matching age identity file on the server's machine", t.ChainDir)
		}
	}
	// A logical backup of an encrypted database that was not made with the
	// database's key would be restored with a new key nobody was shown.
	if m.SourceEncrypted && req.newKey == nil && m.Encryption != backup.ModeDatabase {
		return faultf("the backup in %s comes from encrypted database %s, so the restored database is encrypted too. Give its secret key in EncryptionKey (GET /admin/secrets/generate makes one)", t.ChainDir, m.Database)
	}
	return nil
}

// ---------------------------------------------------------------------
// Restore points.

// restorePoint is RavenDB's RestorePoint: one file a restore can stop at.
type restorePoint struct {
	DateTime          wireTime `json:"DateTime"`
	Location          string   `json:"Location"`
	FileName          string   `json:"FileName"`
	IsSnapshotRestore bool     `json:"IsSnapshotRestore"`
	IsIncremental     bool     `json:"IsIncremental"`
	FilesToRestore    int      `json:"FilesToRestore"`
	DatabaseName      string   `json:"DatabaseName"`
	IsEncrypted       bool     `json:"IsEncrypted"`
	// MagpieEncryption is the chain's mode: none, database, key or
	// recipients.
	MagpieEncryption backup.Mode `json:"MagpieEncryption"`
}

// POST /admin/restore/points?type=Local  body: {"FolderPath": "..."}
// (a folder on the server's machine or, magpie's extension, a URL), or
// ?type=S3|Azure|GoogleCloud with that type's settings as the body.
func (s *Server) handleRestorePoints(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	raw, ok := readConfig(w, r)
	if !ok {
		return
	}
	var loc string
	switch typ := r.URL.Query().Get("type"); strings.ToLower(typ) {
	case "", "local":
		var body struct {
			FolderPath string `json:"FolderPath"`
		}
		json.Unmarshal(raw, &body)
		if strings.TrimSpace(body.FolderPath) == "" || (!filepath.IsAbs(body.FolderPath) && !destination.IsURL(body.FolderPath)) {
			badRequest(w, errors.New("FolderPath must be the absolute path of a backup folder on the server's machine, or an s3://, azblob:// or gs:// URL"))
			return
		}
		l, err := tasks.CheckLocation(body.FolderPath)
		if err != nil {
			badRequest(w, fmt.Errorf("FolderPath: %w", err))
			return
		}
		loc = l
	default:
		l, err := tasks.SettingsLocation(typ, raw, "")
		if err != nil {
			badRequest(w, err)
			return
		}
		loc = l
	}
	// As magpie backup ls reads a location: a folder of chains, a chain
	// folder or a file in one; a folder that does not exist is an error.
	folder, chains, err := restore.Chains(r.Context(), loc)
	if err != nil {
		badRequest(w, errors.New(apiWording(err.Error())))
		return
	}
	defer folder.Close()
	list := []restorePoint{}
	type skipped struct {
		Location string `json:"Location"`
		Problem  string `json:"Problem"`
	}
	skips := []skipped{}
	// MagpieChains are the chains as magpie backup ls shows them.
	type chainInfo struct {
		Name     string           `json:"Name"`
		Dir      string           `json:"Dir"`
		Complete bool             `json:"Complete"`
		Problem  string           `json:"Problem,omitempty"`
		Manifest *backup.Manifest `json:"Manifest"`
		Stray    []string         `json:"Stray,omitempty"`
		Damaged  string           `json:"Damaged,omitempty"`
		// Interrupted: the chain's first backup never finished.
		Interrupted bool `json:"Interrupted,omitempty"`
	}
	infos := []chainInfo{}
	for _, c := range chains {
		infos = append(infos, chainInfo{c.Name, c.Location(), c.Complete(), c.Problem, c.Manifest, c.Stray, c.Damaged, c.Interrupted})
		if !c.Complete() {
			skips = append(skips, skipped{c.Location(), c.Problem})
			continue
		}
		m := c.Manifest
		for i, f := range m.Files {
			list = append(list, restorePoint{
				DateTime:          wireTime(f.Created),
				Location:          c.Location(),
				FileName:          f.Name,
				IsSnapshotRestore: f.Kind == backup.KindSnapshot,
				IsIncremental:     f.Kind == backup.KindIncremental,
				FilesToRestore:    i + 1,
				DatabaseName:      m.Database,
				IsEncrypted:       m.Encryption != backup.ModeNone,
				MagpieEncryption:  m.Encryption,
			})
		}
	}
	// Newest first, as RavenDB lists them.
	sort.SliceStable(list, func(i, j int) bool { return time.Time(list[i].DateTime).After(time.Time(list[j].DateTime)) })
	writeJSON(w, http.StatusOK, map[string]any{"List": list, "MagpieSkipped": skips, "MagpieChains": infos})
}
