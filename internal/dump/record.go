package dump

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/magpiedb/magpie/internal/store"
)

// PeriodicBackups is the DatabaseRecord field, and the store setting of
// the same name, that holds a database's backup task configurations: a
// JSON array of RavenDB PeriodicBackupConfiguration objects (package tasks
// reads and writes it).
const PeriodicBackups = "PeriodicBackups"

// RecordSettings are the DatabaseRecord fields a database keeps as store
// settings, and so carries in its exports and backups.
var RecordSettings = []string{PeriodicBackups}

// record returns the DatabaseRecord object of db's export, or nil when db
// has no setting to put in it. DatabaseName and Encrypted are what
// RavenDB's readers expect at its top.
func record(db *store.DB) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	for _, name := range RecordSettings {
		v, err := db.Setting(name)
		if err != nil {
			return nil, err
		}
		if v != nil {
			fields[name] = v
		}
	}
	if len(fields) == 0 {
		return nil, nil
	}
	name, _ := json.Marshal(db.Name())
	enc, _ := json.Marshal(db.Encrypted())
	fields["DatabaseName"], fields["Encrypted"] = name, enc
	return json.Marshal(fields)
}

// recordImporter is an importer that keeps the DatabaseRecord.
type recordImporter struct{ *importer }

func (h *recordImporter) DatabaseRecord(rec []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(rec, &fields); err != nil {
		return fmt.Errorf("the export's DatabaseRecord is not a JSON object: %v", err)
	}
	for _, name := range RecordSettings {
		v, ok := fields[name]
		if !ok || string(v) == "null" {
			if err := h.bulk.Setting(name, nil); err != nil {
				return err
			}
			continue
		}
		clean, err := scrubTasks(v)
		if err != nil {
			return fmt.Errorf("the export's DatabaseRecord.%s is damaged: %v", name, err)
		}
		if err := h.bulk.Setting(name, clean); err != nil {
			return err
		}
	}
	return nil
}

// credentialFields are the fields of RavenDB's backup settings that carry
// storage credentials or keys. magpie never writes them, but an export can
// come from elsewhere, and they must never be stored (DESIGN.md rule 7).
var credentialFields = map[string][]string{
	"S3Settings":               {"AwsAccessKey", "AwsSecretKey", "AwsSessionToken"},
	"GlacierSettings":          {"AwsAccessKey", "AwsSecretKey", "AwsSessionToken"},
	"AzureSettings":            {"AccountKey", "SasToken"},
	"GoogleCloudSettings":      {"GoogleCredentialsJson"},
	"FtpSettings":              {"Password", "CertificateAsBase64"},
	"BackupEncryptionSettings": {"Key"},
}

// scrubTasks removes credentialFields from a PeriodicBackups array.
func scrubTasks(raw json.RawMessage) ([]byte, error) {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	for _, task := range list {
		for field, secrets := range credentialFields {
			v, ok := task[field]
			if !ok || string(v) == "null" {
				continue
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(v, &obj); err != nil {
				return nil, fmt.Errorf("%s is not an object", field)
			}
			for _, s := range secrets {
				delete(obj, s)
			}
			b, err := json.Marshal(obj)
			if err != nil {
				return nil, err
			}
			task[field] = b
		}
	}
	if list == nil {
		list = []map[string]json.RawMessage{}
	}
	return json.Marshal(list)
}

// ConfigDigest is a digest of what a backup file carries besides the
// documents: the DatabaseRecord and the index definitions. An incremental
// compares it with the one its chain's last file recorded, so that a
// change to them alone (a backup task, an index) is backed up too.
func ConfigDigest(db *store.DB) (string, error) {
	h := sha256.New()
	part := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	rec, err := record(db)
	if err != nil {
		return "", err
	}
	part(rec)
	// Index definitions are visited whatever the etag; documents after
	// the last one are none (or a few written meanwhile, not looked at).
	if _, err := db.Walk(db.LastEtag(), store.Walker{Index: func(def []byte) error { part(def); return nil }}); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
