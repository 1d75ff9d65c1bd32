package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/store"
)

// Every bad input of the store requirement: bad keys and key files, a wrong
// or missing master key, bad import files, bad document IDs and bodies, and
// creating or deleting the wrong database. Each case checks the exit code,
// the exact message, that nothing else was printed, that no key material
// leaked, and that nothing was created or lost.

// wantOnly is wantError plus: nothing on stdout (no half-done output, no
// key printed before the failure) and nothing on stderr but the message
// (and, for a usage error, the pointer to --help).
func wantOnly(t *testing.T, r result, code int, msg string, secrets ...keys.Key) {
	t.Helper()
	wantError(t, r, code, msg, secrets...)
	if r.stdout != "" {
		t.Errorf("stdout should be empty, got %q", r.stdout)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	switch {
	case code == exitUsage && len(lines) == 2 && strings.HasPrefix(lines[1], "Run `magpie ") && strings.HasSuffix(lines[1], " --help` for usage."):
	case code != exitUsage && len(lines) == 1:
	default:
		t.Errorf("stderr should hold only the error message, got %q", r.stderr)
	}
}

// noText fails if any of the texts appears in the output.
func noText(t *testing.T, r result, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if s != "" && strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output contains %q", s)
		}
	}
}

func writeMode(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // the umask may have cleared bits
		t.Fatal(err)
	}
}

func mustNotExist(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s %s exists after a refused command (err %v)", what, path, err)
	}
}

// dbNames lists the databases through the CLI.
func dbNames(t *testing.T, e *env) []string {
	t.Helper()
	var infos []store.Info
	if err := json.Unmarshal([]byte(e.ok("db", "list", "--json")), &infos); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names
}

func masterKey(t *testing.T, e *env) keys.Key {
	t.Helper()
	k, err := keys.ReadFile(e.master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func b64(n int, seed byte) string { return base64.StdEncoding.EncodeToString(randomBytes(n, seed)) }

const keyHint = "a magpie key is the base64 text of 32 random bytes (make one with `magpie secrets generate`)."

// TestBadKeyFile: `db create --encrypted --key-file F` (and --master-key F)
// with every kind of bad key file is refused, and a refused create leaves
// nothing: no data dir, no master key, no database.
func TestBadKeyFile(t *testing.T) {
	key16, key33 := b64(16, 1), b64(33, 2)
	good, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		content string
		mode    fs.FileMode // 0: no file at all; ModeDir: a folder
		want    func(p string) string
		leaked  []string
	}{
		{"not base64", "not base64!!", 0o600, func(p string) string {
			return "key file " + p + ": the key is not valid base64: " + keyHint
		}, nil},
		{"16 bytes", key16 + "\n", 0o600, func(p string) string {
			return "key file " + p + ": the key decodes to 16 bytes, not 32: " + keyHint
		}, []string{key16}},
		{"33 bytes", key33 + "\n", 0o600, func(p string) string {
			return "key file " + p + ": the key decodes to 33 bytes, not 32: " + keyHint
		}, []string{key33}},
		{"empty", "", 0o600, func(p string) string {
			return "key file " + p + ": the key is empty: " + keyHint
		}, nil},
		{"mode 0644", good.Base64() + "\n", 0o644, func(p string) string {
			return "key file " + p + " is readable by other users (mode 0644): run `chmod 600 " + p + "` and try again."
		}, nil},
		{"mode 0640", good.Base64() + "\n", 0o640, func(p string) string {
			return "key file " + p + " is readable by other users (mode 0640): run `chmod 600 " + p + "` and try again."
		}, nil},
		{"missing", "", 0, func(p string) string {
			return "key file " + p + " does not exist: check the path, or create a key with `magpie secrets generate > " + p + " && chmod 600 " + p + "`."
		}, nil},
		{"folder", "", fs.ModeDir, func(p string) string {
			return "key file " + p + " is not a regular file: give the path of the file that holds the key."
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			p := filepath.Join(e.dir, "bad.key")
			switch c.mode {
			case 0:
			case fs.ModeDir:
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
			default:
				writeMode(t, p, []byte(c.content), c.mode)
			}

			// As a database key, in a data dir that does not exist yet:
			// refused, and neither the data dir nor the master key appears.
			r := e.run("db", "create", "x", "--encrypted", "--key-file", p)
			wantOnly(t, r, exitFailure, c.want(p), good)
			noText(t, r, c.leaked...)
			mustNotExist(t, e.data, "data dir")
			mustNotExist(t, e.master, "master key")

			// As the master key of a new data dir: refused the same way,
			// with nothing created. (A missing master key file is not bad
			// input there: initialising a data dir creates it. For an
			// existing data dir, see TestBadMasterKey.)
			asMaster := c.mode != 0
			if asMaster {
				fresh := *e
				fresh.data = filepath.Join(e.dir, "data2")
				fresh.master = p
				r = fresh.run("db", "create", "y")
				wantOnly(t, r, exitFailure, "master key: "+c.want(p), good)
				noText(t, r, c.leaked...)
				mustNotExist(t, fresh.data, "data dir")
			}

			// In an existing data dir: refused, no database x.
			e.ok("db", "create", "other")
			mk := masterKey(t, e)
			before := e.ok("db", "list", "--json")
			r = e.run("db", "create", "x", "--encrypted", "--key-file", p)
			wantOnly(t, r, exitFailure, c.want(p), good, mk)
			noText(t, r, c.leaked...)
			if after := e.ok("db", "list", "--json"); after != before {
				t.Errorf("db list changed after a refused create:\n%s\nwas\n%s", after, before)
			}
			if names := dbNames(t, e); len(names) != 1 || names[0] != "other" {
				t.Errorf("databases %v, want [other]", names)
			}

			if !asMaster {
				return
			}
			// As the master key of the existing data dir: refused, and
			// the data dir still opens with its real master key.
			wrong := *e
			wrong.master = p
			r = wrong.run("db", "list")
			wantOnly(t, r, exitFailure, "master key: "+c.want(p), good, mk)
			noText(t, r, c.leaked...)
			if names := dbNames(t, e); len(names) != 1 || names[0] != "other" {
				t.Errorf("databases %v, want [other]", names)
			}
		})
	}

	// A key file is checked before the encryption flag would make it
	// meaningless: --key-file without --encrypted is a usage error.
	t.Run("key file without --encrypted", func(t *testing.T) {
		e := newEnv(t)
		p, k := e.keyFile("db.key")
		r := e.run("db", "create", "x", "--key-file", p)
		wantOnly(t, r, exitUsage, "--key-file was given but the database is not encrypted. Add --encrypted, or leave out --key-file.", k)
		mustNotExist(t, e.data, "data dir")
		mustNotExist(t, e.master, "master key")
	})
}

// TestBadMasterKey: a data dir opened with another valid master key, or
// with a master key file that does not exist, is refused by every command;
// nothing is created at the missing path and nothing in the data dir is
// lost.
func TestBadMasterKey(t *testing.T) {
	e := newEnv(t)
	dbKeyPath, dbKey := e.keyFile("db.key")
	e.ok("db", "create", "x", "--encrypted", "--key-file", dbKeyPath)
	docPath := filepath.Join(e.dir, "doc.json")
	writeMode(t, docPath, []byte(`{"Name":"kept"}`), 0o600)
	e.ok("docs", "put", "x", "users/1", docPath)
	masterA := masterKey(t, e)
	docBefore := e.ok("docs", "get", "x", "users/1")
	statsBefore := e.ok("stats", "x", "--json")
	listBefore := e.ok("db", "list", "--json")

	bPath, masterB := e.keyFile("other-master.key")
	bBytes, err := os.ReadFile(bPath)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(e.dir, "missing-master.key")
	dump := filepath.Join(e.dir, "empty.ravendbdump")
	writeMode(t, dump, []byte(`{"Docs":[]}`), 0o600)

	commands := [][]string{
		{"stats", "x"},
		{"stats", "x", "--json"},
		{"docs", "get", "x", "users/1"},
		{"docs", "put", "x", "users/2", docPath},
		{"docs", "delete", "x", "users/1"},
		{"db", "list"},
		{"db", "create", "y"},
		{"db", "create", "z", "--encrypted"},
		{"db", "delete", "x"},
		{"import", "x", dump},
		{"export", "x", filepath.Join(e.dir, "out.ravendbdump")},
	}
	secrets := []keys.Key{masterA, masterB, dbKey}
	for _, args := range commands {
		t.Run("wrong/"+strings.Join(args[:2], " "), func(t *testing.T) {
			w := *e
			w.t = t
			w.master = bPath
			r := w.run(args...)
			wantOnly(t, r, exitFailure, fmt.Sprintf("the master key in %s (fingerprint %s) is not the one data dir %s was initialised with (fingerprint %s). Pass the master key it was created with using --master-key or MAGPIE_MASTER_KEY_FILE.",
				bPath, masterB.Fingerprint(), e.data, masterA.Fingerprint()), secrets...)
		})
		t.Run("missing/"+strings.Join(args[:2], " "), func(t *testing.T) {
			m := *e
			m.t = t
			m.master = missing
			r := m.run(args...)
			wantOnly(t, r, exitFailure, fmt.Sprintf("the master key file %s does not exist, but data dir %s was initialised with master key %s. Pass the master key it was created with using --master-key or MAGPIE_MASTER_KEY_FILE; magpie never creates a new master key for an existing data dir.",
				missing, e.data, masterA.Fingerprint()), secrets...)
			mustNotExist(t, missing, "master key file")
		})
	}

	// Nothing changed: same databases, same stats, same document; the
	// wrong key file untouched; no export written.
	if got := e.ok("db", "list", "--json"); got != listBefore {
		t.Errorf("db list changed:\n%s\nwas\n%s", got, listBefore)
	}
	if got := e.ok("stats", "x", "--json"); got != statsBefore {
		t.Errorf("stats changed:\n%s\nwas\n%s", got, statsBefore)
	}
	if got := e.ok("docs", "get", "x", "users/1"); got != docBefore {
		t.Errorf("document changed: %s, was %s", got, docBefore)
	}
	if got, _ := os.ReadFile(bPath); !bytes.Equal(got, bBytes) {
		t.Error("the wrong master key file was modified")
	}
	mustNotExist(t, filepath.Join(e.dir, "out.ravendbdump"), "export")
	mustNotExist(t, filepath.Join(e.dir, "out.ravendbdump.in-progress"), "partial export")
	if k := masterKey(t, e); k.Base64() != masterA.Base64() {
		t.Error("the master key file changed")
	}
}

// brokenDumps builds, from the real dump, a gzip file cut in half and two
// valid gzip streams whose JSON is good for the first 5000 documents and
// then broken: cut in the middle of document 5001, or with a syntax error
// there followed by the rest of the dump.
type brokenDumps struct {
	truncGzip, cut, garbage []byte
	truncAt, truncItem      int // where the reader sees the end of the half gzip
	cutAt, garbageAt        int
}

func makeBrokenDumps(t *testing.T, sample string) brokenDumps {
	t.Helper()
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var b brokenDumps
	b.truncGzip = raw[:len(raw)/2]

	// What a gzip reader yields from the half file before failing: the
	// import reports the end there, in the item being read.
	zr, err = gzip.NewReader(bytes.NewReader(b.truncGzip))
	if err != nil {
		t.Fatal(err)
	}
	part, err := io.ReadAll(zr)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading the half gzip: %v", err)
	}
	b.truncAt = len(part)
	b.truncItem = bytes.Count(part, []byte(`"@last-modified"`)) // complete documents = index of the cut one

	i := bytes.Index(plain, []byte(`"@id":"lastfm/5001"`))
	if i < 0 {
		t.Fatal("lastfm/5001 not in the dump")
	}
	b.cut = gzipBytes(t, plain[:i])
	b.cutAt = i
	j := bytes.LastIndex(plain[:i], []byte(`},{`)) + 2 // start of document 5001
	bad := []byte(`{"Artist":tru`)
	var g []byte
	g = append(g, plain[:j]...)
	g = append(g, bad...)
	g = append(g, ',')
	g = append(g, plain[j:]...)
	b.garbage = gzipBytes(t, g)
	b.garbageAt = j + len(bad)
	return b
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBadImport: files that are not a good RavenDB export are refused with
// a clear message and leave the database exactly as it was (import is
// all-or-nothing), both for a database that already holds the real dump
// and for an empty encrypted one.
func TestBadImport(t *testing.T) {
	sample := sharedData(t, "media_subset.ravendbdump")
	e := newEnv(t)
	dbKeyPath, dbKey := e.keyFile("db.key")
	e.ok("db", "create", "full")
	e.ok("import", "full", sample)
	e.ok("db", "create", "empty", "--encrypted", "--key-file", dbKeyPath)
	mk := masterKey(t, e)
	secrets := []keys.Key{mk, dbKey}

	broken := makeBrokenDumps(t, sample)
	random := randomBytes(4096, 7)
	if strings.ContainsRune(" \t\r\n{[\x1f\x28", rune(random[0])) {
		t.Fatalf("the random file starts with %#x, which a reader may take for a format: pick another seed", random[0])
	}
	realDump, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(e.dir, "a-folder.ravendbdump")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}

	const notExport = ". Check that the file is a .ravendbdump or a magpie/RavenDB backup."
	const damaged = ". The export is damaged; check that the file is complete and unmodified."
	const truncated = ": the export is truncated. Check that the file was copied or downloaded completely."
	cases := []struct {
		name  string
		file  string // "-" reads stdin
		data  []byte // written to file, or given on stdin; nil: no file
		inner string // the reason after "import of F into DB failed, and the database is unchanged: "
		whole string // the whole message, when not an import failure
	}{
		{name: "random bytes", file: "random.bin", data: random,
			inner: fmt.Sprintf("the input is not a RavenDB export: it starts with byte %#02x at byte 0 where a JSON object was expected"+notExport+" RavenDB encrypted exports (.ravendb-encrypted-*) are not supported yet.", random[0])},
		{name: "empty file", file: "empty.ravendbdump", data: []byte{},
			inner: "the input is empty: a RavenDB export is a JSON object (possibly gzip- or zstd-compressed). Check the file."},
		{name: "truncated gzip", file: "half.ravendbdump", data: broken.truncGzip,
			inner: fmt.Sprintf(`the input ends early at byte %d in item %d of "Docs"`+truncated, broken.truncAt, broken.truncItem)},
		{name: "JSON array", file: "array.json", data: []byte(`[1,2,3]`),
			inner: "the input is not a RavenDB export: it is a JSON array at byte 0, not a JSON object" + notExport},
		{name: "JSON object of the wrong shape", file: "foo.json", data: []byte(`{"foo":1}`),
			inner: `the input is not a RavenDB export: unexpected top-level property "foo" at byte 2` + notExport},
		{name: "cut after 5000 documents", file: "cut.ravendbdump", data: broken.cut,
			inner: fmt.Sprintf(`the input ends early at byte %d in item 5000 of "Docs"`+truncated, broken.cutAt)},
		{name: "syntax error after 5000 documents", file: "garbage.ravendbdump", data: broken.garbage,
			inner: fmt.Sprintf(`invalid JSON at byte %d in item 5000 of "Docs": found ',' in what should be the literal true`+damaged, broken.garbageAt)},
		{name: "stdin empty", file: "-", data: []byte{},
			inner: "the input is empty: a RavenDB export is a JSON object (possibly gzip- or zstd-compressed). Check the file."},
		{name: "stdin JSON array", file: "-", data: []byte(`[1,2,3]`),
			inner: "the input is not a RavenDB export: it is a JSON array at byte 0, not a JSON object" + notExport},
		// Refused by name, before a byte is read (the content here is the
		// real, valid dump).
		{name: "RavenDB encrypted backup", file: "media.ravendb-encrypted-backup", data: realDump,
			whole: "%s is a RavenDB encrypted export, which magpie does not support yet. Export the database from RavenDB without encryption and import that file."},
		{name: "RavenDB encrypted full backup", file: "2024-01-01.Media.RAVENDB-ENCRYPTED-FULL-BACKUP", data: realDump,
			whole: "%s is a RavenDB encrypted export, which magpie does not support yet. Export the database from RavenDB without encryption and import that file."},
		{name: "missing file", file: "missing.ravendbdump",
			whole: "the file %s does not exist. Check the path."},
		{name: "folder", file: folder,
			whole: "%s is a folder, not an export file. Give the path of a .ravendbdump file."},
	}
	for _, db := range []string{"full", "empty"} {
		for _, c := range cases {
			t.Run(db+"/"+c.name, func(t *testing.T) {
				ee := *e
				ee.t = t
				path := c.file
				if path != "-" && !filepath.IsAbs(path) {
					path = filepath.Join(e.dir, c.file)
					if c.data != nil {
						writeMode(t, path, c.data, 0o600)
						defer os.Remove(path)
					}
				}
				statsBefore := ee.ok("stats", db, "--json")
				doc1 := ee.run("docs", "get", db, "lastfm/1")
				doc5000 := ee.run("docs", "get", db, "lastfm/5000")

				var r result
				if c.file == "-" {
					r = ee.runStdin(c.data, "import", db, "-")
				} else {
					r = ee.run("import", db, path)
				}
				source := path
				if path == "-" {
					source = "standard input"
				}
				want := fmt.Sprintf("import of %s into %s failed, and the database is unchanged: %s", source, db, c.inner)
				if c.whole != "" {
					want = fmt.Sprintf(c.whole, path)
				}
				wantOnly(t, r, exitFailure, want, secrets...)

				if got := ee.ok("stats", db, "--json"); got != statsBefore {
					t.Errorf("stats changed by a failed import:\n%s\nwas\n%s", got, statsBefore)
				}
				// Nothing half-imported: documents of the dump's first part
				// are exactly as before (absent from the empty database).
				for id, before := range map[string]result{"lastfm/1": doc1, "lastfm/5000": doc5000} {
					if got := ee.run("docs", "get", db, id); got != before {
						t.Errorf("docs get %s changed: %+v, was %+v", id, got, before)
					}
					if db == "empty" {
						wantOnly(t, before, exitFailure, fmt.Sprintf(`document ID not found: %q is not in database "empty". Check the ID (IDs are not case-sensitive).`, id))
					}
				}
			})
		}
	}

	t.Run("missing database", func(t *testing.T) {
		ee := *e
		ee.t = t
		r := ee.run("import", "nope", sample)
		wantOnly(t, r, exitFailure, `database "nope" does not exist. List the databases with `+"`magpie db list`.", secrets...)
		if names := dbNames(t, &ee); strings.Join(names, ",") != "empty,full" {
			t.Errorf("databases %v, want [empty full]", names)
		}
	})
	t.Run("missing argument", func(t *testing.T) {
		ee := *e
		ee.t = t
		wantOnly(t, ee.run("import", "full"), exitUsage, "accepts 2 arg(s), received 1.", secrets...)
	})
}

// TestBadDocumentID: an empty ID and an ID over 2 KiB are refused by put,
// get and delete; an ID of exactly 2048 bytes is accepted; a missing ID is
// "document ID not found".
func TestBadDocumentID(t *testing.T) {
	e := newEnv(t)
	dbKeyPath, dbKey := e.keyFile("db.key")
	e.ok("db", "create", "d", "--encrypted", "--key-file", dbKeyPath)
	secrets := []keys.Key{masterKey(t, e), dbKey}
	body := filepath.Join(e.dir, "doc.json")
	writeMode(t, body, []byte(`{"Name":"x"}`), 0o600)

	id2048 := strings.Repeat("a", 2048)
	id2049 := id2048 + "b"
	wide := strings.Repeat("é", 1025) // 1025 characters, 2050 bytes
	bad := []struct {
		name, id, msg string
	}{
		{"empty", "", "the document ID is empty. Give a non-empty ID such as users/1."},
		{"2049 bytes", id2049, "the document ID is 2049 bytes long. Use an ID of at most 2048 bytes."},
		{"2050 bytes in 1025 characters", wide, "the document ID is 2050 bytes long. Use an ID of at most 2048 bytes."},
	}
	for _, c := range bad {
		for verb, args := range map[string][]string{
			"put file":  {"docs", "put", "d", c.id, body},
			"put stdin": {"docs", "put", "d", c.id, "-"},
			"get":       {"docs", "get", "d", c.id},
			"delete":    {"docs", "delete", "d", c.id},
		} {
			t.Run(c.name+"/"+verb, func(t *testing.T) {
				ee := *e
				ee.t = t
				r := ee.runStdin([]byte(`{"Name":"x"}`), args...)
				wantOnly(t, r, exitFailure, c.msg, secrets...)
			})
		}
	}
	var stats store.Stats
	if err := json.Unmarshal([]byte(e.ok("stats", "d", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.CountOfDocuments != 0 || stats.CountOfTombstones != 0 || stats.LastDocEtag != 0 {
		t.Errorf("refused IDs changed the database: %+v", stats)
	}

	t.Run("2048 bytes accepted", func(t *testing.T) {
		ee := *e
		ee.t = t
		ee.ok("docs", "put", "d", id2048, body)
		var doc struct {
			Name     string
			Metadata map[string]any `json:"@metadata"`
		}
		if err := json.Unmarshal([]byte(ee.ok("docs", "get", "d", id2048)), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Name != "x" || doc.Metadata["@id"] != id2048 {
			t.Errorf("got %+v", doc)
		}
		ee.ok("docs", "delete", "d", id2048)
		wantOnly(t, ee.run("docs", "get", "d", id2048), exitFailure,
			fmt.Sprintf(`document ID not found: %q is not in database "d". Check the ID (IDs are not case-sensitive).`, id2048), secrets...)
	})

	t.Run("missing ID", func(t *testing.T) {
		ee := *e
		ee.t = t
		for _, verb := range []string{"get", "delete"} {
			r := ee.run("docs", verb, "d", "users/404")
			wantOnly(t, r, exitFailure, `document ID not found: "users/404" is not in database "d". Check the ID (IDs are not case-sensitive).`, secrets...)
		}
	})

	t.Run("missing argument", func(t *testing.T) {
		ee := *e
		ee.t = t
		wantOnly(t, ee.run("docs", "get", "d"), exitUsage, "accepts 2 arg(s), received 1.", secrets...)
		wantOnly(t, ee.run("docs", "delete", "d"), exitUsage, "accepts 2 arg(s), received 1.", secrets...)
		wantOnly(t, ee.run("docs", "put", "d", "users/1"), exitUsage, "accepts 3 arg(s), received 2.", secrets...)
	})
}

// TestBadDocumentBody: bodies that are not a JSON object with valid
// metadata are refused, from a file or stdin, and neither create the
// document nor touch an existing one with the same ID.
func TestBadDocumentBody(t *testing.T) {
	e := newEnv(t)
	dbKeyPath, dbKey := e.keyFile("db.key")
	e.ok("db", "create", "d", "--encrypted", "--key-file", dbKeyPath)
	secrets := []keys.Key{masterKey(t, e), dbKey}
	good := filepath.Join(e.dir, "good.json")
	writeMode(t, good, []byte(`{"Name":"original"}`), 0o600)
	e.ok("docs", "put", "d", "users/1", good)
	original := e.ok("docs", "get", "d", "users/1")
	statsBefore := e.ok("stats", "d", "--json")

	const object = ` Give a JSON object such as {"Name": "x"}.`
	cases := []struct {
		name string
		body string
		msg  string
	}{
		{"bad literal", `{"a":tru}`, "the document body is not valid JSON: invalid character '}' in literal true (expecting 'e')." + object},
		{"array", `[1]`, "the document body is JSON but not an object." + object},
		{"empty", ``, "the document body is empty." + object},
		{"collection not a string", `{"@metadata":{"@collection":5}}`, "the document's metadata is not valid: @collection must be a string. Give @metadata as an object whose @collection is a string."},
	}
	for _, c := range cases {
		for _, id := range []string{"users/1", "users/2"} { // replacing an existing document, creating a new one
			t.Run(c.name+"/file/"+id, func(t *testing.T) {
				ee := *e
				ee.t = t
				p := filepath.Join(e.dir, "bad.json")
				writeMode(t, p, []byte(c.body), 0o600)
				wantOnly(t, ee.run("docs", "put", "d", id, p), exitFailure, c.msg, secrets...)
			})
			t.Run(c.name+"/stdin/"+id, func(t *testing.T) {
				ee := *e
				ee.t = t
				wantOnly(t, ee.runStdin([]byte(c.body), "docs", "put", "d", id, "-"), exitFailure, c.msg, secrets...)
			})
		}
	}
	t.Run("missing file", func(t *testing.T) {
		ee := *e
		ee.t = t
		p := filepath.Join(e.dir, "nofile.json")
		wantOnly(t, ee.run("docs", "put", "d", "users/2", p), exitFailure,
			"the document file "+p+" does not exist. Check the path.", secrets...)
	})

	if got := e.ok("docs", "get", "d", "users/1"); got != original {
		t.Errorf("users/1 changed: %s, was %s", got, original)
	}
	wantOnly(t, e.run("docs", "get", "d", "users/2"), exitFailure,
		`document ID not found: "users/2" is not in database "d". Check the ID (IDs are not case-sensitive).`, secrets...)
	if got := e.ok("stats", "d", "--json"); got != statsBefore {
		t.Errorf("stats changed:\n%s\nwas\n%s", got, statsBefore)
	}
}

// TestBadDBCreateDelete: creating a database that exists (in any letter
// case, encrypted or not) and deleting one that does not are refused, and
// nothing is lost.
func TestBadDBCreateDelete(t *testing.T) {
	e := newEnv(t)
	keyPath, dbKey := e.keyFile("db.key")
	otherKeyPath, otherKey := e.keyFile("other.key")
	e.ok("db", "create", "x")
	e.ok("db", "create", "enc", "--encrypted", "--key-file", keyPath)
	doc := filepath.Join(e.dir, "doc.json")
	writeMode(t, doc, []byte(`{"Name":"kept"}`), 0o600)
	e.ok("docs", "put", "x", "users/1", doc)
	e.ok("docs", "put", "enc", "users/1", doc)
	secrets := []keys.Key{masterKey(t, e), dbKey, otherKey}
	listBefore := e.ok("db", "list", "--json")
	docs := map[string]string{"x": e.ok("docs", "get", "x", "users/1"), "enc": e.ok("docs", "get", "enc", "users/1")}

	exists := func(name string) string {
		return fmt.Sprintf("database %q already exists. Choose another name, or delete it first with `magpie db delete %s`.", name, name)
	}
	existsOtherCase := func(existing string) string {
		return fmt.Sprintf("a database %q already exists (database names are not case-sensitive). Choose another name, or delete it first with `magpie db delete %s`.", existing, existing)
	}
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"create existing", []string{"db", "create", "x"}, exitFailure, exists("x")},
		{"create existing other case", []string{"db", "create", "X"}, exitFailure, existsOtherCase("x")},
		{"create existing encrypted, generated key", []string{"db", "create", "x", "--encrypted"}, exitFailure, exists("x")},
		{"create existing encrypted, key file", []string{"db", "create", "ENC", "--encrypted", "--key-file", otherKeyPath}, exitFailure, existsOtherCase("enc")},
		{"create existing unencrypted over encrypted", []string{"db", "create", "enc"}, exitFailure, exists("enc")},
		{"create existing --json", []string{"db", "create", "enc", "--encrypted", "--json"}, exitFailure, exists("enc")},
		{"create empty name", []string{"db", "create", ""}, exitFailure, "the database name is empty. Use 1 to 128 letters, digits, '_', '-' or '.', starting with a letter or digit."},
		{"create without name", []string{"db", "create"}, exitUsage, "accepts 1 arg(s), received 0."},
		{"delete missing", []string{"db", "delete", "nope"}, exitFailure, `database "nope" does not exist. List the databases with ` + "`magpie db list`."},
		{"delete empty name", []string{"db", "delete", ""}, exitFailure, "the database name is empty. Use 1 to 128 letters, digits, '_', '-' or '.', starting with a letter or digit."},
		{"delete without name", []string{"db", "delete"}, exitUsage, "accepts 1 arg(s), received 0."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ee := *e
			ee.t = t
			wantOnly(t, ee.run(c.args...), c.code, c.msg, secrets...)
			if got := ee.ok("db", "list", "--json"); got != listBefore {
				t.Errorf("db list changed:\n%s\nwas\n%s", got, listBefore)
			}
			for db, want := range docs {
				if got := ee.ok("docs", "get", db, "users/1"); got != want {
					t.Errorf("%s users/1 changed: %s, was %s", db, got, want)
				}
			}
		})
	}

	// In a data dir that does not exist: refused, and nothing is created.
	for _, args := range [][]string{{"db", "delete", "nope"}, {"db", "list"}, {"stats", "nope"}, {"docs", "get", "nope", "users/1"}} {
		t.Run("no data dir/"+strings.Join(args, " "), func(t *testing.T) {
			fresh := newEnv(t)
			r := fresh.run(args...)
			wantOnly(t, r, exitFailure, fmt.Sprintf("there is no magpie data dir at %s. Create a database first with `magpie db create NAME`, or point --data (MAGPIE_DATA) at an existing data dir.", fresh.data))
			mustNotExist(t, fresh.data, "data dir")
			mustNotExist(t, fresh.master, "master key")
		})
	}
}
