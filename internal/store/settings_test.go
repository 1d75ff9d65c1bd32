package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	db := openTestDB(t, true)
	if v, err := db.Setting("PeriodicBackups"); v != nil || err != nil {
		t.Fatalf("unset setting %q %v", v, err)
	}
	if err := db.SetSetting("PeriodicBackups", []byte(`[{"TaskId":1}]`)); err != nil {
		t.Fatal(err)
	}
	// An import that fails takes its setting back with it; one that
	// commits keeps it.
	bk, err := db.BeginImport()
	if err != nil {
		t.Fatal(err)
	}
	if err := bk.Setting("PeriodicBackups", []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	if err := bk.Abort(); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.Setting("PeriodicBackups"); string(v) != `[{"TaskId":1}]` {
		t.Fatalf("after an aborted import %s", v)
	}
	bk, err = db.BeginImport()
	if err != nil {
		t.Fatal(err)
	}
	if err := bk.Setting("PeriodicBackups", []byte(`[{"TaskId":2}]`)); err != nil {
		t.Fatal(err)
	}
	if err := bk.Commit(); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.Setting("PeriodicBackups"); string(v) != `[{"TaskId":2}]` {
		t.Fatalf("after a committed import %s", v)
	}
	// Settings are not documents: stats and walks do not see them.
	st, err := db.Stats()
	if err != nil || st.CountOfDocuments != 0 || st.LastDocEtag != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
	if err := db.SetSetting("PeriodicBackups", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Setting("PeriodicBackups"); v != nil || err != nil {
		t.Fatalf("removed setting %q %v", v, err)
	}

	for _, c := range []struct {
		name  string
		value []byte
		err   string
	}{
		{"x", []byte("{"), "setting x is not valid JSON"},
		{"", []byte("1"), `setting name "" is empty or too long`},
		{"big", append(append([]byte(`"`), bytes.Repeat([]byte("a"), maxSettingBytes)...), '"'), "setting big is 1048578 bytes, more than the 1048576 a setting may hold"},
	} {
		err := db.SetSetting(c.name, c.value)
		if err == nil || !strings.HasPrefix(err.Error(), c.err) {
			t.Errorf("SetSetting(%q): %v, want %q", c.name, err, c.err)
		}
		if c.name != "" && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("SetSetting(%q): %v is not ErrInvalidInput", c.name, err)
		}
	}
}
