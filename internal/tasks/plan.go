package tasks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

// RavenDB's encryption modes, and magpie's for age recipients.
const (
	ModeNone       = "None"
	ModeDatabase   = "UseDatabaseKey"
	ModeKey        = "UseProvidedKey"
	ModeRecipients = "MagpieRecipients"
)

var ravenModes = map[string]backup.Mode{
	"none": backup.ModeNone, "usedatabasekey": backup.ModeDatabase,
	"useprovidedkey": backup.ModeKey, "magpierecipients": backup.ModeRecipients,
}

// RavenMode names a backup mode as RavenDB's BackupEncryptionSettings
// does.
func RavenMode(m backup.Mode) string {
	switch m {
	case backup.ModeNone:
		return ModeNone
	case backup.ModeDatabase:
		return ModeDatabase
	case backup.ModeKey:
		return ModeKey
	case backup.ModeRecipients:
		return ModeRecipients
	}
	return string(m)
}

// ParseRavenMode reads a BackupEncryptionSettings.EncryptionMode ("" is
// the default, returned as "").
func ParseRavenMode(s string) (backup.Mode, bool) {
	if s == "" {
		return "", true
	}
	m, ok := ravenModes[strings.ToLower(s)]
	return m, ok
}

// KeyNotHeldError says that a task's UseProvidedKey key, which a server
// keeps in memory only, is not held: the server restarted since it was
// given, or the database came back from a backup. The task cannot run
// until the key is given again.
type KeyNotHeldError struct {
	TaskID      int64
	Fingerprint string
}

func (e *KeyNotHeldError) Error() string {
	return fmt.Sprintf("the key of backup task %d (fingerprint %s) is kept in the server's memory only, and this server does not hold it (it restarted since the key was given, or the database was restored). Give it again with UpdatePeriodicBackupOperation (BackupEncryptionSettings.Key), or give the task a MagpieKeyFile on the server's machine", e.TaskID, e.Fingerprint)
}

// Plan is what one run of a task (or a one-time backup) needs.
type Plan struct {
	To          []string
	Type        backup.Type
	Encryption  backup.Mode
	Request     backup.Request
	Compression smuggler.Compression
	Retention   backup.Retention
}

// Options are the backup options of a run.
func (p *Plan) Options(ctx context.Context, incremental bool) backup.Options {
	return backup.Options{
		To:          append([]string(nil), p.To...),
		Type:        p.Type,
		Encryption:  p.Request,
		Compression: p.Compression,
		Incremental: incremental,
		Context:     ctx,
	}
}

// Plan checks the task against db and the rules of DESIGN.md section 1 and
// resolves what a run needs, so that a task that cannot run is refused
// before anything is stored or written. key is the key of UseProvidedKey
// given with the request (or kept in memory since); a task with a
// MagpieKeyFile reads its key from that file.
//
// Errors name the API's fields; those that come from package backup name
// the CLI's flags (the server rewords them).
func (c *Config) Plan(db *store.DB, key *keys.Key) (*Plan, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	p := &Plan{Type: backup.Logical, Compression: smuggler.Zstd}
	if c.Type() == "Snapshot" {
		p.Type = backup.Snapshot
	}
	if strings.EqualFold(c.MagpieCompression, "gzip") {
		p.Compression = smuggler.Gzip
	}
	p.To, _ = c.Destinations()
	p.Retention, _ = c.Retention()

	es := c.BackupEncryptionSettings
	if es == nil {
		es = &EncryptionSettings{}
	}
	_, encrypted := db.SecretKey()
	mode, err := c.encryptionMode(es, key, p.Type, db.Name(), encrypted)
	if err != nil {
		return nil, err
	}
	p.Encryption = mode
	p.Request = backup.Request{Mode: string(mode), Recipients: es.MagpieRecipients}
	if mode == backup.ModeKey {
		switch {
		case es.MagpieKeyFile != "":
			p.Request.KeyFile = es.MagpieKeyFile
		case key != nil:
			if es.MagpieKeyFingerprint != "" && key.Fingerprint() != es.MagpieKeyFingerprint {
				return nil, fmt.Errorf("the key given (fingerprint %s) is not the key of backup task %d (fingerprint %s). Give the task's key, or update the task with the new one", key.Fingerprint(), c.TaskID, es.MagpieKeyFingerprint)
			}
			k := *key
			p.Request.Key = &k
		default:
			return nil, &KeyNotHeldError{TaskID: c.TaskID, Fingerprint: es.MagpieKeyFingerprint}
		}
	}
	// The last word is backup's own check (it reads key and recipient
	// files, too).
	dbKey, _ := db.SecretKey()
	if _, err := backup.Resolve(p.Request, p.Type, db.Name(), dbKey, encrypted); err != nil {
		if es.MagpieKeyFile != "" {
			return nil, fmt.Errorf("BackupEncryptionSettings.MagpieKeyFile: %w", err)
		}
		return nil, err
	}
	return p, nil
}

// encryptionMode reads BackupEncryptionSettings. With no mode, a key means
// UseProvidedKey, recipients mean MagpieRecipients, and otherwise an
// encrypted database uses its own key and an unencrypted one none.
func (c *Config) encryptionMode(es *EncryptionSettings, key *keys.Key, typ backup.Type, dbName string, encrypted bool) (backup.Mode, error) {
	keyField := ""
	switch {
	case es.MagpieKeyFile != "" && !filepath.IsAbs(es.MagpieKeyFile):
		return "", fmt.Errorf("BackupEncryptionSettings.MagpieKeyFile %q is not an absolute path. Give the full path of the key file on the server's machine", es.MagpieKeyFile)
	case es.MagpieKeyFile != "" && key != nil:
		return "", errors.New("BackupEncryptionSettings.Key and BackupEncryptionSettings.MagpieKeyFile were both given. Give one of them")
	case es.MagpieKeyFile != "":
		keyField = "BackupEncryptionSettings.MagpieKeyFile"
	case key != nil || es.MagpieKeyFingerprint != "":
		keyField = "BackupEncryptionSettings.Key"
	}
	hasKey := keyField != ""
	var mode backup.Mode
	m, known := ParseRavenMode(es.EncryptionMode)
	switch {
	case !known:
		return "", fmt.Errorf("BackupEncryptionSettings.EncryptionMode %q is not known. Use None, UseDatabaseKey, UseProvidedKey or MagpieRecipients", es.EncryptionMode)
	case m != "":
		mode = m
	case hasKey:
		mode = backup.ModeKey
	case len(es.MagpieRecipients) > 0:
		mode = backup.ModeRecipients
	case encrypted:
		mode = backup.ModeDatabase
	default:
		mode = backup.ModeNone
	}
	rm := RavenMode(mode)
	switch {
	case typ == backup.Snapshot && encrypted && mode != backup.ModeDatabase:
		return "", fmt.Errorf("a snapshot of encrypted database %s is a copy of its encrypted files, so it can only use EncryptionMode UseDatabaseKey, not %s. Leave out BackupEncryptionSettings, or make a logical backup (BackupType Backup)", dbName, rm)
	case mode == backup.ModeDatabase && !encrypted:
		return "", fmt.Errorf("EncryptionMode UseDatabaseKey needs an encrypted database, and %s is not encrypted. Use UseProvidedKey with a Key, MagpieRecipients, or None", dbName)
	case hasKey && mode != backup.ModeKey:
		return "", fmt.Errorf("%s was given but EncryptionMode %s takes no key. Use UseProvidedKey, or leave out the key", keyField, rm)
	case !hasKey && mode == backup.ModeKey:
		return "", errors.New("EncryptionMode UseProvidedKey needs BackupEncryptionSettings.Key: the base64 text of 32 random bytes (GET /admin/secrets/generate makes one), or MagpieKeyFile, the path of a key file on the server's machine")
	case len(es.MagpieRecipients) > 0 && mode != backup.ModeRecipients:
		return "", fmt.Errorf("BackupEncryptionSettings.MagpieRecipients was given but EncryptionMode %s takes no recipients. Use MagpieRecipients, or leave them out", rm)
	case len(es.MagpieRecipients) == 0 && mode == backup.ModeRecipients:
		return "", errors.New("EncryptionMode MagpieRecipients needs BackupEncryptionSettings.MagpieRecipients: age public keys (age1...) or SSH public keys")
	}
	return mode, nil
}
