package toolkit_test

import (
	"context"
	"sync"
	"testing"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func newService(tb testing.TB, st toolkit.Store) *toolkit.Service {
	tb.Helper()
	c, err := oauth.NewCipher(make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return toolkit.NewService(toolkit.Config{Store: st, Sealer: c})
}

// Several instances starting together on one empty PostgreSQL must agree on
// one generated admin key: exactly one prints it, and that one works.
func TestEnsureAdminKeyConcurrentStart(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	const instances = 8
	services := make([]*toolkit.Service, instances)
	for i := range services {
		services[i] = newService(t, storetest.OpenPostgresURL(t, url))
		if err := listKeys(t, services[i]); err != nil {
			t.Fatal(err)
		}
	}
	secrets := make([]string, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s, err := services[i].EnsureAdminKey(t.Context(), "")
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			secrets[i] = s
		}()
	}
	close(start)
	wg.Wait()
	var printed []string
	for _, s := range secrets {
		if s != "" {
			printed = append(printed, s)
		}
	}
	if len(printed) != 1 {
		t.Fatalf("%d instances printed an admin key, want exactly 1", len(printed))
	}
	svc := newService(t, storetest.OpenPostgresURL(t, url))
	k, err := svc.Authenticate(t.Context(), printed[0])
	if err != nil || k.Kind != toolkit.KeyAdmin {
		t.Fatalf("printed key does not authenticate as admin: %v, %+v", err, k)
	}
}

func TestEnsureAdminKey(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) toolkit.Store{
		"sqlite":   func(tb testing.TB) toolkit.Store { return storetest.OpenSQLite(tb) },
		"postgres": func(tb testing.TB) toolkit.Store { return storetest.OpenPostgres(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc := newService(t, open(t))

			first, err := svc.EnsureAdminKey(ctx, "")
			if err != nil || first == "" {
				t.Fatalf("first start: %q, %v; want a generated key", first, err)
			}
			again, err := svc.EnsureAdminKey(ctx, "")
			if err != nil || again != "" {
				t.Fatalf("second start: %q, %v; want nothing generated", again, err)
			}
			if _, err := svc.Authenticate(ctx, first); err != nil {
				t.Fatalf("generated key: %v", err)
			}

			// Revoking the last admin key and restarting gives a new one.
			if err := svc.RevokeAPIKey(ctx, toolkit.BootstrapAdminKeyID); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Authenticate(ctx, first); toolkit.KindOf(err) != toolkit.KindUnauthenticated {
				t.Fatalf("revoked key: err = %v, want unauthenticated", err)
			}
			next, err := svc.EnsureAdminKey(ctx, "")
			if err != nil || next == "" || next == first {
				t.Fatalf("after revoking the last admin key: %q, %v; want a new key", next, err)
			}

			// ATP_ADMIN_KEY replaces the bootstrap key.
			const configured = "my-configured-admin-key-0123456789"
			if s, err := svc.EnsureAdminKey(ctx, configured); err != nil || s != "" {
				t.Fatalf("configured: %q, %v", s, err)
			}
			if _, err := svc.Authenticate(ctx, configured); err != nil {
				t.Fatalf("configured key: %v", err)
			}
			if _, err := svc.Authenticate(ctx, next); err == nil {
				t.Fatal("the generated key still works after ATP_ADMIN_KEY replaced it")
			}
		})
	}
}

// listKeys warms a pool's connection so that the instances race on the
// insert, not on connecting.
func listKeys(tb testing.TB, s *toolkit.Service) error {
	_, err := s.ListAPIKeys(tb.Context())
	return err
}
