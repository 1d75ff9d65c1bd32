package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	sdk "github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newBackupCmd(g *globals) *cobra.Command {
	return groupCmd("backup", "Make, list and verify backups; backup tasks", newBackupRunCmd(g), newBackupLsCmd(g), newBackupVerifyCmd(g), newBackupTaskCmd(g), newBackupStatusCmd(g))
}

func newBackupRunCmd(g *globals) *cobra.Command {
	var typ, mode, keyFile, compression string
	var to, recipients []string
	var asJSON, incremental bool
	var concurrency int
	cmd := &cobra.Command{
		Use:   "run DB --to DIR|URL [--incremental]",
		Short: "Make a full or incremental backup, or a snapshot, of a database",
		Long: `Make a full backup of a database in a new chain folder under --to (a local
folder, created if missing, or s3://, azblob://, gs:// URL; repeat --to to
write the same bytes to several destinations).

--incremental adds the documents, attachments and tombstones changed since
the chain's last file to the newest chain of the database, encrypted like
the chain (a key mode chain needs its --key-file again). When nothing
changed, no file is written. Without a chain to extend it makes a full
backup.

Types:
  logical   a streamed export (RavenDB format), compressed, optionally encrypted
  snapshot  a copy of the database files (a pebble checkpoint) while writes go on

Encryption (--encryption):
  none        no encryption (default for an unencrypted database)
  database    age, with the database's own secret key (default for an encrypted database)
  key         age, with a key you provide (--key-file, base64 of 32 bytes)
  recipients  age, to public keys (--recipient age1... or an SSH key): magpie can
              write these backups but not read them

A snapshot of an encrypted database is its encrypted files as they are, so it
only takes the database mode. Encrypted files decrypt with the stock age
command: the key's base64 text is the passphrase.

With --server, --to (an absolute path) and --recipient files are on the
server's machine; --key-file is read here and its key sent over TLS.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := backup.ParseType(typ)
			if err != nil {
				return &usageError{msg: err.Error()}
			}
			c, err := smuggler.ParseCompression(compression)
			if err != nil || c == smuggler.None {
				return usagef("compression %q is not known: use zstd or gzip", compression)
			}
			if t == backup.Snapshot && cmd.Flags().Changed("compression") {
				return usagef("a snapshot is not compressed (its files are compressed tables or ciphertext already). Leave out --compression")
			}
			if len(to) == 0 {
				return usagef("no destination was given. Give a folder or a URL with --to")
			}
			if concurrency < 1 || concurrency > 64 {
				return usagef("--concurrency %d is not between 1 and 64. Give 1 to keep the backup on one core", concurrency)
			}
			if mode != "" {
				if _, err := backup.ParseMode(mode); err != nil {
					return &usageError{msg: err.Error()}
				}
			}
			for _, dir := range to {
				if strings.TrimSpace(dir) == "" {
					return usagef("--to is empty. Give a folder or a URL (s3://, azblob://, gs://)")
				}
			}
			if g.isRemote() {
				return remoteBackup(cmd, g, args[0], t, c, mode, keyFile, recipients, to, incremental, asJSON)
			}
			for _, dir := range to {
				if insideDataDir(g, dir) {
					return usagef("--to %s is inside the data dir %s; backups there would be taken for databases or deleted with them. Give a folder outside the data dir", dir, g.dataDir)
				}
			}
			return g.readDatabase(args[0], func(db *store.DB) error {
				start := time.Now()
				bar := newByteBar(cmd, "backup "+db.Name(), -1)
				res, err := backup.Run(db, backup.Options{
					To: to, Type: t, Compression: c, Incremental: incremental, Concurrency: concurrency,
					Encryption: backup.Request{Mode: mode, KeyFile: keyFile, Recipients: recipients},
					Progress:   bar.set,
					Documents:  &bar.docs,
				})
				bar.finish()
				if err != nil {
					return err
				}
				if res.Unchanged {
					if asJSON {
						return printJSON(cmd, map[string]any{"ChainDir": res.ChainDir, "Unchanged": true, "LastEtag": res.Entry.ToEtag})
					}
					fmt.Fprintf(cmd.OutOrStdout(), "nothing changed in %s since %s (etag %d): no file written\n", db.Name(), res.Entry.Name, res.Entry.ToEtag)
					return nil
				}
				if res.FullInstead {
					fmt.Fprintf(cmd.ErrOrStderr(), "magpie: note: %s, so this is a full backup that starts a new chain\n", res.FullReason)
				}
				if db.Encrypted() && res.Manifest.Encryption == backup.ModeNone {
					fmt.Fprintf(cmd.ErrOrStderr(), "magpie: warning: database %s is encrypted but this backup is not (--encryption none): keep it somewhere as safe as the data\n", db.Name())
				}
				if asJSON {
					return printJSON(cmd, map[string]any{"ChainDir": res.ChainDir, "File": res.File, "Entry": res.Entry, "Encryption": res.Manifest.Encryption, "Locations": res.Locations})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "%s of\t%s\nfile\t%s\nencryption\t%s\n", res.Entry.Kind, db.Name(), res.File, describeEncryption(res.Manifest))
				for _, l := range res.Locations[1:] {
					fmt.Fprintf(tw, "also in\t%s\n", l)
				}
				fmt.Fprintf(tw, "documents\t%d\ntombstones\t%d\nlast etag\t%d\nsize\t%s\ntime\t%s\n",
					res.Entry.Documents, res.Entry.Tombstones, res.Entry.ToEtag, humanBytes(res.Entry.Size), time.Since(start).Round(time.Millisecond))
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringArrayVar(&to, "to", nil, "folder (created if missing) or s3://, azblob://, gs:// URL that receives the backup (repeatable)")
	cmd.Flags().BoolVar(&incremental, "incremental", false, "add the changes since the newest chain's last file to that chain")
	cmd.Flags().IntVar(&concurrency, "concurrency", 2, "goroutines that compress a logical backup; 1 keeps it on one core")
	cmd.Flags().StringVar(&typ, "type", "logical", "logical or snapshot")
	cmd.Flags().StringVar(&mode, "encryption", "", "none, database, key or recipients (default: database for an encrypted database, else none)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "key for --encryption key (base64 of 32 bytes, mode 0600); alone, it implies --encryption key")
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "age or SSH public key, or a file of them, for --encryption recipients (repeatable); alone, it implies --encryption recipients")
	cmd.Flags().StringVar(&compression, "compression", "zstd", "zstd or gzip (logical backups)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func describeEncryption(m *backup.Manifest) string {
	switch m.Encryption {
	case backup.ModeNone:
		return "none"
	case backup.ModeRecipients:
		return fmt.Sprintf("recipients (%d)", len(m.Recipients))
	}
	return fmt.Sprintf("%s (key fingerprint %s)", m.Encryption, m.KeyFingerprint)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// count writes n and its noun, singular or plural: "1 chain", "2 chains".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func newBackupLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls PATH|URL",
		Short: "List backup chains and their files (the restore points)",
		Long: `List the backup chains of a folder (or the chain of a chain folder) and
their files: type, time, size, documents, etag range, encryption and key
fingerprint. With --server, PATH is on the server's machine (an absolute
path) or a URL the server reads, as for restore.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []chainListing
			if g.isRemote() {
				if !filepath.IsAbs(args[0]) && !destination.IsURL(args[0]) {
					return usagef("%s is not an absolute path; with --server it names a backup folder on the server's machine. Give its full path, or a URL", args[0])
				}
				err := g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
					chains, err := c.BackupChains(ctx, args[0])
					if err != nil {
						return err
					}
					for _, ch := range chains {
						l := chainListing{Name: ch.Name, Dir: ch.Dir, Complete: ch.Complete, Problem: ch.Problem, Stray: ch.Stray, Damaged: ch.Damaged, Interrupted: ch.Interrupted}
						if len(ch.Manifest) > 0 && string(ch.Manifest) != "null" {
							l.Manifest = new(backup.Manifest)
							if err := json.Unmarshal(ch.Manifest, l.Manifest); err != nil {
								return fmt.Errorf("the server's listing of %s cannot be read: %v", ch.Dir, err)
							}
						}
						list = append(list, l)
					}
					return nil
				})
				if err != nil {
					return err
				}
			} else {
				s, chains, err := restore.Chains(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				defer s.Close()
				for _, c := range chains {
					list = append(list, chainListing{c.Name, c.Location(), c.Complete(), c.Problem, c.Manifest, c.Stray, c.Damaged, c.Interrupted})
				}
			}
			return printChains(cmd, args[0], list, asJSON)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// chainListing is a chain as backup ls shows it.
type chainListing struct {
	Name     string
	Dir      string
	Complete bool
	Problem  string `json:",omitempty"`
	Manifest *backup.Manifest
	Stray    []string `json:",omitempty"`
	// Damaged says which file the folder lacks (or holds at another size).
	Damaged string `json:",omitempty"`
	// Interrupted: the chain's first backup never finished.
	Interrupted bool `json:",omitempty"`
}

func printChains(cmd *cobra.Command, where string, list []chainListing, asJSON bool) error {
	if asJSON {
		if list == nil {
			list = []chainListing{}
		}
		return printJSON(cmd, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "no backup chains in %s\n", where)
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	for _, c := range list {
		fmt.Fprintf(tw, "%s\n", c.Name)
		if !c.Complete || c.Manifest == nil {
			// An interrupted first backup is expected after a crash and
			// passed over; any other chain without a usable manifest
			// needs an operator.
			state := "DAMAGED"
			if c.Interrupted {
				state = "INCOMPLETE"
			}
			fmt.Fprintf(tw, "  %s: %s\n", state, c.Problem)
			continue
		}
		m := c.Manifest
		if c.Damaged != "" {
			fmt.Fprintf(tw, "  DAMAGED: %s\n", c.Damaged)
		}
		fmt.Fprintf(tw, "  database %s, %s, encryption %s\n", m.Database, m.Type, describeEncryption(m))
		fmt.Fprintln(tw, "  FILE\tTYPE\tTIME (UTC)\tSIZE\tDOCUMENTS\tETAGS")
		for _, f := range m.Files {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d..%d\n", f.Name, f.Kind, f.Created.UTC().Format("2006-01-02 15:04:05"), humanBytes(f.Size), f.Documents, f.FromEtag, f.ToEtag)
		}
		for _, s := range c.Stray {
			fmt.Fprintf(tw, "  %s\tignored: not in the manifest (left by an interrupted run)\n", s)
		}
	}
	return tw.Flush()
}

func newBackupVerifyCmd(g *globals) *cobra.Command {
	var keyFile, identity string
	var sample float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify PATH|URL",
		Short: "Read, decrypt and authenticate every byte of a backup",
		Long: `Verify backups: PATH is a backup file, a chain folder, or a folder of chains
(then every chain in it). Every manifest is checked (checksum, MAC, etag
continuity: no gap between the files of a chain), and every file's size and
SHA-256; with the key (--key-file) or identity (--identity) every byte is
also decrypted, authenticated and parsed. The first bad file is reported
with the reason, and the command exits 1.

--sample PCT reads only that share of the files (chosen at random, at
least one per chain) for a quicker partial check; manifests are always
checked in full.

With --server, the server reads and checks the backup: PATH and --identity
(absolute paths) are on the server's machine, or PATH is a URL the server
reads; --key-file is read here and its key sent over TLS.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sample <= 0 || sample > 100 {
				return usagef("--sample %v is not a percentage above 0 and at most 100. Give e.g. --sample 10", sample)
			}
			var v *restore.Verified
			if g.isRemote() {
				var err error
				if v, err = remoteVerify(cmd, g, args[0], keyFile, identity, sample); err != nil {
					return err
				}
			} else {
				dec, err := backup.LoadDecryption(keyFile, identity)
				if err != nil {
					return err
				}
				v, err = restore.VerifyAll(cmd.Context(), args[0], restore.VerifyOptions{
					Decryption: dec,
					Sample:     sample / 100,
					Start: func(chain string, bytes int64) (func(int64), func()) {
						bar := newByteBar(cmd, "verify "+chain, bytes)
						return bar.add, bar.finish
					},
				})
				if err != nil {
					// A folder is checked whole: say what did verify,
					// and every chain that failed.
					if v != nil && !asJSON {
						if len(v.Chains) > 0 || len(v.Interrupted) > 0 {
							printVerified(cmd, v, false)
						}
						if len(v.Failed) > 1 {
							for _, f := range v.Failed {
								fmt.Fprintf(cmd.ErrOrStderr(), "magpie: FAILED %s: %s\n", f.Chain, f.Error)
							}
						}
					}
					return err
				}
			}
			return printVerified(cmd, v, asJSON)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "backup key (key and database modes)")
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file (recipients mode)")
	cmd.Flags().Float64Var(&sample, "sample", 100, "percentage of the files to read (manifests are always checked)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printVerified(cmd *cobra.Command, v *restore.Verified, asJSON bool) error {
	if asJSON {
		if len(v.Chains) == 1 && len(v.Interrupted) == 0 {
			return printJSON(cmd, v.Chains[0])
		}
		return printJSON(cmd, map[string]any{"Chains": v.Chains, "Interrupted": v.Interrupted})
	}
	w := cmd.OutOrStdout()
	partial := false
	for _, rep := range v.Chains {
		verb := "verified"
		if len(rep.Files) > 0 && !rep.Files[0].Decrypted {
			// Without the key neither the content nor the manifest's
			// MAC could be checked: say so in the first word.
			verb = "checked the checksums of"
		}
		fmt.Fprintf(w, "%s %s (%s, encryption %s)\n", verb, rep.ChainDir, rep.Manifest.Type, describeEncryption(rep.Manifest))
		if rep.Note != "" {
			fmt.Fprintf(w, "  %s\n", rep.Note)
		}
		for _, f := range rep.Files {
			how := "decrypted, authenticated and parsed"
			if rep.Manifest.Encryption == backup.ModeNone {
				how = "checksum matches, parsed"
			}
			if !f.Decrypted {
				how = "checksum matches; content not decrypted"
				partial = true
			}
			fmt.Fprintf(w, "  %s  %s  %d documents  %s\n", f.Name, humanBytes(f.Size), f.Documents, how)
			if !f.Decrypted {
				fmt.Fprintln(w, "    (document count from the manifest)")
			}
		}
		if rep.Sampled > 0 {
			fmt.Fprintf(w, "  %s not read (--sample)\n", count(rep.Sampled, "more file"))
		}
	}
	for _, n := range v.Interrupted {
		notePassedOver(cmd, n)
	}
	if partial {
		fmt.Fprintln(w, "Give --key-file or --identity to decrypt and authenticate every byte.")
		fmt.Fprintln(w, "Without them a changed manifest or file that kept its checksums is not detected.")
	}
	return nil
}

// notePassedOver tells, on stderr, of a chain passed over because it has
// no manifest: after a crash that is expected, but a deleted manifest
// looks the same and an operator must hear of it.
func notePassedOver(cmd *cobra.Command, chain string) {
	fmt.Fprintf(cmd.ErrOrStderr(), "magpie: note: passed over %s: it has no %s, so its first backup never finished (a run was interrupted, or the manifest was deleted)\n", chain, backup.ManifestName)
}

func totalSize(files []backup.FileEntry) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

func newRestoreCmd(g *globals) *cobra.Command {
	var as, keyFile, identity, newKeyFile, untilFile, untilTime string
	var asJSON, disableTasks bool
	cmd := &cobra.Command{
		Use:   "restore PATH|URL --as NEWDB",
		Short: "Restore a backup or snapshot as a new database",
		Long: `Restore PATH (a backup file, a chain folder, or a folder of chains: then the
newest complete chain) as the new database NEWDB.

--key-file opens an encrypted backup (the key it was made with; for database
mode, the database's secret key). A snapshot of an encrypted database is
restored encrypted with its own key, or with --new-key-file's key. A logical
backup restores encrypted with --new-key-file's key when given; a backup of
an encrypted database is always restored encrypted.

Point in time: --until FILE stops after the file of that name (with or
without .age; a name that matches no file is an error), --until-time T after
the last file made at or before T (RFC 3339, e.g. 2026-12-03T18:00:00Z). In a
folder of chains they pick the chain that holds that point.

The new database appears only after every byte was read and verified; on
any error nothing is created. It comes back with the backup tasks it had
when the backup was made, enabled (they run under magpie serve), or
disabled with --disable-tasks (RavenDB's DisableOngoingTasks).

With --server, PATH and --identity (absolute paths) are on the server's
machine; --key-file and --new-key-file are read here and their keys sent
over TLS.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if as == "" {
				return usagef("no name was given for the restored database. Give it with --as NEWDB")
			}
			if err := store.ValidateDatabaseName(as); err != nil {
				return err
			}
			until := restore.Until{File: untilFile}
			if untilTime != "" {
				t, err := time.Parse(time.RFC3339Nano, untilTime)
				if err != nil {
					return usagef("--until-time %q is not a time in RFC 3339 form. Give e.g. 2026-12-03T18:00:00Z", untilTime)
				}
				until.Time = t
			}
			if untilFile != "" && untilTime != "" {
				return usagef("--until and --until-time both name a point in time. Give only one")
			}
			if g.isRemote() {
				if untilTime != "" {
					return usagef("with --server, restore takes --until FILE but not --until-time yet. Give the file name (see magpie backup ls)")
				}
				return remoteRestore(cmd, g, args[0], as, keyFile, identity, newKeyFile, untilFile, disableTasks, asJSON)
			}
			dec, err := backup.LoadDecryption(keyFile, identity)
			if err != nil {
				return err
			}
			var newKey *keys.Key
			if newKeyFile != "" {
				k, err := keys.ReadFile(newKeyFile)
				if err != nil {
					return err
				}
				newKey = &k
			}
			t, err := restore.Locate(cmd.Context(), args[0], until)
			if err == nil {
				defer t.Close()
				// Keys are checked before the data dir is touched, so a
				// wrong key never initialises a new data dir.
				err = restore.CheckKeys(t, dec)
			}
			if err != nil {
				return fmt.Errorf("restore failed and no database was created: %w", err)
			}
			for _, p := range t.PassedOver {
				notePassedOver(cmd, p)
			}
			d, err := g.openDataDir(true)
			if err != nil {
				return err
			}
			defer d.Close()
			start := time.Now()
			bar := newByteBar(cmd, "restore "+as, totalSize(t.Files))
			res, err := restore.Restore(d, t, restore.Options{As: as, Decryption: dec, NewKey: newKey, Context: cmd.Context(), Progress: bar.fileProgress(), Documents: &bar.docs})
			bar.finish()
			if err != nil {
				return fmt.Errorf("restore failed and no database was created: %w", err)
			}
			taskCount, disabled, err := restoredTasks(d, as, disableTasks)
			if err != nil {
				return fmt.Errorf("%s was restored, but its backup tasks could not be read: %w", as, err)
			}
			if asJSON {
				out := map[string]any{"Database": res.Database, "ChainDir": res.ChainDir, "Files": res.Files, "Encrypted": res.Encrypted, "KeyFingerprint": res.KeyFingerprint, "CountOfDocuments": res.Stats.CountOfDocuments, "BackupTasks": taskCount, "DisabledTasks": disabled}
				if res.GeneratedKey != nil {
					out["Key"] = res.GeneratedKey.Base64()
				}
				return printJSON(cmd, out)
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			enc := "no"
			if res.Encrypted {
				enc = "yes (key fingerprint " + res.KeyFingerprint + ")"
			}
			fmt.Fprintf(tw, "restored\t%s\nfrom\t%s\nfiles\t%s\nencrypted\t%s\ndocuments\t%d\ntime\t%s\n",
				res.Database, res.ChainDir, strings.Join(res.Files, ", "), enc, res.Stats.CountOfDocuments, time.Since(start).Round(time.Millisecond))
			if taskCount > 0 {
				fmt.Fprintf(tw, "backup tasks\t%s\n", describeRestoredTasks(taskCount, disabled))
			}
			tw.Flush()
			if res.GeneratedKey != nil {
				fmt.Fprintf(w, "\nThe backup came from an encrypted database, so %s is encrypted too, with a new\nsecret key, shown only this once:\n\n    %s\n\nWARNING: store this key somewhere safe, apart from the data dir.\n", res.Database, res.GeneratedKey.Base64())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "name of the new database")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "key that opens the backup")
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file (recipients mode)")
	cmd.Flags().StringVar(&newKeyFile, "new-key-file", "", "encrypt the restored database with this key")
	cmd.Flags().StringVar(&untilFile, "until", "", "restore up to and including the backup file of this name")
	cmd.Flags().StringVar(&untilTime, "until-time", "", "restore the files made at or before this time (RFC 3339)")
	cmd.Flags().BoolVar(&disableTasks, "disable-tasks", false, "bring the database's backup tasks back disabled")
	addJSONFlag(cmd, &asJSON)
	return cmd
}
