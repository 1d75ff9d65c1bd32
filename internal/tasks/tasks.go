// Package tasks is magpie's backup tasks: RavenDB's
// PeriodicBackupConfiguration, checked, kept in the database record, and
// turned into what one run of the task needs.
//
// A task's configuration belongs to the database, not to the server that
// runs it: it is stored as the database's setting "PeriodicBackups" (see
// store.DB.Setting), a JSON array in RavenDB's shape. So it survives
// restarts, is encrypted at rest with an encrypted database, is copied by
// snapshots, and is carried by logical backups in their DatabaseRecord
// (internal/dump). What a task did (its status, the time of its last run)
// is run state and stays with the server.
//
// Nothing secret is ever stored: storage credentials come from the
// environment of the process that runs the backup (AWS_ACCESS_KEY_ID,
// AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...), and a task's
// encryption key is either kept in memory by the server that was given it
// or read at each run from a key file on the server's machine
// (MagpieKeyFile). A request that carries a credential is refused.
//
// The usual calls:
//
//	list, err := tasks.Load(db)                 // the database's tasks
//	c, key, err := tasks.Parse(body)            // a PeriodicBackupConfiguration request
//	plan, err := c.Plan(db, key)                // destinations, encryption, retention of a run
//	at, full, ok := c.Next(history, time.Now()) // when it runs next
package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// LocalSettings is RavenDB's LocalSettings: a folder on the machine that
// runs the backup.
type LocalSettings struct {
	Disabled   bool   `json:"Disabled"`
	FolderPath string `json:"FolderPath"`
}

// S3Settings is RavenDB's S3Settings without its credentials.
type S3Settings struct {
	Disabled         bool   `json:"Disabled"`
	BucketName       string `json:"BucketName"`
	RemoteFolderName string `json:"RemoteFolderName"`
	AwsRegionName    string `json:"AwsRegionName"`
	CustomServerURL  string `json:"CustomServerUrl"`
	ForcePathStyle   bool   `json:"ForcePathStyle"`
}

// AzureSettings is RavenDB's AzureSettings without its credentials.
type AzureSettings struct {
	Disabled         bool   `json:"Disabled"`
	StorageContainer string `json:"StorageContainer"`
	RemoteFolderName string `json:"RemoteFolderName"`
	AccountName      string `json:"AccountName"`
}

// GoogleCloudSettings is RavenDB's GoogleCloudSettings without its
// credentials.
type GoogleCloudSettings struct {
	Disabled         bool   `json:"Disabled"`
	BucketName       string `json:"BucketName"`
	RemoteFolderName string `json:"RemoteFolderName"`
}

// RetentionPolicy is RavenDB's RetentionPolicy. MinimumBackupAgeToKeep is
// a .NET TimeSpan ("d.hh:mm:ss", "hh:mm:ss") or, as magpie's extension, a
// Go duration ("720h").
type RetentionPolicy struct {
	Disabled               bool    `json:"Disabled"`
	MinimumBackupAgeToKeep *string `json:"MinimumBackupAgeToKeep"`
}

// EncryptionSettings is RavenDB's BackupEncryptionSettings as stored: never
// with its Key.
type EncryptionSettings struct {
	// EncryptionMode is None, UseDatabaseKey, UseProvidedKey or
	// MagpieRecipients; empty picks the default (UseDatabaseKey for an
	// encrypted database, None otherwise, or what a key or recipients
	// imply).
	EncryptionMode string `json:"EncryptionMode"`
	// MagpieRecipients are age or SSH public keys (or files of them on
	// the server's machine): the server writes backups it cannot read.
	MagpieRecipients []string `json:"MagpieRecipients,omitempty"`
	// MagpieKeyFile is the path, on the machine that runs the backup, of
	// the key file (base64 of 32 bytes, mode 0600) of UseProvidedKey. It
	// is read at every run, so the key is never stored in the record.
	MagpieKeyFile string `json:"MagpieKeyFile,omitempty"`
	// MagpieKeyFingerprint names the key of UseProvidedKey given directly
	// in a request, which the server keeps in memory only.
	MagpieKeyFingerprint string `json:"MagpieKeyFingerprint,omitempty"`
}

// Config is one backup task as the database record keeps it: RavenDB's
// PeriodicBackupConfiguration (the fields magpie uses) plus magpie's
// extension fields, whose names start with Magpie.
type Config struct {
	TaskID   int64  `json:"TaskId"`
	Name     string `json:"Name"`
	Disabled bool   `json:"Disabled"`
	// BackupType is Backup (logical) or Snapshot.
	BackupType                 string               `json:"BackupType"`
	FullBackupFrequency        string               `json:"FullBackupFrequency"`
	IncrementalBackupFrequency string               `json:"IncrementalBackupFrequency"`
	LocalSettings              *LocalSettings       `json:"LocalSettings"`
	S3Settings                 *S3Settings          `json:"S3Settings"`
	AzureSettings              *AzureSettings       `json:"AzureSettings"`
	GoogleCloudSettings        *GoogleCloudSettings `json:"GoogleCloudSettings"`
	RetentionPolicy            *RetentionPolicy     `json:"RetentionPolicy"`
	BackupEncryptionSettings   *EncryptionSettings  `json:"BackupEncryptionSettings"`
	// MagpieDestinations are more destinations: local folders (absolute
	// paths) or s3://, azblob://, gs:// URLs (docs/DESTINATIONS.md). Every
	// destination of a task receives the same bytes.
	MagpieDestinations []string `json:"MagpieDestinations,omitempty"`
	// MagpieKeepNewest keeps that many newest chains in each destination
	// (retention by count, beside RavenDB's retention by age); 0 leaves
	// count out.
	MagpieKeepNewest int `json:"MagpieKeepNewest,omitempty"`
	// MagpieCompression is zstd (the default, which RavenDB 6+ reads) or
	// gzip (for RavenDB 4.x and 5.x) for logical backups.
	MagpieCompression string `json:"MagpieCompression,omitempty"`
	// CreatedAt is when the task was created (yyyy-MM-ddTHH:mm:ss.fffffffZ).
	CreatedAt string `json:"CreatedAt,omitempty"`
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	b, _ := json.Marshal(c)
	var out Config
	json.Unmarshal(b, &out)
	return &out
}

// Type names the task's type as RavenDB does: Backup or Snapshot.
func (c *Config) Type() string {
	if strings.EqualFold(c.BackupType, "Snapshot") {
		return "Snapshot"
	}
	return "Backup"
}

// Load returns db's backup tasks in TaskId order.
func Load(db *store.DB) ([]*Config, error) {
	raw, err := db.Setting(dump.PeriodicBackups)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, nil
	}
	var list []*Config
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("the backup tasks in the record of database %s are damaged (%v). Restore the database from a backup, or delete its tasks and create them again", db.Name(), err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].TaskID < list[j].TaskID })
	return list, nil
}

// Save replaces db's backup tasks. An empty list is stored as [] rather
// than removed, so that the backups made from now on say the database has
// no task (a restore then drops the tasks an earlier file carried).
func Save(db *store.DB, list []*Config) error {
	if list == nil {
		list = []*Config{}
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return db.SetSetting(dump.PeriodicBackups, raw)
}

// Find returns the task with id, or nil.
func Find(list []*Config, id int64) *Config {
	for _, c := range list {
		if c.TaskID == id {
			return c
		}
	}
	return nil
}

// Put adds c to db's tasks (TaskId 0: a new task, which gets the next id)
// or replaces the task with c's TaskId, after checking c against db (Plan,
// with key the key of UseProvidedKey given with it) and that its name is
// unique. It returns the task as stored, with its encryption mode spelled
// out: what the default meant when the task was made stays what it means.
func Put(db *store.DB, c *Config, key *keys.Key, now time.Time) (*Config, error) {
	list, err := Load(db)
	if err != nil {
		return nil, err
	}
	if c.TaskID < 0 {
		return nil, fmt.Errorf("TaskId %d is not valid. Give 0 (or leave it out) for a new task, or the id of the task to update", c.TaskID)
	}
	var old *Config
	if c.TaskID != 0 {
		if old = Find(list, c.TaskID); old == nil {
			return nil, fmt.Errorf("backup task %d does not exist in database %s. Give TaskId 0 to create a task", c.TaskID, db.Name())
		}
	}
	mode := backup.ModeKey
	plan, err := c.Plan(db, key)
	var notHeld *KeyNotHeldError
	switch {
	case errors.As(err, &notHeld) && old != nil && sameKey(old, c):
		// An update that keeps a key the server no longer holds: the
		// task is saved, and its runs fail, saying so, until the key
		// is given again.
	case err != nil:
		return nil, err
	default:
		mode = plan.Encryption
	}
	c = c.Clone()
	if c.BackupEncryptionSettings == nil {
		c.BackupEncryptionSettings = &EncryptionSettings{}
	}
	c.BackupEncryptionSettings.EncryptionMode = RavenMode(mode)
	c.BackupType = c.Type()
	c.Name = strings.TrimSpace(c.Name)
	for _, other := range list {
		if c.Name != "" && other != old && strings.EqualFold(other.Name, c.Name) {
			return nil, fmt.Errorf("database %s already has a backup task named %q (task %d). Choose another name, or update that task (TaskId %d)", db.Name(), other.Name, other.TaskID, other.TaskID)
		}
	}
	if old == nil {
		last, err := lastID(db)
		if err != nil {
			return nil, err
		}
		c.TaskID = max(last, maxID(list)) + 1
		// The id is spent before the task is stored: a crash between
		// the two writes leaves a gap, never an id used twice.
		if err := db.SetSetting(lastIDSetting, []byte(strconv.FormatInt(c.TaskID, 10))); err != nil {
			return nil, err
		}
		c.CreatedAt = now.UTC().Format(store.TimeLayout)
		if c.Name == "" {
			c.Name = fmt.Sprintf("Backup #%d", c.TaskID)
		}
		list = append(list, c)
	} else {
		if c.Name == "" {
			c.Name = old.Name
		}
		c.CreatedAt = old.CreatedAt
		for i := range list {
			if list[i] == old {
				list[i] = c
			}
		}
	}
	if err := Save(db, list); err != nil {
		return nil, err
	}
	return c, nil
}

// sameKey reports whether cur keeps old's UseProvidedKey key, known by its
// fingerprint only.
func sameKey(old, cur *Config) bool {
	oe, ce := old.BackupEncryptionSettings, cur.BackupEncryptionSettings
	return oe != nil && ce != nil && oe.MagpieKeyFingerprint != "" && oe.MagpieKeyFingerprint == ce.MagpieKeyFingerprint &&
		oe.MagpieKeyFile == "" && ce.MagpieKeyFile == ""
}

// lastIDSetting is the store setting that keeps the highest task id ever
// given in a database, so that a deleted task's id never comes back for a
// new task (as in RavenDB, where a script may hold on to an id). It is
// not part of the database record: a restored database goes on from the
// highest id among its tasks.
const lastIDSetting = "MagpieLastBackupTaskId"

func lastID(db *store.DB) (int64, error) {
	raw, err := db.Setting(lastIDSetting)
	if err != nil || raw == nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the last backup task id of database %s is damaged (%q)", db.Name(), raw)
	}
	return n, nil
}

// maxID is the highest id in list (0 for none); ids start at 1, as
// RavenDB's clients expect.
func maxID(list []*Config) int64 {
	var m int64
	for _, c := range list {
		m = max(m, c.TaskID)
	}
	return m
}

// Delete removes task id from db's tasks and returns it (nil when there is
// no such task).
func Delete(db *store.DB, id int64) (*Config, error) {
	list, err := Load(db)
	if err != nil {
		return nil, err
	}
	c := Find(list, id)
	if c == nil {
		return nil, nil
	}
	kept := make([]*Config, 0, len(list))
	for _, o := range list {
		if o != c {
			kept = append(kept, o)
		}
	}
	return c, Save(db, kept)
}

// DisableAll disables every task of db (a restore with
// DisableOngoingTasks) and returns how many were enabled.
func DisableAll(db *store.DB) (int, error) {
	list, err := Load(db)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	n := 0
	for _, c := range list {
		if !c.Disabled {
			c.Disabled = true
			n++
		}
	}
	return n, Save(db, list)
}
