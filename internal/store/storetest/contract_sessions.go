package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// sessionKeyStore is a store that keeps sessions, as *store.DB does on
// both engines.
type sessionKeyStore interface {
	toolkit.Store
	toolkit.SessionStore
}

// testFindSessionWithKey: the session and the key its KeyID names come
// back together, the key as FindAPIKeyByID returns it (revoked ones
// included), nil when the session is anonymous or the key row is missing.
func testFindSessionWithKey(t *testing.T, st toolkit.Store) {
	s, ok := st.(sessionKeyStore)
	if !ok {
		t.Fatalf("%T does not implement toolkit.SessionStore", st)
	}
	ctx := t.Context()
	live := sampleKey("key_live", toolkit.KeyClient)
	live.Toolkits = []string{"math"}
	live.OAuthRedirectURLs = []string{"https://app.example.com/done"}
	must(t, s.CreateAPIKey(ctx, live))
	must(t, s.TouchAPIKey(ctx, "key_live", time.Now()))
	must(t, s.CreateAPIKey(ctx, sampleKey("key_revoked", toolkit.KeyClient)))
	must(t, s.RevokeAPIKey(ctx, "key_revoked", time.Now().Add(-time.Minute)))
	// The contract has no way to delete a key; a session naming a key id
	// that is not stored is what a deleted key leaves behind.
	must(t, s.CreateAPIKey(ctx, sampleKey("key_other", toolkit.KeyClient)))

	exp := time.Now().Add(time.Hour)
	for _, c := range []struct {
		name, clientID, keyID string
		expires               time.Time
	}{
		{"live key", "cli_live", "key_live", exp},
		{"revoked key", "cli_revoked", "key_revoked", exp},
		{"deleted key", "cli_deleted", "key_gone", exp},
		{"anonymous", "cli_anon", "", exp},
		{"expired", "cli_expired", "key_live", time.Now().Add(-time.Minute)}, // the caller decides
	} {
		t.Run(c.name, func(t *testing.T) {
			want := &toolkit.Session{
				ID: c.clientID, KeyID: c.keyID, Data: json.RawMessage(`{"services":{"hasLLM":true}}`),
				CreatedAt: c.expires.Add(-2 * time.Hour), ExpiresAt: c.expires,
			}
			must(t, s.CreateSession(ctx, want))
			got, key, err := s.FindSessionWithKey(ctx, c.clientID)
			must(t, err)
			// jsonb keeps neither whitespace nor key order: Data is compared
			// as JSON.
			if d := cmp.Diff(want, got, cmpopts.IgnoreFields(toolkit.Session{}, "Data")); d != "" {
				t.Errorf("session mismatch (-want +got):\n%s", d)
			}
			var wantData, gotData any
			must(t, json.Unmarshal(want.Data, &wantData))
			must(t, json.Unmarshal(got.Data, &gotData))
			diff(t, "session data", wantData, gotData)

			var wantKey *toolkit.APIKey
			if c.keyID != "" {
				wantKey, err = s.FindAPIKeyByID(ctx, c.keyID)
				if toolkit.IsNotFound(err) {
					wantKey, err = nil, nil
				}
				must(t, err)
			}
			diff(t, "key", wantKey, key)
		})
	}

	got, key, err := s.FindSessionWithKey(ctx, "cli_unknown")
	wantKind(t, err, toolkit.KindNotFound, `"cli_unknown"`)
	if got != nil || key != nil {
		t.Errorf("unknown client: got %v, %v, want nil, nil", got, key)
	}
}
