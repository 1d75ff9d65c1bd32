package testservers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"testing"
)

// GCS starts fake-gcs-server and returns the location of an empty bucket on
// it: gs://magpie-test, with STORAGE_EMULATOR_HOST=127.0.0.1:PORT set.
func GCS(t testing.TB) string {
	t.Helper()
	return StartGCS(t).Location("")
}

// StartGCS starts fake-gcs-server (github.com/fsouza/fake-gcs-server) over
// plain HTTP with an in-memory backend, creates the bucket "magpie-test"
// and points STORAGE_EMULATOR_HOST at it.
func StartGCS(t testing.TB) *Server {
	t.Helper()
	bin, ok := findBinary("fake-gcs-server")
	if !ok {
		missing(t, "fake-gcs-server is not installed: go install github.com/fsouza/fake-gcs-server@v1.56.1")
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	addr := start(t, launch{
		what: "fake-gcs-server",
		cmd: func(addr string) *exec.Cmd {
			host, port, _ := net.SplitHostPort(addr)
			// -external-url: resumable uploads continue at the address the
			// server announces, which must be the one it listens on.
			// -public-host: the client downloads with XML-API paths
			// (/BUCKET/OBJECT), which the server serves only on that host.
			return exec.Command(bin, "-scheme", "http", "-host", host, "-port", port,
				"-backend", "memory", "-external-url", httpURL(addr), "-public-host", addr,
				"-log-level", "error")
		},
		ready: func(ctx context.Context, addr string) error {
			if err := dialable(addr); err != nil {
				return err
			}
			return createGCSBucket(ctx, addr, "magpie-test")
		},
	})
	t.Setenv("STORAGE_EMULATOR_HOST", addr)
	return &Server{
		Scheme: "gs",
		Addr:   addr,
		Bucket: "magpie-test",
		create: createGCSBucket,
		location: func(addr, bucket, prefix string) string {
			return (&url.URL{Scheme: "gs", Host: bucket, Path: "/" + prefix}).String()
		},
	}
}

// createGCSBucket uses the JSON API directly: the emulator needs no
// credentials.
func createGCSBucket(ctx context.Context, addr, name string) error {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, "POST", httpURL(addr)+"/storage/v1/b?project=magpie-test", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return fmt.Errorf("creating bucket %s: HTTP %d: %s", name, resp.StatusCode, msg)
}
