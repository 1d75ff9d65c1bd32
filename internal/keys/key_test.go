package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// seqKey is the key with bytes 0, 1, ..., 31; the expected values in these
// tests were computed from it with Python's hashlib and hmac, independently
// of this package.
var seqKey = func() Key {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

const seqKeyText = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestParse(t *testing.T) {
	const hint = ": a magpie key is the base64 text of 32 random bytes (make one with `magpie secrets generate`)"
	tests := []struct {
		name    string
		text    string
		want    Key
		wantErr string
	}{
		{name: "valid", text: seqKeyText, want: seqKey},
		{name: "trailing newline", text: seqKeyText + "\n", want: seqKey},
		{name: "CRLF and spaces", text: "  \t" + seqKeyText + " \r\n", want: seqKey},
		{name: "all ones", text: "//////////////////////////////////////////8=", want: Key(allBytes(0xff))},
		{name: "empty", text: "", wantErr: "the key is empty" + hint},
		{name: "only whitespace", text: " \n\t\n", wantErr: "the key is empty" + hint},
		{name: "bad base64", text: "not base64!", wantErr: "the key is not valid base64" + hint},
		{name: "unpadded", text: strings.TrimSuffix(seqKeyText, "="), wantErr: "the key is not valid base64" + hint},
		{name: "url alphabet", text: "-_________________________________________8=", wantErr: "the key is not valid base64" + hint},
		{name: "non-zero trailing bits", text: "//////////////////////////////////////////9=", wantErr: "the key is not valid base64" + hint},
		{name: "16 bytes", text: "AAAAAAAAAAAAAAAAAAAAAA==", wantErr: "the key decodes to 16 bytes, not 32" + hint},
		{name: "33 bytes", text: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", wantErr: "the key decodes to 33 bytes, not 32" + hint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.text)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Parse gave %s, want %s", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error\n got %q\nwant %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("error %q does not wrap ErrInvalidKey", err)
			}
			if trimmed := strings.TrimSpace(tt.text); trimmed != "" && strings.Contains(err.Error(), trimmed) {
				t.Errorf("error %q contains the input", err)
			}
		})
	}
}

func allBytes(b byte) (k [Size]byte) {
	for i := range k {
		k[i] = b
	}
	return k
}

func TestBase64RoundTrip(t *testing.T) {
	if got := seqKey.Base64(); got != seqKeyText {
		t.Fatalf("Base64 = %q, want %q", got, seqKeyText)
	}
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if k == (Key{}) {
		t.Fatal("Generate returned the zero key")
	}
	back, err := Parse(k.Base64())
	if err != nil || back != k {
		t.Fatalf("Parse(Base64()) = %s, %v; want %s", back, err, k)
	}
	other, _ := Generate()
	if other == k {
		t.Fatal("two calls to Generate returned the same key")
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		key  Key
		want string
	}{
		{seqKey, "b06b37d1a21b7b67"},
		{Key(allBytes(0xff)), "b8a20ea927dabcb7"},
	}
	for _, tt := range tests {
		if got := tt.key.Fingerprint(); got != tt.want {
			t.Errorf("Fingerprint = %q, want %q", got, tt.want)
		}
		if got := tt.key.Fingerprint(); got != tt.want {
			t.Errorf("second Fingerprint = %q, want %q (not stable)", got, tt.want)
		}
		if want := "key " + tt.want; tt.key.String() != want {
			t.Errorf("String = %q, want %q", tt.key.String(), want)
		}
	}
}

// TestFormatNeverRevealsKey checks every way a key could reach a log line.
func TestFormatNeverRevealsKey(t *testing.T) {
	k := seqKey
	secret := k.Base64()
	rawHex := fmt.Sprintf("%x", [Size]byte(k))
	want := "key b06b37d1a21b7b67"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v"} {
		got := fmt.Sprintf(verb, k)
		if got != want {
			t.Errorf("Sprintf(%q) = %q, want %q", verb, got, want)
		}
		if strings.Contains(got, secret) || strings.Contains(got, rawHex) {
			t.Errorf("Sprintf(%q) reveals the key", verb)
		}
	}
	if got := fmt.Sprint(k, &k, []Key{k}); strings.Contains(got, secret) || strings.Contains(got, "0 1 2 3") {
		t.Errorf("Sprint reveals the key: %q", got)
	}
	if strings.Contains(k.String(), secret) || strings.Contains(k.Fingerprint(), secret) {
		t.Error("String or Fingerprint contains the base64 key")
	}
	out, err := json.Marshal(struct{ K Key }{k})
	if err == nil {
		t.Errorf("json.Marshal of a Key succeeded: %s", out)
	}
}

func TestDerive(t *testing.T) {
	tests := []struct {
		purpose string
		want    string
	}{
		{"manifest mac v1", "5b67addf477b55d4c55046f9163e6a94075bf68c537fb6f2110b7e12bb125f0a"},
		{"encfs aes-256-ctr v1", "801c22b98242021de43ea34c31d17724d3e3e182ae0b0e0441544359bac4d423"},
	}
	for _, tt := range tests {
		d := seqKey.Derive(tt.purpose)
		if got := fmt.Sprintf("%x", [Size]byte(d)); got != tt.want {
			t.Errorf("Derive(%q) = %s, want %s", tt.purpose, got, tt.want)
		}
	}
}
