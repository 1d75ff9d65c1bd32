package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/magpiedb/magpie/internal/certs"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
)

func newCertsCmd(g *globals) *cobra.Command {
	return groupCmd("certs", "Issue client certificates for magpie serve", newCertsCreateCmd(g))
}

// certName is what a certificate name may be: it names files too.
var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

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
are never overwritten. This works on the data dir directly, so the server
must be stopped; it sees the new certificate when it starts.`,
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
	if !certName.MatchString(name) {
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

	data, err := g.openDataDir(false)
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("the data dir %s is held by a running magpie serve (or another magpie command). Stop the server and try again (issuing through a running server with --server is coming)", g.dataDir)
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
	pfx, err := certs.PFX(pair, ca.Cert)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("cannot create --out folder %s: %v", out, err)
	}
	var written []string
	undo := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	for _, f := range []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{keyPath, pair.KeyPEM(), 0o600},
		{certPath, pair.CertPEM(), 0o644},
		{pfxPath, pfx, 0o600},
	} {
		if err := certs.WriteNew(f.path, f.data, f.mode); err != nil {
			undo()
			return err
		}
		written = append(written, f.path)
	}
	if err := reg.Put(certs.EntryFor(pair.Cert, name, cl, perms)); err != nil {
		undo()
		return err
	}

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
	fmt.Fprintf(w, "Issued client certificate %s (%s), valid until %s.\n", name, access, pair.Cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(w, "  thumbprint   %s\n", certs.Thumbprint(pair.Cert))
	fmt.Fprintf(w, "  certificate  %s\n", certPath)
	fmt.Fprintf(w, "  key          %s (PKCS#1 PEM, mode 0600: keep it secret)\n", keyPath)
	fmt.Fprintf(w, "  PFX          %s (PKCS#12, empty password, mode 0600)\n", pfxPath)
	fmt.Fprintf(w, "Registered in %s; magpie serve accepts it from its next start. Clients trust the server with %s.\n", files.RegistryFile, files.CA)
	return nil
}
