package destination

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/magpiedb/magpie/internal/testservers"
)

// pendingUploads counts the S3 multipart uploads open under b's prefix.
func pendingUploads(t *testing.T, b *Bucket) int {
	t.Helper()
	var client *s3.Client
	if !b.b.As(&client) {
		t.Fatal("no S3 client")
	}
	u, err := url.Parse(b.location)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(u.Host),
		Prefix: aws.String(strings.TrimPrefix(u.Path, "/")),
	})
	if err != nil {
		t.Fatalf("listing multipart uploads: %v", err)
	}
	return len(out.Uploads)
}

// startWithProxy starts a server and a FaultProxy in front of it, and
// opens the same prefix both through the proxy and directly (to check
// what really landed).
func startWithProxy(t *testing.T, start func(testing.TB) *testservers.Server, prefix string) (*testservers.FaultProxy, Store, Store) {
	srv := start(t)
	proxy := testservers.NewFaultProxy(t, srv.Addr)
	direct := open(t, srv.Location(prefix))
	via := open(t, srv.LocationVia(t, proxy.Addr(), prefix))
	return proxy, via, direct
}

// A connection dropped in the middle of an upload is retried by the SDK:
// the upload succeeds and the stored bytes are the ones written, for a
// multipart upload and for a single PUT, on S3 and Azure. (GCS is left
// out: fake-gcs-server sends the chunks of a resumable upload to its own
// address, around the proxy.)
func TestDroppedConnectionRetried(t *testing.T) {
	for _, k := range []struct {
		name  string
		start func(testing.TB) *testservers.Server
	}{{"s3", testservers.StartS3}, {"azure", testservers.StartAzure}} {
		t.Run(k.name, func(t *testing.T) {
			proxy, via, direct := startWithProxy(t, k.start, "drops")
			for _, c := range []struct {
				name  string
				size  int
				after int64
				drops int
			}{
				{"multipart", bigSize, 3 << 20, 2},
				{"single", 2 << 20, 1 << 20, 1},
			} {
				data := payload(c.size, 7)
				before := proxy.Drops()
				proxy.DropAfter(c.after, c.drops)
				write(t, via, c.name, data)
				if got := proxy.Drops() - before; got != c.drops {
					t.Fatalf("%s: the proxy dropped %d connections, want %d", c.name, got, c.drops)
				}
				same(t, c.name, read(t, direct, c.name), data)
			}
			wantNames(t, direct, "", "multipart", "single")
		})
	}
}

// A download that breaks off is resumed where it stopped.
func TestDroppedDownloadResumed(t *testing.T) {
	for _, k := range []struct {
		name  string
		start func(testing.TB) *testservers.Server
	}{{"s3", testservers.StartS3}, {"azure", testservers.StartAzure}} {
		t.Run(k.name, func(t *testing.T) {
			proxy, via, direct := startWithProxy(t, k.start, "reads")
			data := payload(bigSize, 8)
			write(t, direct, "big", data)
			proxy.DropAfter(5<<20, 2)
			same(t, "big", read(t, via, "big"), data)
			if proxy.Drops() != 2 {
				t.Fatalf("the proxy dropped %d connections, want 2", proxy.Drops())
			}
		})
	}
}

// While the store cannot be reached, an upload fails with an error that
// names the destination and says what to do, nothing becomes visible, and
// once the store is back a new upload succeeds.
func TestStoreDown(t *testing.T) {
	// Fewer attempts keep the test short; the retries are the SDK's own.
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	proxy, via, direct := startWithProxy(t, testservers.StartS3, "down")
	data := payload(bigSize, 9)

	upload := func(name string, downAfter int) error {
		w, err := via.Create(context.Background(), name)
		if err != nil {
			return err
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if off == downAfter {
				proxy.Down()
			}
			if _, err := w.Write(data[off:min(off+1<<20, len(data))]); err != nil {
				w.Abort()
				return err
			}
		}
		if err := w.Commit(); err != nil {
			w.Abort()
			return err
		}
		return nil
	}
	for _, c := range []struct {
		name      string
		downAfter int
	}{
		{"down from the start", 0},
		// Parts are on their way by then (the first may be stored): the
		// multipart upload stays open on the server, invisible.
		{"down mid-upload", 2 * PartSize},
	} {
		err := upload("obj", c.downAfter)
		if err == nil {
			t.Fatalf("%s: upload succeeded", c.name)
		}
		msg := err.Error()
		t.Logf("%s: %s", c.name, msg)
		for _, want := range []string{via.String(), "obj", "even after retries", "then run again"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %q", c.name, msg, want)
			}
		}
		if s := os.Getenv("AWS_SECRET_ACCESS_KEY"); strings.Contains(msg, s) {
			t.Errorf("%s: the error shows the secret key", c.name)
		}
		proxy.Up()
		wantNames(t, direct, "")
		wantMissing(t, direct, "obj")
	}
	// Back up: a new upload works.
	if err := upload("obj", -1); err != nil {
		t.Fatalf("upload after recovery: %v", err)
	}
	same(t, "obj", read(t, direct, "obj"), data)
	if proxy.Refused() == 0 {
		t.Errorf("the proxy refused no connection")
	}
}
