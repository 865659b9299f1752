package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Options says which database to open and how.
type Options struct {
	// DatabaseURL selects PostgreSQL ("postgres://user:pass@host/db?…", or
	// anything pgxpool.ParseConfig accepts, such as pool_max_conns). Empty
	// selects the embedded SQLite file DataDir/atp.db.
	DatabaseURL string
	// DataDir holds the SQLite file; it is created (mode 0700) if missing.
	// Required when DatabaseURL is empty, unused otherwise.
	DataDir string
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// Migrate applies pending migrations before Open returns. Without it,
	// Open does not look at the schema; CheckSchema tells whether it is current.
	Migrate bool
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// sqlitePath returns the SQLite file of o. The driver reads everything
// after a '?' as options, so such a directory cannot be used.
func (o Options) sqlitePath() (string, error) {
	if o.DataDir == "" {
		return "", errors.New("store: DataDir is required for the embedded database (DATABASE_URL is unset)")
	}
	if strings.ContainsRune(o.DataDir, '?') {
		return "", fmt.Errorf("store: data directory %q: must not contain '?'", o.DataDir)
	}
	return filepath.Join(o.DataDir, "atp.db"), nil
}

// Engine names.
const (
	EnginePostgres = "postgres"
	EngineSQLite   = "sqlite"
)

// engine is one database implementation behind DB.
type engine interface {
	toolkit.Store
	name() string
	stats() PoolStats
	// schemaVersion reads what golang-migrate recorded; ok is false when no
	// migration was ever applied.
	schemaVersion(ctx context.Context) (version uint, dirty, ok bool, err error)
}

// DB is an open database. It implements toolkit.Store and is safe for
// concurrent use; Close releases it.
type DB struct {
	engine
}

var _ toolkit.Store = (*DB)(nil)

// Open opens the database o names, applying pending migrations first when
// o.Migrate is set. It fails if the database cannot be reached, so that a
// server does not start half-working.
func Open(ctx context.Context, o Options) (*DB, error) {
	o = o.withDefaults()
	if o.Migrate {
		if err := MigrateUp(ctx, o); err != nil {
			return nil, err
		}
	}
	var (
		e   engine
		err error
	)
	if o.DatabaseURL == "" {
		e, err = openSQLite(ctx, o)
	} else {
		e, err = openPostgres(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	return &DB{engine: e}, nil
}

// Engine reports which engine DB runs on: EnginePostgres or EngineSQLite.
func (db *DB) Engine() string { return db.name() }

// PoolStats describes the connection pool, for metrics. On SQLite it sums
// the writer connection and the reader pool, and AcquireDuration and
// EmptyAcquireCount count only the waits for a busy connection
// (database/sql does not time the others).
type PoolStats struct {
	MaxConns          int32
	TotalConns        int32
	IdleConns         int32
	AcquiredConns     int32
	AcquireCount      int64
	EmptyAcquireCount int64
	AcquireDuration   time.Duration
}

// Stats returns the pool's current figures.
func (db *DB) Stats() PoolStats { return db.stats() }

// Errors of CheckSchema and the migration functions; match with errors.Is.
var (
	// ErrSchemaDirty: a migration failed partway. The schema must be
	// repaired by hand before the server can use or migrate it.
	ErrSchemaDirty = errors.New("database schema is dirty")
	// ErrSchemaNewer: the database was migrated by a newer atp-server.
	ErrSchemaNewer = errors.New("database schema is newer than this atp-server")
	// ErrSchemaOutdated: migrations are pending (run `atp-server migrate up`).
	ErrSchemaOutdated = errors.New("database schema is not up to date")
)

// CheckSchema reports whether the schema is at the version this binary
// embeds, for readiness probes: nil if so, else an error wrapping
// ErrSchemaOutdated, ErrSchemaDirty or ErrSchemaNewer, or the database's
// failure (a *toolkit.Error).
func (db *DB) CheckSchema(ctx context.Context) error {
	v, dirty, ok, err := db.schemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := latestVersion(db.name())
	switch {
	case !ok:
		return fmt.Errorf("%w: no migration applied, want version %d", ErrSchemaOutdated, latest)
	case dirty:
		return dirtyError(db.name(), v)
	case v > latest:
		return newerError(db.name(), v, latest)
	case v < latest:
		return fmt.Errorf("%w: at version %d, want %d", ErrSchemaOutdated, v, latest)
	}
	return nil
}
