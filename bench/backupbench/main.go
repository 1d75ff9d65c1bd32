// Command backupbench runs one backup, restore or verify in process, through
// internal/backup.Run, internal/restore.Restore and internal/restore.Verify,
// with a CPU (and optionally heap) profile, so the paths that bench/backup.sh
// times can be profiled without a hook in the CLI.
//
//	go run ./bench/backupbench -op backup -data DIR -db bench -to OUT -cpuprofile cpu.prof
//	go run ./bench/backupbench -op backup -type snapshot -data DIR -db bench -to OUT -cpuprofile cpu.prof
//	go run ./bench/backupbench -op restore -data NEWDIR -from OUT -key-file db.key -cpuprofile cpu.prof
//	go run ./bench/backupbench -op verify -from OUT -key-file db.key -cpuprofile cpu.prof
//	go tool pprof -top -cum cpu.prof
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

type recipients []string

func (r *recipients) String() string     { return strings.Join(*r, ",") }
func (r *recipients) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	op := flag.String("op", "backup", "backup, restore or verify")
	dataDir := flag.String("data", "", "data dir (backup: existing; restore: created if missing)")
	masterKey := flag.String("master-key", "", "master key file (default DATA.master.key)")
	name := flag.String("db", "bench", "database to back up")
	to := flag.String("to", "", "backup: destination folder")
	typ := flag.String("type", "logical", "backup: logical or snapshot")
	mode := flag.String("encryption", "", "backup: none, database, key or recipients (default as the CLI)")
	comp := flag.String("compression", "zstd", "backup: zstd or gzip")
	incremental := flag.Bool("incremental", false, "backup: extend the newest chain in -to")
	var recips recipients
	flag.Var(&recips, "recipient", "backup: age recipient (repeatable)")
	from := flag.String("from", "", "restore, verify: backup path")
	as := flag.String("as", "copy", "restore: new database name")
	keyFile := flag.String("key-file", "", "backup (mode key), restore, verify: key file")
	identity := flag.String("identity", "", "restore, verify: age identity file")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	mem := flag.String("memprofile", "", "write an allocation profile here")
	flag.Parse()
	if *masterKey == "" && *dataDir != "" {
		*masterKey = filepath.Clean(*dataDir) + ".master.key"
	}
	var stop func()
	if *cpu != "" {
		pf, err := os.Create(*cpu)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			fail(err)
		}
		stop = func() { pprof.StopCPUProfile(); pf.Close() }
	}
	start := time.Now()
	var what string
	var docs int64
	var err error
	switch *op {
	case "backup":
		what, docs, err = runBackup(*dataDir, *masterKey, *name, *to, *typ, *mode, *comp, *keyFile, recips, *incremental)
	case "restore":
		what, docs, err = runRestore(*dataDir, *masterKey, *from, *as, *keyFile, *identity)
	case "verify":
		what, docs, err = runVerify(*from, *keyFile, *identity)
	default:
		err = fmt.Errorf("unknown -op %q: use backup, restore or verify", *op)
	}
	el := time.Since(start)
	if stop != nil {
		stop()
	}
	if err != nil {
		fail(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("backupbench: op=%s %s docs=%d seconds=%.2f docs_per_s=%.0f heap_sys_mib=%d\n",
		*op, what, docs, el.Seconds(), float64(docs)/el.Seconds(), ms.HeapSys>>20)
	if *mem != "" {
		mf, err := os.Create(*mem)
		if err != nil {
			fail(err)
		}
		defer mf.Close()
		if err := pprof.Lookup("allocs").WriteTo(mf, 0); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "backupbench:", err)
	os.Exit(1)
}

func runBackup(dataDir, masterKey, name, to, typ, mode, comp, keyFile string, recips []string, incremental bool) (string, int64, error) {
	t, err := backup.ParseType(typ)
	if err != nil {
		return "", 0, err
	}
	c, err := smuggler.ParseCompression(comp)
	if err != nil {
		return "", 0, err
	}
	d, err := store.Open(store.Options{Dir: dataDir, MasterKeyFile: masterKey})
	if err != nil {
		return "", 0, err
	}
	defer d.Close()
	db, err := d.OpenDatabase(name)
	if err != nil {
		return "", 0, err
	}
	defer db.Close()
	res, err := backup.Run(db, backup.Options{To: []string{to}, Type: t, Compression: c, Incremental: incremental,
		Encryption: backup.Request{Mode: mode, KeyFile: keyFile, Recipients: recips}})
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("file=%s size=%d encryption=%s", res.File, res.Entry.Size, res.Manifest.Encryption), res.Entry.Documents, nil
}

func runRestore(dataDir, masterKey, from, as, keyFile, identity string) (string, int64, error) {
	dec, err := backup.LoadDecryption(keyFile, identity)
	if err != nil {
		return "", 0, err
	}
	t, err := restore.Locate(context.Background(), from, restore.Until{})
	if err != nil {
		return "", 0, err
	}
	d, err := store.Open(store.Options{Dir: dataDir, MasterKeyFile: masterKey, Create: true})
	if err != nil {
		return "", 0, err
	}
	defer d.Close()
	res, err := restore.Restore(d, t, restore.Options{As: as, Decryption: dec})
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("database=%s encrypted=%v", res.Database, res.Encrypted), res.Stats.CountOfDocuments, nil
}

func runVerify(from, keyFile, identity string) (string, int64, error) {
	dec, err := backup.LoadDecryption(keyFile, identity)
	if err != nil {
		return "", 0, err
	}
	t, err := restore.Locate(context.Background(), from, restore.Until{})
	if err != nil {
		return "", 0, err
	}
	rep, err := restore.Verify(context.Background(), t, dec, nil)
	if err != nil {
		return "", 0, err
	}
	var docs int64
	for _, f := range rep.Files {
		docs += f.Documents
	}
	return fmt.Sprintf("chain=%s", rep.ChainDir), docs, nil
}
