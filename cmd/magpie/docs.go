package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newDocsCmd(g *globals) *cobra.Command {
	return groupCmd("docs", "Get, put and delete documents", newDocsGetCmd(g), newDocsPutCmd(g), newDocsDeleteCmd(g))
}

func newDocsGetCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get DB ID",
		Short: "Print a document as strict JSON",
		Long: `Print a document, with its @metadata, as strict JSON: control characters in
strings are escaped as \u00XX, values are exactly what was stored.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.isRemote() {
				return remoteDocsGet(cmd, g, args[0], args[1])
			}
			return g.readDatabase(args[0], func(db *store.DB) error {
				d, err := db.Get(args[1])
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if _, err := w.Write(d.Body); err != nil {
					return err
				}
				_, err = io.WriteString(w, "\n")
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "accepted for symmetry: the document is always printed as JSON")
	return cmd
}

func newDocsPutCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "put DB ID FILE",
		Short: "Store a document read from FILE ('-' for stdin)",
		Long: `Store a document. FILE ('-' for standard input) holds one JSON object; its
@metadata.@collection, if any, names the collection. An existing document
with the same ID (IDs are not case-sensitive) is replaced.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := store.ValidateID(args[1]); err != nil {
				return err
			}
			body, err := readBody(cmd, args[2])
			if err != nil {
				return err
			}
			if g.isRemote() {
				return remoteDocsPut(cmd, g, args[0], args[1], body, asJSON)
			}
			return g.withDatabase(args[0], func(db *store.DB) error {
				d, err := db.Put(args[1], body)
				if err != nil {
					return err
				}
				return printPut(cmd, d, asJSON)
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printPut(cmd *cobra.Command, d *store.Document, asJSON bool) error {
	if asJSON {
		return printJSON(cmd, map[string]any{"Id": d.ID, "Collection": d.Collection, "ChangeVector": d.ChangeVector, "Etag": d.Etag, "LastModified": d.LastModified})
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "stored\t%s\ncollection\t%s\nchange vector\t%s\netag\t%d\n", d.ID, d.Collection, d.ChangeVector, d.Etag)
	return tw.Flush()
}

// readBody reads a document body from a file or stdin, refusing more than
// the store would accept before reading it all.
func readBody(cmd *cobra.Command, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the document file %s does not exist. Check the path", path)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the document file %s: %v. Check its permissions", path, errors.Unwrap(err))
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, store.MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the document: %w", err)
	}
	return body, nil
}

func newDocsDeleteCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete DB ID",
		Short: "Delete a document (a tombstone records the deletion for backups)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if g.isRemote() {
				err = remoteDocsDelete(cmd, g, args[0], args[1])
			} else {
				err = g.withDatabase(args[0], func(db *store.DB) error { return db.Delete(args[1]) })
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, map[string]any{"Deleted": args[1]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[1])
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newStatsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats DB",
		Short: "Print a database's statistics (RavenDB field names with --json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.isRemote() {
				return remoteStats(cmd, g, args[0], asJSON)
			}
			return g.readDatabase(args[0], func(db *store.DB) error {
				s, err := db.Stats()
				if err != nil {
					return err
				}
				return printStats(cmd, s, asJSON)
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printStats(cmd *cobra.Command, s *store.Stats, asJSON bool) error {
	if asJSON {
		return printJSON(cmd, s)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "database\t%s\nencrypted\t%v\ndocuments\t%d\ntombstones\t%d\nattachments\t%d\nindexes\t%d\nlast etag\t%d\n",
		s.DatabaseName, s.Encrypted, s.CountOfDocuments, s.CountOfTombstones, s.CountOfAttachments, s.CountOfIndexes, s.LastDocEtag)
	for _, name := range s.CollectionNames() {
		fmt.Fprintf(tw, "collection %s\t%d\n", name, s.Collections[name])
	}
	return tw.Flush()
}
