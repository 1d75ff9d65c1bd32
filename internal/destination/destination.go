// Package destination is where backups are kept: a local folder, written by
// magpie itself with fsync and rename, or a bucket of an object store
// (S3-compatible, Azure Blob Storage, Google Cloud Storage) through
// gocloud.dev/blob. Both are addressed the same way: slash-separated names
// relative to the store's root.
//
// The invariant every Store keeps: an object is visible under its name
// only once its writer's Commit returned nil. A failed, aborted or killed
// write leaves nothing under that name (a local folder may keep a
// NAME.in-progress file, which readers ignore).
package destination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Store is one destination.
type Store interface {
	// Create starts writing name. Nothing is visible under name until
	// Commit returns nil; Abort, or a failed Commit, leaves nothing.
	Create(ctx context.Context, name string) (Writer, error)
	// Open reads name. A missing object gives an error that wraps
	// fs.ErrNotExist.
	Open(ctx context.Context, name string) (Reader, error)
	// List returns every object whose name starts with prefix, sorted by
	// name. A local folder also lists files still being written (or left
	// by a killed run) as Partial; object stores have no such objects.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes name; a missing name is not an error.
	Delete(ctx context.Context, name string) error
	// String is the location as an operator wrote it, without
	// credentials.
	String() string
	Close() error
}

// Writer writes one object.
type Writer interface {
	io.Writer
	// Commit finishes the object and makes it visible (and, for a local
	// folder, durable).
	Commit() error
	// Abort discards what was written. It is safe after Commit, where it
	// does nothing.
	Abort()
}

// Reader reads one object.
type Reader interface {
	io.ReadCloser
	// Size is the object's size in bytes.
	Size() int64
}

// Object is a listed object.
type Object struct {
	Name    string
	Size    int64
	ModTime time.Time
	// Partial marks a local NAME.in-progress file: never a complete
	// object, listed so that interrupted runs can be shown and cleaned.
	Partial bool
}

// ErrNotExist is wrapped by errors about missing objects.
var ErrNotExist = fs.ErrNotExist

// IsURL reports whether location names an object store rather than a local
// path.
func IsURL(location string) bool {
	i := strings.Index(location, "://")
	return i > 0 && !strings.ContainsAny(location[:i], `/\`)
}

// LocalPath returns the folder location names when it is local (a path or
// a file:// URL); ok is false for an object store.
func LocalPath(location string) (path string, ok bool) {
	if !IsURL(location) {
		return location, true
	}
	u, err := url.Parse(location)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	return filepath.FromSlash(u.Path), true
}

// Open opens the destination at location: a local path (a file:// URL
// too), or s3://BUCKET/PREFIX, azblob://CONTAINER/PREFIX,
// gs://BUCKET/PREFIX with the query parameters of gocloud.dev/blob.
// Credentials come from the environment, never from the location.
func Open(ctx context.Context, location string) (Store, error) {
	if location == "" {
		return nil, errors.New("no destination was given. Give a folder or a URL (s3://, azblob://, gs://)")
	}
	if !IsURL(location) {
		if err := CheckNotURL(location); err != nil {
			return nil, err
		}
		return OpenLocal(location)
	}
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("destination %q is not a valid URL: %v. Write it as s3://BUCKET/PATH, azblob://CONTAINER/PATH, gs://BUCKET/PATH or a local path", Redact(location), parseProblem(err))
	}
	if u.User != nil {
		return nil, fmt.Errorf("destination %s holds credentials. Give them in the environment (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...), never in the URL", Redact(location))
	}
	switch u.Scheme {
	case "file":
		return OpenLocal(filepath.FromSlash(u.Path))
	case "s3", "azblob", "gs":
		return openBucket(ctx, u)
	}
	return nil, fmt.Errorf("destination scheme %q is not supported. Use a local path, s3://, azblob:// or gs://", u.Scheme)
}

// CheckURL checks an object store or file:// URL as far as can be done
// without opening it (Open checks the same, and more): the scheme, a
// bucket, known query parameters only, no credentials anywhere in it.
func CheckURL(location string) error {
	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("destination %q is not a valid URL: %v. Write it as s3://BUCKET/PATH, azblob://CONTAINER/PATH, gs://BUCKET/PATH or a local path", Redact(location), parseProblem(err))
	}
	if u.User != nil {
		return fmt.Errorf("destination %s holds credentials. Give them in the environment (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...), never in the URL", Redact(location))
	}
	switch u.Scheme {
	case "file":
		return nil
	case "s3", "azblob", "gs":
		return checkBucketURL(u)
	}
	return fmt.Errorf("destination scheme %q is not supported. Use a local path, s3://, azblob:// or gs://", u.Scheme)
}

// CheckNotURL refuses a local path that begins like a URL whose "//" was
// lost (s3:bucket/x, gs:/bucket): it would quietly become a folder named
// after the URL, credentials and all.
func CheckNotURL(location string) error {
	scheme, _, ok := strings.Cut(location, ":")
	if !ok {
		return nil
	}
	switch strings.ToLower(scheme) {
	case "s3", "azblob", "gs", "file":
		return fmt.Errorf("destination %s:... looks like a URL without its \"//\". Write it as %s://BUCKET/PATH, or give a folder path that does not start with %q", scheme, strings.ToLower(scheme), scheme+":")
	}
	return nil
}

// parseProblem is what url.Parse found wrong, without the URL it quotes
// (which may hold a password).
func parseProblem(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact hides what in a location could be a secret before it is shown:
// user information, unknown query parameters and an endpoint that is not
// a plain URL.
func Redact(location string) string {
	if !IsURL(location) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		// Where a secret would be cannot be told: show the scheme only.
		return location[:strings.Index(location, "://")+3] + "REDACTED"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = "REDACTED", ""
	}
	if _, ok := queryParams[u.Scheme]; ok && u.RawQuery != "" {
		u.RawQuery = redactQuery(u.Scheme, u.Query()).Encode()
	}
	return u.String()
}

// Join joins slash-separated name elements, skipping empty ones.
func Join(elem ...string) string {
	var parts []string
	for _, e := range elem {
		if e = strings.Trim(e, "/"); e != "" {
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "/")
}

// Exists reports whether name can be opened.
func Exists(ctx context.Context, s Store, name string) (bool, error) {
	r, err := s.Open(ctx, name)
	if err == nil {
		r.Close()
		return true, nil
	}
	if errors.Is(err, ErrNotExist) {
		return false, nil
	}
	return false, err
}
