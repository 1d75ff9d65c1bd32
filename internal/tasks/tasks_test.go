package tasks

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

func openDB(t *testing.T, encrypted bool) *store.DB {
	t.Helper()
	root := t.TempDir()
	d, err := store.Open(store.Options{Dir: filepath.Join(root, "data"), MasterKeyFile: filepath.Join(root, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.CreateDatabase("db", store.CreateOptions{Encrypted: encrypted}); err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDatabase("db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestParseRefuses(t *testing.T) {
	cases := []struct {
		name, body, err string
		unsupported     bool
	}{
		{"aws secret", `{"S3Settings":{"BucketName":"b","AwsSecretKey":"s"}}`,
			"S3Settings.AwsSecretKey was given, but magpie takes storage credentials only from its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or the AWS credentials file (AWS_PROFILE, ~/.aws/credentials)), never from a request, so that they are never stored in the database record or a backup. Leave it out", false},
		{"aws access key", `{"S3Settings":{"BucketName":"b","AwsAccessKey":"a"}}`, "S3Settings.AwsAccessKey was given, but magpie takes storage credentials only from its environment", false},
		{"aws session", `{"S3Settings":{"BucketName":"b","AwsSessionToken":"a"}}`, "S3Settings.AwsSessionToken was given", false},
		{"azure key", `{"AzureSettings":{"StorageContainer":"c","AccountKey":"k"}}`,
			"AzureSettings.AccountKey was given, but magpie takes storage credentials only from its environment (AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_CONNECTION_STRING), never from a request", false},
		{"azure sas", `{"AzureSettings":{"StorageContainer":"c","SasToken":"k"}}`, "AzureSettings.SasToken was given", false},
		{"google", `{"GoogleCloudSettings":{"BucketName":"b","GoogleCredentialsJson":"{}"}}`,
			"GoogleCloudSettings.GoogleCredentialsJson was given, but magpie takes storage credentials only from its environment (GOOGLE_APPLICATION_CREDENTIALS, the path of a service account key file), never from a request", false},
		{"script", `{"S3Settings":{"GetBackupConfigurationScript":{"Exec":"get-creds"}}}`, "S3Settings.GetBackupConfigurationScript is not supported by magpie", true},
		{"glacier", `{"GlacierSettings":{"VaultName":"v"}}`, "GlacierSettings: uploading backups to Glacier is not supported by magpie.", true},
		{"ftp", `{"FtpSettings":{"Url":"ftp://x"}}`, "FtpSettings: uploading backups to Ftp is not supported by magpie.", true},
		{"bad key", `{"BackupEncryptionSettings":{"Key":"short"}}`, "BackupEncryptionSettings.Key: ", false},
		{"not json", `{`, "the request body is not a backup configuration: ", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse([]byte(c.body))
			var ue *UnsupportedError
			if err == nil || !strings.HasPrefix(err.Error(), c.err) || errors.As(err, &ue) != c.unsupported {
				t.Fatalf("error %v, want prefix %q (unsupported %v)", err, c.err, c.unsupported)
			}
		})
	}
	// Empty credentials (what clients send for unset fields), disabled
	// Glacier and FTP settings and null scripts pass.
	c, key, err := Parse([]byte(`{"S3Settings":{"BucketName":"b","AwsSecretKey":"","GetBackupConfigurationScript":null},"GlacierSettings":{"Disabled":true},"FtpSettings":null}`))
	if err != nil || key != nil || c.S3Settings.BucketName != "b" {
		t.Fatalf("%+v %v %v", c, key, err)
	}
	// A key is returned apart and only its fingerprint stays.
	k, _ := keys.Generate()
	c, key, err = Parse([]byte(`{"BackupEncryptionSettings":{"EncryptionMode":"UseProvidedKey","Key":"` + k.Base64() + `","MagpieKeyFingerprint":"forged"}}`))
	if err != nil || key == nil || *key != k || c.BackupEncryptionSettings.MagpieKeyFingerprint != k.Fingerprint() {
		t.Fatalf("%+v %v %v", c.BackupEncryptionSettings, key, err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	age := func(s string) *RetentionPolicy { return &RetentionPolicy{MinimumBackupAgeToKeep: &s} }
	cases := []struct {
		name string
		c    Config
		err  string
	}{
		{"full cron", Config{FullBackupFrequency: "61 * * * *", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "61 * * * *" is not a cron expression (end of range (61) above maximum (59): 61). Give five fields, minute hour day-of-month month day-of-week, such as "0 2 * * *", or a descriptor such as @daily or "@every 1h"`},
		{"incremental cron", Config{IncrementalBackupFrequency: "0 3 * * * *", LocalSettings: &LocalSettings{FolderPath: dir}},
			`IncrementalBackupFrequency "0 3 * * * *" is not a cron expression (expected exactly 5 fields, found 6: [0 3 * * * *]).`},
		{"long name", Config{Name: strings.Repeat("n", 201), FullBackupFrequency: "@daily", LocalSettings: &LocalSettings{FolderPath: dir}},
			"the task's Name is 201 bytes long. Give a name of at most 200 bytes"},
		{"control characters", Config{Name: "a\nb\x1b[31m", FullBackupFrequency: "@daily", LocalSettings: &LocalSettings{FolderPath: dir}},
			`the task's Name "a\nb\x1b[31m" holds control characters, line or paragraph separators, bidirectional controls or invalid UTF-8, which would garble listings and logs. Give a name of printable characters`},
		{"line separator", Config{Name: "nightly\u2028fake line", FullBackupFrequency: "@daily", LocalSettings: &LocalSettings{FolderPath: dir}},
			`the task's Name "nightly\u2028fake line" holds control characters, line or paragraph separators`},
		{"right-to-left override", Config{Name: "nightly\u202etxt.exe", FullBackupFrequency: "@daily", LocalSettings: &LocalSettings{FolderPath: dir}},
			`the task's Name "nightly\u202etxt.exe" holds control characters, line or paragraph separators`},
		{"every zero", Config{FullBackupFrequency: "@every 0s", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "@every 0s" is shorter than a second. Give an interval of at least 1s, such as "@every 1h"`},
		{"every negative", Config{IncrementalBackupFrequency: "@every -5s", LocalSettings: &LocalSettings{FolderPath: dir}},
			`IncrementalBackupFrequency "@every -5s" is shorter than a second.`},
		{"every millisecond", Config{FullBackupFrequency: "@every 1ms", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "@every 1ms" is shorter than a second.`},
		{"every 100ms in a time zone", Config{FullBackupFrequency: "CRON_TZ=Europe/Paris @every 100ms", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "CRON_TZ=Europe/Paris @every 100ms" is shorter than a second.`},
		{"every 100ms in UTC", Config{IncrementalBackupFrequency: "TZ=UTC @every 100ms", LocalSettings: &LocalSettings{FolderPath: dir}},
			`IncrementalBackupFrequency "TZ=UTC @every 100ms" is shorter than a second.`},
		{"time zone alone", Config{FullBackupFrequency: "TZ=UTC", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "TZ=UTC" is not a cron expression (it names a time zone and no schedule).`},
		{"time zone and a space", Config{IncrementalBackupFrequency: "CRON_TZ=UTC ", LocalSettings: &LocalSettings{FolderPath: dir}},
			`IncrementalBackupFrequency "CRON_TZ=UTC" is not a cron expression (it names a time zone and no schedule).`},
		{"february 30", Config{FullBackupFrequency: "0 0 30 2 *", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "0 0 30 2 *" never falls due (no date matches it). Check the day of month and the month, such as "0 2 28 2 *"`},
		{"april 31", Config{IncrementalBackupFrequency: "0 0 31 4 *", LocalSettings: &LocalSettings{FolderPath: dir}},
			`IncrementalBackupFrequency "0 0 31 4 *" never falls due`},
		{"every", Config{FullBackupFrequency: "@every x", LocalSettings: &LocalSettings{FolderPath: dir}},
			`FullBackupFrequency "@every x" is not a cron expression (failed to parse duration @every x: time: invalid duration "x").`},
		{"type", Config{BackupType: "Full", LocalSettings: &LocalSettings{FolderPath: dir}}, `BackupType "Full" is not known. Use Backup (a logical backup) or Snapshot`},
		{"compression", Config{MagpieCompression: "lz4", LocalSettings: &LocalSettings{FolderPath: dir}}, `MagpieCompression "lz4" is not known.`},
		{"snapshot compression", Config{BackupType: "Snapshot", MagpieCompression: "gzip", LocalSettings: &LocalSettings{FolderPath: dir}}, "MagpieCompression applies to logical backups only"},
		{"no destination", Config{}, "LocalSettings.FolderPath is missing and no other destination was given."},
		{"relative folder", Config{LocalSettings: &LocalSettings{FolderPath: "backups"}}, `LocalSettings.FolderPath "backups" is not an absolute path.`},
		{"url as folder", Config{LocalSettings: &LocalSettings{FolderPath: "s3://b"}}, `LocalSettings.FolderPath "s3://b" is a URL.`},
		{"no bucket", Config{S3Settings: &S3Settings{RemoteFolderName: "x"}}, "S3Settings.BucketName is missing. Give the bucket of the backups"},
		{"no container", Config{AzureSettings: &AzureSettings{}}, "AzureSettings.StorageContainer is missing. Give the container of the backups"},
		{"bad folder", Config{GoogleCloudSettings: &GoogleCloudSettings{BucketName: "b", RemoteFolderName: "a/../b"}}, `GoogleCloudSettings.RemoteFolderName "a/../b" has empty, . or .. parts.`},
		{"bad endpoint", Config{S3Settings: &S3Settings{BucketName: "b", CustomServerURL: "ftp://x"}}, `S3Settings.CustomServerUrl "ftp://x" is not a server URL.`},
		{"url with credentials", Config{MagpieDestinations: []string{"s3://key:secret@b/x"}}, "MagpieDestinations entry 1: s3://REDACTED@b/x holds credentials, and magpie never stores credentials."},
		{"unknown scheme", Config{MagpieDestinations: []string{"ftp://b/x"}}, `MagpieDestinations entry 1: the scheme "ftp" of ftp://b/x is not supported.`},
		{"relative destination", Config{MagpieDestinations: []string{"x"}}, `MagpieDestinations entry 1: "x" is not an absolute path.`},
		{"twice", Config{LocalSettings: &LocalSettings{FolderPath: dir}, MagpieDestinations: []string{dir + "/"}}, "destination " + dir + " is given twice."},
		{"age", Config{LocalSettings: &LocalSettings{FolderPath: dir}, RetentionPolicy: age("soon")}, `RetentionPolicy.MinimumBackupAgeToKeep "soon" is not a duration.`},
		{"short age", Config{LocalSettings: &LocalSettings{FolderPath: dir}, RetentionPolicy: age("00:00:30")},
			"RetentionPolicy.MinimumBackupAgeToKeep: retention minimum age 30s is shorter than a minute"},
		{"negative keep", Config{LocalSettings: &LocalSettings{FolderPath: dir}, MagpieKeepNewest: -1}, "MagpieKeepNewest: retention keep-newest -1 is negative."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.c.Check()
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Fatalf("error %v\nwant prefix %q", err, c.err)
			}
		})
	}
}

func TestDestinationsAndRetention(t *testing.T) {
	days := "30.00:00:00"
	c := Config{
		LocalSettings:       &LocalSettings{FolderPath: "/srv/backups/"},
		S3Settings:          &S3Settings{BucketName: "b", RemoteFolderName: "/nightly/", AwsRegionName: "eu-west-1", CustomServerURL: "http://127.0.0.1:7070", ForcePathStyle: true},
		AzureSettings:       &AzureSettings{StorageContainer: "c", AccountName: "acct"},
		GoogleCloudSettings: &GoogleCloudSettings{BucketName: "g", RemoteFolderName: "a/b"},
		MagpieDestinations:  []string{"azblob://c2/x?domain=127.0.0.1:10000&protocol=http&localemu=true", "file:///srv/other"},
		RetentionPolicy:     &RetentionPolicy{MinimumBackupAgeToKeep: &days},
		MagpieKeepNewest:    3,
	}
	got, err := c.Destinations()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/srv/backups",
		"s3://b/nightly?endpoint=http%3A%2F%2F127.0.0.1%3A7070&region=eu-west-1&use_path_style=true",
		"azblob://c?storage_account=acct",
		"gs://g/a/b",
		"azblob://c2/x?domain=127.0.0.1:10000&protocol=http&localemu=true",
		"/srv/other", // a file:// URL is its folder
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("destinations\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r, err := c.Retention()
	if err != nil || r != (backup.Retention{MinAge: 30 * 24 * time.Hour, KeepNewest: 3}) {
		t.Fatalf("retention %+v %v", r, err)
	}
	// Disabled settings and a disabled policy do not count.
	c.S3Settings.Disabled, c.AzureSettings.Disabled, c.GoogleCloudSettings.Disabled = true, true, true
	c.RetentionPolicy.Disabled = true
	if got, _ := c.Destinations(); len(got) != 3 {
		t.Fatalf("destinations with disabled settings %v", got)
	}
	if r, _ := c.Retention(); r != (backup.Retention{KeepNewest: 3}) {
		t.Fatalf("retention with a disabled policy %+v", r)
	}
}

func TestParseAge(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30.00:00:00", 30 * 24 * time.Hour, false},
		{"1.02:03:04.5", 26*time.Hour + 3*time.Minute + 4500*time.Millisecond, false},
		{"12:00:00", 12 * time.Hour, false},
		{"00:10", 10 * time.Minute, false},
		{"7", 7 * 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"24:00:00", 0, true},
		{"soon", 0, true},
		{"36500", 36500 * 24 * time.Hour, false},
		{"200000", 0, true},
		{"99999999999", 0, true},
		{"73025633904072", 0, true},
		{"200000.00:00:00", 0, true},
		{"2000000h", 0, true},
	} {
		got, err := ParseAge(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseAge(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

func TestNext(t *testing.T) {
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
	at := func(h, m, s int) time.Time { return time.Date(2026, 12, 3, h, m, s, 0, time.Local) }
	daily := Config{FullBackupFrequency: "0 3 * * *", IncrementalBackupFrequency: "*/15 * * * *"}
	cases := []struct {
		name   string
		c      Config
		h      History
		want   time.Time
		full   bool
		noRuns bool
	}{
		{"first incremental", daily, History{Start: start}, at(10, 15, 0), false, false},
		{"full wins a tie", Config{FullBackupFrequency: "0 * * * *", IncrementalBackupFrequency: "*/15 * * * *"}, History{Start: at(10, 50, 0)}, at(11, 0, 0), true, false},
		{"missed full runs at once", daily, History{Start: start, LastFull: at(3, 0, 0).AddDate(0, 0, -1), LastIncremental: at(9, 55, 0)}, at(3, 0, 0), true, false},
		// Down from 2:40 to 10:00: the incremental (due 2:45) and the full
		// (due 3:00) are both overdue, which makes one full run.
		{"both overdue make one full run", daily, History{Start: start, Now: start, LastFull: at(3, 0, 0).AddDate(0, 0, -1), LastIncremental: at(2, 30, 0)}, at(2, 45, 0), true, false},
		{"an overdue incremental before a full still to come", daily, History{Start: start, Now: at(2, 50, 0), LastFull: at(3, 0, 0).AddDate(0, 0, -1), LastIncremental: at(2, 30, 0)}, at(2, 45, 0), false, false},
		{"incremental after the last run", daily, History{Start: start, LastFull: at(3, 0, 0), LastIncremental: at(10, 30, 0)}, at(10, 45, 0), false, false},
		{"a change starts afresh", daily, History{Start: start, Changed: at(10, 20, 0), LastFull: at(3, 0, 0).AddDate(0, 0, -3)}, at(10, 30, 0), false, false},
		{"every", Config{IncrementalBackupFrequency: "@every 1s"}, History{Start: start}, start.Add(time.Second), false, false},
		{"retry before the schedule", daily, History{Start: start, LastIncremental: at(10, 15, 0), Failures: 1, FailedAt: at(10, 15, 0)}, at(10, 16, 0), false, false},
		{"third retry waits 15m", Config{FullBackupFrequency: "0 3 * * *"}, History{Start: start, LastFull: at(10, 0, 0), Failures: 5, FailedAt: at(10, 0, 0), FailedFull: true}, at(10, 15, 0), true, false},
		{"schedule before the retry", Config{IncrementalBackupFrequency: "@every 10s"}, History{Start: start, LastIncremental: start, Failures: 2, FailedAt: start}, start.Add(10 * time.Second), false, false},
		{"disabled", Config{Disabled: true, FullBackupFrequency: "@every 1s"}, History{Start: start}, time.Time{}, false, true},
		{"no schedule", Config{}, History{Start: start}, time.Time{}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, full, ok := c.c.Next(c.h)
			if ok == c.noRuns || !got.Equal(c.want) || full != c.full {
				t.Fatalf("Next = %v full %v ok %v; want %v full %v", got, full, ok, c.want, c.full)
			}
		})
	}
	if Backoff(1) != time.Minute || Backoff(2) != 5*time.Minute || Backoff(3) != 15*time.Minute || Backoff(9) != 15*time.Minute {
		t.Fatal("backoff")
	}
}

func TestStoreTasks(t *testing.T) {
	db := openDB(t, false)
	dir := t.TempDir()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if list, err := Load(db); list != nil || err != nil {
		t.Fatalf("no tasks %v %v", list, err)
	}
	c, err := Put(db, &Config{FullBackupFrequency: "@daily", LocalSettings: &LocalSettings{FolderPath: dir}}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.TaskID != 1 || c.Name != "Backup #1" || c.CreatedAt != "2026-12-03T10:00:00.0000000Z" || c.BackupType != "Backup" || c.BackupEncryptionSettings.EncryptionMode != "None" {
		t.Fatalf("stored %+v %+v", c, c.BackupEncryptionSettings)
	}
	k, _ := keys.Generate()
	c2, err := Put(db, &Config{Name: "keyed", LocalSettings: &LocalSettings{FolderPath: dir}, BackupEncryptionSettings: &EncryptionSettings{MagpieKeyFingerprint: k.Fingerprint()}}, &k, now)
	if err != nil || c2.TaskID != 2 || c2.BackupEncryptionSettings.EncryptionMode != "UseProvidedKey" {
		t.Fatalf("%+v %v", c2, err)
	}
	raw, _ := db.Setting(dump.PeriodicBackups)
	if strings.Contains(string(raw), k.Base64()) || !strings.Contains(string(raw), k.Fingerprint()) {
		t.Fatalf("record %s", raw)
	}
	for _, bad := range []struct {
		c   Config
		err string
	}{
		{Config{Name: "KEYED", LocalSettings: &LocalSettings{FolderPath: dir}}, `database db already has a backup task named "keyed" (task 2).`},
		{Config{TaskID: 9, LocalSettings: &LocalSettings{FolderPath: dir}}, "backup task 9 does not exist in database db."},
		{Config{TaskID: -1, LocalSettings: &LocalSettings{FolderPath: dir}}, "TaskId -1 is not valid."},
		{Config{LocalSettings: &LocalSettings{FolderPath: dir}, BackupEncryptionSettings: &EncryptionSettings{EncryptionMode: "UseDatabaseKey"}}, "EncryptionMode UseDatabaseKey needs an encrypted database, and db is not encrypted."},
	} {
		if _, err := Put(db, &bad.c, nil, now); err == nil || !strings.HasPrefix(err.Error(), bad.err) {
			t.Errorf("Put %+v: %v, want %q", bad.c, err, bad.err)
		}
	}
	// The key stays in memory: a plan without it says so.
	if _, err := c2.Plan(db, nil); err == nil || !strings.HasPrefix(err.Error(), "the key of backup task 2 (fingerprint "+k.Fingerprint()+") is kept in the server's memory only, and this server does not hold it") {
		t.Fatalf("plan without the key: %v", err)
	}
	if p, err := c2.Plan(db, &k); err != nil || p.Request.Key == nil || p.Encryption != backup.ModeKey || p.To[0] != dir {
		t.Fatalf("plan %+v %v", p, err)
	}
	if n, err := DisableAll(db); n != 2 || err != nil {
		t.Fatalf("DisableAll %d %v", n, err)
	}
	if old, err := Delete(db, 1); err != nil || old.TaskID != 1 {
		t.Fatalf("delete %v %v", old, err)
	}
	list, _ := Load(db)
	if len(list) != 1 || list[0].TaskID != 2 || !list[0].Disabled {
		t.Fatalf("after delete %+v", list)
	}
	if old, err := Delete(db, 1); old != nil || err != nil {
		t.Fatalf("second delete %v %v", old, err)
	}
}

// TestTaskIDsNotReused: a deleted task's id never comes back for a new
// task, even when it was the highest.
func TestTaskIDsNotReused(t *testing.T) {
	db := openDB(t, false)
	dir := t.TempDir()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	put := func() int64 {
		t.Helper()
		c, err := Put(db, &Config{FullBackupFrequency: "@daily", LocalSettings: &LocalSettings{FolderPath: dir}}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		return c.TaskID
	}
	var ids []int64
	ids = append(ids, put(), put())
	if _, err := Delete(db, 2); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, put())
	if _, err := Delete(db, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Delete(db, 3); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, put())
	if fmt.Sprint(ids) != "[1 2 3 4]" {
		t.Fatalf("ids %v, want [1 2 3 4]", ids)
	}
}

func TestParseShape(t *testing.T) {
	for body, want := range map[string]string{
		`[]`:                        "the request body is not a backup configuration: it is an array where an object was expected",
		`{"TaskId":"x"}`:            "the request body is not a backup configuration: field TaskId is a string, not a whole number",
		`{"Disabled":1}`:            "the request body is not a backup configuration: field Disabled is a number, not true or false",
		`{"MagpieDestinations":{}}`: "the request body is not a backup configuration: field MagpieDestinations is an object, not an array",
	} {
		if _, _, err := Parse([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("Parse(%s): %v\nwant %s", body, err, want)
		}
	}
}
