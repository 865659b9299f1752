package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atp-server/atp-server/internal/store"
)

// EnvDatabaseURL names the variable that points the tests at an existing
// PostgreSQL server instead of a throwaway one.
const EnvDatabaseURL = "ATP_TEST_DATABASE_URL"

// PostgresURL returns the URL of a fresh database of its own for this test,
// migrated and empty, dropped when the test ends. It skips the test when
// PostgreSQL is unavailable, or fails it when CI is set.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	s := pgServerFor(tb)
	return s.createDatabase(tb, s.template)
}

// UnmigratedPostgresURL is PostgresURL without the schema: an empty
// database, for tests of the migrations themselves.
func UnmigratedPostgresURL(tb testing.TB) string {
	tb.Helper()
	s := pgServerFor(tb)
	return s.createDatabase(tb, "template0")
}

// Main runs the tests of a package, then stops the PostgreSQL server they
// started (if any) and removes its files. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := stopPGServer(); err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// The server is per test binary: tests share it, each with its own
// database. This state is global because a test binary has no other
// scope that outlives one test.
var (
	pgOnce sync.Once
	pg     *pgServer
	pgSkip string // why PostgreSQL is unavailable, when it is
	pgErr  error  // why starting it failed
)

type pgServer struct {
	base     url.URL // connection URL; each database replaces the path
	admin    *pgxpool.Pool
	template string

	// Set for a server this process started.
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

func pgServerFor(tb testing.TB) *pgServer {
	tb.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(background(), 2*time.Minute)
		defer cancel()
		pg, pgSkip, pgErr = startPGServer(ctx)
	})
	if pgSkip != "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("storetest: PostgreSQL is required when CI is set: %s", pgSkip)
		}
		tb.Skipf("storetest: skipping, %s", pgSkip)
	}
	if pgErr != nil {
		tb.Fatalf("storetest: PostgreSQL: %v", pgErr)
	}
	return pg
}

// startPGServer connects to ATP_TEST_DATABASE_URL or starts a server, and
// prepares the template database. skip is set, and err nil, when there is
// no PostgreSQL to be had at all.
func startPGServer(ctx context.Context) (s *pgServer, skip string, err error) {
	if raw := os.Getenv(EnvDatabaseURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, "", fmt.Errorf("%s must be a postgres:// URL", EnvDatabaseURL)
		}
		s = &pgServer{base: *u}
	} else if s, skip, err = startLocalServer(ctx); s == nil {
		return nil, skip, err
	}
	if err := s.prepare(ctx); err != nil {
		_ = s.stop()
		return nil, "", err
	}
	return s, "", nil
}

// prepare connects the admin pool and migrates the template database once.
func (s *pgServer) prepare(ctx context.Context) error {
	var err error
	if s.admin, err = pgxpool.New(ctx, s.base.String()); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	if err := s.admin.Ping(ctx); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	// A shared server may serve several test binaries at once (go test
	// ./...), so the template's name is this process's own.
	s.template = "atp_tmpl_" + randomSuffix()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+s.template+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("creating the template database: %w", err)
	}
	err = store.MigrateUp(ctx, store.Options{DatabaseURL: s.url(s.template)})
	if err != nil {
		return fmt.Errorf("migrating the template database: %w", err)
	}
	// No connections allowed: CREATE DATABASE … TEMPLATE fails while any
	// session is connected to the template.
	if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+s.template+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("locking the template database: %w", err)
	}
	return nil
}

func (s *pgServer) url(database string) string {
	u := s.base
	u.Path = "/" + database
	return u.String()
}

func (s *pgServer) createDatabase(tb testing.TB, template string) string {
	tb.Helper()
	name := "atp_test_" + randomSuffix()
	ctx, cancel := context.WithTimeout(background(), time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		tb.Fatalf("storetest: creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := s.dropDatabase(name); err != nil {
			tb.Errorf("storetest: %v", err)
		}
	})
	return s.url(name)
}

// dropDatabase drops a test database, first ending any session a test left
// open (a leaked pool must not keep databases around).
func (s *pgServer) dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(background(), time.Minute)
	defer cancel()
	_, err := s.admin.Exec(ctx,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	if err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

func stopPGServer() error {
	if pg == nil {
		return nil
	}
	err := pg.stop()
	pg = nil
	return err
}

// stop drops the template of a shared server, or stops the server this
// process started and removes its files.
func (s *pgServer) stop() error {
	var errs []error
	if s.admin != nil {
		if s.cmd == nil && s.template != "" {
			errs = append(errs, s.dropDatabase(s.template))
		}
		s.admin.Close()
	}
	if s.cmd != nil {
		// SIGINT is PostgreSQL's fast shutdown: it ends sessions and exits.
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", s.dir, err))
		}
	}
	return errors.Join(errs...)
}

// randomSuffix makes database names unique across the test binaries that
// may share one server; lowercase hex needs no quoting in SQL.
func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return strings.ToLower(hex.EncodeToString(b))
}
