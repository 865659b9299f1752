package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/atp-server/atp-server/internal/oauth"
)

// config is the validated configuration of one process. run reads it once
// and passes plain values down; nothing else reads the environment.
type config struct {
	Addr                   string
	DataDir                string
	PublicURL              string
	HTTPAllowPrivate       bool
	OAuthRedirectAllowlist []string
	AllowAnonymous         bool
	MaxBodyBytes           int64
	LogLevel               slog.Level
	LogFormat              string // text|json
	Migrate                bool
	ShutdownTimeout        time.Duration
	ToolTimeout            time.Duration
	ToolMaxResultBytes     int
	HTTPMaxResponseBytes   int64

	// Secrets: from the environment or <NAME>_FILE only, never flags.
	DatabaseURL      secret
	AdminKey         secret
	EncryptionKey    secret // base64, as given; see encryptionKeys
	EncryptionKeyOld secret // comma-separated base64 keys
	JWTSecret        secret

	// Parsed from EncryptionKey and EncryptionKeyOld by validateSecrets.
	encryptionKey []byte
	oldKeys       [][]byte
}

// embedded reports whether the process uses the embedded database.
func (c *config) embedded() bool { return c.DatabaseURL == "" }

// LogValue lists the settings worth a start-up log line; secrets show only
// whether they are set.
func (c *config) LogValue() slog.Value {
	engine := "postgres"
	if c.embedded() {
		engine = "embedded"
	}
	attrs := []slog.Attr{
		slog.String("addr", c.Addr),
		slog.String("database", engine),
		slog.String("public_url", c.PublicURL),
		slog.Bool("migrate", c.Migrate),
		slog.Bool("http_allow_private", c.HTTPAllowPrivate),
		slog.Bool("allow_anonymous", c.AllowAnonymous),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Duration("tool_timeout", c.ToolTimeout),
		slog.Any("admin_key", c.AdminKey),
	}
	if c.embedded() {
		attrs = append(attrs, slog.String("data_dir", c.DataDir))
	}
	return slog.GroupValue(attrs...)
}

// secret is a configuration value that must never reach a log or an error
// message: both String and LogValue redact it.
type secret string

func (s secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

func (s secret) LogValue() slog.Value {
	if s == "" {
		return slog.StringValue("unset")
	}
	return slog.StringValue("[redacted]")
}

// setting is one flag with its environment variable. Its default comes from
// getenv when the variable is set, so the flag wins over the environment and
// the environment over the built-in default.
type setting struct {
	flag  string
	env   string
	def   string
	usage string
	bool  bool
	set   func(c *config, v string) error // parses v into c; the error says what is wanted
}

// settings lists every flag. Secrets are not here: see secretSettings.
func settings() []setting {
	return []setting{
		{flag: "addr", env: "ATP_ADDR", def: ":3333", usage: "listen address (host:port; port 0 picks a free port)",
			set: func(c *config, v string) error { c.Addr = v; return checkAddr(v) }},
		{flag: "data-dir", env: "ATP_DATA_DIR", def: "./atp-data", usage: "where the embedded database and generated development secrets live",
			set: func(c *config, v string) error {
				if v == "" {
					return errors.New("want a directory")
				}
				c.DataDir = v
				return nil
			}},
		{flag: "public-url", env: "ATP_PUBLIC_URL", def: "http://localhost:3333", usage: "externally reachable base URL; OAuth redirect URIs are {public-url}/oauth/callback",
			set: func(c *config, v string) error {
				u, err := parseHTTPURL(v)
				if err != nil {
					return err
				}
				if u.RawQuery != "" || u.Fragment != "" {
					return errors.New("want a base URL without query or fragment")
				}
				c.PublicURL = strings.TrimRight(u.String(), "/")
				return nil
			}},
		{flag: "http-allow-private", env: "ATP_HTTP_ALLOW_PRIVATE", def: "false", bool: true, usage: "let http tools and webhooks reach loopback, private, link-local and metadata addresses (SSRF guard off)",
			set: func(c *config, v string) (err error) { c.HTTPAllowPrivate, err = parseBool(v); return err }},
		{flag: "oauth-redirect-allowlist", env: "ATP_OAUTH_REDIRECT_ALLOWLIST", def: "", usage: "comma-separated URL prefixes a developer_redirect_url must start with; empty = any http(s) URL",
			set: func(c *config, v string) error {
				var list []string
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p == "" {
						continue
					}
					if _, err := parseHTTPURL(p); err != nil {
						return fmt.Errorf("entry %q: %w", p, err)
					}
					list = append(list, p)
				}
				c.OAuthRedirectAllowlist = list
				return nil
			}},
		{flag: "allow-anonymous", env: "ATP_ALLOW_ANONYMOUS", def: "false", bool: true, usage: "let monday clients init without an API key (development only)",
			set: func(c *config, v string) (err error) { c.AllowAnonymous, err = parseBool(v); return err }},
		{flag: "max-body-bytes", env: "ATP_MAX_BODY_BYTES", def: "10485760", usage: "largest request body accepted on any route; larger answers 413",
			set: func(c *config, v string) (err error) { c.MaxBodyBytes, err = parsePositive(v); return err }},
		{flag: "log-level", env: "ATP_LOG_LEVEL", def: "info", usage: "debug|info|warn|error",
			set: func(c *config, v string) error {
				switch strings.ToLower(v) {
				case "debug":
					c.LogLevel = slog.LevelDebug
				case "info":
					c.LogLevel = slog.LevelInfo
				case "warn":
					c.LogLevel = slog.LevelWarn
				case "error":
					c.LogLevel = slog.LevelError
				default:
					return errors.New("want debug|info|warn|error")
				}
				return nil
			}},
		{flag: "log-format", env: "ATP_LOG_FORMAT", def: "text", usage: "text|json",
			set: func(c *config, v string) error {
				switch v = strings.ToLower(v); v {
				case "text", "json":
					c.LogFormat = v
					return nil
				}
				return errors.New("want text|json")
			}},
		{flag: "migrate", env: "ATP_MIGRATE", def: "true", bool: true, usage: "apply pending database migrations at start-up; false = refuse to start unless the schema is current (migrated by atp-server migrate up)",
			set: func(c *config, v string) (err error) { c.Migrate, err = parseBool(v); return err }},
		{flag: "shutdown-timeout", env: "ATP_SHUTDOWN_TIMEOUT", def: "15s", usage: "how long a graceful shutdown waits for in-flight requests",
			set: func(c *config, v string) (err error) { c.ShutdownTimeout, err = parseDuration(v); return err }},
		{flag: "tool-timeout", env: "ATP_TOOL_TIMEOUT", def: "30s", usage: "default time limit of one js or http tool call (a tool's timeout_ms overrides it)",
			set: func(c *config, v string) (err error) { c.ToolTimeout, err = parseDuration(v); return err }},
		{flag: "tool-max-result-bytes", env: "ATP_TOOL_MAX_RESULT_BYTES", def: "1048576", usage: "largest JSON result a js tool may return",
			set: func(c *config, v string) error {
				n, err := parsePositive(v)
				if err == nil && n > 1<<30 {
					err = errors.New("want at most 1073741824")
				}
				c.ToolMaxResultBytes = int(n)
				return err
			}},
		{flag: "http-max-response-bytes", env: "ATP_HTTP_MAX_RESPONSE_BYTES", def: "5242880", usage: "largest upstream response body an http tool reads",
			set: func(c *config, v string) (err error) { c.HTTPMaxResponseBytes, err = parsePositive(v); return err }},
	}
}

// secretSetting is a value read from the environment or from the file named
// by <env>_FILE, never from a flag (flags show up in ps and shell history).
type secretSetting struct {
	env   string
	usage string
	field func(c *config) *secret
}

func secretSettings() []secretSetting {
	return []secretSetting{
		{env: "DATABASE_URL", usage: "postgres://user:password@host:5432/db → PostgreSQL (production, several instances). Unset → the embedded database under ATP_DATA_DIR (one instance)",
			field: func(c *config) *secret { return &c.DatabaseURL }},
		{env: "ATP_ADMIN_KEY", usage: "bootstrap admin key (16 to 256 characters). Unset → one is generated on first start and printed once to stderr",
			field: func(c *config) *secret { return &c.AdminKey }},
		{env: "ATP_ENCRYPTION_KEY", usage: "32 bytes, base64 (openssl rand -base64 32): encrypts OAuth tokens and secrets at rest. Required with DATABASE_URL; generated into ATP_DATA_DIR otherwise",
			field: func(c *config) *secret { return &c.EncryptionKey }},
		{env: "ATP_ENCRYPTION_KEY_OLD", usage: "previous encryption keys, comma-separated, still accepted for decryption (key rotation)",
			field: func(c *config) *secret { return &c.EncryptionKeyOld }},
		{env: "ATP_JWT_SECRET", usage: "at least 32 bytes: signs client session tokens. Required with DATABASE_URL; generated into ATP_DATA_DIR otherwise",
			field: func(c *config) *secret { return &c.JWTSecret }},
	}
}

// settingValue adapts a setting to flag.Value.
type settingValue struct {
	s   *setting
	cfg *config
	cur string
}

func (v *settingValue) String() string {
	if v == nil {
		return ""
	}
	return v.cur
}

func (v *settingValue) Set(s string) error {
	if err := v.s.set(v.cfg, s); err != nil {
		return err
	}
	v.cur = s
	return nil
}

func (v *settingValue) IsBoolFlag() bool { return v.s.bool }

// errHelp is returned by parseConfig after it printed the usage.
var errHelp = errors.New("help requested")

// parseConfig reads flags from args (without the program name) with defaults
// from getenv, and secrets from getenv and their files. It returns the
// configuration, the arguments left after the flags (a subcommand), or
// errHelp once the usage is printed to stdout. Secrets are read but not
// checked; validateSecrets does that for the commands that need them.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (*config, []string, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("atp-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	all := settings()
	envErrs := map[string]error{}
	for i := range all {
		s := &all[i]
		v := &settingValue{s: s, cfg: cfg}
		if err := v.Set(s.def); err != nil {
			panic(fmt.Sprintf("default of --%s: %v", s.flag, err)) // a programming error
		}
		if e := getenv(s.env); e != "" {
			if err := v.Set(e); err != nil {
				envErrs[s.flag] = fmt.Errorf("invalid %s %q: %w", s.env, e, err)
				_ = v.Set(s.def)
			}
		}
		fs.Var(v, s.flag, s.usage)
	}

	rest, err := parseFlags(fs, args, stdout, getenv)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for _, s := range all {
		if err := envErrs[s.flag]; err != nil && !explicit[s.flag] {
			errs = append(errs, err)
		}
	}
	for _, s := range secretSettings() {
		v, err := readSecret(getenv, s.env)
		if err != nil {
			errs = append(errs, err)
		}
		*s.field(cfg) = secret(v)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return cfg, rest, nil
}

// parseFlags parses flags before and after the subcommand words, so that
// both `atp-server --log-level debug migrate up` and
// `atp-server migrate up --log-level debug` work. It returns the subcommand
// words.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, getenv func(string) string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(stdout, getenv)
				return nil, errHelp
			}
			return nil, fmt.Errorf("%w (see atp-server --help)", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return words, nil
		}
		words = append(words, args[0])
		args = args[1:]
	}
}

// readSecret returns the value of the variable name, or the content of the
// file named by name_FILE (trailing newlines removed). Setting both is an
// error; errors name the variable, never the value.
func readSecret(getenv func(string) string, name string) (string, error) {
	v, file := getenv(name), getenv(name+"_FILE")
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("both %s and %s_FILE are set: set one", name, name)
	case file == "":
		return strings.TrimSpace(v), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	defer f.Close()
	const max = 64 << 10
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return "", fmt.Errorf("%s_FILE: reading %s: %w", name, file, err)
	}
	if len(b) > max {
		return "", fmt.Errorf("%s_FILE: %s is larger than %d bytes", name, file, max)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s_FILE: %s is empty", name, file)
	}
	return s, nil
}

// validateSecrets checks the secrets the server needs to serve. With
// DATABASE_URL set the encryption key and the JWT secret are required: the
// error names exactly the missing ones. In embedded mode, missing ones must
// have been filled from ATP_DATA_DIR by loadDevSecrets before this runs.
func (c *config) validateSecrets() error {
	var errs []error
	if !c.embedded() {
		if err := checkDatabaseURL(string(c.DatabaseURL)); err != nil {
			errs = append(errs, err)
		}
		for _, m := range []struct {
			name  string
			value secret
		}{{"ATP_ENCRYPTION_KEY", c.EncryptionKey}, {"ATP_JWT_SECRET", c.JWTSecret}} {
			if m.value == "" {
				errs = append(errs, fmt.Errorf("DATABASE_URL is set but %s is missing: set %s or %s_FILE (generate one with: openssl rand -base64 32)", m.name, m.name, m.name))
			}
		}
	}
	if c.EncryptionKey != "" {
		k, err := oauth.ParseKey(string(c.EncryptionKey))
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid ATP_ENCRYPTION_KEY: %w", err))
		}
		c.encryptionKey = k
	}
	c.oldKeys = c.oldKeys[:0]
	if c.EncryptionKeyOld != "" {
		for i, s := range strings.Split(string(c.EncryptionKeyOld), ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			k, err := oauth.ParseKey(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("invalid ATP_ENCRYPTION_KEY_OLD (key %d): %w", i+1, err))
				continue
			}
			c.oldKeys = append(c.oldKeys, k)
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, fmt.Errorf("invalid ATP_JWT_SECRET: %d bytes, want at least 32 (generate one with: openssl rand -base64 32)", len(c.JWTSecret)))
	}
	if c.AdminKey != "" && (len(c.AdminKey) < 16 || len(c.AdminKey) > 256) {
		errs = append(errs, fmt.Errorf("invalid ATP_ADMIN_KEY: %d characters, want 16 to 256", len(c.AdminKey)))
	}
	return errors.Join(errs...)
}

// checkDatabaseURL accepts a postgres:// or postgresql:// URL, or a libpq
// keyword/value string. The error never repeats the value: it may hold a
// password.
func checkDatabaseURL(s string) error {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return errors.New("invalid DATABASE_URL: not a URL; want postgres://user:password@host:5432/db")
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return fmt.Errorf("invalid DATABASE_URL: scheme %q; want postgres://user:password@host:5432/db (unset it for the embedded database)", u.Scheme)
		}
		return nil
	}
	if !strings.Contains(s, "=") {
		return errors.New("invalid DATABASE_URL: want postgres://user:password@host:5432/db or libpq keyword=value pairs")
	}
	return nil
}

func checkAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, e.g. :3333 or 127.0.0.1:3333")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("want a numeric port between 0 and 65535")
	}
	return nil
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want an absolute http:// or https:// URL")
	}
	return u, nil
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errors.New("want true|false")
	}
	return b, nil
}

func parsePositive(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive number of bytes")
	}
	return n, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration such as 500ms, 15s or 2m")
	}
	return d, nil
}

// printUsage writes the help: commands, flags with their variables and
// effective defaults, and the secret variables.
func printUsage(w io.Writer, getenv func(string) string) {
	var b strings.Builder
	b.WriteString(`Usage: atp-server [flags] [command]

atp-server serves the Agent Tool Protocol surfaces and the admin API.

Commands:
  (none)                   serve (applies pending migrations first unless --migrate=false)
  migrate up|down|version  apply pending migrations, revert all of them (drops every table
                           and its data), or print the schema version; then exit
  keys rotate              re-seal every secret and token under the current ATP_ENCRYPTION_KEY
                           (opening old ones with ATP_ENCRYPTION_KEY_OLD), print the counts, exit;
                           idempotent, safe while servers run
  healthcheck              GET /healthz of the server at ATP_ADDR on this host; exit 1 unless it answers 200
  version                  print the version and exit

Flags (each falls back to the environment variable shown; the flag wins):
`)
	for _, s := range settings() {
		name := "--" + s.flag
		if !s.bool {
			name += " value"
		}
		def := s.def
		if e := getenv(s.env); e != "" {
			def = e + " (from " + s.env + ")"
		}
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "  %-36s %s\n  %-36s %s (default %s)\n", name, s.env, "", s.usage, def)
	}
	b.WriteString(`  --help                               print this help

Secrets (environment only, never flags; NAME_FILE may name a file holding the value instead):
`)
	for _, s := range secretSettings() {
		fmt.Fprintf(&b, "  %-36s %s\n", s.env, s.usage)
	}
	b.WriteString(`
Without DATABASE_URL the missing encryption key and JWT secret are generated into
ATP_DATA_DIR/secrets.json (mode 0600) on first start and reused afterwards.
`)
	_, _ = io.WriteString(w, b.String())
}
