package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	sdk "github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/certs"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

// remoteFlags are --server and the files that authenticate to it. With
// --server set, the commands that work on databases go through that
// server's HTTP API (package client) instead of the local data dir; paths
// in backup and restore are then on the server's machine, and import and
// export stream the file from and to this machine.
type remoteFlags struct {
	server, cert, key, ca string
}

func addRemoteFlags(root *cobra.Command, g *globals) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.remote.server, "server", os.Getenv("MAGPIE_SERVER"), "work through the magpie server at this URL instead of the data dir (env MAGPIE_SERVER)")
	pf.StringVar(&g.remote.cert, "client-cert", os.Getenv("MAGPIE_CLIENT_CERT"), "client certificate (PEM) for --server (env MAGPIE_CLIENT_CERT)")
	pf.StringVar(&g.remote.key, "client-key", os.Getenv("MAGPIE_CLIENT_KEY"), "key of --client-cert (PEM) (env MAGPIE_CLIENT_KEY)")
	pf.StringVar(&g.remote.ca, "ca", os.Getenv("MAGPIE_CA"), "CA certificate (PEM) that signs the server's certificate, for --server (env MAGPIE_CA)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		return checkRemoteSupport(cmd, g)
	}
}

// checkRemoteSupport refuses, as a usage error, a command that cannot go
// through --server.
func checkRemoteSupport(cmd *cobra.Command, g *globals) error {
	if g.remote.server == "" {
		return nil
	}
	path := cmd.CommandPath()
	if path == "magpie serve" {
		return usagef("magpie serve serves the local data dir, and --server (or MAGPIE_SERVER) names a server to talk to. Leave out --server, or unset MAGPIE_SERVER")
	}
	return nil
}

// remote reports whether the commands go through a server.
func (g *globals) isRemote() bool { return g.remote.server != "" }

// client connects to --server. The context ends on SIGINT or SIGTERM, so
// that an interrupted backup or restore is killed on the server too.
func (g *globals) client(cmd *cobra.Command) (*sdk.Client, context.Context, context.CancelFunc, error) {
	r := g.remote
	u, err := url.Parse(r.server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nil, nil, usagef("--server %q is not a server URL. Give it as https://HOST:PORT, as magpie serve printed it", r.server)
	}
	if (r.cert == "") != (r.key == "") {
		return nil, nil, nil, usagef("--client-cert and --client-key go together. Give both (env MAGPIE_CLIENT_CERT and MAGPIE_CLIENT_KEY)")
	}
	if u.Scheme == "https" && r.cert == "" {
		return nil, nil, nil, usagef("no client certificate was given for %s. Give --client-cert FILE --client-key FILE (env MAGPIE_CLIENT_CERT, MAGPIE_CLIENT_KEY); magpie serve wrote an admin one to DATA/certs/admin.pem and admin-key.pem", r.server)
	}
	if u.Scheme == "http" && (r.cert != "" || r.ca != "") {
		return nil, nil, nil, usagef("%s is plain http (a server started with --unsecured), which takes no certificates. Use the https:// URL, or leave out --client-cert, --client-key and --ca", r.server)
	}
	c, err := sdk.New(r.server, sdk.Options{CertFile: r.cert, KeyFile: r.key, CAFile: r.ca})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	return c, ctx, stop, nil
}

// withClient runs fn with a client of --server and rewords its errors for
// the command line.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *sdk.Client) error) error {
	c, ctx, stop, err := g.client(cmd)
	if err != nil {
		return err
	}
	defer stop()
	return g.remoteError(fn(ctx, c))
}

// remoteError says what to do about an error of the server or of the
// connection to it.
func (g *globals) remoteError(err error) error {
	if err == nil {
		return nil
	}
	var ce *sdk.Error
	if errors.As(err, &ce) {
		switch {
		case strings.HasSuffix(ce.Type, "DocumentDoesNotExistException"):
			return fmt.Errorf("%s. Check the ID (IDs are not case-sensitive)", ce.Message)
		case strings.HasSuffix(ce.Type, "DatabaseDoesNotExistException"):
			return fmt.Errorf("%s. List the databases with `magpie db list --server %s`", strings.TrimSuffix(ce.Message, "."), g.remote.server)
		}
		return err
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return fmt.Errorf("the certificate of %s is not signed by a CA this machine trusts. Give the server's CA with --ca FILE (DATA/certs/ca.pem on the server's machine)", g.remote.server)
	}
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("cannot reach the magpie server at %s: %v. Check --server and that magpie serve is running there", g.remote.server, ue.Err)
	}
	return err
}

// servedFile is written in the data dir by magpie serve while it runs, so
// that a command refused by the data dir's lock can say to use --server.
const servedFile = "serving.url"

// servedDataDirError rewords the error of a data dir held by a running
// magpie serve.
func servedDataDirError(dir string, err error) error {
	if !errors.Is(err, store.ErrLocked) {
		return err
	}
	u, rerr := os.ReadFile(filepath.Join(dir, servedFile))
	if rerr != nil {
		return err
	}
	addr := strings.TrimSpace(string(u))
	how := fmt.Sprintf("--server %s --client-cert FILE --client-key FILE", addr)
	// The certificates magpie serve generated, when it did.
	files := certs.Layout(filepath.Join(dir, "certs"))
	if _, err := os.Stat(files.CA); err == nil {
		how = fmt.Sprintf("--server %s --client-cert FILE --client-key FILE --ca %s (the admin certificate is %s, its key %s)", addr, files.CA, files.Admin, files.AdminKey)
	}
	return &servedError{err: err, msg: fmt.Sprintf("the data dir %s is held by a running magpie serve (%s). Run the command through it with %s, or stop the server and try again", dir, addr, how)}
}

type servedError struct {
	err error
	msg string
}

func (e *servedError) Error() string { return e.msg }
func (e *servedError) Unwrap() error { return e.err }
