package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/atp-server/atp-server/internal/api"
	"github.com/atp-server/atp-server/internal/execution"
	"github.com/atp-server/atp-server/internal/httptool"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/protocol/chatatp"
	"github.com/atp-server/atp-server/internal/protocol/monday"
	"github.com/atp-server/atp-server/internal/remote"
	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/toolkit"
	"github.com/atp-server/atp-server/internal/webhook"
)

// version is set at build time with -ldflags "-X main.version=…"; without it
// the module version from the build info is used.
var version = ""

// HTTP server limits. WriteTimeout and ReadTimeout stay 0: a server-wide
// deadline would cut long polls, server-sent events and slow tool calls
// (net/http cancels a request's context when its connection's read deadline
// passes). Header time is bounded by readHeaderTimeout, body size by
// ATP_MAX_BODY_BYTES, and each surface sets its own per-request deadlines
// where it needs them.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	healthcheckWait   = 3 * time.Second
)

// run is the whole program: it parses the configuration, then serves or runs
// a subcommand. It returns when ctx is cancelled (after a graceful shutdown)
// or on a fatal error; --help returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		args = args[1:] // the program name
	}
	cfg, words, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)

	if len(words) == 0 {
		return serve(ctx, cfg, logger, stderr)
	}
	switch cmd, rest := words[0], words[1:]; cmd {
	case "migrate":
		if len(rest) != 1 {
			return errors.New("usage: atp-server migrate up|down|version")
		}
		return migrate(ctx, cfg, logger, rest[0], stdout)
	case "keys":
		if len(rest) != 1 || rest[0] != "rotate" {
			return errors.New("usage: atp-server keys rotate")
		}
		return rotateKeys(ctx, cfg, logger, stdout)
	case "healthcheck":
		if len(rest) != 0 {
			return errors.New("usage: atp-server healthcheck")
		}
		return healthcheck(ctx, cfg.Addr, stdout)
	case "version":
		if len(rest) != 0 {
			return errors.New("usage: atp-server version")
		}
		fmt.Fprintln(stdout, "atp-server", versionString(), runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
		return nil
	case "help":
		printUsage(stdout, getenv)
		return nil
	default:
		return fmt.Errorf("unknown command %q (see atp-server --help)", cmd)
	}
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve builds the server in order (secrets, cipher, store, service, admin
// key, metrics, HTTP), serves until ctx is done, then shuts down gracefully:
// in-flight requests get up to ATP_SHUTDOWN_TIMEOUT to finish, then the store
// closes.
func serve(ctx context.Context, cfg *config, logger *slog.Logger, stderr io.Writer) error {
	if cfg.embedded() {
		if err := loadDevSecrets(cfg, logger); err != nil {
			return err
		}
	}
	if err := cfg.validateSecrets(); err != nil {
		return err
	}
	cipher, err := oauth.NewCipher(cfg.encryptionKey, cfg.oldKeys...)
	if err != nil {
		return fmt.Errorf("ATP_ENCRYPTION_KEY: %w", err)
	}
	logger.Info("starting", "version", versionString(), "config", cfg, "encryption", cipher)

	db, err := store.Open(ctx, storeOptions(cfg, logger, cfg.Migrate))
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer db.Close()
	if !cfg.Migrate {
		// Another process migrates (`atp-server migrate up`, e.g. a
		// Kubernetes init container). Serving an older schema would fail
		// request by request, so refuse to start instead. A newer schema is
		// what a rolling update looks like to the old replicas: serve on.
		err := db.CheckSchema(ctx)
		switch {
		case errors.Is(err, store.ErrSchemaNewer):
			logger.Warn("the database schema is newer than this binary", "err", err)
		case err != nil:
			return fmt.Errorf("--migrate=false, but %w: run atp-server migrate up first", err)
		}
	}

	logger.Info("database ready", "engine", db.Engine())

	// The hub dispatches calls of remote tools to the toolkit processes
	// connected to this instance (ChatATP ToolKitClient, WebSocket or inbox).
	hub := remote.NewHub(remote.Options{Logger: logger})
	defer hub.Close()

	// Webhook deliveries run in the background, through the SSRF-guarded
	// transport; they need only the store and the cipher to find webhooks
	// and sign, so a Service of their own breaks the cycle service → tokens
	// (oauth) → events (webhooks) → service. They drain at shutdown, after
	// the HTTP server (below); the deferred Close covers early returns.
	webhooks := webhook.New(webhook.Config{
		Hooks:     toolkit.NewService(toolkit.Config{Store: db, Sealer: cipher, Logger: logger}),
		Client:    &http.Client{Transport: httptool.NewTransport(cfg.HTTPAllowPrivate)},
		Logger:    logger.With("component", "webhooks"),
		UserAgent: "atp-server/" + versionString(),
	})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = webhooks.Close(ctx)
	}()
	// The end-user OAuth flow; it is also the token source of oauth2 tools.
	oauthManager := oauth.NewManager(oauth.Config{
		Store:             db,
		Sealer:            cipher,
		PublicURL:         cfg.PublicURL,
		RedirectAllowlist: cfg.OAuthRedirectAllowlist,
		Events:            webhooks,
		Logger:            logger.With("component", "oauth"),
	})

	svc := toolkit.NewService(toolkit.Config{
		Store:  db,
		Sealer: cipher,
		Tokens: oauthManager,
		Runners: map[string]toolkit.Runner{
			toolkit.ExecutorJS: toolkit.NewJSRunner(toolkit.JSOptions{
				Timeout:        cfg.ToolTimeout,
				MaxResultBytes: cfg.ToolMaxResultBytes,
				Logger:         logger,
			}),
			toolkit.ExecutorHTTP: httptool.New(httptool.Options{
				AllowPrivate:     cfg.HTTPAllowPrivate,
				Timeout:          cfg.ToolTimeout,
				MaxResponseBytes: cfg.HTTPMaxResponseBytes,
				UserAgent:        "atp-server/" + versionString(),
			}),
			toolkit.ExecutorRemote: hub,
		},
		Logger: logger,
	})
	generated, err := svc.EnsureAdminKey(ctx, string(cfg.AdminKey))
	if err != nil {
		return fmt.Errorf("setting up the admin key: %w", err)
	}
	if generated != "" {
		printAdminKey(stderr, generated)
	}

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		store.NewPoolCollector(db),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}

	// The monday surface runs model-written code in the pausable engine; the
	// engine ends its live executions after the HTTP server has shut down.
	engine := execution.NewEngine(execution.Config{Logger: logger.With("surface", "monday")})
	defer engine.Close()
	mondayHandler, err := monday.NewHandler(monday.Config{
		Service:        svc,
		Sessions:       db,
		Engine:         engine,
		JWTSecret:      []byte(cfg.JWTSecret),
		AllowAnonymous: cfg.AllowAnonymous,
		Logger:         logger.With("surface", "monday"),
		MaxBodyBytes:   cfg.MaxBodyBytes,
	})
	if err != nil {
		return err
	}
	chat := chatatp.NewHandler(chatatp.Config{
		Service:      svc,
		Hub:          hub,
		OAuth:        oauthManager,
		Logger:       logger.With("surface", "chatatp"),
		MaxBodyBytes: cfg.MaxBodyBytes,
	})

	handler := api.NewHandler(api.Config{
		Service:      svc,
		OAuth:        oauthManager,
		Ready:        db.Ping, // the schema is current: Open migrated it or CheckSchema said so
		Logger:       logger,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Registry:     reg,
		PublicURL:    cfg.PublicURL,
		// ChatATP routes on protocol segments anywhere in a path (any
		// base_url prefix works), so it gets the first pick of what the
		// admin and native routes do not serve; monday takes /api/*.
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if chatatp.Match(r.URL.Path) {
				chat.ServeHTTP(w, r)
				return
			}
			mondayHandler.ServeHTTP(w, r)
		}),
	})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	// Requests run under baseCtx, which outlives ctx: a signal must not cancel
	// in-flight calls. It is cancelled once the shutdown is over (or timed
	// out), to stop whatever is still running.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// http.Server.Shutdown does not wait for hijacked connections: the
	// ChatATP surface drains its WebSockets and inbox polls itself, in
	// parallel, and then the hub fails any remote call still waiting.
	chatDone := make(chan error, 1)
	go func() {
		err := chat.Shutdown(shutdownCtx)
		hub.Close()
		chatDone <- err
	}()
	err = srv.Shutdown(shutdownCtx)
	if cerr := <-chatDone; cerr != nil {
		logger.Warn("closing ChatATP connections", "err", cerr)
	}
	// Events of the last requests are queued now: deliver them (and the
	// retries waiting) within what is left of the shutdown bound.
	if werr := webhooks.Close(shutdownCtx); werr != nil {
		logger.Warn("webhook deliveries still pending at shutdown were dropped", "err", werr)
	}
	cancelBase()
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", cfg.ShutdownTimeout, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func storeOptions(cfg *config, logger *slog.Logger, migrate bool) store.Options {
	return store.Options{
		DatabaseURL: string(cfg.DatabaseURL),
		DataDir:     cfg.DataDir,
		Logger:      logger,
		Migrate:     migrate,
	}
}

// printAdminKey shows a generated admin key once, with how to replace it.
func printAdminKey(w io.Writer, key string) {
	fmt.Fprintf(w, `
================================================================================
atp-server generated the bootstrap admin key. It is shown only this once:

    %s

Send it as "Authorization: Bearer <key>" to /admin/v1/*. Only its hash is stored.
To rotate it: create a new admin key with
    POST /admin/v1/api-keys {"name":"admin","kind":"admin"}
then revoke this one with
    DELETE /admin/v1/api-keys/%s
or set ATP_ADMIN_KEY (or ATP_ADMIN_KEY_FILE) and restart.
================================================================================

`, key, toolkit.BootstrapAdminKeyID)
}

// migrate runs `atp-server migrate up|down|version`.
func migrate(ctx context.Context, cfg *config, logger *slog.Logger, action string, stdout io.Writer) error {
	if cfg.embedded() {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("creating ATP_DATA_DIR: %w", err)
		}
	} else if err := checkDatabaseURL(string(cfg.DatabaseURL)); err != nil {
		return err
	}
	opts := storeOptions(cfg, logger, false)
	switch action {
	case "up":
		if err := store.MigrateUp(ctx, opts); err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
	case "down":
		if err := store.MigrateDown(ctx, opts); err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
	case "version":
	default:
		return fmt.Errorf("unknown migrate action %q: want up, down or version", action)
	}
	v, dirty, err := store.MigrationVersion(ctx, opts)
	if err != nil {
		return fmt.Errorf("migrate %s: reading the version: %w", action, err)
	}
	switch {
	case dirty:
		fmt.Fprintf(stdout, "version %d (dirty: a migration failed half-way; fix the schema by hand, then migrate again)\n", v)
	case v == 0:
		fmt.Fprintln(stdout, "version 0 (no migrations applied)")
	default:
		fmt.Fprintf(stdout, "version %d\n", v)
	}
	return nil
}

// healthcheck asks the server on this host for /healthz: the probe of
// container images that have no curl. Any answer but 200 is an error.
func healthcheck(ctx context.Context, addr string, stdout io.Writer) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: ATP_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckWait)
	defer cancel()
	u := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}} // never through HTTP_PROXY
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", u, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
