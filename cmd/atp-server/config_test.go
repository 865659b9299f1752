package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/oauth"
)

// section1 is every variable of admin-api.md §1, the configuration contract.
var section1 = []string{
	"ATP_ADDR", "DATABASE_URL", "ATP_DATA_DIR", "ATP_PUBLIC_URL", "ATP_ADMIN_KEY",
	"ATP_ENCRYPTION_KEY", "ATP_ENCRYPTION_KEY_OLD", "ATP_JWT_SECRET", "ATP_HTTP_ALLOW_PRIVATE",
	"ATP_OAUTH_REDIRECT_ALLOWLIST", "ATP_ALLOW_ANONYMOUS", "ATP_MAX_BODY_BYTES",
	"ATP_LOG_LEVEL", "ATP_LOG_FORMAT",
}

func TestHelpListsEverything(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h", "-help"} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"atp-server", arg}, getenvFrom(nil), &stdout, &stderr); err != nil {
			t.Fatalf("run %s: %v, want nil (exit 0)", arg, err)
		}
		help := stdout.String()
		for _, v := range section1 {
			if !strings.Contains(help, v) {
				t.Errorf("%s does not list %s", arg, v)
			}
		}
		for _, s := range settings() {
			if !strings.Contains(help, "--"+s.flag) || !strings.Contains(help, s.env) {
				t.Errorf("%s does not list --%s with %s", arg, s.flag, s.env)
			}
		}
		for _, s := range secretSettings() {
			if !strings.Contains(help, s.env) {
				t.Errorf("%s does not list the secret %s", arg, s.env)
			}
		}
		for _, want := range []string{"--migrate", "migrate up|down|version", "healthcheck", "version", "NAME_FILE", "never flags"} {
			if !strings.Contains(help, want) {
				t.Errorf("%s does not mention %q", arg, want)
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("%s wrote to stderr: %s", arg, stderr.String())
		}
	}
}

// TestSecretsAreNotFlags: a secret given as a flag is refused.
func TestSecretsAreNotFlags(t *testing.T) {
	t.Parallel()
	for _, flagName := range []string{"--admin-key=x", "--encryption-key=x", "--jwt-secret=x", "--database-url=x"} {
		_, _, err := parseConfig([]string{flagName}, getenvFrom(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("parseConfig(%s) = %v, want an undefined flag", flagName, err)
		}
	}
}

func TestHelpShowsEnvironmentDefaults(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"atp-server", "--help"}, getenvFrom(map[string]string{"ATP_ADDR": ":4444", "ATP_ADMIN_KEY": "do-not-print-me-0123"}), &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), ":4444 (from ATP_ADDR)") {
		t.Errorf("help does not show the default taken from ATP_ADDR:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "do-not-print-me") {
		t.Error("help prints a secret")
	}
}

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, words, err := parseConfig(nil, getenvFrom(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(words) != 0 {
		t.Errorf("words = %v, want none", words)
	}
	want := &config{
		Addr:                 ":3333",
		DataDir:              "./atp-data",
		PublicURL:            "http://localhost:3333",
		MaxBodyBytes:         10485760,
		LogLevel:             slog.LevelInfo,
		LogFormat:            "text",
		Migrate:              true,
		ShutdownTimeout:      15 * time.Second,
		ToolTimeout:          30 * time.Second,
		ToolMaxResultBytes:   1 << 20,
		HTTPMaxResponseBytes: 5 << 20,
	}
	if diff := cmp.Diff(want, cfg, cmp.AllowUnexported(config{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !cfg.embedded() {
		t.Error("no DATABASE_URL should mean the embedded database")
	}
}

func TestParseConfigFromEnvAndFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"ATP_ADDR":                     "127.0.0.1:8080",
		"ATP_DATA_DIR":                 "/var/lib/atp",
		"ATP_PUBLIC_URL":               "https://atp.example.com/",
		"ATP_HTTP_ALLOW_PRIVATE":       "true",
		"ATP_OAUTH_REDIRECT_ALLOWLIST": "https://app.example.com/cb, http://localhost:5173/",
		"ATP_ALLOW_ANONYMOUS":          "1",
		"ATP_MAX_BODY_BYTES":           "2048",
		"ATP_LOG_LEVEL":                "DEBUG",
		"ATP_LOG_FORMAT":               "json",
		"ATP_MIGRATE":                  "false",
		"ATP_SHUTDOWN_TIMEOUT":         "3s",
		"ATP_TOOL_TIMEOUT":             "1m",
		"ATP_TOOL_MAX_RESULT_BYTES":    "4096",
		"ATP_HTTP_MAX_RESPONSE_BYTES":  "8192",
		"DATABASE_URL":                 "postgres://u:p@db/atp",
	}
	// Flags win over the environment, before and after the subcommand.
	cfg, words, err := parseConfig([]string{"--log-level=warn", "migrate", "up", "--addr", ":9999"}, getenvFrom(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"migrate", "up"}, words); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
	want := &config{
		Addr:                   ":9999",
		DataDir:                "/var/lib/atp",
		PublicURL:              "https://atp.example.com",
		HTTPAllowPrivate:       true,
		OAuthRedirectAllowlist: []string{"https://app.example.com/cb", "http://localhost:5173/"},
		AllowAnonymous:         true,
		MaxBodyBytes:           2048,
		LogLevel:               slog.LevelWarn,
		LogFormat:              "json",
		Migrate:                false,
		ShutdownTimeout:        3 * time.Second,
		ToolTimeout:            time.Minute,
		ToolMaxResultBytes:     4096,
		HTTPMaxResponseBytes:   8192,
		DatabaseURL:            "postgres://u:p@db/atp",
	}
	if diff := cmp.Diff(want, cfg, cmp.AllowUnexported(config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"log level", map[string]string{"ATP_LOG_LEVEL": "x"}, nil, `invalid ATP_LOG_LEVEL "x": want debug|info|warn|error`},
		{"log format", map[string]string{"ATP_LOG_FORMAT": "xml"}, nil, `invalid ATP_LOG_FORMAT "xml": want text|json`},
		{"addr", map[string]string{"ATP_ADDR": "3333"}, nil, `invalid ATP_ADDR "3333": want host:port, e.g. :3333 or 127.0.0.1:3333`},
		{"addr port", map[string]string{"ATP_ADDR": ":http"}, nil, `invalid ATP_ADDR ":http": want a numeric port between 0 and 65535`},
		{"public url", map[string]string{"ATP_PUBLIC_URL": "ftp://x"}, nil, `invalid ATP_PUBLIC_URL "ftp://x": want an absolute http:// or https:// URL`},
		{"public url query", map[string]string{"ATP_PUBLIC_URL": "https://x/?a=b"}, nil, `invalid ATP_PUBLIC_URL "https://x/?a=b": want a base URL without query or fragment`},
		{"bool", map[string]string{"ATP_HTTP_ALLOW_PRIVATE": "maybe"}, nil, `invalid ATP_HTTP_ALLOW_PRIVATE "maybe": want true|false`},
		{"allowlist", map[string]string{"ATP_OAUTH_REDIRECT_ALLOWLIST": "https://ok.example,/relative"}, nil, `invalid ATP_OAUTH_REDIRECT_ALLOWLIST "https://ok.example,/relative": entry "/relative": want an absolute http:// or https:// URL`},
		{"body bytes", map[string]string{"ATP_MAX_BODY_BYTES": "-1"}, nil, `invalid ATP_MAX_BODY_BYTES "-1": want a positive number of bytes`},
		{"duration", map[string]string{"ATP_SHUTDOWN_TIMEOUT": "15"}, nil, `invalid ATP_SHUTDOWN_TIMEOUT "15": want a positive duration such as 500ms, 15s or 2m`},
		{"flag value", nil, []string{"--log-level", "loud"}, `invalid value "loud" for flag -log-level: want debug|info|warn|error (see atp-server --help)`},
		{"unknown flag", nil, []string{"--nope"}, `flag provided but not defined: -nope (see atp-server --help)`},
		{"secret and file", map[string]string{"ATP_ADMIN_KEY": "a", "ATP_ADMIN_KEY_FILE": "/x"}, nil, `both ATP_ADMIN_KEY and ATP_ADMIN_KEY_FILE are set: set one`},
		{"two errors", map[string]string{"ATP_LOG_LEVEL": "x", "ATP_LOG_FORMAT": "xml"}, nil, "invalid ATP_LOG_LEVEL \"x\": want debug|info|warn|error\ninvalid ATP_LOG_FORMAT \"xml\": want text|json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := parseConfig(tt.args, getenvFrom(tt.env), io.Discard)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("parseConfig error = %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestFlagOverridesBadEnv: a flag replaces an invalid variable instead of
// failing on it.
func TestFlagOverridesBadEnv(t *testing.T) {
	t.Parallel()
	cfg, _, err := parseConfig([]string{"--log-level=error"}, getenvFrom(map[string]string{"ATP_LOG_LEVEL": "x"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != slog.LevelError {
		t.Errorf("LogLevel = %v, want error", cfg.LogLevel)
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := oauth.EncodeKey(oauth.NewKey())
	env := map[string]string{
		"ATP_ADMIN_KEY_FILE":      write("admin", "file-admin-key-0123456\n"),
		"ATP_ENCRYPTION_KEY_FILE": write("enc", key+"\r\n"),
		"ATP_JWT_SECRET_FILE":     write("jwt", strings.Repeat("s", 40)),
		"DATABASE_URL_FILE":       write("db", "postgres://u:secret@db/atp\n"),
	}
	cfg, _, err := parseConfig(nil, getenvFrom(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminKey != "file-admin-key-0123456" || cfg.EncryptionKey != secret(key) ||
		cfg.JWTSecret != secret(strings.Repeat("s", 40)) || cfg.DatabaseURL != "postgres://u:secret@db/atp" {
		t.Errorf("secrets from files not read exactly (trailing newline removed)")
	}
	if err := cfg.validateSecrets(); err != nil {
		t.Fatalf("validateSecrets: %v", err)
	}

	for name, env := range map[string]map[string]string{
		"missing file": {"ATP_JWT_SECRET_FILE": filepath.Join(dir, "nope")},
		"empty file":   {"ATP_JWT_SECRET_FILE": write("empty", "\n")},
	} {
		_, _, err := parseConfig(nil, getenvFrom(env), io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), "ATP_JWT_SECRET_FILE: ") {
			t.Errorf("%s: error = %v, want one naming ATP_JWT_SECRET_FILE", name, err)
		}
	}
}

func TestValidateSecrets(t *testing.T) {
	t.Parallel()
	key := oauth.EncodeKey(oauth.NewKey())
	short := oauth.EncodeKey(make([]byte, 16))
	jwt := strings.Repeat("j", 32)
	tests := []struct {
		name string
		cfg  config
		want string // "" = valid
	}{
		{"embedded, all set", config{EncryptionKey: secret(key), JWTSecret: secret(jwt)}, ""},
		{"postgres, all set", config{DatabaseURL: "postgres://u:p@h/db", EncryptionKey: secret(key), JWTSecret: secret(jwt)}, ""},
		{"keyword/value DSN", config{DatabaseURL: "host=db user=atp password=p", EncryptionKey: secret(key), JWTSecret: secret(jwt)}, ""},
		{"short encryption key", config{EncryptionKey: secret(short), JWTSecret: secret(jwt)}, "invalid ATP_ENCRYPTION_KEY: decodes to 16 bytes, want 32 (generate one with: openssl rand -base64 32)"},
		{"bad old key", config{EncryptionKey: secret(key), EncryptionKeyOld: secret(key + ",," + short), JWTSecret: secret(jwt)}, "invalid ATP_ENCRYPTION_KEY_OLD (key 3): decodes to 16 bytes, want 32 (generate one with: openssl rand -base64 32)"},
		{"short jwt", config{EncryptionKey: secret(key), JWTSecret: "short"}, "invalid ATP_JWT_SECRET: 5 bytes, want at least 32 (generate one with: openssl rand -base64 32)"},
		{"short admin key", config{EncryptionKey: secret(key), JWTSecret: secret(jwt), AdminKey: "abc"}, "invalid ATP_ADMIN_KEY: 3 characters, want 16 to 256"},
		{"mysql", config{DatabaseURL: "mysql://root:hunter2@db/atp", EncryptionKey: secret(key), JWTSecret: secret(jwt)}, `invalid DATABASE_URL: scheme "mysql"; want postgres://user:password@host:5432/db (unset it for the embedded database)`},
		{"postgres, nothing", config{DatabaseURL: "postgres://u:p@h/db"}, "DATABASE_URL is set but ATP_ENCRYPTION_KEY is missing: set ATP_ENCRYPTION_KEY or ATP_ENCRYPTION_KEY_FILE (generate one with: openssl rand -base64 32)\n" +
			"DATABASE_URL is set but ATP_JWT_SECRET is missing: set ATP_JWT_SECRET or ATP_JWT_SECRET_FILE (generate one with: openssl rand -base64 32)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.validateSecrets()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("validateSecrets() = %q\nwant %q", got, tt.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Error("the error repeats the database password")
			}
		})
	}
}

func TestSecretRedaction(t *testing.T) {
	t.Parallel()
	cfg := &config{Addr: ":1", AdminKey: "admin-secret-value", DatabaseURL: "postgres://u:pw-secret@h/db", EncryptionKey: "enc-secret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg, "key", cfg.EncryptionKey)
	out := buf.String() + fmt.Sprint(cfg.AdminKey) + fmt.Sprintf("%v %s", cfg.DatabaseURL, cfg.JWTSecret)
	for _, s := range []string{"admin-secret-value", "pw-secret", "enc-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q leaked: %s", s, out)
		}
	}
	if !strings.Contains(buf.String(), `"admin_key":"[redacted]"`) {
		t.Errorf("log does not show the admin key as redacted: %s", buf.String())
	}
}

func TestLoadDevSecrets(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.DiscardHandler)
	dir := filepath.Join(t.TempDir(), "data")

	first := &config{DataDir: dir}
	if err := loadDevSecrets(first, logger); err != nil {
		t.Fatal(err)
	}
	if err := first.validateSecrets(); err != nil {
		t.Fatalf("generated secrets do not validate: %v", err)
	}
	checkPrivate(t, dir, 0o700)
	checkPrivate(t, filepath.Join(dir, devSecretsFile), 0o600)

	again := &config{DataDir: dir}
	if err := loadDevSecrets(again, logger); err != nil {
		t.Fatal(err)
	}
	if again.EncryptionKey != first.EncryptionKey || again.JWTSecret != first.JWTSecret {
		t.Fatal("second load did not reuse the generated secrets")
	}

	// An encryption key from the environment wins; the generated one stays
	// available for decryption.
	envKey := oauth.EncodeKey(oauth.NewKey())
	override := &config{DataDir: dir, EncryptionKey: secret(envKey)}
	if err := loadDevSecrets(override, logger); err != nil {
		t.Fatal(err)
	}
	if err := override.validateSecrets(); err != nil {
		t.Fatal(err)
	}
	if override.EncryptionKey != secret(envKey) || len(override.oldKeys) != 1 {
		t.Fatalf("override: key %v, %d old keys; want the env key and the generated one as old", override.EncryptionKey == secret(envKey), len(override.oldKeys))
	}
	generated, _ := oauth.ParseKey(string(first.EncryptionKey))
	if !bytes.Equal(override.oldKeys[0], generated) {
		t.Fatal("the generated key is not among the old keys")
	}

	// A corrupt file is an error naming it, not a silent new key (which
	// would make every sealed value unreadable).
	if err := os.WriteFile(filepath.Join(dir, devSecretsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := loadDevSecrets(&config{DataDir: dir}, logger)
	if err == nil || !strings.Contains(err.Error(), devSecretsFile) {
		t.Fatalf("corrupt secrets file: %v", err)
	}
}
