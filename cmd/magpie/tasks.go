package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	sdk "github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/server"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/magpiedb/magpie/internal/tasks"
	"github.com/spf13/cobra"
)

// Backup tasks on the command line. With --server the commands go through
// that server's API; without it, through the same API served in process
// over the local data dir, so that both check, store and answer alike.
// Schedules run only under magpie serve.

const taskScheduleNote = "Schedules run only while `magpie serve` runs on the data dir (a run that fell due while it was stopped runs when it starts); `magpie backup task run` runs a task now."

// taskScheduleHelp is taskScheduleNote wrapped for --help.
const taskScheduleHelp = `Schedules run only while ` + "`magpie serve`" + ` runs on the data dir (a run
that fell due while it was stopped runs when it starts); ` + "`magpie backup\ntask run`" + ` runs a task now.`

func newBackupTaskCmd(g *globals) *cobra.Command {
	cmd := groupCmd("task", "Manage backup tasks: backups on a schedule", newTaskAddCmd(g), newTaskListCmd(g), newTaskUpdateCmd(g), newTaskDeleteCmd(g), newTaskRunCmd(g))
	cmd.Long = `Backup tasks make full and incremental backups of a database on cron
schedules, into one or more destinations, and apply a retention to them.
A task is part of the database (its record), so it survives restarts and
comes back with a restored database.

` + taskScheduleNote
	return cmd
}

// taskFlags are the flags of task add and update.
type taskFlags struct {
	name, full, incremental, typ, mode, keyFile, serverKeyFile, minAge, compression string
	to, recipients                                                                  []string
	keepNewest                                                                      int
	disabled, asJSON                                                                bool
}

func (f *taskFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the task's name (unique in the database; default \"Backup #ID\")")
	fl.StringVar(&f.full, "full", "", `schedule of full backups: a cron expression ("0 2 * * *": minute hour day-of-month month day-of-week) or "@daily", "@every 6h"`)
	fl.StringVar(&f.incremental, "incremental", "", "schedule of incremental backups, as --full")
	fl.StringArrayVar(&f.to, "to", nil, "folder or s3://, azblob://, gs:// URL that receives the backups (repeatable; with --server, on the server's machine)")
	fl.StringVar(&f.typ, "type", "logical", "logical or snapshot")
	fl.StringVar(&f.mode, "encryption", "", "none, database, key or recipients (default: database for an encrypted database, else none)")
	fl.StringVar(&f.keyFile, "key-file", "", "key for --encryption key; the task reads this file at every run (with --server: read here and sent, kept in the server's memory only)")
	fl.StringVar(&f.serverKeyFile, "server-key-file", "", "with --server: the key file on the server's machine, read at every run")
	fl.StringArrayVar(&f.recipients, "recipient", nil, "age or SSH public key, or a file of them, for --encryption recipients (repeatable)")
	fl.IntVar(&f.keepNewest, "keep-newest", 0, "keep this many newest chains in each destination (0: no limit by count)")
	fl.StringVar(&f.minAge, "min-age", "", `keep chains whose newest file is younger than this ("720h", or RavenDB's "30.00:00:00"; empty or 0: no limit by age)`)
	fl.StringVar(&f.compression, "compression", "", "zstd (default) or gzip, for logical backups")
	fl.BoolVar(&f.disabled, "disabled", false, "the task does not run on its schedule (--disabled=false enables it)")
	addJSONFlag(cmd, &f.asJSON)
}

// anyChange reports whether a flag that changes a task was given.
func (f *taskFlags) anyChange(cmd *cobra.Command) bool {
	for _, name := range []string{"name", "full", "incremental", "to", "type", "encryption", "key-file", "server-key-file", "recipient", "keep-newest", "min-age", "compression", "disabled"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// apply sets on t what the flags given say.
func (f *taskFlags) apply(cmd *cobra.Command, g *globals, t *sdk.BackupTask) error {
	ch := cmd.Flags().Changed
	if ch("name") {
		// JSON would turn invalid UTF-8 into U+FFFD on the way to the
		// server, which then could not refuse it.
		if !utf8.ValidString(f.name) {
			return usagef("--name %q is not valid UTF-8. Give a name of printable characters", f.name)
		}
		t.Name = f.name
	}
	if ch("full") {
		t.FullBackupFrequency = strings.TrimSpace(f.full)
	}
	if ch("incremental") {
		t.IncrementalBackupFrequency = strings.TrimSpace(f.incremental)
	}
	if ch("disabled") {
		t.Disabled = f.disabled
	}
	if ch("type") || t.BackupType == "" {
		switch f.typ {
		case "logical":
			t.BackupType = "Backup"
		case "snapshot":
			t.BackupType = "Snapshot"
			// A snapshot is not compressed: a logical task's
			// compression goes when it becomes a snapshot.
			if !ch("compression") {
				t.MagpieCompression = ""
			}
		default:
			return usagef("backup type %q is not known: use logical or snapshot", f.typ)
		}
	}
	if ch("compression") {
		if f.compression != "zstd" && f.compression != "gzip" {
			return usagef("compression %q is not known: use zstd or gzip", f.compression)
		}
		t.MagpieCompression = f.compression
	}
	if ch("to") {
		t.LocalSettings, t.S3Settings, t.AzureSettings, t.GoogleCloudSettings = nil, nil, nil, nil
		t.MagpieDestinations = nil
		for _, to := range f.to {
			if strings.TrimSpace(to) == "" {
				return usagef("--to is empty. Give a folder or a URL (s3://, azblob://, gs://)")
			}
			if !destination.IsURL(to) {
				if err := destination.CheckNotURL(to); err != nil {
					return usagef("%v", err)
				}
			}
			if !g.isRemote() && insideDataDir(g, to) {
				return usagef("--to %s is inside the data dir %s; backups there would be taken for databases or deleted with them. Give a folder outside the data dir", to, g.dataDir)
			}
			if !g.isRemote() && !destination.IsURL(to) {
				abs, err := filepath.Abs(to)
				if err != nil {
					return err
				}
				if insideDataDir(g, abs) {
					return usagef("--to %s is inside the data dir %s; backups there would be taken for databases or deleted with them. Give a folder outside the data dir", to, g.dataDir)
				}
				to = abs
			}
			t.MagpieDestinations = append(t.MagpieDestinations, to)
		}
	}
	if ch("keep-newest") {
		t.MagpieKeepNewest = f.keepNewest
	}
	if ch("min-age") {
		if age := strings.TrimSpace(f.minAge); age == "" || age == "0" {
			t.RetentionPolicy = &sdk.RetentionPolicy{Disabled: true}
		} else {
			t.RetentionPolicy = &sdk.RetentionPolicy{MinimumBackupAgeToKeep: &age}
		}
	}
	return f.applyEncryption(cmd, g, t)
}

func (f *taskFlags) applyEncryption(cmd *cobra.Command, g *globals, t *sdk.BackupTask) error {
	ch := cmd.Flags().Changed
	if !ch("encryption") && !ch("key-file") && !ch("server-key-file") && !ch("recipient") {
		return nil
	}
	if f.keyFile != "" && f.serverKeyFile != "" {
		return usagef("--key-file and --server-key-file both name the task's key. Give one of them")
	}
	if f.serverKeyFile != "" && !g.isRemote() {
		return usagef("--server-key-file names a key file on the server's machine, for --server. Without --server, give --key-file")
	}
	es := t.BackupEncryptionSettings
	if es == nil || ch("encryption") {
		es = &sdk.EncryptionSettings{}
	}
	if ch("encryption") {
		m, ok := ravenModes[f.mode]
		if !ok || f.mode == "" {
			return usagef("encryption mode %q is not known: use none, database, key or recipients", f.mode)
		}
		es.EncryptionMode = m
	}
	if ch("recipient") {
		es.MagpieRecipients = nil
		for _, v := range f.recipients {
			// A recipients file is read at every run, maybe by a
			// server started elsewhere: keep its full path.
			t := strings.TrimSpace(v)
			if _, err := os.Stat(t); err == nil && !g.isRemote() && !filepath.IsAbs(t) {
				abs, err := filepath.Abs(t)
				if err != nil {
					return err
				}
				v = abs
			}
			es.MagpieRecipients = append(es.MagpieRecipients, v)
		}
	}
	switch {
	case f.serverKeyFile != "":
		if !filepath.IsAbs(f.serverKeyFile) {
			return usagef("--server-key-file %s is not an absolute path; it names a file on the server's machine. Give its full path", f.serverKeyFile)
		}
		es.MagpieKeyFile, es.Key, es.MagpieKeyFingerprint = f.serverKeyFile, "", ""
	case f.keyFile != "" && g.isRemote():
		k, err := keys.ReadFile(f.keyFile)
		if err != nil {
			return err
		}
		es.Key, es.MagpieKeyFile = k.Base64(), ""
		fmt.Fprintf(cmd.ErrOrStderr(), "magpie: note: the server keeps the task's key in memory only: after it restarts the task cannot run until the key is given again. To avoid that, give --server-key-file, a key file on the server's machine.\n")
	case f.keyFile != "":
		// The data dir is on this machine: the task reads the file at
		// every run, so the key is never stored.
		abs, err := filepath.Abs(f.keyFile)
		if err != nil {
			return err
		}
		if _, err := keys.ReadFile(abs); err != nil {
			return err
		}
		es.MagpieKeyFile, es.Key, es.MagpieKeyFingerprint = abs, "", ""
	}
	if es.EncryptionMode == "UseProvidedKey" && es.Key == "" && es.MagpieKeyFile == "" && es.MagpieKeyFingerprint == "" {
		return usagef("--encryption key needs a key. Give --key-file FILE, a file holding the base64 text of 32 random bytes (magpie secrets generate makes one)")
	}
	t.BackupEncryptionSettings = es
	return nil
}

// checkTask checks a task before it is sent, so that a flag that makes no
// sense is a usage error (exit 2) named as the flag.
func checkTask(t *sdk.BackupTask) error {
	if t.FullBackupFrequency == "" && t.IncrementalBackupFrequency == "" {
		return usagef("the task has no schedule. Give --full CRON, --incremental CRON or both (run it by hand with magpie backup task run)")
	}
	if t.BackupType == "Snapshot" && t.MagpieCompression != "" {
		return usagef("a snapshot is not compressed (its files are compressed tables or ciphertext already). Leave out --compression")
	}
	body, err := json.Marshal(t)
	if err != nil {
		return err
	}
	c, _, err := tasks.Parse(body)
	if err == nil {
		err = c.Check()
	}
	if err != nil {
		return &usageError{msg: taskWording.Replace(err.Error())}
	}
	return nil
}

// taskWording rewords the API's field names in task errors as the flags.
var taskWording = strings.NewReplacer(
	"Give it again with UpdatePeriodicBackupOperation (BackupEncryptionSettings.Key), or give the task a MagpieKeyFile on the server's machine",
	"Give it again with magpie backup task update --key-file FILE, or give the task a key file on the server's machine with --server-key-file PATH",
	"or update that task (TaskId ", "or update that task (task ",
	"FullBackupFrequency", "--full",
	"IncrementalBackupFrequency", "--incremental",
	"RetentionPolicy.MinimumBackupAgeToKeep", "--min-age",
	"MagpieKeepNewest", "--keep-newest",
	"MagpieDestinations entry", "--to number",
	"LocalSettings.FolderPath is missing and no other destination was given. Give the folder on the server's machine that receives the backups, or S3Settings, AzureSettings, GoogleCloudSettings or MagpieDestinations",
	"no destination was given. Give a folder or a URL with --to",
	"EncryptionMode UseProvidedKey needs BackupEncryptionSettings.Key: the base64 text of 32 random bytes (GET /admin/secrets/generate makes one), or MagpieKeyFile, the path of a key file on the server's machine",
	"--encryption key needs a key. Give --key-file FILE, a file holding the base64 text of 32 random bytes (magpie secrets generate makes one), or with --server --server-key-file PATH",
	"BackupEncryptionSettings.MagpieKeyFile", "--key-file",
	"BackupEncryptionSettings.Key", "--key-file",
	"BackupEncryptionSettings.MagpieRecipients", "--recipient",
	"MagpieRecipients entry ", "--recipient number ",
	"BackupEncryptionSettings", "--encryption",
	"EncryptionMode UseProvidedKey", "--encryption key",
	"EncryptionMode UseDatabaseKey", "--encryption database",
	"EncryptionMode MagpieRecipients", "--encryption recipients",
	"EncryptionMode None", "--encryption none",
	"Use UseProvidedKey with a Key, MagpieRecipients, or None", "Use --encryption key --key-file FILE, --encryption recipients --recipient KEY, or --encryption none",
	"(GET /admin/secrets/generate makes one)", "(magpie secrets generate makes one)",
	"MagpieCompression", "--compression",
	"BackupType", "--type",
	"Enable it (Disabled: false) with UpdatePeriodicBackupOperation first", "Enable it with magpie backup task update --disabled=false first",
	"Create it with UpdatePeriodicBackupOperation", "Create it with magpie backup task add",
	"UpdatePeriodicBackupOperation", "magpie backup task update",
	"TaskId 0", "magpie backup task add",
)

// withTasks runs fn with a client of --server or, without it, of the API
// served in process over the data dir (schedules do not run there).
func (g *globals) withTasks(cmd *cobra.Command, fn func(ctx context.Context, c *sdk.Client) error) error {
	if g.isRemote() {
		return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
			return taskError(fn(ctx, c))
		})
	}
	d, err := g.openDataDir(false)
	if err != nil {
		return err
	}
	defer d.Close()
	srv := server.New(server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, d)
	defer srv.Close()
	defer srv.CancelOperations()
	c, err := sdk.New("http://in-process", sdk.Options{HTTPClient: &http.Client{Transport: inProcess{srv.Handler()}}, PollInterval: 10 * time.Millisecond})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = fn(ctx, c)
	if err != nil && ctx.Err() != nil && cmd.Context().Err() == nil {
		return errors.New("interrupted: the backup was stopped and removed what it had written. Run it again when you are ready")
	}
	return taskError(err)
}

// inTask rewords the errors about task id of database db with both
// named, so that the hint can be run as it is.
func inTask(err error, db string, id int64) error {
	var ce *sdk.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch msg := ce.Message; {
	case strings.Contains(msg, fmt.Sprintf("ackup task %d does not exist", id)) || strings.Contains(msg, fmt.Sprintf("has no backup task %d", id)):
		return fmt.Errorf("backup task %d does not exist in database %s. List its tasks with magpie backup task list %s", id, db, db)
	case strings.Contains(msg, "is disabled."):
		return fmt.Errorf("backup task %d of %s is disabled. Enable it with magpie backup task update %s %d --disabled=false first", id, db, db, id)
	}
	return err
}

// inProcess is an http.RoundTripper that serves requests with a handler
// in this process.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// taskError rewords the server's task errors for the command line.
func taskError(err error) error {
	var ce *sdk.Error
	if errors.As(err, &ce) {
		msg := taskWording.Replace(ce.Message)
		if ce.Status == http.StatusServiceUnavailable && strings.HasPrefix(msg, "Database '") {
			msg = strings.TrimSuffix(msg, ".") + ". List the databases with `magpie db list`"
		}
		return errors.New(msg)
	}
	return err
}

func parseTaskID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("task id %q is not a number above 0. Give the id that magpie backup task list shows", s)
	}
	return id, nil
}

func newTaskAddCmd(g *globals) *cobra.Command {
	var f taskFlags
	cmd := &cobra.Command{
		Use:   "add DB [--full CRON] [--incremental CRON] --to DIR|URL ... [--name N]",
		Short: "Add a backup task to a database",
		Long: `Add a backup task: full backups on the --full schedule start a new chain,
incremental backups on the --incremental schedule extend the newest one
(a full backup when there is none). Schedules are five-field cron
expressions (minute hour day-of-month month day-of-week, in the server's
time zone) or descriptors: @hourly, @daily, @weekly, @every 6h.

Every --to receives the same bytes: a folder or an s3://, azblob://, gs://
URL (docs/DESTINATIONS.md); storage credentials come from the environment
of the process that runs the backup, never from the task.

Encryption is as for magpie backup run. --key-file makes the task read
that key file at every run (the key itself is never stored); with
--server, --key-file is read here and sent, and the server keeps the key
in memory only: use --server-key-file, a file on the server's machine, for
a task that must survive restarts.

Retention, applied in every destination after each successful run: keep
the --keep-newest newest chains and those younger than --min-age.

` + taskScheduleHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(f.to) == 0 {
				return usagef("no destination was given. Give a folder or a URL with --to")
			}
			var t sdk.BackupTask
			if err := f.apply(cmd, g, &t); err != nil {
				return err
			}
			if err := checkTask(&t); err != nil {
				return err
			}
			return g.withTasks(cmd, func(ctx context.Context, c *sdk.Client) error {
				id, err := c.PutBackupTask(ctx, args[0], t)
				if err != nil {
					return err
				}
				return printTaskSaved(cmd, g, ctx, c, args[0], id, "added", f.asJSON)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func newTaskUpdateCmd(g *globals) *cobra.Command {
	var f taskFlags
	cmd := &cobra.Command{
		Use:   "update DB ID [flags of add]",
		Short: "Change a backup task: only the flags given change",
		Long: `Change backup task ID of DB: the flags given replace what the task has
(--to replaces all its destinations), the others stay. A change of type,
encryption or destinations makes the next run a full backup, which starts
a new chain.

` + taskScheduleHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskID(args[1])
			if err != nil {
				return err
			}
			if !f.anyChange(cmd) {
				return usagef("no change was given. Give the flags to change, e.g. --full CRON or --disabled")
			}
			return g.withTasks(cmd, func(ctx context.Context, c *sdk.Client) error {
				info, err := c.BackupTask(ctx, args[0], id)
				if err != nil {
					return inTask(err, args[0], id)
				}
				t := info.MagpieConfiguration
				if err := f.apply(cmd, g, &t); err != nil {
					return err
				}
				if err := checkTask(&t); err != nil {
					return err
				}
				if _, err := c.PutBackupTask(ctx, args[0], t); err != nil {
					return err
				}
				return printTaskSaved(cmd, g, ctx, c, args[0], id, "updated", f.asJSON)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func printTaskSaved(cmd *cobra.Command, g *globals, ctx context.Context, c *sdk.Client, db string, id int64, what string, asJSON bool) error {
	info, err := c.BackupTask(ctx, db, id)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd, info.MagpieConfiguration)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s backup task %d (%s) of %s\n", what, id, info.TaskName, db)
	printTaskRows(cmd.OutOrStdout(), info)
	if !g.isRemote() {
		fmt.Fprintf(cmd.ErrOrStderr(), "magpie: note: %s\n", taskScheduleNote)
	}
	return nil
}

// printTaskRows describes a task's configuration and next run.
func printTaskRows(w io.Writer, info *sdk.BackupTaskInfo) {
	t := info.MagpieConfiguration
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  state\t%s\n  type\t%s\n", info.TaskState, taskType(t.BackupType))
	fmt.Fprintf(tw, "  schedule\t%s\n", schedule(t))
	fmt.Fprintf(tw, "  destinations\t%s\n", strings.Join(info.MagpieDestinations, ", "))
	fmt.Fprintf(tw, "  encryption\t%s\n", taskEncryption(info))
	fmt.Fprintf(tw, "  retention\t%s\n", retention(t))
	if info.NextBackup != nil {
		fmt.Fprintf(tw, "  next run\t%s (%s)\n", when(info.NextBackup.DateTime), kind(info.NextBackup.IsFull))
	}
	tw.Flush()
}

func taskType(t string) string {
	if t == "Snapshot" {
		return "snapshot"
	}
	return "logical"
}

func kind(full bool) string {
	if full {
		return "full"
	}
	return "incremental"
}

func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

func schedule(t sdk.BackupTask) string {
	var parts []string
	if t.FullBackupFrequency != "" {
		parts = append(parts, "full "+t.FullBackupFrequency)
	}
	if t.IncrementalBackupFrequency != "" {
		parts = append(parts, "incremental "+t.IncrementalBackupFrequency)
	}
	if len(parts) == 0 {
		return "none (runs when asked)"
	}
	return strings.Join(parts, ", ")
}

func taskEncryption(info *sdk.BackupTaskInfo) string {
	es := info.MagpieConfiguration.BackupEncryptionSettings
	if es == nil {
		return "default"
	}
	switch es.EncryptionMode {
	case "None":
		return "none"
	case "UseDatabaseKey":
		return "database"
	case "MagpieRecipients":
		return fmt.Sprintf("recipients (%d)", len(es.MagpieRecipients))
	case "UseProvidedKey":
		switch {
		case es.MagpieKeyFile != "":
			return "key (file " + es.MagpieKeyFile + ")"
		case info.MagpieKeyInMemory != nil && !*info.MagpieKeyInMemory:
			return "key (fingerprint " + es.MagpieKeyFingerprint + "; NOT held by the server since it restarted: give it again with magpie backup task update --key-file)"
		}
		return "key (fingerprint " + es.MagpieKeyFingerprint + ", in the server's memory)"
	}
	return es.EncryptionMode
}

func retention(t sdk.BackupTask) string {
	var parts []string
	if p := t.RetentionPolicy; p != nil && !p.Disabled && p.MinimumBackupAgeToKeep != nil && *p.MinimumBackupAgeToKeep != "" {
		parts = append(parts, "keep chains younger than "+*p.MinimumBackupAgeToKeep)
	}
	if t.MagpieKeepNewest > 0 {
		parts = append(parts, fmt.Sprintf("keep the %d newest chains", t.MagpieKeepNewest))
	}
	if len(parts) == 0 {
		return "none (every chain is kept)"
	}
	return strings.Join(parts, " and ")
}

func newTaskListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list DB",
		Short: "List a database's backup tasks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withTasks(cmd, func(ctx context.Context, c *sdk.Client) error {
				list, err := c.BackupTasks(ctx, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					out := []sdk.BackupTask{}
					for _, info := range list {
						out = append(out, info.MagpieConfiguration)
					}
					return printJSON(cmd, out)
				}
				if len(list) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s has no backup task\n", args[0])
					return nil
				}
				for _, info := range list {
					fmt.Fprintf(cmd.OutOrStdout(), "task %d  %s\n", info.TaskID, info.TaskName)
					printTaskRows(cmd.OutOrStdout(), &info)
				}
				return nil
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newTaskDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete DB ID",
		Short: "Delete a backup task (its backups stay)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskID(args[1])
			if err != nil {
				return err
			}
			return g.withTasks(cmd, func(ctx context.Context, c *sdk.Client) error {
				if err := c.DeleteBackupTask(ctx, args[0], id); err != nil {
					return inTask(err, args[0], id)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted backup task %d of %s (its backups stay where they are)\n", id, args[0])
				return nil
			})
		},
	}
}

func newTaskRunCmd(g *globals) *cobra.Command {
	var full, incremental, asJSON bool
	cmd := &cobra.Command{
		Use:   "run DB ID [--full|--incremental]",
		Short: "Run a backup task now",
		Long: `Run backup task ID of DB now and wait for it: a full backup (the default,
a new chain) or, with --incremental, an incremental one (a full backup when
there is no chain to extend). The task's retention is applied afterwards.
A disabled task does not run.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskID(args[1])
			if err != nil {
				return err
			}
			if full && incremental {
				return usagef("--full and --incremental ask for different runs. Give one of them")
			}
			return g.withTasks(cmd, func(ctx context.Context, c *sdk.Client) error {
				start := time.Now()
				res, err := c.RunBackupTask(ctx, args[0], id, !incremental)
				if err != nil {
					return inTask(err, args[0], id)
				}
				if asJSON {
					return printJSON(cmd, res)
				}
				w := cmd.OutOrStdout()
				if res.FullReason != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "magpie: note: %s, so this is a full backup that starts a new chain\n", res.FullReason)
				}
				if res.Unchanged {
					fmt.Fprintf(w, "nothing changed in %s since %s (etag %d): no file written\n", args[0], res.FileName, res.LastEtag)
					return nil
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "%s of\t%s (task %d)\nchain\t%s\nfile\t%s\n", res.Kind, args[0], id, res.BackupDirectory, res.FileName)
				for _, l := range res.Locations[min(1, len(res.Locations)):] {
					fmt.Fprintf(tw, "also in\t%s\n", l)
				}
				fmt.Fprintf(tw, "encryption\t%s\ndocuments\t%d\ntombstones\t%d\nlast etag\t%d\nsize\t%s\n", res.Encryption, res.Documents, res.Tombstones, res.LastEtag, humanBytes(res.Size))
				if res.Pruned > 0 {
					fmt.Fprintf(tw, "retention\tdeleted %s\n", count(res.Pruned, "chain"))
				}
				fmt.Fprintf(tw, "time\t%s\n", time.Since(start).Round(time.Millisecond))
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "a full backup, which starts a new chain (the default)")
	cmd.Flags().BoolVar(&incremental, "incremental", false, "an incremental backup, which extends the newest chain")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newBackupStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status DB",
		Short: "Show what a database's backup tasks did and do next",
		Long: `Show, for each backup task of DB: its last full and incremental backups
(time, size, duration, file), the last etag backed up, the next scheduled
run, the running backup, the last error and the failures in a row, and what
retention deleted after the last run.

` + taskScheduleHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withTasks(cmd, func(ctx context.Context, c *sdk.Client) error {
				list, err := c.BackupTasks(ctx, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					if list == nil {
						list = []sdk.BackupTaskInfo{}
					}
					return printJSON(cmd, list)
				}
				if len(list) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s has no backup task. Add one with magpie backup task add.\n", args[0])
					return nil
				}
				sort.Slice(list, func(i, j int) bool { return list[i].TaskID < list[j].TaskID })
				for _, info := range list {
					printStatus(cmd.OutOrStdout(), &info)
				}
				return nil
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printStatus(w io.Writer, info *sdk.BackupTaskInfo) {
	fmt.Fprintf(w, "task %d  %s  (%s, %s)\n", info.TaskID, info.TaskName, strings.ToLower(info.TaskState), taskType(info.BackupType))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  schedule\t%s\n", schedule(info.MagpieConfiguration))
	fmt.Fprintf(tw, "  destinations\t%s\n", strings.Join(info.MagpieDestinations, ", "))
	if info.Error != nil && (info.MagpieStatus == nil || info.MagpieStatus.Error == nil || info.MagpieStatus.Error.Exception != *info.Error) {
		// Not a run's error (shown below as the last error): the task
		// itself is wrong, a schedule that does not parse.
		fmt.Fprintf(tw, "  WARNING\t%s\n", taskWording.Replace(*info.Error))
	}
	if info.MagpieKeyInMemory != nil && !*info.MagpieKeyInMemory {
		fmt.Fprintf(tw, "  WARNING\tthe server no longer holds the task's key (it restarted): its runs fail until you give it again with magpie backup task update --key-file\n")
	}
	st := info.MagpieStatus
	if st == nil {
		fmt.Fprintf(tw, "  last backup\tnever\n")
	} else {
		last := func(label string, at *time.Time, size *int64, ms *int64, file *string) {
			if at == nil {
				fmt.Fprintf(tw, "  %s\tnever\n", label)
				return
			}
			s := when(*at)
			if size != nil {
				s += ", " + humanBytes(*size)
			}
			if ms != nil {
				s += ", " + (time.Duration(*ms) * time.Millisecond).String()
			}
			if file != nil {
				s += ", " + *file
			}
			fmt.Fprintf(tw, "  %s\t%s\n", label, s)
		}
		var fullMs, incMs *int64
		if st.LocalBackup != nil {
			fullMs, incMs = st.LocalBackup.FullBackupDurationInMs, st.LocalBackup.IncrementalBackupDurationInMs
		}
		last("last full", st.LastFullBackup, st.MagpieLastFullBackupSize, fullMs, st.MagpieLastFullBackupFile)
		last("last incremental", st.LastIncrementalBackup, st.MagpieLastIncrementalBackupSize, incMs, st.MagpieLastIncrementalBackupFile)
		if st.LastEtag != nil {
			fmt.Fprintf(tw, "  last etag\t%d\n", *st.LastEtag)
		}
		if st.Error != nil {
			fmt.Fprintf(tw, "  last error\t%s: %s (%d failed runs in a row)\n", when(st.Error.At), taskWording.Replace(st.Error.Exception), st.MagpieFailures)
		}
		if r := st.MagpieRetention; r != nil {
			var bytes int64
			for _, d := range r.Deleted {
				bytes += d.Bytes
			}
			fmt.Fprintf(tw, "  retention\t%s: deleted %s (%s)\n", when(r.At), count(len(r.Deleted), "chain"), humanBytes(bytes))
			for _, d := range r.Deleted {
				fmt.Fprintf(tw, "  \t  %s in %s: %s\n", d.Chain, d.Destination, d.Reason)
			}
			for _, e := range r.Errors {
				fmt.Fprintf(tw, "  \t  %s\n", e)
			}
		}
		if st.MagpieNeedsFullBackup {
			fmt.Fprintf(tw, "  note\tthe task changed: its next run is a full backup\n")
		}
	}
	if on := info.OnGoingBackup; on != nil {
		fmt.Fprintf(tw, "  running\t%s backup since %s (operation %d)\n", kind(on.IsFull), when(on.StartTime), on.RunningBackupTaskID)
	}
	switch {
	case info.NextBackup != nil:
		fmt.Fprintf(tw, "  next run\t%s (%s)\n", when(info.NextBackup.DateTime), kind(info.NextBackup.IsFull))
	case info.TaskState == "Disabled":
		fmt.Fprintf(tw, "  next run\tnone: the task is disabled\n")
	}
	tw.Flush()
}

// restoredTasks disables the backup tasks of restored database name when
// asked, and counts them: a restored database comes back with the tasks
// it had when the backup was made.
func restoredTasks(d *store.DataDir, name string, disable bool) (n, disabled int, err error) {
	db, err := d.OpenDatabase(name)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	if disable {
		if disabled, err = tasks.DisableAll(db); err != nil {
			return 0, 0, err
		}
	}
	list, err := tasks.Load(db)
	return len(list), disabled, err
}

func describeRestoredTasks(n, disabled int) string {
	switch {
	case disabled == 0:
		return fmt.Sprintf("%d, as they were (they run under magpie serve; --disable-tasks brings them back disabled)", n)
	case disabled == n:
		return fmt.Sprintf("%d, disabled (--disable-tasks)", n)
	}
	return fmt.Sprintf("%d, %d of them disabled now (--disable-tasks)", n, disabled)
}
