package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrKeyFilePermissions is wrapped by the error [ReadFile] returns for a key
// file that users other than its owner could read or write.
var ErrKeyFilePermissions = errors.New("key file permissions are too open")

// maxKeyFileSize bounds what ReadFile reads: a key file holds 44 characters
// and a newline, so anything much larger is the wrong file, and reading it
// whole (a database, a device) would only waste time before failing.
const maxKeyFileSize = 4096

// ReadFile reads a key written by [WriteFile] or by
// `magpie secrets generate > FILE`.
//
// A file that its group or other users can read or write is refused before
// a byte of it is read: a key that others could have seen must be treated as
// leaked, and refusing it makes the operator fix the mode while the key is
// probably still secret. The content must be a key's text form (see
// [Parse]).
func ReadFile(path string) (Key, error) {
	// Open first and check the mode of what was opened, not of the path, so
	// the file cannot be swapped between the check and the read.
	f, err := os.Open(path)
	if err != nil {
		return Key{}, openError(path, err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("cannot read key file %s: %w", path, pathErr(err))
	}
	if !info.Mode().IsRegular() {
		return Key{}, fmt.Errorf("key file %s is not a regular file: give the path of the file that holds the key", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return Key{}, &wrapError{
			msg: fmt.Sprintf("key file %s is readable by other users (mode %04o): run `chmod 600 %s` and try again", path, uint32(perm), path),
			err: ErrKeyFilePermissions,
		}
	}

	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Key{}, fmt.Errorf("cannot read key file %s: %w", path, pathErr(err))
	}
	if n > maxKeyFileSize {
		return Key{}, fmt.Errorf("key file %s is larger than %d bytes, so it does not hold a magpie key: check the path", path, maxKeyFileSize)
	}
	k, err := Parse(string(buf[:n]))
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// WriteFile writes k's text form and a newline to a new file at path, with
// mode 0600, and makes it durable (file and directory synced) before
// returning.
//
// It never replaces an existing file: overwriting a key can make every
// database and backup sealed with it unreadable, so the operator must
// remove the old file themselves. If writing fails after the file was
// created, the partial file is removed.
func WriteFile(path string, k Key) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &wrapError{
				msg: fmt.Sprintf("key file %s already exists: magpie never overwrites a key; choose another path or remove it yourself if it is truly unused", path),
				err: fs.ErrExist,
			}
		}
		return fmt.Errorf("cannot create key file %s: %w", path, pathErr(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()

	// The umask can only clear bits, so 0600 from OpenFile is at most 0600;
	// Chmod anyway so the promise does not rest on that reasoning (or on a
	// filesystem that ignores the create mode).
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("cannot set mode 0600 on key file %s: %w", path, pathErr(err))
	}
	text := []byte(k.Base64() + "\n")
	defer clear(text)
	if _, err := f.Write(text); err != nil {
		return fmt.Errorf("cannot write key file %s: %w", path, pathErr(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync key file %s: %w", path, pathErr(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close key file %s: %w", path, pathErr(err))
	}
	// Sync the directory too: without it a crash can lose the new name, and
	// with it the only copy of a key that may already be sealing data.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("cannot sync the directory of key file %s: %w", path, pathErr(err))
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("cannot sync the directory of key file %s: %w", path, pathErr(err))
	}
	return nil
}

// openError turns the error from opening a key file into one that says what
// to do.
func openError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &wrapError{
			msg: fmt.Sprintf("key file %s does not exist: check the path, or create a key with `magpie secrets generate > %s && chmod 600 %s`", path, path, path),
			err: fs.ErrNotExist,
		}
	}
	return fmt.Errorf("cannot read key file %s: %w", path, pathErr(err))
}

// pathErr strips the *fs.PathError wrapper, whose message repeats the path
// the caller's message already names.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
