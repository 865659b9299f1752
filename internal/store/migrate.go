package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/atp-server/atp-server/migrations"
)

// migrationLockTimeout bounds how long MigrateUp waits for another
// instance that is migrating the same PostgreSQL database (it holds an
// advisory lock meanwhile). It is generous because that instance may be
// running a long migration; giving up early would only crash-loop.
const migrationLockTimeout = 5 * time.Minute

// MigrateUp applies every pending migration. On PostgreSQL several
// instances may call it at once: golang-migrate serialises them with an
// advisory lock and the later ones find nothing to do. On SQLite it must
// not run from two processes at once (the embedded engine serves one
// instance). A dirty schema is ErrSchemaDirty, a schema from a newer
// binary ErrSchemaNewer; nothing is changed in either case.
func MigrateUp(ctx context.Context, o Options) error {
	m, err := newMigrator(ctx, o.withDefaults())
	if err != nil {
		return err
	}
	defer m.close()
	// Only the newer-schema case is checked here, before golang-migrate
	// takes its lock: a dirty flag seen now may be another instance's
	// migration in progress, so dirtiness is left to Up, which reads it
	// under the lock.
	v, _, ok, err := m.version()
	if err != nil {
		return err
	}
	if latest := latestVersion(m.engine); ok && v > latest {
		return newerError(m.engine, v, latest)
	}
	return m.run(ctx, m.m.Up)
}

// MigrateDown reverts every migration, dropping all tables and their data.
func MigrateDown(ctx context.Context, o Options) error {
	m, err := newMigrator(ctx, o.withDefaults())
	if err != nil {
		return err
	}
	defer m.close()
	return m.run(ctx, m.m.Down)
}

// MigrationVersion reports the applied schema version (0 when none is)
// and whether the last migration failed partway (dirty).
func MigrationVersion(ctx context.Context, o Options) (version uint, dirty bool, err error) {
	m, err := newMigrator(ctx, o.withDefaults())
	if err != nil {
		return 0, false, err
	}
	defer m.close()
	version, dirty, _, err = m.version()
	return version, dirty, err
}

type migrator struct {
	m      *migrate.Migrate
	engine string
	logger *slog.Logger
}

// newMigrator builds golang-migrate on a database/sql handle of our own
// (WithInstance) rather than from a URL: the pgx/v5 driver wants a pgx5://
// scheme, and rewriting an operator's DATABASE_URL is a source of bugs.
func newMigrator(ctx context.Context, o Options) (*migrator, error) {
	var (
		engine string
		src    fs.FS
		db     *sql.DB
	)
	if o.DatabaseURL == "" {
		path, err := o.sqlitePath()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: creating the data directory: %w", err)
		}
		engine, src = EngineSQLite, migrations.SQLite
		// No foreign_keys pragma: SQLite's recipe for changing a table
		// (create, copy, drop, rename) needs them off, and a migration
		// runs inside a transaction where they cannot be switched.
		db, err = sql.Open("sqlite", sqliteDSN(path, "_txlock=immediate"))
		if err != nil {
			return nil, fmt.Errorf("store: opening %s: %w", path, err)
		}
	} else {
		cfg, err := pgx.ParseConfig(o.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("store: DATABASE_URL: %w", err)
		}
		engine, src = EnginePostgres, migrations.Postgres
		db = stdlib.OpenDB(*cfg)
	}
	// The drivers' constructors ping without a context; this one lets ctx
	// bound the wait for an unreachable server.
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connecting to the %s database: %w", engine, err)
	}
	var (
		drv database.Driver
		err error
	)
	if engine == EnginePostgres {
		drv, err = migratepgx.WithInstance(db, &migratepgx.Config{})
	} else {
		drv, err = migratesqlite.WithInstance(db, &migratesqlite.Config{})
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: preparing %s migrations: %w", engine, err)
	}
	s, err := iofs.New(src, ".")
	if err != nil {
		_ = drv.Close()
		return nil, fmt.Errorf("store: reading embedded %s migrations: %w", engine, err)
	}
	m, err := migrate.NewWithInstance("iofs", s, engine, drv)
	if err != nil {
		_ = drv.Close()
		return nil, fmt.Errorf("store: preparing %s migrations: %w", engine, err)
	}
	m.LockTimeout = migrationLockTimeout
	m.Log = migrateLogger{o.Logger}
	return &migrator{m: m, engine: engine, logger: o.Logger}, nil
}

func (m *migrator) close() {
	// Closing releases the connection (and with it any advisory lock);
	// its errors say nothing about the migrations.
	_, _ = m.m.Close()
}

func (m *migrator) version() (version uint, dirty, ok bool, err error) {
	version, dirty, err = m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("store: reading the %s schema version: %w", m.engine, err)
	}
	return version, dirty, true, nil
}

// run runs Up or Down. Cancelling ctx stops after the migration in
// progress: golang-migrate cannot interrupt one, and stopping between
// migrations leaves the schema clean.
func (m *migrator) run(ctx context.Context, step func() error) error {
	stop := context.AfterFunc(ctx, func() {
		select {
		case m.m.GracefulStop <- true:
		default:
		}
	})
	defer stop()
	err := step()
	var dirty migrate.ErrDirty
	switch {
	case err == nil, errors.Is(err, migrate.ErrNoChange):
		if ctx.Err() != nil {
			return fmt.Errorf("store: migrating the %s database: stopped: %w", m.engine, ctx.Err())
		}
		return nil
	case errors.As(err, &dirty):
		return dirtyError(m.engine, uint(dirty.Version))
	default:
		return fmt.Errorf("store: migrating the %s database: %w", m.engine, err)
	}
}

func dirtyError(engine string, version uint) error {
	return fmt.Errorf("%w: %s migration %d failed partway; repair the schema by hand, "+
		"then set the row of schema_migrations to version %d with dirty = false (or to the version before it if you undid it)",
		ErrSchemaDirty, engine, version, version)
}

func newerError(engine string, version, latest uint) error {
	return fmt.Errorf("%w: the %s database is at version %d, this binary knows up to %d; run a newer atp-server",
		ErrSchemaNewer, engine, version, latest)
}

// latestVersion is the highest migration version embedded for engine.
func latestVersion(engine string) uint {
	src := migrations.SQLite
	if engine == EnginePostgres {
		src = migrations.Postgres
	}
	entries, err := fs.ReadDir(src, ".")
	if err != nil {
		panic("store: embedded migrations unreadable: " + err.Error()) // the build embeds them
	}
	var latest uint
	for _, e := range entries {
		if m, err := source.DefaultParse(e.Name()); err == nil && m.Version > latest {
			latest = m.Version
		}
	}
	return latest
}

// migrateLogger passes golang-migrate's progress ("1/u init (12ms)") to slog.
type migrateLogger struct{ l *slog.Logger }

func (l migrateLogger) Printf(format string, v ...any) {
	l.l.Info("migration", "step", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l migrateLogger) Verbose() bool { return false }
