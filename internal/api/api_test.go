package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atp-server/atp-server/internal/httptool"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engines are the store engines the API suite runs against.
var engines = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.OpenSQLite},
	{"postgres", storetest.OpenPostgres},
}

// testMaxBody is a small body cap, so that the 413 test sends little.
const testMaxBody = 64 << 10

// apiEnv is one server on loopback, on its own database, with an admin key.
// Every answer it receives is checked against openapi.json and for
// secrets that must never leave the server.
type apiEnv struct {
	t        *testing.T
	srv      *httptest.Server
	db       *store.DB
	sealer   *oauth.Cipher
	adminKey string
	logs     *logBuffer
	routes   chi.Routes
	upstream *httptest.Server // the API the "fetch" http tool calls
	started  chan struct{}    // the blocking remote tool has begun

	mu        sync.Mutex
	forbidden []string // may appear in no answer and no log line
	unlogged  []string // may appear in answers (keys, once) but in no log line
}

func newAPIEnv(t *testing.T, open func(testing.TB) *store.DB) *apiEnv {
	t.Helper()
	db := open(t)
	sealer, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newTestLogger(t)
	e := &apiEnv{t: t, db: db, sealer: sealer, logs: logs, started: make(chan struct{}, 1)}
	e.upstream = httptest.NewServer(http.HandlerFunc(e.serveUpstream))
	t.Cleanup(e.upstream.Close)
	svc := toolkit.NewService(toolkit.Config{
		Store:  db,
		Sealer: sealer,
		Runners: map[string]toolkit.Runner{
			toolkit.ExecutorJS: toolkit.NewJSRunner(toolkit.JSOptions{Timeout: 10 * time.Second, Logger: logger}),
			// The upstream is a loopback httptest server.
			toolkit.ExecutorHTTP:   httptool.New(httptool.Options{AllowPrivate: true, Timeout: 10 * time.Second}),
			toolkit.ExecutorRemote: toolkit.RunnerFunc(e.runRemote),
		},
		Logger: logger,
	})
	e.adminKey = toolkit.NewKeySecret(toolkit.KeyAdmin) + "_tail"
	if _, err := svc.EnsureAdminKey(t.Context(), e.adminKey); err != nil {
		t.Fatal(err)
	}
	e.unlogged = append(e.unlogged, e.adminKey)

	h := NewHandler(Config{
		Service:      svc,
		Ready:        db.Ping,
		Logger:       logger,
		MaxBodyBytes: testMaxBody,
		Registry:     prometheus.NewRegistry(),
		PublicURL:    "http://atp.test",
	})
	e.routes = h.(chi.Routes)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.checkLogs)
	return e
}

// toolSecret is the bearer secret of the "fetch" tool; the upstream checks
// it arrives (so it was sealed and opened again), and no answer may hold it.
const toolSecret = "tool-secret-5b0f0a8e-never-shown"

// serveUpstream is the API behind the "fetch" http tool.
func (e *apiEnv) serveUpstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"credential_ok":%v}`, r.Header.Get("Authorization") == "Bearer "+toolSecret)
}

// runRemote stands in for the toolkit processes that serve remote tools (a
// process boundary this package does not own): "explode" panics, "wait"
// blocks until the call is cancelled.
func (e *apiEnv) runRemote(ctx context.Context, call *toolkit.Call) (json.RawMessage, error) {
	switch call.Tool.Name {
	case "explode":
		panic("runner exploded with internals-7f3a")
	case "wait":
		e.started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, toolkit.NewToolError(toolkit.ToolErrUnavailable, "no toolkit process serves %s", call)
}

func (e *apiEnv) forbid(s ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forbidden = append(e.forbidden, s...)
}

func (e *apiEnv) noLog(s ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unlogged = append(e.unlogged, s...)
}

// checkLogs fails the test if a secret or a key reached the logs.
func (e *apiEnv) checkLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range slices.Concat(e.forbidden, e.unlogged) {
		if strings.Contains(logs, s) {
			e.t.Errorf("the logs contain the secret %q", s)
		}
	}
}

// request sends one request as a client would. body: nil (none), []byte
// or string (sent as is), anything else (JSON-encoded). A JSON
// Content-Type is set when there is a body, unless header sets its own.
func (e *apiEnv) request(ctx context.Context, method, path, key string, body any, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	e.checkAnswer(res, b)
	return res, b
}

func (e *apiEnv) do(method, path, key string, body any, header ...http.Header) (*http.Response, []byte) {
	e.t.Helper()
	var h http.Header
	if len(header) > 0 {
		h = header[0]
	}
	return e.request(e.t.Context(), method, path, key, body, h)
}

// checkAnswer holds every answer to the contract: it carries a request id,
// it leaks no secret, and it is what openapi.json says for its route and
// status (additionalProperties: false there makes extra fields an error).
func (e *apiEnv) checkAnswer(res *http.Response, body []byte) {
	e.t.Helper()
	what := res.Request.Method + " " + res.Request.URL.Path
	if res.Header.Get(HeaderRequestID) == "" {
		e.t.Errorf("%s: no X-Request-ID", what)
	}
	e.mu.Lock()
	for _, s := range e.forbidden {
		if bytes.Contains(body, []byte(s)) {
			e.t.Errorf("%s: the answer contains the secret %q: %s", what, s, body)
		}
	}
	e.mu.Unlock()
	for _, leak := range []string{"goroutine ", "runtime/debug", ".go:", "SQLSTATE", "sqlite"} {
		if bytes.Contains(body, []byte(leak)) && res.Request.URL.Path != "/metrics" && res.Request.URL.Path != "/openapi.json" {
			e.t.Errorf("%s: the answer shows internals (%q): %s", what, leak, body)
		}
	}
	validateAnswer(e.t, e.routes, res, body)
}

var openAPIForTests = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPISource)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(loader.Context)
})

// validateMu serialises schema validation: kin-openapi fills caches in
// schemas as it visits them.
var validateMu sync.Mutex

// validateAnswer checks res against the operation openapi.json documents
// for its route, method and status.
func validateAnswer(tb testing.TB, routes chi.Routes, res *http.Response, body []byte) {
	tb.Helper()
	doc, err := openAPIForTests()
	if err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	method, path := res.Request.Method, res.Request.URL.Path
	what := method + " " + path
	status := fmt.Sprint(res.StatusCode)

	var resp *openapi3.Response
	if pattern := routes.Find(chi.NewRouteContext(), method, path); pattern != "" {
		op := doc.Paths.Find(pattern).GetOperation(method)
		if op == nil {
			tb.Errorf("%s: route %s is not documented", what, pattern)
			return
		}
		ref := op.Responses.Value(status)
		if ref == nil {
			tb.Errorf("%s: status %s is not documented for %s %s; body %s", what, status, method, pattern, body)
			return
		}
		resp = ref.Value
	} else {
		switch res.StatusCode {
		case http.StatusNotFound:
			resp = doc.Components.Responses["NotFound"].Value
		case http.StatusMethodNotAllowed:
			resp = doc.Components.Responses["MethodNotAllowed"].Value
		default:
			tb.Errorf("%s: unrouted answer with status %s", what, status)
			return
		}
	}
	mt := resp.Content.Get("application/json")
	if mt == nil {
		if res.StatusCode == http.StatusNoContent && len(body) != 0 {
			tb.Errorf("%s: 204 with a body: %s", what, body)
		}
		return
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Errorf("%s: answer is not JSON: %v: %s", what, err, body)
		return
	}
	validateMu.Lock()
	err = mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse(), openapi3.MultiErrors())
	validateMu.Unlock()
	if err != nil {
		tb.Errorf("%s: answer %s does not match openapi.json (status %s): %v", what, body, status, err)
	}
}

// decodeAs decodes a JSON answer.
func decodeAs[T any](tb testing.TB, body []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

func wantStatus(tb testing.TB, res *http.Response, body []byte, status int) {
	tb.Helper()
	if res.StatusCode != status {
		tb.Fatalf("%s %s: status %d, want %d; body %s", res.Request.Method, res.Request.URL.Path, res.StatusCode, status, body)
	}
}

// ---- fixtures ----

func jsTool(name, code string, schema string) map[string]any {
	return map[string]any{
		"name":         name,
		"description":  "test tool " + name,
		"input_schema": json.RawMessage(schema),
		"executor":     map[string]any{"kind": "js", "code": code},
	}
}

const anyObject = `{"type":"object"}`

func remoteTool(name string) map[string]any {
	return map[string]any{
		"name":         name,
		"description":  "remote tool " + name,
		"input_schema": json.RawMessage(anyObject),
		"executor":     map[string]any{"kind": "remote"},
	}
}

// mathToolkit is a toolkit with a tool for each behaviour the tests need,
// over all three executor kinds.
func (e *apiEnv) mathToolkit(id string) map[string]any {
	add := jsTool("add", "return {sum: input.a + input.b};", `{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)
	add["annotations"] = map[string]any{"operation_type": "read", "sensitivity": "public"}
	add["output_schema"] = json.RawMessage(anyObject)
	return map[string]any{
		"id":           id,
		"name":         "Math",
		"description":  "Arithmetic helpers",
		"instructions": "Use add for sums.",
		"tools": []any{
			add,
			jsTool("echo", "return {arguments: input, user: ctx.external_user_id};", anyObject),
			jsTool("fail", `throw new Error("boom: the tool failed");`, anyObject),
			remoteTool("explode"),
			remoteTool("wait"),
			jsTool("nothing", "return;", anyObject),
			map[string]any{
				"name":         "fetch",
				"description":  "fetch items",
				"input_schema": json.RawMessage(anyObject),
				"executor": map[string]any{
					"kind": "http", "method": "GET", "url": e.upstream.URL + "/items",
					"auth": map[string]any{"type": "bearer", "secret": toolSecret},
				},
			},
		},
	}
}

func (e *apiEnv) createToolkit(body map[string]any) map[string]any {
	e.t.Helper()
	e.forbid(toolSecret)
	res, b := e.do(http.MethodPost, "/admin/v1/toolkits", e.adminKey, body)
	wantStatus(e.t, res, b, http.StatusCreated)
	return decodeAs[map[string]any](e.t, b)
}

// createKey makes a key and returns the created answer.
func (e *apiEnv) createKey(req map[string]any) createdAPIKeyView {
	e.t.Helper()
	res, b := e.do(http.MethodPost, "/admin/v1/api-keys", e.adminKey, req)
	wantStatus(e.t, res, b, http.StatusCreated)
	k := decodeAs[createdAPIKeyView](e.t, b)
	e.noLog(k.Key)
	return k
}

func (e *apiEnv) clientKey(toolkits ...string) string {
	e.t.Helper()
	req := map[string]any{"name": "client", "kind": "client"}
	if len(toolkits) > 0 {
		req["toolkits"] = toolkits
	}
	return e.createKey(req).Key
}

// ---- the suite ----

// TestAPI runs every scenario against both store engines, each on a fresh
// server and database.
func TestAPI(t *testing.T) {
	t.Parallel()
	scenarios := []struct {
		name string
		run  func(t *testing.T, e *apiEnv)
	}{
		{"toolkits", testToolkits},
		{"toolkit round trip", testToolkitRoundTrip},
		{"api keys", testAPIKeys},
		{"platforms", testPlatforms},
		{"connections", testConnections},
		{"admin auth", testAdminAuth},
		{"native auth and scope", testNativeAuth},
		{"native calls", testNativeCalls},
		{"body faults", testBodyFaults},
		{"routing faults", testRoutingFaults},
		{"panic", testPanic},
		{"client goes away", testClientGone},
		{"probes, metrics and logs", testObservability},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, newAPIEnv(t, eng.open))
				})
			}
		})
	}
}

func testToolkits(t *testing.T, e *apiEnv) {
	res, b := e.do(http.MethodPost, "/admin/v1/toolkits", e.adminKey, e.mathToolkit("math"))
	wantStatus(t, res, b, http.StatusCreated)
	e.forbid(toolSecret)
	if loc := res.Header.Get("Location"); loc != "/admin/v1/toolkits/math" {
		t.Errorf("Location %q", loc)
	}
	created := decodeAs[toolkit.Toolkit](t, b)
	if created.ID != "math" || created.Revision != 1 || created.CreatedAt.IsZero() || created.UpdatedAt.IsZero() || len(created.Tools) != 7 {
		t.Errorf("created toolkit = %+v", created)
	}
	if a := created.Tools[6].Executor.Auth; a == nil || a.Type != "bearer" || a.Secret != "" {
		t.Errorf("fetch auth answered as %+v, want type bearer without secret", a)
	}

	res, b = e.do(http.MethodPost, "/admin/v1/toolkits", e.adminKey, e.mathToolkit("math"))
	wantError(t, res, b, http.StatusConflict, "conflict")

	res, b = e.do(http.MethodGet, "/admin/v1/toolkits/math", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	if diff := cmp.Diff(created, decodeAs[toolkit.Toolkit](t, b)); diff != "" {
		t.Errorf("GET differs from the POST answer (-post +get):\n%s", diff)
	}

	res, b = e.do(http.MethodGet, "/admin/v1/toolkits", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	list := decodeAs[struct{ Toolkits []toolkit.Toolkit }](t, b)
	if len(list.Toolkits) != 1 || list.Toolkits[0].ID != "math" {
		t.Errorf("list = %+v", list)
	}

	// PUT replaces: 200, revision up; the body may leave the id out.
	replaced := e.mathToolkit("")
	delete(replaced, "id")
	replaced["description"] = "Arithmetic, revised"
	res, b = e.do(http.MethodPut, "/admin/v1/toolkits/math", e.adminKey, replaced)
	wantStatus(t, res, b, http.StatusOK)
	got := decodeAs[toolkit.Toolkit](t, b)
	if got.ID != "math" || got.Revision != 2 || got.Description != "Arithmetic, revised" {
		t.Errorf("replaced toolkit = id %q revision %d description %q", got.ID, got.Revision, got.Description)
	}

	// PUT creates: 201 with Location.
	res, b = e.do(http.MethodPut, "/admin/v1/toolkits/geo", e.adminKey, map[string]any{
		"id": "geo", "name": "Geo", "description": "", "tools": []any{jsTool("where", "return input;", anyObject)},
	})
	wantStatus(t, res, b, http.StatusCreated)
	if loc := res.Header.Get("Location"); loc != "/admin/v1/toolkits/geo" {
		t.Errorf("Location %q", loc)
	}
	if got := decodeAs[toolkit.Toolkit](t, b); got.Revision != 1 {
		t.Errorf("created by PUT: revision %d", got.Revision)
	}

	// The domain's validation names the field too.
	bad := e.mathToolkit("bad")
	bad["tools"].([]any)[2].(map[string]any)["input_schema"] = json.RawMessage(`{"type":"string"}`)
	res, b = e.do(http.MethodPost, "/admin/v1/toolkits", e.adminKey, bad)
	if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_toolkit"); !strings.HasPrefix(eb.Error, "tools[2].input_schema") {
		t.Errorf("invalid schema message %q does not name the field", eb.Error)
	}

	res, b = e.do(http.MethodPut, "/admin/v1/toolkits/geo", e.adminKey, e.mathToolkit("other"))
	if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_request"); !strings.HasPrefix(eb.Error, "id: ") {
		t.Errorf("id mismatch message %q does not name the field", eb.Error)
	}

	res, b = e.do(http.MethodDelete, "/admin/v1/toolkits/geo", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusNoContent)
	res, b = e.do(http.MethodGet, "/admin/v1/toolkits/geo", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
	res, b = e.do(http.MethodDelete, "/admin/v1/toolkits/geo", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
}

// testToolkitRoundTrip: what GET answers can be sent back with PUT; the
// read-only fields in it are ignored, not rejected.
func testToolkitRoundTrip(t *testing.T, e *apiEnv) {
	e.createToolkit(map[string]any{
		"id": "notes", "name": "Notes", "description": "d",
		"tools": []any{jsTool("list", "return [];", anyObject)},
	})
	res, b := e.do(http.MethodGet, "/admin/v1/toolkits/notes", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	doc := decodeAs[map[string]any](t, b)
	doc["revision"] = 999
	doc["created_at"] = "2001-01-01T00:00:00Z"
	res, b = e.do(http.MethodPut, "/admin/v1/toolkits/notes", e.adminKey, doc)
	wantStatus(t, res, b, http.StatusOK)
	got := decodeAs[toolkit.Toolkit](t, b)
	if got.Revision != 2 || got.CreatedAt.Year() == 2001 {
		t.Errorf("read-only fields were taken from the body: revision %d created_at %v", got.Revision, got.CreatedAt)
	}
}

func testAPIKeys(t *testing.T, e *apiEnv) {
	res, b := e.do(http.MethodPost, "/admin/v1/api-keys", e.adminKey, map[string]any{"name": "ci", "kind": "client", "toolkits": []string{"math"}})
	wantStatus(t, res, b, http.StatusCreated)
	raw := decodeAs[map[string]any](t, b)
	var fields []string
	for k := range raw {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	want := []string{"created_at", "id", "key", "kind", "name", "oauth_redirect_urls", "prefix", "toolkit_id", "toolkits"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("created key fields (-want +got):\n%s", diff)
	}
	client := decodeAs[createdAPIKeyView](t, b)
	e.noLog(client.Key)
	if !strings.HasPrefix(client.Key, "atp_cli_") || !strings.HasPrefix(client.Key, client.Prefix) || client.Prefix == "" {
		t.Errorf("key %q prefix %q", client.Key, client.Prefix)
	}
	if client.Name != "ci" || client.Kind != "client" || !slices.Equal(client.Toolkits, []string{"math"}) || client.ToolkitID != nil {
		t.Errorf("created client key = %+v", client)
	}

	worker := e.createKey(map[string]any{"name": "weather-worker", "kind": "toolkit", "toolkit_id": "weather"})
	if worker.ToolkitID == nil || *worker.ToolkitID != "weather" || !strings.HasPrefix(worker.Key, "atp_tk_") {
		t.Errorf("created toolkit key = %+v", worker)
	}

	res, b = e.do(http.MethodPost, "/admin/v1/api-keys", e.adminKey, map[string]any{"name": "x", "kind": "root"})
	if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_api_key"); !strings.HasPrefix(eb.Error, "kind") {
		t.Errorf("message %q does not name kind", eb.Error)
	}
	res, b = e.do(http.MethodPost, "/admin/v1/api-keys", e.adminKey, map[string]any{"name": "x", "kind": "client", "key": "my-own-secret"})
	if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_request"); eb.Error != "key: unknown field" {
		t.Errorf("message %q", eb.Error)
	}

	// Listings never carry secrets.
	e.forbid(client.Key, worker.Key, e.adminKey)
	res, b = e.do(http.MethodGet, "/admin/v1/api-keys", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	list := decodeAs[struct {
		APIKeys []apiKeyView `json:"api_keys"`
	}](t, b)
	ids := map[string]apiKeyView{}
	for _, k := range list.APIKeys {
		ids[k.ID] = k
	}
	for _, id := range []string{client.ID, worker.ID, toolkit.BootstrapAdminKeyID} {
		if _, ok := ids[id]; !ok {
			t.Errorf("key %s not listed: %s", id, b)
		}
	}
	if bytes.Contains(b, []byte(`"key"`)) || bytes.Contains(b, []byte(`"hash"`)) {
		t.Errorf("listing has a key or hash field: %s", b)
	}
	for key, id := range map[string]string{client.Key: client.ID, worker.Key: worker.ID, e.adminKey: toolkit.BootstrapAdminKeyID} {
		p := ids[id].Prefix
		if p == "" || len(p) > 12 || !strings.HasPrefix(key, p) {
			t.Errorf("key %s listed with prefix %q: want a short prefix of its secret", id, p)
		}
	}

	// Revocation takes effect at once.
	res, b = e.do(http.MethodGet, "/v1/toolkits", client.Key, nil)
	wantStatus(t, res, b, http.StatusOK)
	res, b = e.do(http.MethodDelete, "/admin/v1/api-keys/"+client.ID, e.adminKey, nil)
	wantStatus(t, res, b, http.StatusNoContent)
	res, b = e.do(http.MethodGet, "/v1/toolkits", client.Key, nil)
	wantError(t, res, b, http.StatusUnauthorized, "unauthenticated")
	res, b = e.do(http.MethodGet, "/v1/toolkits", "", nil, http.Header{HeaderAPIKey: {client.Key}})
	wantError(t, res, b, http.StatusUnauthorized, "unauthenticated")

	res, b = e.do(http.MethodGet, "/admin/v1/api-keys", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	for _, k := range decodeAs[struct {
		APIKeys []apiKeyView `json:"api_keys"`
	}](t, b).APIKeys {
		if k.ID == client.ID && k.RevokedAt == nil {
			t.Errorf("revoked key listed without revoked_at: %+v", k)
		}
	}

	res, b = e.do(http.MethodDelete, "/admin/v1/api-keys/"+client.ID, e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
	res, b = e.do(http.MethodDelete, "/admin/v1/api-keys/key_nonexistent", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")

	// A revoked admin key loses the admin API at once too.
	admin2 := e.createKey(map[string]any{"name": "second admin", "kind": "admin"})
	res, b = e.do(http.MethodDelete, "/admin/v1/api-keys/"+admin2.ID, e.adminKey, nil)
	wantStatus(t, res, b, http.StatusNoContent)
	res, b = e.do(http.MethodGet, "/admin/v1/toolkits", admin2.Key, nil)
	wantError(t, res, b, http.StatusUnauthorized, "unauthenticated")
}

const platformSecret = "platform-client-secret-93c1-never-shown"

func hubspot(id string) map[string]any {
	return map[string]any{
		"id":            id,
		"name":          "HubSpot",
		"auth_url":      "https://app.hubspot.com/oauth/authorize",
		"token_url":     "https://api.hubapi.com/oauth/v1/token",
		"client_id":     "client-123",
		"client_secret": platformSecret,
		"scopes":        []string{"crm.objects.contacts.read"},
		"auth_params":   map[string]string{"access_type": "offline"},
	}
}

func testPlatforms(t *testing.T, e *apiEnv) {
	e.forbid(platformSecret)
	res, b := e.do(http.MethodPost, "/admin/v1/platforms", e.adminKey, hubspot("hubspot"))
	wantStatus(t, res, b, http.StatusCreated)
	p := decodeAs[platformView](t, b)
	if p.ID != "hubspot" || !p.PKCE || p.TokenAuthStyle != "auto" || p.ExposeRefreshToken || p.AuthParams["access_type"] != "offline" || p.CreatedAt.IsZero() {
		t.Errorf("created platform = %+v", p)
	}
	if bytes.Contains(b, []byte("client_secret")) {
		t.Errorf("client_secret field in the answer: %s", b)
	}

	res, b = e.do(http.MethodPost, "/admin/v1/platforms", e.adminKey, hubspot("hubspot"))
	wantError(t, res, b, http.StatusConflict, "conflict")

	res, b = e.do(http.MethodGet, "/admin/v1/platforms/hubspot", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	if diff := cmp.Diff(p, decodeAs[platformView](t, b)); diff != "" {
		t.Errorf("GET differs from POST (-post +get):\n%s", diff)
	}

	changed := hubspot("")
	delete(changed, "id")
	changed["pkce"] = false
	changed["token_auth_style"] = "form"
	res, b = e.do(http.MethodPut, "/admin/v1/platforms/hubspot", e.adminKey, changed)
	wantStatus(t, res, b, http.StatusOK)
	if got := decodeAs[platformView](t, b); got.PKCE || got.TokenAuthStyle != "form" {
		t.Errorf("replaced platform = %+v", got)
	}

	res, b = e.do(http.MethodPut, "/admin/v1/platforms/google", e.adminKey, hubspot("google"))
	wantStatus(t, res, b, http.StatusCreated)
	res, b = e.do(http.MethodPut, "/admin/v1/platforms/google", e.adminKey, hubspot("hubspot"))
	wantError(t, res, b, http.StatusBadRequest, "invalid_request")

	res, b = e.do(http.MethodGet, "/admin/v1/platforms", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	list := decodeAs[struct{ Platforms []platformView }](t, b)
	if len(list.Platforms) != 2 || list.Platforms[0].ID != "google" || list.Platforms[1].ID != "hubspot" {
		t.Errorf("platforms = %+v", list.Platforms)
	}

	res, b = e.do(http.MethodDelete, "/admin/v1/platforms/google", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusNoContent)
	res, b = e.do(http.MethodGet, "/admin/v1/platforms/google", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
	res, b = e.do(http.MethodDelete, "/admin/v1/platforms/google", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
}

func testConnections(t *testing.T, e *apiEnv) {
	res, b := e.do(http.MethodPost, "/admin/v1/platforms", e.adminKey, hubspot("hubspot"))
	wantStatus(t, res, b, http.StatusCreated)
	e.forbid(platformSecret)
	client := e.createKey(map[string]any{"name": "app", "kind": "client"})

	// Connections are made by the OAuth flow, not by this API; put them in
	// the store directly, with sealed tokens as the flow stores them.
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var conns []*toolkit.Connection
	for i, user := range []string{"u1", "u2"} {
		access, refresh := fmt.Sprintf("access-token-%d-never-shown", i), fmt.Sprintf("refresh-token-%d-never-shown", i)
		sa, err := e.sealer.Seal([]byte(access))
		if err != nil {
			t.Fatal(err)
		}
		sr, err := e.sealer.Seal([]byte(refresh))
		if err != nil {
			t.Fatal(err)
		}
		e.forbid(access, refresh, sa, sr)
		c := &toolkit.Connection{
			PlatformID: "hubspot", ExternalUserID: user, ClientKeyID: client.ID,
			Status: toolkit.ConnActive, Scope: "crm.read  crm.write", ExpiresAt: &expires,
			SealedAccessToken: sa, SealedRefreshToken: sr,
		}
		if i == 0 {
			c.ExternalUserEmail = "u1@example.com"
		}
		if err := e.db.UpsertConnection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	res, b = e.do(http.MethodGet, "/admin/v1/connections", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	if n := len(decodeAs[struct{ Connections []connectionView }](t, b).Connections); n != 2 {
		t.Errorf("%d connections listed, want 2", n)
	}

	res, b = e.do(http.MethodGet, "/admin/v1/connections?platform=hubspot&external_user_id=u1", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	got := decodeAs[struct{ Connections []connectionView }](t, b).Connections
	if len(got) != 1 {
		t.Fatalf("filtered list = %s", b)
	}
	c := got[0]
	if c.ID != conns[0].ID || c.Platform != "hubspot" || c.ExternalUserID != "u1" || c.Status != "active" ||
		c.ExternalUserEmail == nil || *c.ExternalUserEmail != "u1@example.com" ||
		c.ClientKeyID == nil || *c.ClientKeyID != client.ID ||
		!slices.Equal(c.Scopes, []string{"crm.read", "crm.write"}) || c.ExpiresAt == nil || !c.ExpiresAt.Equal(expires) {
		t.Errorf("connection = %+v", c)
	}

	res, b = e.do(http.MethodGet, "/admin/v1/connections?platform=nope", e.adminKey, nil)
	wantStatus(t, res, b, http.StatusOK)
	if strings.TrimSpace(string(b)) != `{"connections":[]}` {
		t.Errorf("empty list = %s", b)
	}

	res, b = e.do(http.MethodDelete, "/admin/v1/connections/"+conns[1].ID, e.adminKey, nil)
	wantStatus(t, res, b, http.StatusNoContent)
	res, b = e.do(http.MethodDelete, "/admin/v1/connections/"+conns[1].ID, e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
}

func testAdminAuth(t *testing.T, e *apiEnv) {
	client := e.clientKey()
	worker := e.createKey(map[string]any{"name": "w", "kind": "toolkit", "toolkit_id": "weather"}).Key
	routes := []struct{ method, path string }{
		{http.MethodGet, "/admin/v1/toolkits"},
		{http.MethodPost, "/admin/v1/toolkits"},
		{http.MethodGet, "/admin/v1/toolkits/math"},
		{http.MethodPut, "/admin/v1/toolkits/math"},
		{http.MethodDelete, "/admin/v1/toolkits/math"},
		{http.MethodGet, "/admin/v1/api-keys"},
		{http.MethodPost, "/admin/v1/api-keys"},
		{http.MethodDelete, "/admin/v1/api-keys/key_x"},
		{http.MethodGet, "/admin/v1/platforms"},
		{http.MethodPost, "/admin/v1/platforms"},
		{http.MethodGet, "/admin/v1/platforms/p"},
		{http.MethodPut, "/admin/v1/platforms/p"},
		{http.MethodDelete, "/admin/v1/platforms/p"},
		{http.MethodGet, "/admin/v1/connections"},
		{http.MethodDelete, "/admin/v1/connections/c"},
	}
	unauthenticated := []struct {
		name   string
		header http.Header
	}{
		{"no key", nil},
		{"wrong key", http.Header{"Authorization": {"Bearer atp_adm_wrong"}}},
		{"not bearer", http.Header{"Authorization": {"Basic " + e.adminKey}}},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}},
		{"admin key in X-API-Key", http.Header{HeaderAPIKey: {e.adminKey}}},
	}
	for _, r := range routes {
		for _, u := range unauthenticated {
			res, b := e.do(r.method, r.path, "", nil, u.header)
			wantError(t, res, b, http.StatusUnauthorized, "unauthenticated")
			if got := res.Header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("%s %s (%s): WWW-Authenticate %q", r.method, r.path, u.name, got)
			}
		}
		for _, key := range []string{client, worker} {
			res, b := e.do(r.method, r.path, key, nil)
			wantError(t, res, b, http.StatusForbidden, "forbidden")
		}
	}
	// The scheme is case-insensitive.
	res, b := e.do(http.MethodGet, "/admin/v1/toolkits", "", nil, http.Header{"Authorization": {"bearer " + e.adminKey}})
	wantStatus(t, res, b, http.StatusOK)
}

func testNativeAuth(t *testing.T, e *apiEnv) {
	e.createToolkit(e.mathToolkit("math"))
	e.createToolkit(map[string]any{"id": "other", "name": "Other", "description": "", "tools": []any{jsTool("echo", "return input;", anyObject)}})
	all := e.clientKey()
	onlyMath := e.clientKey("math")
	worker := e.createKey(map[string]any{"name": "w", "kind": "toolkit", "toolkit_id": "math"}).Key

	listed := func(key string, header http.Header) []string {
		t.Helper()
		res, b := e.do(http.MethodGet, "/v1/toolkits", key, nil, header)
		wantStatus(t, res, b, http.StatusOK)
		var ids []string
		for _, tk := range decodeAs[struct{ Toolkits []nativeToolkit }](t, b).Toolkits {
			ids = append(ids, tk.ID)
		}
		return ids
	}
	if got := listed(all, nil); !slices.Equal(got, []string{"math", "other"}) {
		t.Errorf("unlimited client key lists %v", got)
	}
	if got := listed(onlyMath, nil); !slices.Equal(got, []string{"math"}) {
		t.Errorf("limited client key lists %v", got)
	}
	if got := listed(e.adminKey, nil); !slices.Equal(got, []string{"math", "other"}) {
		t.Errorf("admin key lists %v", got)
	}
	if got := listed("", http.Header{HeaderAPIKey: {onlyMath}}); !slices.Equal(got, []string{"math"}) {
		t.Errorf("X-API-Key lists %v", got)
	}
	if got := listed(onlyMath, http.Header{HeaderAPIKey: {onlyMath}}); !slices.Equal(got, []string{"math"}) {
		t.Errorf("the same key twice lists %v", got)
	}

	res, b := e.do(http.MethodGet, "/v1/toolkits", onlyMath, nil, http.Header{HeaderAPIKey: {all}})
	wantError(t, res, b, http.StatusUnauthorized, "unauthenticated")
	for _, h := range []http.Header{nil, {HeaderAPIKey: {"atp_cli_wrong"}}, {"Authorization": {"Token " + all}}} {
		res, b = e.do(http.MethodGet, "/v1/toolkits", "", nil, h)
		wantError(t, res, b, http.StatusUnauthorized, "unauthenticated")
	}

	// Toolkit keys serve tools; they do not call them.
	res, b = e.do(http.MethodGet, "/v1/toolkits", worker, nil)
	wantError(t, res, b, http.StatusForbidden, "forbidden")
	res, b = e.do(http.MethodPost, "/v1/toolkits/math/tools/echo/call", worker, map[string]any{})
	wantError(t, res, b, http.StatusForbidden, "forbidden")

	// Out of scope: 403, whether or not the toolkit exists.
	for _, id := range []string{"other", "missing"} {
		res, b = e.do(http.MethodGet, "/v1/toolkits/"+id, onlyMath, nil)
		wantError(t, res, b, http.StatusForbidden, "forbidden")
		res, b = e.do(http.MethodPost, "/v1/toolkits/"+id+"/tools/echo/call", onlyMath, map[string]any{})
		wantError(t, res, b, http.StatusForbidden, "forbidden")
	}
	res, b = e.do(http.MethodGet, "/v1/toolkits/other", all, nil)
	wantStatus(t, res, b, http.StatusOK)
}

func testNativeCalls(t *testing.T, e *apiEnv) {
	e.createToolkit(e.mathToolkit("math"))
	key := e.clientKey("math")

	res, b := e.do(http.MethodGet, "/v1/toolkits/math", key, nil)
	wantStatus(t, res, b, http.StatusOK)
	tk := decodeAs[nativeToolkit](t, b)
	if tk.ID != "math" || tk.Instructions != "Use add for sums." || len(tk.Tools) != 7 || tk.Tools[0].Annotations == nil || tk.Tools[0].Annotations.OperationType != "read" {
		t.Errorf("native toolkit = %+v", tk)
	}
	if bytes.Contains(b, []byte("executor")) || bytes.Contains(b, []byte("api.example.com")) {
		t.Errorf("native toolkit shows executors: %s", b)
	}
	res, b = e.do(http.MethodGet, "/v1/toolkits/missing", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")

	call := func(tool string, body any, header ...http.Header) (*http.Response, []byte) {
		t.Helper()
		return e.do(http.MethodPost, "/v1/toolkits/math/tools/"+tool+"/call", key, body, header...)
	}
	type echoed struct {
		Result struct {
			Arguments map[string]any `json:"arguments"`
			User      string         `json:"user"`
		} `json:"result"`
	}

	res, b = call("add", map[string]any{"arguments": map[string]any{"a": 1, "b": 2}})
	wantStatus(t, res, b, http.StatusOK)
	if strings.TrimSpace(string(b)) != `{"result":{"sum":3}}` {
		t.Errorf("add answered %s", b)
	}
	res, b = call("echo", map[string]any{"arguments": map[string]any{"a": 1}, "external_user_id": "u-7"})
	wantStatus(t, res, b, http.StatusOK)
	if got := decodeAs[echoed](t, b); got.Result.Arguments["a"] != 1.0 || got.Result.User != "u-7" {
		t.Errorf("echo answered %s", b)
	}

	// The end user may come from X-User-ID; the body wins over it.
	res, b = call("echo", map[string]any{}, http.Header{HeaderUserID: {"from-header"}})
	wantStatus(t, res, b, http.StatusOK)
	if u := decodeAs[echoed](t, b).Result.User; u != "from-header" {
		t.Errorf("user from header = %q", u)
	}
	res, b = call("echo", map[string]any{"external_user_id": "from-body"}, http.Header{HeaderUserID: {"from-header"}})
	wantStatus(t, res, b, http.StatusOK)
	if u := decodeAs[echoed](t, b).Result.User; u != "from-body" {
		t.Errorf("user with both = %q", u)
	}

	// The body, and arguments in it, may be left out.
	for _, body := range []any{nil, map[string]any{}, map[string]any{"arguments": nil}, `{"arguments": {}}`} {
		res, b = call("echo", body)
		wantStatus(t, res, b, http.StatusOK)
		if args := decodeAs[echoed](t, b).Result.Arguments; args == nil || len(args) != 0 {
			t.Errorf("body %v: arguments %v, want {}", body, args)
		}
	}

	res, b = call("nothing", nil)
	wantStatus(t, res, b, http.StatusOK)
	if strings.TrimSpace(string(b)) != `{"result":null}` {
		t.Errorf("tool returning nothing: %s", b)
	}

	// Arguments that fail the tool's input_schema are a tool error, not a 400:
	// the caller (a model) is to read and fix them.
	res, b = call("add", map[string]any{"arguments": map[string]any{"a": "one"}})
	wantStatus(t, res, b, http.StatusOK)
	if terr := decodeAs[callError](t, b).Error; terr == nil || terr.Code != toolkit.ToolErrInvalidArguments {
		t.Errorf("invalid arguments answered %s", b)
	}

	res, b = call("fail", map[string]any{})
	wantStatus(t, res, b, http.StatusOK)
	if terr := decodeAs[callError](t, b).Error; terr == nil || terr.Code != toolkit.ToolErrExecution || !strings.Contains(terr.Message, "boom: the tool failed") {
		t.Errorf("tool error answered %s", b)
	}

	// The http tool got its static secret, opened from the sealed copy.
	res, b = call("fetch", nil)
	wantStatus(t, res, b, http.StatusOK)
	if strings.TrimSpace(string(b)) != `{"result":{"credential_ok":true}}` {
		t.Errorf("http tool answered %s", b)
	}

	res, b = e.do(http.MethodPost, "/v1/toolkits/math/tools/add/call", e.adminKey, `{"arguments":{"a":2,"b":3}}`)
	wantStatus(t, res, b, http.StatusOK)
	if strings.TrimSpace(string(b)) != `{"result":{"sum":5}}` {
		t.Errorf("admin call answered %s", b)
	}

	for _, args := range []string{`"x"`, `[]`, `1`, `true`} {
		res, b = call("echo", `{"arguments": `+args+`}`)
		if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_request"); !strings.HasPrefix(eb.Error, "arguments") {
			t.Errorf("arguments %s: message %q does not name the field", args, eb.Error)
		}
	}
	res, b = call("echo", map[string]any{"external_user_id": strings.Repeat("u", 300)})
	wantError(t, res, b, http.StatusBadRequest, "invalid_request")
	res, b = call("echo", map[string]any{"argumnets": map[string]any{}})
	if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_request"); eb.Error != "argumnets: unknown field" {
		t.Errorf("misspelt field: %q", eb.Error)
	}

	res, b = call("nosuchtool", nil)
	wantError(t, res, b, http.StatusNotFound, "tool_not_found")
	res, b = e.do(http.MethodPost, "/v1/toolkits/nosuchkit/tools/echo/call", e.adminKey, nil)
	wantError(t, res, b, http.StatusNotFound, "not_found")
}

func testBodyFaults(t *testing.T, e *apiEnv) {
	post := func(body any, header http.Header) (*http.Response, []byte) {
		t.Helper()
		return e.do(http.MethodPost, "/admin/v1/toolkits", e.adminKey, body, header)
	}
	valid := `{"id":"m","name":"M","description":"","tools":[]}`

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		res, b := post(valid, http.Header{"Content-Type": {ct}})
		wantError(t, res, b, http.StatusUnsupportedMediaType, "unsupported_media_type")
	}

	tests := []struct {
		name, body, wantPrefix string
	}{
		{"empty", ``, "request body: required"},
		{"not an object", `[]`, "request body: must be a JSON object"},
		{"syntax", `{"id":"m",}`, "request body: invalid JSON at offset"},
		{"truncated", `{"id":"m"`, "request body: the JSON ends early"},
		{"trailing", valid + `{}`, "request body: unexpected data"},
		{"unknown field", `{"id":"m","colour":"red"}`, "colour: unknown field"},
		{"unknown nested field", `{"id":"m","tools":[{"name":"a","executor":{"kind":"js","cmd":"rm"}}]}`, "tools[0].executor.cmd: unknown field"},
		{"wrong type", `{"id":"m","tools":[{"name":"a"},{"name":["b"]}]}`, "tools[1].name: expected a string, got an array"},
		{"sealed secret is not settable", `{"id":"m","tools":[{"name":"a","executor":{"kind":"http","auth":{"type":"bearer","SealedSecret":"v1.x.y"}}}]}`, "tools[0].executor.auth.SealedSecret: unknown field"},
	}
	for _, tt := range tests {
		res, b := post(tt.body, nil)
		if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_request"); !strings.HasPrefix(eb.Error, tt.wantPrefix) {
			t.Errorf("%s: message %q, want prefix %q", tt.name, eb.Error, tt.wantPrefix)
		}
	}

	// Over the cap, with the length declared and without (chunked).
	big := `{"id":"m","description":"` + strings.Repeat("x", testMaxBody) + `"}`
	res, b := post(big, nil)
	wantError(t, res, b, http.StatusRequestEntityTooLarge, "body_too_large")
	res, b = post(io.MultiReader(strings.NewReader(big)), nil)
	if res.Request.ContentLength != -1 && res.Request.ContentLength != 0 {
		t.Fatalf("the chunked request declared a length: %d", res.Request.ContentLength)
	}
	wantError(t, res, b, http.StatusRequestEntityTooLarge, "body_too_large")

	// Just under the cap is fine.
	ok := `{"id":"m","name":"M","instructions":"` + strings.Repeat("x", testMaxBody-200) + `","tools":[]}`
	res, b = post(ok, nil)
	wantStatus(t, res, b, http.StatusCreated)

	// The same decoder guards the other bodies.
	res, b = e.do(http.MethodPost, "/admin/v1/platforms", e.adminKey, `{"id":"p","client_secret":7}`)
	if eb := wantError(t, res, b, http.StatusBadRequest, "invalid_request"); !strings.HasPrefix(eb.Error, "client_secret: ") {
		t.Errorf("platform type error: %q", eb.Error)
	}
	res, b = e.do(http.MethodPut, "/admin/v1/platforms/p", e.adminKey, "", http.Header{"Content-Type": {"text/plain"}})
	if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("empty text/plain body: %d %s", res.StatusCode, b)
	}
}

func testRoutingFaults(t *testing.T, e *apiEnv) {
	for _, key := range []string{"", e.adminKey} {
		res, b := e.do(http.MethodGet, "/admin/v1/widgets", key, nil)
		wantError(t, res, b, http.StatusNotFound, "not_found")
		res, b = e.do(http.MethodPatch, "/admin/v1/toolkits/math", key, `{}`)
		wantError(t, res, b, http.StatusMethodNotAllowed, "method_not_allowed")
		res, b = e.do(http.MethodGet, "/", key, nil)
		wantError(t, res, b, http.StatusNotFound, "not_found")
	}
}

func testPanic(t *testing.T, e *apiEnv) {
	e.createToolkit(e.mathToolkit("math"))
	e.forbid("internals-7f3a", "runner exploded")
	res, b := e.do(http.MethodPost, "/v1/toolkits/math/tools/explode/call", e.adminKey, nil)
	eb := wantError(t, res, b, http.StatusInternalServerError, "internal")
	if eb.Error != "internal error" {
		t.Errorf("500 message %q", eb.Error)
	}
	// The stack is in the log, under the request id, and nowhere else.
	logs := e.logs.String()
	if !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "goroutine") || !strings.Contains(logs, eb.RequestID) {
		t.Errorf("the panic was not logged with its stack and request id:\n%s", logs)
	}
	e.mu.Lock()
	e.forbidden = slices.DeleteFunc(e.forbidden, func(s string) bool { return s == "internals-7f3a" || s == "runner exploded" })
	e.mu.Unlock()

	// The server goes on serving.
	res, b = e.do(http.MethodGet, "/healthz", "", nil)
	wantStatus(t, res, b, http.StatusOK)
}

func testClientGone(t *testing.T, e *apiEnv) {
	e.createToolkit(e.mathToolkit("math"))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/toolkits/math/tools/wait/call", nil)
		if err != nil {
			done <- err
			return
		}
		req.Header.Set("Authorization", "Bearer "+e.adminKey)
		res, err := e.srv.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	select {
	case <-e.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking tool never started")
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "client went away") {
		if time.Now().After(deadline) {
			t.Fatalf("no debug line for the client that went away:\n%s", e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Errorf("a client going away was logged as an error:\n%s", e.logs)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, ok := counterValue(scrape(t, e.srv), "/v1/toolkits/{id}/tools/{name}/call", "POST", "499"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the abandoned call was not counted with status 499")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testObservability(t *testing.T, e *apiEnv) {
	res, b := e.do(http.MethodGet, "/readyz", "", nil)
	wantStatus(t, res, b, http.StatusOK)
	res, b = e.do(http.MethodGet, "/healthz", "", nil)
	wantStatus(t, res, b, http.StatusOK)

	e.createToolkit(e.mathToolkit("math"))
	e.do(http.MethodGet, "/admin/v1/toolkits/math", e.adminKey, nil)
	e.do(http.MethodGet, "/admin/v1/toolkits/nope", e.adminKey, nil)

	fams := scrape(t, e.srv)
	for _, want := range []struct{ route, method, status string }{
		{"/admin/v1/toolkits", "POST", "201"},
		{"/admin/v1/toolkits/{id}", "GET", "200"},
		{"/admin/v1/toolkits/{id}", "GET", "404"},
		{"/readyz", "GET", "200"},
	} {
		if _, ok := counterValue(fams, want.route, want.method, want.status); !ok {
			t.Errorf("no atp_http_requests_total{route=%q,method=%q,status=%q}", want.route, want.method, want.status)
		}
	}

	// One access line per request, with the route pattern, never the key.
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"http request"`) || !strings.Contains(logs, `"route":"/admin/v1/toolkits/{id}"`) {
		t.Errorf("access log lines missing:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"http request"`) && !strings.Contains(line, `"request_id":"`) {
			t.Errorf("access line without request id: %s", line)
		}
	}

	// The served document names the public URL.
	res, b = e.do(http.MethodGet, "/openapi.json", "", nil)
	wantStatus(t, res, b, http.StatusOK)
	if !bytes.Contains(b, []byte(`"url": "http://atp.test"`)) {
		t.Errorf("openapi.json does not carry the public URL")
	}
}
