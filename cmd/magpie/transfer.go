package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newImportCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import DB FILE",
		Short: "Import a RavenDB export (.ravendbdump, .ravendb-full-backup, ...)",
		Long: `Import a RavenDB export file ('-' for standard input): .ravendbdump,
.ravendb-full-backup or .ravendb-incremental-backup, gzip- or zstd-compressed
or plain (sniffed from the content). Documents, attachments, tombstones and
index definitions are imported; other sections (counters, revisions, ...) are
skipped and reported.

The import is all-or-nothing: if anything in the file is wrong, or the
process is interrupted, the database is left exactly as it was.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[1]
			if err := dump.CheckFileName(path); err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("the file %s does not exist. Check the path", path)
					}
					return fmt.Errorf("cannot open %s: %w", path, err)
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil && st.IsDir() {
					return fmt.Errorf("%s is a folder, not an export file. Give the path of a .ravendbdump file", path)
				}
				in = f
			}
			source := path
			if path == "-" {
				source = "standard input"
			}
			if g.isRemote() {
				return remoteImport(cmd, g, args[0], in, asJSON)
			}
			return g.withDatabase(args[0], func(db *store.DB) error {
				start := time.Now()
				res, err := dump.Import(db, in)
				if err != nil {
					return fmt.Errorf("import of %s into %s failed, and the database is unchanged: %w", source, db.Name(), err)
				}
				return printImport(cmd, db.Name(), res, time.Since(start), asJSON)
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printImport(cmd *cobra.Command, db string, res *dump.Result, took time.Duration, asJSON bool) error {
	if asJSON {
		return printJSON(cmd, res)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "imported into\t%s\ndocuments\t%d\nattachments\t%d\ntombstones\t%d\nindexes\t%d\ntime\t%s\n",
		db, res.Documents, res.Attachments, res.Tombstones, res.Indexes, took.Round(time.Millisecond))
	for section, n := range res.Skipped {
		fmt.Fprintf(tw, "skipped (not supported yet)\t%d %s\n", n, section)
	}
	return tw.Flush()
}

func newExportCmd(g *globals) *cobra.Command {
	var asJSON bool
	var compression string
	cmd := &cobra.Command{
		Use:   "export DB FILE",
		Short: "Export a database in RavenDB's format (.ravendbdump)",
		Long: `Export a database to FILE ('-' for standard output) in RavenDB's export
format, which RavenDB and 'magpie import' read. Compression is zstd (RavenDB 6
and later read it), gzip (for RavenDB 4.x and 5.x) or none. The file appears
only when complete; an existing file is never overwritten.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := smuggler.ParseCompression(compression)
			if err != nil {
				return &usageError{msg: err.Error()}
			}
			path := args[1]
			if path == "-" && g.isRemote() {
				return remoteExport(cmd, g, args[0], path, c, asJSON)
			}
			if path == "-" {
				return g.readDatabase(args[0], func(db *store.DB) error {
					_, err := dump.Export(db, cmd.OutOrStdout(), c, 0)
					return err
				})
			}
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s already exists. Choose another file name; magpie does not overwrite exports", path)
			}
			if g.isRemote() {
				return remoteExport(cmd, g, args[0], path, c, asJSON)
			}
			if insideDataDir(g, path) {
				return usagef("%s is inside the data dir %s. Export to a file outside the data dir", path, g.dataDir)
			}
			return g.readDatabase(args[0], func(db *store.DB) error {
				start := time.Now()
				var res store.WalkResult
				size, err := writeAtomic(path, func(w io.Writer) error {
					var err error
					res, err = dump.Export(db, w, c, 0)
					return err
				})
				if err != nil {
					return fmt.Errorf("export of %s failed and no file was written: %w", db.Name(), err)
				}
				if asJSON {
					return printJSON(cmd, map[string]any{"File": path, "Documents": res.Documents, "Tombstones": res.Tombstones, "Indexes": res.Indexes, "LastEtag": res.LastEtag, "Size": size, "Compression": c.String()})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "exported\t%s\nto\t%s\ndocuments\t%d\ntombstones\t%d\nindexes\t%d\nsize\t%d bytes (%s)\ntime\t%s\n",
					db.Name(), path, res.Documents, res.Tombstones, res.Indexes, size, c, time.Since(start).Round(time.Millisecond))
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&compression, "compression", "zstd", "zstd, gzip or none")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// writeAtomic writes a file through PATH.in-progress, fsyncs it and renames
// it into place, so that a file under PATH is always complete. On failure
// the partial file is removed.
func writeAtomic(path string, fill func(w io.Writer) error) (int64, error) {
	tmp := path + ".in-progress"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("cannot create %s: %w", tmp, err)
	}
	cw := &countingWriter{w: f}
	err = fill(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
