package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// syncBuffer is an io.Writer that run can write to from several goroutines
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// testServer is one `run` serving in a goroutine.
type testServer struct {
	URL      string
	Addr     string
	AdminKey string // the generated key run printed, if it printed one
	Stderr   *syncBuffer
	Stdout   *syncBuffer

	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

var adminKeyPattern = regexp.MustCompile(`atp_adm_[A-Za-z0-9_-]{43}`)

// startServer calls run with env (plus a loopback ATP_ADDR with port 0 and
// JSON logs unless env says otherwise), learns the address from the
// "listening" log line and waits until /readyz answers 200. The server is
// stopped at the end of the test, which then checks that run returned nil.
func startServer(t *testing.T, env map[string]string, args ...string) *testServer {
	t.Helper()
	env = withDefaults(env, map[string]string{"ATP_ADDR": "127.0.0.1:0", "ATP_LOG_FORMAT": "json"})
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{Stderr: &syncBuffer{}, Stdout: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"atp-server"}, args...), getenvFrom(env), s.Stdout, s.Stderr)
	}()
	t.Cleanup(func() {
		if !s.stopped {
			if err := s.Stop(); err != nil {
				t.Errorf("run returned %v after cancel, want nil\nstderr:\n%s", err, s.Stderr)
			}
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for s.Addr == "" {
		select {
		case err := <-s.done:
			s.stopped = true
			t.Fatalf("run returned before listening: %v\nstderr:\n%s", err, s.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within a minute\nstderr:\n%s", s.Stderr)
		}
		for _, line := range strings.Split(s.Stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				s.Addr = rec.Addr
			}
		}
	}
	s.URL = "http://" + s.Addr
	s.AdminKey = adminKeyPattern.FindString(s.Stderr.String())
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within a minute (last: %v)\nstderr:\n%s", err, s.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Stop cancels run's context and returns what run returned.
func (s *testServer) Stop() error {
	s.stopped = true
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		return fmt.Errorf("run did not return within a minute of cancel")
	}
}

func withDefaults(env, defaults map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// call sends a JSON request with a bearer key and decodes the JSON answer.
func call(t *testing.T, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	code, out, err := tryCall(method, url, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// tryCall is call for goroutines other than the test's.
func tryCall(method, url, key string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return 0, nil, fmt.Errorf("%s %s: %d, not a JSON object: %s", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, nil
}

func mustStatus(t *testing.T, want int, got int, out map[string]any, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d: %v", what, got, want, out)
	}
}

var mathToolkit = map[string]any{
	"id":          "math",
	"name":        "Math",
	"description": "Arithmetic helpers",
	"tools": []any{map[string]any{
		"name":        "add",
		"description": "Add two numbers",
		"input_schema": map[string]any{
			"type":       "object",
			"properties": map[string]any{"a": map[string]any{"type": "number"}, "b": map[string]any{"type": "number"}},
			"required":   []any{"a", "b"},
		},
		"executor": map[string]any{"kind": "js", "code": "return {sum: input.a + input.b};"},
	}},
}

// exerciseToolCall registers the math toolkit, creates a client key for it
// and calls math.add through the native API: the path every deployment must
// get right.
func exerciseToolCall(t *testing.T, s *testServer, adminKey string) {
	t.Helper()
	code, out := call(t, "POST", s.URL+"/admin/v1/toolkits", adminKey, mathToolkit)
	mustStatus(t, http.StatusCreated, code, out, "create toolkit")

	code, out = call(t, "POST", s.URL+"/admin/v1/api-keys", adminKey, map[string]any{"name": "ci", "kind": "client", "toolkits": []string{"math"}})
	mustStatus(t, http.StatusCreated, code, out, "create client key")
	clientKey, _ := out["key"].(string)
	if clientKey == "" {
		t.Fatalf("create client key: no key in %v", out)
	}

	code, out = call(t, "POST", s.URL+"/v1/toolkits/math/tools/add/call", clientKey, map[string]any{"arguments": map[string]any{"a": 2, "b": 3}})
	mustStatus(t, http.StatusOK, code, out, "call math.add")
	if got, _ := json.Marshal(out); string(got) != `{"result":{"sum":5}}` {
		t.Fatalf("call math.add = %s, want {\"result\":{\"sum\":5}}", got)
	}

	// The client key is not an admin key.
	code, out = call(t, "GET", s.URL+"/admin/v1/toolkits", clientKey, nil)
	mustStatus(t, http.StatusForbidden, code, out, "admin API with a client key")
}

func TestRunEmbedded(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, map[string]string{"ATP_DATA_DIR": dataDir})
	if s.AdminKey == "" {
		t.Fatalf("no generated admin key on stderr:\n%s", s.Stderr)
	}
	if !strings.Contains(s.Stderr.String(), "shown only this once") || !strings.Contains(s.Stderr.String(), "POST /admin/v1/api-keys") {
		t.Errorf("the admin key banner does not say it is shown once and how to rotate it:\n%s", s.Stderr)
	}
	exerciseToolCall(t, s, s.AdminKey)

	code, out := call(t, "GET", s.URL+"/healthz", "", nil)
	if code != http.StatusOK || out["status"] != "ok" {
		t.Errorf("/healthz = %d %v, want 200 {status: ok}", code, out)
	}
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "atp_http_requests_total"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// healthcheck, the container probe, against the running server.
	var out2 bytes.Buffer
	if err := run(t.Context(), []string{"atp-server", "healthcheck"}, getenvFrom(map[string]string{"ATP_ADDR": s.Addr}), &out2, io.Discard); err != nil {
		t.Errorf("healthcheck against the running server: %v", err)
	}
	if strings.TrimSpace(out2.String()) != "ok" {
		t.Errorf("healthcheck printed %q, want ok", out2.String())
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("run returned %v after cancel, want nil\nstderr:\n%s", err, s.Stderr)
	}
	if !strings.Contains(s.Stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped line after a graceful shutdown:\n%s", s.Stderr)
	}

	// The generated secrets are private and never logged.
	checkPrivate(t, dataDir, 0o700)
	checkPrivate(t, filepath.Join(dataDir, devSecretsFile), 0o600)
	var secrets devSecrets
	readJSON(t, filepath.Join(dataDir, devSecretsFile), &secrets)
	if _, err := oauth.ParseKey(secrets.EncryptionKey); err != nil {
		t.Errorf("generated encryption key: %v", err)
	}
	if len(secrets.JWTSecret) < 32 {
		t.Errorf("generated JWT secret has %d bytes, want at least 32", len(secrets.JWTSecret))
	}
	for _, v := range []string{secrets.EncryptionKey, secrets.JWTSecret} {
		if strings.Contains(s.Stderr.String(), v) {
			t.Errorf("a generated secret appears in the log")
		}
	}
}

func TestRunSecondStartReusesSecrets(t *testing.T) {
	t.Parallel()
	upstream, auths := authEcho(t)
	dataDir := t.TempDir()
	env := map[string]string{"ATP_DATA_DIR": dataDir, "ATP_HTTP_ALLOW_PRIVATE": "true"}

	first := startServer(t, env)
	if first.AdminKey == "" {
		t.Fatalf("first start printed no admin key:\n%s", first.Stderr)
	}
	// A tool whose bearer secret is sealed with the generated encryption key.
	code, out := call(t, "POST", first.URL+"/admin/v1/toolkits", first.AdminKey, map[string]any{
		"id": "echo", "name": "Echo", "description": "calls the test upstream",
		"tools": []any{map[string]any{
			"name": "whoami", "description": "who the upstream sees",
			"input_schema": map[string]any{"type": "object"},
			"executor": map[string]any{
				"kind": "http", "method": "GET", "url": upstream + "/whoami",
				"auth": map[string]any{"type": "bearer", "secret": "upstream-token-1234"},
			},
		}},
	})
	mustStatus(t, http.StatusCreated, code, out, "create toolkit")
	if err := first.Stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	secretsBefore, err := os.ReadFile(filepath.Join(dataDir, devSecretsFile))
	if err != nil {
		t.Fatal(err)
	}

	second := startServer(t, env)
	if adminKeyPattern.MatchString(second.Stderr.String()) {
		t.Fatalf("second start printed a new admin key:\n%s", second.Stderr)
	}
	secretsAfter, err := os.ReadFile(filepath.Join(dataDir, devSecretsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secretsBefore, secretsAfter) {
		t.Fatal("second start rewrote the development secrets")
	}
	// The first admin key still works, and the secret sealed by the first
	// process opens in the second: the encryption key was reused.
	code, out = call(t, "POST", second.URL+"/v1/toolkits/echo/tools/whoami/call", first.AdminKey, map[string]any{"arguments": map[string]any{}})
	mustStatus(t, http.StatusOK, code, out, "call echo.whoami")
	if got := <-auths; got != "Bearer upstream-token-1234" {
		t.Fatalf("upstream saw Authorization %q, want the sealed bearer secret", got)
	}
	if strings.Contains(first.Stderr.String()+second.Stderr.String(), "upstream-token-1234") {
		t.Error("a tool secret appears in the log")
	}
}

// authEcho starts an upstream API that reports each Authorization header it
// receives.
func authEcho(t *testing.T) (string, <-chan string) {
	t.Helper()
	auths := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, auths
}

func TestRunPostgres(t *testing.T) {
	t.Parallel()
	dbURL := storetest.PostgresURL(t)
	encKey := oauth.EncodeKey(oauth.NewKey())
	jwt := "jwt-secret-for-tests-0123456789abcdef"
	adminKey := "test-admin-key-0123456789"
	dataDir := filepath.Join(t.TempDir(), "unused")
	s := startServer(t, map[string]string{
		"DATABASE_URL":       dbURL,
		"ATP_ENCRYPTION_KEY": encKey,
		"ATP_JWT_SECRET":     jwt,
		"ATP_ADMIN_KEY":      adminKey,
		"ATP_DATA_DIR":       dataDir,
	})
	if s.AdminKey != "" {
		t.Errorf("printed a generated admin key although ATP_ADMIN_KEY is set")
	}
	if !strings.Contains(s.Stderr.String(), `"engine":"postgres"`) {
		t.Errorf("the log does not say the postgres engine is used:\n%s", s.Stderr)
	}
	exerciseToolCall(t, s, adminKey)
	if err := s.Stop(); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
	if _, err := os.Stat(dataDir); err == nil {
		t.Errorf("ATP_DATA_DIR was created although DATABASE_URL is set")
	}
	log := s.Stderr.String()
	for name, v := range map[string]string{"encryption key": encKey, "JWT secret": jwt, "admin key": adminKey, "database URL": dbURL} {
		if strings.Contains(log, v) {
			t.Errorf("the %s appears in the log", name)
		}
	}
}

func TestRunRefusesWithoutRequiredSecrets(t *testing.T) {
	t.Parallel()
	// Nothing listens there: the check must come before any connection.
	const dbURL = "postgres://atp:hunter2@127.0.0.1:1/atp"
	key := oauth.EncodeKey(oauth.NewKey())
	jwt := strings.Repeat("j", 32)
	tests := []struct {
		name    string
		env     map[string]string
		missing []string
		present []string
	}{
		{"no encryption key", map[string]string{"ATP_JWT_SECRET": jwt}, []string{"ATP_ENCRYPTION_KEY"}, []string{"ATP_JWT_SECRET"}},
		{"no jwt secret", map[string]string{"ATP_ENCRYPTION_KEY": key}, []string{"ATP_JWT_SECRET"}, []string{"ATP_ENCRYPTION_KEY"}},
		{"neither", map[string]string{}, []string{"ATP_ENCRYPTION_KEY", "ATP_JWT_SECRET"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			env := withDefaults(tt.env, map[string]string{"DATABASE_URL": dbURL, "ATP_ADDR": "127.0.0.1:0", "ATP_DATA_DIR": dataDir})
			var stderr syncBuffer
			err := run(t.Context(), []string{"atp-server"}, getenvFrom(env), io.Discard, &stderr)
			if err == nil {
				t.Fatal("run started without the required secrets")
			}
			for _, m := range tt.missing {
				if !strings.Contains(err.Error(), "DATABASE_URL is set but "+m+" is missing") {
					t.Errorf("error %q does not name the missing %s", err, m)
				}
			}
			for _, p := range tt.present {
				if strings.Contains(err.Error(), p+" is missing") {
					t.Errorf("error %q names %s, which is set", err, p)
				}
			}
			if strings.Contains(err.Error()+stderr.String(), "hunter2") {
				t.Error("the database password appears in the error or the log")
			}
			if _, statErr := os.Stat(dataDir); statErr == nil {
				t.Error("ATP_DATA_DIR was created: no development secrets may be generated with DATABASE_URL")
			}
		})
	}
}

// TestRunGracefulShutdown cancels run while a tool call is in flight: the
// call still gets its answer and run returns nil. The tool is an http tool
// whose upstream holds the answer until the shutdown has begun, so the order
// of events is certain, not a matter of timing.
func TestRunGracefulShutdown(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"slow":true}`)
	}))
	t.Cleanup(upstream.Close)

	s := startServer(t, map[string]string{
		"ATP_DATA_DIR": t.TempDir(), "ATP_HTTP_ALLOW_PRIVATE": "true", "ATP_ADMIN_KEY": "graceful-admin-key-0123",
	})
	code, out := call(t, "POST", s.URL+"/admin/v1/toolkits", "graceful-admin-key-0123", slowToolkit(upstream.URL))
	mustStatus(t, http.StatusCreated, code, out, "create toolkit")

	type answer struct {
		code int
		out  map[string]any
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, out, err := tryCall("POST", s.URL+"/v1/toolkits/slow/tools/wait/call", "graceful-admin-key-0123", map[string]any{"arguments": map[string]any{}})
		answered <- answer{code, out, err}
	}()
	select {
	case <-started: // the call is in flight
	case a := <-answered:
		t.Fatalf("the call ended before it reached the upstream: %d %v %v", a.code, a.out, a.err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	waitFor(t, s.Stderr, `"msg":"shutting down"`)
	close(release)

	a := <-answered
	if a.err != nil {
		t.Fatalf("in-flight call during shutdown: %v", a.err)
	}
	if a.code != http.StatusOK || a.out["result"] == nil {
		t.Fatalf("in-flight call during shutdown = %d %v, want 200 with a result", a.code, a.out)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v, want nil after a graceful shutdown", err)
	}
}

// TestRunGracefulShutdownJS: a js tool sleeping 300 ms on setTimeout is in
// flight (its console line, logged live at debug level, says so) when run's
// context is cancelled; it still answers 200 with its result.
func TestRunGracefulShutdownJS(t *testing.T) {
	t.Parallel()
	const admin = "graceful-js-admin-key-0123"
	s := startServer(t, map[string]string{"ATP_DATA_DIR": t.TempDir(), "ATP_ADMIN_KEY": admin, "ATP_LOG_LEVEL": "debug"})
	code, out := call(t, "POST", s.URL+"/admin/v1/toolkits", admin, map[string]any{
		"id": "sleepy", "name": "Sleepy", "description": "takes its time",
		"tools": []any{map[string]any{
			"name": "nap", "description": "sleeps 300 ms",
			"input_schema": map[string]any{"type": "object"},
			"executor": map[string]any{"kind": "js", "code": `console.log("nap started");
await new Promise(resolve => setTimeout(resolve, 300));
return {slept: true};`},
		}},
	})
	mustStatus(t, http.StatusCreated, code, out, "create toolkit")

	type answer struct {
		code int
		out  map[string]any
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, out, err := tryCall("POST", s.URL+"/v1/toolkits/sleepy/tools/nap/call", admin, map[string]any{"arguments": map[string]any{}})
		answered <- answer{code, out, err}
	}()
	waitFor(t, s.Stderr, `"output":"nap started"`)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()

	a := <-answered
	if a.err != nil || a.code != http.StatusOK {
		t.Fatalf("in-flight js call during shutdown = %d %v %v, want 200", a.code, a.out, a.err)
	}
	if got, _ := json.Marshal(a.out); string(got) != `{"result":{"slept":true}}` {
		t.Fatalf("in-flight js call = %s, want {\"result\":{\"slept\":true}}", got)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v, want nil after a graceful shutdown", err)
	}
}

// TestRunShutdownTimeout: a call that outlives ATP_SHUTDOWN_TIMEOUT is cut
// off and run reports it.
func TestRunShutdownTimeout(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // never answers; the server cancels the call
	}))
	t.Cleanup(upstream.Close)

	s := startServer(t, map[string]string{
		"ATP_DATA_DIR": t.TempDir(), "ATP_HTTP_ALLOW_PRIVATE": "true", "ATP_ADMIN_KEY": "timeout-admin-key-0123",
		"ATP_SHUTDOWN_TIMEOUT": "200ms",
	})
	code, out := call(t, "POST", s.URL+"/admin/v1/toolkits", "timeout-admin-key-0123", slowToolkit(upstream.URL))
	mustStatus(t, http.StatusCreated, code, out, "create toolkit")
	answered := make(chan string, 1)
	go func() {
		code, out, err := tryCall("POST", s.URL+"/v1/toolkits/slow/tools/wait/call", "timeout-admin-key-0123", map[string]any{"arguments": map[string]any{}})
		answered <- fmt.Sprint(code, out, err)
	}()
	select {
	case <-started:
	case a := <-answered:
		t.Fatalf("the call ended before it reached the upstream: %s", a)
	}
	err := s.Stop()
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Fatalf("run returned %v, want the shutdown timeout reported", err)
	}
}

func slowToolkit(upstream string) map[string]any {
	return map[string]any{
		"id": "slow", "name": "Slow", "description": "an upstream that takes its time",
		"tools": []any{map[string]any{
			"name": "wait", "description": "waits for the upstream",
			"input_schema": map[string]any{"type": "object"},
			"executor":     map[string]any{"kind": "http", "method": "GET", "url": upstream + "/wait"},
		}},
	}
}

func waitFor(t *testing.T, buf *syncBuffer, substr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(buf.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("%q did not appear in:\n%s", substr, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunMigrateCommands(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	env := map[string]string{"ATP_DATA_DIR": dataDir, "ATP_ADDR": "127.0.0.1:0"}
	migrate := func(action string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(t.Context(), []string{"atp-server", "migrate", action, "--log-level=warn"}, getenvFrom(env), &out, io.Discard); err != nil {
			t.Fatalf("migrate %s: %v", action, err)
		}
		return strings.TrimSpace(out.String())
	}
	if got := migrate("version"); got != "version 0 (no migrations applied)" {
		t.Fatalf("migrate version on a fresh directory = %q", got)
	}

	// --migrate=false refuses an unmigrated database, naming the fix.
	err := run(t.Context(), []string{"atp-server", "--migrate=false"}, getenvFrom(env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "atp-server migrate up") {
		t.Fatalf("serving an unmigrated database with --migrate=false: %v, want an error naming migrate up", err)
	}

	up := migrate("up")
	if !strings.HasPrefix(up, "version ") || up == "version 0 (no migrations applied)" || strings.Contains(up, "dirty") {
		t.Fatalf("migrate up = %q, want a clean version above 0", up)
	}
	if got := migrate("version"); got != up {
		t.Fatalf("migrate version after up = %q, want %q", got, up)
	}

	// Now --migrate=false serves.
	s := startServer(t, env, "--migrate=false")
	if err := s.Stop(); err != nil {
		t.Fatalf("run --migrate=false: %v", err)
	}

	if got := migrate("down"); got != "version 0 (no migrations applied)" {
		t.Fatalf("migrate down = %q", got)
	}
	err = run(t.Context(), []string{"atp-server", "migrate", "sideways"}, getenvFrom(env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown migrate action "sideways"`) {
		t.Fatalf("migrate sideways: %v", err)
	}
}

func TestRunHealthcheckFails(t *testing.T) {
	t.Parallel()
	// A port where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = run(t.Context(), []string{"atp-server", "healthcheck"}, getenvFrom(map[string]string{"ATP_ADDR": addr}), io.Discard, io.Discard)
	if err == nil {
		t.Fatal("healthcheck succeeded with no server")
	}

	// A server that answers 503.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	err = run(t.Context(), []string{"atp-server", "healthcheck"}, getenvFrom(map[string]string{"ATP_ADDR": strings.TrimPrefix(srv.URL, "http://")}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("healthcheck against a 503: %v, want an error naming the status", err)
	}
}

func TestRunVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"atp-server", "version"}, getenvFrom(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "atp-server ") {
		t.Fatalf("version printed %q", out.String())
	}
}

func TestRunUnknownCommand(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"atp-server", "serve-please"}, getenvFrom(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown command "serve-please"`) {
		t.Fatalf("run serve-please: %v", err)
	}
}

func checkPrivate(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, want)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
