package destination

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/testservers"
)

// kinds are the stores the same suite runs against. Each returns the
// location of an empty place to write in.
var kinds = []struct {
	name  string
	start func(t testing.TB) string
}{
	{"local", func(t testing.TB) string { return filepath.Join(t.TempDir(), "backups") }},
	{"s3", testservers.S3},
	{"azure", testservers.Azure},
	{"gcs", testservers.GCS},
}

// sub is location with prefix added to its path.
func sub(t *testing.T, location, prefix string) string {
	t.Helper()
	if !IsURL(location) {
		return filepath.Join(location, filepath.FromSlash(prefix))
	}
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path.Join("/", u.Path, prefix)
	if strings.HasSuffix(prefix, "/") {
		u.Path += "/"
	}
	return u.String()
}

func open(t *testing.T, location string) Store {
	t.Helper()
	s, err := Open(context.Background(), location)
	if err != nil {
		t.Fatalf("Open(%s): %v", location, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payload is n bytes of incompressible data, the same for the same seed.
func payload(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// write writes data in uneven pieces, as a compressor would, and commits.
func write(t *testing.T, s Store, name string, data []byte) {
	t.Helper()
	w, err := s.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	writeAll(t, w, data)
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(%s): %v", name, err)
	}
}

func writeAll(t *testing.T, w Writer, data []byte) {
	t.Helper()
	for off, step := 0, 1; off < len(data); step = step*7%(300<<10) + 1 {
		end := min(off+step, len(data))
		if _, err := w.Write(data[off:end]); err != nil {
			w.Abort()
			t.Fatalf("Write: %v", err)
		}
		off = end
	}
}

func read(t *testing.T, s Store, name string) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	if r.Size() != int64(len(data)) {
		t.Errorf("%s: Size() = %d, read %d bytes", name, r.Size(), len(data))
	}
	return data
}

func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %x), want %d (sha256 %x)", what, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func names(t *testing.T, s Store, prefix string) []string {
	t.Helper()
	objs, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	var out []string
	for _, o := range objs {
		if o.Partial {
			// A local NAME.in-progress file: never visible as NAME.
			if _, ok := s.(*Bucket); ok || !strings.HasSuffix(o.Name, InProgressSuffix) {
				t.Errorf("List(%q) has %+v, marked partial", prefix, o)
			}
			continue
		}
		out = append(out, o.Name)
	}
	return out
}

func wantNames(t *testing.T, s Store, prefix string, want ...string) {
	t.Helper()
	got := names(t, s, prefix)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
	}
}

func wantMissing(t *testing.T, s Store, name string) {
	t.Helper()
	r, err := s.Open(context.Background(), name)
	if err == nil {
		r.Close()
		t.Fatalf("Open(%s) succeeded; want an error wrapping ErrNotExist", name)
	}
	if !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open(%s) = %v; want an error wrapping ErrNotExist", name, err)
	}
}

// bigSize spans three upload parts (S3 parts, Azure blocks, GCS chunks),
// the last one short.
const bigSize = 2*PartSize + 1<<20 + 123

func TestStores(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			root := k.start(t)

			t.Run("round trip", func(t *testing.T) {
				s := open(t, sub(t, root, "roundtrip"))
				big := payload(bigSize, 1)
				small := payload(1000, 2)

				w, err := s.Create(context.Background(), "chain/big")
				if err != nil {
					t.Fatal(err)
				}
				writeAll(t, w, big)
				// Not visible before Commit, even with all bytes sent.
				wantNames(t, s, "")
				wantMissing(t, s, "chain/big")
				if err := w.Commit(); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				w.Abort() // after Commit: does nothing
				write(t, s, "chain/sub/small", small)
				write(t, s, "empty", nil)
				write(t, s, "chain2/x", small)

				same(t, "chain/big", read(t, s, "chain/big"), big)
				same(t, "chain/sub/small", read(t, s, "chain/sub/small"), small)
				same(t, "empty", read(t, s, "empty"), nil)

				objs, err := s.List(context.Background(), "")
				if err != nil {
					t.Fatal(err)
				}
				want := []Object{{Name: "chain/big", Size: bigSize}, {Name: "chain/sub/small", Size: 1000}, {Name: "chain2/x", Size: 1000}, {Name: "empty"}}
				if len(objs) != len(want) {
					t.Fatalf("List = %v, want %v", objs, want)
				}
				for i, o := range objs {
					if o.Name != want[i].Name || o.Size != want[i].Size || o.ModTime.IsZero() {
						t.Errorf("List[%d] = %+v, want %+v with a time", i, o, want[i])
					}
				}
				wantNames(t, s, "chain/", "chain/big", "chain/sub/small")
				wantNames(t, s, "chain", "chain/big", "chain/sub/small", "chain2/x")
				wantNames(t, s, "chain/sub/", "chain/sub/small")
				wantNames(t, s, "nothing/")

				if err := s.Delete(context.Background(), "chain/big"); err != nil {
					t.Fatal(err)
				}
				wantMissing(t, s, "chain/big")
				if err := s.Delete(context.Background(), "chain/big"); err != nil {
					t.Fatalf("deleting a missing object: %v", err)
				}
				wantNames(t, s, "chain/", "chain/sub/small")
				if ok, err := Exists(context.Background(), s, "chain/sub/small"); !ok || err != nil {
					t.Fatalf("Exists = %v, %v", ok, err)
				}
			})

			t.Run("abort leaves nothing", func(t *testing.T) {
				s := open(t, sub(t, root, "abort"))
				for _, size := range []int{0, 1000, PartSize + 1<<20} {
					w, err := s.Create(context.Background(), "aborted")
					if err != nil {
						t.Fatal(err)
					}
					writeAll(t, w, payload(size, 3))
					w.Abort()
					w.Abort()
					if err := w.Commit(); err == nil {
						t.Fatalf("Commit after Abort succeeded")
					}
					wantNames(t, s, "")
					wantMissing(t, s, "aborted")
				}
				checkNoUploads(t, s)
				// The name is free for a real write.
				data := payload(5000, 4)
				write(t, s, "aborted", data)
				same(t, "aborted", read(t, s, "aborted"), data)
			})

			t.Run("failed commit leaves nothing", func(t *testing.T) {
				s := open(t, sub(t, root, "failed"))
				for _, size := range []int{1000, PartSize + 1<<20} {
					ctx, cancel := context.WithCancel(context.Background())
					w, err := s.Create(ctx, "failed")
					if err != nil {
						t.Fatal(err)
					}
					writeAll(t, w, payload(size, 5))
					cancel()
					err = w.Commit()
					if err == nil {
						t.Fatalf("Commit with a cancelled context succeeded")
					}
					if !errors.Is(err, context.Canceled) {
						t.Errorf("Commit = %v; want it to wrap context.Canceled", err)
					}
					w.Abort()
					wantNames(t, s, "")
					wantMissing(t, s, "failed")
				}
				checkNoUploads(t, s)
			})

			t.Run("missing", func(t *testing.T) {
				s := open(t, sub(t, root, "missing"))
				wantMissing(t, s, "nothing")
				wantMissing(t, s, "no/such/thing")
				_, err := s.Open(context.Background(), "nothing")
				if !strings.Contains(err.Error(), s.String()) {
					t.Errorf("error %q does not name the destination %s", err, s)
				}
				wantNames(t, s, "")
				t.Run("delete", func(t *testing.T) {
					for _, name := range []string{"nothing", "no/such/thing"} {
						err := s.Delete(context.Background(), name)
						if err != nil {
							t.Errorf("deleting the missing %s: %v", name, err)
						}
					}
				})
			})

			t.Run("prefixes", func(t *testing.T) {
				top := open(t, sub(t, root, "prefixes"))
				p1 := open(t, sub(t, root, "prefixes/p1"))
				p1slash := open(t, sub(t, root, "prefixes/p1/"))
				data := payload(300, 6)
				write(t, p1, "x/y", data)
				write(t, top, "p10/z", data)
				write(t, top, "p1x", data)
				wantNames(t, top, "", "p1/x/y", "p10/z", "p1x")
				wantNames(t, p1, "", "x/y")
				wantNames(t, p1slash, "", "x/y")
				wantNames(t, top, "p1/", "p1/x/y")
				same(t, "p1/x/y", read(t, top, "p1/x/y"), data)
				same(t, "x/y via a trailing slash", read(t, p1slash, "x/y"), data)
				wantMissing(t, p1, "p10/z")
			})

			t.Run("bad names", func(t *testing.T) {
				s := open(t, sub(t, root, "names"))
				for _, name := range []string{"", "../escape", "/abs"} {
					if w, err := s.Create(context.Background(), name); err == nil {
						w.Abort()
						t.Errorf("Create(%q) succeeded", name)
					}
					if r, err := s.Open(context.Background(), name); err == nil {
						r.Close()
						t.Errorf("Open(%q) succeeded", name)
					}
				}
			})
		})
	}
}

// checkNoUploads checks that no S3 multipart upload was left behind: an
// aborted one still costs storage.
func checkNoUploads(t *testing.T, s Store) {
	t.Helper()
	if b, ok := s.(*Bucket); ok && b.scheme == "s3" {
		if n := pendingUploads(t, b); n != 0 {
			t.Errorf("%d multipart uploads were left open", n)
		}
	}
}

// Errors from a store say what is wrong and what to do, name the
// destination and never show a secret.
func TestStoreErrors(t *testing.T) {
	for _, k := range []struct {
		name  string
		start func(testing.TB) *testservers.Server
		// badCredentials points the environment at wrong credentials;
		// nil where the emulator checks none.
		badCredentials func(t *testing.T) (secret string)
	}{
		{"s3", testservers.StartS3, func(t *testing.T) string {
			t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789")
			return "wrong-secret-0123456789"
		}},
		{"azure", testservers.StartAzure, func(t *testing.T) string {
			key := "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
			t.Setenv("AZURE_STORAGE_KEY", key)
			return key
		}},
		{"gcs", testservers.StartGCS, nil},
	} {
		t.Run(k.name, func(t *testing.T) {
			srv := k.start(t)
			u, err := url.Parse(srv.Location("x"))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = "no-such-bucket"
			s := open(t, u.String())
			check := func(what string, err error, want ...string) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded", what)
				}
				t.Logf("%s: %v", what, err)
				for _, w := range append(want, s.String()) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", what, err, w)
					}
				}
			}
			_, err = s.List(context.Background(), "")
			check("listing a missing bucket", err, "the bucket does not exist")
			_, err = s.Open(context.Background(), "obj")
			check("reading from a missing bucket", err, "the bucket does not exist")
			if errors.Is(err, ErrNotExist) {
				t.Errorf("a missing bucket is reported as a missing object")
			}
			w, err := s.Create(context.Background(), "obj")
			if err == nil {
				_, err = w.Write(payload(1000, 1))
				if err == nil {
					err = w.Commit()
				}
				w.Abort()
			}
			check("writing to a missing bucket", err, "the bucket does not exist", "obj")

			if k.badCredentials == nil {
				return
			}
			secret := k.badCredentials(t)
			s = open(t, srv.Location("x"))
			w, err = s.Create(context.Background(), "obj")
			if err == nil {
				_, err = w.Write(payload(1000, 1))
				if err == nil {
					err = w.Commit()
				}
				w.Abort()
			}
			check("writing with wrong credentials", err, "access was denied", "obj")
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret")
			}
			_, err = s.List(context.Background(), "")
			check("listing with wrong credentials", err, "access was denied")

			if k.name == "s3" {
				// StartS3 turned off the instance metadata service, the
				// last place the SDK would look.
				t.Setenv("AWS_ACCESS_KEY_ID", "")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "")
				s = open(t, srv.Location("x"))
				_, err = s.List(context.Background(), "")
				check("listing without credentials", err, "no credentials were found. Set AWS_ACCESS_KEY_ID")
			}
		})
	}
}

// TestLocalStaleInProgress: a NAME.in-progress left by a killed run does
// not stop the next write of NAME.
func TestLocalStaleInProgress(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c", "manifest.json"+InProgressSuffix), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	write(t, s, "c/manifest.json", []byte("whole"))
	same(t, "c/manifest.json", read(t, s, "c/manifest.json"), []byte("whole"))
	wantNames(t, s, "c/", "c/manifest.json")
}
