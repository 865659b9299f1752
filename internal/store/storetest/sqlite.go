package storetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/atp-server/atp-server/internal/store"
)

// OpenSQLite returns the embedded engine on a new, migrated file in
// tb.TempDir(), closed when the test ends.
func OpenSQLite(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.Context(), store.Options{
		DataDir: tb.TempDir(),
		Logger:  slog.New(slog.DiscardHandler),
		Migrate: true,
	})
	if err != nil {
		tb.Fatalf("storetest: opening SQLite: %v", err)
	}
	tb.Cleanup(func() { closeDB(tb, db) })
	return db
}

// OpenPostgres returns a store on a fresh, migrated database of its own
// (see PostgresURL), closed when the test ends.
func OpenPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	return OpenPostgresURL(tb, PostgresURL(tb))
}

// OpenPostgresURL opens another pool on a database from PostgresURL, as a
// second server instance sharing that database would. Call PostgresURL first
// in the same test, so the pool is closed before the database is dropped.
func OpenPostgresURL(tb testing.TB, url string) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.Context(), store.Options{
		DatabaseURL: url,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatalf("storetest: opening PostgreSQL: %v", err)
	}
	// Registered after PostgresURL's cleanup, so it runs before it: the
	// pool is closed before the database is dropped.
	tb.Cleanup(func() { closeDB(tb, db) })
	return db
}

func closeDB(tb testing.TB, db *store.DB) {
	if err := db.Close(); err != nil {
		tb.Errorf("storetest: closing the store: %v", err)
	}
}

// background is for cleanups, which run after tb.Context() is cancelled.
func background() context.Context { return context.Background() }
