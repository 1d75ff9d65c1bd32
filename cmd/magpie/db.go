package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newDBCmd(g *globals) *cobra.Command {
	return groupCmd("db", "Create, list and delete databases", newDBCreateCmd(g), newDBListCmd(g), newDBDeleteCmd(g))
}

func newDBCreateCmd(g *globals) *cobra.Command {
	var encrypted, asJSON bool
	var keyFile string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a database, optionally encrypted at rest",
		Long: `Create a database. With --encrypted every file of the database is encrypted
with keys that its secret key protects. Give the secret key with --key-file
(a file holding the base64 text that 'magpie secrets generate' prints, mode
0600); without it a new key is generated and printed once: store it safely,
it is what restores the database's snapshots and backups.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := store.ValidateDatabaseName(name); err != nil {
				return err
			}
			opts := store.CreateOptions{Encrypted: encrypted}
			if keyFile != "" {
				if !encrypted {
					return usagef("--key-file was given but the database is not encrypted. Add --encrypted, or leave out --key-file")
				}
				k, err := keys.ReadFile(keyFile)
				if err != nil {
					return err
				}
				opts.Key = &k
			}
			if g.isRemote() {
				return remoteDBCreate(cmd, g, name, opts, asJSON)
			}
			d, err := g.openDataDir(true)
			if err != nil {
				return err
			}
			defer d.Close()
			secret, err := d.CreateDatabase(name, opts)
			if err != nil {
				return err
			}
			fingerprint, shown := "", ""
			if encrypted {
				fingerprint = secret.Fingerprint()
				if keyFile == "" {
					shown = secret.Base64()
				}
			}
			return printCreated(cmd, name, encrypted, fingerprint, shown, asJSON)
		},
	}
	cmd.Flags().BoolVar(&encrypted, "encrypted", false, "encrypt the database at rest")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the database's secret key (base64 of 32 bytes, mode 0600)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// printCreated reports a database just created; key, when not empty, is
// the generated secret key, shown this once.
func printCreated(cmd *cobra.Command, name string, encrypted bool, fingerprint, key string, asJSON bool) error {
	if asJSON {
		out := map[string]any{"Name": name, "Encrypted": encrypted}
		if encrypted {
			out["KeyFingerprint"] = fingerprint
		}
		if key != "" {
			out["Key"] = key
		}
		return printJSON(cmd, out)
	}
	w := cmd.OutOrStdout()
	if !encrypted {
		fmt.Fprintf(w, "created database %s\n", name)
		return nil
	}
	fmt.Fprintf(w, "created encrypted database %s (key fingerprint %s)\n", name, fingerprint)
	if key != "" {
		fmt.Fprintf(w, "\nIts secret key, shown only this once:\n\n    %s\n\n", key)
		fmt.Fprintf(w, "WARNING: store this key somewhere safe, apart from the data dir. Restoring this\n"+
			"database's snapshots and encrypted backups needs it; magpie cannot recover it.\n")
	}
	return nil
}

func newDBListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the databases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.isRemote() {
				return remoteDBList(cmd, g, asJSON)
			}
			d, err := g.openDataDir(false)
			if err != nil {
				return err
			}
			defer d.Close()
			dbs, err := d.Databases()
			if err != nil {
				return err
			}
			return printDatabases(cmd, dbs, asJSON)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func printDatabases(cmd *cobra.Command, dbs []store.Info, asJSON bool) error {
	if asJSON {
		if dbs == nil {
			dbs = []store.Info{}
		}
		return printJSON(cmd, dbs)
	}
	if len(dbs) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "no databases")
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENCRYPTED\tKEY FINGERPRINT\tCREATED (UTC)")
	for _, db := range dbs {
		fp := "-"
		if db.KeyFingerprint != "" {
			fp = db.KeyFingerprint
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", db.Name, db.Encrypted, fp, db.Created.UTC().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func newDBDeleteCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a database and all its files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.isRemote() {
				if err := remoteDBDelete(cmd, g, args[0]); err != nil {
					return err
				}
			} else if err := deleteLocalDB(g, args[0]); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, map[string]any{"Deleted": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted database %s\n", args[0])
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func deleteLocalDB(g *globals, name string) error {
	d, err := g.openDataDir(false)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.DeleteDatabase(name)
}

func newSecretsCmd() *cobra.Command {
	var out string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random key (base64 of 32 bytes) and nothing else",
		Long: `Print a new random key: the base64 text of 32 random bytes, and nothing else.
With --out FILE the key is written to a new file of mode 0600 instead (never
over an existing file), which is how key files should be made:

    magpie secrets generate --out media.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keys.Generate()
			if err != nil {
				return err
			}
			if out != "" {
				if err := keys.WriteFile(out, k); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "magpie: wrote a new key to %s (mode 0600, fingerprint %s)\n", out, k.Fingerprint())
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Base64())
			return nil
		},
	}
	gen.Flags().StringVar(&out, "out", "", "write the key to this new file (mode 0600) instead of printing it")
	return groupCmd("secrets", "Generate keys", gen)
}
