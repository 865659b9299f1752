package monday_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// countingSessions counts the session reads of the handler's SessionStore.
type countingSessions struct {
	toolkit.SessionStore
	finds, joined atomic.Int64
}

func (c *countingSessions) FindSession(ctx context.Context, id string) (*toolkit.Session, error) {
	c.finds.Add(1)
	return c.SessionStore.FindSession(ctx, id)
}

func (c *countingSessions) FindSessionWithKey(ctx context.Context, id string) (*toolkit.Session, *toolkit.APIKey, error) {
	c.joined.Add(1)
	return c.SessionStore.FindSessionWithKey(ctx, id)
}

// A verified request reads its session and key in one query; a live key
// works, a key revoked (here through another instance) is refused with
// 403 at once, an unknown session is refused.
func TestSessionKeyReads(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			counted := &countingSessions{}
			wrap := func(s toolkit.SessionStore) toolkit.SessionStore {
				counted.SessionStore = s
				return counted
			}
			var a, b *testEnv
			if engine == "sqlite" {
				a = newEnv(t, envOptions{sessions: wrap})
				b = newEnv(t, envOptions{db: a.db})
			} else {
				url := storetest.PostgresURL(t)
				a = newEnv(t, envOptions{db: storetest.OpenPostgresURL(t, url), seed: true, sessions: wrap})
				b = newEnv(t, envOptions{db: storetest.OpenPostgresURL(t, url)})
			}
			s := a.initSession(t, a.key, nil)
			body := map[string]any{"code": "return 1"}
			r := a.do(t, "POST", "/api/execute", s.headers(), body)
			if res := r.result(t); res.Status != "completed" {
				t.Fatalf("execute with a live key: %+v", res)
			}
			s = rotated(t, s, r)
			if counted.joined.Load() == 0 || counted.finds.Load() != 0 {
				t.Errorf("%d FindSessionWithKey, %d FindSession; want only the first",
					counted.joined.Load(), counted.finds.Load())
			}

			if err := b.svc.RevokeAPIKey(t.Context(), a.keyID); err != nil {
				t.Fatal(err)
			}
			r = a.do(t, "POST", "/api/execute", s.headers(), body)
			wantError(t, r, http.StatusForbidden, "Authentication error: Invalid token or client ID mismatch")
			if r.header.Get("X-ATP-Token") != "" {
				t.Error("a token was minted for a revoked key's session")
			}
			wantError(t, a.do(t, "GET", "/api/definitions", s.headers(), nil), http.StatusForbidden, "")

			if err := a.db.DeleteSession(t.Context(), s.ClientID); err != nil {
				t.Fatal(err)
			}
			wantError(t, a.do(t, "POST", "/api/execute", s.headers(), body), http.StatusForbidden,
				"Authentication error: Invalid token or client ID mismatch")
		})
	}
}
