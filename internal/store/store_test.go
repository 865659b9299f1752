package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func TestContractSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunContract(t, func(tb testing.TB) toolkit.Store { return storetest.OpenSQLite(tb) })
}

func TestContractPostgres(t *testing.T) {
	t.Parallel()
	storetest.RunContract(t, func(tb testing.TB) toolkit.Store { return storetest.OpenPostgres(tb) })
}

// engines gives the tests below Options for an empty, unmigrated database
// of each engine.
var engines = []struct {
	name    string
	options func(testing.TB) store.Options
}{
	{store.EngineSQLite, func(tb testing.TB) store.Options {
		return store.Options{DataDir: filepath.Join(tb.TempDir(), "data")}
	}},
	{store.EnginePostgres, func(tb testing.TB) store.Options {
		return store.Options{DatabaseURL: storetest.UnmigratedPostgresURL(tb)}
	}},
}

// latest is the schema version the embedded migrations reach.
const latest = 4

func TestMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			o := e.options(t)
			wantVersion(t, o, 0, false)

			must(t, store.MigrateUp(ctx, o))
			wantVersion(t, o, latest, false)
			must(t, store.MigrateUp(ctx, o)) // nothing to do is no error
			wantVersion(t, o, latest, false)
			useStore(t, o)

			must(t, store.MigrateDown(ctx, o))
			wantVersion(t, o, 0, false)
			db, err := store.Open(ctx, o)
			must(t, err)
			if err := db.CheckSchema(ctx); !errors.Is(err, store.ErrSchemaOutdated) {
				t.Errorf("CheckSchema after down = %v, want ErrSchemaOutdated", err)
			}
			// The tables are gone, not just the version.
			_, err = db.ListToolkits(ctx)
			if toolkit.KindOf(err) != toolkit.KindInternal {
				t.Errorf("ListToolkits after down = %v, want an internal error (no table)", err)
			}
			must(t, db.Close())

			must(t, store.MigrateUp(ctx, o))
			wantVersion(t, o, latest, false)
			useStore(t, o)
		})
	}
}

func wantVersion(t *testing.T, o store.Options, want uint, wantDirty bool) {
	t.Helper()
	v, dirty, err := store.MigrationVersion(t.Context(), o)
	must(t, err)
	if v != want || dirty != wantDirty {
		t.Fatalf("MigrationVersion = %d dirty=%v, want %d dirty=%v", v, dirty, want, wantDirty)
	}
}

// useStore opens o without migrating and checks that the schema works.
func useStore(t *testing.T, o store.Options) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, o)
	must(t, err)
	defer db.Close()
	must(t, db.CheckSchema(ctx))
	must(t, db.SetSetting(ctx, "k", "v"))
	if _, err := db.GetSetting(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateUpConcurrentPostgres: instances that start together must not
// trip over each other; the advisory lock lets one migrate and the others
// find the work done.
func TestMigrateUpConcurrentPostgres(t *testing.T) {
	t.Parallel()
	o := store.Options{DatabaseURL: storetest.UnmigratedPostgresURL(t)}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if err := store.MigrateUp(t.Context(), o); err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	wantVersion(t, o, latest, false)
	useStore(t, o)
}

// TestOpenMigrates: Open with Migrate gives a working store on a new
// database, creating the SQLite data directory privately.
func TestOpenMigrates(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			o := e.options(t)
			o.Migrate = true
			db, err := store.Open(ctx, o)
			must(t, err)
			defer db.Close()
			if db.Engine() != e.name {
				t.Errorf("Engine() = %q, want %q", db.Engine(), e.name)
			}
			must(t, db.CheckSchema(ctx))
			must(t, db.Ping(ctx))
			if o.DataDir != "" {
				fi, err := os.Stat(o.DataDir)
				must(t, err)
				if fi.Mode().Perm() != 0o700 {
					t.Errorf("data directory mode = %v, want 0700", fi.Mode().Perm())
				}
				// WAL lets readers run beside the writer; the mode is kept in the file.
				raw, err := sql.Open("sqlite", filepath.Join(o.DataDir, "atp.db"))
				must(t, err)
				defer raw.Close()
				var mode string
				must(t, raw.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
				if mode != "wal" {
					t.Errorf("journal_mode = %q, want wal", mode)
				}
			}
		})
	}
}

// TestCheckSchemaUnmigrated: Open without Migrate does not touch the
// schema, and CheckSchema says it is missing.
func TestCheckSchemaUnmigrated(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			db, err := store.Open(t.Context(), e.options(t))
			must(t, err)
			defer db.Close()
			if err := db.CheckSchema(t.Context()); !errors.Is(err, store.ErrSchemaOutdated) {
				t.Errorf("CheckSchema = %v, want ErrSchemaOutdated", err)
			}
		})
	}
}

// TestMigrateRefusesBadSchemas: a dirty schema, or one from a newer
// binary, stops MigrateUp with an error that says what to do, and is
// reported by CheckSchema.
func TestMigrateRefusesBadSchemas(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		for _, tc := range []struct {
			name    string
			version int
			dirty   bool
			want    error
			says    string
		}{
			{"dirty", 2, true, store.ErrSchemaDirty, "repair"},
			{"newer", 99, false, store.ErrSchemaNewer, "newer atp-server"},
		} {
			t.Run(e.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				o := e.options(t)
				must(t, store.MigrateUp(ctx, o))
				setSchemaVersion(t, o, tc.version, tc.dirty)

				err := store.MigrateUp(ctx, o)
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("MigrateUp = %v, want %v saying %q", err, tc.want, tc.says)
				}
				db, err := store.Open(ctx, o)
				must(t, err)
				defer db.Close()
				if err := db.CheckSchema(ctx); !errors.Is(err, tc.want) {
					t.Errorf("CheckSchema = %v, want %v", err, tc.want)
				}
				if _, err := store.Open(ctx, store.Options{DatabaseURL: o.DatabaseURL, DataDir: o.DataDir, Migrate: true}); !errors.Is(err, tc.want) {
					t.Errorf("Open with Migrate = %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// setSchemaVersion rewrites golang-migrate's bookkeeping, as a failed or
// newer migration would have left it.
func setSchemaVersion(t *testing.T, o store.Options, version int, dirty bool) {
	t.Helper()
	ctx := t.Context()
	if o.DatabaseURL != "" {
		conn, err := pgx.Connect(ctx, o.DatabaseURL)
		must(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, `UPDATE schema_migrations SET version = $1, dirty = $2`, version, dirty)
		must(t, err)
		return
	}
	db, err := sql.Open("sqlite", filepath.Join(o.DataDir, "atp.db"))
	must(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `UPDATE schema_migrations SET version = ?, dirty = ?`, version, dirty)
	must(t, err)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		o    store.Options
		says string
	}{
		{"no data dir", store.Options{}, "DataDir is required"},
		{"question mark", store.Options{DataDir: filepath.Join(t.TempDir(), "a?b")}, "must not contain"},
		{"bad url", store.Options{DatabaseURL: "postgres://%zz"}, "DATABASE_URL"},
		// Port 1 on loopback refuses at once: no server there.
		{"unreachable", store.Options{DatabaseURL: "postgres://u@127.0.0.1:1/db?connect_timeout=5"}, "connecting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(ctx, tc.o)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Open = %v, want it to say %q", err, tc.says)
			}
			if _, _, err := store.MigrationVersion(ctx, tc.o); err == nil {
				t.Error("MigrationVersion succeeded")
			}
		})
	}
}

// TestPoolCollector: every figure of Stats() is exported, with the engine.
func TestPoolCollector(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) *store.DB{
		store.EngineSQLite:   storetest.OpenSQLite,
		store.EnginePostgres: storetest.OpenPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			must(t, db.Ping(t.Context()))
			if s := db.Stats(); s.MaxConns < 1 || s.AcquireCount < 1 {
				t.Errorf("Stats() = %+v, want a pool that was used", s)
			}
			reg := prometheus.NewPedanticRegistry()
			must(t, reg.Register(store.NewPoolCollector(db)))
			families, err := reg.Gather()
			must(t, err)
			got := map[string]bool{}
			for _, f := range families {
				got[f.GetName()] = true
				for _, m := range f.GetMetric() {
					if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "engine" || l[0].GetValue() != name {
						t.Errorf("%s: labels %v, want engine=%q", f.GetName(), l, name)
					}
				}
			}
			for _, want := range []string{
				"atp_db_pool_max_connections", "atp_db_pool_connections", "atp_db_pool_idle_connections",
				"atp_db_pool_acquired_connections", "atp_db_pool_acquires_total", "atp_db_pool_empty_acquires_total",
				"atp_db_pool_acquire_duration_seconds_total",
			} {
				if !got[want] {
					t.Errorf("metric %s missing; got %v", want, got)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestConnectionLockAcrossInstancesPostgres: two instances sharing one
// PostgreSQL database take turns under WithConnectionLock: no update is
// lost and no two functions for one connection run at once.
func TestConnectionLockAcrossInstancesPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := storetest.PostgresURL(t)
	a, b := storetest.OpenPostgresURL(t, url), storetest.OpenPostgresURL(t, url)
	must(t, a.CreatePlatform(ctx, &toolkit.Platform{
		ID: "hubspot", Name: "HubSpot", AuthURL: "https://a.example.com", TokenURL: "https://t.example.com",
		ClientID: "c", SealedClientSecret: "v1.x",
	}))
	c := &toolkit.Connection{PlatformID: "hubspot", ExternalUserID: "u1", Status: toolkit.ConnActive, Scope: "0"}
	must(t, a.UpsertConnection(ctx, c))

	const perInstance = 10
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for _, db := range []*store.DB{a, b} {
		for range perInstance {
			wg.Go(func() {
				_, err := db.WithConnectionLock(ctx, c.ID, func(in *toolkit.Connection) (*toolkit.Connection, error) {
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					defer inside.Add(-1)
					n, err := strconv.Atoi(in.Scope)
					if err != nil {
						return nil, err
					}
					next := *in
					next.Scope = strconv.Itoa(n + 1)
					return &next, nil
				})
				if err != nil {
					t.Errorf("WithConnectionLock: %v", err)
				}
			})
		}
	}
	wg.Wait()
	got, err := b.FindConnectionByID(ctx, c.ID)
	must(t, err)
	if got.Scope != strconv.Itoa(2*perInstance) {
		t.Errorf("counter = %s after %d increments from two instances (lost updates)", got.Scope, 2*perInstance)
	}
	if overlaps.Load() != 0 {
		t.Errorf("%d functions overlapped across instances", overlaps.Load())
	}
}
