// Command loadbench is the load generator of bench/load.sh: it drives a
// running `magpie serve` over loopback HTTPS (HTTP/1.1 keep-alive, the
// admin client certificate) with concurrent workers and measures
//
//   - single-document GET/s and PUT/s (random ids of the seeded documents,
//     closed loop, -dur each);
//   - bulk_docs docs/s in batches of 100 (new ids, closed loop, -dur);
//   - p50/p99 GET latency at a fixed request rate (open loop, latency
//     counted from each request's scheduled time so a stalled server is not
//     hidden), first for -dur without a backup, then while full logical
//     backups (POST /databases/{db}/admin/backup) run back to back for at
//     least -dur; only requests scheduled while a backup ran count.
//
// It seeds the database with -docs documents through bulk_docs first and
// prints a markdown report with PASS/MISS against the targets of the issue
// (on 2 cores: >= 20k GET/s, >= 50k docs/s through bulk_docs, p99 GET
// during a backup <= 2x without one).
//
//	go run ./bench/loadbench -url https://127.0.0.1:PORT -cert admin.pem \
//	    -key admin-key.pem -ca ca.pem -backup-dir /tmp/x [-docs 200000]
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url, cert, key, ca string
	db                 string
	docs               int
	workers            int
	bulkWorkers        int
	dur                time.Duration
	rate               int
	backupDir          string
	maxBackupPhase     time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "server URL, https://127.0.0.1:PORT (loopback only)")
	flag.StringVar(&c.cert, "cert", "", "admin client certificate (PEM)")
	flag.StringVar(&c.key, "key", "", "its key (PEM)")
	flag.StringVar(&c.ca, "ca", "", "CA that signed the server certificate (PEM)")
	flag.StringVar(&c.db, "db", "loadbench", "database to create and load")
	flag.IntVar(&c.docs, "docs", 200000, "documents to seed")
	flag.IntVar(&c.workers, "workers", 32, "concurrent workers (connections) for GET and PUT")
	flag.IntVar(&c.bulkWorkers, "bulk-workers", 4, "concurrent workers for bulk_docs")
	flag.DurationVar(&c.dur, "dur", 10*time.Second, "length of each measurement")
	flag.IntVar(&c.rate, "rate", 0, "GET/s of the latency phases (0: a quarter of the measured GET/s)")
	flag.StringVar(&c.backupDir, "backup-dir", "", "folder for the backups, on the server's machine (required)")
	flag.DurationVar(&c.maxBackupPhase, "max-backup-phase", 2*time.Minute, "bound on the backup phase")
	flag.Parse()
	if c.url == "" || c.cert == "" || c.key == "" || c.ca == "" || c.backupDir == "" {
		fmt.Fprintln(os.Stderr, "usage: loadbench -url https://127.0.0.1:PORT -cert admin.pem -key admin-key.pem -ca ca.pem -backup-dir DIR")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// bench holds the client and what every phase needs.
type bench struct {
	c      config
	client *http.Client
	base   string
	body   [][]byte // document bodies, by id number modulo len
	errs   atomic.Int64
	first  atomic.Value // first error text
}

func run(c config) error {
	u, err := url.Parse(c.url)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address; this benchmark runs on loopback only", u.Hostname())
	}
	if !filepath.IsAbs(c.backupDir) {
		return fmt.Errorf("-backup-dir %q must be an absolute path (it is a path on the server's machine)", c.backupDir)
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(c.ca)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s holds no certificate", c.ca)
	}
	conns := max(c.workers, c.bulkWorkers) + 8
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	b := &bench{c: c, client: &http.Client{Transport: tr, Timeout: time.Minute}, base: strings.TrimRight(c.url, "/")}
	b.makeBodies()

	var rep report
	rep.cfg = c
	start := time.Now()

	if err := b.createDatabase(); err != nil {
		return err
	}
	logf("seeding %d documents through bulk_docs (batches of 100, %d workers)", c.docs, c.bulkWorkers)
	seeded, secs := b.seed()
	if b.errs.Load() > 0 {
		return fmt.Errorf("seeding failed: %d errors, first: %v", b.errs.Load(), b.first.Load())
	}
	rep.seedRate = float64(seeded) / secs
	logf("seeded %d docs in %.1f s (%.0f docs/s)", seeded, secs, rep.seedRate)

	logf("warm-up: GET for 2 s")
	b.closedLoop(c.workers, 2*time.Second, b.getRandom)

	logf("GET/s for %s, %d workers", c.dur, c.workers)
	rep.get = b.closedLoop(c.workers, c.dur, b.getRandom)
	logf("  %.0f GET/s, p50 %s p99 %s", rep.get.rate, rep.get.p50, rep.get.p99)

	logf("PUT/s for %s, %d workers", c.dur, c.workers)
	rep.put = b.closedLoop(c.workers, c.dur, b.putRandom)
	logf("  %.0f PUT/s, p50 %s p99 %s", rep.put.rate, rep.put.p50, rep.put.p99)

	logf("bulk_docs for %s, batches of 100, %d workers", c.dur, c.bulkWorkers)
	var batchNo atomic.Int64
	rep.bulk = b.closedLoop(c.bulkWorkers, c.dur, func(w int) error { return b.bulkNew(w, &batchNo) })
	rep.bulk.rate *= 100
	logf("  %.0f docs/s (batch p50 %s p99 %s)", rep.bulk.rate, rep.bulk.p50, rep.bulk.p99)

	rate := c.rate
	if rate <= 0 {
		rate = max(100, int(rep.get.rate/4))
	}
	rep.rate = rate
	logf("GET latency at %d GET/s for %s, no backup", rate, c.dur)
	rep.idle = b.paced(rate, c.dur, nil)
	logf("  p50 %s p99 %s (%d requests)", rep.idle.p50, rep.idle.p99, rep.idle.n)

	logf("GET latency at %d GET/s while full backups run back to back (at least %s)", rate, c.dur)
	rep.during, rep.backups, err = b.pacedDuringBackups(rate)
	if err != nil {
		return err
	}
	logf("  p50 %s p99 %s (%d requests during %d backups)", rep.during.p50, rep.during.p99, rep.during.n, len(rep.backups))

	rep.errors = b.errs.Load()
	if v := b.first.Load(); v != nil {
		rep.firstErr = v.(string)
	}
	rep.total = time.Since(start)
	fmt.Print(rep.markdown())
	return nil
}

// makeBodies prepares 64 document bodies of about 600 bytes.
func (b *bench) makeBodies() {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	for i := range 64 {
		var bio []string
		for range 60 {
			bio = append(bio, words[r.IntN(len(words))])
		}
		doc := map[string]any{
			"Name":    fmt.Sprintf("User %d", i),
			"Email":   fmt.Sprintf("user%d@example.org", i),
			"Age":     18 + r.IntN(60),
			"Active":  r.IntN(2) == 0,
			"Tags":    []string{words[r.IntN(len(words))], words[r.IntN(len(words))]},
			"Address": map[string]any{"City": "Springfield", "Zip": fmt.Sprintf("%05d", r.IntN(100000))},
			"Bio":     strings.Join(bio, " "),
			"@metadata": map[string]any{
				"@collection":        "Users",
				"Raven-Node-Js-Type": "User",
			},
		}
		raw, _ := json.Marshal(doc)
		b.body = append(b.body, raw)
	}
}

func (b *bench) fail(err error) error {
	if b.errs.Add(1) == 1 {
		b.first.Store(err.Error())
	}
	return err
}

// do sends one request and reads the whole answer (keep-alive needs it).
func (b *bench) do(method, path string, body []byte, want ...int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(want, resp.StatusCode) {
		return out, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(out[:min(len(out), 300)]))
	}
	return out, nil
}

func (b *bench) createDatabase() error {
	body, _ := json.Marshal(map[string]any{"DatabaseName": b.c.db, "Settings": map[string]any{}, "Disabled": false, "Encrypted": false})
	_, err := b.do("PUT", "/admin/databases?name="+url.QueryEscape(b.c.db)+"&replicationFactor=1", body, 200, 201)
	if err != nil {
		return fmt.Errorf("create database %s (it must not exist yet): %w", b.c.db, err)
	}
	return nil
}

func (b *bench) docPath(id string) string {
	return "/databases/" + url.PathEscape(b.c.db) + "/docs?id=" + url.QueryEscape(id)
}

func (b *bench) bulkPath() string { return "/databases/" + url.PathEscape(b.c.db) + "/bulk_docs" }

// batch builds a bulk_docs body of PUTs for ids.
func (b *bench) batch(ids []string, bodyOf func(i int) []byte) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"Commands":[`)
	for i, id := range ids {
		if i > 0 {
			buf.WriteByte(',')
		}
		idJSON, _ := json.Marshal(id)
		buf.WriteString(`{"Type":"PUT","Id":`)
		buf.Write(idJSON)
		buf.WriteString(`,"ChangeVector":null,"Document":`)
		buf.Write(bodyOf(i))
		buf.WriteByte('}')
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

func (b *bench) seed() (int, float64) {
	const per = 100
	batches := (b.c.docs + per - 1) / per
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range b.c.bulkWorkers {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= batches || b.errs.Load() > 0 {
					return
				}
				lo, hi := k*per, min((k+1)*per, b.c.docs)
				ids := make([]string, 0, hi-lo)
				for n := lo; n < hi; n++ {
					ids = append(ids, "users/"+strconv.Itoa(n+1))
				}
				body := b.batch(ids, func(i int) []byte { return b.body[(lo+i)%len(b.body)] })
				if _, err := b.do("POST", b.bulkPath(), body, 201); err != nil {
					b.fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return b.c.docs, time.Since(start).Seconds()
}

func (b *bench) getRandom(int) error {
	id := "users/" + strconv.Itoa(1+rand.IntN(b.c.docs))
	_, err := b.do("GET", b.docPath(id), nil, 200)
	return err
}

func (b *bench) putRandom(int) error {
	n := rand.IntN(b.c.docs)
	_, err := b.do("PUT", b.docPath("users/"+strconv.Itoa(n+1)), b.body[rand.IntN(len(b.body))], 201)
	return err
}

func (b *bench) bulkNew(w int, batchNo *atomic.Int64) error {
	k := batchNo.Add(1)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("bulk/%d-%d", k, i)
	}
	body := b.batch(ids, func(i int) []byte { return b.body[(int(k)+i)%len(b.body)] })
	_, err := b.do("POST", b.bulkPath(), body, 201)
	return err
}

// result is one phase's throughput and latency.
type result struct {
	n        int
	rate     float64 // operations per second
	p50, p99 time.Duration
	max      time.Duration
}

func summarize(lat []time.Duration, secs float64) result {
	r := result{n: len(lat)}
	if secs > 0 {
		r.rate = float64(len(lat)) / secs
	}
	if len(lat) == 0 {
		return r
	}
	slices.Sort(lat)
	r.p50 = lat[len(lat)*50/100]
	r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	r.max = lat[len(lat)-1]
	return r
}

// closedLoop runs op on workers goroutines, back to back, for d.
func (b *bench) closedLoop(workers int, d time.Duration, op func(w int) error) result {
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if err := op(w); err != nil {
					b.fail(err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return summarize(slices.Concat(lats...), time.Since(start).Seconds())
}

// sample is one paced request: when it was due and how long it took from
// then.
type sample struct {
	due time.Time
	lat time.Duration
}

// paced sends GETs at rate per second for d (open loop: request k is due at
// start + k/rate; its latency counts from then). keep, when set, says which
// samples count.
func (b *bench) paced(rate int, d time.Duration, keep func(due time.Time) bool) result {
	ss := b.pacedSamples(rate, d, nil)
	var lat []time.Duration
	for _, s := range ss {
		if keep == nil || keep(s.due) {
			lat = append(lat, s.lat)
		}
	}
	return summarize(lat, d.Seconds())
}

// pacedSamples runs the paced load for d, or until stop is closed when d
// is 0.
func (b *bench) pacedSamples(rate int, d time.Duration, stop <-chan struct{}) []sample {
	workers := b.c.workers
	interval := time.Second / time.Duration(rate)
	out := make([][]sample, workers)
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	var stopped atomic.Bool
	if stop != nil {
		go func() { <-stop; stopped.Store(true) }()
	}
	for w := range workers {
		wg.Go(func() {
			for k := 0; ; k++ {
				due := start.Add(time.Duration(k*workers+w) * interval)
				if (d > 0 && due.Sub(start) >= d) || stopped.Load() {
					return
				}
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				if err := b.getRandom(w); err != nil {
					b.fail(err)
					continue
				}
				out[w] = append(out[w], sample{due, time.Since(due)})
			}
		})
	}
	wg.Wait()
	return slices.Concat(out...)
}

// backupRun is one backup: when it was started and when it was seen done.
type backupRun struct {
	start, end time.Time
	docs       int64
	size       int64
	file       string
}

// pacedDuringBackups runs the paced GETs while full backups run back to
// back for at least b.c.dur, and keeps the samples due while one ran.
func (b *bench) pacedDuringBackups(rate int) (result, []backupRun, error) {
	stop := make(chan struct{})
	samples := make(chan []sample, 1)
	go func() { samples <- b.pacedSamples(rate, 0, stop) }()
	time.Sleep(500 * time.Millisecond) // the load runs before the first backup starts
	var runs []backupRun
	var err error
	phase := time.Now()
	for time.Since(phase) < b.c.dur {
		if time.Since(phase) > b.c.maxBackupPhase {
			break
		}
		var r backupRun
		r, err = b.backupOnce(len(runs))
		if err != nil {
			break
		}
		runs = append(runs, r)
	}
	close(stop)
	ss := <-samples
	if err != nil {
		return result{}, runs, err
	}
	var lat []time.Duration
	var busy time.Duration
	for _, r := range runs {
		busy += r.end.Sub(r.start)
	}
	for _, s := range ss {
		for _, r := range runs {
			if !s.due.Before(r.start) && s.due.Before(r.end) {
				lat = append(lat, s.lat)
				break
			}
		}
	}
	return summarize(lat, busy.Seconds()), runs, nil
}

// backupOnce starts a one-time full logical backup and polls its operation
// until it ends.
func (b *bench) backupOnce(i int) (backupRun, error) {
	dir := filepath.Join(b.c.backupDir, fmt.Sprintf("run-%03d", i))
	body, _ := json.Marshal(map[string]any{
		"BackupType":               "Backup",
		"LocalSettings":            map[string]any{"FolderPath": dir},
		"BackupEncryptionSettings": map[string]any{"EncryptionMode": "None"},
	})
	r := backupRun{start: time.Now()}
	out, err := b.do("POST", "/databases/"+url.PathEscape(b.c.db)+"/admin/backup", body, 200)
	if err != nil {
		return r, fmt.Errorf("start backup: %w", err)
	}
	var started struct{ OperationId int64 }
	if err := json.Unmarshal(out, &started); err != nil {
		return r, fmt.Errorf("start backup: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.c.maxBackupPhase)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return r, errors.New("backup did not end within -max-backup-phase")
		case <-time.After(50 * time.Millisecond):
		}
		out, err := b.do("GET", "/databases/"+url.PathEscape(b.c.db)+"/operations/state?id="+strconv.FormatInt(started.OperationId, 10), nil, 200)
		if err != nil {
			return r, fmt.Errorf("backup state: %w", err)
		}
		var st struct {
			Status string
			Result map[string]any
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return r, fmt.Errorf("backup state: %v: %s", err, out)
		}
		switch st.Status {
		case "InProgress":
			continue
		case "Completed":
			r.end = time.Now()
			if v, ok := st.Result["MagpieSize"].(float64); ok {
				r.size = int64(v)
			}
			if m, ok := st.Result["Message"].(string); ok {
				r.file = m
			}
			if d, ok := st.Result["Documents"].(map[string]any); ok {
				if n, ok := d["ReadCount"].(float64); ok {
					r.docs = int64(n)
				}
			}
			return r, nil
		default:
			return r, fmt.Errorf("backup ended %s: %s", st.Status, out)
		}
	}
}

type report struct {
	cfg            config
	seedRate       float64
	get, put, bulk result
	idle, during   result
	rate           int
	backups        []backupRun
	errors         int64
	firstErr       string
	total          time.Duration
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r report) markdown() string {
	var w strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&w, "# magpie load benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "Loopback HTTPS (HTTP/1.1 keep-alive, admin client certificate) against `magpie serve`, "+
		"load generator on the same machine (%s: %d CPUs, %s/%s, %s). Database `%s`: %d documents of ~%d bytes seeded through bulk_docs; "+
		"%d workers for GET/PUT, %d for bulk_docs, %s per measurement.\n\n",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), r.cfg.db, r.cfg.docs, len(benchDocSample()), r.cfg.workers, r.cfg.bulkWorkers, r.cfg.dur)
	ratio := 0.0
	if r.idle.p99 > 0 {
		ratio = float64(r.during.p99) / float64(r.idle.p99)
	}
	fmt.Fprintf(&w, "| Measure | Result | Target (2 cores) | Verdict |\n|---|---:|---:|---|\n")
	fmt.Fprintf(&w, "| single-document GET/s (random ids, p50 %s, p99 %s) | %.0f | >= 20,000 | %s |\n", ms(r.get.p50), ms(r.get.p99), r.get.rate, verdict(r.get.rate >= 20000))
	fmt.Fprintf(&w, "| single-document PUT/s (random existing ids, p50 %s, p99 %s) | %.0f | (none) | - |\n", ms(r.put.p50), ms(r.put.p99), r.put.rate)
	fmt.Fprintf(&w, "| bulk_docs docs/s, batches of 100, new ids (batch p99 %s) | %.0f | >= 50,000 | %s |\n", ms(r.bulk.p99), r.bulk.rate, verdict(r.bulk.rate >= 50000))
	fmt.Fprintf(&w, "| bulk_docs docs/s while seeding (empty database up to %d docs) | %.0f | (info) | - |\n", r.cfg.docs, r.seedRate)
	fmt.Fprintf(&w, "| GET latency at %d GET/s, no backup: p50 / p99 | %s / %s | | |\n", r.rate, ms(r.idle.p50), ms(r.idle.p99))
	fmt.Fprintf(&w, "| GET latency at %d GET/s during full backups: p50 / p99 | %s / %s | | |\n", r.rate, ms(r.during.p50), ms(r.during.p99))
	fmt.Fprintf(&w, "| p99 GET during a backup / p99 without one | %.2fx | <= 2x | %s |\n", ratio, verdict(ratio > 0 && ratio <= 2))
	fmt.Fprintf(&w, "\n")
	var busy time.Duration
	for _, b := range r.backups {
		busy += b.end.Sub(b.start)
	}
	if n := len(r.backups); n > 0 {
		b := r.backups[0]
		fmt.Fprintf(&w, "Backups: %d full logical backups (EncryptionMode None, zstd) back to back, %.1f s in all, %.2f s each on average; "+
			"%d documents, %.1f MiB each. %d paced GETs fell inside a running backup.\n\n",
			n, busy.Seconds(), busy.Seconds()/float64(n), b.docs, float64(b.size)/(1<<20), r.during.n)
	}
	fmt.Fprintf(&w, "Backups ran with magpie serve's --backup-concurrency (default 1: compression on one core); "+
		"the load generator shares the same cores as the server.\n\n")
	fmt.Fprintf(&w, "Latency is open loop: request k is due at start + k/rate and its latency counts from then, so a stalled server "+
		"is not hidden by workers that wait. GET/s, PUT/s and bulk_docs are closed loop (each worker sends its next request when "+
		"the previous one answers).\n\n")
	if r.errors > 0 {
		fmt.Fprintf(&w, "**%d request errors**; first: %s\n\n", r.errors, r.firstErr)
	} else {
		fmt.Fprintf(&w, "No request failed. Total run %.0f s.\n", r.total.Seconds())
	}
	return w.String()
}

// benchDocSample is one seeded body, for its size in the report.
func benchDocSample() []byte {
	var b bench
	b.makeBodies()
	return b.body[0]
}
