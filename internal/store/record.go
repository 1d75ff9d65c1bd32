package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/magpiedb/magpie/internal/atomicfile"
	"github.com/magpiedb/magpie/internal/encfs"
	"github.com/magpiedb/magpie/internal/keys"
)

const (
	recordName  = "record.json"
	keyRingName = "keys.json"

	// Additional data binds each sealed blob to its role, so a sealed data
	// key can never be passed off as a sealed secret key or the reverse.
	secretKeyAD = "magpie database secret key v1"
	dataKeyAD   = "magpie data key v1 id="
)

// record is the database record kept in record.json. It holds no document
// data; for an encrypted database its secret key is sealed with the master
// key, so the file is useless without the master key.
type record struct {
	Name           string    `json:"name"`
	Encrypted      bool      `json:"encrypted"`
	Created        time.Time `json:"created"`
	SealedKey      string    `json:"sealedSecretKey,omitempty"`
	KeyFingerprint string    `json:"keyFingerprint,omitempty"`
}

func (r *record) sealSecret(master, secret keys.Key) {
	r.SealedKey = base64.StdEncoding.EncodeToString(keys.Seal(master, secret[:], []byte(secretKeyAD)))
	r.KeyFingerprint = secret.Fingerprint()
}

func (r *record) openSecret(master keys.Key) (keys.Key, error) {
	sealed, err := base64.StdEncoding.DecodeString(r.SealedKey)
	if err != nil {
		return keys.Key{}, errorf(ErrDatabaseDamaged, "Restore the database from a backup", "the record of database %q is damaged (its sealed key is not base64)", r.Name)
	}
	plain, err := keys.Open(master, sealed, []byte(secretKeyAD))
	if err != nil || len(plain) != keys.Size {
		return keys.Key{}, errorf(ErrWrongMasterKey, "Open the data dir with the master key the database was created with",
			"the secret key of database %q cannot be unsealed with this master key", r.Name)
	}
	var k keys.Key
	copy(k[:], plain)
	return k, nil
}

func readRecord(dir string) (*record, error) {
	raw, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil {
		return nil, errorf(ErrDatabaseDamaged, "Restore the database from a backup, or delete it", "cannot read the record of the database in %s: %v", dir, err)
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil || r.Name == "" {
		return nil, errorf(ErrDatabaseDamaged, "Restore the database from a backup, or delete it", "the record of the database in %s is damaged", dir)
	}
	return &r, nil
}

func writeRecord(dir string, r *record) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(dir, recordName), append(raw, '\n'), 0o600)
}

// keyRing is the set of data keys that encrypt a database's files; the
// current one encrypts new files. On disk (keys.json) each data key is sealed
// with the database's secret key, so the secret key alone (the one the
// operator keeps) opens a copied or restored database.
type keyRing struct {
	secret keys.Key
	ring   encfs.Keyring
}

type keyRingFile struct {
	Current uint32            `json:"current"`
	Keys    map[string]string `json:"keys"`
}

func newKeyRing(secret keys.Key) (*keyRing, error) {
	k, err := keys.Generate()
	if err != nil {
		return nil, err
	}
	return &keyRing{secret: secret, ring: encfs.Keyring{Current: 1, Keys: map[uint32]keys.Key{1: k}}}, nil
}

// writeKeyRing seals r's data keys with r's secret key into dir/keys.json.
func writeKeyRing(dir string, r *keyRing) error {
	secret := r.secret
	f := keyRingFile{Current: r.ring.Current, Keys: map[string]string{}}
	for id, k := range r.ring.Keys {
		ad := []byte(dataKeyAD + strconv.FormatUint(uint64(id), 10))
		f.Keys[strconv.FormatUint(uint64(id), 10)] = base64.StdEncoding.EncodeToString(keys.Seal(secret, k[:], ad))
	}
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(dir, keyRingName), append(raw, '\n'), 0o600)
}

// ErrWrongDatabaseKey means the secret key given for a database does not
// open its data keys.
var ErrWrongDatabaseKey = errors.New("wrong database key")

func readKeyRing(dir string, secret keys.Key) (*keyRing, error) {
	raw, err := os.ReadFile(filepath.Join(dir, keyRingName))
	if err != nil {
		return nil, errorf(ErrDatabaseDamaged, "Restore the database from a backup", "cannot read the data keys of the database in %s: %v", dir, err)
	}
	var f keyRingFile
	if err := json.Unmarshal(raw, &f); err != nil || len(f.Keys) == 0 {
		return nil, errorf(ErrDatabaseDamaged, "Restore the database from a backup", "the data keys of the database in %s are damaged", dir)
	}
	ring := encfs.Keyring{Current: f.Current, Keys: map[uint32]keys.Key{}}
	for idText, sealedText := range f.Keys {
		id, err := strconv.ParseUint(idText, 10, 32)
		if err != nil {
			return nil, errorf(ErrDatabaseDamaged, "Restore the database from a backup", "the data keys of the database in %s are damaged", dir)
		}
		sealed, err := base64.StdEncoding.DecodeString(sealedText)
		if err != nil {
			return nil, errorf(ErrDatabaseDamaged, "Restore the database from a backup", "the data keys of the database in %s are damaged", dir)
		}
		plain, err := keys.Open(secret, sealed, []byte(dataKeyAD+idText))
		if err != nil || len(plain) != keys.Size {
			return nil, errorf(ErrWrongDatabaseKey, "Give the database's own secret key (the one printed when it was created)",
				"the key does not open this database's data keys")
		}
		var k keys.Key
		copy(k[:], plain)
		ring.Keys[uint32(id)] = k
	}
	if _, ok := ring.Keys[ring.Current]; !ok {
		return nil, fmt.Errorf("the data keys of the database in %s name current key %d, which is missing", dir, ring.Current)
	}
	return &keyRing{secret: secret, ring: ring}, nil
}
