package destination

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// noCloudEnv keeps the machine's own cloud settings out of a test and
// stops the SDKs from asking metadata services, which are not on loopback.
func noCloudEnv(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	for _, v := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_MAX_ATTEMPTS"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-never-shown")
	t.Setenv("AZURE_STORAGE_ACCOUNT", "devstoreaccount1")
	t.Setenv("AZURE_STORAGE_KEY", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1")
}

func TestLocationRefused(t *testing.T) {
	noCloudEnv(t)
	cases := []struct {
		location string
		want     string // in the error
		secret   string // never in the error
	}{
		{"s3://AKID:hunter2secret@bucket/path", "holds credentials", "hunter2secret"},
		{"azblob://account:hunter2secret@container", "holds credentials", "hunter2secret"},
		{"gs://user:hunter2secret@bucket", "holds credentials", "hunter2secret"},
		{"s3://bucket?endpoint=http://AKID:hunter2secret@127.0.0.1:9000", "not a plain http:// or https:// URL", "hunter2secret"},
		{"s3://bucket?endpoint=AKID:hunter2secret@127.0.0.1:9000", "not a plain http:// or https:// URL", "hunter2secret"},
		{"s3://bucket?endpoint=" + url.QueryEscape("http://127.0.0.1:9000/?X-Amz-Signature=hunter2secret"), "not a plain http:// or https:// URL", "hunter2secret"},
		{"s3://bucket?endpoint=" + url.QueryEscape("http://127.0.0.1:9000/#hunter2secret"), "not a plain http:// or https:// URL", "hunter2secret"},
		{"s3://bucket?aws_secret_access_key=hunter2secret", `query parameter "aws_secret_access_key"`, "hunter2secret"},
		{"azblob://container?sig=hunter2secret&sv=2020", "query parameter", "hunter2secret"},
		{"s3://SECRETUSER:hunter2secret@bk/p%zz", "is not a valid URL: invalid URL escape", "hunter2secret"},
		{"s3://SECRETUSER:hunter2secret@bk:badport/p", "is not a valid URL", "hunter2secret"},
		{"s3://bk/p#hunter2secret", "has a #fragment", "hunter2secret"},
		{"s3:SECRETUSER:hunter2secret@bk/p", `looks like a URL without its "//"`, "hunter2secret"},
		{"gs:/bk/p", `looks like a URL without its "//"`, ""},
		{"s3://bk/p?X-Amz-Signature=hunter2secret%zz", "has a query that does not parse", "hunter2secret"},
		{"s3://bk/p?region=%zzX", "has a query that does not parse", ""},
		{"s3://bk/p?region=eu%0Aus-east-1", "control characters", ""},
		{"ftp://host/path", `scheme "ftp" is not supported`, ""},
		{"s4://bucket/path", `scheme "s4" is not supported`, ""},
		{"s3:///path", "names no bucket", ""},
		{"gs://bucket/a/../b", "plain names", ""},
		{"s3://bucket?region=a&region=b", "more than once", ""},
		{"s3://bucket?endpoint=127.0.0.1:9000", "Give the endpoint as http(s)://HOST[:PORT]", ""},
		{"s3://bucket?use_path_style=maybe", "use_path_style must be true or false", ""},
		{"azblob://container?protocol=gopher", "cannot open destination azblob://container?protocol=gopher", ""},
		{"", "no destination", ""},
	}
	for _, c := range cases {
		s, err := Open(context.Background(), c.location)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.location)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %q; want it to say %q", c.location, err, c.want)
		}
		if c.secret != "" && strings.Contains(err.Error(), c.secret) {
			t.Errorf("Open(%q) shows the secret: %q", c.location, err)
		}
		if strings.Contains(err.Error(), "s3cr3t-value-never-shown") || strings.Contains(err.Error(), "Eby8vdM02") {
			t.Errorf("Open(%q) shows a key from the environment: %q", c.location, err)
		}
	}
}

// Opening a bucket sends nothing: these open without a server.
func TestLocationShown(t *testing.T) {
	noCloudEnv(t)
	cases := []struct{ location, shown string }{
		{"s3://bucket", "s3://bucket"},
		{"s3://bucket/", "s3://bucket"},
		{"s3://bucket/a/b/?region=eu-west-1&endpoint=http://127.0.0.1:9000", "s3://bucket/a/b?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1"},
		{"azblob://container/x?domain=127.0.0.1:10000&protocol=http&localemu=true", "azblob://container/x?domain=127.0.0.1%3A10000&localemu=true&protocol=http"},
		{"gs://bucket/backups", "gs://bucket/backups"},
	}
	for _, c := range cases {
		s := open(t, c.location)
		if got := s.String(); got != c.shown {
			t.Errorf("Open(%q).String() = %q, want %q", c.location, got, c.shown)
		}
	}
}

// An S3 URL without a region gets us-east-1 when nothing else gives one,
// and S3-compatible endpoints get path-style requests.
func TestS3Defaults(t *testing.T) {
	noCloudEnv(t)
	for _, c := range []struct {
		location, region string
		pathStyle        bool
	}{
		{"s3://bucket?endpoint=http://127.0.0.1:9000", "us-east-1", true},
		{"s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=false", "us-east-1", false},
		{"s3://bucket?region=eu-central-1", "eu-central-1", false},
	} {
		s := open(t, c.location)
		var client *s3.Client
		if !s.(*Bucket).b.As(&client) {
			t.Fatal("no S3 client")
		}
		o := client.Options()
		if o.Region != c.region || o.UsePathStyle != c.pathStyle {
			t.Errorf("%s: region %q, path style %v; want %q, %v", c.location, o.Region, o.UsePathStyle, c.region, c.pathStyle)
		}
		if o.RetryMaxAttempts != s3MaxAttempts {
			t.Errorf("%s: %d attempts, want %d", c.location, o.RetryMaxAttempts, s3MaxAttempts)
		}
		custom := strings.Contains(c.location, "endpoint=")
		if got := o.ResponseChecksumValidation == aws.ResponseChecksumValidationWhenRequired; got != custom {
			t.Errorf("%s: response checksums only when required = %v, want %v", c.location, got, custom)
		}
		if got := o.RequestChecksumCalculation == aws.RequestChecksumCalculationWhenRequired; got != custom {
			t.Errorf("%s: request checksums only when required = %v, want %v", c.location, got, custom)
		}
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	var client *s3.Client
	if !open(t, "s3://bucket").(*Bucket).b.As(&client) {
		t.Fatal("no S3 client")
	}
	if o := client.Options(); o.Region != "ap-south-1" || o.RetryMaxAttempts != 2 {
		t.Errorf("with AWS_REGION and AWS_MAX_ATTEMPTS: region %q, %d attempts", o.Region, o.RetryMaxAttempts)
	}
}

func TestScrub(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "0123456789secret")
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2020-08-04&sig=abc%2Bdef%2Fsignature")
	base := errors.New("GET http://x/c?sig=abc%2Bdef%2Fsignature failed with key 0123456789secret")
	err := scrub(base)
	if strings.Contains(err.Error(), "0123456789secret") || strings.Contains(err.Error(), "signature") {
		t.Errorf("scrub left a secret: %q", err)
	}
	if !errors.Is(err, base) {
		t.Errorf("scrub lost the wrapped error")
	}
	if u, _ := url.Parse("http://x"); scrub(errors.New(u.String())).Error() != "http://x" {
		t.Errorf("scrub changed an error without secrets")
	}
}

// TestRedact: what could be a secret never reaches a log line or an error.
func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/var/backups", "/var/backups"},
		{"s3://bucket/path?region=eu-west-1", "s3://bucket/path?region=eu-west-1"},
		{"s3://AKID:hunter2@bucket/path", "s3://REDACTED@bucket/path"},
		{"s3://bucket?endpoint=http%3A%2F%2FAKID%3Ahunter2%40host%3A9000", "s3://bucket?endpoint=REDACTED"},
		{"s3://bucket?endpoint=http://127.0.0.1:9000", "s3://bucket?endpoint=http%3A%2F%2F127.0.0.1%3A9000"},
		{"azblob://container?sig=hunter2&sv=2020", "azblob://container?sig=REDACTED&sv=REDACTED"},
		{"gs://bucket/%zz?x=hunter2", "gs://REDACTED"},
		{"s3://bucket/p#hunter2", "s3://bucket/p#REDACTED"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
