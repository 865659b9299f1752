package store_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// sessionEngines opens a migrated store of each engine.
var sessionEngines = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{store.EngineSQLite, storetest.OpenSQLite},
	{store.EnginePostgres, storetest.OpenPostgres},
}

func TestSessions(t *testing.T) {
	t.Parallel()
	for _, e := range sessionEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			for name, fn := range map[string]func(*testing.T, *store.DB){
				"round trip":         testSessionRoundTrip,
				"invalid":            testSessionInvalid,
				"extend":             testSessionExtend,
				"delete":             testSessionDelete,
				"delete expired":     testSessionDeleteExpired,
				"concurrent extends": testSessionConcurrentExtend,
			} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fn(t, e.open(t))
				})
			}
		})
	}
}

func sampleSession(id string, expires time.Time) *toolkit.Session {
	return &toolkit.Session{
		ID:        id,
		KeyID:     "key_1",
		Data:      json.RawMessage(`{"tools":[{"name":"getLocation"}],"services":{"hasLLM":true}}`),
		CreatedAt: expires.Add(-time.Hour),
		ExpiresAt: expires,
	}
}

// wantKind fails unless err is a *toolkit.Error of kind.
func wantKind(t *testing.T, err error, kind toolkit.Kind) {
	t.Helper()
	if err == nil || toolkit.KindOf(err) != kind {
		t.Fatalf("err = %v, want kind %s", err, kind)
	}
}

// sameJSON compares JSON semantically: PostgreSQL's jsonb does not keep
// whitespace or key order.
func sameJSON(t *testing.T, want, got json.RawMessage) {
	t.Helper()
	var w, g any
	must(t, json.Unmarshal(want, &w))
	must(t, json.Unmarshal(got, &g))
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("data (-want +got):\n%s", d)
	}
}

func testSessionRoundTrip(t *testing.T, db *store.DB) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour).Add(123456 * time.Nanosecond)
	s := sampleSession("cli_a", exp)
	must(t, db.CreateSession(ctx, s))
	if !s.ExpiresAt.Equal(exp.UTC().Truncate(time.Microsecond)) {
		t.Errorf("ExpiresAt after create = %v, want it normalised from %v", s.ExpiresAt, exp)
	}
	got, err := db.FindSession(ctx, "cli_a")
	must(t, err)
	if got.ID != s.ID || got.KeyID != s.KeyID || !got.CreatedAt.Equal(s.CreatedAt) || !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Errorf("FindSession = %+v, want %+v", got, s)
	}
	if got.ExpiresAt.Location() != time.UTC {
		t.Errorf("ExpiresAt is in %v, want UTC", got.ExpiresAt.Location())
	}
	sameJSON(t, s.Data, got.Data)

	wantKind(t, db.CreateSession(ctx, sampleSession("cli_a", exp)), toolkit.KindConflict)
	_, err = db.FindSession(ctx, "cli_missing")
	wantKind(t, err, toolkit.KindNotFound)

	// An anonymous session has no key.
	anon := sampleSession("cli_anon", exp)
	anon.KeyID = ""
	must(t, db.CreateSession(ctx, anon))
	got, err = db.FindSession(ctx, "cli_anon")
	must(t, err)
	if got.KeyID != "" {
		t.Errorf("anonymous KeyID = %q, want empty", got.KeyID)
	}
}

func testSessionInvalid(t *testing.T, db *store.DB) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for _, data := range []string{"", "[]", "{", "null"} {
		s := sampleSession("cli_bad", exp)
		s.Data = json.RawMessage(data)
		wantKind(t, db.CreateSession(ctx, s), toolkit.KindInvalid)
	}
	wantKind(t, db.CreateSession(ctx, sampleSession("", exp)), toolkit.KindInvalid)
	_, err := db.FindSession(ctx, "cli_bad")
	wantKind(t, err, toolkit.KindNotFound)
}

func testSessionExtend(t *testing.T, db *store.DB) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	must(t, db.CreateSession(ctx, sampleSession("cli_x", now.Add(time.Minute))))

	must(t, db.ExtendSession(ctx, "cli_x", now, now.Add(time.Hour)))
	got, err := db.FindSession(ctx, "cli_x")
	must(t, err)
	if !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("ExpiresAt after extend = %v, want %v", got.ExpiresAt, now.Add(time.Hour))
	}
	// An earlier expiry never wins: another instance may have slid it further.
	must(t, db.ExtendSession(ctx, "cli_x", now, now.Add(30*time.Minute)))
	got, err = db.FindSession(ctx, "cli_x")
	must(t, err)
	if !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("ExpiresAt after a shorter extend = %v, want it kept at %v", got.ExpiresAt, now.Add(time.Hour))
	}
	// An expired session cannot be brought back.
	wantKind(t, db.ExtendSession(ctx, "cli_x", now.Add(2*time.Hour), now.Add(3*time.Hour)), toolkit.KindNotFound)
	got, err = db.FindSession(ctx, "cli_x")
	must(t, err)
	if !got.Expired(now.Add(2 * time.Hour)) {
		t.Errorf("session live at +2h after a refused extend: expires %v", got.ExpiresAt)
	}
	wantKind(t, db.ExtendSession(ctx, "cli_missing", now, now.Add(time.Hour)), toolkit.KindNotFound)
}

func testSessionDelete(t *testing.T, db *store.DB) {
	ctx := t.Context()
	must(t, db.CreateSession(ctx, sampleSession("cli_d", time.Now().Add(time.Hour))))
	must(t, db.DeleteSession(ctx, "cli_d"))
	_, err := db.FindSession(ctx, "cli_d")
	wantKind(t, err, toolkit.KindNotFound)
	wantKind(t, db.DeleteSession(ctx, "cli_d"), toolkit.KindNotFound)
}

func testSessionDeleteExpired(t *testing.T, db *store.DB) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	must(t, db.CreateSession(ctx, sampleSession("cli_old", now.Add(-time.Second))))
	must(t, db.CreateSession(ctx, sampleSession("cli_edge", now)))
	must(t, db.CreateSession(ctx, sampleSession("cli_live", now.Add(time.Second))))
	n, err := db.DeleteExpiredSessions(ctx, now)
	must(t, err)
	if n != 2 {
		t.Errorf("DeleteExpiredSessions removed %d, want 2", n)
	}
	if _, err := db.FindSession(ctx, "cli_live"); err != nil {
		t.Errorf("live session: %v", err)
	}
	for _, id := range []string{"cli_old", "cli_edge"} {
		_, err := db.FindSession(ctx, id)
		wantKind(t, err, toolkit.KindNotFound)
	}
}

// testSessionConcurrentExtend: instances sliding one session at once end
// with the latest expiry, whatever order their writes land in.
func testSessionConcurrentExtend(t *testing.T, db *store.DB) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	must(t, db.CreateSession(ctx, sampleSession("cli_c", now.Add(time.Minute))))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := db.ExtendSession(ctx, "cli_c", now, now.Add(time.Duration(i+1)*time.Hour)); err != nil {
				t.Errorf("extend %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := db.FindSession(ctx, "cli_c")
	must(t, err)
	if !got.ExpiresAt.Equal(now.Add(8 * time.Hour)) {
		t.Errorf("ExpiresAt = %v, want the latest, %v", got.ExpiresAt, now.Add(8*time.Hour))
	}
}
