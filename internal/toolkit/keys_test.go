package toolkit

import (
	"strings"
	"testing"
)

// The random part of a secret may contain '_': the prefix must still show
// only the kind and 4 random characters.
func TestKeyPrefixNeverShowsTheSecret(t *testing.T) {
	t.Parallel()
	for range 2000 {
		for _, kind := range []string{KeyAdmin, KeyClient, KeyToolkit} {
			secret := NewKeySecret(kind)
			p := keyPrefix(secret)
			short := strings.SplitN(secret, "_", 3)[1]
			if want := len("atp_") + len(short) + 1 + 4; len(p) != want || !strings.HasPrefix(secret, p) {
				t.Fatalf("keyPrefix(%q) = %q, want the first %d characters", secret, p, want)
			}
		}
	}
	for secret, want := range map[string]string{
		"short-admin-key":                "",
		"my-configured-admin-key-0123":   "my-c",
		"atp_cli_tooshort":               "",
		"atp_adm_abcdefghijklmnopqrstuv": "atp_adm_abcd",
	} {
		if got := keyPrefix(secret); got != want {
			t.Errorf("keyPrefix(%q) = %q, want %q", secret, got, want)
		}
	}
}
