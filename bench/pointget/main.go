// Command pointget measures in-process point-get latency: it opens a data
// dir and database through internal/store, as the CLI does, and times
// db.Get for random ids lastfm/1..lastfm/N (the ids bench/gendump writes),
// N being the database's document count. Unlike `magpie docs get`, the
// timings exclude process start and opening the store.
//
//	go run ./bench/pointget -data DIR -master-key FILE -db NAME [-gets 100000]
//
// The last line of output is machine-readable:
//
//	pointget: gets=100000 p50_us=... p99_us=... mean_us=... max_us=...
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/magpiedb/magpie/internal/store"
)

func main() {
	dataDir := flag.String("data", "", "data dir")
	masterKey := flag.String("master-key", "", "master key file")
	name := flag.String("db", "", "database name")
	gets := flag.Int("gets", 100000, "number of random gets")
	warm := flag.Int("warmup", 0, "untimed gets before measuring")
	seed := flag.Uint64("seed", 42, "PRNG seed")
	flag.Parse()
	if *dataDir == "" || *name == "" || *gets <= 0 {
		fmt.Fprintln(os.Stderr, "usage: pointget -data DIR -master-key FILE -db NAME [-gets N]")
		os.Exit(2)
	}
	if err := run(*dataDir, *masterKey, *name, *gets, *warm, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "pointget:", err)
		os.Exit(1)
	}
}

func run(dataDir, masterKey, name string, gets, warm int, seed uint64) error {
	openStart := time.Now()
	d, err := store.Open(store.Options{Dir: dataDir, MasterKeyFile: masterKey})
	if err != nil {
		return err
	}
	defer d.Close()
	db, err := d.OpenDatabase(name)
	if err != nil {
		return err
	}
	defer db.Close()
	openTime := time.Since(openStart)
	st, err := db.Stats()
	if err != nil {
		return err
	}
	n := st.CountOfDocuments
	if n <= 0 {
		return fmt.Errorf("database %s is empty", name)
	}
	r := rand.New(rand.NewPCG(seed, seed+1))
	ids := make([]string, gets+warm)
	for i := range ids {
		ids[i] = "lastfm/" + strconv.FormatInt(1+r.Int64N(n), 10)
	}
	for _, id := range ids[:warm] {
		if _, err := db.Get(id); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, gets)
	var bytes int64
	all := time.Now()
	for i, id := range ids[warm:] {
		t := time.Now()
		doc, err := db.Get(id)
		lat[i] = time.Since(t)
		if err != nil {
			return err
		}
		if len(doc.Body) == 0 {
			return fmt.Errorf("%s has an empty body", id)
		}
		bytes += int64(len(doc.Body))
	}
	total := time.Since(all)
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("opened %s (%d docs) in %s; %d gets of random ids, %d body bytes, %.0f gets/s\n",
		name, n, openTime.Round(time.Millisecond), gets, bytes, float64(gets)/total.Seconds())
	fmt.Printf("pointget: gets=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f open_ms=%d\n",
		gets, us(pct(0.50)), us(pct(0.90)), us(pct(0.99)), us(total)/float64(gets), us(lat[len(lat)-1]), openTime.Milliseconds())
	return nil
}
