package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/destination"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/robfig/cron/v3"
)

// UnsupportedError is a request for something magpie does not do (the
// server answers 501 for it, not 400).
type UnsupportedError struct{ Msg string }

func (e *UnsupportedError) Error() string { return e.Msg }

// script is RavenDB's GetBackupConfigurationScript: a command whose output
// gives the settings, credentials included.
type script struct {
	Exec string `json:"Exec"`
}

// secrets are the fields of a request that magpie reads only to refuse
// them (credentials, scripts, destinations it does not have) or to keep
// them out of the record (the key).
type secrets struct {
	S3Settings *struct {
		AwsAccessKey                 string  `json:"AwsAccessKey"`
		AwsSecretKey                 string  `json:"AwsSecretKey"`
		AwsSessionToken              string  `json:"AwsSessionToken"`
		GetBackupConfigurationScript *script `json:"GetBackupConfigurationScript"`
	} `json:"S3Settings"`
	AzureSettings *struct {
		AccountKey                   string  `json:"AccountKey"`
		SasToken                     string  `json:"SasToken"`
		GetBackupConfigurationScript *script `json:"GetBackupConfigurationScript"`
	} `json:"AzureSettings"`
	GoogleCloudSettings *struct {
		GoogleCredentialsJSON        string  `json:"GoogleCredentialsJson"`
		GetBackupConfigurationScript *script `json:"GetBackupConfigurationScript"`
	} `json:"GoogleCloudSettings"`
	LocalSettings *struct {
		GetBackupConfigurationScript *script `json:"GetBackupConfigurationScript"`
	} `json:"LocalSettings"`
	GlacierSettings          json.RawMessage `json:"GlacierSettings"`
	FtpSettings              json.RawMessage `json:"FtpSettings"`
	BackupEncryptionSettings *struct {
		Key *string `json:"Key"`
	} `json:"BackupEncryptionSettings"`
}

// credentialHelp says where magpie takes each store's credentials from.
var credentialHelp = map[string]string{
	"S3Settings":          "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or the AWS credentials file (AWS_PROFILE, ~/.aws/credentials)",
	"AzureSettings":       "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_CONNECTION_STRING",
	"GoogleCloudSettings": "GOOGLE_APPLICATION_CREDENTIALS, the path of a service account key file",
}

// CredentialError refuses a storage credential in a request.
func CredentialError(field string) error {
	settings, _, _ := strings.Cut(field, ".")
	return fmt.Errorf("%s was given, but magpie takes storage credentials only from its environment (%s), never from a request, so that they are never stored in the database record or a backup. Leave it out", field, credentialHelp[settings])
}

// Parse reads a PeriodicBackupConfiguration (or BackupConfiguration, for
// a one-time backup) request. It refuses storage credentials and the
// destinations magpie does not have, and returns the key of
// UseProvidedKey, if one was given, apart from the task: it is never
// stored. The rest is checked by Check and Plan.
func Parse(body []byte) (*Config, *keys.Key, error) {
	var c Config
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, nil, fmt.Errorf("the request body is not a backup configuration: %s", JSONProblem(err))
	}
	var s secrets
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, nil, fmt.Errorf("the request body is not a backup configuration: %s", JSONProblem(err))
	}
	var refused []string
	scripts := map[string]*script{}
	if v := s.S3Settings; v != nil {
		for _, f := range []struct{ name, value string }{{"AwsAccessKey", v.AwsAccessKey}, {"AwsSecretKey", v.AwsSecretKey}, {"AwsSessionToken", v.AwsSessionToken}} {
			if f.value != "" {
				refused = append(refused, "S3Settings."+f.name)
			}
		}
		scripts["S3Settings"] = v.GetBackupConfigurationScript
	}
	if v := s.AzureSettings; v != nil {
		for _, f := range []struct{ name, value string }{{"AccountKey", v.AccountKey}, {"SasToken", v.SasToken}} {
			if f.value != "" {
				refused = append(refused, "AzureSettings."+f.name)
			}
		}
		scripts["AzureSettings"] = v.GetBackupConfigurationScript
	}
	if v := s.GoogleCloudSettings; v != nil {
		if v.GoogleCredentialsJSON != "" {
			refused = append(refused, "GoogleCloudSettings.GoogleCredentialsJson")
		}
		scripts["GoogleCloudSettings"] = v.GetBackupConfigurationScript
	}
	if v := s.LocalSettings; v != nil {
		scripts["LocalSettings"] = v.GetBackupConfigurationScript
	}
	if len(refused) > 0 {
		return nil, nil, CredentialError(refused[0])
	}
	for _, name := range []string{"LocalSettings", "S3Settings", "AzureSettings", "GoogleCloudSettings"} {
		if sc := scripts[name]; sc != nil && strings.TrimSpace(sc.Exec) != "" {
			return nil, nil, &UnsupportedError{fmt.Sprintf("%s.GetBackupConfigurationScript is not supported by magpie, which takes settings from the request and credentials from its environment. Give the settings directly", name)}
		}
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
	}{{"GlacierSettings", s.GlacierSettings}, {"FtpSettings", s.FtpSettings}} {
		if len(d.raw) == 0 || string(d.raw) == "null" {
			continue
		}
		var v struct{ Disabled bool }
		if json.Unmarshal(d.raw, &v) == nil && v.Disabled {
			continue
		}
		return nil, nil, &UnsupportedError{fmt.Sprintf("%s: uploading backups to %s is not supported by magpie. Use LocalSettings, S3Settings, AzureSettings, GoogleCloudSettings or MagpieDestinations", d.name, strings.TrimSuffix(d.name, "Settings"))}
	}
	var key *keys.Key
	if es := c.BackupEncryptionSettings; es != nil {
		// A fingerprint is the server's to set, from a key it was given.
		es.MagpieKeyFingerprint = ""
		if s.BackupEncryptionSettings != nil && s.BackupEncryptionSettings.Key != nil && *s.BackupEncryptionSettings.Key != "" {
			k, err := keys.Parse(*s.BackupEncryptionSettings.Key)
			if err != nil {
				return nil, nil, fmt.Errorf("BackupEncryptionSettings.Key: %v", err)
			}
			key = &k
			es.MagpieKeyFingerprint = k.Fingerprint()
		}
	}
	return &c, key, nil
}

// maxNameLen bounds a task's name: it is shown in listings and logs.
const maxNameLen = 200

// JSONProblem describes a JSON decoding error in the terms of JSON (not
// of the Go types it was read into), without echoing the input.
func JSONProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("it is %s where %s was expected", jsonArticle(typ.Value), jsonKind(typ.Type))
		}
		return fmt.Sprintf("field %s is %s, not %s", typ.Field, jsonArticle(typ.Value), jsonKind(typ.Type))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends in the middle of a value"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names what JSON value a Go type is read from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another value"
}

// jsonArticle puts an article before a JSON value's kind as encoding/json
// names it (object, array, string, number, bool, ...).
func jsonArticle(kind string) string {
	switch {
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "number"):
		return "a number"
	case kind == "object" || kind == "array":
		return "an " + kind
	}
	return "a " + kind
}

// Check checks what can be checked of a task without its database: type,
// compression, schedules, destinations and retention. Plan checks the
// rest (encryption) against the database.
func (c *Config) Check() error {
	if len(c.Name) > maxNameLen {
		return fmt.Errorf("the task's Name is %d bytes long. Give a name of at most %d bytes", len(c.Name), maxNameLen)
	}
	if strings.IndexFunc(c.Name, unprintable) >= 0 || !utf8.ValidString(c.Name) {
		return fmt.Errorf("the task's Name %q holds control characters, line or paragraph separators, bidirectional controls or invalid UTF-8, which would garble listings and logs. Give a name of printable characters", c.Name)
	}
	switch strings.ToLower(c.BackupType) {
	case "", "backup", "snapshot":
	default:
		return fmt.Errorf("BackupType %q is not known. Use Backup (a logical backup) or Snapshot", c.BackupType)
	}
	switch strings.ToLower(c.MagpieCompression) {
	case "", "zstd", "gzip":
	default:
		return fmt.Errorf("MagpieCompression %q is not known. Use zstd (the default) or gzip (for RavenDB 4.x and 5.x)", c.MagpieCompression)
	}
	if c.Type() == "Snapshot" && c.MagpieCompression != "" {
		return errors.New("MagpieCompression applies to logical backups only: a snapshot's files are already compressed. Leave it out")
	}
	if _, _, err := c.Schedules(); err != nil {
		return err
	}
	if _, err := c.Destinations(); err != nil {
		return err
	}
	if _, err := c.Retention(); err != nil {
		return err
	}
	return nil
}

// Schedules parses the task's frequencies: standard five-field cron
// expressions (minute hour day-of-month month day-of-week, as RavenDB
// takes them) or descriptors (@daily, @hourly, @every 10m). A frequency
// left empty gives a nil schedule.
func (c *Config) Schedules() (full, incremental cron.Schedule, err error) {
	if full, err = parseSchedule("FullBackupFrequency", c.FullBackupFrequency); err != nil {
		return nil, nil, err
	}
	if incremental, err = parseSchedule("IncrementalBackupFrequency", c.IncrementalBackupFrequency); err != nil {
		return nil, nil, err
	}
	return full, incremental, nil
}

func parseSchedule(field, spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	s, err := parseCron(spec)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a cron expression (%v). Give five fields, minute hour day-of-month month day-of-week, such as \"0 2 * * *\", or a descriptor such as @daily or \"@every 1h\"", field, spec, err)
	}
	// cron rounds an interval under a second up to a second, so "@every
	// 0s" or "@every -5s" would run every second: refuse them instead.
	// A time zone prefix does not change that (cron drops it for @every).
	desc := spec
	if strings.HasPrefix(desc, "TZ=") || strings.HasPrefix(desc, "CRON_TZ=") {
		if i := strings.Index(desc, " "); i >= 0 {
			desc = strings.TrimSpace(desc[i:])
		}
	}
	if rest, ok := strings.CutPrefix(desc, "@every "); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil && d < time.Second {
			return nil, fmt.Errorf("%s %q is shorter than a second. Give an interval of at least 1s, such as \"@every 1h\"", field, spec)
		}
	}
	// A date that never comes (February 30) would give no next run.
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("%s %q never falls due (no date matches it). Check the day of month and the month, such as \"0 2 28 2 *\"", field, spec)
	}
	return s, nil
}

// parseCron is cron.ParseStandard, which panics on some malformed input
// (a time zone prefix with nothing after it, "TZ=UTC"): that becomes an
// error, never a crash of the server or of a restore that brings the task
// back.
func parseCron(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, errors.New("it is malformed")
		}
	}()
	if tz, rest, _ := strings.Cut(spec, " "); (strings.HasPrefix(tz, "TZ=") || strings.HasPrefix(tz, "CRON_TZ=")) && strings.TrimSpace(rest) == "" {
		return nil, errors.New("it names a time zone and no schedule")
	}
	return cron.ParseStandard(spec)
}

// Destinations are the locations that receive the task's backups, in the
// order LocalSettings, S3Settings, AzureSettings, GoogleCloudSettings,
// MagpieDestinations; settings marked Disabled are left out. RavenDB's
// settings become destination URLs (docs/DESTINATIONS.md):
//
//	S3Settings           s3://BucketName/RemoteFolderName?region=AwsRegionName&endpoint=CustomServerUrl&use_path_style=true (ForcePathStyle)
//	AzureSettings        azblob://StorageContainer/RemoteFolderName?storage_account=AccountName
//	GoogleCloudSettings  gs://BucketName/RemoteFolderName
func (c *Config) Destinations() ([]string, error) {
	var out []string
	if l := c.LocalSettings; l != nil && !l.Disabled {
		// An empty FolderPath is a LocalSettings left unused, as
		// clients send them beside a cloud setting.
		p := strings.TrimSpace(l.FolderPath)
		switch {
		case p == "":
		case destination.IsURL(p):
			return nil, fmt.Errorf("LocalSettings.FolderPath %q is a URL. Give a folder on the server's machine there, and URLs in MagpieDestinations", destination.Redact(p))
		case !filepath.IsAbs(p):
			return nil, fmt.Errorf("LocalSettings.FolderPath %q is not an absolute path. Give the full path of a folder on the server's machine", l.FolderPath)
		}
		if p != "" {
			out = append(out, filepath.Clean(p))
		}
	}
	if s := c.S3Settings; s != nil && !s.Disabled {
		q := url.Values{}
		if s.AwsRegionName != "" {
			q.Set("region", s.AwsRegionName)
		}
		if s.CustomServerURL != "" {
			e, err := url.Parse(s.CustomServerURL)
			if err != nil || e.Host == "" || (e.Scheme != "http" && e.Scheme != "https") || e.User != nil {
				return nil, fmt.Errorf("S3Settings.CustomServerUrl %q is not a server URL. Give it as https://HOST[:PORT], without credentials", destination.Redact(s.CustomServerURL))
			}
			q.Set("endpoint", s.CustomServerURL)
		}
		// Without ForcePathStyle the destination's own default holds:
		// path-style requests with a CustomServerUrl, since S3-compatible
		// servers rarely have a DNS name per bucket.
		if s.ForcePathStyle {
			q.Set("use_path_style", "true")
		}
		u, err := bucketURL("S3Settings", "BucketName", "s3", s.BucketName, s.RemoteFolderName, q)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if a := c.AzureSettings; a != nil && !a.Disabled {
		q := url.Values{}
		if a.AccountName != "" {
			q.Set("storage_account", a.AccountName)
		}
		u, err := bucketURL("AzureSettings", "StorageContainer", "azblob", a.StorageContainer, a.RemoteFolderName, q)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if g := c.GoogleCloudSettings; g != nil && !g.Disabled {
		u, err := bucketURL("GoogleCloudSettings", "BucketName", "gs", g.BucketName, g.RemoteFolderName, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	for i, d := range c.MagpieDestinations {
		loc, err := CheckLocation(d)
		if err != nil {
			return nil, fmt.Errorf("MagpieDestinations entry %d: %v", i+1, err)
		}
		out = append(out, loc)
	}
	if len(out) == 0 {
		return nil, errors.New("LocalSettings.FolderPath is missing and no other destination was given. Give the folder on the server's machine that receives the backups, or S3Settings, AzureSettings, GoogleCloudSettings or MagpieDestinations")
	}
	seen := map[string]bool{}
	for _, d := range out {
		if seen[d] {
			return nil, fmt.Errorf("destination %s is given twice. Give each destination once", destination.Redact(d))
		}
		seen[d] = true
	}
	return out, nil
}

// bucketURL makes the URL of a RavenDB cloud setting.
func bucketURL(settings, bucketField, scheme, bucket, folder string, q url.Values) (string, error) {
	bucket = strings.TrimSpace(bucket)
	if bucket == "" {
		noun := "bucket"
		if scheme == "azblob" {
			noun = "container"
		}
		return "", fmt.Errorf("%s.%s is missing. Give the %s of the backups", settings, bucketField, noun)
	}
	if strings.ContainsAny(bucket, "/?#@ ") {
		return "", fmt.Errorf("%s.%s %q is not a bucket name. Give the name alone, and a folder inside it in RemoteFolderName", settings, bucketField, bucket)
	}
	folder = strings.Trim(folder, "/")
	for _, part := range strings.Split(folder, "/") {
		if folder != "" && (part == "" || part == "." || part == "..") {
			return "", fmt.Errorf("%s.RemoteFolderName %q has empty, . or .. parts. Give plain names separated by single slashes", settings, folder)
		}
	}
	u := url.URL{Scheme: scheme, Host: bucket}
	if folder != "" {
		u.Path = "/" + folder
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// CheckLocation checks a destination given as a location (a local folder
// or a URL) without opening it, and returns it cleaned. Local folders must
// be absolute: they name folders on the machine that runs the backup.
func CheckLocation(loc string) (string, error) {
	loc = strings.TrimSpace(loc)
	if loc == "" {
		return "", errors.New("the location is empty. Give an absolute folder path or an s3://, azblob:// or gs:// URL")
	}
	if !destination.IsURL(loc) {
		if !filepath.IsAbs(loc) {
			return "", fmt.Errorf("%q is not an absolute path. Give the full path of a folder on the server's machine, or a URL", loc)
		}
		return filepath.Clean(loc), nil
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%s is not a valid URL. Write it as s3://BUCKET/PATH, azblob://CONTAINER/PATH or gs://BUCKET/PATH", destination.Redact(loc))
	}
	if u.User != nil {
		return "", fmt.Errorf("%s holds credentials, and magpie never stores credentials. Leave them out: magpie takes them from its environment (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...)", destination.Redact(loc))
	}
	switch u.Scheme {
	case "file":
		if !filepath.IsAbs(filepath.FromSlash(u.Path)) || u.Host != "" || u.RawQuery != "" {
			return "", fmt.Errorf("%s is not an absolute file:// URL. Write it as file:///PATH", loc)
		}
		// A file:// URL is the folder it names: one spelling, so that
		// the same folder cannot be given twice.
		return filepath.Clean(filepath.FromSlash(u.Path)), nil
	case "s3", "azblob", "gs":
		if u.Host == "" {
			return "", fmt.Errorf("%s names no bucket. Write it as %s://BUCKET/PATH", loc, u.Scheme)
		}
		if err := destination.CheckURL(loc); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("the scheme %q of %s is not supported. Use an absolute folder path, s3://, azblob:// or gs://", u.Scheme, loc)
	}
	return loc, nil
}

// Retention is the task's retention: RetentionPolicy's minimum age (when
// the policy is not disabled) and MagpieKeepNewest.
func (c *Config) Retention() (backup.Retention, error) {
	var r backup.Retention
	if p := c.RetentionPolicy; p != nil && !p.Disabled && p.MinimumBackupAgeToKeep != nil && strings.TrimSpace(*p.MinimumBackupAgeToKeep) != "" {
		d, err := ParseAge(*p.MinimumBackupAgeToKeep)
		if errors.Is(err, errAgeTooLong) {
			return r, fmt.Errorf("RetentionPolicy.MinimumBackupAgeToKeep %q is longer than 100 years. Give a shorter age, or leave the policy out to keep chains of any age", *p.MinimumBackupAgeToKeep)
		}
		if err != nil {
			return r, fmt.Errorf("RetentionPolicy.MinimumBackupAgeToKeep %q is not a duration. Give a .NET TimeSpan such as \"30.00:00:00\" (30 days) or a Go duration such as \"720h\"", *p.MinimumBackupAgeToKeep)
		}
		r.MinAge = d
	}
	r.KeepNewest = c.MagpieKeepNewest
	if err := r.Check(); err != nil {
		field := "RetentionPolicy.MinimumBackupAgeToKeep"
		if r.KeepNewest < 0 {
			field = "MagpieKeepNewest"
		}
		return r, fmt.Errorf("%s: %w", field, err)
	}
	return r, nil
}

// timeSpan is .NET's TimeSpan text: [-][d.]hh:mm[:ss[.fffffff]].
var timeSpan = regexp.MustCompile(`^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$`)

// ParseAge reads a retention age: a .NET TimeSpan as RavenDB sends it
// ("30.00:00:00", "12:00:00", or a number of days "7") or a Go duration
// ("720h", "90m").
func ParseAge(s string) (time.Duration, error) {
	d, err := parseAge(s)
	if err == nil && (d > maxAge || d < -maxAge) {
		return 0, fmt.Errorf("%q: %w", strings.TrimSpace(s), errAgeTooLong)
	}
	return d, err
}

var errAgeTooLong = errors.New("longer than 100 years")

// maxAge bounds retention ages: far beyond any use, and far from the
// overflow of a time.Duration (292 years), which a .NET TimeSpan of many
// days would otherwise wrap into a short or negative age.
const maxAge = 100 * 365 * 24 * time.Hour

func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n > 36500 || n < -36500 {
			return 0, fmt.Errorf("%q: %w", s, errAgeTooLong)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	if m := timeSpan.FindStringSubmatch(s); m != nil {
		num := func(i int) time.Duration {
			n, _ := strconv.Atoi(m[i])
			return time.Duration(n)
		}
		h, mi, sec := num(3), num(4), num(5)
		if h > 23 || mi > 59 || sec > 59 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		if num(2) > 36500 {
			return 0, fmt.Errorf("%q: %w", s, errAgeTooLong)
		}
		d := num(2)*24*time.Hour + h*time.Hour + mi*time.Minute + sec*time.Second
		if m[6] != "" {
			frac := m[6] + strings.Repeat("0", 7-len(m[6]))
			n, _ := strconv.Atoi(frac)
			d += time.Duration(n) * 100 * time.Nanosecond
		}
		if m[1] == "-" {
			d = -d
		}
		return d, nil
	}
	return time.ParseDuration(s)
}

// settingsFields are RavenDB's restore types and the settings object each
// takes.
var settingsFields = map[string]string{"s3": "S3Settings", "azure": "AzureSettings", "googlecloud": "GoogleCloudSettings"}

// IsSettingsType reports whether typ is a restore type that SettingsLocation
// reads (S3, Azure, GoogleCloud).
func IsSettingsType(typ string) bool {
	_, ok := settingsFields[strings.ToLower(typ)]
	return ok
}

// SettingsLocation reads the settings of one cloud destination as a
// restore request (RestoreFromS3Configuration.Settings, ...) or a restore
// point query (the body of POST /admin/restore/points?type=S3) carries
// them: typ is S3, Azure or GoogleCloud. It returns the destination's
// location (a URL) and refuses credentials like Parse. field names the
// settings in errors ("Settings"; "" when they are the whole body).
func SettingsLocation(typ string, raw []byte, field string) (string, error) {
	name, ok := settingsFields[strings.ToLower(typ)]
	if !ok {
		return "", &UnsupportedError{fmt.Sprintf("type %q is not supported by magpie. Use Local, S3, Azure or GoogleCloud", typ)}
	}
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%s is missing. Give the %s of the backups' bucket", strings.TrimSpace(field+" ("+name+")"), name)
	}
	var on struct{ Disabled bool }
	if err := json.Unmarshal(raw, &on); err != nil {
		return "", fmt.Errorf("%s is not a JSON object", field)
	}
	if on.Disabled {
		return "", fmt.Errorf("%s is disabled. Give enabled settings", field)
	}
	body, err := json.Marshal(map[string]json.RawMessage{name: raw})
	if err != nil {
		return "", fmt.Errorf("%s is not a JSON object", field)
	}
	reword := func(err error) error {
		var ue *UnsupportedError
		prefix := ""
		if field != "" {
			prefix = field + "."
		}
		msg := strings.ReplaceAll(err.Error(), name+".", prefix)
		if errors.As(err, &ue) {
			return &UnsupportedError{msg}
		}
		return errors.New(msg)
	}
	c, _, err := Parse(body)
	if err != nil {
		return "", reword(err)
	}
	dests, err := c.Destinations()
	if err != nil {
		return "", reword(err)
	}
	return dests[0], nil
}

// unprintable reports characters a name must not hold: controls, line and
// paragraph separators (U+2028, U+2029), and format characters such as the
// bidirectional overrides (U+202E), which make a name read as another.
func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf)
}
