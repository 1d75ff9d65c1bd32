package store

import (
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Settings are the parts of the database record that belong to the
// database itself rather than to the server it runs on: configuration that
// must survive restarts and travel with the database into its snapshots
// (which copy the store) and, through the export's DatabaseRecord, its
// logical backups. Backup task configurations are one (package tasks).
//
// They live in the store, not in record.json, so that they are encrypted
// at rest with the database's data keys like documents are. A setting is a
// JSON value named like the DatabaseRecord field it stands for; the store
// does not interpret it. Key material never belongs in a setting.

// maxSettingBytes bounds one setting: they are small configuration values,
// read whole.
const maxSettingBytes = 1 << 20

// Setting returns the value of setting name, or nil when it is not set.
func (db *DB) Setting(name string) ([]byte, error) {
	if err := checkSettingName(name); err != nil {
		return nil, err
	}
	return db.getMeta(settingKey(name))
}

// SetSetting stores value (a JSON value) as setting name, durably; nil
// removes the setting. It waits for a running import, which could
// otherwise roll the change back with itself.
func (db *DB) SetSetting(name string, value []byte) error {
	if err := checkSetting(name, value); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if value == nil {
		return db.pdb.Delete(settingKey(name), pebble.Sync)
	}
	return db.pdb.Set(settingKey(name), value, pebble.Sync)
}

// Setting stores setting name as part of the import: it lands with the
// import's data or not at all. nil removes it.
func (bk *Bulk) Setting(name string, value []byte) error {
	if err := checkSetting(name, value); err != nil {
		return err
	}
	if value == nil {
		return bk.b.Delete(settingKey(name), nil)
	}
	return bk.b.Set(settingKey(name), append([]byte(nil), value...), nil)
}

func checkSettingName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("setting name %q is empty or too long", name)
	}
	return nil
}

func checkSetting(name string, value []byte) error {
	if err := checkSettingName(name); err != nil {
		return err
	}
	if value == nil {
		return nil
	}
	if len(value) > maxSettingBytes {
		return errorf(ErrInvalidInput, "Keep database settings small", "setting %s is %d bytes, more than the %d a setting may hold", name, len(value), maxSettingBytes)
	}
	if !json.Valid(value) {
		return errorf(ErrInvalidInput, "Give a JSON value", "setting %s is not valid JSON", name)
	}
	return nil
}
