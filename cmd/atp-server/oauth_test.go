package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// freeAddr returns a loopback address with a free port. The OAuth tests
// need the server's address before it starts: it is in ATP_PUBLIC_URL,
// which builds the redirect URI the provider sends the browser to.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// developer is the developer's application: its redirect URL records the
// query the browser brings back.
type developer struct {
	*httptest.Server
	got chan url.Values
}

func newDeveloper(t *testing.T) *developer {
	t.Helper()
	d := &developer{got: make(chan url.Values, 10)}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.got <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>back</title><p id=status>%s</p>", url.QueryEscape(r.URL.Query().Get("status")))
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *developer) next(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-d.got:
		return q
	case <-time.After(20 * time.Second):
		t.Fatal("the browser never came back to the developer's redirect URL")
		return nil
	}
}

// hookReceiver records webhook deliveries with their signature checked.
type hookReceiver struct {
	*httptest.Server
	secret string // set once the webhook is registered
	got    chan map[string]any
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{got: make(chan map[string]any, 10)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(toolkit.WebhookSignatureHeader)
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		var unix int64
		fmt.Sscan(ts, &unix)
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		if sig != toolkit.SignWebhook([]byte(h.secret), time.Unix(unix, 0), body) {
			ev = map[string]any{"bad_signature": sig}
		}
		h.got <- ev
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case ev := <-h.got:
		if ev["bad_signature"] != nil {
			t.Fatalf("a delivery's signature does not verify: %v", ev)
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery")
		return nil
	}
}

// chatCall is call with the ChatATP header scheme.
func chatCall(t *testing.T, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "ApiKey "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, not a JSON object: %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// oauthWorld is what a scenario set up: the provider, the developer's
// application, the webhook receiver, the keys, and every secret that must
// never be stored or logged in the clear.
type oauthWorld struct {
	provider  *oauthtest.Provider
	dev       *developer
	hooks     *hookReceiver
	clientKey string
	secrets   []string
}

// setupOAuth configures a platform for provider, a toolkit whose http tool
// acts for the end user on it (and one with a static secret), a client key
// and its webhook.
func setupOAuth(t *testing.T, s *testServer, adminKey string, provider *oauthtest.Provider) *oauthWorld {
	t.Helper()
	w := &oauthWorld{provider: provider, dev: newDeveloper(t), hooks: newHookReceiver(t)}
	code, out := call(t, "POST", s.URL+"/admin/v1/platforms", adminKey, map[string]any{
		"id": "acme", "name": "Acme", "auth_url": provider.AuthURL(), "token_url": provider.TokenURL(),
		"client_id": provider.ClientID(), "client_secret": provider.ClientSecret(), "scopes": []string{"read"},
		"userinfo_url": provider.UserinfoURL(),
	})
	mustStatus(t, http.StatusCreated, code, out, "create platform")
	const toolSecret = "static-tool-secret-0123456789"
	code, out = call(t, "POST", s.URL+"/admin/v1/toolkits", adminKey, map[string]any{
		"id": "acme_api", "name": "Acme API", "description": "The end user's Acme account",
		"tools": []any{
			map[string]any{
				"name": "me", "description": "Who the end user is at Acme",
				"input_schema": map[string]any{"type": "object"},
				"executor": map[string]any{"kind": "http", "method": "GET", "url": provider.APIURL(),
					"auth": map[string]any{"type": "oauth2", "platform": "acme"}},
			},
			map[string]any{
				"name": "static", "description": "A tool with its own key",
				"input_schema": map[string]any{"type": "object"},
				"executor": map[string]any{"kind": "http", "method": "GET", "url": provider.APIURL(),
					"auth": map[string]any{"type": "bearer", "secret": toolSecret}},
			},
		},
	})
	mustStatus(t, http.StatusCreated, code, out, "create toolkit")
	code, out = call(t, "POST", s.URL+"/admin/v1/api-keys", adminKey, map[string]any{"name": "app", "kind": "client"})
	mustStatus(t, http.StatusCreated, code, out, "create client key")
	w.clientKey = out["key"].(string)

	code, out = chatCall(t, "POST", s.URL+"/api/v1/atp/llm-client/webhooks/register/", w.clientKey,
		map[string]any{"url": w.hooks.URL, "events": []string{"connection_success", "connection_expired"}})
	mustStatus(t, http.StatusCreated, code, out, "register webhook")
	w.hooks.secret = out["secret"].(string)
	w.secrets = []string{toolSecret, w.hooks.secret, w.clientKey}
	return w
}

// allSecrets adds what the provider issued to the world's secrets.
func (w *oauthWorld) allSecrets() []string {
	return append(append([]string(nil), w.secrets...), w.provider.Secrets()...)
}

// connectOverHTTP starts a connection through the ChatATP route and
// follows the authorization URL like a browser that consents at once:
// provider → /oauth/callback → the developer's URL.
func (w *oauthWorld) connectOverHTTP(t *testing.T, s *testServer, user string) (authURL string) {
	t.Helper()
	code, out := chatCall(t, "POST", s.URL+"/api/v1/atp/llm-client/oauth/confirmation/acme/", w.clientKey,
		map[string]any{"external_user_id": user, "developer_redirect_url": w.dev.URL + "/done", "api_key": w.clientKey})
	mustStatus(t, http.StatusOK, code, out, "initiate_oauth_connection")
	authURL, _ = out["authorization_url"].(string)
	if authURL == "" || out["auth_url"] != authURL {
		t.Fatalf("initiate answered %v, want authorization_url and auth_url", out)
	}
	resp, err := http.Get(authURL) // follows the redirects, as a browser does
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := w.dev.next(t)
	if q.Get("status") != "success" || q.Get("platform") != "acme" || q.Get("external_user_id") != user {
		t.Fatalf("the developer's URL got %v, want status=success&platform=acme&external_user_id=%s", q, user)
	}
	return authURL
}

// runOAuthScenario drives the lifecycle through both client surfaces and
// the native API, and injection into an http tool (native and monday).
func runOAuthScenario(t *testing.T, s *testServer, adminKey string) *oauthWorld {
	t.Helper()
	w := setupOAuth(t, s, adminKey, oauthtest.New(t, oauthtest.Options{Email: "ada@example.com"}))
	const user = "ada+test@example.com" // '@', '.', '+': the SDK puts it in the path unencoded
	tokensURL := s.URL + "/api/v1/atp/llm-client/oauth/tokens/acme/" + user + "/"

	// Before connecting: the SDK polls on 404; a tool says which platform to connect.
	code, out := chatCall(t, "GET", tokensURL, w.clientKey, nil)
	mustStatus(t, http.StatusNotFound, code, out, "tokens before connecting")
	code, out = call(t, "POST", s.URL+"/v1/toolkits/acme_api/tools/me/call", w.clientKey, map[string]any{"external_user_id": user})
	mustStatus(t, http.StatusOK, code, out, "tool call before connecting")
	terr, _ := out["error"].(map[string]any)
	if terr["code"] != toolkit.ToolErrNotConnected || !strings.Contains(fmt.Sprint(terr["message"]), `"acme"`) {
		t.Errorf("tool call before connecting = %v, want a not_connected tool error naming the platform", out)
	}

	authURL := w.connectOverHTTP(t, s, user)
	u, _ := url.Parse(authURL)
	w.secrets = append(w.secrets, u.Query().Get("state"))

	ev := w.hooks.next(t)
	data, _ := ev["data"].(map[string]any)
	if ev["type"] != "connection_success" || data["platform_id"] != "acme" || data["external_user_id"] != user || data["integration_id"] == nil {
		t.Errorf("webhook %v", ev)
	}

	// ChatATP wait_for_connection / get_user_tokens.
	code, out = chatCall(t, "GET", tokensURL, w.clientKey, nil)
	mustStatus(t, http.StatusOK, code, out, "tokens after connecting")
	for _, k := range []string{"integration_id", "external_user_id", "external_user_email", "access_token", "refresh_token", "expires_at", "scope"} {
		if _, ok := out[k]; !ok {
			t.Errorf("tokens answer lacks %s: %v", k, out)
		}
	}
	access, _ := out["access_token"].(string)
	if out["integration_id"] != data["integration_id"] || out["external_user_email"] != "ada@example.com" ||
		out["refresh_token"] != nil || out["scope"] != "read" || !w.provider.AccessTokenLive(access) {
		t.Errorf("tokens %v", out)
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(out["expires_at"])); err != nil {
		t.Errorf("expires_at %v: %v", out["expires_at"], err)
	}

	// The native API sees the same connection; another key sees none.
	native := s.URL + "/v1/oauth/acme/connections/" + url.PathEscape(user)
	code, out = call(t, "GET", native, w.clientKey, nil)
	mustStatus(t, http.StatusOK, code, out, "native status")
	if out["status"] != "active" || out["access_token"] != nil {
		t.Errorf("native status %v", out)
	}
	code, out = call(t, "GET", native+"/tokens", w.clientKey, nil)
	mustStatus(t, http.StatusOK, code, out, "native tokens")
	if out["access_token"] != access {
		t.Error("the native API answered another access token")
	}
	code, out = call(t, "POST", s.URL+"/admin/v1/api-keys", adminKey, map[string]any{"name": "other", "kind": "client"})
	mustStatus(t, http.StatusCreated, code, out, "create another client key")
	other := out["key"].(string)
	w.secrets = append(w.secrets, other)
	code, out = chatCall(t, "GET", tokensURL, other, nil)
	mustStatus(t, http.StatusNotFound, code, out, "tokens with another key")

	// The admin listing has the connection, without tokens.
	code, out = call(t, "GET", s.URL+"/admin/v1/connections?platform=acme", adminKey, nil)
	mustStatus(t, http.StatusOK, code, out, "admin connections")
	if b, _ := json.Marshal(out); strings.Contains(string(b), access) || !strings.Contains(string(b), `"needs_reauth"`) && !strings.Contains(string(b), `"active"`) {
		t.Errorf("admin listing %s", b)
	}

	// Injection: the http tool gets the end user's token as its bearer.
	code, out = call(t, "POST", s.URL+"/v1/toolkits/acme_api/tools/me/call", w.clientKey, map[string]any{"external_user_id": user})
	mustStatus(t, http.StatusOK, code, out, "tool call")
	res, _ := out["result"].(map[string]any)
	if res["token_sha256"] != oauthtest.Fingerprint(access) {
		t.Errorf("tool call = %v, want the provider to have seen the end user's token", out)
	}

	// monday: X-User-ID names the end user of code running in the sandbox.
	code, out = mondayCall(t, s.URL+"/api/init", map[string]string{"X-API-Key": w.clientKey}, map[string]any{"tools": []any{}})
	mustStatus(t, http.StatusOK, code, out, "monday init")
	code, out = mondayCall(t, s.URL+"/api/execute", map[string]string{
		"X-Client-ID": fmt.Sprint(out["clientId"]), "Authorization": "Bearer " + fmt.Sprint(out["token"]), "X-User-ID": user,
	}, map[string]any{"code": "return await api.acme_api.me({})"})
	mustStatus(t, http.StatusOK, code, out, "monday execute")
	if r, _ := out["result"].(map[string]any); out["status"] != "completed" || r["token_sha256"] != oauthtest.Fingerprint(access) {
		t.Errorf("monday execute = %v, want the tool to have used the X-User-ID's token", out)
	}
	return w
}

func mondayCall(t *testing.T, url string, header map[string]string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// checkClean fails if any secret appears in text.
func checkClean(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(text, sec) {
			t.Errorf("%s holds a secret in the clear (%.10s…)", what, sec)
		}
	}
}

// dumpSQLite reads every column of every table of the embedded database
// as text, and with raw the bytes of its files (free pages and the WAL
// included).
func dumpSQLite(t *testing.T, dataDir string, raw bool) string {
	t.Helper()
	var b strings.Builder
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "atp.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s\t%v\n", table, v)
			}
		}
		rows.Close()
	}
	if !strings.Contains(b.String(), "oauth_connections") {
		t.Fatal("the dump has no connection row: it dumped nothing useful")
	}
	files, _ := filepath.Glob(filepath.Join(dataDir, "atp.db*"))
	if !raw {
		files = nil
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
	}
	return b.String()
}

// dumpPostgres reads every row of every table of the database as text.
func dumpPostgres(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM "`+table+`" t`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "%s\t%s\n", table, l)
		}
	}
	if !strings.Contains(b.String(), "oauth_connections") {
		t.Fatal("the dump has no connection row: it dumped nothing useful")
	}
	return b.String()
}

// TestRunOAuthEmbedded: the whole lifecycle over real HTTP on the
// embedded engine; afterwards neither the database (every column of every
// table, and the raw file) nor the logs (at debug level) hold a token, a
// code, a verifier, a state or a secret in the clear.
func TestRunOAuthEmbedded(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	addr := freeAddr(t)
	s := startServer(t, map[string]string{
		"ATP_DATA_DIR": dataDir, "ATP_ADDR": addr, "ATP_PUBLIC_URL": "http://" + addr,
		"ATP_HTTP_ALLOW_PRIVATE": "true", "ATP_LOG_LEVEL": "debug",
	})
	w := runOAuthScenario(t, s, s.AdminKey)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s.stopped = true
	secrets := w.allSecrets()
	checkClean(t, "the logs", s.Stderr.String()+s.Stdout.String(), secrets)
	// The generated admin key is printed once to stderr by design; the
	// database keeps only its hash.
	checkClean(t, "the database", dumpSQLite(t, dataDir, true), append(secrets, s.AdminKey))
}

// TestRunOAuthPostgres: the same on PostgreSQL.
func TestRunOAuthPostgres(t *testing.T) {
	t.Parallel()
	dbURL := storetest.PostgresURL(t)
	addr := freeAddr(t)
	const adminKey = "admin-key-for-the-oauth-test-0123456789"
	s := startServer(t, map[string]string{
		"DATABASE_URL": dbURL, "ATP_ENCRYPTION_KEY": oauth.EncodeKey(oauth.NewKey()),
		"ATP_JWT_SECRET": strings.Repeat("j", 40), "ATP_ADMIN_KEY": adminKey,
		"ATP_ADDR": addr, "ATP_PUBLIC_URL": "http://" + addr, "ATP_HTTP_ALLOW_PRIVATE": "true", "ATP_LOG_LEVEL": "debug",
	})
	w := runOAuthScenario(t, s, adminKey)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s.stopped = true
	secrets := w.allSecrets()
	checkClean(t, "the database", dumpPostgres(t, dbURL), append(secrets, adminKey))
	checkClean(t, "the logs", s.Stderr.String()+s.Stdout.String(), secrets)
}

// TestRunKeysRotate: values sealed under an old key are re-sealed by
// `keys rotate` (counts printed; a second run re-seals nothing), after
// which the server runs with the new key alone and still opens every
// secret: the connection's tokens, the tool's secret, the webhook's.
func TestRunKeysRotate(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	addr := freeAddr(t)
	oldKey, newKey := oauth.NewKey(), oauth.NewKey()
	env := map[string]string{
		"ATP_DATA_DIR": dataDir, "ATP_ADDR": addr, "ATP_PUBLIC_URL": "http://" + addr,
		"ATP_HTTP_ALLOW_PRIVATE": "true", "ATP_ENCRYPTION_KEY": oauth.EncodeKey(oldKey),
		"ATP_ADMIN_KEY": "admin-key-for-the-rotate-test-0123456789",
	}
	s := startServer(t, env)
	w := setupOAuth(t, s, env["ATP_ADMIN_KEY"], oauthtest.New(t, oauthtest.Options{Email: "ada@example.com"}))
	w.connectOverHTTP(t, s, "ada")
	_ = w.hooks.next(t)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s.stopped = true
	oldTag := "v1." + oauth.KeyID(oldKey) + "."
	if dump := dumpSQLite(t, dataDir, false); !strings.Contains(dump, oldTag) {
		t.Fatal("nothing is sealed under the old key before the rotation")
	}

	rotateEnv := withDefaults(map[string]string{
		"ATP_ENCRYPTION_KEY": oauth.EncodeKey(newKey), "ATP_ENCRYPTION_KEY_OLD": oauth.EncodeKey(oldKey),
	}, env)
	var out, errOut syncBuffer
	if err := run(t.Context(), []string{"atp-server", "keys", "rotate"}, getenvFrom(rotateEnv), &out, &errOut); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, errOut.String())
	}
	// A platform client secret, a tool secret, a webhook secret, and the
	// connection's access and refresh tokens.
	for _, want := range []string{"re-sealed 5 of 5", "1 platform client secrets", "1 tool secrets", "2 connection tokens", "1 webhook secrets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("keys rotate printed:\n%s\nwant %q", out.String(), want)
		}
	}
	out = syncBuffer{}
	if err := run(t.Context(), []string{"atp-server", "keys", "rotate"}, getenvFrom(rotateEnv), &out, &errOut); err != nil {
		t.Fatalf("keys rotate again: %v", err)
	}
	if !strings.Contains(out.String(), "nothing to re-seal") {
		t.Errorf("second keys rotate printed %q, want nothing to re-seal", out.String())
	}
	if dump := dumpSQLite(t, dataDir, false); strings.Contains(dump, oldTag) || !strings.Contains(dump, "v1."+oauth.KeyID(newKey)+".") {
		t.Error("after the rotation a value is still sealed under the old key")
	}

	// Only the new key now: every secret still opens.
	env["ATP_ENCRYPTION_KEY"] = oauth.EncodeKey(newKey)
	s = startServer(t, env)
	code, res := chatCall(t, "GET", s.URL+"/api/v1/atp/llm-client/oauth/tokens/acme/ada/", w.clientKey, nil)
	mustStatus(t, http.StatusOK, code, res, "tokens after rotation")
	if !w.provider.AccessTokenLive(fmt.Sprint(res["access_token"])) {
		t.Error("the access token opened after rotation is not the provider's")
	}
	code, res = call(t, "POST", s.URL+"/v1/toolkits/acme_api/tools/static/call", w.clientKey, map[string]any{})
	mustStatus(t, http.StatusOK, code, res, "static tool after rotation")
	if terr, ok := res["error"].(map[string]any); ok && strings.Contains(fmt.Sprint(terr["message"]), "credential") {
		t.Errorf("the tool's secret does not open after rotation: %v", res)
	}
	code, res = call(t, "POST", s.URL+"/v1/toolkits/acme_api/tools/me/call", w.clientKey, map[string]any{"external_user_id": "ada"})
	mustStatus(t, http.StatusOK, code, res, "oauth tool after rotation")
	if r, _ := res["result"].(map[string]any); r["token_sha256"] == nil {
		t.Errorf("oauth tool after rotation = %v", res)
	}
}
