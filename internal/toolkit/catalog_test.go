package toolkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// countingStore counts the toolkit reads that go through it.
type countingStore struct {
	toolkit.Store
	mu                      sync.Mutex
	finds, lists, summaries int
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

func (s *countingStore) ListToolkitSummaries(ctx context.Context) ([]*toolkit.ToolkitSummary, error) {
	s.mu.Lock()
	s.summaries++
	s.mu.Unlock()
	return s.Store.ListToolkitSummaries(ctx)
}

// reads returns the full-toolkit reads (FindToolkitByID, ListToolkits) and
// the summary lists so far.
func (s *countingStore) reads() (finds, lists, summaries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finds, s.lists, s.summaries
}

// echoRunner runs js tools by answering their code as a JSON string, so a
// result names the version of the tool that ran.
var echoRunner = toolkit.RunnerFunc(func(_ context.Context, call *toolkit.Call) (json.RawMessage, error) {
	return json.Marshal(call.Tool.Executor.Code)
})

func newEchoService(tb testing.TB, st toolkit.Store) *toolkit.Service {
	tb.Helper()
	c, err := oauth.NewCipher(make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return toolkit.NewService(toolkit.Config{Store: st, Sealer: c, Runners: map[string]toolkit.Runner{toolkit.ExecutorJS: echoRunner}})
}

// echoToolkit is toolkit id with one tool "run" whose code is code.
func echoToolkit(id, code string) *toolkit.Toolkit {
	return &toolkit.Toolkit{ID: id, Name: id, Tools: []toolkit.Tool{{
		Name: "run", Description: "Echo its code", InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"number"}}}`),
		Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: code},
	}}}
}

// twoInstances returns two stores on one database, as two server
// instances have: on PostgreSQL two pools, on SQLite one file.
var twoInstances = map[string]func(testing.TB) (toolkit.Store, toolkit.Store){
	"sqlite": func(tb testing.TB) (toolkit.Store, toolkit.Store) {
		db := storetest.OpenSQLite(tb)
		return db, db
	},
	"postgres": func(tb testing.TB) (toolkit.Store, toolkit.Store) {
		url := storetest.PostgresURL(tb)
		return storetest.OpenPostgresURL(tb, url), storetest.OpenPostgresURL(tb, url)
	},
}

// Catalog.Toolkits reads summaries only while nothing changes, and sees a
// change made through another instance in its next answer.
func TestCatalogToolkits(t *testing.T) {
	t.Parallel()
	for name, open := range twoInstances {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st1, st2 := open(t)
			counted := &countingStore{Store: st1}
			svc := newEchoService(t, counted)
			other := newEchoService(t, st2) // the other instance
			for _, id := range []string{"alpha", "beta", "gamma"} {
				if _, err := other.CreateToolkit(ctx, echoToolkit(id, id+"-v1")); err != nil {
					t.Fatal(err)
				}
			}
			all := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})
			scoped := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient, Toolkits: []string{"beta"}})
			cat := toolkit.NewCatalog(svc)

			code := func(tks []*toolkit.Toolkit) map[string]string {
				out := map[string]string{}
				for _, tk := range tks {
					out[tk.ID] = tk.Tools[0].Executor.Code
				}
				return out
			}
			want := func(key *toolkit.APIKey, codes map[string]string, loads int) []*toolkit.Toolkit {
				t.Helper()
				f0, l0, s0 := counted.reads()
				tks, err := cat.Toolkits(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				got := code(tks)
				if len(got) != len(codes) {
					t.Fatalf("Toolkits = %v, want %v", got, codes)
				}
				for id, c := range codes {
					if got[id] != c {
						t.Fatalf("Toolkits = %v, want %v", got, codes)
					}
				}
				for i := 1; i < len(tks); i++ {
					if tks[i-1].ID >= tks[i].ID {
						t.Errorf("Toolkits not ordered by id: %s before %s", tks[i-1].ID, tks[i].ID)
					}
				}
				f, l, s := counted.reads()
				if f-f0 != loads || l != l0 || s-s0 != 1 {
					t.Errorf("Toolkits read %d toolkits, %d full lists, %d summary lists; want %d, 0, 1", f-f0, l-l0, s-s0, loads)
				}
				return tks
			}

			first := want(all, map[string]string{"alpha": "alpha-v1", "beta": "beta-v1", "gamma": "gamma-v1"}, 3)
			// Nothing changed: one summaries read, no toolkit loaded, the same toolkits.
			again := want(all, map[string]string{"alpha": "alpha-v1", "beta": "beta-v1", "gamma": "gamma-v1"}, 0)
			for i := range first {
				if first[i] != again[i] {
					t.Errorf("%s was loaded again though unchanged", first[i].ID)
				}
			}
			want(scoped, map[string]string{"beta": "beta-v1"}, 0)

			// Changed, created and deleted through the other instance: seen at
			// once, and only what changed is loaded.
			if _, _, err := other.PutToolkit(ctx, echoToolkit("beta", "beta-v2")); err != nil {
				t.Fatal(err)
			}
			if _, err := other.CreateToolkit(ctx, echoToolkit("delta", "delta-v1")); err != nil {
				t.Fatal(err)
			}
			if err := other.DeleteToolkit(ctx, "gamma"); err != nil {
				t.Fatal(err)
			}
			want(all, map[string]string{"alpha": "alpha-v1", "beta": "beta-v2", "delta": "delta-v1"}, 2)
			want(scoped, map[string]string{"beta": "beta-v2"}, 0)
			want(all, map[string]string{"alpha": "alpha-v1", "beta": "beta-v2", "delta": "delta-v1"}, 0)
		})
	}
}

// CallToolkitTool runs the toolkit it is given, as CallTool runs the
// stored one, and reads nothing.
func TestCallToolkitTool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	counted := &countingStore{Store: storetest.OpenSQLite(t)}
	svc := newEchoService(t, counted)
	v1, err := svc.CreateToolkit(ctx, echoToolkit("wx", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := svc.FindToolkit(ctx, "wx")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutToolkit(ctx, echoToolkit("wx", "v2")); err != nil {
		t.Fatal(err)
	}
	key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})
	other := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient, Toolkits: []string{"news"}})
	args := json.RawMessage(`{"n":1}`)

	f0, _, _ := counted.reads()
	out, err := svc.CallToolkitTool(ctx, key, snapshot, "run", args, toolkit.CallOptions{})
	if err != nil || string(out) != `"v1"` {
		t.Errorf("CallToolkitTool(snapshot) = %s, %v; want the snapshot's tool", out, err)
	}
	if f, _, _ := counted.reads(); f != f0 {
		t.Errorf("CallToolkitTool read the toolkit %d times, want 0", f-f0)
	}
	out, err = svc.CallTool(ctx, key, "wx", "run", args, toolkit.CallOptions{})
	if err != nil || string(out) != `"v2"` {
		t.Errorf("CallTool = %s, %v; want the stored tool", out, err)
	}

	// The same rules as CallTool.
	for name, call := range map[string]func() (json.RawMessage, error){
		"CallTool": func() (json.RawMessage, error) {
			return svc.CallTool(ctx, other, "wx", "run", args, toolkit.CallOptions{})
		},
		"CallToolkitTool": func() (json.RawMessage, error) {
			return svc.CallToolkitTool(ctx, other, v1, "run", args, toolkit.CallOptions{})
		},
	} {
		_, err := call()
		if toolkit.KindOf(err) != toolkit.KindForbidden {
			t.Errorf("%s with a key limited to another toolkit: %v, want forbidden", name, err)
		}
	}
	_, err = svc.CallToolkitTool(ctx, key, snapshot, "nope", args, toolkit.CallOptions{})
	wantKind(t, err, toolkit.KindNotFound, "tool_not_found")
	_, err = svc.CallToolkitTool(ctx, key, snapshot, "run", json.RawMessage(`{"n":"one"}`), toolkit.CallOptions{})
	var terr *toolkit.ToolError
	if !errors.As(err, &terr) || terr.Code != toolkit.ToolErrInvalidArguments {
		t.Errorf("invalid arguments: %v, want a %s tool error", err, toolkit.ToolErrInvalidArguments)
	}
	if out, err := svc.CallToolkitTool(ctx, nil, snapshot, "run", nil, toolkit.CallOptions{}); err != nil || string(out) != `"v1"` {
		t.Errorf("server call without arguments: %s, %v", out, err)
	}
}
