package oauth_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/toolkit"
)

var _ toolkit.Sealer = (*oauth.Cipher)(nil)

func mustCipher(tb testing.TB, current []byte, old ...[]byte) *oauth.Cipher {
	tb.Helper()
	c, err := oauth.NewCipher(current, old...)
	if err != nil {
		tb.Fatalf("NewCipher: %v", err)
	}
	return c
}

func TestCipherRoundTrip(t *testing.T) {
	t.Parallel()
	c := mustCipher(t, oauth.NewKey())
	for _, plain := range [][]byte{nil, []byte(""), []byte("x"), []byte("a refresh token"), bytes.Repeat([]byte{0, 1, 2, 255}, 4096)} {
		sealed, err := c.Seal(plain)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if !strings.HasPrefix(sealed, "v1."+c.KeyID()+".") {
			t.Fatalf("sealed = %q, want prefix v1.%s.", sealed, c.KeyID())
		}
		got, err := c.Open(sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
		if c.NeedsRotation(sealed) {
			t.Fatalf("NeedsRotation(%q) = true for a value sealed under the current key", sealed)
		}
	}
}

func TestCipherNonceIsRandom(t *testing.T) {
	t.Parallel()
	c := mustCipher(t, oauth.NewKey())
	a, _ := c.Seal([]byte("same"))
	b, _ := c.Seal([]byte("same"))
	if a == b {
		t.Fatalf("two seals of the same plaintext are equal: %q", a)
	}
}

func TestCipherKeyID(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0x42}, 32)
	c := mustCipher(t, key)
	if got, want := c.KeyID(), oauth.KeyID(key); got != want {
		t.Fatalf("KeyID = %q, want %q", got, want)
	}
	if len(c.KeyID()) != 8 {
		t.Fatalf("KeyID = %q, want 8 hex characters", c.KeyID())
	}
	if oauth.KeyID(key) == oauth.KeyID(oauth.NewKey()) {
		t.Fatal("two different keys share a key id")
	}
}

func TestCipherTampered(t *testing.T) {
	t.Parallel()
	c := mustCipher(t, oauth.NewKey())
	sealed, err := c.Seal([]byte("secret value"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := sealed[:strings.LastIndexByte(sealed, '.')+1]
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		_, err := c.Open(prefix + base64.RawURLEncoding.EncodeToString(flipped))
		if !errors.Is(err, oauth.ErrAuthentication) {
			t.Fatalf("byte %d flipped: Open error = %v, want ErrAuthentication", i, err)
		}
	}
	// Truncated.
	if _, err := c.Open(prefix + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1])); !errors.Is(err, oauth.ErrAuthentication) {
		t.Fatalf("truncated: Open error = %v, want ErrAuthentication", err)
	}
}

func TestCipherMalformed(t *testing.T) {
	t.Parallel()
	c := mustCipher(t, oauth.NewKey())
	id := c.KeyID()
	tests := []struct {
		name   string
		sealed string
		want   error
		rotate bool // NeedsRotation: the tag is not the current key's
	}{
		{"empty", "", oauth.ErrMalformed, true},
		{"plaintext", "hunter2", oauth.ErrMalformed, true},
		{"wrong version", "v2." + id + ".AAAA", oauth.ErrMalformed, true},
		{"no payload", "v1." + id + ".", oauth.ErrMalformed, true},
		{"short id", "v1.abc.AAAA", oauth.ErrMalformed, true},
		{"not base64", "v1." + id + ".!!!!", oauth.ErrMalformed, false},
		{"too short", "v1." + id + ".AAAA", oauth.ErrMalformed, false},
		{"unknown key id", "v1.00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", oauth.ErrUnknownKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Open(tt.sealed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open(%q) error = %v, want %v", tt.sealed, err, tt.want)
			}
			if got := c.NeedsRotation(tt.sealed); got != tt.rotate {
				t.Fatalf("NeedsRotation(%q) = %v, want %v", tt.sealed, got, tt.rotate)
			}
		})
	}
}

func TestCipherWrongKey(t *testing.T) {
	t.Parallel()
	a := mustCipher(t, oauth.NewKey())
	b := mustCipher(t, oauth.NewKey())
	sealed, err := a.Seal([]byte("token"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(sealed)
	if !errors.Is(err, oauth.ErrUnknownKey) {
		t.Fatalf("Open with another key: error = %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), a.KeyID()) || !strings.Contains(err.Error(), "ATP_ENCRYPTION_KEY_OLD") {
		t.Fatalf("error %q should name the key id %s and how to fix it", err, a.KeyID())
	}
	// A value relabelled with the other cipher's key id fails authentication:
	// the key id is bound to the ciphertext.
	relabelled := "v1." + b.KeyID() + sealed[len("v1.")+8:]
	if _, err := b.Open(relabelled); !errors.Is(err, oauth.ErrAuthentication) {
		t.Fatalf("relabelled value: error = %v, want ErrAuthentication", err)
	}
}

func TestCipherRotation(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := oauth.NewKey(), oauth.NewKey(), oauth.NewKey()
	old := mustCipher(t, k1)
	older := mustCipher(t, k3)
	sealedOld, _ := old.Seal([]byte("under k1"))
	sealedOlder, _ := older.Seal([]byte("under k3"))

	rotated := mustCipher(t, k2, k1, k3)
	for sealed, want := range map[string]string{sealedOld: "under k1", sealedOlder: "under k3"} {
		got, err := rotated.Open(sealed)
		if err != nil {
			t.Fatalf("Open old value: %v", err)
		}
		if string(got) != want {
			t.Fatalf("Open = %q, want %q", got, want)
		}
		if !rotated.NeedsRotation(sealed) {
			t.Fatalf("NeedsRotation = false for a value under an old key")
		}
	}
	fresh, _ := rotated.Seal([]byte("new"))
	if rotated.NeedsRotation(fresh) {
		t.Fatal("NeedsRotation = true for a value under the current key")
	}
	if !strings.HasPrefix(fresh, "v1."+oauth.KeyID(k2)+".") {
		t.Fatalf("Seal used %q, want the current key %s", fresh, oauth.KeyID(k2))
	}
	// The old cipher cannot read what the new key sealed.
	if _, err := old.Open(fresh); !errors.Is(err, oauth.ErrUnknownKey) {
		t.Fatalf("old cipher opening a new value: %v, want ErrUnknownKey", err)
	}
}

func TestNewCipherRejectsBadKeys(t *testing.T) {
	t.Parallel()
	good := oauth.NewKey()
	tests := []struct {
		name    string
		current []byte
		old     [][]byte
		want    string
	}{
		{"nil current", nil, nil, "current encryption key: must be 32 bytes, got 0"},
		{"short current", make([]byte, 16), nil, "current encryption key: must be 32 bytes, got 16"},
		{"long current", make([]byte, 33), nil, "current encryption key: must be 32 bytes, got 33"},
		{"short old", good, [][]byte{oauth.NewKey(), make([]byte, 31)}, "old encryption key 2: must be 32 bytes, got 31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := oauth.NewCipher(tt.current, tt.old...)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewCipher error = %v, want %q", err, tt.want)
			}
		})
	}
	// The current key repeated among the old ones is fine.
	if _, err := oauth.NewCipher(good, good); err != nil {
		t.Fatalf("NewCipher(k, k) = %v, want nil", err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xf0 + i) // makes both '+/' and '-_' appear in encodings
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"std padded", base64.StdEncoding.EncodeToString(key), true},
		{"std raw", base64.RawStdEncoding.EncodeToString(key), true},
		{"url padded", base64.URLEncoding.EncodeToString(key), true},
		{"url raw", base64.RawURLEncoding.EncodeToString(key), true},
		{"surrounding space", "  " + base64.StdEncoding.EncodeToString(key) + "\n", true},
		{"empty", "", false},
		{"not base64", "this is not a key!", false},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), false},
		{"64 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(key), key...)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := oauth.ParseKey(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseKey(%q) = %x, want an error", tt.in, got)
				}
				if tt.in != "" && strings.Contains(err.Error(), tt.in) {
					t.Fatalf("error %q repeats the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.in, err)
			}
			if !bytes.Equal(got, key) {
				t.Fatalf("ParseKey(%q) = %x, want %x", tt.in, got, key)
			}
		})
	}
	if _, err := oauth.ParseKey(oauth.EncodeKey(key)); err != nil {
		t.Fatalf("ParseKey(EncodeKey(k)): %v", err)
	}
}

func FuzzCipherOpen(f *testing.F) {
	c := mustCipher(f, bytes.Repeat([]byte{7}, 32))
	s, _ := c.Seal([]byte("seed"))
	f.Add(s)
	f.Add("v1.00000000.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, sealed string) {
		plain, err := c.Open(sealed)
		if err != nil {
			return
		}
		// Whatever opens must re-seal and open to the same bytes.
		again, err := c.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Open(again)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %q: %q, %v", plain, got, err)
		}
	})
}

func BenchmarkCipherSeal(b *testing.B) {
	c := mustCipher(b, oauth.NewKey())
	plain := []byte(strings.Repeat("t", 256))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Seal(plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCipherOpen(b *testing.B) {
	c := mustCipher(b, oauth.NewKey())
	sealed, _ := c.Seal([]byte(strings.Repeat("t", 256)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(sealed); err != nil {
			b.Fatal(err)
		}
	}
}
