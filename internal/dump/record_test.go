package dump

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magpiedb/magpie/internal/smuggler"
	"github.com/magpiedb/magpie/internal/store"
)

func openDB(t *testing.T, d *store.DataDir, name string) *store.DB {
	t.Helper()
	if _, err := d.CreateDatabase(name, store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestDatabaseRecord(t *testing.T) {
	root := t.TempDir()
	d, err := store.Open(store.Options{Dir: filepath.Join(root, "data"), MasterKeyFile: filepath.Join(root, "master.key"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	src := openDB(t, d, "src")
	if _, err := src.Put("a/1", []byte(`{"x":1,"@metadata":{"@collection":"As"}}`)); err != nil {
		t.Fatal(err)
	}

	// No settings: no DatabaseRecord, the export is as before.
	var plain bytes.Buffer
	if _, err := Export(src, &plain, smuggler.None, 0); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "DatabaseRecord") {
		t.Fatalf("export without settings has a DatabaseRecord: %s", plain.String())
	}

	tasks := `[{"TaskId":1,"Name":"nightly","S3Settings":{"BucketName":"b","AwsSecretKey":"SECRET"},"BackupEncryptionSettings":{"EncryptionMode":"None","Key":"KEY"}}]`
	if err := src.SetSetting(PeriodicBackups, []byte(tasks)); err != nil {
		t.Fatal(err)
	}
	var withRecord bytes.Buffer
	if _, err := Export(src, &withRecord, smuggler.None, 0); err != nil {
		t.Fatal(err)
	}
	wantHead := `{"BuildVersion":60000,"DatabaseRecord":{"DatabaseName":"src","Encrypted":false,"PeriodicBackups":` + tasks + `},"Docs":[`
	if !strings.HasPrefix(withRecord.String(), wantHead) {
		t.Fatalf("export\n got %s\nwant prefix %s", withRecord.String(), wantHead)
	}

	// A plain import leaves the target's configuration alone and counts
	// the record as skipped.
	imp := openDB(t, d, "imported")
	res, err := Import(imp, bytes.NewReader(withRecord.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := imp.Setting(PeriodicBackups); v != nil || res.Skipped["DatabaseRecord"] != 1 || res.Documents != 1 {
		t.Fatalf("plain import: setting %s, result %+v", v, res)
	}

	// KeepRecord takes it, without credentials or keys.
	restored := openDB(t, d, "restored")
	res, err = ImportWith(restored, bytes.NewReader(withRecord.Bytes()), ImportOptions{KeepRecord: true})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := restored.Setting(PeriodicBackups)
	want := `[{"BackupEncryptionSettings":{"EncryptionMode":"None"},"Name":"nightly","S3Settings":{"BucketName":"b"},"TaskId":1}]`
	if string(v) != want || len(res.Skipped) != 0 {
		t.Fatalf("kept record %s, skipped %v; want %s", v, res.Skipped, want)
	}

	// A later file whose record has no tasks removes them; a file without
	// a record leaves them.
	var noTasks bytes.Buffer
	sw := smuggler.NewWriter(&noTasks, BuildVersion)
	sw.DatabaseRecord([]byte(`{"DatabaseName":"src","Encrypted":false}`))
	sw.Close()
	if _, err := ImportWith(restored, bytes.NewReader(plain.Bytes()), ImportOptions{KeepRecord: true}); err != nil {
		t.Fatal(err)
	}
	if v, _ := restored.Setting(PeriodicBackups); string(v) != want {
		t.Fatalf("after an export without a record %s", v)
	}
	if _, err := ImportWith(restored, bytes.NewReader(noTasks.Bytes()), ImportOptions{KeepRecord: true}); err != nil {
		t.Fatal(err)
	}
	if v, _ := restored.Setting(PeriodicBackups); v != nil {
		t.Fatalf("after a record without tasks %s", v)
	}

	// A damaged record fails the import, which then changes nothing.
	var bad bytes.Buffer
	sw = smuggler.NewWriter(&bad, BuildVersion)
	sw.DatabaseRecord([]byte(`{"PeriodicBackups":{"not":"a list"}}`))
	sw.Close()
	_, err = ImportWith(restored, bytes.NewReader(bad.Bytes()), ImportOptions{KeepRecord: true})
	if err == nil || !strings.HasPrefix(err.Error(), "the export's DatabaseRecord.PeriodicBackups is damaged") {
		t.Fatalf("damaged record: %v", err)
	}
}
