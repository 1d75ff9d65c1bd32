package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

// globals are the flags every command shares.
type globals struct {
	dataDir   string
	masterKey string
	// remote are the --server flags: when server is set, the commands go
	// through that server instead of the data dir (remote.go).
	remote remoteFlags
}

// openDataDir opens the data dir; create initialises it when missing (only
// commands that make something do that, so a typo in --data is reported
// instead of silently creating an empty data dir).
func (g *globals) openDataDir(create bool) (*store.DataDir, error) {
	return g.openDataDirCache(create, oneShotCacheBytes)
}

// oneShotCacheBytes is the block cache of a database opened by a command
// that runs once: a backup, restore or import reads most blocks once, so
// a small cache keeps their memory low. `serve` keeps the default.
const oneShotCacheBytes = 32 << 20

func (g *globals) openDataDirCache(create bool, cacheBytes int64) (*store.DataDir, error) {
	d, err := store.Open(store.Options{Dir: g.dataDir, MasterKeyFile: g.masterKey, Create: create, CacheBytes: cacheBytes})
	if err != nil {
		return nil, servedDataDirError(g.dataDir, err)
	}
	if d.CreatedMasterKey() {
		fmt.Fprintf(os.Stderr, "magpie: initialised data dir %s and created its master key at %s (mode 0600).\n"+
			"magpie: back the master key up apart from the data: without it the encrypted databases in %s cannot be opened.\n",
			d.Path(), d.MasterKeyFile(), d.Path())
	}
	return d, nil
}

// withDatabase opens the data dir and one database for the duration of fn.
func (g *globals) withDatabase(name string, fn func(db *store.DB) error) error {
	return g.openDatabase(name, false, fn)
}

// readDatabase is withDatabase for a command that only reads the database
// (store.Options.ReadMostly): it leaves compactions to the next writer.
func (g *globals) readDatabase(name string, fn func(db *store.DB) error) error {
	return g.openDatabase(name, true, fn)
}

func (g *globals) openDatabase(name string, readMostly bool, fn func(db *store.DB) error) error {
	d, err := store.Open(store.Options{Dir: g.dataDir, MasterKeyFile: g.masterKey, CacheBytes: oneShotCacheBytes, ReadMostly: readMostly})
	if err != nil {
		return servedDataDirError(g.dataDir, err)
	}
	defer d.Close()
	db, err := d.OpenDatabase(name)
	if err != nil {
		return err
	}
	if err := fn(db); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// printJSON writes v as indented JSON on stdout.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func addJSONFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print the result as JSON")
}

// insideDataDir reports whether path is in the data dir (backups and
// exports must not be).
func insideDataDir(g *globals, location string) bool {
	path, ok := destination.LocalPath(location)
	return ok && store.Contains(g.dataDir, path)
}
