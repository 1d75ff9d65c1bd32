// Command importprof imports an export file into a fresh encrypted database
// through internal/dump.Import, in process, with a CPU profile, so the
// import path can be profiled without a hook in the CLI.
//
//	go run ./bench/importprof -data DIR -in FILE.ravendbdump -cpuprofile cpu.prof
//	go tool pprof -top -cum cpu.prof
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/store"
)

func main() {
	dataDir := flag.String("data", "", "data dir to create (must not exist)")
	in := flag.String("in", "", "export file to import")
	name := flag.String("db", "bench", "database name")
	plain := flag.Bool("plain", false, "unencrypted database (default: encrypted)")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	mem := flag.String("memprofile", "", "write a heap profile (in-use at the end, allocations overall) here")
	flag.Parse()
	if *dataDir == "" || *in == "" {
		fmt.Fprintln(os.Stderr, "usage: importprof -data DIR -in FILE [-cpuprofile F] [-memprofile F]")
		os.Exit(2)
	}
	if err := run(*dataDir, *in, *name, !*plain, *cpu, *mem); err != nil {
		fmt.Fprintln(os.Stderr, "importprof:", err)
		os.Exit(1)
	}
}

func run(dataDir, in, name string, encrypted bool, cpu, mem string) error {
	d, err := store.Open(store.Options{Dir: dataDir, MasterKeyFile: filepath.Clean(dataDir) + ".master.key", Create: true})
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.CreateDatabase(name, store.CreateOptions{Encrypted: encrypted}); err != nil {
		return err
	}
	db, err := d.OpenDatabase(name)
	if err != nil {
		return err
	}
	defer db.Close()
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	if cpu != "" {
		pf, err := os.Create(cpu)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	res, err := dump.Import(db, f)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("importprof: docs=%d seconds=%.2f docs_per_s=%.0f\n", res.Documents, el.Seconds(), float64(res.Documents)/el.Seconds())
	if mem != "" {
		runtime.GC()
		mf, err := os.Create(mem)
		if err != nil {
			return err
		}
		defer mf.Close()
		if err := pprof.Lookup("allocs").WriteTo(mf, 0); err != nil {
			return err
		}
	}
	return nil
}
