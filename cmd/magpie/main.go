// Command magpie is a document database with encrypted backups done right.
//
// Every command works on a data dir (--data, MAGPIE_DATA, default
// ./magpie-data) whose master key lives outside it (--master-key,
// MAGPIE_MASTER_KEY_FILE, default DATA.master.key). Run `magpie --help` for
// the commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes: 1 for an operation that failed, 2 for a command line that
// makes no sense.
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in how a command was called.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "magpie: error: %s\n", sentence(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		if cmd != nil {
			fmt.Fprintf(os.Stderr, "Run `%s --help` for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	return exitFailure
}

// isCobraUsage recognises the errors cobra itself returns for bad flags and
// arguments.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "unknown command", "accepts ", "requires at least", "requires at most", "flag needs an argument", "invalid argument", "bad flag syntax", "if any flags in the group"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// sentence makes sure a message ends with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "!") {
		return s
	}
	return s + "."
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "magpie",
		Short: "A document database with encrypted backups done right",
		Long: `magpie is a document database that keeps data encrypted at rest and makes
encrypted backups whose restore needs only the backup and the key. It reads
and writes RavenDB export files.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data", envOr("MAGPIE_DATA", "./magpie-data"), "data dir (env MAGPIE_DATA)")
	root.PersistentFlags().StringVar(&g.masterKey, "master-key", os.Getenv("MAGPIE_MASTER_KEY_FILE"), "master key file, kept outside the data dir (env MAGPIE_MASTER_KEY_FILE; default DATA.master.key)")
	addRemoteFlags(root, g)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	root.Version = version
	root.AddCommand(
		newDBCmd(g),
		newDocsCmd(g),
		newStatsCmd(g),
		newImportCmd(g),
		newExportCmd(g),
		newBackupCmd(g),
		newRestoreCmd(g),
		newSecretsCmd(),
		newDemoCmd(),
		newServeCmd(g), newCertsCmd(g),
	)
	return root
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// groupCmd is a command that only holds subcommands: an unknown
// subcommand is an error (exit 2), not a help page with exit 0.
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
