package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	sdk "github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/backup"
)

// taskInfo is what `backup status --json` prints of a task.
type taskInfo struct {
	TaskID       int64  `json:"TaskId"`
	TaskName     string `json:"TaskName"`
	TaskState    string `json:"TaskState"`
	MagpieStatus *struct {
		LastFullBackup           *string
		LastIncrementalBackup    *string
		LastEtag                 *uint64
		MagpieLastFullBackupFile *string
		MagpieFailures           int
		Error                    *struct{ Exception string }
	}
	NextBackup *struct{ IsFull bool }
}

func statusJSON(t *testing.T, out string) []taskInfo {
	t.Helper()
	var list []taskInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return list
}

func TestTaskCLIBadInput(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "shop")
	dir := filepath.Join(e.dir, "backups")
	cases := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"full cron", []string{"backup", "task", "add", "shop", "--full", "61 * * * *", "--to", dir}, 2,
			`--full "61 * * * *" is not a cron expression (end of range (61) above maximum (59): 61). Give five fields, minute hour day-of-month month day-of-week, such as "0 2 * * *", or a descriptor such as @daily or "@every 1h".`},
		{"incremental cron", []string{"backup", "task", "add", "shop", "--incremental", "every day", "--to", dir}, 2,
			`--incremental "every day" is not a cron expression (expected exactly 5 fields, found 2: [every day]).`},
		{"every", []string{"backup", "task", "add", "shop", "--full", "@every soon", "--to", dir}, 2,
			`--full "@every soon" is not a cron expression (failed to parse duration @every soon: time: invalid duration "soon").`},
		{"no schedule", []string{"backup", "task", "add", "shop", "--to", dir}, 2,
			"the task has no schedule. Give --full CRON, --incremental CRON or both (run it by hand with magpie backup task run)."},
		{"no destination", []string{"backup", "task", "add", "shop", "--full", "@daily"}, 2, "no destination was given. Give a folder or a URL with --to."},
		{"credentials in a url", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", "s3://AKIAX:s3cr3t@bucket/x"}, 2,
			"--to number 1: s3://REDACTED@bucket/x holds credentials, and magpie never stores credentials. Leave them out: magpie takes them from its environment (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...)."},
		{"short min age", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--min-age", "10s"}, 2,
			"--min-age: retention minimum age 10s is shorter than a minute, which would delete chains while they are still being extended. Give at least 1m."},
		{"bad min age", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--min-age", "a while"}, 2,
			`--min-age "a while" is not a duration. Give a .NET TimeSpan such as "30.00:00:00" (30 days) or a Go duration such as "720h".`},
		{"inside the data dir", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", filepath.Join(e.data, "b")}, 2,
			"--to " + filepath.Join(e.data, "b") + " is inside the data dir " + e.data + "; backups there would be taken for databases or deleted with them. Give a folder outside the data dir."},
		{"key without file", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--encryption", "key"}, 2,
			"--encryption key needs a key. Give --key-file FILE, a file holding the base64 text of 32 random bytes (magpie secrets generate makes one)."},
		{"database key of a plain database", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--encryption", "database"}, 1,
			"--encryption database needs an encrypted database, and shop is not encrypted. Use --encryption key --key-file FILE, --encryption recipients --recipient KEY, or --encryption none."},
		{"server key file without server", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--server-key-file", "/k"}, 2,
			"--server-key-file names a key file on the server's machine, for --server. Without --server, give --key-file."},
		{"unknown database", []string{"backup", "task", "add", "nope", "--full", "@daily", "--to", dir}, 1, "Database 'nope'"},
		{"run unknown task", []string{"backup", "task", "run", "shop", "9"}, 1, "backup task 9 does not exist in database shop. List its tasks with magpie backup task list shop.\n"},
		{"delete unknown task", []string{"backup", "task", "delete", "shop", "9"}, 1, "backup task 9 does not exist in database shop. List its tasks with magpie backup task list shop.\n"},
		{"update unknown task", []string{"backup", "task", "update", "shop", "9", "--disabled"}, 1, "backup task 9 does not exist in database shop. List its tasks with magpie backup task list shop.\n"},
		{"empty to", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", ""}, 2, "--to is empty. Give a folder or a URL (s3://, azblob://, gs://).\n"},
		{"blank schedule", []string{"backup", "task", "add", "shop", "--full", "   ", "--to", dir}, 2, "the task has no schedule."},
		{"file url inside the data dir", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", "file://" + filepath.Join(e.data, "b")}, 2,
			"--to file://" + filepath.Join(e.data, "b") + " is inside the data dir"},
		{"same folder twice", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--to", "file://" + dir}, 2,
			"destination " + dir + " is given twice. Give each destination once."},
		{"secret in a query parameter", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", "gs://b/x?access_token=s3cr3t"}, 2,
			`--to number 1: destination gs://b/x?access_token=REDACTED has the query parameter "access_token", which magpie does not know for gs://.`},
		{"secret in an endpoint", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", "s3://b/x?endpoint=http%3A%2F%2FAKIA%3As3cr3t%40host"}, 2,
			"--to number 1: destination s3://b/x?endpoint=REDACTED has an endpoint that is not a plain http:// or https:// URL (it may hold credentials, a query or no scheme)."},
		{"never due", []string{"backup", "task", "add", "shop", "--full", "0 0 30 2 *", "--to", dir}, 2, `--full "0 0 30 2 *" never falls due (no date matches it).`},
		{"every second or less", []string{"backup", "task", "add", "shop", "--incremental", "@every 0s", "--to", dir}, 2, `--incremental "@every 0s" is shorter than a second.`},
		{"min age overflow", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--min-age", "73025633904072"}, 2, `--min-age "73025633904072" is longer than 100 years.`},
		{"name not UTF-8", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--name", "a\xffb"}, 2, `--name "a\xffb" is not valid UTF-8. Give a name of printable characters.`},
		{"name with a newline", []string{"backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--name", "a\nb"}, 2, `the task's Name "a\nb" holds control characters`},
		{"bad task id", []string{"backup", "task", "run", "shop", "x"}, 2, `task id "x" is not a number above 0. Give the id that magpie backup task list shows.`},
		{"update without change", []string{"backup", "task", "update", "shop", "1"}, 2, "no change was given. Give the flags to change, e.g. --full CRON or --disabled."},
		{"full and incremental", []string{"backup", "task", "run", "shop", "1", "--full", "--incremental"}, 2, "--full and --incremental ask for different runs. Give one of them."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.run(c.args...)
			if r.code != c.code || !strings.HasPrefix(r.stderr, "magpie: error: "+c.err) {
				t.Fatalf("exit %d, stderr %q\nwant exit %d, stderr starting %q", r.code, r.stderr, c.code, "magpie: error: "+c.err)
			}
			if strings.Contains(r.stderr, "s3cr3t") {
				t.Fatal("a credential is in the error")
			}
		})
	}
	if out := e.ok("backup", "task", "list", "shop", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a refused task was stored: %s", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused task wrote into %s: %v", dir, err)
	}
}

// TestTaskCLIEmbedded manages a task on the data dir: add, list, run full
// and incremental, status, update, delete; and restores it with the
// database.
func TestTaskCLIEmbedded(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "shop")
	e.okStdin([]byte(`{"name":"Ada"}`), "docs", "put", "shop", "users/1", "-")
	dir := filepath.Join(e.dir, "backups")
	keyFile, key := e.keyFile("task.key")
	r := e.run("backup", "task", "add", "shop", "--name", "nightly", "--full", "0 3 * * *", "--incremental", "*/15 * * * *",
		"--to", dir, "--key-file", keyFile, "--keep-newest", "3", "--min-age", "30.00:00:00")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "added backup task 1 (nightly) of shop\n") ||
		!strings.Contains(r.stdout, "  encryption    key (file "+keyFile+")\n") ||
		!strings.Contains(r.stdout, "  retention     keep chains younger than 30.00:00:00 and keep the 3 newest chains\n") ||
		r.stderr != "magpie: note: "+taskScheduleNote+"\n" {
		t.Fatalf("add: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.ok("backup", "task", "list", "shop", "--json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	task := list[0]
	es := task["BackupEncryptionSettings"].(map[string]any)
	if task["TaskId"] != 1.0 || task["Name"] != "nightly" || task["FullBackupFrequency"] != "0 3 * * *" || task["IncrementalBackupFrequency"] != "*/15 * * * *" ||
		es["EncryptionMode"] != "UseProvidedKey" || es["MagpieKeyFile"] != keyFile || task["MagpieKeepNewest"] != 3.0 ||
		fmt.Sprint(task["MagpieDestinations"]) != "["+dir+"]" || task["Disabled"] != false {
		t.Fatalf("task %v", task)
	}
	if strings.Contains(e.ok("backup", "task", "list", "shop", "--json"), key.Base64()) {
		t.Fatal("the key is in the task")
	}

	out := e.ok("backup", "task", "run", "shop", "1")
	if !strings.HasPrefix(out, "full-backup of  shop (task 1)\n") || !strings.Contains(out, "\nencryption      key\n") {
		t.Fatalf("run: %s", out)
	}
	e.okStdin([]byte(`{"name":"Grace"}`), "docs", "put", "shop", "users/2", "-")
	out = e.ok("backup", "task", "run", "shop", "1", "--incremental")
	if !strings.HasPrefix(out, "incremental-backup of  shop (task 1)\n") {
		t.Fatalf("incremental run: %s", out)
	}
	if out := e.ok("backup", "task", "run", "shop", "1", "--incremental"); !strings.HasPrefix(out, "nothing changed in shop since ") {
		t.Fatalf("unchanged run: %s", out)
	}
	st := statusJSON(t, e.ok("backup", "status", "shop", "--json"))
	s := st[0].MagpieStatus
	if len(st) != 1 || s == nil || s.LastFullBackup == nil || s.LastIncrementalBackup == nil || *s.LastEtag != 2 || s.MagpieFailures != 0 || s.Error != nil ||
		st[0].NextBackup == nil || st[0].TaskState != "Enabled" {
		t.Fatalf("status %+v", st)
	}
	text := e.ok("backup", "status", "shop")
	for _, want := range []string{"task 1  nightly  (enabled, logical)\n", "  schedule          full 0 3 * * *, incremental */15 * * * *\n", "  last etag         2\n", "  retention         "} {
		if !strings.Contains(text, want) {
			t.Fatalf("status text lacks %q:\n%s", want, text)
		}
	}
	chains, _ := os.ReadDir(dir)
	if len(chains) != 1 {
		t.Fatalf("chains %v", chains)
	}
	m, err := backup.ReadLocalManifest(filepath.Join(dir, chains[0].Name()))
	if err != nil || len(m.Files) != 2 || m.Encryption != backup.ModeKey || m.KeyFingerprint != key.Fingerprint() {
		t.Fatalf("manifest %+v %v", m, err)
	}

	// The backup carries the task: a restore brings it back, enabled, or
	// disabled with --disable-tasks.
	out = e.ok("restore", dir, "--as", "copy", "--key-file", keyFile)
	if !strings.Contains(out, "backup tasks  1, as they were (they run under magpie serve; --disable-tasks brings them back disabled)\n") {
		t.Fatalf("restore: %s", out)
	}
	e.ok("restore", dir, "--as", "quiet", "--key-file", keyFile, "--disable-tasks")
	for db, state := range map[string]string{"copy": "Enabled", "quiet": "Disabled"} {
		st := statusJSON(t, e.ok("backup", "status", db, "--json"))
		if len(st) != 1 || st[0].TaskName != "nightly" || st[0].TaskState != state || st[0].MagpieStatus != nil {
			t.Fatalf("%s: tasks %+v", db, st)
		}
	}

	// Update: only what is given changes; a disabled task does not run.
	out = e.ok("backup", "task", "update", "shop", "1", "--disabled", "--incremental", "")
	if !strings.Contains(out, "  state         Disabled\n") || !strings.Contains(out, "  schedule      full 0 3 * * *\n") {
		t.Fatalf("update: %s", out)
	}
	r = e.run("backup", "task", "run", "shop", "1")
	if r.code != 1 || r.stderr != "magpie: error: backup task 1 of shop is disabled. Enable it with magpie backup task update shop 1 --disabled=false first.\n" {
		t.Fatalf("run of a disabled task: %d %q", r.code, r.stderr)
	}
	if out := e.ok("backup", "task", "delete", "shop", "1"); out != "deleted backup task 1 of shop (its backups stay where they are)\n" {
		t.Fatalf("delete: %q", out)
	}
	if out := e.ok("backup", "status", "shop"); out != "shop has no backup task. Add one with magpie backup task add.\n" {
		t.Fatalf("status after delete: %q", out)
	}
}

// TestTaskCLIServe: tasks added through --server run on their schedule
// under magpie serve (full, then incrementals), a disabled one never runs,
// and tasks and status survive a restart of the server.
func TestTaskCLIServe(t *testing.T) {
	r := startRemote(t)
	r.remoteOK("db", "create", "live")
	dir := filepath.Join(r.dir, "backups")
	off := filepath.Join(r.dir, "off")
	out := r.remoteOK("backup", "task", "add", "live", "--name", "often", "--full", "0 3 1 1 *", "--incremental", "@every 1s", "--to", dir)
	if !strings.HasPrefix(out, "added backup task 1 (often) of live\n") {
		t.Fatalf("add: %s", out)
	}
	r.remoteOK("backup", "task", "add", "live", "--name", "off", "--full", "@every 1s", "--to", off, "--disabled")
	res := r.remote("backup", "task", "add", "live", "--full", "@daily", "--to", "relative")
	if res.code != 2 || !strings.HasPrefix(res.stderr, `magpie: error: --to number 1: "relative" is not an absolute path.`) {
		t.Fatalf("relative --to with --server: %d %q", res.code, res.stderr)
	}

	waitStatus := func(what string, ok func(s taskInfo) bool) taskInfo {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st := statusJSON(t, r.remoteOK("backup", "status", "live", "--json"))
			if len(st) == 2 && st[0].MagpieStatus != nil && ok(st[0]) {
				if st[1].MagpieStatus != nil {
					t.Fatalf("the disabled task ran: %+v", st[1])
				}
				return st[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("still waiting for %s: %+v", what, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	full := waitStatus("a full backup", func(s taskInfo) bool { return s.MagpieStatus.LastFullBackup != nil })
	r.okStdin([]byte(`{"name":"Ada"}`), append(append([]string{}, r.certArgs...), "docs", "put", "live", "users/1", "-")...)
	incr := waitStatus("an incremental backup", func(s taskInfo) bool {
		return s.MagpieStatus.LastIncrementalBackup != nil && s.MagpieStatus.LastEtag != nil && *s.MagpieStatus.LastEtag == 1
	})
	if *incr.MagpieStatus.LastFullBackup != *full.MagpieStatus.LastFullBackup || incr.NextBackup == nil || incr.NextBackup.IsFull {
		t.Fatalf("status after the incremental %+v", incr.MagpieStatus)
	}
	_, metrics := httpDo(t, adminClient(t, r.env), "GET", r.s.url+"/metrics", nil)
	if !strings.Contains(metrics, `magpie_backup_task_runs_total{database="live",kind="full",result="success",task="1"} 1`) ||
		!strings.Contains(metrics, `magpie_backup_task_runs_total{database="live",kind="incremental",result="success",task="1"}`) {
		t.Fatalf("metrics lack the task's runs:\n%s", metrics)
	}

	// A restart keeps tasks and status; the schedule goes on.
	r.s.stop()
	// The status stays readable on the data dir itself.
	st := statusJSON(t, r.ok("backup", "status", "live", "--json"))
	if *st[0].MagpieStatus.LastFullBackup != *full.MagpieStatus.LastFullBackup {
		t.Fatalf("status on the data dir %+v", st[0].MagpieStatus)
	}
	r.s = startServe(t, r.env, nil)
	r.certArgs = []string{"--server", r.s.url, "--client-cert", r.cert, "--client-key", r.key, "--ca", r.ca}
	r.okStdin([]byte(`{"name":"Grace"}`), append(append([]string{}, r.certArgs...), "docs", "put", "live", "users/2", "-")...)
	again := waitStatus("an incremental after the restart", func(s taskInfo) bool {
		return s.MagpieStatus.LastEtag != nil && *s.MagpieStatus.LastEtag == 2
	})
	if *again.MagpieStatus.LastFullBackup != *full.MagpieStatus.LastFullBackup {
		t.Fatalf("a full backup ran after the restart: %+v", again.MagpieStatus)
	}
	r.s.stop()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("chains %v", entries)
	}
	if _, err := os.Stat(off); !os.IsNotExist(err) {
		t.Fatalf("the disabled task wrote: %v", err)
	}
}

// okStdin runs magpie with stdin and fails the test unless it exits 0.
func (e *env) okStdin(stdin []byte, args ...string) string {
	e.t.Helper()
	r := e.runStdin(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("magpie %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestTaskCLITypeChange: a logical task with gzip becomes a snapshot task
// without being told to drop its compression, and back.
func TestTaskCLITypeChange(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "shop")
	dir := filepath.Join(e.dir, "backups")
	e.ok("backup", "task", "add", "shop", "--full", "@daily", "--to", dir, "--compression", "gzip")
	e.ok("backup", "task", "update", "shop", "1", "--type", "snapshot")
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.ok("backup", "task", "list", "shop", "--json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if list[0]["BackupType"] != "Snapshot" || list[0]["MagpieCompression"] != nil {
		t.Fatalf("task after --type snapshot: %v", list[0])
	}
	r := e.run("backup", "task", "update", "shop", "1", "--type", "snapshot", "--compression", "zstd")
	if r.code != 2 || !strings.Contains(r.stderr, "a snapshot is not compressed") {
		t.Fatalf("snapshot with --compression: %d %s", r.code, r.stderr)
	}
	e.ok("backup", "task", "update", "shop", "1", "--type", "logical", "--compression", "gzip")
}

// TestStatusKeyNotHeld: backup status warns of a task whose key the server
// lost when it restarted, beside its otherwise healthy next run.
func TestStatusKeyNotHeld(t *testing.T) {
	for _, held := range []bool{true, false} {
		var b strings.Builder
		printStatus(&b, &sdk.BackupTaskInfo{TaskID: 3, TaskName: "keyed", TaskState: "Enabled", BackupType: "Backup",
			MagpieDestinations: []string{"/srv/backups"}, MagpieKeyInMemory: &held})
		warned := regexp.MustCompile(`(?m)^  WARNING +the server no longer holds the task's key \(it restarted\): its runs fail until you give it again with magpie backup task update --key-file$`).MatchString(b.String())
		if warned == held {
			t.Errorf("key held %v:\n%s", held, b.String())
		}
	}
}

// TestTaskRecipientsFileAbsolute: a recipients file named by a relative
// path is kept by its full path, since runs read it from wherever magpie
// serve was started.
func TestTaskRecipientsFileAbsolute(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "shop")
	id, _ := age.GenerateX25519Identity()
	file := filepath.Join(e.dir, "ops.recipients")
	os.WriteFile(file, []byte(id.Recipient().String()+"\n"), 0o600)
	cwd, _ := os.Getwd()
	rel, err := filepath.Rel(cwd, file)
	if err != nil || filepath.IsAbs(rel) {
		t.Skipf("no relative path to %s from %s", file, cwd)
	}
	e.ok("backup", "task", "add", "shop", "--full", "@daily", "--to", filepath.Join(e.dir, "b"), "--recipient", rel, "--recipient", id.Recipient().String())
	var list []struct {
		BackupEncryptionSettings struct{ MagpieRecipients []string }
	}
	out := e.ok("backup", "task", "list", "shop", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("task list: %v\n%s", err, out)
	}
	if got, want := list[0].BackupEncryptionSettings.MagpieRecipients, []string{file, id.Recipient().String()}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored recipients %v, want %v", got, want)
	}
}
