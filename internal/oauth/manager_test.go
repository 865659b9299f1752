package oauth_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestRefreshDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, tc := range []struct {
		name            string
		expires, issued *time.Time
		want            bool
	}{
		{"no expiry", nil, at(-time.Hour), false},
		{"an hour token, 30 min left", at(30 * time.Minute), at(-30 * time.Minute), false},
		{"an hour token, 61 s left", at(61 * time.Second), at(-3539 * time.Second), false},
		{"an hour token, 59 s left", at(59 * time.Second), at(-3541 * time.Second), true},
		{"expired", at(-time.Second), at(-time.Hour), true},
		// 2-minute token: a quarter is 30 s, shorter than 60 s.
		{"2 min token, 45 s left", at(45 * time.Second), at(-75 * time.Second), false},
		{"2 min token, 29 s left", at(29 * time.Second), at(-91 * time.Second), true},
		// 20-second token: refreshed only in its last 5 s, not on every use.
		{"20 s token, 10 s left", at(10 * time.Second), at(-10 * time.Second), false},
		{"20 s token, 4 s left", at(4 * time.Second), at(-16 * time.Second), true},
		{"issue time unknown, 59 s left", at(59 * time.Second), nil, true},
		{"issue time unknown, 61 s left", at(61 * time.Second), nil, false},
	} {
		if got := oauth.RefreshDue(tc.expires, tc.issued, now); got != tc.want {
			t.Errorf("%s: RefreshDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAuthorizeURL: the authorization URL carries the client, the
// callback, the scopes, the auth_params, a fresh state and the PKCE S256
// challenge; a platform without PKCE gets none.
func TestAuthorizeURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engines["sqlite"], envOptions{})
	a, err := e.m.Authorize(t.Context(), e.key, "acme", "user@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if a.AuthorizationURL != a.AuthURL || a.AuthURL != a.ConfirmationURL {
		t.Errorf("authorization_url, auth_url, confirmation_url differ: %+v", a)
	}
	u, err := url.Parse(a.AuthorizationURL)
	if err != nil || !strings.HasPrefix(a.AuthorizationURL, e.provider.AuthURL()+"?") {
		t.Fatalf("authorization URL %q, want the provider's", a.AuthorizationURL)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"client_id": e.provider.ClientID(), "redirect_uri": "https://atp.example.com/oauth/callback",
		"response_type": "code", "scope": "read write", "access_type": "offline", "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 43 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q / code_challenge %q: want 256-bit values", q.Get("state"), q.Get("code_challenge"))
	}
	b, err := e.m.Authorize(t.Context(), e.key, "acme", "user@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := url.Parse(b.AuthorizationURL)
	if u2.Query().Get("state") == q.Get("state") || u2.Query().Get("code_challenge") == q.Get("code_challenge") {
		t.Error("two authorizations share a state or a challenge")
	}
	if diff := cmp.Diff([]string{"read", "write"}, a.Scopes); diff != "" || a.ProviderName != "Acme" ||
		a.DeveloperAppName != "app" || a.AuthMode != "oauth2" || a.RedirectURI != "https://atp.example.com/oauth/callback" {
		t.Errorf("descriptive fields: %+v", a)
	}
	if want := e.clock.Now().Add(oauth.DefaultStateTTL); !a.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v, want %v", a.ExpiresAt, want)
	}

	noPKCE := newEnv(t, engines["sqlite"], envOptions{
		provider: oauthtest.Options{NoPKCE: true},
		platform: func(p *toolkit.Platform) { off := false; p.PKCE = &off },
	})
	c, err := noPKCE.m.Authorize(t.Context(), noPKCE.key, "acme", "u", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.AuthorizationURL, "code_challenge") {
		t.Errorf("a platform without PKCE got a challenge: %s", c.AuthorizationURL)
	}
	noPKCE.connect(t, "u", "")
}

func TestAuthorizeRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engines["sqlite"], envOptions{allowlist: []string{"https://app.example.com", "http://localhost:8080/cb/"}})
	ctx := t.Context()
	toolkitKey := &toolkit.APIKey{ID: "key_tk", Kind: toolkit.KeyToolkit}
	narrowed := &toolkit.APIKey{ID: "key_n", Kind: toolkit.KeyClient, OAuthRedirectURLs: []string{"https://app.example.com/tenant-a"}}
	for _, tc := range []struct {
		name                  string
		key                   *toolkit.APIKey
		platform, user, redir string
		kind                  toolkit.Kind
		code                  string
	}{
		{"unknown platform", e.key, "nope", "u", "", toolkit.KindNotFound, "platform_not_found"},
		{"no user", e.key, "acme", "", "", toolkit.KindInvalid, "invalid_request"},
		{"control character", e.key, "acme", "a\nb", "", toolkit.KindInvalid, "invalid_request"},
		{"long user", e.key, "acme", strings.Repeat("x", 257), "", toolkit.KindInvalid, "invalid_request"},
		{"toolkit key", toolkitKey, "acme", "u", "", toolkit.KindForbidden, "forbidden"},
		{"not http", e.key, "acme", "u", "javascript:alert(1)", toolkit.KindInvalid, "invalid_redirect_url"},
		{"credentials", e.key, "acme", "u", "https://me:pw@app.example.com/x", toolkit.KindInvalid, "invalid_redirect_url"},
		{"not allowed", e.key, "acme", "u", "https://evil.example.com/", toolkit.KindInvalid, "invalid_redirect_url"},
		{"prefix without boundary", e.key, "acme", "u", "https://app.example.com.evil.net/", toolkit.KindInvalid, "invalid_redirect_url"},
		{"other port", e.key, "acme", "u", "https://app.example.com:8443/", toolkit.KindInvalid, "invalid_redirect_url"},
		{"outside the key's list", narrowed, "acme", "u", "https://app.example.com/tenant-b", toolkit.KindInvalid, "invalid_redirect_url"},
	} {
		_, err := e.m.Authorize(ctx, tc.key, tc.platform, tc.user, tc.redir)
		var te *toolkit.Error
		if !errors.As(err, &te) || te.Kind != tc.kind || te.Code != tc.code {
			t.Errorf("%s: Authorize = %v, want kind %v code %s", tc.name, err, tc.kind, tc.code)
		}
	}
	for _, ok := range []string{"https://app.example.com", "https://app.example.com/done?x=1", "https://app.example.com?y", "http://localhost:8080/cb/anything"} {
		if _, err := e.m.Authorize(ctx, e.key, "acme", "u", ok); err != nil {
			t.Errorf("Authorize with %s: %v", ok, err)
		}
	}
	if _, err := e.m.Authorize(ctx, narrowed, "acme", "u", "https://app.example.com/tenant-a/x"); err != nil {
		t.Errorf("Authorize within the key's list: %v", err)
	}
}

// TestFlow runs the whole flow on both engines: authorize, consent,
// callback, stored connection, tokens, scoping to the key, disconnect.
func TestFlow(t *testing.T) {
	t.Parallel()
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open, envOptions{provider: oauthtest.Options{Email: "ada@example.com"}})
			ctx := t.Context()
			_, err := e.m.Tokens(ctx, e.key, "acme", "ada")
			mustKind(t, err, toolkit.KindNotFound, "not_connected")

			res := e.connect(t, "ada", "https://app.example.com/done?tab=1")
			u, _ := url.Parse(res.RedirectURL)
			q := u.Query()
			if u.Host != "app.example.com" || q.Get("tab") != "1" || q.Get("status") != "success" ||
				q.Get("platform") != "acme" || q.Get("external_user_id") != "ada" || q.Get("integration_id") == "" {
				t.Errorf("developer redirect %s", res.RedirectURL)
			}
			ev := e.events.next(t)
			if ev.Type != toolkit.EventConnectionSuccess || ev.KeyID != e.key.ID || ev.PlatformID != "acme" ||
				ev.ExternalUserID != "ada" || ev.IntegrationID != q.Get("integration_id") {
				t.Errorf("event %+v", ev)
			}

			tok, err := e.m.Tokens(ctx, e.key, "acme", "ada")
			if err != nil {
				t.Fatal(err)
			}
			if !e.provider.AccessTokenLive(tok.AccessToken) || tok.IntegrationID != q.Get("integration_id") ||
				tok.ExternalUserEmail == nil || *tok.ExternalUserEmail != "ada@example.com" || tok.Scope != "read write" ||
				tok.RefreshToken != nil || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
				t.Errorf("tokens %+v", tok)
			}
			if e.provider.Refreshes() != 0 {
				t.Errorf("%d refreshes of a fresh token", e.provider.Refreshes())
			}

			// Another key does not see it.
			other, _, err := e.svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "other", Kind: toolkit.KeyClient})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.m.Tokens(ctx, other, "acme", "ada")
			mustKind(t, err, toolkit.KindNotFound, "not_connected")
			_, err = e.m.Status(ctx, other, "acme", "ada")
			mustKind(t, err, toolkit.KindNotFound, "not_connected")

			st, err := e.m.Status(ctx, e.key, "acme", "ada")
			if err != nil || st.Status != toolkit.ConnActive || st.ClientKeyID != e.key.ID {
				t.Errorf("Status = %+v, %v", st, err)
			}
			if err := e.m.Disconnect(ctx, e.key, "acme", "ada"); err != nil {
				t.Fatal(err)
			}
			_, err = e.m.Tokens(ctx, e.key, "acme", "ada")
			mustKind(t, err, toolkit.KindNotFound, "not_connected")
			mustKind(t, e.m.Disconnect(ctx, e.key, "acme", "ada"), toolkit.KindNotFound, "not_connected")

			checkNoSecrets(t, "the logs", e.logs.String(), e.provider.Secrets())
		})
	}
}

// TestExposeRefreshTokenAndIDToken: expose_refresh_token shows the refresh
// token; the email comes from the id_token when there is no userinfo_url;
// without a developer URL the callback shows a page (no redirect).
func TestExposeRefreshTokenAndIDToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engines["sqlite"], envOptions{
		provider: oauthtest.Options{Email: "grace@example.com", IDToken: true, Scope: "read"},
		platform: func(p *toolkit.Platform) { p.ExposeRefreshToken, p.UserinfoURL = true, "" },
	})
	res := e.connect(t, "grace", "")
	if res.RedirectURL != "" || res.PlatformName != "Acme" {
		t.Errorf("without a developer URL: %+v", res)
	}
	tok, err := e.m.Tokens(t.Context(), e.key, "acme", "grace")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == nil || !strings.HasPrefix(*tok.RefreshToken, "rt-") {
		t.Errorf("refresh_token %v, want it exposed", tok.RefreshToken)
	}
	if tok.ExternalUserEmail == nil || *tok.ExternalUserEmail != "grace@example.com" || tok.Scope != "read" {
		t.Errorf("email %v scope %q, want the id_token's email and the granted scope", tok.ExternalUserEmail, tok.Scope)
	}
}

// TestCallbackRejectsStates: a missing, unknown, reused or expired state is
// an invalid_state error and stores nothing.
func TestCallbackRejectsStates(t *testing.T) {
	t.Parallel()
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open, envOptions{stateTTL: 5 * time.Minute})
			ctx := t.Context()

			_, err := e.m.Callback(ctx, url.Values{"code": {"x"}})
			mustKind(t, err, toolkit.KindInvalid, "invalid_state")
			_, err = e.m.Callback(ctx, url.Values{"code": {"x"}, "state": {"never-issued"}})
			mustKind(t, err, toolkit.KindInvalid, "invalid_state")

			// Reused: the first callback wins, the replay is refused.
			a, err := e.m.Authorize(ctx, e.key, "acme", "u1", "")
			if err != nil {
				t.Fatal(err)
			}
			q := consent(t, a.AuthorizationURL)
			if res, err := e.m.Callback(ctx, q); err != nil || !res.Connected {
				t.Fatalf("first callback: %+v, %v", res, err)
			}
			_ = e.events.next(t)
			_, err = e.m.Callback(ctx, q)
			mustKind(t, err, toolkit.KindInvalid, "invalid_state")
			if !strings.Contains(err.Error(), "already used") {
				t.Errorf("replay error %q, want it to say so", err)
			}

			// Expired: nothing is exchanged or stored.
			b, err := e.m.Authorize(ctx, e.key, "acme", "u2", "")
			if err != nil {
				t.Fatal(err)
			}
			q = consent(t, b.AuthorizationURL)
			e.clock.Advance(5*time.Minute + time.Second)
			_, err = e.m.Callback(ctx, q)
			mustKind(t, err, toolkit.KindInvalid, "invalid_state")
			if !strings.Contains(err.Error(), "expired") {
				t.Errorf("expired error %q, want it to say so", err)
			}
			if e.provider.Exchanges() != 1 {
				t.Errorf("%d code exchanges, want only the first callback's", e.provider.Exchanges())
			}
			conns, err := e.store.ListConnections(ctx, toolkit.ConnectionFilter{})
			if err != nil || len(conns) != 1 || conns[0].ExternalUserID != "u1" {
				t.Errorf("connections after rejected callbacks: %v, %v", conns, err)
			}
			e.events.none(t)
		})
	}
}

// TestCallbackFailures: with a good state, a provider error, a missing
// code and a code whose PKCE verifier does not match end at the developer
// URL with status=error, fire connection_failed and store nothing.
func TestCallbackFailures(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	denied := newEnv(t, engines["sqlite"], envOptions{provider: oauthtest.Options{Deny: true}})
	a, err := denied.m.Authorize(ctx, denied.key, "acme", "u", "https://app.example.com/back")
	if err != nil {
		t.Fatal(err)
	}
	res, err := denied.m.Callback(ctx, consent(t, a.AuthorizationURL))
	if err != nil {
		t.Fatal(err)
	}
	wantErrorRedirect(t, res, "access_denied")
	ev := denied.events.next(t)
	if ev.Type != toolkit.EventConnectionFailed || ev.Error != "access_denied" || ev.IntegrationID != "" {
		t.Errorf("event %+v", ev)
	}

	e := newEnv(t, engines["sqlite"], envOptions{})
	// No code at all.
	a, err = e.m.Authorize(ctx, e.key, "acme", "u", "https://app.example.com/back")
	if err != nil {
		t.Fatal(err)
	}
	q := consent(t, a.AuthorizationURL)
	q.Del("code")
	res, err = e.m.Callback(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	wantErrorRedirect(t, res, "invalid_request")
	_ = e.events.next(t)

	// Wrong verifier: a code issued for one authorization (and its PKCE
	// challenge) delivered with the state of another, as an injected code
	// would be. The provider refuses the exchange.
	first, err := e.m.Authorize(ctx, e.key, "acme", "u", "https://app.example.com/back")
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.m.Authorize(ctx, e.key, "acme", "u", "https://app.example.com/back")
	if err != nil {
		t.Fatal(err)
	}
	stolen := consent(t, first.AuthorizationURL)
	mine := consent(t, second.AuthorizationURL)
	mine.Set("code", stolen.Get("code"))
	res, err = e.m.Callback(ctx, mine)
	if err != nil {
		t.Fatal(err)
	}
	wantErrorRedirect(t, res, "invalid_grant")
	// (x/oauth2's "auto" auth style tries again with the other style after
	// a refusal, so the provider may count two.)
	if e.provider.Exchanges() != 0 || e.provider.Rejected() == 0 {
		t.Errorf("exchanges %d, rejected %d: want the provider to refuse the wrong verifier", e.provider.Exchanges(), e.provider.Rejected())
	}
	ev = e.events.next(t)
	if ev.Type != toolkit.EventConnectionFailed || ev.Error != "invalid_grant" {
		t.Errorf("event %+v", ev)
	}
	conns, err := e.store.ListConnections(ctx, toolkit.ConnectionFilter{})
	if err != nil || len(conns) != 0 {
		t.Errorf("connections after failed callbacks: %v, %v", conns, err)
	}
	checkNoSecrets(t, "the logs", e.logs.String(), e.provider.Secrets())
}

func wantErrorRedirect(t *testing.T, res *oauth.CallbackResult, code string) {
	t.Helper()
	u, err := url.Parse(res.RedirectURL)
	if err != nil || res.Connected || res.ErrorCode != code {
		t.Fatalf("callback result %+v, want error %s", res, code)
	}
	q := u.Query()
	if u.Host != "app.example.com" || q.Get("status") != "error" || q.Get("error") != code ||
		q.Get("platform") != "acme" || q.Get("external_user_id") != "u" {
		t.Errorf("developer redirect %s, want status=error&error=%s", res.RedirectURL, code)
	}
}

// TestRefreshRotates: a token near expiry is refreshed before it is handed
// out; the rotated refresh token is stored (the next refresh uses it and
// works, the old one is spent at the provider).
func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open, envOptions{platform: func(p *toolkit.Platform) { p.ExposeRefreshToken = true }})
			ctx := t.Context()
			e.connect(t, "u", "")
			first, err := e.m.Tokens(ctx, e.key, "acme", "u")
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(59*time.Minute + 30*time.Second) // 30 s left: due
			second, err := e.m.Tokens(ctx, e.key, "acme", "u")
			if err != nil {
				t.Fatal(err)
			}
			if e.provider.Refreshes() != 1 || second.AccessToken == first.AccessToken || *second.RefreshToken == *first.RefreshToken {
				t.Fatalf("after the margin: %d refreshes, new access token %v, rotated refresh token %v",
					e.provider.Refreshes(), second.AccessToken != first.AccessToken, *second.RefreshToken != *first.RefreshToken)
			}
			if !second.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
				t.Errorf("expires_at %v, want an hour from the refresh", second.ExpiresAt)
			}
			// Not due again: no refresh.
			if _, err := e.m.Tokens(ctx, e.key, "acme", "u"); err != nil || e.provider.Refreshes() != 1 {
				t.Errorf("a fresh token was refreshed again (%d), %v", e.provider.Refreshes(), err)
			}
			e.clock.Advance(59*time.Minute + 30*time.Second)
			third, err := e.m.Tokens(ctx, e.key, "acme", "u")
			if err != nil {
				t.Fatalf("the second refresh, with the rotated refresh token: %v", err)
			}
			if e.provider.Refreshes() != 2 || third.AccessToken == second.AccessToken {
				t.Errorf("second refresh: %d refreshes", e.provider.Refreshes())
			}
			// Tools get the same fresh token.
			tok, err := e.m.AccessToken(ctx, e.key, "acme", "u")
			if err != nil || tok != third.AccessToken {
				t.Errorf("AccessToken = %v, want the fresh token", err)
			}
			checkNoSecrets(t, "the logs", e.logs.String(), e.provider.Secrets())
		})
	}
}

// concurrentTokens asks for tokens from n goroutines at once, spread over
// managers, and returns the access tokens they got.
func concurrentTokens(t *testing.T, key *toolkit.APIKey, managers []*oauth.Manager, n int) map[string]int {
	t.Helper()
	var (
		mu  sync.Mutex
		got = map[string]int{}
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			tok, err := managers[i%len(managers)].Tokens(t.Context(), key, "acme", "u")
			if err != nil {
				t.Errorf("Tokens: %v", err)
				return
			}
			mu.Lock()
			got[tok.AccessToken]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

// TestConcurrentRefreshOneInstance: 50 concurrent requests for a token that
// is due cause exactly one refresh, and all get its access token.
func TestConcurrentRefreshOneInstance(t *testing.T) {
	t.Parallel()
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open, envOptions{})
			e.connect(t, "u", "")
			e.clock.Advance(time.Hour) // expired
			got := concurrentTokens(t, e.key, []*oauth.Manager{e.m}, 50)
			t.Logf("%s: 50 concurrent requests → %d refresh(es), %d distinct access token(s)", name, e.provider.Refreshes(), len(got))
			if e.provider.Refreshes() != 1 || len(got) != 1 {
				t.Errorf("%d refreshes and %d distinct tokens for 50 concurrent requests, want 1 and 1", e.provider.Refreshes(), len(got))
			}
			for tok := range got {
				if !e.provider.AccessTokenLive(tok) {
					t.Error("handed out a token the provider does not know")
				}
			}
		})
	}
}

// TestConcurrentRefreshTwoInstancesPostgres: two instances sharing one
// PostgreSQL database, 25 requests each, one refresh in all.
func TestConcurrentRefreshTwoInstancesPostgres(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	a := newEnv(t, nil, envOptions{sameStore: storetest.OpenPostgresURL(t, url)})
	// Instance b: another pool on the same database, the same key, its own
	// Manager; it uses the platform and key a created.
	b := newEnv(t, nil, envOptions{sameStore: storetest.OpenPostgresURL(t, url), sameCipher: a.cipher})
	b.clock = a.clock
	b.m = oauth.NewManager(oauth.Config{Store: b.store, Sealer: a.cipher, PublicURL: "https://atp.example.com", Now: a.clock.Now})
	if _, err := a.svc.CreatePlatform(t.Context(), &toolkit.Platform{
		ID: "acme", Name: "Acme", AuthURL: a.provider.AuthURL(), TokenURL: a.provider.TokenURL(),
		ClientID: a.provider.ClientID(), ClientSecret: a.provider.ClientSecret(), Scopes: []string{"read"},
	}); err != nil {
		t.Fatal(err)
	}
	key, _, err := a.svc.CreateAPIKey(t.Context(), toolkit.NewAPIKey{Name: "app", Kind: toolkit.KeyClient})
	if err != nil {
		t.Fatal(err)
	}
	a.key = key
	a.connect(t, "u", "")
	a.clock.Advance(time.Hour)
	got := concurrentTokens(t, key, []*oauth.Manager{a.m, b.m}, 50)
	t.Logf("two instances: 50 concurrent requests → %d refresh(es), %d distinct access token(s)", a.provider.Refreshes(), len(got))
	if a.provider.Refreshes() != 1 || len(got) != 1 {
		t.Errorf("%d refreshes and %d distinct tokens across two instances, want 1 and 1", a.provider.Refreshes(), len(got))
	}
}

// TestRefreshRejected: a refresh the provider refuses (the grant was
// revoked) marks the connection needs_reauth, fires connection_expired,
// and token requests say the user must reconnect; connecting again heals.
func TestRefreshRejected(t *testing.T) {
	t.Parallel()
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open, envOptions{})
			ctx := t.Context()
			e.connect(t, "u", "")
			_ = e.events.next(t)
			e.provider.RevokeAll()
			e.clock.Advance(time.Hour)

			_, err := e.m.Tokens(ctx, e.key, "acme", "u")
			mustKind(t, err, toolkit.KindConflict, "needs_reauth")
			rejected := e.provider.Rejected()
			if !strings.Contains(err.Error(), "reconnect") {
				t.Errorf("error %q, want it to say reconnect", err)
			}
			ev := e.events.next(t)
			if ev.Type != toolkit.EventConnectionExpired || ev.PlatformID != "acme" || ev.ExternalUserID != "u" || ev.IntegrationID == "" {
				t.Errorf("event %+v", ev)
			}
			st, err := e.m.Status(ctx, e.key, "acme", "u")
			if err != nil || st.Status != toolkit.ConnNeedsReauth {
				t.Errorf("status %+v, %v", st, err)
			}
			// No second refresh attempt, no second event.
			_, err = e.m.Tokens(ctx, e.key, "acme", "u")
			mustKind(t, err, toolkit.KindConflict, "needs_reauth")
			_, err = e.m.AccessToken(ctx, e.key, "acme", "u")
			var terr *toolkit.ToolError
			if !errors.As(err, &terr) || terr.Code != toolkit.ToolErrNeedsReauth || !strings.Contains(terr.Message, `"acme"`) {
				t.Errorf("AccessToken = %v, want a needs_reauth tool error naming the platform", err)
			}
			if e.provider.Rejected() != rejected || e.provider.Refreshes() != 0 {
				t.Errorf("token requests went on after the refusal: %d → %d", rejected, e.provider.Rejected())
			}
			e.events.none(t)

			e.connect(t, "u", "")
			if _, err := e.m.Tokens(ctx, e.key, "acme", "u"); err != nil {
				t.Errorf("after reconnecting: %v", err)
			}
		})
	}
}

// TestRefreshUnavailable: a provider that cannot be reached does not mark
// the connection: a token still valid is handed out, an expired one is a
// retryable error.
func TestRefreshUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engines["sqlite"], envOptions{})
	ctx := t.Context()
	e.connect(t, "u", "")
	before, err := e.m.Tokens(ctx, e.key, "acme", "u")
	if err != nil {
		t.Fatal(err)
	}
	e.provider.Close()
	e.clock.Advance(59*time.Minute + 30*time.Second)
	got, err := e.m.Tokens(ctx, e.key, "acme", "u")
	if err != nil || got.AccessToken != before.AccessToken {
		t.Errorf("with the provider down and 30 s left: %v, want the current token", err)
	}
	e.clock.Advance(time.Minute)
	_, err = e.m.Tokens(ctx, e.key, "acme", "u")
	mustKind(t, err, toolkit.KindUnavailable, "refresh_failed")
	st, err := e.m.Status(ctx, e.key, "acme", "u")
	if err != nil || st.Status != toolkit.ConnActive {
		t.Errorf("status %+v, %v: a passing failure must not mark the connection", st, err)
	}
}

// TestStoredValuesAreSealed: the store holds no token, code or verifier
// in the clear, and the state only as a hash.
func TestStoredValuesAreSealed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engines["sqlite"], envOptions{})
	ctx := t.Context()
	a, err := e.m.Authorize(ctx, e.key, "acme", "u", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(a.AuthorizationURL)
	state := u.Query().Get("state")
	q := consent(t, a.AuthorizationURL)
	if _, err := e.m.Callback(ctx, q); err != nil {
		t.Fatal(err)
	}
	c, err := e.store.FindConnection(ctx, "acme", "u", e.key.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := fmt.Sprintf("%+v", *c)
	checkNoSecrets(t, "the stored connection", stored, e.provider.Secrets())
	for _, v := range []string{c.SealedAccessToken, c.SealedRefreshToken} {
		if !strings.HasPrefix(v, "v1."+e.cipher.KeyID()+".") {
			t.Errorf("sealed value %.12s… is not tagged with the key id %s", v, e.cipher.KeyID())
		}
	}
	h := sha256.Sum256([]byte(state))
	_, err = e.store.TakeOAuthState(ctx, h[:])
	mustKind(t, err, toolkit.KindNotFound, "not_found") // used up
}
