package keys

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, _ := Generate()
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", nil, nil},
		{"data key", bytes.Repeat([]byte{7}, 32), []byte("magpie data key 1")},
		{"record", []byte(`{"Name":"lastfm"}`), []byte("db lastfm")},
		{"large", bytes.Repeat([]byte("x"), 1<<16+3), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed := Seal(k, tt.plaintext, tt.ad)
			if got, want := len(sealed), len(tt.plaintext)+SealOverhead; got != want {
				t.Fatalf("sealed length = %d, want %d", got, want)
			}
			if len(tt.plaintext) >= 8 && bytes.Contains(sealed, tt.plaintext[:8]) {
				t.Error("sealed value contains the plaintext")
			}
			got, err := Open(k, sealed, tt.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tt.plaintext)
			}
			if again := Seal(k, tt.plaintext, tt.ad); bytes.Equal(again, sealed) {
				t.Error("sealing twice gave the same bytes: the nonce is not random")
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	k, _ := Generate()
	other, _ := Generate()
	sealed := Seal(k, []byte("a data key, 32 bytes long......."), []byte("ad"))
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		key    Key
		sealed []byte
		ad     []byte
	}{
		{"wrong key", other, sealed, []byte("ad")},
		{"wrong additional data", k, sealed, []byte("ae")},
		{"missing additional data", k, sealed, nil},
		{"flipped nonce byte", k, flip(0), []byte("ad")},
		{"flipped ciphertext byte", k, flip(30), []byte("ad")},
		{"flipped tag byte", k, flip(len(sealed) - 1), []byte("ad")},
		{"truncated by one", k, sealed[:len(sealed)-1], []byte("ad")},
		{"shorter than the overhead", k, sealed[:SealOverhead-1], []byte("ad")},
		{"empty", k, nil, []byte("ad")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.key, tt.sealed, tt.ad)
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("Open error = %v, want ErrAuth", err)
			}
			if err.Error() != "the data failed its authentication check: wrong key or damaged data" {
				t.Errorf("error text = %q", err)
			}
			if got != nil {
				t.Errorf("Open returned %d bytes along with the error", len(got))
			}
		})
	}
}
