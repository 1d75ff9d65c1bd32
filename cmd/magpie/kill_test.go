package main

// kill -9 of a child process in the middle of a backup (logical, key mode;
// snapshot of an encrypted database) and of a restore (DESIGN.md sections 4
// and 8): no file that looks complete is left behind, earlier backups still
// restore, the data dir lock is free again and no database appears.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/testservers"
)

const (
	// killDocs documents of ~1 KB (hex of random bytes: compressible only
	// to about half) make a logical backup take about a second here.
	killDocs       = 40000
	killIterations = 8
	// killBudget bounds the loop of one test; iterations left when it is
	// spent are skipped (and logged), so the test never runs away.
	killBudget = 120 * time.Second
)

// killDump writes a RavenDB export of n documents of about 1 KB each.
func killDump(t *testing.T, dir string, n int) string {
	t.Helper()
	p := filepath.Join(dir, "big.ravendbdump")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(`{"BuildVersion":1,"Docs":[`)
	buf := make([]byte, 400)
	for i := 0; i < n; i++ {
		if i > 0 {
			w.WriteByte(',')
		}
		if _, err := rand.Read(buf); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, `{"N":%d,"Payload":"%s","@metadata":{"@collection":"Items","@id":"items/%d"}}`, i, hex.EncodeToString(buf), i)
	}
	w.WriteString(`]}`)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// killChild is a magpie child process that the test kills.
type killChild struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

func killStart(t *testing.T, e *env, args ...string) *killChild {
	t.Helper()
	c := &killChild{done: make(chan error, 1)}
	c.cmd = exec.Command(magpieBin, append([]string{"--data", e.data, "--master-key", e.master}, args...)...)
	c.cmd.Env = append(os.Environ(), "MAGPIE_DATA=", "MAGPIE_MASTER_KEY_FILE=")
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.cmd.Process.Kill() })
	return c
}

// kill sends SIGKILL (unless the child has already exited) and waits for
// the child; it reports whether the child had finished on its own, and
// fails the test when it did so with an error.
func (c *killChild) kill(t *testing.T) (finished bool) {
	t.Helper()
	c.cmd.Process.Kill() // an error here means it has exited already
	var err error
	select {
	case err = <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not exit within 30s of SIGKILL", c.cmd.Args)
	}
	if err == nil {
		return true
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return false
		}
	}
	t.Fatalf("%v failed on its own: %v\n%s%s", c.cmd.Args, err, c.stdout.String(), c.stderr.String())
	return false
}

// killLockFree checks that no process holds the data dir lock.
func killLockFree(t *testing.T, e *env) {
	t.Helper()
	l, err := vfs.Default.Lock(filepath.Join(e.data, "LOCK"))
	if err != nil {
		t.Fatalf("the data dir lock is still held after the child died: %v", err)
	}
	l.Close()
}

// killCheckChains checks the destination folder after a kill: every chain
// folder not named .in-progress is complete (manifest with a valid
// checksum, every file it lists present with its size and SHA-256, nothing
// else), and no .in-progress file lies outside a .in-progress chain
// folder. It returns the newest complete chain and the incomplete ones.
func killCheckChains(t *testing.T, to string) (newest string, incomplete []string) {
	t.Helper()
	entries, err := os.ReadDir(to)
	if err != nil {
		t.Fatal(err)
	}
	var complete []string
	for _, ent := range entries {
		p := filepath.Join(to, ent.Name())
		if !ent.IsDir() {
			t.Errorf("stray file in the destination: %s", ent.Name())
			continue
		}
		if !strings.HasSuffix(ent.Name(), ".backup") && !strings.HasSuffix(ent.Name(), ".snapshot") {
			t.Errorf("unexpected folder in the destination: %s", ent.Name())
			continue
		}
		if _, err := os.Stat(filepath.Join(p, backup.ManifestName)); errors.Is(err, os.ErrNotExist) {
			// Interrupted before its manifest: readers pass over it. A
			// run killed between making the folder and its first file
			// leaves it empty: no object, so no chain to list.
			if files, _ := os.ReadDir(p); len(files) > 0 {
				incomplete = append(incomplete, p)
			}
			continue
		}
		m, err := backup.ReadLocalManifest(p)
		if err != nil {
			t.Errorf("chain %s looks complete but: %v", ent.Name(), err)
			continue
		}
		listed := map[string]bool{backup.ManifestName: true}
		for _, fe := range m.Files {
			listed[fe.Name] = true
			data, err := os.ReadFile(filepath.Join(p, fe.Name))
			if err != nil {
				t.Errorf("chain %s: %v", ent.Name(), err)
				continue
			}
			sum := sha256.Sum256(data)
			if int64(len(data)) != fe.Size || hex.EncodeToString(sum[:]) != fe.SHA256 {
				t.Errorf("chain %s: %s is %d bytes (manifest %d), SHA-256 match %v", ent.Name(), fe.Name, len(data), fe.Size, hex.EncodeToString(sum[:]) == fe.SHA256)
			}
		}
		files, _ := os.ReadDir(p)
		for _, f := range files {
			// A killed incremental leaves a partial file, or (killed
			// between the file and the manifest) a file the manifest does
			// not list: readers ignore both. A full run leaves neither in
			// a chain that has a manifest.
			if !listed[f.Name()] && (len(m.Files) == 1 && !strings.Contains(f.Name(), ".incremental-backup")) {
				t.Errorf("chain %s holds %s, which its manifest does not list", ent.Name(), f.Name())
			}
		}
		complete = append(complete, p)
	}
	sort.Strings(complete)
	if len(complete) == 0 {
		t.Fatalf("no complete chain left in %s", to)
	}
	return complete[len(complete)-1], incomplete
}

// killCheckLs checks that `backup ls` flags the interrupted chains and
// only them.
func killCheckLs(t *testing.T, e *env, to string, incomplete []string) {
	t.Helper()
	var chains []struct {
		Dir      string
		Complete bool
		Problem  string
	}
	if err := json.Unmarshal([]byte(e.ok("backup", "ls", to, "--json")), &chains); err != nil {
		t.Fatal(err)
	}
	inc := map[string]bool{}
	for _, d := range incomplete {
		inc[d] = true
	}
	flagged := 0
	for _, c := range chains {
		switch {
		case inc[c.Dir]:
			flagged++
			if c.Complete || (c.Problem != "its first backup never finished (it has no manifest.json)" && !strings.HasSuffix(c.Problem, "has no manifest.json, so its backup never finished. Use a complete backup (see `magpie backup ls`).")) {
				t.Errorf("backup ls: interrupted chain %s shown as complete %v, problem %q", c.Dir, c.Complete, c.Problem)
			}
		case !c.Complete:
			t.Errorf("backup ls: chain %s is incomplete: %s", c.Dir, c.Problem)
		}
	}
	if flagged != len(incomplete) {
		t.Errorf("backup ls lists %d of the %d interrupted chains", flagged, len(incomplete))
	}
	text := e.ok("backup", "ls", to)
	if got := strings.Count(text, "INCOMPLETE: "); got != len(incomplete) {
		t.Errorf("backup ls shows %d INCOMPLETE lines for %d interrupted chains:\n%s", got, len(incomplete), text)
	}
}

func killSetup(t *testing.T) (e *env, dbKeyPath, bkKeyPath string) {
	t.Helper()
	if testing.Short() {
		t.Skip("kill tests import a large database")
	}
	e = newEnv(t)
	dbKeyPath, _ = e.keyFile("db.key")
	bkKeyPath, _ = e.keyFile("backup.key")
	e.ok("db", "create", "big", "--encrypted", "--key-file", dbKeyPath)
	e.ok("import", "big", killDump(t, e.dir, killDocs))
	return e, dbKeyPath, bkKeyPath
}

// TestKillBackup kills `backup run` at random points.
func TestKillBackup(t *testing.T) {
	e, dbKeyPath, bkKeyPath := killSetup(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 0))
	kinds := []struct {
		name      string
		args      []string
		restoreBy []string
	}{
		{"logical", []string{"--encryption", "key", "--key-file", bkKeyPath}, []string{"--key-file", bkKeyPath}},
		{"snapshot", []string{"--type", "snapshot"}, []string{"--key-file", dbKeyPath}},
	}
	restored := 0
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			to := filepath.Join(e.dir, k.name)
			run := append([]string{"backup", "run", "big", "--to", to}, k.args...)
			// Complete backups first, timed (the first run after the import
			// is slower: time a second one too and take the shorter).
			var dur time.Duration
			for i := 0; i < 2; i++ {
				start := time.Now()
				e.ok(run...)
				if d := time.Since(start); i == 0 || d < dur {
					dur = d
				}
			}
			first, _ := killCheckChains(t, to)
			firstTree := bbTree(t, first)
			t.Logf("a complete %s backup takes %v", k.name, dur)

			// Positive control for the lock check: while a backup runs,
			// the lock is held.
			c := killStart(t, e, run...)
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if m, _ := filepath.Glob(filepath.Join(to, "*", "*"+backup.InProgressSuffix)); len(m) > 0 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if l, err := vfs.Default.Lock(filepath.Join(e.data, "LOCK")); err == nil {
				l.Close()
				if c.kill(t) {
					t.Logf("control: the backup finished before the lock could be checked")
				} else {
					t.Fatalf("control: the data dir lock was free while a backup ran")
				}
			} else {
				c.kill(t)
			}

			loopStart := time.Now()
			for i := 0; i < killIterations; i++ {
				if time.Since(loopStart) > killBudget {
					t.Logf("time budget spent after %d iterations", i)
					break
				}
				delay := time.Duration(rng.Int64N(int64(dur) + 1))
				c := killStart(t, e, run...)
				time.Sleep(delay)
				finished := c.kill(t)
				t.Logf("iteration %d: killed after %v (finished on its own: %v)", i, delay, finished)

				killLockFree(t, e)
				newest, incomplete := killCheckChains(t, to)
				t.Logf("  %d interrupted chain folders so far", len(incomplete))
				killCheckLs(t, e, to, incomplete)
				// The folder of chains restores its newest complete chain,
				// with every document.
				name := fmt.Sprintf("r%d", restored)
				restored++
				out := e.ok(append([]string{"restore", to, "--as", name, "--json"}, k.restoreBy...)...)
				var res struct {
					ChainDir         string
					CountOfDocuments int64
				}
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatal(err)
				}
				if res.ChainDir != newest || res.CountOfDocuments != killDocs {
					t.Errorf("restore picked %s with %d documents; want %s with %d", res.ChainDir, res.CountOfDocuments, newest, killDocs)
				}
				e.ok("db", "delete", name)
				if !equalTrees(bbTree(t, first), firstTree) {
					t.Fatalf("the first backup %s changed", first)
				}
				if t.Failed() {
					break
				}
			}
			// The earliest chain still verifies and restores.
			e.ok(append([]string{"backup", "verify", first}, k.restoreBy...)...)
			out := e.ok(append([]string{"restore", first, "--as", "first-" + k.name, "--json"}, k.restoreBy...)...)
			if !strings.Contains(out, fmt.Sprintf(`"CountOfDocuments": %d`, killDocs)) {
				t.Errorf("restore of the first chain: %s", out)
			}
		})
	}
	// The source database is intact.
	var st struct{ CountOfDocuments int64 }
	if err := json.Unmarshal([]byte(e.ok("stats", "big", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.CountOfDocuments != killDocs {
		t.Errorf("source database holds %d documents, want %d", st.CountOfDocuments, killDocs)
	}
}

// TestKillRestore kills `restore` at random points: no database appears
// under the name (unless the restore had finished, then it is whole), the
// next command sweeps the leftovers, and the same restore then succeeds.
func TestKillRestore(t *testing.T) {
	e, _, bkKeyPath := killSetup(t)
	to := filepath.Join(e.dir, "backups")
	e.ok("backup", "run", "big", "--to", to, "--encryption", "key", "--key-file", bkKeyPath)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))

	restoreArgs := func(name string) []string {
		return []string{"restore", to, "--as", name, "--key-file", bkKeyPath, "--json"}
	}
	start := time.Now()
	e.ok(restoreArgs("timed")...)
	dur := time.Since(start)
	e.ok("db", "delete", "timed")
	t.Logf("a restore takes %v", dur)
	listBefore := e.ok("db", "list", "--json")

	ctx, cancel := context.WithTimeout(context.Background(), killBudget)
	defer cancel()
	for i := 0; i < killIterations/2 && ctx.Err() == nil; i++ {
		delay := time.Duration(rng.Int64N(int64(dur) + 1))
		c := killStart(t, e, restoreArgs("victim")...)
		time.Sleep(delay)
		finished := c.kill(t)
		t.Logf("iteration %d: killed after %v (finished on its own: %v)", i, delay, finished)
		killLockFree(t, e)
		var leftovers []string
		for _, name := range bbEntries(t, filepath.Join(e.data, "databases")) {
			if strings.HasPrefix(name, ".") {
				leftovers = append(leftovers, name)
			}
		}
		t.Logf("  leftovers before the next command: %v", leftovers)

		var names []string
		var dbs []struct {
			Name string
		}
		if err := json.Unmarshal([]byte(e.ok("db", "list", "--json")), &dbs); err != nil {
			t.Fatal(err)
		}
		for _, d := range dbs {
			names = append(names, d.Name)
		}
		if strings.Contains(","+strings.Join(names, ",")+",", ",victim,") {
			// Renamed into place before the kill: it must be whole.
			var st struct{ CountOfDocuments int64 }
			if err := json.Unmarshal([]byte(e.ok("stats", "victim", "--json")), &st); err != nil {
				t.Fatal(err)
			}
			if st.CountOfDocuments != killDocs {
				t.Fatalf("a killed restore left database victim with %d documents", st.CountOfDocuments)
			}
			e.ok("db", "delete", "victim")
		} else if got := e.ok("db", "list", "--json"); got != listBefore {
			t.Errorf("db list after a killed restore:\n%s\nwas\n%s", got, listBefore)
		}
		// `db list` opened the data dir, which sweeps leftovers away.
		for _, name := range bbEntries(t, filepath.Join(e.data, "databases")) {
			if strings.HasPrefix(name, ".") {
				t.Errorf("leftover %s in the databases folder after the next command", name)
			}
		}
	}
	out := e.ok(restoreArgs("victim")...)
	if !strings.Contains(out, fmt.Sprintf(`"CountOfDocuments": %d`, killDocs)) {
		t.Errorf("restore after the kills: %s", out)
	}
}

// TestKillIncremental kills `backup run --incremental` at random points:
// the chain keeps its earlier files and stays restorable, the killed file
// is never listed, and the next incremental extends the chain without a
// gap.
func TestKillIncremental(t *testing.T) {
	e, _, bkKeyPath := killSetup(t)
	to := filepath.Join(e.dir, "chain")
	full := e.backupJSON("big", "--to", to, "--encryption", "key", "--key-file", bkKeyPath)
	run := []string{"backup", "run", "big", "--to", to, "--incremental", "--key-file", bkKeyPath}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 2))
	// Each round rewrites a quarter of the documents, so an incremental
	// has real work to do.
	change := killDump(t, filepath.Join(e.dir), killDocs/4)
	e.ok("import", "big", change)
	start := time.Now()
	e.ok(run...)
	dur := time.Since(start)
	t.Logf("an incremental of %d documents takes %v", killDocs/4, dur)
	files := 2
	loopStart := time.Now()
	for i := 0; i < killIterations && time.Since(loopStart) < killBudget; i++ {
		e.ok("import", "big", change)
		delay := time.Duration(rng.Int64N(int64(dur) + 1))
		c := killStart(t, e, run...)
		time.Sleep(delay)
		finished := c.kill(t)
		killLockFree(t, e)
		m, err := backup.ReadLocalManifest(full.ChainDir)
		if err != nil {
			t.Fatalf("iteration %d: the chain's manifest after a kill: %v", i, err)
		}
		if finished {
			files++
		}
		t.Logf("iteration %d: killed after %v (finished on its own: %v), %d files in the manifest", i, delay, finished, len(m.Files))
		if len(m.Files) != files && len(m.Files) != files+1 {
			t.Fatalf("the manifest lists %d files, want %d or %d", len(m.Files), files, files+1)
		}
		files = len(m.Files)
		killCheckChains(t, to)
		out := e.ok("restore", to, "--as", "r", "--key-file", bkKeyPath, "--json")
		if !strings.Contains(out, fmt.Sprintf(`"CountOfDocuments": %d`, killDocs)) {
			t.Fatalf("restore after a killed incremental: %s", out)
		}
		e.ok("db", "delete", "r")
	}
	// The next incremental continues the chain; verify checks continuity.
	e.ok("import", "big", change)
	e.ok(run...)
	e.ok("backup", "verify", to, "--key-file", bkKeyPath)
}

// TestKillUpload kills a backup while it uploads to an S3 server: no
// object that looks like a finished backup is left, the earlier chain
// still restores from the URL, and the next run succeeds.
func TestKillUpload(t *testing.T) {
	srv := testservers.StartS3(t)
	e, _, bkKeyPath := killSetup(t)
	url := srv.Location("kills")
	run := []string{"backup", "run", "big", "--to", url, "--key-file", bkKeyPath}
	start := time.Now()
	first := e.backupJSON(run[2:]...)
	dur := time.Since(start)
	t.Logf("a backup to S3 takes %v", dur)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 3))
	complete := 1
	loopStart := time.Now()
	for i := 0; i < killIterations/2 && time.Since(loopStart) < killBudget; i++ {
		delay := time.Duration(rng.Int64N(int64(dur) + 1))
		c := killStart(t, e, run...)
		time.Sleep(delay)
		finished := c.kill(t)
		if finished {
			complete++
		}
		t.Logf("iteration %d: killed after %v (finished on its own: %v)", i, delay, finished)
		var chains []struct {
			Dir      string
			Complete bool
			Problem  string
		}
		if err := json.Unmarshal([]byte(e.ok("backup", "ls", url, "--json")), &chains); err != nil {
			t.Fatal(err)
		}
		n, newest := 0, ""
		for _, c := range chains {
			if c.Complete {
				n++
				newest = c.Dir
			} else if c.Problem != "its first backup never finished (it has no manifest.json)" && !strings.HasSuffix(c.Problem, "has no manifest.json, so its backup never finished. Use a complete backup (see `magpie backup ls`).") {
				t.Errorf("chain %s: %s", c.Dir, c.Problem)
			}
		}
		if !finished && n == complete+1 {
			// Killed in the instant after its manifest was written and
			// before it exited: the chain is complete, and must verify.
			e.ok("backup", "verify", newest, "--key-file", bkKeyPath)
			complete++
		}
		if n != complete {
			t.Fatalf("%d complete chains in %s, want %d", n, url, complete)
		}
	}
	e.ok("backup", "verify", first.ChainDir, "--key-file", bkKeyPath)
	out := e.ok("restore", first.ChainDir, "--as", "r", "--key-file", bkKeyPath, "--json")
	if !strings.Contains(out, fmt.Sprintf(`"CountOfDocuments": %d`, killDocs)) {
		t.Fatalf("restore of the first chain after the kills: %s", out)
	}
	e.ok(run...)
}
