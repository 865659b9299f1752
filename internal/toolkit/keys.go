package toolkit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Key secrets look like "atp_<kind>_<43 base64url chars>": 256 random bits,
// so a plain SHA-256 is a sufficient hash (no brute force is possible and a
// slow hash would cost every request).
const keySecretBytes = 32

// NewKeySecret returns a fresh key secret for the kind.
func NewKeySecret(kind string) string {
	b := make([]byte, keySecretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	short := map[string]string{KeyAdmin: "adm", KeyClient: "cli", KeyToolkit: "tk"}[kind]
	if short == "" {
		short = "key"
	}
	return "atp_" + short + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// HashKey returns the stored hash of a key secret.
func HashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// keyPrefix is the part of a secret shown in listings so operators can tell
// keys apart: "atp_cli_" and 4 random characters for generated keys. The
// random part may itself contain '_', so the cut is after the second '_',
// never the last. An operator-chosen key (ATP_ADMIN_KEY) shows at most 4
// characters, and none when it is short.
func keyPrefix(secret string) string {
	if strings.HasPrefix(secret, "atp_") {
		if i := strings.IndexByte(secret[len("atp_"):], '_'); i >= 0 {
			end := len("atp_") + i + 1 + 4
			if end < len(secret)-16 {
				return secret[:end]
			}
		}
	}
	if len(secret) >= 24 {
		return secret[:4]
	}
	return ""
}

// NewID returns a random, URL-safe id with the given prefix ("key_", "conn_", …).
func NewID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}
