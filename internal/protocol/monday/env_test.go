package monday_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/execution"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/protocol/monday"
	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// clock is the handler's clock, moved by the tests (sessions, tokens).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is one monday surface on loopback over a real store, service
// and engine, with toolkits "math" and "secret" and two client keys.
type testEnv struct {
	db      *store.DB
	svc     *toolkit.Service
	engine  *execution.Engine
	h       *monday.Handler
	srv     *httptest.Server
	clock   *clock
	key     string // may use every toolkit
	keyID   string
	limited string // may use "math" only
	secret  []byte
}

type envOptions struct {
	db             *store.DB // nil: a new SQLite store (seeded)
	seed           bool      // seed db even when given
	allowAnonymous bool
	prefix         string
	next           http.Handler
	clock          *clock
	secret         []byte
	// wrap, when set, wraps the toolkit.Store the env's Service uses (the
	// handler's sessions still go to db directly).
	wrap func(toolkit.Store) toolkit.Store
	// sessions, when set, wraps the SessionStore the handler is given.
	sessions func(toolkit.SessionStore) toolkit.SessionStore
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

func newEnv(t *testing.T, o envOptions) *testEnv {
	t.Helper()
	e := &testEnv{db: o.db, clock: o.clock, secret: o.secret}
	if e.db == nil {
		e.db = storetest.OpenSQLite(t)
		o.seed = true
	}
	if e.clock == nil {
		e.clock = newClock()
	}
	if e.secret == nil {
		e.secret = testSecret
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cipher, err := oauth.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	var st toolkit.Store = e.db
	if o.wrap != nil {
		st = o.wrap(st)
	}
	e.svc = toolkit.NewService(toolkit.Config{
		Store:   st,
		Sealer:  cipher,
		Runners: map[string]toolkit.Runner{toolkit.ExecutorJS: toolkit.NewJSRunner(toolkit.JSOptions{Timeout: 5 * time.Second})},
		Logger:  logger,
	})
	if o.seed {
		e.seed(t)
	}
	e.engine = execution.NewEngine(execution.Config{Logger: logger})
	t.Cleanup(e.engine.Close)
	var sessions toolkit.SessionStore = e.db
	if o.sessions != nil {
		sessions = o.sessions(sessions)
	}
	e.h, err = monday.NewHandler(monday.Config{
		Service:        e.svc,
		Sessions:       sessions,
		Engine:         e.engine,
		JWTSecret:      e.secret,
		AllowAnonymous: o.allowAnonymous,
		Prefix:         o.prefix,
		Next:           o.next,
		Logger:         logger,
		Now:            e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *testEnv) seed(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	obj := func(props string, required ...string) json.RawMessage {
		r, _ := json.Marshal(required)
		if required == nil {
			r = []byte("[]")
		}
		return json.RawMessage(`{"type":"object","properties":` + props + `,"required":` + string(r) + `}`)
	}
	for _, tk := range []*toolkit.Toolkit{
		{ID: "math", Name: "Math", Description: "Arithmetic helpers", Tools: []toolkit.Tool{
			{Name: "add", Description: "Add two numbers", InputSchema: obj(`{"a":{"type":"number"},"b":{"type":"number"}}`, "a", "b"),
				Annotations: &toolkit.Annotations{OperationType: "read"},
				Executor:    toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return {sum: input.a + input.b};"}},
			{Name: "whoami", Description: "The end user the call acts for", InputSchema: obj(`{}`),
				Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return ctx.external_user_id;"}},
			{Name: "wipe", Description: "Delete all numbers", InputSchema: obj(`{}`),
				Annotations: &toolkit.Annotations{OperationType: "destructive"},
				Executor:    toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return 'wiped';"}},
		}},
		{ID: "secret", Name: "Secret", Description: "Not for everyone", Tools: []toolkit.Tool{
			{Name: "reveal", Description: "Reveal it", InputSchema: obj(`{}`),
				Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return 7;"}},
		}},
	} {
		if _, err := e.svc.CreateToolkit(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	k, secret, err := e.svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "full", Kind: toolkit.KeyClient})
	if err != nil {
		t.Fatal(err)
	}
	e.key, e.keyID = secret, k.ID
	_, e.limited, err = e.svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "limited", Kind: toolkit.KeyClient, Toolkits: []string{"math"}})
	if err != nil {
		t.Fatal(err)
	}
}

// response is one answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

type hdr map[string]string

// do sends a request to the env; body is JSON-encoded unless it is a string.
func (e *testEnv) do(t *testing.T, method, path string, h hdr, body any) *response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // as the client sends it, GETs included
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

// session is an initialised client.
type session struct {
	ClientID      string `json:"clientId"`
	Token         string `json:"token"`
	ExpiresAt     int64  `json:"expiresAt"`
	TokenRotateAt int64  `json:"tokenRotateAt"`
}

func (s *session) headers() hdr {
	return hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + s.Token}
}

// initSession opens a session with key and the given init body (a default
// one with every service and one client tool when nil).
func (e *testEnv) initSession(t *testing.T, key string, body any) *session {
	t.Helper()
	if body == nil {
		body = map[string]any{
			"clientInfo": map[string]any{"name": "go-test"},
			"tools": []any{map[string]any{
				"name": "getLocation", "description": "Where the user is",
				"inputSchema": map[string]any{"type": "object"},
			}},
			"services": map[string]bool{"hasLLM": true, "hasApproval": true, "hasEmbedding": true, "hasTools": true},
		}
	}
	h := hdr{}
	if key != "" {
		h["X-API-Key"] = key
	}
	r := e.do(t, "POST", "/api/init", h, body)
	if r.status != http.StatusOK {
		t.Fatalf("init: %d %s", r.status, r.body)
	}
	var s session
	r.json(t, &s)
	return &s
}

// wantError checks the protocol's error envelope.
func wantError(t *testing.T, r *response, status int, fragment string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct {
		Error     *string `json:"error"`
		RequestID *string `json:"requestId"`
	}
	r.json(t, &body)
	if body.Error == nil || body.RequestID == nil || *body.RequestID == "" {
		t.Fatalf("body %s is not {error, requestId}", r.body)
	}
	if !strings.Contains(*body.Error, fragment) {
		t.Errorf("error %q lacks %q", *body.Error, fragment)
	}
}

// execResult is the part of an ExecutionResult the tests read.
type execResult struct {
	ExecutionID string          `json:"executionId"`
	Status      string          `json:"status"`
	Result      json.RawMessage `json:"result"`
	Error       *struct {
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
	Stats          map[string]float64 `json:"stats"`
	NeedsCallback  *callback          `json:"needsCallback"`
	NeedsCallbacks []callback         `json:"needsCallbacks"`
}

type callback struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Operation string          `json:"operation"`
	Payload   json.RawMessage `json:"payload"`
}

func (r *response) result(t *testing.T) *execResult {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", r.status, r.body)
	}
	var res execResult
	r.json(t, &res)
	if res.ExecutionID == "" || res.Status == "" || len(res.Stats) != 4 {
		t.Fatalf("not an ExecutionResult: %s", r.body)
	}
	return &res
}

// rotated returns the session with the token of r's X-ATP-Token.
func rotated(t *testing.T, s *session, r *response) *session {
	t.Helper()
	tok := r.header.Get("X-ATP-Token")
	if tok == "" {
		t.Fatalf("no X-ATP-Token on a verified caller's answer (%d %s)", r.status, r.body)
	}
	return &session{ClientID: s.ClientID, Token: tok}
}
