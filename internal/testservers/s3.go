package testservers

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 starts versitygw and returns the location of an empty bucket on it:
// s3://magpie-test?endpoint=http://127.0.0.1:PORT, with
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set.
func S3(t testing.TB) string {
	t.Helper()
	return StartS3(t).Location("")
}

// StartS3 starts versitygw (github.com/versity/versitygw) with its posix
// backend in a temporary folder, creates the bucket "magpie-test" and sets
// the environment so that the AWS SDK uses the server's root credentials
// and nothing of the machine's own AWS configuration.
func StartS3(t testing.TB) *Server {
	t.Helper()
	bin, ok := findBinary("versitygw")
	if !ok {
		missing(t, "versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	}
	access, secret := "magpietest", randomHex(20)
	empty := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	// Never ask an instance metadata service, which is not on loopback.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	dir := t.TempDir()
	create := func(ctx context.Context, addr, bucket string) error {
		return createS3Bucket(ctx, addr, access, secret, bucket)
	}
	addr := start(t, launch{
		what: "versitygw",
		cmd: func(addr string) *exec.Cmd {
			cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
			cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+access, "ROOT_SECRET_KEY="+secret)
			return cmd
		},
		ready: func(ctx context.Context, addr string) error {
			if err := dialable(addr); err != nil {
				return err
			}
			return create(ctx, addr, "magpie-test")
		},
	})
	return &Server{
		Scheme: "s3",
		Addr:   addr,
		Bucket: "magpie-test",
		create: create,
		location: func(addr, bucket, prefix string) string {
			// No region: destination defaults it, as for any
			// S3-compatible server.
			q := url.Values{"endpoint": {httpURL(addr)}}
			return (&url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}).String()
		},
	}
}

func createS3Bucket(ctx context.Context, addr, access, secret, bucket string) error {
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(httpURL(addr)),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: access, SecretAccessKey: secret}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "BucketAlreadyOwnedByYou" {
		return nil
	}
	return err
}
