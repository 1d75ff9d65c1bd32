package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	kenv "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/magpiedb/magpie/internal/certs"
	"github.com/magpiedb/magpie/internal/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

const (
	defaultListen         = "127.0.0.1:8443"
	defaultListenUnsecure = "127.0.0.1:8080"
	// shutdownGrace is how long running requests get to finish after
	// SIGTERM or SIGINT.
	shutdownGrace = 30 * time.Second
)

// serveConfig is what `magpie serve` runs with, from (lowest to highest
// precedence) the defaults, --config FILE, MAGPIE_* variables and flags.
type serveConfig struct {
	Listen      string
	Hostnames   []string
	Unsecured   bool
	TLSCert     string
	TLSKey      string
	TLSClientCA string
	// BackupConcurrency caps the cores a logical backup's compression
	// uses, so that backups leave the other cores to requests.
	BackupConcurrency int
}

// serveKeys are the settings a config file and MAGPIE_* variables may set.
var serveKeys = map[string]string{
	"listen":             "MAGPIE_LISTEN",
	"hostname":           "MAGPIE_HOSTNAME",
	"unsecured":          "MAGPIE_UNSECURED",
	"tls-cert":           "MAGPIE_TLS_CERT",
	"tls-key":            "MAGPIE_TLS_KEY",
	"tls-client-ca":      "MAGPIE_TLS_CLIENT_CA",
	"backup-concurrency": "MAGPIE_BACKUP_CONCURRENCY",
}

func newServeCmd(g *globals) *cobra.Command {
	var flags serveConfig
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the data dir over HTTPS with the RavenDB wire protocol",
		Long: `Serve the databases of the data dir to RavenDB clients over HTTPS.

Access is secured by default: TLS, and a client certificate that the server
checks against its registry (DATA/certs/registry.json). On first start magpie
creates a certificate authority, a server certificate (for 127.0.0.1, ::1,
localhost and every --hostname) and an admin client certificate in
DATA/certs, and prints how to connect. Later starts reuse them. Issue more
client certificates with ` + "`magpie certs create`" + `.

--tls-cert/--tls-key serve your own server certificate instead; client
certificates must then be issued by magpie's CA or by --tls-client-ca.

--unsecured serves plain HTTP without authentication, on a loopback address
only, and refuses encrypted databases.

--backup-concurrency caps the goroutines that compress a logical backup
(default 1: one core), so that a backup running beside requests slows them
little; 0 is the default of magpie backup run, two.

Settings also come from --config FILE (YAML or JSON: listen, hostname,
unsecured, tls-cert, tls-key, tls-client-ca, backup-concurrency) and from
MAGPIE_LISTEN, MAGPIE_HOSTNAME (comma-separated), MAGPIE_UNSECURED,
MAGPIE_TLS_CERT, MAGPIE_TLS_KEY, MAGPIE_TLS_CLIENT_CA and
MAGPIE_BACKUP_CONCURRENCY; flags win over variables, which win
over the file. SIGTERM or SIGINT stops the server after the running requests
finish (at most 30 s); running backups are aborted and leave nothing behind.
GET /metrics serves Prometheus metrics to any registered client certificate.

Backup tasks (magpie backup task add) run on their schedules while magpie
serve runs, and only then; a run that fell due while the server was down
runs when it starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := resolveServeConfig(cmd, flags, configFile)
			if err != nil {
				return err
			}
			return runServe(cmd, g, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.Listen, "listen", defaultListen, "address to listen on ("+defaultListenUnsecure+" with --unsecured)")
	f.StringArrayVar(&flags.Hostnames, "hostname", nil, "extra host name or IP address for the server certificate (repeatable)")
	f.BoolVar(&flags.Unsecured, "unsecured", false, "serve plain HTTP without authentication (loopback only; no encrypted databases)")
	f.StringVar(&flags.TLSCert, "tls-cert", "", "your own server certificate (PEM) instead of the one magpie makes")
	f.StringVar(&flags.TLSKey, "tls-key", "", "the key of --tls-cert (PEM)")
	f.StringVar(&flags.TLSClientCA, "tls-client-ca", "", "extra CA certificates (PEM) whose client certificates may be registered")
	f.IntVar(&flags.BackupConcurrency, "backup-concurrency", 1, "goroutines that compress a logical backup (1: one core; 0: two)")
	f.StringVar(&configFile, "config", os.Getenv("MAGPIE_CONFIG"), "config file, YAML or JSON (env MAGPIE_CONFIG)")
	return cmd
}

// resolveServeConfig merges the config file, the environment and the flags
// that were given.
func resolveServeConfig(cmd *cobra.Command, flags serveConfig, configFile string) (serveConfig, error) {
	k := koanf.New(".")
	if configFile != "" {
		if _, err := os.Stat(configFile); err != nil {
			return serveConfig{}, usagef("cannot read the config file %s: %v. Check the --config path", configFile, errors.Unwrap(err))
		}
		if err := k.Load(file.Provider(configFile), yaml.Parser()); err != nil {
			return serveConfig{}, usagef("the config file %s is not valid YAML or JSON: %v. Fix the file", configFile, err)
		}
		for _, key := range k.Keys() {
			if _, ok := serveKeys[key]; !ok {
				return serveConfig{}, usagef("the config file %s sets %q, which magpie serve does not know. Use only: listen, hostname, unsecured, tls-cert, tls-key, tls-client-ca, backup-concurrency", configFile, key)
			}
		}
	}
	envKeys := map[string]string{}
	for key, name := range serveKeys {
		envKeys[name] = key
	}
	err := k.Load(kenv.Provider(".", kenv.Opt{
		Prefix: "MAGPIE_",
		TransformFunc: func(name, value string) (string, any) {
			key, ok := envKeys[name]
			if !ok || value == "" {
				return "", nil
			}
			if key == "hostname" {
				return key, splitList(value)
			}
			return key, value
		},
	}), nil)
	if err != nil {
		return serveConfig{}, err
	}

	cfg := serveConfig{Listen: "", BackupConcurrency: 1}
	str := func(key string) (string, error) {
		switch v := k.Get(key).(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		default:
			return "", usagef("setting %s must be a string, not %v. Fix the config file or %s", key, v, serveKeys[key])
		}
	}
	for key, dst := range map[string]*string{"listen": &cfg.Listen, "tls-cert": &cfg.TLSCert, "tls-key": &cfg.TLSKey, "tls-client-ca": &cfg.TLSClientCA} {
		if *dst, err = str(key); err != nil {
			return cfg, err
		}
	}
	switch v := k.Get("unsecured").(type) {
	case nil:
	case bool:
		cfg.Unsecured = v
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, usagef("setting unsecured must be true or false, not %q. Fix the config file or MAGPIE_UNSECURED", v)
		}
		cfg.Unsecured = b
	default:
		return cfg, usagef("setting unsecured must be true or false, not %v. Fix the config file", v)
	}
	switch v := k.Get("backup-concurrency").(type) {
	case nil:
	case int:
		cfg.BackupConcurrency = v
	case float64:
		cfg.BackupConcurrency = int(v)
		if float64(cfg.BackupConcurrency) != v {
			return cfg, usagef("setting backup-concurrency must be a whole number of cores, not %v. Fix the config file", v)
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return cfg, usagef("setting backup-concurrency must be a whole number of cores, not %q. Fix the config file or MAGPIE_BACKUP_CONCURRENCY", v)
		}
		cfg.BackupConcurrency = n
	default:
		return cfg, usagef("setting backup-concurrency must be a whole number of cores, not %v. Fix the config file", v)
	}
	switch v := k.Get("hostname").(type) {
	case nil:
	case string:
		cfg.Hostnames = splitList(v)
	case []string:
		cfg.Hostnames = v
	case []any:
		for _, h := range v {
			s, ok := h.(string)
			if !ok {
				return cfg, usagef("setting hostname must be a list of names, and %v is not one. Fix the config file", h)
			}
			cfg.Hostnames = append(cfg.Hostnames, s)
		}
	default:
		return cfg, usagef("setting hostname must be a name or a list of names, not %v. Fix the config file", v)
	}

	fl := cmd.Flags()
	if fl.Changed("listen") {
		cfg.Listen = flags.Listen
	}
	if fl.Changed("hostname") {
		cfg.Hostnames = flags.Hostnames
	}
	if fl.Changed("unsecured") {
		cfg.Unsecured = flags.Unsecured
	}
	if fl.Changed("tls-cert") {
		cfg.TLSCert = flags.TLSCert
	}
	if fl.Changed("tls-key") {
		cfg.TLSKey = flags.TLSKey
	}
	if fl.Changed("tls-client-ca") {
		cfg.TLSClientCA = flags.TLSClientCA
	}
	if fl.Changed("backup-concurrency") {
		cfg.BackupConcurrency = flags.BackupConcurrency
	}
	if cfg.Listen == "" {
		cfg.Listen = defaultListen
		if cfg.Unsecured {
			cfg.Listen = defaultListenUnsecure
		}
	}
	return cfg, validateServeConfig(cfg)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func validateServeConfig(cfg serveConfig) error {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return usagef("--listen %s is not HOST:PORT: %v. Give an address such as %s", cfg.Listen, err, defaultListen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return usagef("--listen %s has no valid port. Give an address such as %s", cfg.Listen, defaultListen)
	}
	if cfg.BackupConcurrency < 0 || cfg.BackupConcurrency > 64 {
		return usagef("backup concurrency %d (--backup-concurrency, MAGPIE_BACKUP_CONCURRENCY or backup-concurrency in the config file) is not between 0 and 64. Give 1 to keep backups on one core, or 0 for two", cfg.BackupConcurrency)
	}
	if cfg.Unsecured {
		if cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSClientCA != "" {
			return usagef("--unsecured serves plain HTTP, so --tls-cert, --tls-key and --tls-client-ca have no use with it. Drop them or drop --unsecured")
		}
		if len(cfg.Hostnames) > 0 {
			return usagef("--hostname names the server certificate, which --unsecured does not use. Drop --hostname or drop --unsecured")
		}
		if !isLoopback(host) {
			shown := cfg.Listen
			return usagef("--unsecured serves plain HTTP with no authentication, so it listens only on a loopback address, and %s is not one. Use --listen 127.0.0.1:PORT (or [::1]:PORT), or drop --unsecured and connect with a client certificate", shown)
		}
		return nil
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usagef("--tls-cert and --tls-key go together. Give both, or neither to use the certificate magpie makes")
	}
	if cfg.TLSCert != "" && len(cfg.Hostnames) > 0 {
		return usagef("--hostname names the server certificate magpie makes, and --tls-cert brings your own. Put the names in your certificate and drop --hostname")
	}
	if _, _, err := certs.SplitHosts(cfg.Hostnames); err != nil {
		return &usageError{msg: err.Error()}
	}
	return nil
}

// isLoopback reports whether a listen host is a loopback address. An empty
// host means every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(cmd *cobra.Command, g *globals, cfg serveConfig) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Signals are caught from the start: a stop requested while the
	// certificates are being made is honoured once the server is up.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Listen first: a taken port is reported before anything is created.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %v. Choose another address with --listen", cfg.Listen, opErr(err))
	}
	defer ln.Close()

	data, err := g.openDataDirCache(true, 0) // the store's default cache
	if err != nil {
		return err
	}
	defer data.Close()

	var (
		auth     *server.CertAuth
		tlsCfg   *tls.Config
		set      *certs.Set
		certInfo string
	)
	if !cfg.Unsecured {
		dir := filepath.Join(data.Path(), "certs")
		var serverCert tls.Certificate
		if cfg.TLSCert == "" {
			set, err = certs.EnsureServer(dir, cfg.Hostnames)
			if err != nil {
				return err
			}
			serverCert = tls.Certificate{Certificate: [][]byte{set.Server.Cert.Raw}, PrivateKey: set.Server.Key, Leaf: set.Server.Cert}
		} else {
			set, err = certs.EnsureClientAuth(dir)
			if err != nil {
				return err
			}
			serverCert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				return fmt.Errorf("cannot load the server certificate --tls-cert %s with --tls-key %s: %v. Give a PEM certificate and its PEM key", cfg.TLSCert, cfg.TLSKey, err)
			}
		}
		warnUncovered(log, serverCert, cfg.Listen)
		roots := x509.NewCertPool()
		roots.AddCert(set.CA.Cert)
		if cfg.TLSClientCA != "" {
			_, extra, err := certs.ReadCertPool(cfg.TLSClientCA)
			if err != nil {
				return fmt.Errorf("cannot read --tls-client-ca: %v. Give a PEM file of CA certificates", err)
			}
			for _, c := range extra {
				roots.AddCert(c)
			}
		}
		auth = server.NewCertAuth(set.Registry, roots)
		auth.IssueWith(set.CA)
		tlsCfg = &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			// Request, do not require or verify: the HTTP layer checks
			// the certificate so a refusal is a readable 403 JSON answer.
			// No ClientCAs either: with a list of acceptable CAs some
			// clients (Go's, Java's) silently send no certificate of
			// another CA, and the operator would read "none was
			// provided" instead of "not issued by this server's CA".
			ClientAuth: tls.RequestClientCert,
			MinVersion: tls.VersionTLS12,
		}
		for _, p := range set.Created {
			log.Info("created", "file", p)
		}
		certInfo = dir
	}

	scfg := server.Config{Unsecured: cfg.Unsecured, Logger: log, BackupConcurrency: cfg.BackupConcurrency}
	if auth != nil {
		scfg.Auth = auth
	}
	srv := server.New(scfg, data)
	defer srv.Close()
	if auth != nil {
		srv.RegisterCertificateRoutes(auth)
	}

	m := newServeMetrics()
	if err := srv.RegisterMetrics(m.reg); err != nil {
		return err
	}
	// Backup tasks run on their schedules only here, under magpie serve.
	srv.StartScheduler()
	handler := m.instrument(srv.Handler(), log)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			m.serve(w, r, auth)
			return
		}
		handler.ServeHTTP(w, r)
	})

	hs := &http.Server{
		Handler:           root,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelInfo),
	}

	url := publicURL(ln.Addr().(*net.TCPAddr), cfg)
	// Commands refused by the data dir's lock read this to point at
	// --server.
	if servedPath := filepath.Join(data.Path(), servedFile); os.WriteFile(servedPath, []byte(url+"\n"), 0o600) == nil {
		defer os.Remove(servedPath)
	}
	printConnectHelp(cmd.OutOrStdout(), url, data.Path(), cfg, set, certInfo)
	log.Info("serving", "url", url, "listen", ln.Addr().String(), "data", data.Path(), "secured", !cfg.Unsecured)

	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("the server stopped: %v", err)
	case <-ctx.Done():
	}
	// A second signal now stops the process the default way.
	stop()
	log.Info("stopping: no new connections; waiting for running requests", "grace", shutdownGrace.String())
	// Running backups are aborted cleanly (their unfinished chains are
	// removed); requests already running are let finish.
	srv.CancelOperations()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("requests were still running %s after the stop signal and were cut off", shutdownGrace)
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("closing the databases: %v", err)
	}
	log.Info("stopped")
	return nil
}

// warnUncovered warns when clients that use the listen address would
// refuse the server certificate because it does not name that address.
func warnUncovered(log *slog.Logger, cert tls.Certificate, listen string) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return
	}
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf != nil && leaf.VerifyHostname(host) != nil {
		log.Warn("the server certificate does not name the listen address, so clients connecting to it will refuse the certificate; start with --hostname "+host+" (after removing server.pem and server-key.pem if they exist)", "address", host)
	}
}

// opErr drops the "listen tcp ADDR:" prefix that repeats what we say.
func opErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// publicURL is the URL clients use: a wildcard listen address is shown as
// 127.0.0.1, which the certificate covers.
func publicURL(addr *net.TCPAddr, cfg serveConfig) string {
	scheme := "https"
	if cfg.Unsecured {
		scheme = "http"
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// printConnectHelp says how to connect, then (last, so that a script can
// wait for it) the line "magpie: serving URL (data dir DIR)".
func printConnectHelp(w io.Writer, url, dataDir string, cfg serveConfig, set *certs.Set, certDir string) {
	defer fmt.Fprintf(w, "\nmagpie: serving %s (data dir %s)\n", url, dataDir)
	if cfg.Unsecured {
		fmt.Fprintf(w, `WARNING: --unsecured: plain HTTP and no authentication. Anyone who can reach
%s has full access; encrypted databases are refused.

Connect with the RavenDB Node.js client:
  const store = new DocumentStore(%q, "db");
  store.initialize();

Or with curl:
  curl %s/databases?namesOnly=true
`, url, url, url)
		return
	}
	f := set.Files
	state := "reused"
	if len(set.Created) > 0 {
		state = "created now"
	}
	ca := f.CA
	if cfg.TLSCert != "" {
		ca = "<the CA that issued " + cfg.TLSCert + ">"
	}
	fmt.Fprintf(w, `Certificates in %s (%s):
  ca.pem                      the CA: clients trust the server through it
  admin.pem + admin-key.pem   the admin client certificate (ClusterAdmin), PEM with a PKCS#1 key
  admin.pfx                   the same as PKCS#12, empty password
Keep admin-key.pem and admin.pfx secret: they give full access.
Issue more client certificates with: magpie certs create NAME --clearance ValidUser --db DB:ReadWrite --out DIR

Connect with the RavenDB Node.js client:
  const store = new DocumentStore(%q, "db", {
    certificate: fs.readFileSync(%q, "utf8") + fs.readFileSync(%q, "utf8"),
    type: "pem",
    ca: fs.readFileSync(%q),
  });
  store.initialize();

Or with curl:
  curl --cacert %s --cert %s --key %s %s/databases?namesOnly=true
`, certDir, state, url, f.Admin, f.AdminKey, ca, shellQuote(ca), shellQuote(f.Admin), shellQuote(f.AdminKey), url)
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// serveMetrics are the Prometheus metrics of GET /metrics.
type serveMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newServeMetrics() *serveMetrics {
	m := &serveMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magpie_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "magpie_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	m.reg.MustRegister(m.requests, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument counts requests by the route pattern that served them (never
// the raw path, which holds database names and document ids) and logs
// server faults.
func (m *serveMetrics) instrument(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r)
		code := rec.status
		if code == 0 {
			code = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		if code >= 500 {
			log.Warn("request failed", "route", route, "status", code, "took", time.Since(start).Round(time.Millisecond).String())
		}
	})
}

// serve answers GET /metrics; on a secured server only to a registered
// client certificate.
func (m *serveMetrics) serve(w http.ResponseWriter, r *http.Request, auth *server.CertAuth) {
	if auth != nil {
		if _, err := auth.Authenticate(r); err != nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"Type": "InvalidAuth", "Message": err.Error(), "Error": err.Error()})
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusMethodNotAllowed)
		msg := "/metrics answers GET only."
		json.NewEncoder(w).Encode(map[string]string{"Type": "Raven.Client.Exceptions.BadRequestException", "Message": msg, "Error": msg})
		return
	}
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets streaming handlers that assert http.Flusher keep working.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
