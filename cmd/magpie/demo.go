package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/dump"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/blake2b"
)

func newDemoCmd() *cobra.Command {
	var dumpFile string
	var docs int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run magpie's backup scenario end to end in a temporary folder",
		Long: `Run the scenario magpie exists for, in a fresh temporary folder: create an
encrypted database, fill it (generated sample data, or --dump FILE), take a
snapshot and an encrypted logical backup, restore both with the key, verify
both, and show that a wrong key is refused and leaves nothing behind. Prints
what it did and measured. Your own data dir is not touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd, dumpFile, docs, keep)
		},
	}
	cmd.Flags().StringVar(&dumpFile, "dump", "", "RavenDB export to load instead of generated data")
	cmd.Flags().IntVar(&docs, "docs", 20000, "number of generated documents")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary folder")
	return cmd
}

type demoStep struct {
	what, result string
	took         time.Duration
}

func runDemo(cmd *cobra.Command, dumpFile string, docs int, keep bool) error {
	tmp, err := os.MkdirTemp("", "magpie-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	var steps []demoStep
	step := func(what string, fn func() (string, error)) error {
		start := time.Now()
		res, err := fn()
		if err != nil {
			return fmt.Errorf("demo step %q failed: %w", what, err)
		}
		steps = append(steps, demoStep{what, res, time.Since(start)})
		return nil
	}

	d, err := store.Open(store.Options{Dir: filepath.Join(tmp, "data"), MasterKeyFile: filepath.Join(tmp, "master.key"), Create: true})
	if err != nil {
		return err
	}
	defer d.Close()
	keyFile := filepath.Join(tmp, "demo.key")
	var key keys.Key
	if err := step("create encrypted database demo", func() (string, error) {
		var err error
		if key, err = d.CreateDatabaseFrom("demo", store.CreateOptions{Encrypted: true}, nil); err != nil {
			return "", err
		}
		return "key fingerprint " + key.Fingerprint() + ", key saved 0600", keys.WriteFile(keyFile, key)
	}); err != nil {
		return err
	}
	db, err := d.OpenDatabase("demo")
	if err != nil {
		return err
	}
	loadWhat := fmt.Sprintf("load %d generated documents", docs)
	if dumpFile != "" {
		loadWhat = "import " + filepath.Base(dumpFile)
	}
	if err := step(loadWhat, func() (string, error) {
		var in io.Reader
		if dumpFile != "" {
			if err := dump.CheckFileName(dumpFile); err != nil {
				return "", err
			}
			f, err := os.Open(dumpFile)
			if err != nil {
				return "", err
			}
			defer f.Close()
			in = f
		} else {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(generateSample(pw, docs)) }()
			in = pr
		}
		res, err := dump.Import(db, in)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d documents, %d attachments", res.Documents, res.Attachments), nil
	}); err != nil {
		db.Close()
		return err
	}
	var sample *store.Document
	_, err = db.Walk(0, store.Walker{Document: func(doc *store.Document) error {
		if sample == nil {
			sample = doc
		}
		return nil
	}})
	if err != nil || sample == nil {
		db.Close()
		return errors.New("the demo database is empty: give a dump with documents")
	}
	stats, _ := db.Stats()
	backups := filepath.Join(tmp, "backups")
	var snap, logical *backup.Result
	for _, b := range []struct {
		typ backup.Type
		out **backup.Result
	}{{backup.Snapshot, &snap}, {backup.Logical, &logical}} {
		if err := step(fmt.Sprintf("%s backup (encryption database)", b.typ), func() (string, error) {
			r, err := backup.Run(db, backup.Options{To: []string{backups}, Type: b.typ, Compression: smuggler.Zstd})
			if err != nil {
				return "", err
			}
			*b.out = r
			return fmt.Sprintf("%s, %s", r.Entry.Name, humanBytes(r.Entry.Size)), nil
		}); err != nil {
			db.Close()
			return err
		}
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := step("logical backup starts with the age header", func() (string, error) {
		head := make([]byte, 22)
		f, err := os.Open(logical.File)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := io.ReadFull(f, head); err != nil || !backup.IsAge(head) {
			return "", errors.New("the encrypted backup does not start with the age header")
		}
		return strings.TrimSpace(string(head)), nil
	}); err != nil {
		return err
	}
	dec := &backup.Decryption{Key: &key}
	ctx := context.Background()
	for _, r := range []struct {
		res  *backup.Result
		name string
	}{{snap, "from_snapshot"}, {logical, "from_logical"}} {
		if err := step("verify "+filepath.Base(r.res.File), func() (string, error) {
			t, err := restore.Locate(ctx, r.res.ChainDir, restore.Until{})
			if err != nil {
				return "", err
			}
			if _, err := restore.Verify(ctx, t, dec, nil); err != nil {
				return "", err
			}
			return "every byte read, decrypted and authenticated", nil
		}); err != nil {
			return err
		}
		if err := step("restore with the key as "+r.name, func() (string, error) {
			t, err := restore.Locate(ctx, r.res.ChainDir, restore.Until{})
			if err != nil {
				return "", err
			}
			res, err := restore.Restore(d, t, restore.Options{As: r.name, Decryption: dec})
			if err != nil {
				return "", err
			}
			rdb, err := d.OpenDatabase(r.name)
			if err != nil {
				return "", err
			}
			defer rdb.Close()
			got, err := rdb.Get(sample.ID)
			if err != nil {
				return "", err
			}
			if !bytes.Equal(got.Body, sample.Body) || res.Stats.CountOfDocuments != stats.CountOfDocuments {
				return "", fmt.Errorf("the restored database differs: %d documents, want %d", res.Stats.CountOfDocuments, stats.CountOfDocuments)
			}
			return fmt.Sprintf("%d documents, %s identical, encrypted", res.Stats.CountOfDocuments, sample.ID), nil
		}); err != nil {
			return err
		}
	}
	if err := step("restore with a wrong key", func() (string, error) {
		wrong, err := keys.Generate()
		if err != nil {
			return "", err
		}
		t, err := restore.Locate(ctx, logical.ChainDir, restore.Until{})
		if err != nil {
			return "", err
		}
		_, rerr := restore.Restore(d, t, restore.Options{As: "wrong_key", Decryption: &backup.Decryption{Key: &wrong}})
		if rerr == nil {
			return "", errors.New("a wrong key was accepted")
		}
		if _, err := d.OpenDatabase("wrong_key"); !errors.Is(err, store.ErrNotFound) {
			return "", errors.New("a failed restore left a database behind")
		}
		return "refused, no database created", nil
	}); err != nil {
		return err
	}

	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "magpie demo in %s\n\n", tmp)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tRESULT\tTIME")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.what, s.result, s.took.Round(time.Millisecond))
	}
	tw.Flush()
	if keep {
		fmt.Fprintf(w, "\nKept %s. Try:\n  magpie --data %s --master-key %s db list\n", tmp, filepath.Join(tmp, "data"), filepath.Join(tmp, "master.key"))
	}
	return nil
}

// generateSample writes a RavenDB export of n generated documents, one in
// a hundred with a small attachment.
func generateSample(w io.Writer, n int) error {
	sw := smuggler.NewWriter(w, dump.BuildVersion)
	artists := []string{"Muse", "Mastodon", "Portishead", "Björk", "Nina Simone", "Radiohead", "Khruangbin", "Sigur Rós"}
	words := []string{"slow", "turning", "river", "night", "glass", "echo", "winter", "signal", "paper", "storm", "gold", "silence"}
	pick := func(list []string) string {
		i, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		return list[i.Int64()]
	}
	for i := 1; i <= n; i++ {
		title := pick(words) + " " + pick(words)
		meta := fmt.Sprintf(`"@collection":"Tracks","@id":"tracks/%d","@change-vector":"A:%d-demo","@last-modified":"2026-01-01T00:00:00.0000000Z"`, i, i)
		if i%100 == 0 {
			content := make([]byte, 4096)
			rand.Read(content)
			ref, err := sampleAttachment(sw, content)
			if err != nil {
				return err
			}
			meta += fmt.Sprintf(`,"@flags":"HasAttachments","@attachments":[{"Name":"cover.bin","Hash":%q,"ContentType":"application/octet-stream","Size":%d}]`, ref, len(content))
		}
		body := fmt.Sprintf(`{"Artist":%q,"Title":%q,"Plays":%d,"Rating":%d.5,"Tags":[%q,%q],"@metadata":{%s}}`, pick(artists), title, i*7, i%5, pick(words), pick(words), meta)
		if err := sw.Document([]byte(body)); err != nil {
			return err
		}
	}
	return sw.Close()
}

// sampleAttachment writes content as an attachment stream and returns its
// hash (base64 BLAKE2b-256, as RavenDB names attachment content).
func sampleAttachment(sw *smuggler.Writer, content []byte) (string, error) {
	sum := blake2b.Sum256(content)
	hash := base64.StdEncoding.EncodeToString(sum[:])
	return hash, sw.Attachment(hash, int64(len(content)), "Attachment", bytes.NewReader(content))
}
