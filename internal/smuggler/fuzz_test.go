package smuggler

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// strictOracle escapes raw control characters inside strings with a
// deliberately naive state machine, so the fuzz oracle does not share the
// reader's code.
func strictOracle(b []byte) []byte {
	var out []byte
	in, esc := false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case in && c < 0x20:
			out = append(out, []byte(`\u00`)...)
			out = append(out, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			continue
		}
		out = append(out, c)
	}
	return out
}

// FuzzRead checks that Read never panics, fails only with *Error, and
// accepts a document exactly when encoding/json accepts it once raw control
// characters in strings are escaped.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		`1`, `"x"`, `{"a":[1,2,{"b":null}]}`, `"I` + "\x19" + `m"`, `-0.5e+10`, `[true,false]`, `"\ud83d\ude00"`,
		`{"a":tru}`, `"\x"`, `01`, "\"\t\"", "[1,\n2]", `{"a" 1}`, `[1,]`, strings.Repeat("[", 600),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// As a whole stream: any outcome but a panic or a foreign error.
		if err := Read(bytes.NewReader(data), &recorder{}); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
		}

		// As the value of a field in a single document.
		doc := append(append([]byte(`{"@metadata":{"@id":"x"},"v":`), data...), '}')
		dump := append(append([]byte(`{"Docs":[`), doc...), ']', '}')
		var rec recorder
		err := Read(bytes.NewReader(dump), &rec)
		if err != nil && strings.Contains(err.Error(), "levels deep") {
			return // beyond maxDepth; encoding/json has its own, higher limit
		}
		want := json.Valid(strictOracle(doc))
		if (err == nil) != want {
			t.Fatalf("Read error %v, but encoding/json says valid=%v for %q", err, want, data)
		}
		if err != nil {
			return
		}
		body := rec.docs()[0].Body
		if !json.Valid(body) {
			t.Fatalf("body %q is not strict JSON", body)
		}
		var got, exp any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(strictOracle(doc), &exp); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		eb, _ := json.Marshal(exp)
		if !bytes.Equal(gb, eb) {
			t.Fatalf("body decodes to %s, want %s", gb, eb)
		}
		if !bytes.ContainsFunc(data, func(r rune) bool { return r < 0x20 }) && !bytes.Equal(body, doc) {
			t.Fatalf("body %q differs from the input %q", body, doc)
		}
	})
}
