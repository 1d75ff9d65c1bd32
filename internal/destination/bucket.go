package destination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"gocloud.dev/gcp"
	"google.golang.org/api/googleapi"
)

// PartSize is the size of the parts (S3), blocks (Azure) or chunks (GCS)
// an upload is cut into. Each is buffered in memory so that a failed part
// can be sent again, so an upload holds at most (PartConcurrency+1) parts:
// about 40 MiB, whatever the object's size. It also caps an object, as a
// stream's size is not known ahead: 10,000 parts on S3 (78 GiB), 50,000
// blocks on Azure (390 GiB).
const PartSize = 8 << 20

// PartConcurrency is how many parts of one upload are in flight at once.
const PartConcurrency = 4

// readResumes is how many times in a row a download that broke off is
// picked up again where it stopped before the error is returned.
const readResumes = 3

// s3MaxAttempts is how many times the AWS SDK tries a request (a part of
// an upload, say) before giving up; its default of 3 gives up within a
// couple of seconds of a network blip. AWS_MAX_ATTEMPTS overrides it.
const s3MaxAttempts = 6

// queryParams are the URL query parameters each scheme accepts: those of
// gocloud.dev's openers that make sense for backups. Anything else is
// refused before gocloud sees it, so a secret pasted into the URL is never
// echoed back in an error.
var queryParams = map[string][]string{
	"s3": {"endpoint", "region", "profile", "use_path_style", "s3ForcePathStyle", "disable_https",
		"hostname_immutable", "dualstack", "fips", "accelerate", "ssetype", "kmskeyid",
		"anonymous", "role", "role_session_name", "role_external_id", "role_duration",
		"web_identity_token_file", "request_checksum_calculation", "response_checksum_validation",
		"rate_limiter_capacity"},
	"azblob": {"domain", "protocol", "cdn", "localemu", "storage_account"},
	"gs":     {"anonymous", "universe_domain"},
}

// credentialHelp says, per scheme, where credentials come from.
var credentialHelp = map[string]string{
	"s3":     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role",
	"azblob": "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_SAS_TOKEN",
	"gs":     "GOOGLE_APPLICATION_CREDENTIALS or the machine's default Google credentials",
}

// Bucket is a bucket (container) of an object store, or a prefix in one.
type Bucket struct {
	b        *blob.Bucket
	scheme   string
	location string
}

// openBucket opens s3://, azblob:// or gs:// URLs. The host is the
// bucket, the path a prefix inside it, the query the options of gocloud's
// openers (see queryParams), and credentials come from the environment.
func openBucket(ctx context.Context, u *url.URL) (Store, error) {
	if err := checkBucketURL(u); err != nil {
		return nil, err
	}
	scheme := u.Scheme
	q := u.Query()
	prefix := strings.Trim(u.Path, "/")
	shown := display(scheme, u.Host, prefix, q)
	var b *blob.Bucket
	var err error
	switch scheme {
	case "s3":
		b, err = openS3(ctx, u.Host, q)
	case "azblob":
		b, err = openAzure(ctx, u.Host, q)
	case "gs":
		b, err = openGCS(ctx, u, q)
	default:
		err = fmt.Errorf("scheme %q is not an object store", scheme)
	}
	if err != nil {
		return nil, scrub(fmt.Errorf("cannot open destination %s: %w. Check the URL's parameters and the credentials in the environment (%s)", shown, err, credentialHelp[scheme]))
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return &Bucket{b: b, scheme: scheme, location: shown}, nil
}

// checkBucketURL checks what can be checked of an object store URL
// without opening it: a bucket, a clean path, only the query parameters
// magpie knows (an unknown one may be a secret put in the wrong place),
// each once, and no credentials in an endpoint.
func checkBucketURL(u *url.URL) error {
	scheme := u.Scheme
	prefix := strings.Trim(u.Path, "/")
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// Query drops what does not parse: a parameter that vanished
		// would be a setting (or a secret) quietly ignored.
		return fmt.Errorf("destination %s has a query that does not parse (%v). Percent-encode its values, such as endpoint=http%%3A%%2F%%2Fhost%%3A9000", display(scheme, u.Host, prefix, nil), err)
	}
	shown := display(scheme, u.Host, prefix, q)
	for _, values := range q {
		for _, v := range values {
			if strings.IndexFunc(v, unicode.IsControl) >= 0 {
				return fmt.Errorf("destination %s has a query value holding control characters (a line break?). Remove them", shown)
			}
		}
	}
	if u.Fragment != "" {
		return fmt.Errorf("destination %s has a #fragment, which no object store uses (it may be a secret put in the wrong place). Remove it", shown)
	}
	if u.Host == "" {
		return fmt.Errorf("destination %s names no bucket. Write it as %s://BUCKET/PATH", shown, scheme)
	}
	if prefix != "" && !validName(prefix) {
		return fmt.Errorf("destination %s has a path with empty, . or .. parts. Write the path as plain names separated by single slashes", shown)
	}
	for name, values := range q {
		if !knownParam(scheme, name) {
			return fmt.Errorf("destination %s has the query parameter %q, which magpie does not know for %s://. Use only %s, and give credentials in the environment (%s)",
				shown, name, scheme, strings.Join(queryParams[scheme], ", "), credentialHelp[scheme])
		}
		if len(values) != 1 {
			return fmt.Errorf("destination %s gives the query parameter %q more than once. Give it once", shown, name)
		}
	}
	if endpoint := q.Get("endpoint"); endpoint != "" && !cleanEndpoint(endpoint) {
		return fmt.Errorf("destination %s has an endpoint that is not a plain http:// or https:// URL (it may hold credentials, a query or no scheme). Give the endpoint as http(s)://HOST[:PORT], and credentials in the environment (%s), never in the URL", shown, credentialHelp[scheme])
	}
	return nil
}

// cleanEndpoint reports whether an endpoint is http(s)://HOST[:PORT][/PATH]
// and nothing more: no user information, query or fragment, which could
// carry a secret (user:password@, a presigned X-Amz-Signature).
func cleanEndpoint(v string) bool {
	e, err := url.Parse(v)
	return err == nil && (e.Scheme == "http" || e.Scheme == "https") && e.Host != "" &&
		e.User == nil && e.RawQuery == "" && !e.ForceQuery && e.Fragment == "" && e.Opaque == ""
}

func knownParam(scheme, name string) bool {
	for _, p := range queryParams[scheme] {
		if p == name {
			return true
		}
	}
	return false
}

// display is the location as shown to people: the values of unknown
// parameters are hidden, since one may be a secret put in the wrong
// place, and so are credentials in an endpoint URL.
func display(scheme, host, prefix string, q url.Values) string {
	r := redactQuery(scheme, q)
	s := scheme + "://" + host
	if prefix != "" {
		s += "/" + prefix
	}
	if len(r) > 0 {
		s += "?" + r.Encode()
	}
	return s
}

// redactQuery hides the values of a bucket URL's unknown parameters and of
// an endpoint that is not a plain URL.
func redactQuery(scheme string, q url.Values) url.Values {
	r := url.Values{}
	for name, values := range q {
		for _, v := range values {
			if !knownParam(scheme, name) || (name == "endpoint" && !cleanEndpoint(v)) {
				v = "REDACTED"
			}
			r.Add(name, v)
		}
	}
	return r
}

// validName reports whether name is a plain slash-separated name: no
// empty, "." or ".." parts, so that it means the same on every store
// (a local folder refuses the same names).
func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// openS3 builds the S3 client itself rather than through s3blob's
// URLOpener, to default what S3-compatible servers need (a region, path
// style, checksums only when required) and to allow more retries.
func openS3(ctx context.Context, bucket string, q url.Values) (*blob.Bucket, error) {
	var opts s3blob.Options
	var clientOpts []func(*s3.Options)
	pathStyle := ""
	for _, key := range []string{"use_path_style", "s3ForcePathStyle"} {
		if v := q.Get(key); v != "" {
			pathStyle = v
			q.Del(key)
		}
	}
	if endpoint := q.Get("endpoint"); endpoint != "" {
		e, err := url.Parse(endpoint)
		if err != nil || e.Host == "" || (e.Scheme != "http" && e.Scheme != "https") {
			return nil, errors.New("the endpoint must be a URL such as https://s3.example.com or http://127.0.0.1:7070")
		}
		if e.User != nil {
			return nil, errors.New("the endpoint holds credentials, which belong in the environment")
		}
		// S3-compatible servers rarely have a DNS name per bucket, and
		// many do not support the SDK's newer checksums: its default
		// (when_supported) makes them fail or makes the SDK warn on
		// every download.
		if pathStyle == "" {
			pathStyle = "true"
		}
		for _, key := range []string{"request_checksum_calculation", "response_checksum_validation"} {
			if q.Get(key) == "" {
				q.Set(key, "when_required")
			}
		}
	}
	if pathStyle != "" {
		v, err := parseBool("use_path_style", pathStyle)
		if err != nil {
			return nil, err
		}
		clientOpts = append(clientOpts, func(o *s3.Options) { o.UsePathStyle = v })
	}
	if v := q.Get("disable_https"); v != "" {
		q.Del("disable_https")
		b, err := parseBool("disable_https", v)
		if err != nil {
			return nil, err
		}
		clientOpts = append(clientOpts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = b })
	}
	if v := q.Get("accelerate"); v != "" {
		q.Del("accelerate")
		b, err := parseBool("accelerate", v)
		if err != nil {
			return nil, err
		}
		clientOpts = append(clientOpts, func(o *s3.Options) { o.UseAccelerate = b })
	}
	if v := q.Get("ssetype"); v != "" {
		q.Del("ssetype")
		opts.EncryptionType = ""
		for _, t := range s3types.ServerSideEncryption("").Values() {
			if strings.EqualFold(string(t), v) {
				opts.EncryptionType = t
			}
		}
		if opts.EncryptionType == "" {
			return nil, fmt.Errorf("ssetype %q is not one of AES256, aws:kms, aws:kms:dsse", v)
		}
	}
	if v := q.Get("kmskeyid"); v != "" {
		q.Del("kmskeyid")
		opts.KMSEncryptionID = v
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		// Neither the URL, the environment nor ~/.aws/config gave one.
		// S3-compatible servers mostly ignore it but the SDK will not sign
		// a request without one.
		cfg.Region = "us-east-1"
	}
	// gocloud installs its own retryer, so the SDK ignores
	// AWS_MAX_ATTEMPTS: honour it here.
	cfg.RetryMaxAttempts = s3MaxAttempts
	if v := os.Getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("AWS_MAX_ATTEMPTS must be a whole number of at least 1, not %q", v)
		}
		cfg.RetryMaxAttempts = n
	}
	client := s3.NewFromConfig(cfg, clientOpts...)
	// The transfer manager that uploads does not read the client's
	// checksum setting: pass it on (as s3blob's own opener does).
	opts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, client, bucket, &opts)
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s must be true or false, not %q", name, v)
}

// openAzure builds the container client itself: azureblob's default
// opener reads the environment once per process, so a credential set or
// changed later would be ignored.
func openAzure(ctx context.Context, containerName string, q url.Values) (*blob.Bucket, error) {
	svcOpts := azureblob.NewDefaultServiceURLOptions()
	for name := range q {
		v := q.Get(name)
		switch name {
		case "domain":
			svcOpts.StorageDomain = v
		case "protocol":
			svcOpts.Protocol = v
		case "storage_account":
			svcOpts.AccountName = v
		case "cdn", "localemu":
			b, err := parseBool(name, v)
			if err != nil {
				return nil, err
			}
			if name == "cdn" {
				svcOpts.IsCDN = b
			} else {
				svcOpts.IsLocalEmulator = b
			}
		}
	}
	clientOpts := &container.ClientOptions{}
	// Retries cover refused and dropped connections as well as 5xx
	// answers; one more than the SDK's default of 3 rides out a restart.
	clientOpts.Retry.MaxRetries = 4
	key := os.Getenv("AZURE_STORAGE_KEY")
	connStr := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
	if connStr == "" {
		connStr = os.Getenv("AZURE_STORAGEBLOB_CONNECTIONSTRING")
	}
	var client *container.Client
	switch {
	case svcOpts.AccountName != "" && key != "":
		svcURL, err := azureblob.NewServiceURL(svcOpts)
		if err != nil {
			return nil, err
		}
		cred, err := azblob.NewSharedKeyCredential(svcOpts.AccountName, key)
		if err != nil {
			return nil, errors.New("AZURE_STORAGE_KEY is not a valid account key")
		}
		client, err = container.NewClientWithSharedKeyCredential(joinURL(string(svcURL), containerName), cred, clientOpts)
		if err != nil {
			return nil, err
		}
	case svcOpts.SASToken != "":
		svcURL, err := azureblob.NewServiceURL(svcOpts)
		if err != nil {
			return nil, err
		}
		client, err = container.NewClientWithNoCredential(joinURL(string(svcURL), containerName), clientOpts)
		if err != nil {
			return nil, err
		}
	case connStr != "":
		var err error
		client, err = container.NewClientFromConnectionString(connStr, containerName, clientOpts)
		if err != nil {
			return nil, errors.New("AZURE_STORAGE_CONNECTION_STRING is not a valid connection string")
		}
	default:
		svcURL, err := azureblob.NewServiceURL(svcOpts)
		if err != nil {
			return nil, err
		}
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, errors.New("no Azure credentials were found")
		}
		client, err = container.NewClient(joinURL(string(svcURL), containerName), cred, clientOpts)
		if err != nil {
			return nil, err
		}
	}
	return azureblob.OpenBucket(ctx, client, nil)
}

// joinURL puts the container after the service URL, keeping a SAS token
// (the service URL's query) at the end.
func joinURL(svcURL, containerName string) string {
	base, query, _ := strings.Cut(svcURL, "?")
	s := strings.TrimSuffix(base, "/") + "/" + url.PathEscape(containerName)
	if query != "" {
		s += "?" + query
	}
	return s
}

// openGCS finds credentials per call, for the same reason as openAzure,
// and because gcsblob's default opener prints its warnings on stdout.
func openGCS(ctx context.Context, u *url.URL, q url.Values) (*blob.Bucket, error) {
	opener := &gcsblob.URLOpener{}
	anonymous := false
	if v := q.Get("anonymous"); v != "" {
		var err error
		if anonymous, err = parseBool("anonymous", v); err != nil {
			return nil, err
		}
	}
	switch {
	case os.Getenv("STORAGE_EMULATOR_HOST") != "" || anonymous:
		// gcsblob talks to an emulator without credentials.
		opener.Client = gcp.NewAnonymousHTTPClient(gcp.DefaultTransport())
	default:
		creds, err := gcp.DefaultCredentials(ctx)
		if err != nil {
			return nil, errors.New("no Google Cloud credentials were found")
		}
		opener.Client, err = gcp.NewHTTPClient(gcp.DefaultTransport(), gcp.CredentialsTokenSource(creds))
		if err != nil {
			return nil, err
		}
		opener.TokenSource = gcp.CredentialsTokenSource(creds)
	}
	bare := &url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: q.Encode()}
	return opener.OpenBucketURL(ctx, bare)
}

func (s *Bucket) String() string { return s.location }

// Close releases the store's clients.
func (s *Bucket) Close() error { return s.b.Close() }

// Create starts an upload straight to name. Object stores show an object
// only once its upload completed, so no temporary name is needed (a
// server-side copy would also be capped at 5 GiB on S3).
func (s *Bucket) Create(ctx context.Context, name string) (Writer, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%q is not a valid name in %s. Use plain names separated by single slashes", name, s)
	}
	// The writer gets a context of its own: cancelling it before closing
	// is how gocloud aborts an upload (S3 multipart uploads are aborted,
	// Azure's staged blocks and GCS's resumable session never committed).
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.b.NewWriter(wctx, name, &blob.WriterOptions{
		BufferSize:                  PartSize,
		MaxConcurrency:              PartConcurrency,
		ContentType:                 "application/octet-stream",
		DisableContentTypeDetection: true,
		BeforeWrite:                 retryGCSUploads,
	})
	if err != nil {
		cancel()
		return nil, s.explain("cannot start uploading "+name+" to", err)
	}
	return &bucketWriter{s: s, name: name, w: w, cancel: cancel}, nil
}

// retryGCSUploads lets the GCS client retry the chunks of an upload. By
// default it retries only requests it deems idempotent, which excludes
// uploads without a precondition; our names are written once, so sending a
// chunk again is safe. Other stores retry uploads by default.
func retryGCSUploads(as func(any) bool) error {
	var h **storage.ObjectHandle
	if as(&h) {
		*h = (*h).Retryer(storage.WithPolicy(storage.RetryAlways))
	}
	return nil
}

type bucketWriter struct {
	s      *Bucket
	name   string
	w      *blob.Writer
	cancel context.CancelFunc
	state  int // 0 open, 1 committed, 2 aborted or failed
}

func (w *bucketWriter) Write(p []byte) (int, error) {
	if w.state != 0 {
		return 0, fmt.Errorf("%s in %s was already finished", w.name, w.s)
	}
	n, err := w.w.Write(p)
	if err != nil {
		err = w.s.explain("cannot upload "+w.name+" to", err)
	}
	return n, err
}

func (w *bucketWriter) Commit() error {
	if w.state != 0 {
		return fmt.Errorf("%s in %s was already finished", w.name, w.s)
	}
	w.state = 2
	err := w.w.Close()
	w.cancel()
	if err != nil {
		return w.s.explain("cannot upload "+w.name+" to", err)
	}
	w.state = 1
	return nil
}

func (w *bucketWriter) Abort() {
	if w.state != 0 {
		return
	}
	w.state = 2
	// Cancel first: a Close with a live context would complete the upload.
	w.cancel()
	_ = w.w.Close()
}

// Open reads name. A download that breaks off (a dropped connection) is
// resumed from where it stopped, since the SDKs retry only the request
// that starts it.
func (s *Bucket) Open(ctx context.Context, name string) (Reader, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%q is not a valid name in %s. Use plain names separated by single slashes", name, s)
	}
	r, err := s.b.NewReader(ctx, name, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, s.notFound(ctx, name, err)
	}
	if err != nil {
		return nil, s.explain("cannot read "+name+" from", err)
	}
	return &bucketReader{ctx: ctx, s: s, name: name, r: r, size: r.Size()}, nil
}

type bucketReader struct {
	ctx   context.Context
	s     *Bucket
	name  string
	r     *blob.Reader
	size  int64
	off   int64
	fails int
}

func (r *bucketReader) Size() int64 { return r.size }

func (r *bucketReader) Read(p []byte) (int, error) {
	for {
		if r.r == nil {
			if err := r.reopen(); err != nil {
				return 0, err
			}
		}
		n, err := r.r.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.fails = 0
		}
		if err == nil || err == io.EOF {
			if err == io.EOF && r.off != r.size {
				err = fmt.Errorf("%s in %s ended after %d of its %d bytes. Read it again; if this persists the object was changed while being read", r.name, r.s, r.off, r.size)
			}
			return n, err
		}
		r.r.Close()
		r.r = nil
		if r.ctx.Err() != nil || r.fails >= readResumes {
			return n, r.s.explain("cannot read "+r.name+" from", err)
		}
		r.fails++
		if n > 0 {
			return n, nil
		}
	}
}

// reopen picks the download up at r.off after a short pause.
func (r *bucketReader) reopen() error {
	t := time.NewTimer(time.Duration(r.fails) * 200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.s.explain("cannot read "+r.name+" from", r.ctx.Err())
	case <-t.C:
	}
	nr, err := r.s.b.NewRangeReader(r.ctx, r.name, r.off, -1, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return r.s.notFound(r.ctx, r.name, err)
	}
	if err != nil {
		return r.s.explain("cannot read "+r.name+" from", err)
	}
	if nr.Size() != r.size {
		nr.Close()
		return fmt.Errorf("%s in %s changed size while being read. Read it again", r.name, r.s)
	}
	r.r = nr
	return nil
}

func (r *bucketReader) Close() error {
	if r.r == nil {
		return nil
	}
	err := r.r.Close()
	r.r = nil
	return err
}

// List lists every object under prefix, in all "subfolders".
func (s *Bucket) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, s.explain("cannot list", err)
		}
		if o.IsDir {
			continue
		}
		out = append(out, Object{Name: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes name; a missing name is not an error.
func (s *Bucket) Delete(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("%q is not a valid name in %s. Use plain names separated by single slashes", name, s)
	}
	err := s.b.Delete(ctx, name)
	if err == nil || gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	return s.explain("cannot delete "+name+" from", err)
}

// explain turns an SDK error into one sentence of what went wrong and one
// of what to do, keeping the original error for errors.Is and errors.As.
// what ends with a preposition: "cannot upload X to". A missing object is
// not explained here: see notFound.
func (s *Bucket) explain(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", what, s, err)
	}
	help := credentialHelp[s.scheme]
	cause := &causeError{err: err}
	var advice string
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
		// Writing and listing find no object missing: the bucket is.
		advice = "the bucket does not exist. Create it or correct the URL"
	case noCredentials(err):
		advice = "no credentials were found. Set " + help + " in the environment"
		// The SDK's message lists every place it looked, at length.
		cause.text = "no credentials"
	case denied(err):
		advice = "access was denied. Check the credentials in the environment (" + help + ") and their rights on the bucket"
	case gcerrors.Code(err) == gcerrors.ResourceExhausted:
		advice = "the store refused more requests or data. Wait, or check the account's quota, then run again"
	default:
		advice = "the store failed or could not be reached, even after retries. Check the URL, the network and the credentials in the environment (" + help + "), then run again"
	}
	return scrub(fmt.Errorf("%s %s: %s: %w", what, s, advice, cause))
}

// notFound explains a read that found nothing: a missing object (an error
// wrapping ErrNotExist), or a missing bucket, which is not the same thing
// to a caller looking for a backup (GCS answers both alike, so ask).
func (s *Bucket) notFound(ctx context.Context, name string, err error) error {
	if ok, aerr := s.b.IsAccessible(ctx); aerr == nil && !ok {
		return s.explain("cannot read "+name+" from", err)
	}
	return fmt.Errorf("%s does not exist in %s. Check the name against a listing of the destination: %w", name, s, ErrNotExist)
}

// httpStatus is the HTTP status of the store's answer, or 0.
func httpStatus(err error) int {
	var az *azcore.ResponseError
	if errors.As(err, &az) {
		return az.StatusCode
	}
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code
	}
	var h interface{ HTTPStatusCode() int }
	if errors.As(err, &h) {
		return h.HTTPStatusCode()
	}
	return 0
}

// denied reports refused credentials. gocloud maps only some of these to
// PermissionDenied (not S3's SignatureDoesNotMatch, say).
func denied(err error) bool {
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return true
	}
	if st := httpStatus(err); st == 401 || st == 403 {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
			return true
		}
	}
	return false
}

// noCredentials reports an SDK that found no credentials to sign with.
// The SDKs have no common error type for it, so the text decides.
func noCredentials(err error) bool {
	var az *azidentity.AuthenticationFailedError
	if errors.As(err, &az) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"failed to retrieve credentials", "no EC2 IMDS role found", "DefaultAzureCredential", "could not find default credentials"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// causeError shows the short form of an SDK error: Azure's and Google's
// errors run over many lines with the whole response, the AWS SDK's
// transport errors have many layers, and gocloud prefixes its own.
type causeError struct {
	err  error
	text string // shown instead, when set
}

func (e *causeError) Error() string {
	if e.text != "" {
		return e.text
	}
	var az *azcore.ResponseError
	if errors.As(e.err, &az) {
		return fmt.Sprintf("%s (HTTP %d)", az.ErrorCode, az.StatusCode)
	}
	var g *googleapi.Error
	if errors.As(e.err, &g) {
		if msg := strings.TrimSpace(g.Message); msg != "" {
			return fmt.Sprintf("%s (HTTP %d)", msg, g.Code)
		}
		return fmt.Sprintf("HTTP %d", g.Code)
	}
	var api smithy.APIError
	if errors.As(e.err, &api) {
		return fmt.Sprintf("%s: %s", api.ErrorCode(), api.ErrorMessage())
	}
	var op *net.OpError
	if errors.As(e.err, &op) {
		var attempts *retry.MaxAttemptsError
		if errors.As(e.err, &attempts) {
			return fmt.Sprintf("%v (%d attempts)", op, attempts.Attempt)
		}
		return op.Error()
	}
	return gocloudPrefix.ReplaceAllString(e.err.Error(), "")
}

func (e *causeError) Unwrap() error { return e.err }

// gocloudPrefix starts gocloud's errors: blob (key "x") (code=Unknown):
var gocloudPrefix = regexp.MustCompile(`^blob (\(key "[^"]*"\) )?\(code=\w+\): `)

// scrubbedError is an error whose text had secrets taken out.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// secretEnv are the variables whose values must never be shown, should
// an SDK put one in an error (a SAS token in a request URL, say).
var secretEnv = []string{
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
	"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGEBLOB_CONNECTIONSTRING",
	"AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET",
}

// scrub removes the values of secretEnv from err's text.
func scrub(err error) error {
	msg := err.Error()
	changed := false
	for _, name := range secretEnv {
		v := os.Getenv(name)
		if len(v) >= 8 && strings.Contains(msg, v) {
			msg = strings.ReplaceAll(msg, v, "REDACTED")
			changed = true
		}
		// A SAS token also shows up URL-encoded or as its signature.
		if name == "AZURE_STORAGE_SAS_TOKEN" && v != "" {
			if sq, err := url.ParseQuery(strings.TrimPrefix(v, "?")); err == nil {
				if sig := sq.Get("sig"); len(sig) >= 8 {
					for _, form := range []string{sig, url.QueryEscape(sig)} {
						if strings.Contains(msg, form) {
							msg = strings.ReplaceAll(msg, form, "REDACTED")
							changed = true
						}
					}
				}
			}
		}
	}
	if !changed {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
