package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/tasks"
	"github.com/magpiedb/magpie/internal/testservers"
	"github.com/prometheus/client_golang/prometheus"
)

// status reads a task's status (nil before its first run).
func (f *backupFix) status(db string, id int) map[string]any {
	f.t.Helper()
	st, _ := f.mustCall(200, "GET", fmt.Sprintf("/periodic-backup/status?name=%s&taskId=%d", db, id), nil)["Status"].(map[string]any)
	return st
}

// waitStatus polls a task's status until ok says it is what the test waits
// for.
func (f *backupFix) waitStatus(db string, id int, what string, ok func(st map[string]any) bool) map[string]any {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := f.status(db, id)
		if st != nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("task %d of %s: still waiting for %s; status %v", id, db, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chains lists the chain folders of a local destination and the files
// their manifests name, in order.
func chains(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		m, err := backup.ReadLocalManifest(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("chain %s: %v", e.Name(), err)
		}
		for _, f := range m.Files {
			out[e.Name()] = append(out[e.Name()], f.Kind)
		}
	}
	return out
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
	metrics:
		for _, m := range fam.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// TestScheduledTask runs a task on an every-second schedule: the first run
// makes a full backup (there is no chain to extend), the next ones
// incrementals into the same chain; a disabled task never runs; the tasks
// and their status survive a restart.
func TestScheduledTask(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("sched", nil)
	reg := prometheus.NewRegistry()
	if err := f.srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	f.mustCall(200, "POST", "/databases/sched/admin/periodic-backup", map[string]any{
		"Name": "often", "FullBackupFrequency": "0 3 1 1 *", "IncrementalBackupFrequency": "@every 1s",
		"LocalSettings": map[string]any{"FolderPath": f.backups},
	})
	f.mustCall(200, "POST", "/databases/sched/admin/periodic-backup", map[string]any{
		"Name": "off", "Disabled": true, "FullBackupFrequency": "@every 1s", "IncrementalBackupFrequency": "@every 1s",
		"LocalSettings": map[string]any{"FolderPath": filepath.Join(f.root, "off")},
	})
	info := f.mustCall(200, "GET", "/databases/sched/task?key=1&type=Backup", nil)
	next, _ := info["NextBackup"].(map[string]any)
	if next == nil || next["IsFull"] != false || !wireDate.MatchString(next["DateTime"].(string)) || info["TaskState"] != "Enabled" {
		t.Fatalf("task before the scheduler %v", info)
	}
	f.srv.StartScheduler()

	db, _ := f.srv.openDB("sched")
	full := f.waitStatus("sched", 1, "a full backup", func(st map[string]any) bool { return st["LastFullBackup"] != nil })
	if _, err := db.Put("users/3", []byte(`{"name":"Edsger","@metadata":{"@collection":"Users"}}`)); err != nil {
		t.Fatal(err)
	}
	incr := f.waitStatus("sched", 1, "an incremental backup", func(st map[string]any) bool { return st["LastIncrementalBackup"] != nil })
	chain := full["LocalBackup"].(map[string]any)["BackupDirectory"].(string)
	local := incr["LocalBackup"].(map[string]any)
	if incr["IsFull"] != false || incr["Error"] != nil || incr["MagpieFailures"] != 0.0 || local["BackupDirectory"] != chain ||
		incr["LastEtag"] != float64(db.LastEtag()) || !wireDate.MatchString(incr["LastIncrementalBackup"].(string)) ||
		incr["LastFullBackup"] != full["LastFullBackup"] || local["IncrementalBackupDurationInMs"] == nil {
		t.Fatalf("status after an incremental %v", incr)
	}
	m, err := backup.ReadLocalManifest(chain)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) < 2 || m.Files[0].Kind != backup.KindFull || m.Files[1].Kind != backup.KindIncremental {
		t.Fatalf("chain %s holds %+v", chain, m.Files)
	}
	if incr["MagpieLastFullBackupSize"] != float64(m.Files[0].Size) || incr["MagpieLastFullBackupFile"] != filepath.Join(chain, m.Files[0].Name) {
		t.Fatalf("full backup of the status %v %v, manifest %+v", incr["MagpieLastFullBackupSize"], incr["MagpieLastFullBackupFile"], m.Files[0])
	}
	if n := counter(t, reg, "magpie_backup_task_runs_total", map[string]string{"database": "sched", "task": "1", "kind": "full", "result": "success"}); n != 1 {
		t.Fatalf("full runs %v", n)
	}
	if n := counter(t, reg, "magpie_backup_task_last_size_bytes", map[string]string{"database": "sched", "task": "1", "kind": "full"}); n != float64(m.Files[0].Size) {
		t.Fatalf("last full size %v", n)
	}
	// The disabled task never ran.
	if st := f.status("sched", 2); st != nil {
		t.Fatalf("the disabled task ran: %v", st)
	}
	if _, err := os.Stat(filepath.Join(f.root, "off")); !os.IsNotExist(err) {
		t.Fatalf("the disabled task wrote: %v", err)
	}
	if info := f.mustCall(200, "GET", "/databases/sched/task?key=2&type=Backup", nil); info["NextBackup"] != nil || info["TaskState"] != "Disabled" {
		t.Fatalf("disabled task %v", info)
	}

	// A restart keeps the tasks and their status, and the schedule goes
	// on in the same chain.
	f.restart()
	before := f.status("sched", 1)
	f.srv.StartScheduler()
	db, _ = f.srv.openDB("sched")
	if _, err := db.Put("users/4", []byte(`{"name":"Barbara","@metadata":{"@collection":"Users"}}`)); err != nil {
		t.Fatal(err)
	}
	etag := float64(db.LastEtag())
	after := f.waitStatus("sched", 1, "an incremental after the restart", func(st map[string]any) bool { return st["LastEtag"] == etag })
	if after["LastFullBackup"] != before["LastFullBackup"] || after["LocalBackup"].(map[string]any)["BackupDirectory"] != chain || after["Version"].(float64) <= before["Version"].(float64) {
		t.Fatalf("status after the restart %v, before %v", after, before)
	}
	f.srv.CancelOperations()
	if got := chains(t, f.backups); len(got) != 1 {
		t.Fatalf("chains %v", got)
	}
}

// TestTaskRetention deletes old chains after each successful run and says
// so in the status and the metrics.
func TestTaskRetention(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("ret", nil)
	reg := prometheus.NewRegistry()
	f.srv.RegisterMetrics(reg)
	other := filepath.Join(f.root, "other")
	f.mustCall(200, "POST", "/databases/ret/admin/periodic-backup", map[string]any{
		"LocalSettings": map[string]any{"FolderPath": f.backups}, "MagpieDestinations": []string{other}, "MagpieKeepNewest": 2,
	})
	f.mustCall(200, "POST", "/databases/ret/admin/periodic-backup", map[string]any{
		"LocalSettings": map[string]any{"FolderPath": filepath.Join(f.root, "young")}, "MagpieKeepNewest": 1,
		"RetentionPolicy": map[string]any{"Disabled": false, "MinimumBackupAgeToKeep": "1.00:00:00"},
	})
	run := func(task int) map[string]any {
		t.Helper()
		out := f.mustCall(200, "POST", fmt.Sprintf("/databases/ret/admin/backup/database?isFullBackup=true&taskId=%d", task), nil)
		st := f.wait("/databases/ret/operations/state", out["OperationId"])
		if st["Status"] != "Completed" {
			t.Fatalf("run: %v", st)
		}
		return st["Result"].(map[string]any)
	}
	var made []string
	for i := 0; i < 4; i++ {
		res := run(1)
		made = append(made, filepath.Base(res["LocalBackup"].(map[string]any)["BackupDirectory"].(string)))
	}
	// Two chains stay in each destination: the last two made.
	for _, dir := range []string{f.backups, other} {
		got := chains(t, dir)
		var names []string
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != made[2]+","+made[3] {
			t.Fatalf("%s holds %v, want %v", dir, names, made[2:])
		}
	}
	st := f.status("ret", 1)
	ret := st["MagpieRetention"].(map[string]any)
	deleted := ret["Deleted"].([]any)
	if len(deleted) != 2 || len(ret["Errors"].([]any)) != 0 || ret["Policy"].(map[string]any)["KeepNewest"] != 2.0 {
		t.Fatalf("retention status %v", ret)
	}
	for i, dir := range []string{f.backups, other} {
		d := deleted[i].(map[string]any)
		if d["Destination"] != dir || d["Chain"] != made[1] || d["Files"] != 2.0 || d["Bytes"].(float64) <= 0 ||
			!strings.HasPrefix(d["Reason"].(string), "newest file ") || !strings.HasSuffix(d["Reason"].(string), " old, beyond the 2 newest chains") {
			t.Fatalf("deleted %v", d)
		}
	}
	if n := counter(t, reg, "magpie_backup_task_pruned_chains_total", map[string]string{"database": "ret", "task": "1"}); n != 4 {
		t.Fatalf("pruned chains %v, want 4 (two runs, two destinations)", n)
	}
	// A minimum age keeps young chains whatever their number.
	run(2)
	res := run(2)
	if got := chains(t, filepath.Join(f.root, "young")); len(got) != 2 {
		t.Fatalf("young chains %v", got)
	}
	if d := res["MagpieRetention"].(map[string]any)["Deleted"].([]any); len(d) != 0 {
		t.Fatalf("retention deleted young chains %v", d)
	}
}

// TestTaskDestinationDown: a run whose destination is down fails cleanly
// (nothing looks complete), the status says why, and the next scheduled
// run after the destination recovers succeeds and clears the error.
func TestTaskDestinationDown(t *testing.T) {
	s3 := testservers.StartS3(t)
	proxy := testservers.NewFaultProxy(t, s3.Addr)
	// One attempt per request: the SDK's retries are the destination's
	// business (tested there); this test is about the task.
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	f := newBackupFix(t)
	f.createDB("down", nil)
	proxy.Down()
	f.mustCall(200, "POST", "/databases/down/admin/periodic-backup", map[string]any{
		"IncrementalBackupFrequency": "@every 1s",
		"S3Settings":                 map[string]any{"BucketName": s3.Bucket, "RemoteFolderName": "down", "CustomServerUrl": "http://" + proxy.Addr(), "ForcePathStyle": true},
	})
	f.srv.StartScheduler()
	failed := f.waitStatus("down", 1, "a failure", func(st map[string]any) bool { return st["Error"] != nil })
	msg := failed["Error"].(map[string]any)["Exception"].(string)
	if failed["MagpieFailures"].(float64) < 1 || failed["LastFullBackup"] != nil || !strings.Contains(msg, "s3://"+s3.Bucket+"/down") {
		t.Fatalf("status of a failed run %v", failed)
	}
	if info := f.mustCall(200, "GET", "/databases/down/task?key=1&type=Backup", nil); info["Error"] != msg {
		t.Fatalf("task info %v", info)
	}
	proxy.Up()
	ok := f.waitStatus("down", 1, "a success", func(st map[string]any) bool { return st["LastFullBackup"] != nil })
	if ok["Error"] != nil || ok["MagpieFailures"] != 0.0 {
		t.Fatalf("status after recovery %v", ok)
	}
	f.srv.CancelOperations()
	// Only the complete chain is in the bucket: the failed runs left
	// nothing a reader takes for a backup.
	st, err := destination.Open(context.Background(), s3.Location("down"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	found, err := backup.FindChains(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !found[0].Complete() || found[0].Name != ok["FolderName"] {
		t.Fatalf("chains in the bucket %+v", found)
	}
}

// TestTaskTwoDestinations: a local folder and an S3 bucket (RavenDB's
// S3Settings) receive the same bytes.
func TestTaskTwoDestinations(t *testing.T) {
	s3 := testservers.StartS3(t)
	f := newBackupFix(t)
	f.createDB("two", nil)
	f.mustCall(200, "POST", "/databases/two/admin/periodic-backup", map[string]any{
		"LocalSettings":            map[string]any{"FolderPath": f.backups},
		"S3Settings":               map[string]any{"BucketName": s3.Bucket, "RemoteFolderName": "nightly/two", "CustomServerUrl": "http://" + s3.Addr, "ForcePathStyle": true},
		"BackupEncryptionSettings": map[string]any{"MagpieRecipients": []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}},
	})
	out := f.mustCall(200, "POST", "/databases/two/admin/backup/database?isFullBackup=true&taskId=1", nil)
	st := f.wait("/databases/two/operations/state", out["OperationId"])
	if st["Status"] != "Completed" {
		t.Fatalf("run %v", st)
	}
	res := st["Result"].(map[string]any)
	locs := res["MagpieLocations"].([]any)
	chain := filepath.Base(res["LocalBackup"].(map[string]any)["BackupDirectory"].(string))
	wantS3 := "s3://" + s3.Bucket + "/nightly/two/" + chain
	if len(locs) != 2 || !strings.HasPrefix(locs[1].(string), "s3://"+s3.Bucket+"/nightly/two") || !strings.Contains(locs[1].(string), chain) {
		t.Fatalf("locations %v, want the second like %s", locs, wantS3)
	}
	remote, err := destination.Open(context.Background(), s3.Location("nightly/two"))
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	file := res["LocalBackup"].(map[string]any)["FileName"].(string)
	for _, name := range []string{file, backup.ManifestName} {
		local, err := os.ReadFile(filepath.Join(f.backups, chain, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := remote.Open(context.Background(), chain+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, local) || len(local) == 0 {
			t.Fatalf("%s: %d bytes in S3, %d locally (%v)", name, len(got), len(local), err)
		}
	}
	if !backup.IsAge(mustRead(t, filepath.Join(f.backups, chain, file))) {
		t.Fatal("the backup is not an age file")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTasksRestored: a database's tasks come back with it from a logical
// backup and from a snapshot, enabled, or disabled with
// DisableOngoingTasks; the restored database starts with no status.
func TestTasksRestored(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("src", nil)
	f.mustCall(200, "POST", "/databases/src/admin/periodic-backup", map[string]any{
		"Name": "logical", "FullBackupFrequency": "0 3 * * *", "LocalSettings": map[string]any{"FolderPath": filepath.Join(f.backups, "logical")},
		"RetentionPolicy": map[string]any{"Disabled": false, "MinimumBackupAgeToKeep": "7.00:00:00"}, "MagpieCompression": "gzip",
	})
	f.mustCall(200, "POST", "/databases/src/admin/periodic-backup", map[string]any{
		"Name": "snap", "BackupType": "Snapshot", "IncrementalBackupFrequency": "*/30 * * * *", "LocalSettings": map[string]any{"FolderPath": filepath.Join(f.backups, "snap")},
	})
	for _, id := range []int{1, 2} {
		out := f.mustCall(200, "POST", fmt.Sprintf("/databases/src/admin/backup/database?isFullBackup=true&taskId=%d", id), nil)
		if st := f.wait("/databases/src/operations/state", out["OperationId"]); st["Status"] != "Completed" {
			t.Fatalf("backup %d: %v", id, st)
		}
	}
	want := f.mustCall(200, "GET", "/databases/src/tasks", nil)["OngoingTasks"].([]any)
	for _, c := range []struct {
		name, from string
		disable    bool
		state      string
	}{
		{"fromlogical", "logical", false, "Enabled"},
		{"fromsnap", "snap", false, "Enabled"},
		{"quiet", "logical", true, "Disabled"},
		{"quietsnap", "snap", true, "Disabled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := f.mustCall(200, "POST", "/admin/restore/database", map[string]any{
				"DatabaseName": c.name, "BackupLocation": filepath.Join(f.backups, c.from), "DisableOngoingTasks": c.disable,
			})
			st := f.wait("/operations/state", out["OperationId"])
			res, _ := st["Result"].(map[string]any)
			wantDisabled := 0.0
			if c.disable {
				wantDisabled = 2
			}
			if st["Status"] != "Completed" || res["MagpieBackupTasks"] != 2.0 || res["MagpieDisabledTasks"] != wantDisabled {
				t.Fatalf("restore %v", st)
			}
			got := f.mustCall(200, "GET", "/databases/"+c.name+"/tasks", nil)["OngoingTasks"].([]any)
			if len(got) != 2 {
				t.Fatalf("restored tasks %v", got)
			}
			for i := range got {
				g, w := got[i].(map[string]any), want[i].(map[string]any)
				gc, wc := g["MagpieConfiguration"].(map[string]any), w["MagpieConfiguration"].(map[string]any)
				wc["Disabled"] = c.disable
				if fmt.Sprint(gc) != fmt.Sprint(wc) || g["TaskState"] != c.state || g["MagpieStatus"] != nil || g["LastFullBackup"] != nil {
					t.Fatalf("restored task\n%v\nwant configuration\n%v", g, wc)
				}
			}
		})
	}
}

// TestScheduledRunCanceled: stopping the server ends a scheduled run that
// is writing; it leaves nothing complete-looking, and its status says it
// was canceled.
func TestScheduledRunCanceled(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("stop", nil)
	started := make(chan struct{}, 1)
	testHookBackup = func(ctx context.Context) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
	}
	defer func() { testHookBackup = nil }()
	f.mustCall(200, "POST", "/databases/stop/admin/periodic-backup", map[string]any{
		"FullBackupFrequency": "@every 1s", "LocalSettings": map[string]any{"FolderPath": f.backups},
	})
	f.srv.StartScheduler()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the scheduled run did not start")
	}
	info := f.mustCall(200, "GET", "/databases/stop/task?key=1&type=Backup", nil)
	if on, _ := info["OnGoingBackup"].(map[string]any); on == nil || on["IsFull"] != true {
		t.Fatalf("running task %v", info)
	}
	f.srv.CancelOperations()
	st := f.status("stop", 1)
	if st == nil || !strings.Contains(st["Error"].(map[string]any)["Exception"].(string), "the server is shutting down") {
		t.Fatalf("status of the canceled run %v", st)
	}
	if entries, _ := os.ReadDir(f.backups); len(entries) != 0 {
		t.Fatalf("a canceled run left %v", entries)
	}
}

// TestTaskChangedWhileRunning: a run that started before its task's
// encryption changed still leaves the task needing a full backup, so that
// no incremental of the new settings extends the old chain.
func TestTaskChangedWhileRunning(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("busy", nil)
	f.mustCall(200, "POST", "/databases/busy/admin/periodic-backup", map[string]any{
		"LocalSettings": map[string]any{"FolderPath": f.backups},
	})
	started, release := make(chan struct{}, 1), make(chan struct{})
	testHookBackup = func(ctx context.Context) {
		started <- struct{}{}
		<-release
	}
	defer func() { testHookBackup = nil }()
	out := f.mustCall(200, "POST", "/databases/busy/admin/backup/database?isFullBackup=true&taskId=1", nil)
	<-started
	key, _ := keys.Generate()
	f.mustCall(200, "POST", "/databases/busy/admin/periodic-backup", map[string]any{
		"TaskId": 1, "LocalSettings": map[string]any{"FolderPath": f.backups},
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "UseProvidedKey", "Key": key.Base64()},
	})
	close(release)
	if st := f.wait("/databases/busy/operations/state", out["OperationId"]); st["Status"] != "Completed" {
		t.Fatalf("run: %v", st)
	}
	testHookBackup = nil
	if st := f.status("busy", 1); st["MagpieNeedsFullBackup"] != true {
		t.Fatalf("status after a run of the old settings: %v", st)
	}
	// An incremental asked for now makes a full backup in a new chain,
	// encrypted with the new key.
	out = f.mustCall(200, "POST", "/databases/busy/admin/backup/database?isFullBackup=false&taskId=1", nil)
	st := f.wait("/databases/busy/operations/state", out["OperationId"])
	res, _ := st["Result"].(map[string]any)
	if st["Status"] != "Completed" || res["MagpieKind"] != "full-backup" || res["MagpieEncryption"] != "key" {
		t.Fatalf("incremental after the change: %v", st)
	}
	if got := chains(t, f.backups); len(got) != 2 {
		t.Fatalf("chains %v, want the old one and a new one", got)
	}
}

// TestDestinationInDataDirRefused: neither a one-time backup nor a task
// may write into the server's data dir.
func TestDestinationInDataDirRefused(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("d", nil)
	inside := filepath.Join(f.data.Path(), "databases")
	want := "The destination " + inside + " is inside the server's data dir " + f.data.Path() + "; backups there would be taken for databases or deleted with them. Give a folder outside the data dir."
	for _, c := range []struct{ target string }{{"/databases/d/admin/backup"}, {"/databases/d/admin/periodic-backup"}} {
		code, out := f.call("POST", c.target, map[string]any{"FullBackupFrequency": "@daily", "MagpieDestinations": []string{"file://" + inside}})
		if code != 400 || out["Error"] != want {
			t.Errorf("%s: %d %v", c.target, code, out)
		}
	}
	if list := f.mustCall(200, "GET", "/databases/d/tasks", nil)["OngoingTasks"]; list != nil && len(list.([]any)) != 0 {
		t.Fatalf("a refused task was stored: %v", list)
	}
}

// TestTasksNotChecked: tasks that reach a database without the checks of
// UpdatePeriodicBackupOperation (restored from a backup of another server
// or an older magpie) are checked where it matters: a schedule that does
// not parse is reported, not silently never run, and a destination in
// this server's data dir is refused when the task runs.
func TestTasksNotChecked(t *testing.T) {
	f := newBackupFix(t)
	f.createDB("d", nil)
	db, err := f.srv.openDB("d")
	if err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(f.data.Path(), "databases", "x")
	err = tasks.Save(db, []*tasks.Config{
		{TaskID: 1, Name: "bad schedule", FullBackupFrequency: "TZ=UTC", LocalSettings: &tasks.LocalSettings{FolderPath: f.backups}},
		{TaskID: 2, Name: "inside", FullBackupFrequency: "@daily", LocalSettings: &tasks.LocalSettings{FolderPath: inside}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.restart()
	info := f.mustCall(200, "GET", "/databases/d/task?key=1&type=Backup", nil)
	if want := `FullBackupFrequency "TZ=UTC" is not a cron expression (it names a time zone and no schedule).`; !strings.HasPrefix(fmt.Sprint(info["Error"]), want) || info["NextBackup"] != nil {
		t.Errorf("task with a bad schedule: Error %q, NextBackup %v; want the error to start %q", info["Error"], info["NextBackup"], want)
	}
	code, out := f.call("POST", "/databases/d/admin/backup/database?isFullBackup=true&taskId=2", nil)
	if want := "The destination " + inside + " is inside the server's data dir " + f.data.Path() + "; backups there would be taken for databases or deleted with them. Give a folder outside the data dir."; code != 400 || out["Error"] != want {
		t.Errorf("run of a task into the data dir: %d %v; want 400 %q", code, out, want)
	}
	if _, err := os.Stat(inside); err == nil {
		t.Error("the refused run created its destination")
	}
}
