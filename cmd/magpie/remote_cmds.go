package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	sdk "github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

// The commands' --server halves: each takes what its command already
// checked and prints what the local command prints, as far as the API
// tells it.

func remoteDBCreate(cmd *cobra.Command, g *globals, name string, opts store.CreateOptions, asJSON bool) error {
	co := sdk.CreateOptions{Encrypted: opts.Encrypted}
	if opts.Key != nil {
		s := opts.Key.Base64()
		co.Key = &s
	}
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		res, err := c.CreateDatabase(ctx, name, co)
		if err != nil {
			return err
		}
		return printCreated(cmd, name, res.Encrypted, res.KeyFingerprint, res.Key, asJSON)
	})
}

func remoteDBList(cmd *cobra.Command, g *globals, asJSON bool) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		dbs, err := c.Databases(ctx)
		if err != nil {
			return err
		}
		infos := make([]store.Info, len(dbs))
		for i, d := range dbs {
			infos[i] = store.Info{Name: d.Name, Encrypted: d.Encrypted, Created: d.Created}
		}
		return printDatabases(cmd, infos, asJSON)
	})
}

func remoteDBDelete(cmd *cobra.Command, g *globals, name string) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		return c.DeleteDatabase(ctx, name)
	})
}

func remoteDocsGet(cmd *cobra.Command, g *globals, db, id string) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		body, err := c.GetDocument(ctx, db, id)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", body)
		return err
	})
}

func remoteDocsPut(cmd *cobra.Command, g *globals, db, id string, body []byte, asJSON bool) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		res, err := c.PutDocument(ctx, db, id, body)
		if err != nil {
			return err
		}
		// The answer holds the ID and change vector; the stored
		// document's metadata tells the rest.
		d := &store.Document{ID: res.ID, ChangeVector: res.ChangeVector}
		if i := strings.LastIndex(res.ChangeVector, ":"); i >= 0 {
			etag, _, _ := strings.Cut(res.ChangeVector[i+1:], "-")
			d.Etag, _ = strconv.ParseUint(etag, 10, 64)
		}
		if stored, err := c.GetDocument(ctx, db, res.ID); err == nil {
			var doc struct {
				Metadata struct {
					Collection   string `json:"@collection"`
					LastModified string `json:"@last-modified"`
				} `json:"@metadata"`
			}
			if json.Unmarshal(stored, &doc) == nil {
				d.Collection = doc.Metadata.Collection
				d.LastModified = doc.Metadata.LastModified
			}
		}
		return printPut(cmd, d, asJSON)
	})
}

func remoteDocsDelete(cmd *cobra.Command, g *globals, db, id string) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		return c.DeleteDocument(ctx, db, id)
	})
}

func remoteStats(cmd *cobra.Command, g *globals, db string, asJSON bool) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		s, err := c.Stats(ctx, db)
		if err != nil {
			return err
		}
		st := store.Stats(*s)
		return printStats(cmd, &st, asJSON)
	})
}

func remoteImport(cmd *cobra.Command, g *globals, db string, in io.Reader, asJSON bool) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		start := time.Now()
		res, err := c.Import(ctx, db, in)
		if err != nil {
			return err
		}
		r := &dump.Result{ImportCounts: store.ImportCounts{Documents: res.Documents, Tombstones: res.Tombstones, Attachments: res.Attachments, Indexes: res.Indexes}, Skipped: res.Skipped}
		return printImport(cmd, db, r, time.Since(start), asJSON)
	})
}

func remoteExport(cmd *cobra.Command, g *globals, db, path string, comp smuggler.Compression, asJSON bool) error {
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		if path == "-" {
			_, err := c.Export(ctx, db, cmd.OutOrStdout(), comp.String())
			return err
		}
		start := time.Now()
		size, err := writeAtomic(path, func(w io.Writer) error {
			_, err := c.Export(ctx, db, w, comp.String())
			return err
		})
		if err != nil {
			return fmt.Errorf("export of %s failed and no file was written: %w", db, g.remoteError(err))
		}
		if asJSON {
			return printJSON(cmd, map[string]any{"File": path, "Size": size, "Compression": comp.String()})
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "exported\t%s\nfrom\t%s\nto\t%s\nsize\t%d bytes (%s)\ntime\t%s\n",
			db, g.remote.server, path, size, comp, time.Since(start).Round(time.Millisecond))
		return tw.Flush()
	})
}

// ravenModes maps the CLI's encryption modes to the API's.
var ravenModes = map[string]string{
	"": "", "none": "None", "database": "UseDatabaseKey", "key": "UseProvidedKey", "recipients": "MagpieRecipients",
}

func remoteBackup(cmd *cobra.Command, g *globals, db string, t backup.Type, comp smuggler.Compression, mode, keyFile string, recipients []string, to []string, incremental, asJSON bool) error {
	for _, d := range to {
		if !filepath.IsAbs(d) && !destination.IsURL(d) {
			return usagef("--to %s is not an absolute path; with --server it names a folder on the server's machine. Give its full path", d)
		}
	}
	req := sdk.BackupRequest{Type: "Backup", Destinations: to, Incremental: incremental, EncryptionMode: ravenModes[mode], Recipients: recipients, Compression: comp.String()}
	if t == backup.Snapshot {
		req.Type, req.Compression = "Snapshot", ""
	}
	if keyFile != "" {
		k, err := keys.ReadFile(keyFile)
		if err != nil {
			return err
		}
		req.Key = k.Base64()
	}
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		start := time.Now()
		res, err := c.Backup(ctx, db, req)
		if err != nil {
			return err
		}
		if res.Encryption == string(backup.ModeNone) {
			if st, err := c.Stats(ctx, db); err == nil && st.Encrypted {
				fmt.Fprintf(cmd.ErrOrStderr(), "magpie: warning: database %s is encrypted but this backup is not (--encryption none): keep it somewhere as safe as the data\n", db)
			}
		}
		if res.FullReason != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "magpie: note: %s, so this is a full backup that starts a new chain\n", res.FullReason)
		}
		if res.Unchanged {
			if asJSON {
				return printJSON(cmd, map[string]any{"ChainDir": res.BackupDirectory, "Unchanged": true, "LastEtag": res.LastEtag})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "nothing changed in %s since %s (etag %d): no file written\n", db, res.FileName, res.LastEtag)
			return nil
		}
		file := filepath.Join(res.BackupDirectory, res.FileName)
		if destination.IsURL(res.BackupDirectory) {
			file = res.BackupDirectory + " " + res.FileName
		}
		if asJSON {
			entry := backup.FileEntry{Name: res.FileName, Size: res.Size, ToEtag: res.LastEtag, Documents: res.Documents, Tombstones: res.Tombstones, Attachments: res.Attachments}
			return printJSON(cmd, map[string]any{"ChainDir": res.BackupDirectory, "File": file, "Entry": entry, "Encryption": res.Encryption})
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		kind := res.Kind
		if kind == "" {
			kind = string(t) + " backup"
		}
		fmt.Fprintf(tw, "%s of\t%s\nfile\t%s (on the server's machine)\nencryption\t%s\n", kind, db, file, res.Encryption)
		for _, l := range res.Locations[min(1, len(res.Locations)):] {
			fmt.Fprintf(tw, "also in\t%s\n", l)
		}
		fmt.Fprintf(tw, "documents\t%d\ntombstones\t%d\nlast etag\t%d\nsize\t%s\ntime\t%s\n",
			res.Documents, res.Tombstones, res.LastEtag, humanBytes(res.Size), time.Since(start).Round(time.Millisecond))
		return tw.Flush()
	})
}

// restoreWording rewords the API's field names in the server's restore
// errors as this command's flags.
var restoreWording = strings.NewReplacer(
	"BackupEncryptionSettings.Key", "--key-file",
	"EncryptionKey", "--new-key-file",
	"MagpieIdentity", "--identity",
	"GET /admin/secrets/generate makes one", "magpie secrets generate makes one",
)

func remoteRestore(cmd *cobra.Command, g *globals, path, as, keyFile, identity, newKeyFile, until string, disableTasks, asJSON bool) error {
	if !filepath.IsAbs(path) && !destination.IsURL(path) {
		return usagef("%s is not an absolute path; with --server it names a backup on the server's machine. Give its full path, or a URL", path)
	}
	if identity != "" && !filepath.IsAbs(identity) {
		return usagef("--identity %s is not an absolute path; with --server it names a file on the server's machine. Give its full path", identity)
	}
	req := sdk.RestoreRequest{DatabaseName: as, BackupLocation: path, Identity: identity, LastFileNameToRestore: until, DisableOngoingTasks: disableTasks}
	for _, kf := range []struct {
		file string
		dst  *string
	}{{keyFile, &req.DecryptionKey}, {newKeyFile, &req.EncryptionKey}} {
		if kf.file == "" {
			continue
		}
		k, err := keys.ReadFile(kf.file)
		if err != nil {
			return err
		}
		*kf.dst = k.Base64()
	}
	return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		start := time.Now()
		res, err := c.Restore(ctx, req)
		if err != nil {
			if ce, ok := err.(*sdk.Error); ok {
				msg := restoreWording.Replace(strings.TrimSuffix(ce.Message, "."))
				if msg != "" && msg[0] >= 'A' && msg[0] <= 'Z' && !strings.HasPrefix(msg, "LastFileNameToRestore") {
					msg = strings.ToLower(msg[:1]) + msg[1:]
				}
				return fmt.Errorf("restore failed and no database was created: %s", msg)
			}
			return err
		}
		for _, p := range res.MagpiePassedOver {
			notePassedOver(cmd, p)
		}
		if asJSON {
			return printJSON(cmd, map[string]any{"Database": res.DatabaseName, "ChainDir": res.BackupDirectory, "Files": res.Files, "Encrypted": res.IsEncrypted, "KeyFingerprint": res.KeyFingerprint, "CountOfDocuments": res.CountOfDocuments,
				"BackupTasks": res.MagpieBackupTasks, "DisabledTasks": res.MagpieDisabledTasks})
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		enc := "no"
		if res.IsEncrypted {
			enc = "yes (key fingerprint " + res.KeyFingerprint + ")"
		}
		fmt.Fprintf(tw, "restored\t%s\nfrom\t%s\nfiles\t%s\nencrypted\t%s\ndocuments\t%d\ntime\t%s\n",
			res.DatabaseName, res.BackupDirectory, strings.Join(res.Files, ", "), enc, res.CountOfDocuments, time.Since(start).Round(time.Millisecond))
		if res.MagpieBackupTasks > 0 {
			fmt.Fprintf(tw, "backup tasks\t%s\n", describeRestoredTasks(res.MagpieBackupTasks, res.MagpieDisabledTasks))
		}
		return tw.Flush()
	})
}

// remoteVerify has the server verify path (on its machine, or a URL).
func remoteVerify(cmd *cobra.Command, g *globals, path, keyFile, identity string, sample float64) (*restore.Verified, error) {
	if !filepath.IsAbs(path) && !destination.IsURL(path) {
		return nil, usagef("%s is not an absolute path; with --server it names a backup on the server's machine. Give its full path, or a URL", path)
	}
	if identity != "" && !filepath.IsAbs(identity) {
		return nil, usagef("--identity %s is not an absolute path; with --server it names a file on the server's machine. Give its full path", identity)
	}
	req := sdk.VerifyRequest{Location: path, Identity: identity}
	if sample < 100 {
		req.SamplePercent = sample
	}
	if keyFile != "" {
		k, err := keys.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
		req.Key = k.Base64()
	}
	var v restore.Verified
	err := g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
		res, err := c.VerifyBackup(ctx, req)
		if err != nil {
			return err
		}
		v.Interrupted = res.Interrupted
		for _, raw := range res.Chains {
			var rep restore.Report
			if err := json.Unmarshal(raw, &rep); err != nil {
				return fmt.Errorf("the server's report cannot be read: %v", err)
			}
			v.Chains = append(v.Chains, &rep)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}
