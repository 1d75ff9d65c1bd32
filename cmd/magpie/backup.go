package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newBackupCmd(g *globals) *cobra.Command {
	return groupCmd("backup", "Make, list and verify backups", newBackupRunCmd(g), newBackupLsCmd(), newBackupVerifyCmd())
}

func newBackupRunCmd(g *globals) *cobra.Command {
	var to, typ, mode, keyFile, compression string
	var recipients []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run DB --to DIR",
		Short: "Make a full logical backup or a snapshot of a database",
		Long: `Make a full backup of a database in a new chain folder under --to (created
if missing).

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
			if to == "" {
				return usagef("no destination was given. Give a folder with --to DIR")
			}
			if mode != "" {
				if _, err := backup.ParseMode(mode); err != nil {
					return &usageError{msg: err.Error()}
				}
			}
			if g.isRemote() {
				return remoteBackup(cmd, g, args[0], t, c, mode, keyFile, recipients, to, asJSON)
			}
			if insideDataDir(g, to) {
				return usagef("--to %s is inside the data dir %s; backups there would be taken for databases or deleted with them. Give a folder outside the data dir", to, g.dataDir)
			}
			return g.withDatabase(args[0], func(db *store.DB) error {
				start := time.Now()
				res, err := backup.Run(db, backup.Options{
					To: to, Type: t, Compression: c,
					Encryption: backup.Request{Mode: mode, KeyFile: keyFile, Recipients: recipients},
				})
				if err != nil {
					return err
				}
				if db.Encrypted() && res.Manifest.Encryption == backup.ModeNone {
					fmt.Fprintf(cmd.ErrOrStderr(), "magpie: warning: database %s is encrypted but this backup is not (--encryption none): keep it somewhere as safe as the data\n", db.Name())
				}
				if asJSON {
					return printJSON(cmd, map[string]any{"ChainDir": res.ChainDir, "File": res.File, "Entry": res.Entry, "Encryption": res.Manifest.Encryption})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "%s backup of\t%s\nfile\t%s\nencryption\t%s\n", t, db.Name(), res.File, describeEncryption(res.Manifest))
				fmt.Fprintf(tw, "documents\t%d\ntombstones\t%d\nlast etag\t%d\nsize\t%s\ntime\t%s\n",
					res.Entry.Documents, res.Entry.Tombstones, res.Entry.ToEtag, humanBytes(res.Entry.Size), time.Since(start).Round(time.Millisecond))
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "folder that receives the backup (created if missing)")
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

func newBackupLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls PATH",
		Short: "List backup chains and their files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chains, err := backup.FindChains(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				type chainJSON struct {
					Dir      string
					Complete bool
					Problem  string `json:",omitempty"`
					Manifest *backup.Manifest
					Stray    []string `json:",omitempty"`
				}
				out := []chainJSON{}
				for _, c := range chains {
					out = append(out, chainJSON{c.Dir, c.Complete(), c.Problem, c.Manifest, c.Stray})
				}
				return printJSON(cmd, out)
			}
			if len(chains) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no backup chains in %s\n", args[0])
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, c := range chains {
				fmt.Fprintf(tw, "%s\n", filepath.Base(c.Dir))
				if !c.Complete() {
					fmt.Fprintf(tw, "  INCOMPLETE: %s\n", c.Problem)
					continue
				}
				m := c.Manifest
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
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newBackupVerifyCmd() *cobra.Command {
	var keyFile, identity string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify PATH",
		Short: "Read, decrypt and authenticate every byte of a backup",
		Long: `Verify a backup: PATH is a backup file, a chain folder or a folder of chains
(then the newest chain). Every file's size and SHA-256 are checked against
the manifest; with the key (--key-file) or identity (--identity) every byte is
also decrypted, authenticated and parsed, and the manifest's MAC is checked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dec, err := backup.LoadDecryption(keyFile, identity)
			if err != nil {
				return err
			}
			t, err := restore.Locate(args[0])
			if err != nil {
				return err
			}
			rep, err := restore.Verify(t, dec)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "verified %s (%s, encryption %s)\n", rep.ChainDir, rep.Manifest.Type, describeEncryption(rep.Manifest))
			partial := false
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
			if partial {
				fmt.Fprintln(w, "Give --key-file or --identity to decrypt and authenticate every byte.")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "backup key (key and database modes)")
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file (recipients mode)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newRestoreCmd(g *globals) *cobra.Command {
	var as, keyFile, identity, newKeyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore PATH --as NEWDB",
		Short: "Restore a backup or snapshot as a new database",
		Long: `Restore PATH (a backup file, a chain folder, or a folder of chains: then the
newest complete chain) as the new database NEWDB.

--key-file opens an encrypted backup (the key it was made with; for database
mode, the database's secret key). A snapshot of an encrypted database is
restored encrypted with its own key, or with --new-key-file's key. A logical
backup restores encrypted with --new-key-file's key when given; a backup of
an encrypted database is always restored encrypted.

The new database appears only after every byte was read and verified; on
any error nothing is created.

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
			if g.isRemote() {
				return remoteRestore(cmd, g, args[0], as, keyFile, identity, newKeyFile, asJSON)
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
			t, err := restore.Locate(args[0])
			if err == nil {
				// Keys are checked before the data dir is touched, so a
				// wrong key never initialises a new data dir.
				err = restore.CheckKeys(t, dec)
			}
			if err != nil {
				return fmt.Errorf("restore failed and no database was created: %w", err)
			}
			d, err := g.openDataDir(true)
			if err != nil {
				return err
			}
			defer d.Close()
			start := time.Now()
			res, err := restore.Restore(d, t, restore.Options{As: as, Decryption: dec, NewKey: newKey})
			if err != nil {
				return fmt.Errorf("restore failed and no database was created: %w", err)
			}
			if asJSON {
				out := map[string]any{"Database": res.Database, "ChainDir": res.ChainDir, "Files": res.Files, "Encrypted": res.Encrypted, "KeyFingerprint": res.KeyFingerprint, "CountOfDocuments": res.Stats.CountOfDocuments}
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
	addJSONFlag(cmd, &asJSON)
	return cmd
}
