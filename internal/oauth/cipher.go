package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeySize is the length of an encryption key: AES-256.
const KeySize = 32

// sealedVersion prefixes every sealed value so that the format can change
// later without guessing.
const sealedVersion = "v1"

// Errors that Open returns (wrapped with detail). None of them carries key
// material or plaintext.
var (
	ErrMalformed      = errors.New("sealed value is malformed")
	ErrUnknownKey     = errors.New("sealed value uses an unknown encryption key")
	ErrAuthentication = errors.New("sealed value failed authentication (tampered, or sealed under a different key with the same id)")
)

// Cipher seals secrets at rest with AES-256-GCM. A sealed value reads
//
//	v1.<keyid>.<base64url(nonce | ciphertext+tag)>
//
// where keyid is the first 8 hex characters of SHA-256(key). Seal always uses
// the current key; Open picks the key by id among the current and the old
// ones, so keys can be rotated without a flag day. A Cipher is safe for
// concurrent use.
type Cipher struct {
	current string // key id of the current key
	aeads   map[string]cipher.AEAD
}

// NewCipher returns a Cipher that seals with current and opens values sealed
// under current or any of old. Every key must be exactly KeySize bytes. Two
// distinct keys with the same key id are refused (the id would be ambiguous);
// an old key equal to the current one is ignored.
func NewCipher(current []byte, old ...[]byte) (*Cipher, error) {
	c := &Cipher{aeads: make(map[string]cipher.AEAD, 1+len(old))}
	id, aead, err := newAEAD(current)
	if err != nil {
		return nil, fmt.Errorf("current encryption key: %w", err)
	}
	c.current = id
	c.aeads[id] = aead
	keys := map[string][]byte{id: current}
	for i, k := range old {
		id, aead, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("old encryption key %d: %w", i+1, err)
		}
		if prev, ok := keys[id]; ok {
			if string(prev) == string(k) {
				continue // the same key given twice: harmless
			}
			return nil, fmt.Errorf("old encryption key %d: its key id %s collides with another key; generate a new key", i+1, id)
		}
		keys[id] = k
		c.aeads[id] = aead
	}
	return c, nil
}

func newAEAD(key []byte) (string, cipher.AEAD, error) {
	if len(key) != KeySize {
		return "", nil, fmt.Errorf("must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", nil, err
	}
	return KeyID(key), aead, nil
}

// KeyID returns the id of a key: the first 8 hex characters of its SHA-256.
// It identifies a key in sealed values and logs without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// KeyID returns the id of the current key.
func (c *Cipher) KeyID() string { return c.current }

// Seal encrypts plaintext under the current key with a fresh random nonce.
// The key id is bound to the ciphertext as additional data, so a value cannot
// be relabelled to another key id.
func (c *Cipher) Seal(plaintext []byte) (string, error) {
	aead := c.aeads[c.current]
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24+)
	out := aead.Seal(buf, buf, plaintext, additionalData(c.current))
	return sealedVersion + "." + c.current + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal under the current or an old key. It
// returns an error wrapping ErrMalformed, ErrUnknownKey or ErrAuthentication.
func (c *Cipher) Open(sealed string) ([]byte, error) {
	id, payload, err := split(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := c.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: key id %s (current key is %s; add the key it was sealed with to ATP_ENCRYPTION_KEY_OLD)", ErrUnknownKey, id, c.current)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: payload too short", ErrMalformed)
	}
	nonce, ct := raw[:aead.NonceSize()], raw[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, additionalData(id))
	if err != nil {
		return nil, fmt.Errorf("%w: key id %s", ErrAuthentication, id)
	}
	return plain, nil
}

// NeedsRotation reports whether sealed is tagged with a key other than the
// current one (an old key, or an unknown one), so that `keys rotate` can
// re-seal it. A value without a readable tag also reports true: it is not
// under the current key. It does not decrypt; Open tells whether it can.
func (c *Cipher) NeedsRotation(sealed string) bool {
	id, _, err := split(sealed)
	return err != nil || id != c.current
}

// Reseal re-encrypts sealed under the current key when it is under
// another one (`atp-server keys rotate`); a value already under the current
// key comes back as it is, with changed false. It fails like Open for a
// value no configured key opens.
func (c *Cipher) Reseal(sealed string) (resealed string, changed bool, err error) {
	if !c.NeedsRotation(sealed) {
		return sealed, false, nil
	}
	plain, err := c.Open(sealed)
	if err != nil {
		return "", false, err
	}
	out, err := c.Seal(plain)
	return out, err == nil, err
}

func split(sealed string) (id, payload string, err error) {
	version, rest, ok := strings.Cut(sealed, ".")
	if !ok || version != sealedVersion {
		return "", "", fmt.Errorf("%w: want %s.<keyid>.<data>", ErrMalformed, sealedVersion)
	}
	id, payload, ok = strings.Cut(rest, ".")
	if !ok || len(id) != 8 || payload == "" {
		return "", "", fmt.Errorf("%w: want %s.<keyid>.<data>", ErrMalformed, sealedVersion)
	}
	return id, payload, nil
}

func additionalData(id string) []byte { return []byte(sealedVersion + "." + id) }

// LogValue keeps key material out of logs: only the current key id shows.
func (c *Cipher) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", c.current), slog.Int("keys", len(c.aeads)))
}

// ParseKey decodes a base64 key (standard or URL alphabet, padded or not) and
// checks that it is KeySize bytes. `openssl rand -base64 32` makes one. The
// error never repeats the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty key")
	}
	s = strings.TrimRight(s, "=")
	var (
		b   []byte
		err error
	)
	if strings.ContainsAny(s, "-_") {
		b, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, errors.New("not valid base64 (generate one with: openssl rand -base64 32)")
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(b), KeySize)
	}
	return b, nil
}

// NewKey returns a fresh random key, for generated development secrets.
func NewKey() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// EncodeKey returns the standard base64 form of a key, as ParseKey reads it.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }
