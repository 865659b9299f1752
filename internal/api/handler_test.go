package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// logBuffer collects log output of a server under test; handlers log from
// many goroutines.
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

func newTestLogger(tb testing.TB) (*slog.Logger, *logBuffer) {
	tb.Helper()
	logs := &logBuffer{}
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}

// bareServer is the handler on a loopback server without a database: enough
// for probes, routing faults and the OpenAPI document.
type bareServer struct {
	*httptest.Server
	logs     *logBuffer
	registry *prometheus.Registry
}

func newBareServer(tb testing.TB, cfg Config) *bareServer {
	tb.Helper()
	if cfg.Service == nil {
		cfg.Service = toolkit.NewService(toolkit.Config{})
	}
	logger, logs := newTestLogger(tb)
	cfg.Logger = logger
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	srv := httptest.NewServer(NewHandler(cfg))
	tb.Cleanup(srv.Close)
	return &bareServer{Server: srv, logs: logs, registry: cfg.Registry}
}

// do sends one request and returns the answer with its body read.
func do(tb testing.TB, srv *httptest.Server, method, path string, body []byte, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, srv.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return res, b
}

// wantError checks an answer is the contract's JSON error with status and code.
func wantError(tb testing.TB, res *http.Response, body []byte, status int, code string) errorBody {
	tb.Helper()
	if res.StatusCode != status {
		tb.Errorf("%s %s: status %d, want %d; body %s", res.Request.Method, res.Request.URL.Path, res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s %s: Content-Type %q, want application/json", res.Request.Method, res.Request.URL.Path, ct)
	}
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("%s %s: body %s is not the error shape: %v", res.Request.Method, res.Request.URL.Path, body, err)
	}
	if e.Code != code {
		tb.Errorf("%s %s: code %q, want %q (message %q)", res.Request.Method, res.Request.URL.Path, e.Code, code, e.Error)
	}
	if e.Error == "" {
		tb.Errorf("%s %s: empty error message", res.Request.Method, res.Request.URL.Path)
	}
	if e.RequestID == "" || e.RequestID != res.Header.Get(HeaderRequestID) {
		tb.Errorf("%s %s: request_id %q, header %q", res.Request.Method, res.Request.URL.Path, e.RequestID, res.Header.Get(HeaderRequestID))
	}
	return e
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	srv := newBareServer(t, Config{})
	res, body := do(t, srv.Server, http.MethodGet, "/healthz", nil, nil)
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s", res.StatusCode, body)
	}
	res, body = do(t, srv.Server, http.MethodHead, "/healthz", nil, nil)
	if res.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD /healthz = %d %q", res.StatusCode, body)
	}
	// HEAD reaches GET routes behind their key check, not around it.
	res, _ = do(t, srv.Server, http.MethodHead, "/admin/v1/toolkits", nil, nil)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("HEAD /admin/v1/toolkits without a key = %d, want 401", res.StatusCode)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		srv := newBareServer(t, Config{Ready: func(context.Context) error { return nil }})
		res, body := do(t, srv.Server, http.MethodGet, "/readyz", nil, nil)
		if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
			t.Errorf("GET /readyz = %d %s", res.StatusCode, body)
		}
	})
	t.Run("not ready", func(t *testing.T) {
		t.Parallel()
		cause := errors.New("dial tcp 10.1.2.3:5432: connection refused")
		srv := newBareServer(t, Config{Ready: func(context.Context) error { return cause }})
		res, body := do(t, srv.Server, http.MethodGet, "/readyz", nil, nil)
		wantError(t, res, body, http.StatusServiceUnavailable, "not_ready")
		if strings.Contains(string(body), "10.1.2.3") {
			t.Errorf("the cause leaked to the client: %s", body)
		}
		if !strings.Contains(srv.logs.String(), "connection refused") {
			t.Errorf("the cause was not logged: %s", srv.logs)
		}
	})
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	srv := newBareServer(t, Config{})
	for _, path := range []string{"/nope", "/admin/v1/nope", "/v1/toolkits/x/tools", "/admin/v1/toolkits/a/b", "/api/v1/toolkit/atp_tk_pathsecret/inbox"} {
		res, body := do(t, srv.Server, http.MethodGet, path, nil, nil)
		wantError(t, res, body, http.StatusNotFound, "not_found")
	}
	if strings.Contains(srv.logs.String(), "pathsecret") {
		t.Errorf("a raw path reached the logs:\n%s", srv.logs)
	}
	tests := []struct {
		method, path, allow string
	}{
		{http.MethodPatch, "/admin/v1/toolkits", "GET, POST"},
		{http.MethodPost, "/admin/v1/toolkits/math", "GET, PUT, DELETE"},
		{http.MethodGet, "/admin/v1/api-keys/key_1", "DELETE"},
		{http.MethodDelete, "/healthz", "GET"},
		{http.MethodGet, "/v1/toolkits/math/tools/add/call", "POST"},
	}
	for _, tt := range tests {
		// No key: routing faults answer before authentication.
		res, body := do(t, srv.Server, tt.method, tt.path, nil, nil)
		wantError(t, res, body, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := strings.Join(res.Header.Values("Allow"), ", "); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	srv := newBareServer(t, Config{})

	res, _ := do(t, srv.Server, http.MethodGet, "/healthz", nil, http.Header{HeaderRequestID: {"trace-42.a_B"}})
	if got := res.Header.Get(HeaderRequestID); got != "trace-42.a_B" {
		t.Errorf("sane request id not echoed: %q", got)
	}

	for _, insane := range []string{"bad id", strings.Repeat("x", 65), "a\"b", "%0d%0a"} {
		res, body := do(t, srv.Server, http.MethodGet, "/nope", nil, http.Header{HeaderRequestID: {insane}})
		got := res.Header.Get(HeaderRequestID)
		if got == insane || !saneRequestID(got) {
			t.Errorf("insane request id %q: answered %q", insane, got)
		}
		wantError(t, res, body, http.StatusNotFound, "not_found")
	}

	res1, _ := do(t, srv.Server, http.MethodGet, "/healthz", nil, nil)
	res2, _ := do(t, srv.Server, http.MethodGet, "/healthz", nil, nil)
	id1, id2 := res1.Header.Get(HeaderRequestID), res2.Header.Get(HeaderRequestID)
	if id1 == "" || id1 == id2 {
		t.Errorf("generated request ids %q and %q: want distinct, non-empty", id1, id2)
	}
	if !strings.Contains(srv.logs.String(), `"request_id":"trace-42.a_B"`) {
		t.Errorf("access log does not carry the request id:\n%s", srv.logs)
	}
}

// scrape reads /metrics and returns the families by name.
func scrape(tb testing.TB, srv *httptest.Server) map[string]*dto.MetricFamily {
	tb.Helper()
	res, body := do(tb, srv, http.MethodGet, "/metrics", nil, nil)
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics = %d %s", res.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// counterValue finds the atp_http_requests_total series with these labels.
func counterValue(fams map[string]*dto.MetricFamily, route, method, status string) (float64, bool) {
	fam := fams["atp_http_requests_total"]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == route && labels["method"] == method && labels["status"] == status {
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := newBareServer(t, Config{})
	do(t, srv.Server, http.MethodGet, "/healthz", nil, nil)
	do(t, srv.Server, http.MethodGet, "/healthz", nil, nil)
	do(t, srv.Server, http.MethodGet, "/no/such/path/42", nil, nil)
	do(t, srv.Server, "BREW", "/healthz", nil, nil)

	fams := scrape(t, srv.Server)
	if v, ok := counterValue(fams, "/healthz", "GET", "200"); !ok || v != 2 {
		t.Errorf("healthz counter = %v (found %v), want 2", v, ok)
	}
	if v, ok := counterValue(fams, routeUnmatched, "GET", "404"); !ok || v != 1 {
		t.Errorf("unmatched 404 counter = %v (found %v), want 1", v, ok)
	}
	if _, ok := counterValue(fams, routeUnmatched, "other", "405"); !ok {
		t.Errorf("a made-up method is not labelled other")
	}
	if fams["atp_http_request_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("atp_http_request_duration_seconds is not a histogram")
	}
	for _, m := range fams["atp_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "/no/such") {
				t.Errorf("raw path used as label: %v", l)
			}
		}
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	t.Parallel()
	// Two handlers on one registry (a test or a restart of the handler in
	// the same process) share the series instead of panicking.
	reg := prometheus.NewRegistry()
	a := newBareServer(t, Config{Registry: reg})
	b := newBareServer(t, Config{Registry: reg})
	do(t, a.Server, http.MethodGet, "/healthz", nil, nil)
	do(t, b.Server, http.MethodGet, "/healthz", nil, nil)
	if v, _ := counterValue(scrape(t, a.Server), "/healthz", "GET", "200"); v != 2 {
		t.Errorf("shared counter = %v, want 2", v)
	}
}

func TestFallback(t *testing.T) {
	t.Parallel()
	var sawID string
	var mu sync.Mutex
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawID = RequestID(r.Context())
		mu.Unlock()
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		if _, ok := w.(http.Flusher); !ok {
			http.Error(w, "no flusher", http.StatusInternalServerError)
			return
		}
		if _, ok := w.(http.Hijacker); !ok {
			http.Error(w, "no hijacker", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})
	srv := newBareServer(t, Config{Fallback: fallback, MaxBodyBytes: 1024})

	res, body := do(t, srv.Server, http.MethodPost, "/prefix/api/v1/atp/llm-client/process/", []byte(`{}`), nil)
	if res.StatusCode != http.StatusTeapot {
		t.Errorf("fallback path: %d %s", res.StatusCode, body)
	}
	mu.Lock()
	if sawID == "" || sawID != res.Header.Get(HeaderRequestID) {
		t.Errorf("fallback saw request id %q, header %q", sawID, res.Header.Get(HeaderRequestID))
	}
	mu.Unlock()

	res, body = do(t, srv.Server, http.MethodPost, "/api/execute", bytes.Repeat([]byte("x"), 4096), nil)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body cap not applied to the fallback: %d %s", res.StatusCode, body)
	}

	// This surface's own paths stay its own.
	res, body = do(t, srv.Server, http.MethodGet, "/admin/v1/nope", nil, nil)
	wantError(t, res, body, http.StatusNotFound, "not_found")

	if _, ok := counterValue(scrape(t, srv.Server), routeFallback, "POST", "418"); !ok {
		t.Errorf("fallback requests not labelled %q", routeFallback)
	}
	if strings.Contains(srv.logs.String(), "llm-client") {
		t.Errorf("a raw fallback path was logged:\n%s", srv.logs)
	}
}
