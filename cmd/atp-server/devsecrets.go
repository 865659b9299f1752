package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/atp-server/atp-server/internal/oauth"
)

// devSecretsFile is the file in ATP_DATA_DIR that holds the secrets generated
// in embedded mode. It is for one developer's machine: production sets
// DATABASE_URL, and then the secrets must come from the environment.
const devSecretsFile = "secrets.json"

type devSecrets struct {
	EncryptionKey string `json:"encryption_key,omitempty"` // base64, 32 bytes
	JWTSecret     string `json:"jwt_secret,omitempty"`
}

// loadDevSecrets fills the encryption key and the JWT secret that the
// environment leaves unset from ATP_DATA_DIR/secrets.json, generating and
// saving them (mode 0600, directory 0700) on first start. It only runs in
// embedded mode.
//
// When the environment sets ATP_ENCRYPTION_KEY while the file holds a
// different, generated key, the generated one joins the old keys: values it
// sealed still open, and `keys rotate` can re-seal them.
func loadDevSecrets(cfg *config, logger *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating ATP_DATA_DIR: %w", err)
	}
	path := filepath.Join(cfg.DataDir, devSecretsFile)
	var file devSecrets
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("reading %s: not valid JSON (move it away to generate new development secrets): %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			logger.Warn("development secrets file is readable by others; chmod 600 it", "path", path, "mode", fi.Mode().Perm().String())
		}
	}

	var generated []string
	if cfg.EncryptionKey == "" && file.EncryptionKey == "" {
		file.EncryptionKey = oauth.EncodeKey(oauth.NewKey())
		generated = append(generated, "encryption_key")
	}
	if cfg.JWTSecret == "" && file.JWTSecret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		file.JWTSecret = base64.RawURLEncoding.EncodeToString(b)
		generated = append(generated, "jwt_secret")
	}
	if len(generated) > 0 {
		if err := writeFileAtomic(path, file); err != nil {
			return err
		}
		logger.Info("generated development secrets; set ATP_ENCRYPTION_KEY and ATP_JWT_SECRET in production",
			"path", path, "generated", generated)
	}

	if cfg.EncryptionKey == "" {
		cfg.EncryptionKey = secret(file.EncryptionKey)
	} else if file.EncryptionKey != "" && !sameKey(file.EncryptionKey, string(cfg.EncryptionKey)) {
		if cfg.EncryptionKeyOld != "" {
			cfg.EncryptionKeyOld += ","
		}
		cfg.EncryptionKeyOld += secret(file.EncryptionKey)
		logger.Info("ATP_ENCRYPTION_KEY overrides the generated development key, which stays usable for decryption", "path", path)
	}
	if cfg.JWTSecret == "" {
		cfg.JWTSecret = secret(file.JWTSecret)
	}
	return nil
}

// sameKey reports whether two base64 keys decode to the same bytes. An
// undecodable key is left for validateSecrets to report.
func sameKey(a, b string) bool {
	ka, errA := oauth.ParseKey(a)
	kb, errB := oauth.ParseKey(b)
	return errA != nil || errB != nil || string(ka) == string(kb)
}

// writeFileAtomic writes v as JSON to path with mode 0600 through a
// temporary file and a rename, so that a crash never leaves half a file.
func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
