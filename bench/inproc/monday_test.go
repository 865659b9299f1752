package inproc

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atp-server/atp-server/internal/api"
	"github.com/atp-server/atp-server/internal/execution"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/protocol/monday"
	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// BenchmarkMondayExecute measures one POST /api/execute of a verified
// session, as the npm client sends it, through the whole handler stack:
//
//   - return1: `return 1` (workload (c) of bench/monday/bench.mjs), one at
//     a time: ns/op is the server-side latency;
//   - toolcall: one js server tool call (workload (a)), one at a time;
//   - toolcall-c16: the same with 16 requests in flight (8 per CPU on
//     the 2-core bench machine): ns/op is the inverse of the server's
//     throughput without HTTP transport.
func BenchmarkMondayExecute(b *testing.B) {
	h := newServer(b)
	b.Run("return1", func(b *testing.B) {
		s := h.session(b)
		b.ReportAllocs()
		for b.Loop() {
			s.execute(b, "return 1", "1")
		}
	})
	b.Run("toolcall", func(b *testing.B) {
		s := h.session(b)
		b.ReportAllocs()
		for b.Loop() {
			s.execute(b, toolCode, "3")
		}
	})
	b.Run("toolcall-c16", func(b *testing.B) {
		const perCPU = 8
		sessions := make([]*session, 64) // more than RunParallel's goroutines
		for i := range sessions {
			sessions[i] = h.session(b)
		}
		var next atomic.Int32
		b.ReportAllocs()
		b.SetParallelism(perCPU)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			s := sessions[int(next.Add(1)-1)%len(sessions)]
			for pb.Next() {
				s.execute(b, toolCode, "3")
			}
		})
	})
}

const toolCode = "const r = await api.math.add({ a: 1, b: 2 });\nreturn r.sum;"

type server struct {
	handler http.Handler
	keys    []string
	n       atomic.Int32
}

// newServer wires the stack as cmd/atp-server's serve does, on an embedded
// database in a temp dir, with the toolkit math (js tool add) and four
// client keys (a key runs at most 16 executions at once).
func newServer(b *testing.B) *server {
	ctx := b.Context()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := store.Open(ctx, store.Options{DataDir: b.TempDir(), Logger: logger, Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	cipher, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		b.Fatal(err)
	}
	svc := toolkit.NewService(toolkit.Config{
		Store:  db,
		Sealer: cipher,
		Runners: map[string]toolkit.Runner{
			toolkit.ExecutorJS: toolkit.NewJSRunner(toolkit.JSOptions{Timeout: 30 * time.Second, MaxResultBytes: 1 << 20, Logger: logger}),
		},
		Logger: logger,
	})
	_, err = svc.CreateToolkit(ctx, &toolkit.Toolkit{
		ID: "math", Name: "Math", Description: "Arithmetic helpers",
		Tools: []toolkit.Tool{{
			Name: "add", Description: "Add two numbers",
			InputSchema: []byte(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`),
			Executor:    toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return {sum: input.a + input.b};"},
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	s := &server{}
	for range 4 {
		_, key, err := svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "bench", Kind: toolkit.KeyClient})
		if err != nil {
			b.Fatal(err)
		}
		s.keys = append(s.keys, key)
	}
	engine := execution.NewEngine(execution.Config{Logger: logger.With("surface", "monday")})
	b.Cleanup(engine.Close)
	mh, err := monday.NewHandler(monday.Config{
		Service:   svc,
		Sessions:  db,
		Engine:    engine,
		JWTSecret: []byte(strings.Repeat("k", 32)),
		Logger:    logger.With("surface", "monday"),
	})
	if err != nil {
		b.Fatal(err)
	}
	s.handler = api.NewHandler(api.Config{
		Service:  svc,
		Ready:    db.Ping,
		Logger:   logger,
		Registry: prometheus.NewRegistry(),
		Fallback: mh,
	})
	return s
}

type session struct {
	h                    http.Handler
	key, clientID, token string
	body                 map[string][]byte
}

// session inits a client session as the npm client does (POST /api/init
// with X-API-Key and an LLM provider).
func (s *server) session(b *testing.B) *session {
	key := s.keys[int(s.n.Add(1))%len(s.keys)]
	w := s.serve(key, "", "", "/api/init",
		[]byte(`{"clientInfo":{"name":"bench"},"tools":[],"services":{"hasLLM":true,"hasApproval":false,"hasEmbedding":false,"hasTools":false}}`))
	if w.Code != http.StatusOK {
		b.Fatalf("init: %d %s", w.Code, w.Body)
	}
	var r struct{ ClientID, Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		b.Fatal(err)
	}
	return &session{h: s.handler, key: key, clientID: r.ClientID, token: r.Token, body: map[string][]byte{}}
}

func (s *server) serve(key, clientID, token, path string, body []byte) *httptest.ResponseRecorder {
	return serve(s.handler, key, clientID, token, path, body)
}

func serve(h http.Handler, key, clientID, token, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+path, bytes.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	if clientID != "" {
		req.Header.Set("X-Client-ID", clientID)
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// execute runs code and checks that it completed with want (JSON).
func (s *session) execute(b *testing.B, code, want string) {
	body, ok := s.body[code]
	if !ok {
		body, _ = json.Marshal(map[string]any{"code": code, "config": map[string]any{
			"clientServices": map[string]bool{"hasLLM": true, "hasApproval": false, "hasEmbedding": false, "hasTools": false},
		}})
		s.body[code] = body
	}
	w := serve(s.h, s.key, s.clientID, s.token, "/api/execute", body)
	if t := w.Header().Get("X-ATP-Token"); t != "" {
		s.token = t
	}
	var r struct {
		Status string
		Result json.RawMessage
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &r) != nil || r.Status != "completed" || string(r.Result) != want {
		b.Fatalf("execute %q: %d %s", code, w.Code, w.Body)
	}
}
