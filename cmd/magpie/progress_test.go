package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// On a terminal, backup and restore draw a progress bar on standard error
// (documents and bytes); piped, as in every other test, they print only
// the result.
func TestProgressBarOnTerminal(t *testing.T) {
	e := newEnv(t)
	e.ok("db", "create", "p")
	e.ok("import", "p", killDump(t, e.dir, 3000))
	to := filepath.Join(e.dir, "bk")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "run", "p", "--to", to}, "| backup p: "},
		{[]string{"restore", to, "--as", "q"}, "restore q"},
	} {
		args := c.args
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		cmd := exec.Command(magpieBin, append([]string{"--data", e.data, "--master-key", e.master}, args...)...)
		cmd.Env = append(os.Environ(), "MAGPIE_DATA=", "MAGPIE_MASTER_KEY_FILE=")
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, tty
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		drawn, _ := io.ReadAll(ptmx) // until the child closes its end
		ptmx.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, drawn)
		}
		// The bar is drawn (how often depends on timing) and cleared at
		// the end.
		if !strings.Contains(string(drawn), c.want) || !strings.HasSuffix(string(drawn), "\r") {
			t.Errorf("%v: the terminal did not show a progress bar %q:\n%q", args, c.want, drawn)
		}
		if strings.Contains(stdout.String(), "documents\x1b") || strings.Contains(stdout.String(), "\r") {
			t.Errorf("%v: the progress bar went to stdout:\n%q", args, stdout.String())
		}
	}
}
