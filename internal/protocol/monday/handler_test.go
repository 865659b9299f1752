package monday_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/execution"
	"github.com/atp-server/atp-server/internal/protocol/monday"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestNewHandlerRefusesBadConfig(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	eng := execution.NewEngine(execution.Config{})
	t.Cleanup(eng.Close)
	svc := toolkit.NewService(toolkit.Config{Store: db})
	for _, tc := range []struct {
		name string
		cfg  monday.Config
		want string
	}{
		{"nothing", monday.Config{}, "Service is required"},
		{"short secret", monday.Config{Service: svc, Sessions: db, Engine: eng, JWTSecret: []byte("short")}, "at least 32 bytes"},
		{"bad prefix", monday.Config{Service: svc, Sessions: db, Engine: eng, JWTSecret: testSecret, Prefix: "atp/"}, "Prefix"},
	} {
		if _, err := monday.NewHandler(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()

	wantError(t, e.do(t, "POST", "/api/init", nil, map[string]any{"tools": []any{}}), 401, "API key required")
	wantError(t, e.do(t, "POST", "/api/init", hdr{"X-API-Key": "atp_cli_nope"}, map[string]any{}), 401, "Invalid API key")
	_, tkKey, err := e.svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "w", Kind: toolkit.KeyToolkit, ToolkitID: "math"})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(t, "POST", "/api/init", hdr{"X-API-Key": tkKey}, map[string]any{}), 403, "not a client key")

	before := e.clock.Now()
	s := e.initSession(t, e.key, nil)
	if !strings.HasPrefix(s.ClientID, "cli_") || len(s.ClientID) != 36 || s.Token == "" {
		t.Errorf("session = %+v", s)
	}
	if want := before.Add(time.Hour).UnixMilli(); s.ExpiresAt != want || s.TokenRotateAt != before.Add(30*time.Minute).UnixMilli() {
		t.Errorf("expiresAt, tokenRotateAt = %d, %d; want %d and half way", s.ExpiresAt, s.TokenRotateAt, want)
	}
	stored, err := e.db.FindSession(ctx, s.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.KeyID != e.keyID {
		t.Errorf("stored key id = %q, want %q", stored.KeyID, e.keyID)
	}
	var data map[string]any
	if err := json.Unmarshal(stored.Data, &data); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"hasLLM": true, "hasApproval": true, "hasEmbedding": true, "hasTools": true}, data["services"]); d != "" {
		t.Errorf("stored services (-want +got):\n%s", d)
	}

	// Authorization: Bearer <key> works on init; hasTools follows the tools.
	r := e.do(t, "POST", "/api/init", hdr{"Authorization": "Bearer " + e.key},
		map[string]any{"tools": []any{}, "services": map[string]bool{"hasTools": true}})
	if r.status != 200 {
		t.Fatalf("init with Bearer: %d %s", r.status, r.body)
	}
	var s2 session
	r.json(t, &s2)
	stored, _ = e.db.FindSession(ctx, s2.ClientID)
	if !strings.Contains(string(stored.Data), `"hasTools":false`) {
		t.Errorf("hasTools claimed without tools was kept: %s", stored.Data)
	}

	for _, tc := range []struct {
		body any
		want string
	}{
		{"", "Request body is required"},
		{"{", "Invalid JSON"},
		{map[string]any{"tools": []any{map[string]any{"name": "x", "inputSchema": map[string]any{}}}}, "Invalid tool definition for 'x': description is required"},
		{map[string]any{"tools": []any{map[string]any{"description": "d", "inputSchema": map[string]any{}}}}, "name is required"},
		{map[string]any{"tools": []any{map[string]any{"name": "x", "description": "d"}}}, "inputSchema is required"},
		{map[string]any{"tools": []any{map[string]any{"name": "x", "description": "d", "inputSchema": map[string]any{}},
			map[string]any{"name": "x", "description": "d", "inputSchema": map[string]any{}}}}, "another tool has that name"},
		{map[string]any{"tools": "nope"}, "tools has the wrong type"},
	} {
		wantError(t, e.do(t, "POST", "/api/init", hdr{"X-API-Key": e.key}, tc.body), 400, tc.want)
	}
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	open := newEnv(t, envOptions{db: db, seed: true, allowAnonymous: true})
	s := open.initSession(t, "", nil)
	r := open.do(t, "GET", "/api/definitions", s.headers(), nil)
	if r.status != 200 || !strings.Contains(string(r.body), "secret") {
		t.Errorf("an anonymous session sees every toolkit: %d %s", r.status, r.body)
	}
	res := open.do(t, "POST", "/api/execute", nil, map[string]any{"code": "return await api.secret.reveal({})"}).result(t)
	if res.Status != "completed" || string(res.Result) != "7" {
		t.Errorf("anonymous execute = %+v", res)
	}
	wantError(t, open.do(t, "POST", "/api/execute", nil, map[string]any{"code": "return await atp.llm.call({prompt:'x'})"}),
		400, "Client ID required for paused executions")

	// Another instance on the same database that does not allow anonymous
	// clients refuses the anonymous session.
	closed := newEnv(t, envOptions{db: db})
	wantError(t, closed.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return 1"}), 403, "Authentication error")
	wantError(t, closed.do(t, "POST", "/api/execute", nil, map[string]any{"code": "return 1"}), 401, "Authentication required")
}

func TestVerification(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)
	other := e.initSession(t, e.key, nil)
	body := map[string]any{"code": "return 1"}

	sign := func(claims jwt.MapClaims, method jwt.SigningMethod, key any) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := e.clock.Now()
	valid := jwt.MapClaims{"clientId": s.ClientID, "type": "client", "iss": "atp-server", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	for _, tc := range []struct {
		name   string
		h      hdr
		status int
	}{
		{"no bearer", hdr{"X-Client-ID": s.ClientID}, 401},
		{"garbage", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer x.y.z"}, 403},
		{"other client's token", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + other.Token}, 403},
		{"other secret", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(valid, jwt.SigningMethodHS256, []byte("another secret of at least 32 bytes!!"))}, 403},
		{"alg none", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(valid, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)}, 403},
		{"HS512", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(valid, jwt.SigningMethodHS512, testSecret)}, 403},
		{"expired", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("exp", now.Add(-time.Minute).Unix()), jwt.SigningMethodHS256, testSecret)}, 403},
		{"expired past the leeway", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("exp", now.Add(-6*time.Second).Unix()), jwt.SigningMethodHS256, testSecret)}, 403},
		{"wrong issuer", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("iss", "someone-else"), jwt.SigningMethodHS256, testSecret)}, 403},
		{"no issuer", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("iss", nil), jwt.SigningMethodHS256, testSecret)}, 403},
		{"no exp", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("exp", nil), jwt.SigningMethodHS256, testSecret)}, 403},
		{"wrong type", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("type", "admin"), jwt.SigningMethodHS256, testSecret)}, 403},
		{"unknown session", hdr{"X-Client-ID": "cli_x", "Authorization": "Bearer " + sign(with("clientId", "cli_x"), jwt.SigningMethodHS256, testSecret)}, 403},
	} {
		r := e.do(t, "POST", "/api/execute", tc.h, body)
		wantError(t, r, tc.status, "Authentication error: Invalid token or client ID mismatch")
		if r.header.Get("X-ATP-Token") != "" {
			t.Errorf("%s: a token was minted for an unverified caller", tc.name)
		}
	}
	// The server's tokens are the contract's: HS256 JWTs any JWT library
	// reads, with these claims.
	tok, err := jwt.Parse(s.Token, func(*jwt.Token) (any, error) { return testSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(e.clock.Now), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("the init token does not parse: %v", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	jti, _ := claims["jti"].(string)
	if len(jti) != 36 || jti[14] != '4' {
		t.Errorf("jti = %q, want a version 4 UUID", jti)
	}
	delete(claims, "jti")
	want := jwt.MapClaims{"clientId": s.ClientID, "type": "client", "iss": "atp-server", "sub": s.ClientID,
		"iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix())}
	if d := cmp.Diff(want, claims); d != "" || tok.Header["typ"] != "JWT" || tok.Header["alg"] != "HS256" {
		t.Errorf("init token header %v, claims (-want +got):\n%s", tok.Header, d)
	}

	// A hand-made token with the right claims works: the format is the contract's.
	r := e.do(t, "POST", "/api/execute", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(valid, jwt.SigningMethodHS256, testSecret)}, body)
	if res := r.result(t); res.Status != "completed" {
		t.Errorf("valid hand-made token: %+v", res)
	}
	// Expired within the leeway (clock skew between instances): accepted.
	r = e.do(t, "POST", "/api/execute", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + sign(with("exp", now.Add(-3*time.Second).Unix()), jwt.SigningMethodHS256, testSecret)}, body)
	if res := r.result(t); res.Status != "completed" {
		t.Errorf("token expired 3 s ago (within the leeway): %+v", res)
	}

	// A revoked key ends its sessions at once, on every route.
	if err := e.svc.RevokeAPIKey(t.Context(), e.keyID); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(t, "POST", "/api/execute", s.headers(), body), 403, "Authentication error")
	wantError(t, e.do(t, "GET", "/api/definitions", s.headers(), nil), 403, "")
	wantError(t, e.do(t, "POST", "/api/resume/x", s.headers(), map[string]any{"result": 1}), 403, "Invalid client credentials")
	wantError(t, e.do(t, "POST", "/api/init", hdr{"X-API-Key": e.key}, map[string]any{}), 401, "Invalid API key")
}

func TestSessionsSlideAndExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)
	body := map[string]any{"code": "return 1"}

	// Used every 50 minutes, the session and its token live on past the
	// first hour: each execute answer carries a fresh token.
	for range 3 {
		e.clock.Advance(50 * time.Minute)
		r := e.do(t, "POST", "/api/execute", s.headers(), body)
		if res := r.result(t); res.Status != "completed" {
			t.Fatalf("execute: %+v", res)
		}
		exp, err := strconv.ParseInt(r.header.Get("X-ATP-Token-Expires"), 10, 64)
		if err != nil || exp != e.clock.Now().Add(time.Hour).UnixMilli() {
			t.Errorf("X-ATP-Token-Expires = %q, want now + 1h", r.header.Get("X-ATP-Token-Expires"))
		}
		s = rotated(t, s, r)
	}
	stored, err := e.db.FindSession(t.Context(), s.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(time.Hour); stored.ExpiresAt.Sub(want).Abs() > time.Second {
		t.Errorf("session expires %v, want slid to %v", stored.ExpiresAt, want)
	}
	// Idle past the TTL: gone, and a refresh cannot revive it.
	e.clock.Advance(61 * time.Minute)
	wantError(t, e.do(t, "POST", "/api/execute", s.headers(), body), 403, "Authentication error")
	wantError(t, e.do(t, "POST", "/api/token/refresh", s.headers(), map[string]any{}), 401, "Session not found or expired")
}

func TestSessionMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	s := e.initSession(t, e.key, nil)
	var refused time.Duration
	for e.clock.Now().Sub(start) < 26*time.Hour {
		e.clock.Advance(50 * time.Minute)
		r := e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return 1"})
		if r.status != 200 {
			wantError(t, r, 403, "Authentication error")
			refused = e.clock.Now().Sub(start)
			break
		}
		s = rotated(t, s, r)
	}
	if refused <= 23*time.Hour || refused > monday.DefaultSessionMaxAge+time.Hour {
		t.Errorf("a busy session was refused %v after init, want just after the maximum age %v", refused, monday.DefaultSessionMaxAge)
	}
	stored, err := e.db.FindSession(t.Context(), s.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if age := stored.ExpiresAt.Sub(stored.CreatedAt); age != monday.DefaultSessionMaxAge {
		t.Errorf("the session ends %v after init, want the maximum age %v", age, monday.DefaultSessionMaxAge)
	}
}

// TestSessionsAcrossInstances: two instances on one PostgreSQL database,
// as in production, serve one client's session alike.
func TestSessionsAcrossInstances(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	a := newEnv(t, envOptions{db: storetest.OpenPostgresURL(t, url), seed: true})
	b := newEnv(t, envOptions{db: storetest.OpenPostgresURL(t, url)})
	s := a.initSession(t, a.key, nil)
	r := b.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return await api.math.add({a: 2, b: 2})"})
	if res := r.result(t); res.Status != "completed" || string(res.Result) != `{"sum":4}` {
		t.Errorf("execute on the other instance: %+v %s", res, res.Result)
	}
	s = rotated(t, s, r)
	if r := a.do(t, "GET", "/api/definitions", s.headers(), nil); r.status != 200 {
		t.Errorf("the token rotated by b does not work on a: %d %s", r.status, r.body)
	}
	// Revoked through one instance, refused by the other.
	if err := a.svc.RevokeAPIKey(t.Context(), a.keyID); err != nil {
		t.Fatal(err)
	}
	wantError(t, b.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return 1"}), 403, "Authentication error")
}

func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)
	// The token expired (the client was busy elsewhere) but the session
	// lives: kept alive through another route.
	e.clock.Advance(50 * time.Minute)
	r := e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return 1"})
	r.result(t)
	e.clock.Advance(20 * time.Minute) // the original token is now expired
	wantError(t, e.do(t, "GET", "/api/definitions", s.headers(), nil), 403, "")
	r = e.do(t, "POST", "/api/token/refresh", s.headers(), map[string]any{"clientId": s.ClientID})
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	var fresh session
	r.json(t, &fresh)
	if fresh.ClientID != s.ClientID || fresh.Token == s.Token || fresh.ExpiresAt != e.clock.Now().Add(time.Hour).UnixMilli() {
		t.Errorf("refresh = %+v", fresh)
	}
	if r := e.do(t, "GET", "/api/definitions", fresh.headers(), nil); r.status != 200 {
		t.Errorf("refreshed token: %d %s", r.status, r.body)
	}

	wantError(t, e.do(t, "POST", "/api/token/refresh", hdr{"Authorization": "Bearer " + s.Token}, map[string]any{}), 400, "Client ID is required")
	wantError(t, e.do(t, "POST", "/api/token/refresh", hdr{"X-Client-ID": s.ClientID}, map[string]any{}), 401, "Bearer token required")
	wantError(t, e.do(t, "POST", "/api/token/refresh", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer junk"}, nil), 401, "Invalid token")
	wantError(t, e.do(t, "POST", "/api/token/refresh", s.headers(), map[string]any{"clientId": "cli_other"}), 400, "does not match")
	if err := e.db.DeleteSession(t.Context(), s.ClientID); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(t, "POST", "/api/token/refresh", fresh.headers(), nil), 401, "Session not found or expired")
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	full := e.initSession(t, e.key, nil)
	limited := e.initSession(t, e.limited, map[string]any{"tools": []any{}, "services": map[string]bool{"hasApproval": true}, "guidance": "Be brief."})

	var defs struct {
		TypeScript string   `json:"typescript"`
		APIGroups  []string `json:"apiGroups"`
		Version    string   `json:"version"`
		Guidance   string   `json:"guidance"`
	}
	e.do(t, "GET", "/api/definitions?", full.headers(), nil).json(t, &defs)
	if d := cmp.Diff([]string{"math", "secret"}, defs.APIGroups); d != "" || defs.Version != "1.0.0" || !strings.Contains(defs.TypeScript, "reveal(params: secret_reveal_Input)") {
		t.Errorf("full definitions: %s %+v", d, defs)
	}
	defs.Guidance = ""
	e.do(t, "GET", "/api/definitions", limited.headers(), nil).json(t, &defs)
	if d := cmp.Diff([]string{"math"}, defs.APIGroups); d != "" || strings.Contains(defs.TypeScript, "reveal") || defs.Guidance != "Be brief." {
		t.Errorf("limited definitions: %s %+v", d, defs)
	}
	e.do(t, "GET", "/api/definitions?apiGroups=secret,nope", full.headers(), nil).json(t, &defs)
	if d := cmp.Diff([]string{"secret"}, defs.APIGroups); d != "" || strings.Contains(defs.TypeScript, "add(") {
		t.Errorf("apiGroups filter: %s", d)
	}
	// A bare key may discover too; nothing at all may not.
	if r := e.do(t, "GET", "/api/definitions", hdr{"X-API-Key": e.limited}, nil); r.status != 200 || strings.Contains(string(r.body), "reveal") {
		t.Errorf("definitions by key: %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, "GET", "/api/definitions", nil, nil), 401, "Authentication required")

	r := e.do(t, "GET", "/api/runtime", limited.headers(), nil)
	if r.status != 200 || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("runtime: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if text := string(r.body); !strings.Contains(text, "approval: {") || strings.Contains(text, "llm: {") {
		t.Errorf("runtime for a session with approval only:\n%s", text)
	}
	if text := string(e.do(t, "GET", "/api/runtime?apis=llm", nil, nil).body); !strings.Contains(text, "llm: {") || strings.Contains(text, "cache: {") {
		t.Errorf("runtime ?apis=llm:\n%s", text)
	}

	var info map[string]any
	r = e.do(t, "GET", "/api/info", nil, nil)
	r.json(t, &info)
	if r.status != 200 || info["version"] != "1.0.0" || info["limits"].(map[string]any)["maxTimeout"] != float64(300000) ||
		info["capabilities"].(map[string]any)["streaming"] != true {
		t.Errorf("info: %d %s", r.status, r.body)
	}

	var found struct {
		Results []map[string]any `json:"results"`
	}
	e.do(t, "POST", "/api/search", full.headers(), map[string]any{"query": "reveal"}).json(t, &found)
	if len(found.Results) != 1 || found.Results[0]["functionName"] != "reveal" {
		t.Errorf("search full: %+v", found)
	}
	e.do(t, "POST", "/api/search", limited.headers(), map[string]any{"query": "reveal"}).json(t, &found)
	if len(found.Results) != 0 {
		t.Errorf("search limited found %+v", found)
	}
	e.do(t, "GET", "/api/search?keyword=add&maxResults=1", full.headers(), nil).json(t, &found)
	if len(found.Results) != 1 || found.Results[0]["signature"] != "add({ a: number, b: number })" {
		t.Errorf("GET search: %+v", found)
	}
	wantError(t, e.do(t, "POST", "/api/search", full.headers(), map[string]any{}), 400, "query is required")

	var dir map[string]any
	e.do(t, "POST", "/api/explore", full.headers(), map[string]any{"path": "/custom"}).json(t, &dir)
	if d := cmp.Diff([]any{
		map[string]any{"name": "math", "type": "directory", "description": "Arithmetic helpers"},
		map[string]any{"name": "secret", "type": "directory", "description": "Not for everyone"},
	}, dir["items"]); d != "" {
		t.Errorf("explore /custom (-want +got):\n%s", d)
	}
	e.do(t, "POST", "/api/explore", full.headers(), map[string]any{"path": "/custom/math", "toolRules": map[string]any{"blockOperationTypes": []string{"destructive"}}}).json(t, &dir)
	if strings.Contains(mustMarshal(t, dir), "wipe") {
		t.Errorf("toolRules did not narrow explore: %v", dir)
	}
	wantError(t, e.do(t, "POST", "/api/explore", limited.headers(), map[string]any{"path": "/custom/secret"}), 404, "Path not found: /custom/secret")
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExecuteAndResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)

	r := e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return await api.math.add({a: 1, b: 2})"})
	if res := r.result(t); res.Status != "completed" || string(res.Result) != `{"sum":3}` {
		t.Errorf("server tool: %+v", res)
	}
	s = rotated(t, s, r)

	// X-User-ID names the end user of the tool call.
	r = e.do(t, "POST", "/api/execute", hdr{"X-Client-ID": s.ClientID, "Authorization": "Bearer " + s.Token, "X-User-ID": "user-42"},
		map[string]any{"code": "return await api.math.whoami({})"})
	if res := r.result(t); string(res.Result) != `"user-42"` {
		t.Errorf("whoami = %s, want the X-User-ID", res.Result)
	}
	s = rotated(t, s, r)

	// An LLM call pauses; the resume completes it; a second resume is 404.
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{
		"code":   "const a = await atp.llm.call({prompt: 'hi'}); const loc = await api.client.getLocation({}); return {a, loc};",
		"config": map[string]any{"clientServices": map[string]bool{"hasLLM": true}},
	})
	res := r.result(t)
	if res.Status != "paused" || res.NeedsCallback == nil || res.NeedsCallback.Type != "llm" {
		t.Fatalf("pause: %+v", res)
	}
	s = rotated(t, s, r)
	r = e.do(t, "POST", "/api/resume/"+res.ExecutionID, s.headers(), map[string]any{"result": "hello"})
	next := r.result(t)
	if next.Status != "paused" || next.NeedsCallback == nil || next.NeedsCallback.Type != "tool" {
		t.Fatalf("second pause: %+v", next)
	}
	s = rotated(t, s, r)
	r = e.do(t, "POST", "/api/resume/"+res.ExecutionID, s.headers(), map[string]any{"result": map[string]string{"city": "TLV"}})
	if done := r.result(t); done.Status != "completed" || string(done.Result) != `{"a":"hello","loc":{"city":"TLV"}}` {
		t.Errorf("done: %+v %s", done, done.Result)
	}
	s = rotated(t, s, r)
	r = e.do(t, "POST", "/api/resume/"+res.ExecutionID, s.headers(), map[string]any{"result": "again"})
	wantError(t, r, 404, "Not found")
	s = rotated(t, s, r) // a verified caller's 404 carries a token too

	// Another client may not resume it; a caller without auth gets 401.
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return await atp.llm.call({prompt: 'x'})"})
	paused := r.result(t)
	s = rotated(t, s, r)
	other := e.initSession(t, e.key, nil)
	r = e.do(t, "POST", "/api/resume/"+paused.ExecutionID, other.headers(), map[string]any{"result": "x"})
	wantError(t, r, 403, "Unauthorized: execution belongs to different client")
	rotated(t, other, r)
	r = e.do(t, "POST", "/api/resume/"+paused.ExecutionID, nil, map[string]any{"result": "x"})
	wantError(t, r, 401, "Authentication required")
	if r.header.Get("X-ATP-Token") != "" {
		t.Error("token minted for an unauthenticated resume")
	}
	wantError(t, e.do(t, "POST", "/api/resume/"+paused.ExecutionID, s.headers(), map[string]any{}), 400, "result or results is required")
	wantError(t, e.do(t, "POST", "/api/resume/"+paused.ExecutionID, s.headers(), map[string]any{"results": "x"}), 400, "results")

	// A null answer is an answer.
	r = e.do(t, "POST", "/api/resume/"+paused.ExecutionID, s.headers(), map[string]any{"result": nil})
	if done := r.result(t); done.Status != "completed" || string(done.Result) != "null" {
		t.Errorf("null answer: %+v %s", done, done.Result)
	}

	// The service-not-provided rule (§3.8).
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return await atp.llm.call({prompt: 'x'})"})
	p := r.result(t)
	r = e.do(t, "POST", "/api/resume/"+p.ExecutionID, s.headers(), map[string]any{"result": map[string]any{"__error": true, "message": "llm service not provided by client"}})
	if f := r.result(t); f.Status != "failed" || f.Error == nil || f.Error.Code != "SERVICE_NOT_PROVIDED" {
		t.Errorf("service not provided: %s", r.body)
	}
}

func TestBatchResumeMatchesIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)
	r := e.do(t, "POST", "/api/execute", s.headers(), map[string]any{
		"code": "return await Promise.all(['A', 'B', 'C'].map((p) => atp.llm.call({prompt: p})))",
	})
	res := r.result(t)
	if res.Status != "paused" || len(res.NeedsCallbacks) != 3 {
		t.Fatalf("batch pause: %s", r.body)
	}
	var answers []map[string]any
	for i := len(res.NeedsCallbacks) - 1; i >= 0; i-- {
		cb := res.NeedsCallbacks[i]
		var payload struct {
			Prompt string `json:"prompt"`
		}
		if err := json.Unmarshal(cb.Payload, &payload); err != nil {
			t.Fatal(err)
		}
		answers = append(answers, map[string]any{"id": cb.ID, "result": "answer " + payload.Prompt})
	}
	r = e.do(t, "POST", "/api/resume/"+res.ExecutionID, s.headers(), map[string]any{"results": answers})
	if done := r.result(t); string(done.Result) != `["answer A","answer B","answer C"]` {
		t.Errorf("batch answered in reverse: %s", done.Result)
	}
}

func TestExecuteRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)
	for _, tc := range []struct {
		body any
		want string
	}{
		{map[string]any{}, "code is required"},
		{map[string]any{"code": 1}, "code has the wrong type"},
		{map[string]any{"code": "1", "config": map[string]any{"timeout": "soon"}}, "timeout"},
		{map[string]any{"code": "1", "config": map[string]any{"toolRules": "x"}}, "toolRules"},
		{"[]", "must be a JSON object"},
	} {
		r := e.do(t, "POST", "/api/execute", s.headers(), tc.body)
		wantError(t, r, 400, tc.want)
		if r.header.Get("X-ATP-Token") == "" {
			t.Errorf("%v: a verified caller's 400 lacks X-ATP-Token", tc.body)
		}
	}
	wantError(t, e.do(t, "POST", "/api/execute", s.headers(), `{"code":"`+strings.Repeat("x", monday.DefaultMaxBodyBytes)+`"}`), 413, "too large")

	// A failing program is a 200; unknown config fields are ignored;
	// `options` is read when there is no `config`.
	r := e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "throw new Error('boom')"})
	if res := r.result(t); res.Status != "failed" || res.Error.Code != "EXECUTION_FAILED" {
		t.Errorf("thrown: %s", r.body)
	}
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "while (true) {}", "options": map[string]any{"timeout": 200, "provenanceHints": []string{"x"}}})
	if res := r.result(t); res.Status != "timeout" {
		t.Errorf("options.timeout: %s", r.body)
	}

	// toolRules narrow the api object; a limited key never sees more.
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{
		"code":   "return [typeof api.math.add, typeof api.math.wipe, typeof api.secret]",
		"config": map[string]any{"toolRules": map[string]any{"blockOperationTypes": []string{"destructive"}}},
	})
	if res := r.result(t); string(res.Result) != `["function","undefined","object"]` {
		t.Errorf("toolRules: %s", res.Result)
	}
	lim := e.initSession(t, e.limited, nil)
	r = e.do(t, "POST", "/api/execute", lim.headers(), map[string]any{"code": "return typeof api.secret"})
	if res := r.result(t); string(res.Result) != `"undefined"` {
		t.Errorf("limited key sees api.secret: %s", res.Result)
	}
	// A requireApproval* rule adds an approval; it never removes one.
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{
		"code":   "return await api.math.add({a: 1, b: 1})",
		"config": map[string]any{"toolRules": map[string]any{"requireApprovalForOperationTypes": []string{"read"}}},
	})
	if res := r.result(t); res.Status != "paused" || res.NeedsCallback.Type != "approval" || !strings.Contains(string(res.NeedsCallback.Payload), "Approve operation: add") {
		t.Errorf("requireApprovalForOperationTypes: %s", r.body)
	}
	// Approval forced by an annotation pauses first.
	r = e.do(t, "POST", "/api/execute", s.headers(), map[string]any{"code": "return await api.math.wipe({})"})
	if res := r.result(t); res.Status != "paused" || res.NeedsCallback.Type != "approval" {
		t.Errorf("wipe: %s", r.body)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("next:" + r.URL.Path))
	})
	e := newEnv(t, envOptions{prefix: "/atp", next: next})
	r := e.do(t, "GET", "/atp/api/info", nil, nil)
	if r.status != 200 {
		t.Errorf("prefixed info: %d", r.status)
	}
	if r := e.do(t, "GET", "/atp/api/info/", nil, nil); r.status != 200 {
		t.Errorf("trailing slash: %d", r.status)
	}
	if r := e.do(t, "HEAD", "/atp/api/info", nil, nil); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}
	for _, p := range []string{"/api/info", "/atp/api/nope", "/atp/api/v1/atp/llm-client/process/", "/other"} {
		if r := e.do(t, "GET", p, nil, nil); r.status != http.StatusTeapot || string(r.body) != "next:"+p {
			t.Errorf("%s: not handed to Next: %d %s", p, r.status, r.body)
		}
	}
	r = e.do(t, "GET", "/atp/api/execute", nil, nil)
	wantError(t, r, 405, "Method not allowed")
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}

	plain := newEnv(t, envOptions{})
	wantError(t, plain.do(t, "GET", "/api/nope", nil, nil), 404, "Not found")
	wantError(t, plain.do(t, "POST", "/api/resume/", nil, nil), 404, "Not found")
	// Standalone, the envelope's requestId is a UUID echoed in X-Request-ID.
	r = plain.do(t, "GET", "/api/nope", nil, nil)
	var body struct {
		RequestID string `json:"requestId"`
	}
	r.json(t, &body)
	if body.RequestID != r.header.Get("X-Request-ID") || len(body.RequestID) != 36 {
		t.Errorf("requestId %q, header %q", body.RequestID, r.header.Get("X-Request-ID"))
	}
}

func TestExecuteStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.initSession(t, e.key, nil)
	r := e.do(t, "POST", "/api/execute/stream", s.headers(), map[string]any{"code": `
		atp.progress.report('one', 0.25);
		const sum = await api.math.add({a: 1, b: 1});
		atp.progress.report('two', 0.75);
		return sum;`})
	if r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	events := parseSSE(t, r.body)
	if len(events) != 3 || events[0].name != "progress" || events[1].name != "progress" || events[2].name != "result" {
		t.Fatalf("events: %+v", events)
	}
	if events[0].data != `{"message":"one","fraction":0.25}` {
		t.Errorf("progress data %s", events[0].data)
	}
	var res execResult
	if err := json.Unmarshal([]byte(events[2].data), &res); err != nil || res.Status != "completed" || string(res.Result) != `{"sum":2}` {
		t.Errorf("result event %s", events[2].data)
	}
	s = rotated(t, s, r)

	// A pause ends the stream as it is; the resume over plain HTTP works.
	r = e.do(t, "POST", "/api/execute/stream", s.headers(), map[string]any{"code": "atp.progress.report('a', 0); const v = await atp.llm.call({prompt: 'x'}); atp.progress.report('b', 1); return v;"})
	events = parseSSE(t, r.body)
	if err := json.Unmarshal([]byte(events[len(events)-1].data), &res); err != nil || res.Status != "paused" {
		t.Fatalf("paused stream: %s", r.body)
	}
	s = rotated(t, s, r)
	r = e.do(t, "POST", "/api/resume/"+res.ExecutionID, s.headers(), map[string]any{"result": "v"})
	if done := r.result(t); string(done.Result) != `"v"` {
		t.Errorf("resume after stream: %s", r.body)
	}

	// Faults before the stream starts are HTTP errors; after, an error event.
	wantError(t, e.do(t, "POST", "/api/execute/stream", hdr{"X-Client-ID": s.ClientID}, map[string]any{"code": "1"}), 401, "")
	anon := newEnv(t, envOptions{allowAnonymous: true})
	r = anon.do(t, "POST", "/api/execute/stream", nil, map[string]any{"code": "return await atp.llm.call({prompt: 'x'})"})
	events = parseSSE(t, r.body)
	if len(events) != 1 || events[0].name != "error" || !strings.Contains(events[0].data, "Client ID required") {
		t.Errorf("anonymous pause on a stream: %+v", events)
	}
}

type sseEvent struct{ name, data string }

func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var (
		out []sseEvent
		cur sseEvent
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		case line == "" && cur.name != "":
			out = append(out, cur)
			cur = sseEvent{}
		}
	}
	return out
}
