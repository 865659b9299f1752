package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Options configure a Provider. The zero value is a provider that wants
// PKCE, rotates refresh tokens and issues tokens valid for an hour.
type Options struct {
	ClientID, ClientSecret string // defaults "client-id", "client-secret"
	// ExpiresIn is the expires_in of issued access tokens, in seconds;
	// 0 → 3600, negative → none sent.
	ExpiresIn int
	// NoRotation keeps the refresh token across refreshes (it is not
	// sent again).
	NoRotation bool
	// NoPKCE accepts authorization requests without a code challenge.
	NoPKCE bool
	// ConsentPage makes the authorization endpoint answer an HTML page
	// whose form submits itself (what a browser test needs) instead of
	// redirecting at once.
	ConsentPage bool
	// Deny makes every authorization end with error=access_denied.
	Deny bool
	// Email is the end user's email in userinfo and in the id_token;
	// "" → no email anywhere.
	Email string
	// IDToken adds an id_token carrying Email to token answers.
	IDToken bool
	// Scope is the scope granted; "" → the scope asked for.
	Scope string
}

// Provider is a running fake OAuth 2.0 provider.
type Provider struct {
	*httptest.Server
	opts Options

	mu         sync.Mutex
	codes      map[string]*grantCode
	refresh    map[string]*grant // live refresh tokens
	access     map[string]*grant // live access tokens
	secrets    []string          // every code, verifier and token seen or issued
	authorized []url.Values      // the queries of authorization requests

	exchanges, refreshes, rejected, apiCalls atomic.Int64
	// RefreshGate, when set, is received from before each refresh is
	// answered: a test holds refreshes back to widen a race.
	RefreshGate chan struct{}
}

type grantCode struct {
	clientID, redirectURI, challenge, scope string
	used                                    bool
}

type grant struct {
	id      int
	scope   string
	revoked bool
}

// New starts a Provider, stopped when the test ends.
func New(tb testing.TB, o Options) *Provider {
	tb.Helper()
	if o.ClientID == "" {
		o.ClientID = "client-id"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "client-secret"
	}
	if o.ExpiresIn == 0 {
		o.ExpiresIn = 3600
	}
	p := &Provider{opts: o, codes: map[string]*grantCode{}, refresh: map[string]*grant{}, access: map[string]*grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /consent", p.consent)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	mux.HandleFunc("GET /api/me", p.me)
	p.Server = httptest.NewServer(mux)
	tb.Cleanup(p.Close)
	return p
}

// Endpoints of the provider.
func (p *Provider) AuthURL() string     { return p.URL + "/authorize" }
func (p *Provider) TokenURL() string    { return p.URL + "/token" }
func (p *Provider) UserinfoURL() string { return p.URL + "/userinfo" }
func (p *Provider) APIURL() string      { return p.URL + "/api/me" }

// ClientID and ClientSecret are the client credentials it accepts.
func (p *Provider) ClientID() string     { return p.opts.ClientID }
func (p *Provider) ClientSecret() string { return p.opts.ClientSecret }

// Exchanges, Refreshes and Rejected count successful code exchanges,
// successful refreshes and refused token requests; APICalls counts
// authorised calls to the API.
func (p *Provider) Exchanges() int64 { return p.exchanges.Load() }
func (p *Provider) Refreshes() int64 { return p.refreshes.Load() }
func (p *Provider) Rejected() int64  { return p.rejected.Load() }
func (p *Provider) APICalls() int64  { return p.apiCalls.Load() }

// Secrets lists every authorization code, PKCE verifier, access token,
// refresh token and the client secret this provider issued or saw: none
// may appear in the server's database or logs.
func (p *Provider) Secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{p.opts.ClientSecret}, p.secrets...)
}

// AuthorizeRequests returns the queries of the authorization requests seen.
func (p *Provider) AuthorizeRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.authorized...)
}

// RevokeAll revokes every grant: refreshes fail with invalid_grant and
// access tokens stop working, as when the user removes the app.
func (p *Provider) RevokeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.refresh {
		g.revoked = true
	}
	for _, g := range p.access {
		g.revoked = true
	}
}

// AccessTokenLive reports whether tok is an access token the provider
// issued and has not revoked.
func (p *Provider) AccessTokenLive(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.access[tok]
	return ok && !g.revoked
}

func random(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Consent</title></head>
<body><p>Allow the application to use your account?</p>
<form id="consent" method="post" action="/consent">
{{range $k, $vs := .}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<button type="submit">Allow</button></form>
<script>document.getElementById("consent").submit();</script></body></html>`))

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.authorized = append(p.authorized, q)
	p.mu.Unlock()
	if q.Get("response_type") != "code" || q.Get("client_id") != p.opts.ClientID || q.Get("redirect_uri") == "" || q.Get("state") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if !p.opts.NoPKCE && (q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256") {
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	}
	if p.opts.ConsentPage {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = consentPage.Execute(w, q)
		return
	}
	p.grantCode(w, r, q)
}

func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p.grantCode(w, r, r.PostForm)
}

// grantCode redirects to redirect_uri with a new code (or the refusal).
func (p *Provider) grantCode(w http.ResponseWriter, r *http.Request, q url.Values) {
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	out := back.Query()
	out.Set("state", q.Get("state"))
	if p.opts.Deny {
		out.Set("error", "access_denied")
		out.Set("error_description", "The user said no")
	} else {
		code := random("code-")
		scope := q.Get("scope")
		if p.opts.Scope != "" {
			scope = p.opts.Scope
		}
		p.mu.Lock()
		p.codes[code] = &grantCode{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), scope: scope}
		p.secrets = append(p.secrets, code)
		p.mu.Unlock()
		out.Set("code", code)
	}
	back.RawQuery = out.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// tokenError answers an RFC 6749 §5.2 error.
func (p *Provider) tokenError(w http.ResponseWriter, status int, code string) {
	p.rejected.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// clientOK accepts client credentials in HTTP Basic or in the form.
func (p *Provider) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.opts.ClientID && secret == p.opts.ClientSecret
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if !p.clientOK(r) {
		p.tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		p.exchange(w, r)
	case "refresh_token":
		if p.RefreshGate != nil {
			<-p.RefreshGate
		}
		p.refreshGrant(w, r)
	default:
		p.tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

func (p *Provider) exchange(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	p.mu.Lock()
	defer p.mu.Unlock()
	verifier := f.Get("code_verifier")
	if verifier != "" {
		p.secrets = append(p.secrets, verifier)
	}
	c, ok := p.codes[f.Get("code")]
	if !ok || c.used || c.redirectURI != f.Get("redirect_uri") {
		p.tokenErrorLocked(w, "invalid_grant")
		return
	}
	c.used = true // a code is good once, right or wrong
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(verifier))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			p.tokenErrorLocked(w, "invalid_grant")
			return
		}
	}
	p.exchanges.Add(1)
	g := &grant{id: len(p.refresh) + 1, scope: c.scope}
	p.issueLocked(w, g, true)
}

func (p *Provider) tokenErrorLocked(w http.ResponseWriter, code string) {
	p.mu.Unlock()
	p.tokenError(w, http.StatusBadRequest, code)
	p.mu.Lock()
}

func (p *Provider) refreshGrant(w http.ResponseWriter, r *http.Request) {
	rt := r.PostForm.Get("refresh_token")
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.refresh[rt]
	if !ok || g.revoked {
		p.tokenErrorLocked(w, "invalid_grant")
		return
	}
	p.refreshes.Add(1)
	if !p.opts.NoRotation {
		delete(p.refresh, rt) // rotation: the old refresh token is spent
	}
	p.issueLocked(w, g, !p.opts.NoRotation)
}

// issueLocked answers a new access token for g, and a new refresh token
// when withRefresh.
func (p *Provider) issueLocked(w http.ResponseWriter, g *grant, withRefresh bool) {
	at := random("at-")
	p.access[at] = g
	p.secrets = append(p.secrets, at)
	body := map[string]any{"access_token": at, "token_type": "Bearer", "scope": g.scope}
	if p.opts.ExpiresIn > 0 {
		body["expires_in"] = p.opts.ExpiresIn
	}
	if withRefresh {
		rt := random("rt-")
		p.refresh[rt] = g
		p.secrets = append(p.secrets, rt)
		body["refresh_token"] = rt
	}
	if p.opts.IDToken && p.opts.Email != "" {
		claims, _ := json.Marshal(map[string]any{"sub": "user", "email": p.opts.Email})
		body["id_token"] = "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}

// bearerGrant returns the live grant of the request's bearer token.
func (p *Provider) bearerGrant(r *http.Request) (*grant, string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.access[tok]
	if !ok || g.revoked {
		return nil, "", false
	}
	return g, tok, true
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := p.bearerGrant(r); !ok {
		http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"email": p.opts.Email, "sub": "user"})
}

// me is the provider's API: it answers who the token belongs to and
// which token it was (so a test can check the server sent the freshest).
func (p *Provider) me(w http.ResponseWriter, r *http.Request) {
	g, tok, ok := p.bearerGrant(r)
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
		return
	}
	p.apiCalls.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"grant": g.id, "scope": g.scope, "token_sha256": fingerprint(tok)})
}

// Fingerprint is how the API names the token it was called with, so that
// tests compare tokens without printing them.
func Fingerprint(tok string) string { return fingerprint(tok) }

func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}
