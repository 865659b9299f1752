package monday_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// countingStore counts the reads of whole toolkits (with every tool) that
// go through it.
type countingStore struct {
	toolkit.Store
	mu           sync.Mutex
	finds, lists int
}

func (s *countingStore) FindToolkitByID(ctx context.Context, id string) (*toolkit.Toolkit, error) {
	s.mu.Lock()
	s.finds++
	s.mu.Unlock()
	return s.Store.FindToolkitByID(ctx, id)
}

func (s *countingStore) ListToolkits(ctx context.Context) ([]*toolkit.Toolkit, error) {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	return s.Store.ListToolkits(ctx)
}

// fullReads is how many whole toolkits were read so far (a ListToolkits
// counts as one per toolkit it could return, so that going back to it
// shows).
func (s *countingStore) fullReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finds + 100*s.lists
}

// instances returns two monday instances on one database: a, seeded, whose
// Service reads through a countingStore, and b, which only shares a's
// database (PostgreSQL: its own pool; SQLite: the same file).
var instances = map[string]func(t *testing.T) (a, b *testEnv, counted *countingStore){
	"sqlite": func(t *testing.T) (*testEnv, *testEnv, *countingStore) {
		counted := &countingStore{}
		a := newEnv(t, envOptions{wrap: counting(counted)})
		return a, newEnv(t, envOptions{db: a.db}), counted
	},
	"postgres": func(t *testing.T) (*testEnv, *testEnv, *countingStore) {
		url := storetest.PostgresURL(t)
		counted := &countingStore{}
		a := newEnv(t, envOptions{db: storetest.OpenPostgresURL(t, url), seed: true, wrap: counting(counted)})
		return a, newEnv(t, envOptions{db: storetest.OpenPostgresURL(t, url)}), counted
	},
}

func counting(c *countingStore) func(toolkit.Store) toolkit.Store {
	return func(st toolkit.Store) toolkit.Store {
		c.Store = st
		return c
	}
}

// editAdd replaces math.add through env's Service (PutToolkit bumps the
// revision) so that it returns a + b + bonus.
func editAdd(t *testing.T, env *testEnv, bonus string) {
	t.Helper()
	tk, err := env.svc.FindToolkit(t.Context(), "math")
	if err != nil {
		t.Fatal(err)
	}
	add, ok := tk.Tool("add")
	if !ok {
		t.Fatal("math has no add")
	}
	add.Executor.Code = "return {sum: input.a + input.b + " + bonus + "};"
	if _, _, err := env.svc.PutToolkit(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
}

// A toolkit edited, and a key revoked, through another instance are seen
// by the next request; while nothing changes, executions and discovery
// read toolkit summaries only, never whole toolkits.
func TestToolkitChangesAcrossInstances(t *testing.T) {
	t.Parallel()
	for name, open := range instances {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b, counted := open(t)
			s := a.initSession(t, a.key, nil)
			add := map[string]any{"code": "return (await api.math.add({a: 1, b: 2})).sum"}
			execute := func(want string) {
				t.Helper()
				r := a.do(t, "POST", "/api/execute", s.headers(), add)
				if res := r.result(t); res.Status != "completed" || string(res.Result) != want {
					t.Fatalf("execute = %s %s, want %s", res.Status, res.Result, want)
				}
				s = rotated(t, s, r)
			}

			execute("3") // loads math and secret once
			warm := counted.fullReads()
			for range 3 {
				execute("3")
				for _, req := range []struct{ method, path string }{
					{"GET", "/api/definitions"}, {"POST", "/api/search"}, {"POST", "/api/explore"},
				} {
					var body any
					if req.method == "POST" {
						body = map[string]any{"query": "add", "path": "/"}
					}
					if r := a.do(t, req.method, req.path, s.headers(), body); r.status != http.StatusOK {
						t.Fatalf("%s %s: %d %s", req.method, req.path, r.status, r.body)
					}
				}
			}
			if n := counted.fullReads() - warm; n != 0 {
				t.Errorf("%d whole-toolkit reads while no toolkit changed, want 0", n)
			}

			// Edited through b: a's next execution runs the new tool, having
			// loaded that one toolkit again.
			editAdd(t, b, "100")
			execute("103")
			if n := counted.fullReads() - warm; n != 1 {
				t.Errorf("%d whole-toolkit reads after one toolkit changed, want 1", n)
			}
			execute("103")

			// Revoked through b: refused by a on the next request.
			if err := b.svc.RevokeAPIKey(t.Context(), a.keyID); err != nil {
				t.Fatal(err)
			}
			r := a.do(t, "POST", "/api/execute", s.headers(), add)
			wantError(t, r, http.StatusForbidden, "Authentication error: Invalid token or client ID mismatch")
			if r.header.Get("X-ATP-Token") != "" {
				t.Error("a token was minted for a revoked key's session")
			}
		})
	}
}

// An execution keeps calling the toolkit version it started with, across
// a pause, when the toolkit changes meanwhile; the next execution sees
// the change.
func TestExecutionKeepsItsToolkitVersion(t *testing.T) {
	t.Parallel()
	for name, open := range instances {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b, _ := open(t)
			s := a.initSession(t, a.key, nil)
			r := a.do(t, "POST", "/api/execute", s.headers(), map[string]any{
				"code": `const before = await api.math.add({a: 1, b: 2});
					const said = await atp.llm.call({prompt: 'go on?'});
					const after = await api.math.add({a: 1, b: 2});
					return [before.sum, said, after.sum];`,
				"config": map[string]any{"clientServices": map[string]bool{"hasLLM": true}},
			})
			paused := r.result(t)
			if paused.Status != "paused" {
				t.Fatalf("execute: %+v", paused)
			}
			s = rotated(t, s, r)

			editAdd(t, b, "100")
			r = a.do(t, "POST", "/api/resume/"+paused.ExecutionID, s.headers(), map[string]any{"result": "yes"})
			if res := r.result(t); res.Status != "completed" || string(res.Result) != `[3,"yes",3]` {
				t.Errorf("resumed after the edit = %s %s, want [3,\"yes\",3] (the version it started with)", res.Status, res.Result)
			}
			s = rotated(t, s, r)
			r = a.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return (await api.math.add({a: 1, b: 2})).sum"})
			if res := r.result(t); string(res.Result) != "103" {
				t.Errorf("the next execution = %s, want 103 (the edited tool)", res.Result)
			}
		})
	}
}
