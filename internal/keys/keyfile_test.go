package keys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	const hint = ": a magpie key is the base64 text of 32 random bytes (make one with `magpie secrets generate`)"
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    Key
		wantErr string // %s is replaced by the path
		wantIs  error
	}{
		{name: "0600", content: seqKeyText + "\n", mode: 0o600, want: seqKey},
		{name: "0400", content: seqKeyText, mode: 0o400, want: seqKey},
		{name: "0644", content: seqKeyText + "\n", mode: 0o644,
			wantErr: "key file %s is readable by other users (mode 0644): run `chmod 600 %s` and try again", wantIs: ErrKeyFilePermissions},
		{name: "0640", content: seqKeyText, mode: 0o640,
			wantErr: "key file %s is readable by other users (mode 0640): run `chmod 600 %s` and try again", wantIs: ErrKeyFilePermissions},
		{name: "0602", content: seqKeyText, mode: 0o602,
			wantErr: "key file %s is readable by other users (mode 0602): run `chmod 600 %s` and try again", wantIs: ErrKeyFilePermissions},
		{name: "empty", content: "", mode: 0o600, wantErr: "key file %s: the key is empty" + hint, wantIs: ErrInvalidKey},
		{name: "short key", content: "AAAAAAAAAAAAAAAAAAAAAA==\n", mode: 0o600,
			wantErr: "key file %s: the key decodes to 16 bytes, not 32" + hint, wantIs: ErrInvalidKey},
		{name: "too large", content: strings.Repeat("A", 5000), mode: 0o600,
			wantErr: "key file %s is larger than 4096 bytes, so it does not hold a magpie key: check the path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			// Set the access time in the past so a read would move it (on
			// filesystems that record atime at all).
			old := time.Unix(1e9, 0)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ReadFile: %v", err)
				}
				if got != tt.want {
					t.Fatalf("ReadFile = %s, want %s", got, tt.want)
				}
				return
			}
			want := strings.ReplaceAll(tt.wantErr, "%s", path)
			if err == nil || err.Error() != want {
				t.Fatalf("error\n got %v\nwant %s", err, want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error does not wrap %v", tt.wantIs)
			}
			if strings.Contains(err.Error(), seqKeyText) {
				t.Errorf("error contains the key")
			}
			if tt.wantIs == ErrKeyFilePermissions {
				if at := accessTime(t, path); !at.Equal(old) {
					t.Errorf("access time moved from %v to %v: the refused file was read", old, at)
				}
				// Positive control: a real read must move atime here, or
				// the check above proves nothing on this filesystem.
				if _, err := os.ReadFile(path); err != nil {
					t.Fatal(err)
				}
				if accessTime(t, path).Equal(old) {
					t.Logf("this filesystem does not record access times: could not check that %s was left unread", path)
				}
			}
		})
	}
}

// accessTime is the file's atime. Linux's relatime updates it on the first
// read after a change when atime is older than mtime or a day old, which
// the Chtimes above guarantees, so a read would be visible.
func accessTime(t *testing.T, path string) time.Time {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	return time.Unix(st.Atim.Sec, st.Atim.Nsec)
}

func TestReadFileMissingAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.key")
	_, err := ReadFile(missing)
	want := "key file " + missing + " does not exist: check the path, or create a key with `magpie secrets generate > " + missing + " && chmod 600 " + missing + "`"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("error does not wrap fs.ErrNotExist")
	}

	_, err = ReadFile(dir)
	want = "key file " + dir + " is not a regular file: give the path of the file that holds the key"
	if err == nil || err.Error() != want {
		t.Fatalf("directory: error\n got %v\nwant %s", err, want)
	}

	if os.Geteuid() == 0 {
		t.Log("running as root: skipping the permission-denied case, root reads any file")
		return
	}
	locked := filepath.Join(dir, "locked.key")
	if err := os.WriteFile(locked, []byte(seqKeyText), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(locked)
	want = "cannot read key file " + locked + ": permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("unreadable: error\n got %v\nwant %s", err, want)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.key")
	if err := WriteFile(path, seqKey); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(content), seqKeyText+"\n"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %04o, want 0600", got)
	}
	back, err := ReadFile(path)
	if err != nil || back != seqKey {
		t.Fatalf("ReadFile = %s, %v; want %s", back, err, seqKey)
	}

	// A second write must fail and leave the first key intact.
	other, _ := Generate()
	err = WriteFile(path, other)
	want := "key file " + path + " already exists: magpie never overwrites a key; choose another path or remove it yourself if it is truly unused"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrExist) {
		t.Error("error does not wrap fs.ErrExist")
	}
	content, _ = os.ReadFile(path)
	if string(content) != seqKeyText+"\n" {
		t.Errorf("existing key file was changed to %q", content)
	}

	// A wide umask must not widen the mode (the umask can only narrow it,
	// but the promise is 0600 exactly).
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path2 := filepath.Join(dir, "umask.key")
	if err := WriteFile(path2, seqKey); err != nil {
		t.Fatal(err)
	}
	info, _ = os.Stat(path2)
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("mode with umask 0 = %04o, want 0600", got)
	}

	err = WriteFile(filepath.Join(dir, "no-such-dir", "x.key"), seqKey)
	want = "cannot create key file " + filepath.Join(dir, "no-such-dir", "x.key") + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("missing dir: error\n got %v\nwant %s", err, want)
	}
}
