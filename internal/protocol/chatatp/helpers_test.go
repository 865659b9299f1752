package chatatp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/httptool"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
	"github.com/atp-server/atp-server/internal/protocol/chatatp"
	"github.com/atp-server/atp-server/internal/remote"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// ---- Python's json.dumps, which the SDK uses for every frame and body ----

// kv is one member of a pyObj, in order (Python dicts keep insertion order).
type kv struct {
	k string
	v any
}

// pyObj is a dict as the SDK builds it.
type pyObj []kv

// py renders v as json.dumps(v) does by default: ", " and ": " separators,
// ensure_ascii (non-ASCII as \uXXXX, surrogate pairs past U+FFFF).
func py(v any) string {
	var b strings.Builder
	pyWrite(&b, v)
	return b.String()
}

func pyWrite(b *strings.Builder, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case int:
		b.WriteString(strconv.Itoa(t))
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e16 {
			b.WriteString(strconv.FormatFloat(t, 'f', 1, 64))
		} else {
			b.WriteString(strconv.FormatFloat(t, 'g', -1, 64))
		}
	case string:
		pyString(b, t)
	case []string:
		l := make([]any, len(t))
		for i, s := range t {
			l[i] = s
		}
		pyWrite(b, l)
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			pyWrite(b, e)
		}
		b.WriteByte(']')
	case pyObj:
		b.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			pyString(b, m.k)
			b.WriteString(": ")
			pyWrite(b, m.v)
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("py: %T", v))
	}
}

func pyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r <= 0xffff):
			fmt.Fprintf(b, `\u%04x`, r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// uuid4 is what the SDK puts in request ids.
func uuid4() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// contextFrame is get_toolkit_context as the SDK 0.2.5 sends it.
func contextFrame(key, toolkitID, requestID, provider, prompt string) string {
	return py(pyObj{
		{"type", "get_toolkit_context"}, {"toolkit_id", toolkitID}, {"request_id", requestID},
		{"provider", provider}, {"user_prompt", prompt}, {"api_key", key},
	})
}

// taskFrame is task_request as the SDK 0.2.5 sends it; token may be nil.
func taskFrame(key, toolkitID, requestID, function string, params pyObj, token any) string {
	if params == nil {
		params = pyObj{}
	}
	return py(pyObj{
		{"type", "task_request"}, {"request_id", requestID}, {"toolkit_id", toolkitID},
		{"auth_token", token}, {"user_prompt", nil}, {"api_key", key},
		{"payload", pyObj{{"function", function}, {"parameters", params}, {"auth_token", token}, {"tool_call_id", "call_" + requestID}}},
	})
}

// ---- the server under test ----

type env struct {
	srv      *httptest.Server
	svc      *toolkit.Service
	hub      *remote.Hub
	h        *chatatp.Handler
	upstream *httptest.Server
	oauth    *oauth.Manager // with options.provider

	client string // secret of a client key for every toolkit
	scoped string // secret of a client key for "math" only
	tkKey  string // secret of a toolkit key for "weather"
	admin  string // secret of an admin key
	keyIDs map[string]string
	logs   *logBuffer
}

type options struct {
	cfg   chatatp.Config
	hub   remote.Options
	store toolkit.Store
	// peer, when set, makes this a second instance on peer's database:
	// nothing is seeded and peer's keys are used.
	peer *env
	// provider, when set, is the OAuth provider of platform "acme", and
	// the handler serves the OAuth routes with a Manager on the store.
	provider *oauthtest.Provider
}

// newEnv starts a server on a fresh SQLite store (or opts.store) with the
// seed toolkits and keys.
func newEnv(t testing.TB, mod ...func(*options)) *env {
	t.Helper()
	o := options{}
	for _, m := range mod {
		m(&o)
	}
	if o.store == nil {
		o.store = storetest.OpenSQLite(t)
	}
	e := &env{keyIDs: map[string]string{}, logs: &logBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"bad token"}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true,"q":"` + r.URL.Query().Get("q") + `"}`))
	}))
	t.Cleanup(e.upstream.Close)

	cipher, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	e.hub = remote.NewHub(o.hub)
	t.Cleanup(e.hub.Close)
	e.svc = toolkit.NewService(toolkit.Config{
		Store:  o.store,
		Sealer: cipher,
		Runners: map[string]toolkit.Runner{
			toolkit.ExecutorJS:     toolkit.NewJSRunner(toolkit.JSOptions{Timeout: 5 * time.Second}),
			toolkit.ExecutorHTTP:   httptool.New(httptool.Options{AllowPrivate: true, Timeout: 5 * time.Second}),
			toolkit.ExecutorRemote: e.hub,
		},
		Logger: logger,
	})
	if o.peer == nil {
		e.seed(t)
	} else {
		e.client, e.scoped, e.tkKey, e.admin, e.keyIDs = o.peer.client, o.peer.scoped, o.peer.tkKey, o.peer.admin, o.peer.keyIDs
	}
	cfg := o.cfg
	cfg.Service, cfg.Hub, cfg.Logger = e.svc, e.hub, logger
	if p := o.provider; p != nil {
		if _, err := e.svc.CreatePlatform(context.Background(), &toolkit.Platform{
			ID: "acme", Name: "Acme", AuthURL: p.AuthURL(), TokenURL: p.TokenURL(),
			ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), Scopes: []string{"read"},
		}); err != nil {
			t.Fatal(err)
		}
		cfg.OAuth = oauth.NewManager(oauth.Config{Store: o.store, Sealer: cipher, PublicURL: "https://atp.example.com", Logger: logger})
		e.oauth = cfg.OAuth
	}
	e.h = chatatp.NewHandler(cfg)
	e.srv = httptest.NewServer(e.h)
	// Cleanups run last first: the handler closes its sockets before the
	// test server waits for its handlers.
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() { _ = e.h.Close() })
	return e
}

func (e *env) seed(t testing.TB) {
	ctx := context.Background()
	num := `{"type":"number"}`
	for _, tk := range []*toolkit.Toolkit{
		{
			ID: "math", Name: "Math Tools", Description: "Arithmetic helpers.\nMore detail.", Instructions: "Use add for sums.",
			Tools: []toolkit.Tool{
				{Name: "add", Description: "Add two numbers",
					InputSchema: json.RawMessage(`{"type":"object","properties":{"b":` + num + `,"a":` + num + `},"required":["a","b"]}`),
					Executor:    toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return {sum: input.a + input.b};"}},
				{Name: "fail", Description: "Always throws", InputSchema: json.RawMessage(`{"type":"object"}`),
					Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: `throw new Error("boom")`}},
				{Name: "spin", Description: "Never ends", InputSchema: json.RawMessage(`{"type":"object"}`),
					Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "while (true) {}", TimeoutMS: 100}},
				{Name: "secure", Description: "Needs the caller's token",
					InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`),
					Executor: toolkit.Executor{Kind: toolkit.ExecutorHTTP, Method: "GET", URL: e.upstream.URL + "/data",
						Query: []string{"q"}, Auth: &toolkit.HTTPAuth{Type: toolkit.AuthOAuth2, Platform: "acme"}}},
			},
		},
		{ID: "other", Name: "Other", Description: "Not for the scoped key"},
	} {
		if _, err := e.svc.CreateToolkit(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	for name, req := range map[string]toolkit.NewAPIKey{
		"client": {Name: "llm", Kind: toolkit.KeyClient},
		"scoped": {Name: "scoped", Kind: toolkit.KeyClient, Toolkits: []string{"math"}},
		"tk":     {Name: "weather worker", Kind: toolkit.KeyToolkit, ToolkitID: "weather"},
		"admin":  {Name: "admin", Kind: toolkit.KeyAdmin},
	} {
		k, secret, err := e.svc.CreateAPIKey(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		e.keyIDs[name] = k.ID
		switch name {
		case "client":
			e.client = secret
		case "scoped":
			e.scoped = secret
		case "tk":
			e.tkKey = secret
		case "admin":
			e.admin = secret
		}
	}
}

// logBuffer collects the server's log lines (written from many goroutines).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Base URLs: the SDK's own (base_url = the server) and the README's, which
// doubles the protocol path.
const readmeBase = "/ws/v1/atp/llm-client"

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

// ---- an LLMClient over WebSocket ----

type llmSocket struct {
	t    testing.TB
	c    *websocket.Conn
	key  string
	mu   sync.Mutex
	got  map[string]json.RawMessage // frames by request_id (raw, as read)
	used map[string]int             // frames wait returned, for next to skip
	all  chan json.RawMessage       // every frame, in order
	done chan struct{}
	err  error
}

// dialLLM opens the LLMClient socket as the SDK does (path key, then an
// auth frame) and waits for auth_response, as the SDK does for 10 s.
func dialLLM(t testing.TB, base, key string) *llmSocket {
	t.Helper()
	s, resp, err := tryDialLLM(t, base, key)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	return s
}

func tryDialLLM(t testing.TB, base, key string) (*llmSocket, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(base)+"/ws/v1/atp/llm-client/"+key+"/", nil)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	s := &llmSocket{t: t, c: c, key: key, got: map[string]json.RawMessage{}, used: map[string]int{}, all: make(chan json.RawMessage, 1000), done: make(chan struct{})}
	t.Cleanup(func() { _ = c.CloseNow() })
	go s.reader()
	s.send(py(pyObj{{"type", "auth"}, {"api_key", key}}))
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-s.all:
			var m struct {
				Type    string `json:"type"`
				Success bool   `json:"success"`
			}
			_ = json.Unmarshal(f, &m)
			if m.Type == "auth_response" {
				if !m.Success {
					return nil, nil, fmt.Errorf("auth_response: %s", f)
				}
				return s, nil, nil
			}
		case <-s.done:
			return nil, nil, fmt.Errorf("socket closed before auth_response: %w", s.err)
		case <-deadline:
			return nil, nil, fmt.Errorf("no auth_response within 10 s")
		}
	}
}

// reader stores frames by the raw bytes of their request_id, as the SDK's
// dict does, and also queues every frame.
func (s *llmSocket) reader() {
	defer close(s.done)
	for {
		_, data, err := s.c.Read(context.Background())
		if err != nil {
			s.err = err
			return
		}
		var m struct {
			RequestID json.RawMessage `json:"request_id"`
		}
		if json.Unmarshal(data, &m) == nil && len(m.RequestID) > 0 {
			s.mu.Lock()
			s.got[string(m.RequestID)] = data
			s.mu.Unlock()
		}
		s.all <- data
	}
}

func (s *llmSocket) send(frame string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		s.t.Fatalf("send: %v", err)
	}
}

// wait returns the frame whose request_id is rawID (JSON, as sent), the
// way the SDK polls its dict.
func (s *llmSocket) wait(rawID string) json.RawMessage {
	s.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		f, ok := s.got[rawID]
		if ok {
			delete(s.got, rawID)
			s.used[string(f)]++
		}
		s.mu.Unlock()
		if ok {
			return f
		}
		select {
		case <-s.all:
		case <-s.done:
			s.mu.Lock()
			f, ok := s.got[rawID]
			s.mu.Unlock()
			if ok {
				return f
			}
			s.t.Fatalf("socket closed waiting for %s: %v", rawID, s.err)
		case <-deadline:
			s.t.Fatalf("no answer for request_id %s", rawID)
		}
	}
}

// next returns the next frame, skipping successful auth_responses (the
// server sends one on connect and one for each auth frame).
func (s *llmSocket) next() json.RawMessage {
	s.t.Helper()
	for {
		select {
		case f := <-s.all:
			if string(f) == `{"type":"auth_response","success":true}` {
				continue
			}
			s.mu.Lock()
			used := s.used[string(f)] > 0
			if used {
				s.used[string(f)]--
			}
			s.mu.Unlock()
			if used {
				continue
			}
			return f
		case <-s.done:
			s.t.Fatalf("socket closed: %v", s.err)
		case <-time.After(20 * time.Second):
			s.t.Fatal("no frame")
		}
		return nil
	}
}

// closed waits for the server to close the socket and returns its status.
func (s *llmSocket) closed() websocket.StatusCode {
	s.t.Helper()
	for {
		select {
		case <-s.all:
		case <-s.done:
			return websocket.CloseStatus(s.err)
		case <-time.After(20 * time.Second):
			s.t.Fatal("the server did not close the socket")
		}
	}
}

// ---- HTTP as the SDK sends it (requests) ----

// postSDK sends body as requests.post(url, json=body, headers=…) does from
// the LLMClient: Authorization: ApiKey <key>.
func postSDK(t testing.TB, url, key, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "python-requests/2.32.3")
	if key != "" {
		req.Header.Set("Authorization", "ApiKey "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return doReq(t, req)
}

func getSDK(t testing.TB, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "ApiKey "+key)
	}
	return doReq(t, req)
}

func doReq(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// ---- assertions on frames ----

// field reads a value at a dotted path of a JSON document.
func field(t testing.TB, doc []byte, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	for _, p := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// wantToolResult checks a success-shaped task_response and returns
// result.tool.result.
func wantToolResult(t testing.TB, frame []byte, name string) any {
	t.Helper()
	if field(t, frame, "type") != "task_response" || field(t, frame, "status") != "success" || field(t, frame, "result.tool.name") != name {
		t.Fatalf("not a success-shaped task_response for %s: %s", name, frame)
	}
	return field(t, frame, "result.tool.result")
}

// wantToolError checks that a task_response carries a tool error with code
// whose message contains fragment.
func wantToolError(t testing.TB, frame []byte, name, code, fragment string) {
	t.Helper()
	res := wantToolResult(t, frame, name)
	m, ok := res.(map[string]any)
	if !ok || m["code"] != code || !strings.Contains(fmt.Sprint(m["error"]), fragment) || len(m) != 2 {
		t.Fatalf("result.tool.result = %v, want {error: …%s…, code: %s}\n%s", res, fragment, code, frame)
	}
}
