package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// backupFix is a server over a temporary data dir, called in process.
type backupFix struct {
	t       *testing.T
	root    string
	data    *store.DataDir
	srv     *Server
	backups string
	cfg     Config
}

func newBackupFix(t *testing.T) *backupFix {
	t.Helper()
	root := t.TempDir()
	data, err := store.Open(store.Options{Dir: filepath.Join(root, "data"), MasterKeyFile: filepath.Join(root, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &backupFix{t: t, root: root, data: data, backups: filepath.Join(root, "backups"),
		cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	f.srv = New(f.cfg, data)
	t.Cleanup(func() {
		f.srv.CancelOperations()
		f.srv.Close()
		data.Close()
	})
	return f
}

// restart replaces the server with a new one over the same data dir, as
// a server restart does.
func (f *backupFix) restart() {
	f.srv.CancelOperations()
	if err := f.srv.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.srv = New(f.cfg, f.data)
}

// call sends a request; body is JSON-encoded unless it is nil or []byte.
func (f *backupFix) call(method, target string, body any) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	r := httptest.NewRequest(method, target, rd)
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	if w.Code == http.StatusNoContent {
		return w.Code, nil
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		f.t.Fatalf("%s %s: answer %d is not JSON: %q", method, target, w.Code, w.Body.String())
	}
	if w.Header().Get("ETag") != "" {
		f.t.Fatalf("%s %s: answered an ETag", method, target)
	}
	return w.Code, out
}

// mustCall is call expecting status want.
func (f *backupFix) mustCall(want int, method, target string, body any) map[string]any {
	f.t.Helper()
	code, out := f.call(method, target, body)
	if code != want {
		f.t.Fatalf("%s %s: status %d, want %d: %v", method, target, code, want, out)
	}
	return out
}

// wait polls an operation's state, as the clients do, until it ends.
func (f *backupFix) wait(stateURL string, id any) map[string]any {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := f.mustCall(200, "GET", fmt.Sprintf("%s?id=%v&nodeTag=A", stateURL, id), nil)
		if st["Status"] != "InProgress" {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("operation %v still in progress", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// createDB creates a database with three documents, an attachment of
// random bytes and a tombstone. key nil makes it unencrypted.
func (f *backupFix) createDB(name string, key *keys.Key) {
	f.t.Helper()
	if _, err := f.data.CreateDatabase(name, store.CreateOptions{Encrypted: key != nil, Key: key}); err != nil {
		f.t.Fatal(err)
	}
	db, err := f.srv.openDB(name)
	if err != nil {
		f.t.Fatal(err)
	}
	for id, body := range map[string]string{
		"users/1":  `{"name":"Ada","@metadata":{"@collection":"Users"}}`,
		"users/2":  `{"name":"Grace","@metadata":{"@collection":"Users"}}`,
		"orders/1": `{"note":"tab\there \u0007","@metadata":{"@collection":"Orders"}}`,
		"temp/1":   `{"@metadata":{"@collection":"Temps"}}`,
	} {
		if _, err := db.Put(id, []byte(body)); err != nil {
			f.t.Fatal(err)
		}
	}
	blob := make([]byte, 4096)
	rand.Read(blob)
	if _, err := db.PutAttachment("users/1", "photo.bin", "application/octet-stream", bytes.NewReader(blob)); err != nil {
		f.t.Fatal(err)
	}
	if err := db.Delete("temp/1"); err != nil {
		f.t.Fatal(err)
	}
}

// docs returns a database's documents by id (their bodies without the
// metadata that differs between copies).
func (f *backupFix) docs(name string) map[string]string {
	f.t.Helper()
	db, err := f.srv.openDB(name)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, id := range []string{"users/1", "users/2", "orders/1", "temp/1"} {
		d, err := db.Get(id)
		if err != nil {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(d.Body, &v); err != nil {
			f.t.Fatal(err)
		}
		meta := v["@metadata"].(map[string]any)
		v["@metadata"] = map[string]any{"@collection": meta["@collection"], "@attachments": meta["@attachments"]}
		b, _ := json.Marshal(v)
		out[id] = string(b)
	}
	return out
}

// noLeftovers checks that a failed restore left nothing under the data
// dir's databases folder but the databases named.
func (f *backupFix) noLeftovers(want ...string) {
	f.t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.data.Path(), "databases"))
	if err != nil {
		f.t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		f.t.Fatalf("databases folder holds %v, want %v", got, want)
	}
}

var wireDate = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)

func faultOfState(t *testing.T, st map[string]any) (string, map[string]any) {
	t.Helper()
	if st["Status"] != "Faulted" {
		t.Fatalf("status %v, want Faulted: %v", st["Status"], st)
	}
	res, ok := st["Result"].(map[string]any)
	if !ok {
		t.Fatalf("a Faulted state without a Result: %v", st)
	}
	if res["Type"] == "" || res["Error"] == "" || res["Error"] != res["Message"] {
		t.Fatalf("fault result %v lacks Type, Error or Message", res)
	}
	return res["Error"].(string), res
}

func TestBackupAndRestoreRoutes(t *testing.T) {
	f := newBackupFix(t)
	key, _ := keys.Generate()
	f.createDB("src", &key)
	want := f.docs("src")
	if len(want) != 3 {
		t.Fatalf("source holds %d documents", len(want))
	}

	// One-time backup (C# BackupOperation): the database's own key.
	out := f.mustCall(200, "POST", "/databases/src/admin/backup", map[string]any{
		"BackupType": "Backup", "LocalSettings": map[string]any{"FolderPath": f.backups},
	})
	if out["OperationNodeTag"] != "A" {
		t.Fatalf("answer %v", out)
	}
	st := f.wait("/databases/src/operations/state", out["OperationId"])
	if st["Status"] != "Completed" {
		t.Fatalf("one-time backup: %v", st)
	}
	res := st["Result"].(map[string]any)
	oneTime := res["LocalBackup"].(map[string]any)["BackupDirectory"].(string)
	if res["MagpieEncryption"] != "database" || res["Documents"].(map[string]any)["ReadCount"] != 3.0 {
		t.Fatalf("result %v", res)
	}
	if m, err := backup.ReadLocalManifest(oneTime); err != nil || m.Encryption != backup.ModeDatabase {
		t.Fatalf("chain %s: %v %v", oneTime, m, err)
	}
	// The finished state stays readable, from the server-level route too.
	if again := f.wait("/operations/state", out["OperationId"]); again["Status"] != "Completed" {
		t.Fatalf("state read again: %v", again)
	}

	// A backup task, then StartBackupOperation and the status.
	out = f.mustCall(200, "POST", "/databases/src/admin/periodic-backup?raft-request-id=x", map[string]any{
		"Name": "nightly", "BackupType": "Backup", "FullBackupFrequency": "0 3 * * *",
		"LocalSettings":            map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseDatabaseKey", "Key": nil},
	})
	if out["TaskId"] != 1.0 || out["RaftCommandIndex"] == nil {
		t.Fatalf("first task: %v", out)
	}
	f.mustCall(400, "GET", "/periodic-backup/status?name=src&taskId=9", nil)
	status := f.mustCall(200, "GET", "/periodic-backup/status?name=src&taskId=1", nil)
	if status["Status"] != nil || status["IsSharded"] != false {
		t.Fatalf("status before any backup: %v", status)
	}
	out = f.mustCall(200, "POST", "/databases/src/admin/backup/database?isFullBackup=true&taskId=1", nil)
	if out["ResponsibleNode"] != "A" {
		t.Fatalf("start backup: %v", out)
	}
	opID := out["OperationId"]
	if st := f.wait("/databases/src/operations/state", opID); st["Status"] != "Completed" {
		t.Fatalf("task backup: %v", st)
	}
	status = f.mustCall(200, "GET", "/periodic-backup/status?name=src&taskId=1", nil)
	s := status["Status"].(map[string]any)
	local := s["LocalBackup"].(map[string]any)
	chain := local["BackupDirectory"].(string)
	for _, d := range []any{s["LastFullBackup"], s["LastFullBackupInternal"], local["LastFullBackup"]} {
		if ds, _ := d.(string); !wireDate.MatchString(ds) {
			t.Fatalf("date %v is not yyyy-MM-ddTHH:mm:ss.fffffffZ", d)
		}
	}
	if s["TaskId"] != 1.0 || s["BackupType"] != "Backup" || s["LastIncrementalBackup"] != nil || s["IsEncrypted"] != true ||
		s["LastOperationId"] != opID || s["LastEtag"] == nil || s["Error"] != nil || s["FolderName"] != filepath.Base(chain) ||
		!strings.HasPrefix(local["FileName"].(string), filepath.Base(chain)[:27]) {
		t.Fatalf("status %v", s)
	}
	if _, err := os.Stat(filepath.Join(chain, backup.ManifestName)); err != nil || chain == oneTime {
		t.Fatalf("chain %s: %v", chain, err)
	}
	// The second task gets id 2; a name is unique.
	out = f.mustCall(200, "POST", "/databases/src/admin/periodic-backup", map[string]any{
		"BackupType": "Snapshot", "LocalSettings": map[string]any{"FolderPath": f.backups},
	})
	if out["TaskId"] != 2.0 {
		t.Fatalf("second task: %v", out)
	}
	f.mustCall(400, "POST", "/databases/src/admin/periodic-backup", map[string]any{
		"Name": "Nightly", "LocalSettings": map[string]any{"FolderPath": f.backups},
	})

	// Restore with EncryptionKey: same documents, encrypted with that key.
	out = f.mustCall(200, "POST", "/admin/restore/database", map[string]any{
		"DatabaseName": "dst", "BackupLocation": chain, "EncryptionKey": key.Base64(), "Type": "Local", "DisableOngoingTasks": false,
	})
	if out["OperationNodeTag"] != "A" {
		t.Fatalf("restore answer %v", out)
	}
	st = f.wait("/operations/state", out["OperationId"])
	if st["Status"] != "Completed" {
		t.Fatalf("restore: %v", st)
	}
	if got := f.docs("dst"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored documents %v, want %v", got, want)
	}
	info, err := f.srv.lookupInfo("dst")
	if err != nil || !info.Encrypted || info.KeyFingerprint != key.Fingerprint() {
		t.Fatalf("restored database %+v, %v", info, err)
	}

	// A snapshot (task 2) restores too, with the database's key.
	out = f.mustCall(200, "POST", "/databases/src/admin/backup/database?isFullBackup=true&taskId=2", nil)
	f.wait("/databases/src/operations/state", out["OperationId"])
	snap := f.mustCall(200, "GET", "/periodic-backup/status?name=src&taskId=2", nil)["Status"].(map[string]any)
	snapChain := snap["LocalBackup"].(map[string]any)["BackupDirectory"].(string)
	if snap["BackupType"] != "Snapshot" || !strings.HasSuffix(snapChain, ".snapshot") {
		t.Fatalf("snapshot status %v", snap)
	}
	out = f.mustCall(200, "POST", "/admin/restore/database", map[string]any{
		"DatabaseName": "fromsnap", "BackupLocation": snapChain, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseDatabaseKey", "Key": key.Base64()},
	})
	if st := f.wait("/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("snapshot restore: %v", st)
	}
	if got := f.docs("fromsnap"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("snapshot restored documents %v", got)
	}

	// Restores that must fault, leaving no database behind.
	wrong, _ := keys.Generate()
	faults := []struct {
		name string
		body map[string]any
		err  string
	}{
		{"wrong key", map[string]any{"DatabaseName": "bad", "BackupLocation": chain, "EncryptionKey": wrong.Base64(), "Type": "Local"},
			"The key given in EncryptionKey (fingerprint " + wrong.Fingerprint() + ") is not the key of the backup in " + chain + " (fingerprint " + key.Fingerprint() + ")."},
		{"wrong decryption key", map[string]any{"DatabaseName": "bad", "BackupLocation": chain, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": wrong.Base64()}},
			"The key given in BackupEncryptionSettings.Key (fingerprint " + wrong.Fingerprint() + ") is not the key of the backup in " + chain},
		{"missing key", map[string]any{"DatabaseName": "bad", "BackupLocation": chain},
			"The backup in " + chain + " is encrypted and no key was given. Give the database's secret key (EncryptionKey"},
		{"existing name", map[string]any{"DatabaseName": "DST", "BackupLocation": chain, "EncryptionKey": key.Base64()},
			"Database DST already exists. Choose another DatabaseName, or delete it first."},
		{"unknown last file", map[string]any{"DatabaseName": "bad", "BackupLocation": f.backups, "LastFileNameToRestore": "2020-01-01-00-00-00-0000000.full-backup", "EncryptionKey": key.Base64()},
			"No backup file named 2020-01-01-00-00-00-0000000.full-backup is in " + f.backups + ", so there is no point in time to restore up to. Give a file name that `magpie backup ls " + f.backups + "` lists."},
		{"missing location", map[string]any{"DatabaseName": "bad", "BackupLocation": filepath.Join(f.root, "nowhere"), "EncryptionKey": key.Base64()},
			filepath.Join(f.root, "nowhere") + " does not exist."},
	}
	for _, c := range faults {
		t.Run(c.name, func(t *testing.T) {
			out := f.mustCall(200, "POST", "/admin/restore/database", c.body)
			msg, res := faultOfState(t, f.wait("/operations/state", out["OperationId"]))
			if !strings.HasPrefix(msg, c.err) || res["StatusCode"] != 400.0 {
				t.Fatalf("fault %q (status %v), want prefix %q", msg, res["StatusCode"], c.err)
			}
			if strings.Contains(msg, key.Base64()) || strings.Contains(msg, wrong.Base64()) {
				t.Fatal("a key is in the error")
			}
			f.noLeftovers("dst", "fromsnap", "src")
		})
	}

	// LastFileNameToRestore names a file of a chain in a folder of chains,
	// with or without .age.
	file := strings.TrimSuffix(local["FileName"].(string), backup.AgeSuffix)
	out = f.mustCall(200, "POST", "/admin/restore/database", map[string]any{
		"DatabaseName": "pit", "BackupLocation": f.backups, "LastFileNameToRestore": file, "EncryptionKey": key.Base64(),
	})
	st = f.wait("/operations/state", out["OperationId"])
	if st["Status"] != "Completed" || st["Result"].(map[string]any)["BackupDirectory"] != chain {
		t.Fatalf("restore up to %s: %v", file, st)
	}

	// Restore points list every file, newest first.
	points := f.mustCall(200, "POST", "/admin/restore/points?type=Local", map[string]any{"FolderPath": f.backups})
	list := points["List"].([]any)
	if len(list) != 3 {
		t.Fatalf("restore points %v", points)
	}
	p0 := list[0].(map[string]any)
	if p0["IsSnapshotRestore"] != true || p0["DatabaseName"] != "src" || p0["IsEncrypted"] != true || p0["FilesToRestore"] != 1.0 ||
		!wireDate.MatchString(p0["DateTime"].(string)) || p0["Location"] != snapChain {
		t.Fatalf("newest restore point %v", p0)
	}
}

func TestBackupRequestsRefused(t *testing.T) {
	f := newBackupFix(t)
	key, _ := keys.Generate()
	f.createDB("enc", &key)
	f.createDB("plain", nil)
	local := map[string]any{"FolderPath": f.backups}
	cases := []struct {
		name, target string
		body         any
		status       int
		err          string
	}{
		{"database key on plain", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseDatabaseKey"}}, 400,
			"EncryptionMode UseDatabaseKey needs an encrypted database, and plain is not encrypted. Use UseProvidedKey with a Key, MagpieRecipients, or None."},
		{"provided key missing", "/databases/plain/admin/periodic-backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey"}}, 400,
			"EncryptionMode UseProvidedKey needs BackupEncryptionSettings.Key"},
		{"provided key not base64", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": "not a key"}}, 400,
			"BackupEncryptionSettings.Key: the key is not valid base64"},
		{"key where none", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "None", "Key": key.Base64()}}, 400,
			"BackupEncryptionSettings.Key was given but EncryptionMode None takes no key."},
		{"encrypted snapshot with a key", "/databases/enc/admin/backup", map[string]any{"BackupType": "Snapshot", "LocalSettings": local, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": key.Base64()}}, 400,
			"A snapshot of encrypted database enc is a copy of its encrypted files, so it can only use EncryptionMode UseDatabaseKey, not UseProvidedKey."},
		{"unknown mode", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "Rot13"}}, 400,
			`BackupEncryptionSettings.EncryptionMode "Rot13" is not known.`},
		{"bad recipient", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"MagpieRecipients": []string{"age1nope"}}}, 400,
			"MagpieRecipients entry 1 is not a valid age public key."},
		{"no folder", "/databases/plain/admin/backup", map[string]any{"BackupType": "Backup"}, 400, "LocalSettings.FolderPath is missing and no other destination was given."},
		{"relative folder", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": "backups"}}, 400, `LocalSettings.FolderPath "backups" is not an absolute path.`},
		{"s3 credentials", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "S3Settings": map[string]any{"BucketName": "b", "AwsSecretKey": "s3cr3t"}}, 400,
			"S3Settings.AwsSecretKey was given, but magpie takes storage credentials only from its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or the AWS credentials file (AWS_PROFILE, ~/.aws/credentials)), never from a request, so that they are never stored in the database record or a backup. Leave it out."},
		{"task with azure credentials", "/databases/plain/admin/periodic-backup", map[string]any{"AzureSettings": map[string]any{"StorageContainer": "c", "AccountKey": "k"}}, 400,
			"AzureSettings.AccountKey was given, but magpie takes storage credentials only from its environment"},
		{"task with google credentials", "/databases/plain/admin/periodic-backup", map[string]any{"GoogleCloudSettings": map[string]any{"BucketName": "b", "GoogleCredentialsJson": "{}"}}, 400,
			"GoogleCloudSettings.GoogleCredentialsJson was given, but magpie takes storage credentials only from its environment"},
		{"credentials in a url", "/databases/plain/admin/periodic-backup", map[string]any{"MagpieDestinations": []string{"s3://AKIA:s3cr3t@b/x"}}, 400,
			"MagpieDestinations entry 1: s3://REDACTED@b/x holds credentials, and magpie never stores credentials."},
		{"glacier", "/databases/plain/admin/backup", map[string]any{"LocalSettings": local, "GlacierSettings": map[string]any{"VaultName": "v"}}, 501, "GlacierSettings: uploading backups to Glacier is not supported by magpie."},
		{"full cron", "/databases/plain/admin/periodic-backup", map[string]any{"LocalSettings": local, "FullBackupFrequency": "61 * * * *"}, 400,
			`FullBackupFrequency "61 * * * *" is not a cron expression (end of range (61) above maximum (59): 61). Give five fields, minute hour day-of-month month day-of-week, such as "0 2 * * *", or a descriptor such as @daily or "@every 1h".`},
		{"incremental cron", "/databases/plain/admin/periodic-backup", map[string]any{"LocalSettings": local, "IncrementalBackupFrequency": "every hour"}, 400,
			`IncrementalBackupFrequency "every hour" is not a cron expression (expected exactly 5 fields, found 2: [every hour]).`},
		{"short retention", "/databases/plain/admin/periodic-backup", map[string]any{"LocalSettings": local, "RetentionPolicy": map[string]any{"Disabled": false, "MinimumBackupAgeToKeep": "00:00:10"}}, 400,
			"RetentionPolicy.MinimumBackupAgeToKeep: retention minimum age 10s is shorter than a minute, which would delete chains while they are still being extended. Give at least 1m."},
		{"key and key file", "/databases/plain/admin/periodic-backup", map[string]any{"LocalSettings": local, "BackupEncryptionSettings": map[string]any{"Key": key.Base64(), "MagpieKeyFile": "/k"}}, 400,
			"BackupEncryptionSettings.Key and BackupEncryptionSettings.MagpieKeyFile were both given. Give one of them."},
		{"unknown type", "/databases/plain/admin/backup", map[string]any{"BackupType": "Full", "LocalSettings": local}, 400, `BackupType "Full" is not known.`},
		{"not json", "/databases/plain/admin/backup", []byte("{"), 400, "The request body is not valid JSON"},
		{"missing database", "/databases/nope/admin/backup", map[string]any{"LocalSettings": local}, 503, "Database 'nope' wasn't found"},
		{"incremental of no task", "/databases/plain/admin/backup/database?isFullBackup=false&taskId=1", nil, 400, "Backup task 1 does not exist in database plain."},
		{"full flag", "/databases/plain/admin/backup/database?isFullBackup=maybe&taskId=1", nil, 400, `IsFullBackup "maybe" is not true or false.`},
		{"unknown task", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=7", nil, 400, "Backup task 7 does not exist in database plain."},
		{"bad task id", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=x", nil, 400, `TaskId "x" is not a backup task id.`},
		{"update unknown task", "/databases/plain/admin/periodic-backup", map[string]any{"TaskId": 5, "LocalSettings": local}, 400, "Backup task 5 does not exist in database plain."},
		{"status without name", "/periodic-backup/status?taskId=1", nil, 400, "No database was given."},
		{"restore without name", "/admin/restore/database", map[string]any{"BackupLocation": f.backups}, 400, "DatabaseName is missing."},
		{"restore bad name", "/admin/restore/database", map[string]any{"DatabaseName": "a/b", "BackupLocation": f.backups}, 400, `The database name "a/b" is not valid`},
		{"restore bad key", "/admin/restore/database", map[string]any{"DatabaseName": "x", "BackupLocation": f.backups, "EncryptionKey": "c2hvcnQ="}, 400, "EncryptionKey: the key decodes to 5 bytes, not 32"},
		{"restore from s3 with credentials", "/admin/restore/database", map[string]any{"DatabaseName": "x", "Type": "S3", "Settings": map[string]any{"BucketName": "b", "AwsSecretKey": "s"}}, 400,
			"Settings.AwsSecretKey was given, but magpie takes storage credentials only from its environment"},
		{"restore from s3 without settings", "/admin/restore/database", map[string]any{"DatabaseName": "x", "Type": "S3"}, 400, "Settings (S3Settings) is missing. Give the S3Settings of the backups' bucket."},
		{"restore from ftp", "/admin/restore/database", map[string]any{"DatabaseName": "x", "Type": "Ftp", "Settings": map[string]any{}}, 501, `Type "Ftp" is not supported by magpie. Use Local, S3, Azure or GoogleCloud.`},
		{"restore relative", "/admin/restore/database", map[string]any{"DatabaseName": "x", "BackupLocation": "backups"}, 400, `BackupLocation "backups" is not an absolute path.`},
		{"restore data directory", "/admin/restore/database", map[string]any{"DatabaseName": "x", "BackupLocation": f.backups, "DataDirectory": "/x"}, 400, "DataDirectory is not supported by magpie"},
		{"restore missing identity", "/admin/restore/database", map[string]any{"DatabaseName": "x", "BackupLocation": f.backups, "MagpieIdentity": filepath.Join(f.root, "id.txt")}, 400, "Cannot read identity file"},
		{"restore points from s3 without a bucket", "/admin/restore/points?type=S3", map[string]any{"RemoteFolderName": "x"}, 400, "BucketName is missing. Give the bucket of the backups."},
		{"restore points with credentials", "/admin/restore/points?type=Azure", map[string]any{"StorageContainer": "c", "SasToken": "t"}, 400, "SasToken was given, but magpie takes storage credentials only from its environment"},
		{"restore points from glacier", "/admin/restore/points?type=Glacier", map[string]any{}, 501, `Type "Glacier" is not supported by magpie.`},
		{"delete other task type", "/databases/plain/admin/tasks?id=1&type=Replication", nil, 501, `Ongoing tasks of type "Replication" are not supported by magpie`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if strings.HasPrefix(c.target, "/periodic-backup") {
				method = "GET"
			}
			if strings.Contains(c.target, "/admin/tasks") {
				method = "DELETE"
			}
			code, out := f.call(method, c.target, c.body)
			msg, _ := out["Error"].(string)
			if code != c.status || !strings.HasPrefix(msg, c.err) || out["Type"] == nil {
				t.Fatalf("%d %q, want %d %q", code, msg, c.status, c.err)
			}
		})
	}
	if _, err := os.Stat(f.backups); !os.IsNotExist(err) {
		t.Fatalf("a refused backup wrote into %s: %v", f.backups, err)
	}
}

func TestBackupTasksPersist(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("plain", nil)
	taskKey, _ := keys.Generate()
	out := f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{
		"Name": "keyed", "LocalSettings": map[string]any{"FolderPath": f.backups}, "IncrementalBackupFrequency": "*/10 * * * *",
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": taskKey.Base64()},
	})
	if out["TaskId"] != 1.0 {
		t.Fatalf("task %v", out)
	}
	out = f.mustCall(200, "POST", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=1", nil)
	if st := f.wait("/databases/plain/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("backup: %v", st)
	}
	// The task is in the database record, without its key; its status is
	// the server's.
	db, err := f.srv.openDB("plain")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := db.Setting("PeriodicBackups")
	if err != nil || bytes.Contains(rec, []byte(taskKey.Base64())) || !bytes.Contains(rec, []byte(taskKey.Fingerprint())) || !bytes.Contains(rec, []byte("*/10 * * * *")) {
		t.Fatalf("record %s %v", rec, err)
	}
	path := filepath.Join(f.data.Path(), "backup-tasks", "plain.json")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("status file %v %v", fi, err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(taskKey.Base64())) || bytes.Contains(raw, []byte("*/10 * * * *")) || !bytes.Contains(raw, []byte(`"Format": 2`)) {
		t.Fatalf("status file holds the key or the task: %s", raw)
	}

	f.restart()
	status := f.mustCall(200, "GET", "/periodic-backup/status?name=PLAIN&taskId=1", nil)["Status"].(map[string]any)
	if !wireDate.MatchString(status["LastFullBackup"].(string)) || status["IsEncrypted"] != true {
		t.Fatalf("status after restart %v", status)
	}
	info := f.mustCall(200, "GET", "/databases/plain/task?key=1&type=Backup", nil)
	if info["TaskName"] != "keyed" || info["MagpieKeyInMemory"] != false || info["IsEncrypted"] != true {
		t.Fatalf("task after restart %v", info)
	}
	// The provided key did not survive the restart: the task says so.
	code, out := f.call("POST", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=1", nil)
	if code != 400 || !strings.HasPrefix(out["Error"].(string), "The key of backup task 1 (fingerprint "+taskKey.Fingerprint()+") is kept in the server's memory only, and this server does not hold it (it restarted since the key was given, or the database was restored).") {
		t.Fatalf("%d %v", code, out)
	}
	// Without the key, the task can still be changed (disabled, renamed):
	// it keeps its key's fingerprint, and still cannot run.
	f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{
		"TaskId": 1, "Name": "keyed-off", "Disabled": true, "LocalSettings": map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey"},
	})
	info = f.mustCall(200, "GET", "/databases/plain/task?key=1&type=Backup", nil)
	if info["TaskName"] != "keyed-off" || info["TaskState"] != "Disabled" || info["MagpieKeyInMemory"] != false {
		t.Fatalf("task updated without its key %v", info)
	}
	f.mustCall(200, "POST", "/databases/plain/admin/tasks/state?key=1&type=Backup&disable=false", nil)
	code, out = f.call("POST", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=1", nil)
	if code != 400 || !strings.Contains(out["Error"].(string), "this server does not hold it") {
		t.Fatalf("run after an update without the key: %d %v", code, out)
	}
	// Updating the task with its key again makes it run; an update that
	// leaves the key out keeps the one the server holds.
	f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{
		"TaskId": 1, "LocalSettings": map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": taskKey.Base64()},
	})
	f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{
		"TaskId": 1, "Name": "keyed", "LocalSettings": map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey"},
	})
	out = f.mustCall(200, "POST", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=1", nil)
	if st := f.wait("/databases/plain/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("backup after update: %v", st)
	}
	// A task whose key is a file on the server's machine keeps working
	// across restarts.
	keyFile := filepath.Join(f.root, "task.key")
	if err := os.WriteFile(keyFile, []byte(taskKey.Base64()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{
		"Name": "from file", "LocalSettings": map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"MagpieKeyFile": keyFile},
	}); out["TaskId"] != 2.0 {
		t.Fatalf("next task %v", out)
	}
	f.restart()
	out = f.mustCall(200, "POST", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=2", nil)
	if st := f.wait("/databases/plain/operations/state", out["OperationId"]); st["Status"] != "Completed" || st["Result"].(map[string]any)["MagpieEncryption"] != "key" {
		t.Fatalf("backup with a key file: %v", st)
	}
	// Disabled tasks do not run on request; deleted tasks are gone, with
	// their status.
	f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{"TaskId": 2, "Disabled": true, "LocalSettings": map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"MagpieKeyFile": keyFile}})
	code, out = f.call("POST", "/databases/plain/admin/backup/database?isFullBackup=true&taskId=2", nil)
	if code != 400 || out["Error"] != "Backup task 2 (from file) is disabled. Enable it (Disabled: false) with UpdatePeriodicBackupOperation first." {
		t.Fatalf("disabled task run: %d %v", code, out)
	}
	f.mustCall(200, "POST", "/databases/plain/admin/tasks/state?key=2&type=Backup&disable=false", nil)
	if info := f.mustCall(200, "GET", "/databases/plain/task?taskName=FROM%20FILE&type=Backup", nil); info["TaskState"] != "Enabled" {
		t.Fatalf("after enabling %v", info)
	}
	f.mustCall(200, "DELETE", "/databases/plain/admin/tasks?id=2&type=Backup", nil)
	f.mustCall(400, "GET", "/periodic-backup/status?name=plain&taskId=2", nil)
	f.mustCall(404, "GET", "/databases/plain/task?key=2&type=Backup", nil)
	raw, _ = os.ReadFile(path)
	if bytes.Contains(raw, []byte(`"2"`)) || !bytes.Contains(raw, []byte(`"1"`)) {
		t.Fatalf("status file after delete: %s", raw)
	}

	// A database created again under the same name has no tasks, and the
	// status left behind is not its.
	if err := f.srv.dropDatabase("plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("status file after the database was deleted: %v", err)
	}
	f.createDB("plain", nil)
	f.mustCall(400, "GET", "/periodic-backup/status?name=plain&taskId=1", nil)
	if list := f.mustCall(200, "GET", "/databases/plain/tasks", nil)["OngoingTasks"].([]any); len(list) != 0 {
		t.Fatalf("tasks of the new database %v", list)
	}
	if out := f.mustCall(200, "POST", "/databases/plain/admin/periodic-backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": f.backups}}); out["TaskId"] != 1.0 {
		t.Fatalf("first task of the new database %v", out)
	}
}

// TestBackupTasksMigrate reads a tasks file of the format before tasks
// moved into the database record.
func TestBackupTasksMigrate(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("old", nil)
	db, err := f.srv.openDB("old")
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]any{"Format": 1, "Database": "old", "DatabaseId": db.ID(), "NextTaskId": 2, "Tasks": []any{map[string]any{
		"TaskId": 1, "Name": "nightly", "BackupType": "Backup", "FullBackupFrequency": "0 3 * * *", "FolderPath": f.backups,
		"Encryption": "none", "Compression": "gzip", "CreatedAt": "2026-12-01T10:00:00.0000000Z",
		"Status": map[string]any{"TaskId": 1, "LastFullBackup": "2026-12-02T03:00:00.0000000Z", "LastEtag": 6},
	}}}
	raw, _ := json.Marshal(old)
	path := filepath.Join(f.data.Path(), "backup-tasks", "old.json")
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	info := f.mustCall(200, "GET", "/databases/old/task?key=1&type=Backup", nil)
	cfg := info["MagpieConfiguration"].(map[string]any)
	if info["TaskName"] != "nightly" || cfg["FullBackupFrequency"] != "0 3 * * *" || cfg["MagpieCompression"] != "gzip" ||
		cfg["LocalSettings"].(map[string]any)["FolderPath"] != f.backups || info["LastFullBackup"] != "2026-12-02T03:00:00.0000000Z" {
		t.Fatalf("migrated task %v", info)
	}
	if rec, _ := db.Setting("PeriodicBackups"); !bytes.Contains(rec, []byte(`"nightly"`)) {
		t.Fatalf("record %s", rec)
	}
	if raw, _ := os.ReadFile(path); !bytes.Contains(raw, []byte(`"Format": 2`)) {
		t.Fatalf("status file not rewritten: %s", raw)
	}
}

func TestRestoreKeysAndRecipients(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("plain", nil)
	want := f.docs("plain")
	backupKey, _ := keys.Generate()
	dbKey, _ := keys.Generate()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(f.root, "identity.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chainOf := func(enc map[string]any) string {
		out := f.mustCall(200, "POST", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": f.backups}, "BackupEncryptionSettings": enc})
		st := f.wait("/databases/plain/operations/state", out["OperationId"])
		if st["Status"] != "Completed" {
			t.Fatalf("backup %v: %v", enc, st)
		}
		return st["Result"].(map[string]any)["LocalBackup"].(map[string]any)["BackupDirectory"].(string)
	}
	keyed := chainOf(map[string]any{"EncryptionMode": "UseProvidedKey", "Key": backupKey.Base64()})
	forRecipients := chainOf(map[string]any{"MagpieRecipients": []string{id.Recipient().String()}})
	restoreAs := func(name string, body map[string]any) map[string]any {
		body["DatabaseName"] = name
		out := f.mustCall(200, "POST", "/admin/restore/database", body)
		return f.wait("/operations/state", out["OperationId"])
	}

	// BackupEncryptionSettings.Key decrypts; EncryptionKey becomes the
	// restored database's key.
	st := restoreAs("k1", map[string]any{"BackupLocation": keyed, "BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": backupKey.Base64()}, "EncryptionKey": dbKey.Base64()})
	if st["Status"] != "Completed" {
		t.Fatalf("restore: %v", st)
	}
	if info, err := f.srv.lookupInfo("k1"); err != nil || !info.Encrypted || info.KeyFingerprint != dbKey.Fingerprint() {
		t.Fatalf("k1 %+v %v", info, err)
	}
	// Decrypt only: the restored database is not encrypted.
	if st := restoreAs("k2", map[string]any{"BackupLocation": keyed, "BackupEncryptionSettings": map[string]any{"Key": backupKey.Base64()}}); st["Status"] != "Completed" {
		t.Fatalf("restore: %v", st)
	}
	if info, _ := f.srv.lookupInfo("k2"); info.Encrypted || fmt.Sprint(f.docs("k2")) != fmt.Sprint(want) {
		t.Fatalf("k2 %+v", info)
	}
	// A key-mode backup given only EncryptionKey (another key) faults.
	msg, _ := faultOfState(t, restoreAs("k3", map[string]any{"BackupLocation": keyed, "EncryptionKey": dbKey.Base64()}))
	if !strings.HasPrefix(msg, "The key given in EncryptionKey (fingerprint "+dbKey.Fingerprint()+") is not the key of the backup in "+keyed) {
		t.Fatalf("fault %q", msg)
	}
	// Recipients: MagpieIdentity opens the backup; without it, a fault.
	if st := restoreAs("r1", map[string]any{"BackupLocation": forRecipients, "MagpieIdentity": idFile}); st["Status"] != "Completed" {
		t.Fatalf("restore: %v", st)
	}
	if got := f.docs("r1"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("r1 documents %v", got)
	}
	msg, _ = faultOfState(t, restoreAs("r2", map[string]any{"BackupLocation": forRecipients}))
	if !strings.HasPrefix(msg, "The backup in "+forRecipients+" is encrypted to age recipients and no identity was given. Give MagpieIdentity") {
		t.Fatalf("fault %q", msg)
	}
	f.noLeftovers("k1", "k2", "plain", "r1")
}

func TestOperationStateAndKill(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("plain", nil)

	// Unknown or malformed ids: a clear error, never a 404 or a crash.
	for target, want := range map[string]string{
		"/operations/state?id=42":                 "Operation 42 does not exist on this server.",
		"/databases/plain/operations/state?id=42": "Operation 42 does not exist for database plain.",
		"/operations/state?id=x":                  `Operation id "x" is not a positive number.`,
		"/operations/state":                       "No operation id was given.",
	} {
		code, out := f.call("GET", target, nil)
		if code != 400 || !strings.HasPrefix(out["Error"].(string), want) {
			t.Fatalf("%s: %d %v", target, code, out)
		}
	}
	code, out := f.call("POST", "/databases/plain/operations/kill?id=42", nil)
	if code != 400 || !strings.HasPrefix(out["Error"].(string), "Operation 42 does not exist") {
		t.Fatalf("kill unknown: %d %v", code, out)
	}

	// A backup held before it writes, then killed: Canceled, and nothing
	// complete-looking is left.
	release := make(chan struct{})
	testHookBackup = func(ctx context.Context) {
		select {
		case <-ctx.Done():
		case <-release:
		}
	}
	defer func() { testHookBackup = nil }()
	out = f.mustCall(200, "POST", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": f.backups}})
	id := out["OperationId"]
	if st := f.mustCall(200, "GET", fmt.Sprintf("/databases/plain/operations/state?id=%v", id), nil); st["Status"] != "InProgress" {
		t.Fatalf("state %v", st)
	}
	// Another database's route does not see it.
	f.createDB("other", nil)
	f.mustCall(400, "GET", fmt.Sprintf("/databases/other/operations/state?id=%v", id), nil)
	f.mustCall(204, "POST", fmt.Sprintf("/databases/plain/operations/kill?id=%v", id), nil)
	if st := f.wait("/databases/plain/operations/state", id); st["Status"] != "Canceled" || st["Result"] != nil {
		t.Fatalf("killed backup: %v", st)
	}
	entries, _ := os.ReadDir(f.backups)
	if len(entries) != 0 {
		t.Fatalf("a canceled backup left %v", entries)
	}
	// Killing it again changes nothing.
	f.mustCall(204, "POST", fmt.Sprintf("/databases/plain/operations/kill?id=%v", id), nil)

	// A finished backup is not undone by a late kill.
	close(release)
	out = f.mustCall(200, "POST", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": f.backups}})
	if st := f.wait("/databases/plain/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("backup: %v", st)
	}
	f.mustCall(204, "POST", fmt.Sprintf("/admin/operations/kill?id=%v", out["OperationId"]), nil)
	if st := f.wait("/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("after a late kill: %v", st)
	}

	// A killed restore finishes, then removes the database it created.
	testHookRestored = func(ctx context.Context) { <-ctx.Done() }
	defer func() { testHookRestored = nil }()
	out = f.mustCall(200, "POST", "/admin/restore/database", map[string]any{"DatabaseName": "killed", "BackupLocation": f.backups})
	f.mustCall(204, "POST", fmt.Sprintf("/admin/operations/kill?id=%v", out["OperationId"]), nil)
	if st := f.wait("/operations/state", out["OperationId"]); st["Status"] != "Canceled" {
		t.Fatalf("killed restore: %v", st)
	}
	f.noLeftovers("other", "plain")

	// Shutting down cancels running backups and refuses new operations.
	testHookBackup = func(ctx context.Context) { <-ctx.Done() }
	out = f.mustCall(200, "POST", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": filepath.Join(f.root, "b2")}})
	f.srv.CancelOperations()
	if st := f.wait("/operations/state", out["OperationId"]); st["Status"] != "Canceled" {
		t.Fatalf("after CancelOperations: %v", st)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.root, "b2")); len(entries) != 0 {
		t.Fatalf("a canceled backup left %v", entries)
	}
	code, out = f.call("POST", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": f.backups}})
	if code != 503 || !strings.Contains(out["Error"].(string), "shutting down") {
		t.Fatalf("backup during shutdown: %d %v", code, out)
	}
}

func TestRestoreUnsecured(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("plain", nil)
	out := f.mustCall(200, "POST", "/databases/plain/admin/backup", map[string]any{"LocalSettings": map[string]any{"FolderPath": f.backups}})
	f.wait("/databases/plain/operations/state", out["OperationId"])
	f.cfg.Unsecured = true
	f.restart()
	key, _ := keys.Generate()
	code, out := f.call("POST", "/admin/restore/database", map[string]any{"DatabaseName": "x", "BackupLocation": f.backups, "EncryptionKey": key.Base64()})
	if code != 400 || !strings.Contains(out["Error"].(string), "this server runs with --unsecured") {
		t.Fatalf("%d %v", code, out)
	}
	// An unencrypted restore is fine.
	out = f.mustCall(200, "POST", "/admin/restore/database", map[string]any{"DatabaseName": "x", "BackupLocation": f.backups})
	if st := f.wait("/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("restore: %v", st)
	}
	f.noLeftovers("plain", "x")
}

// TestBackupProgressAndConcurrency: a server's backups run with its
// concurrency cap, and a running backup's operation state shows the
// documents written of those in the database and the bytes stored.
func TestBackupProgressAndConcurrency(t *testing.T) {
	f := newBackupFix(t)
	f.cfg.BackupConcurrency = 1
	f.restart()
	f.createDB("plain", nil)
	db, err := f.srv.openDB("plain")
	if err != nil {
		t.Fatal(err)
	}
	_, _, plan, err := planBackup([]byte(`{"LocalSettings":{"FolderPath":"`+f.backups+`"}}`), db)
	if err != nil {
		t.Fatal(err)
	}
	ops := f.srv.extras().ops
	done := make(chan struct{})
	var opts backup.Options
	op, err := ops.start("plain", "Backup", AccessDatabaseAdmin, func(ctx context.Context, op *operation) (any, error) {
		opts = f.srv.backupOptions(ctx, op, db, plan, false)
		_, err := backup.Run(db, opts)
		<-done
		return nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var progress map[string]any
	for deadline := time.Now().Add(30 * time.Second); progress == nil; {
		st := f.mustCall(200, "GET", fmt.Sprintf("/databases/plain/operations/state?id=%d", op.id), nil)
		progress, _ = st["Progress"].(map[string]any)
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	f.wait("/databases/plain/operations/state", op.id)
	if opts.Concurrency != 1 {
		t.Errorf("the backup ran with concurrency %d, want the server's 1", opts.Concurrency)
	}
	// The first refresh comes with the first bytes stored, before any
	// document is written (the file's header).
	if progress["Message"] != "writing the backup of plain" || progress["MagpieDocumentsTotal"] != 3.0 || progress["MagpieBytesStored"].(float64) <= 0 ||
		progress["Documents"].(map[string]any)["ReadCount"].(float64) > 3 {
		t.Fatalf("progress %v", progress)
	}
	if n := opts.Documents.Load(); n != 3 {
		t.Fatalf("the backup counted %d documents, want 3", n)
	}
}
