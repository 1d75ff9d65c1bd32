package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountTmpfs mounts a tmpfs of size at dir (root only), unmounted when
// the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs (CI needs root for the disk-full test): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
}

// A local destination that fills up mid-backup: the run fails saying the
// disk is full, leaves no partial file or empty chain folder, and the
// backups already there are untouched and still restore.
func TestBackupDiskFull(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "d")
	e.putDoc("d", "small/1", `{"N":1}`)
	to := filepath.Join(e.dir, "full")
	mountTmpfs(t, to, "1m")
	first := e.backupJSON("d", "--to", to)
	// About 4 MiB that compresses to nothing less.
	e.ok("import", "d", killDump(t, e.dir, 4000))
	r := e.run("backup", "run", "d", "--to", to)
	if r.code != exitFailure || !strings.Contains(r.stderr, "the disk is full. Free space or choose another destination") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("backup onto a full disk: exit %d\n%s", r.code, r.stderr)
	}
	entries, err := os.ReadDir(to)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(first.ChainDir) {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Fatalf("after the failed run the destination holds %v, want only %s", names, filepath.Base(first.ChainDir))
	}
	if files, _ := os.ReadDir(first.ChainDir); len(files) != 2 {
		t.Fatalf("the earlier chain changed: %v", files)
	}
	e.ok("restore", to, "--as", "back")
	if n := e.docCount("back"); n != 1 {
		t.Fatalf("restored %d documents, want 1", n)
	}
}
