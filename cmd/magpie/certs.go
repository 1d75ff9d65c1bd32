package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	sdk "github.com/magpiedb/magpie/client"
	"github.com/magpiedb/magpie/internal/certs"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newCertsCmd(g *globals) *cobra.Command {
	return groupCmd("certs", "Issue client certificates for magpie serve", newCertsCreateCmd(g))
}

func newCertsCreateCmd(g *globals) *cobra.Command {
	var clearance, out string
	var dbs []string
	var days int
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Issue a client certificate signed by the server's CA and register it",
		Long: `Issue a client certificate signed by the CA in DATA/certs (made by the first
` + "`magpie serve`" + `) and register it with its clearance:

  ClusterAdmin  everything, certificates included
  Operator      everything but certificates
  ValidUser     only the databases given with --db NAME:PERM, where PERM is
                Admin, ReadWrite or Read (repeatable)

Writes OUT/NAME.pem (certificate), OUT/NAME-key.pem (PKCS#1 RSA key, mode
0600) and OUT/NAME.pfx (PKCS#12, empty password, mode 0600); existing files
are never overwritten.

Without --server this works on the data dir directly, so the server must
be stopped; it sees the new certificate when it starts. With --server (a
ClusterAdmin certificate), the running server issues and registers it
(RavenDB's POST /admin/certificates) and it works at once; its key is made
by the server and sent back over TLS.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCertsCreate(cmd, g, args[0], clearance, dbs, out, days)
		},
	}
	cmd.Flags().StringVar(&clearance, "clearance", "", "ClusterAdmin, Operator or ValidUser (required)")
	cmd.Flags().StringArrayVar(&dbs, "db", nil, "database access for a ValidUser, as NAME:Admin|ReadWrite|Read (repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "folder for the certificate files (required; created when missing)")
	cmd.Flags().IntVar(&days, "days", int(certs.ClientValidity/(24*time.Hour)), "days the certificate is valid")
	return cmd
}

func runCertsCreate(cmd *cobra.Command, g *globals, name, clearance string, dbs []string, out string, days int) error {
	if !certs.ValidName(name) {
		return usagef("certificate name %q is not valid: use up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	if clearance == "" {
		return usagef("--clearance is required. Give ClusterAdmin, Operator or ValidUser")
	}
	cl := certs.NormalizeClearance(clearance)
	if cl == "" {
		return usagef("--clearance %q is not a clearance. Give ClusterAdmin, Operator or ValidUser", clearance)
	}
	perms := map[string]string{}
	for _, d := range dbs {
		i := strings.LastIndex(d, ":")
		if i <= 0 {
			return usagef("--db %q is not NAME:PERM. Write it as orders:ReadWrite", d)
		}
		db, p := d[:i], certs.NormalizePermission(d[i+1:])
		if p == "" {
			return usagef("--db %q: %q is not a permission. Use Admin, ReadWrite or Read", d, d[i+1:])
		}
		for have := range perms {
			if strings.EqualFold(have, db) {
				return usagef("--db names database %s twice. Give each database once", db)
			}
		}
		perms[db] = p
	}
	if len(perms) > 0 && cl != certs.ValidUser {
		return usagef("--db grants access to single databases, and a %s certificate already reaches every database. Drop --db, or use --clearance ValidUser", cl)
	}
	if out == "" {
		return usagef("--out is required. Give the folder to write %s.pem, %s-key.pem and %s.pfx to", name, name, name)
	}
	if days <= 0 {
		return usagef("--days must be at least 1")
	}

	certPath := filepath.Join(out, name+".pem")
	keyPath := filepath.Join(out, name+"-key.pem")
	pfxPath := filepath.Join(out, name+".pfx")
	for _, p := range []string{certPath, keyPath, pfxPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists; magpie never overwrites a certificate or key. Move it away or choose another --out or NAME", p)
		}
	}

	if g.isRemote() {
		// The server registers the certificate as it issues it, and its
		// key exists only in the answer: --out must take the files
		// before anything is asked.
		if err := checkWritable(out); err != nil {
			return err
		}
		return g.withClient(cmd, func(ctx context.Context, c *sdk.Client) error {
			issued, err := c.CreateCertificate(ctx, sdk.CertificateRequest{Name: name, Clearance: cl, Permissions: perms, NotAfter: time.Now().Add(time.Duration(days) * 24 * time.Hour)})
			if err != nil {
				return err
			}
			cert, err := certs.ParseCertPEM(issued.CertPEM)
			if err == nil {
				err = writeCertFiles(out, keyPath, certPath, pfxPath, issued.KeyPEM, issued.CertPEM, issued.PFX)
			} else {
				err = fmt.Errorf("the certificate the server issued cannot be read: %v", err)
			}
			if err != nil {
				// A registered certificate whose key is lost is of no
				// use to anyone: take it back.
				if cert != nil {
					if derr := c.DeleteCertificate(ctx, certs.Thumbprint(cert)); derr != nil {
						return fmt.Errorf("%w; the server registered the certificate %s and it could not be deleted (%v): delete it with DELETE /admin/certificates?thumbprint=%s", err, name, derr, certs.Thumbprint(cert))
					}
				}
				return err
			}
			printIssued(cmd, name, cl, perms, cert, certPath, keyPath, pfxPath)
			fmt.Fprintf(cmd.OutOrStdout(), "Registered with %s: it works at once.\n", c.URL())
			return nil
		})
	}

	data, err := g.openDataDir(false)
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("the data dir %s is held by a running magpie serve (or another magpie command). Issue the certificate through the server: add --server URL --client-cert F --client-key F with a ClusterAdmin certificate (or stop the server and try again)", g.dataDir)
	case errors.Is(err, store.ErrNoDataDir):
		return fmt.Errorf("there is no magpie data dir at %s. Run magpie serve once: it creates the data dir and the CA that signs client certificates", g.dataDir)
	case err != nil:
		return err
	}
	defer data.Close()

	files := certs.Layout(filepath.Join(data.Path(), "certs"))
	if _, err := os.Stat(files.CAKey); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("there is no certificate authority in %s yet. Run magpie serve once: it creates the CA that signs client certificates", files.Dir)
	}
	ca, err := certs.LoadPair(files.CA, files.CAKey)
	if err != nil {
		return err
	}
	reg, err := certs.OpenRegistry(files.RegistryFile)
	if err != nil {
		return err
	}
	pair, err := certs.Issue(ca, name, time.Duration(days)*24*time.Hour)
	if err != nil {
		return err
	}
	pfx, err := certs.PFX(pair, ca.Cert, "")
	if err != nil {
		return err
	}
	if err := writeCertFiles(out, keyPath, certPath, pfxPath, pair.KeyPEM(), pair.CertPEM(), pfx); err != nil {
		return err
	}
	if err := reg.Put(certs.EntryFor(pair.Cert, name, cl, perms)); err != nil {
		for _, p := range []string{keyPath, certPath, pfxPath} {
			os.Remove(p)
		}
		return err
	}
	printIssued(cmd, name, cl, perms, pair.Cert, certPath, keyPath, pfxPath)
	fmt.Fprintf(cmd.OutOrStdout(), "Registered in %s; magpie serve accepts it from its next start. Clients trust the server with %s.\n", files.RegistryFile, files.CA)
	return nil
}

// checkWritable creates folder out when missing and checks that files can
// be created in it.
func checkWritable(out string) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("cannot create --out folder %s: %v. Give a folder you can write to", out, err)
	}
	f, err := os.CreateTemp(out, ".magpie-write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write to --out folder %s: %v. Give a folder you can write to", out, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeCertFiles writes a certificate's files, new ones only; on an error
// none of them is left.
func writeCertFiles(out, keyPath, certPath, pfxPath string, key, cert, pfx []byte) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("cannot create --out folder %s: %v", out, err)
	}
	var written []string
	for _, f := range []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{keyPath, key, 0o600},
		{certPath, cert, 0o644},
		{pfxPath, pfx, 0o600},
	} {
		if err := certs.WriteNew(f.path, f.data, f.mode); err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			return err
		}
		written = append(written, f.path)
	}
	return nil
}

func printIssued(cmd *cobra.Command, name, cl string, perms map[string]string, cert *x509.Certificate, certPath, keyPath, pfxPath string) {
	w := cmd.OutOrStdout()
	access := cl
	if len(perms) > 0 {
		var names []string
		for db := range perms {
			names = append(names, db)
		}
		sort.Strings(names)
		var parts []string
		for _, db := range names {
			parts = append(parts, db+": "+perms[db])
		}
		access += "; " + strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "Issued client certificate %s (%s), valid until %s.\n", name, access, cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(w, "  thumbprint   %s\n", certs.Thumbprint(cert))
	fmt.Fprintf(w, "  certificate  %s\n", certPath)
	fmt.Fprintf(w, "  key          %s (PKCS#1 PEM, mode 0600: keep it secret)\n", keyPath)
	fmt.Fprintf(w, "  PFX          %s (PKCS#12, empty password, mode 0600)\n", pfxPath)
}
