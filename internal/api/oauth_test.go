package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/api"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// oauthClock is the Manager's clock, set by the test.
type oauthClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *oauthClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *oauthClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// oauthServer is the api handler with a Manager, on SQLite, behind a real
// listener whose URL is the public URL.
type oauthServer struct {
	srv      *httptest.Server
	provider *oauthtest.Provider
	clock    *oauthClock
	key      string
}

func newOAuthServer(t *testing.T) *oauthServer {
	t.Helper()
	o := &oauthServer{provider: oauthtest.New(t, oauthtest.Options{}), clock: &oauthClock{t: time.Now().UTC()}}
	st := storetest.OpenSQLite(t)
	c, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	svc := toolkit.NewService(toolkit.Config{Store: st, Sealer: c})
	var h http.Handler
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(o.srv.Close)
	m := oauth.NewManager(oauth.Config{Store: st, Sealer: c, PublicURL: o.srv.URL, Now: o.clock.Now})
	h = api.NewHandler(api.Config{Service: svc, OAuth: m})
	if _, err := svc.CreatePlatform(t.Context(), &toolkit.Platform{
		ID: "acme", Name: "Acme <Corp>", AuthURL: o.provider.AuthURL(), TokenURL: o.provider.TokenURL(),
		ClientID: o.provider.ClientID(), ClientSecret: o.provider.ClientSecret(),
	}); err != nil {
		t.Fatal(err)
	}
	_, o.key, err = svc.CreateAPIKey(t.Context(), toolkit.NewAPIKey{Name: "app", Kind: toolkit.KeyClient})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *oauthServer) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, o.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// page GETs a callback URL without following redirects.
func page(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestOAuthCallbackPages: bad states get a 400 HTML page and store
// nothing; a flow without a developer URL ends on an escaped "connected"
// page; the native routes see the connection.
func TestOAuthCallbackPages(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t)
	for _, q := range []string{"", "?state=nope&code=x", "?state=%3Cscript%3E&code=x"} {
		resp, body := page(t, o.srv.URL+"/oauth/callback"+q)
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			strings.Contains(body, "<script>") || !strings.Contains(body, "Start connecting again") {
			t.Errorf("callback%s: %d %s\n%s", q, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}

	code, out := o.do(t, "POST", "/v1/oauth/acme/connect", `{"external_user_id":"a/b@example.com"}`)
	if code != http.StatusOK {
		t.Fatalf("connect: %d %v", code, out)
	}
	auth := out["authorization_url"].(string)
	if out["redirect_uri"] != o.srv.URL+"/oauth/callback" {
		t.Errorf("redirect_uri %v", out["redirect_uri"])
	}
	resp, _ := page(t, auth) // the provider consents and sends the browser back
	callback := resp.Header.Get("Location")
	resp, body := page(t, callback)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Acme &lt;Corp&gt; account is connected") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("connected page: %d\n%s", resp.StatusCode, body)
	}
	// Replaying the callback URL is refused.
	if resp, _ := page(t, callback); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", resp.StatusCode)
	}

	user := url.PathEscape("a/b@example.com")
	code, out = o.do(t, "GET", "/v1/oauth/acme/connections/"+user, "")
	if code != http.StatusOK || out["external_user_id"] != "a/b@example.com" || out["status"] != "active" {
		t.Errorf("status: %d %v", code, out)
	}
	code, out = o.do(t, "GET", "/v1/oauth/acme/connections/"+user+"/tokens", "")
	if code != http.StatusOK || out["access_token"] == nil || out["refresh_token"] != nil {
		t.Errorf("tokens: %d %v", code, out)
	}
	if code, _ := o.do(t, "DELETE", "/v1/oauth/acme/connections/"+user, ""); code != http.StatusNoContent {
		t.Errorf("disconnect: %d", code)
	}
	code, out = o.do(t, "GET", "/v1/oauth/acme/connections/"+user+"/tokens", "")
	if code != http.StatusNotFound || out["code"] != "not_connected" {
		t.Errorf("tokens after disconnect: %d %v", code, out)
	}
	code, out = o.do(t, "POST", "/v1/oauth/acme/connect", `{"external_user_id":"u","developer_redirect_url":"ftp://x"}`)
	if code != http.StatusBadRequest || out["code"] != "invalid_redirect_url" {
		t.Errorf("bad redirect: %d %v", code, out)
	}
	code, out = o.do(t, "POST", "/v1/oauth/nope/connect", `{"external_user_id":"u"}`)
	if code != http.StatusNotFound || out["code"] != "platform_not_found" {
		t.Errorf("unknown platform: %d %v", code, out)
	}
}

// TestOAuthTokensOverHTTP: 50 concurrent token requests over HTTP for a
// due token cause one refresh; after the provider revokes the grant the
// route answers 409 needs_reauth.
func TestOAuthTokensOverHTTP(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t)
	code, out := o.do(t, "POST", "/v1/oauth/acme/connect", `{"external_user_id":"u"}`)
	if code != http.StatusOK {
		t.Fatalf("connect: %d %v", code, out)
	}
	resp, _ := page(t, out["authorization_url"].(string))
	if resp, body := page(t, resp.Header.Get("Location")); resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	o.clock.Advance(time.Hour)
	var wg sync.WaitGroup
	tokens := make(chan string, 50)
	for range 50 {
		wg.Go(func() {
			code, out := o.do(t, "GET", "/v1/oauth/acme/connections/u/tokens", "")
			if code != http.StatusOK {
				t.Errorf("tokens: %d %v", code, out)
				return
			}
			tokens <- out["access_token"].(string)
		})
	}
	wg.Wait()
	close(tokens)
	distinct := map[string]bool{}
	for tok := range tokens {
		distinct[tok] = true
	}
	t.Logf("50 concurrent HTTP token requests → %d refresh(es), %d distinct token(s)", o.provider.Refreshes(), len(distinct))
	if o.provider.Refreshes() != 1 || len(distinct) != 1 {
		t.Errorf("%d refreshes, %d distinct tokens; want 1 and 1", o.provider.Refreshes(), len(distinct))
	}

	o.provider.RevokeAll()
	o.clock.Advance(time.Hour)
	code, out = o.do(t, "GET", "/v1/oauth/acme/connections/u/tokens", "")
	if code != http.StatusConflict || out["code"] != "needs_reauth" || !strings.Contains(out["error"].(string), "reconnect") {
		t.Errorf("after revocation: %d %v, want 409 needs_reauth", code, out)
	}
}
