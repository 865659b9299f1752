package oauth_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engines opens an empty store of each engine.
var engines = map[string]func(testing.TB) toolkit.Store{
	"sqlite":   func(tb testing.TB) toolkit.Store { return storetest.OpenSQLite(tb) },
	"postgres": func(tb testing.TB) toolkit.Store { return storetest.OpenPostgres(tb) },
}

// clock is a settable clock for the Manager (the provider keeps real time).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events records what a Manager publishes.
type events struct{ ch chan toolkit.Event }

func newEvents() *events { return &events{ch: make(chan toolkit.Event, 100)} }

func (e *events) Publish(ev toolkit.Event) { e.ch <- ev }

// next returns the next event, failing if none comes within a second (it
// is published synchronously by the call that caused it).
func (e *events) next(tb testing.TB) toolkit.Event {
	tb.Helper()
	select {
	case ev := <-e.ch:
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatal("no event published")
		return toolkit.Event{}
	}
}

func (e *events) none(tb testing.TB) {
	tb.Helper()
	select {
	case ev := <-e.ch:
		tb.Errorf("unexpected event %+v", ev)
	default:
	}
}

// syncBuffer collects log output from many goroutines.
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

// env is a Manager on a real store, facing a fake provider.
type env struct {
	store    toolkit.Store
	cipher   *oauth.Cipher
	svc      *toolkit.Service
	m        *oauth.Manager
	provider *oauthtest.Provider
	clock    *clock
	events   *events
	logs     *syncBuffer
	key      *toolkit.APIKey
}

type envOptions struct {
	provider   oauthtest.Options
	platform   func(p *toolkit.Platform)
	allowlist  []string
	stateTTL   time.Duration
	sameStore  toolkit.Store // share a store (another instance)
	sameCipher *oauth.Cipher
}

func newEnv(tb testing.TB, open func(testing.TB) toolkit.Store, o envOptions) *env {
	tb.Helper()
	e := &env{clock: newClock(), events: newEvents(), logs: &syncBuffer{}}
	e.store = o.sameStore
	if e.store == nil {
		e.store = open(tb)
	}
	e.cipher = o.sameCipher
	if e.cipher == nil {
		e.cipher = mustCipher(tb, oauth.NewKey())
	}
	e.provider = oauthtest.New(tb, o.provider)
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.svc = toolkit.NewService(toolkit.Config{Store: e.store, Sealer: e.cipher, Logger: logger})
	e.m = oauth.NewManager(oauth.Config{
		Store: e.store, Sealer: e.cipher, PublicURL: "https://atp.example.com",
		RedirectAllowlist: o.allowlist, Events: e.events, Logger: logger, Now: e.clock.Now, StateTTL: o.stateTTL,
	})
	if o.sameStore == nil {
		p := &toolkit.Platform{
			ID: "acme", Name: "Acme", AuthURL: e.provider.AuthURL(), TokenURL: e.provider.TokenURL(),
			ClientID: e.provider.ClientID(), ClientSecret: e.provider.ClientSecret(),
			Scopes: []string{"read", "write"}, AuthParams: map[string]string{"access_type": "offline"},
			UserinfoURL: e.provider.UserinfoURL(),
		}
		if o.platform != nil {
			o.platform(p)
		}
		if _, err := e.svc.CreatePlatform(tb.Context(), p); err != nil {
			tb.Fatalf("creating the platform: %v", err)
		}
		key, _, err := e.svc.CreateAPIKey(tb.Context(), toolkit.NewAPIKey{Name: "app", Kind: toolkit.KeyClient})
		if err != nil {
			tb.Fatal(err)
		}
		e.key = key
	}
	return e
}

// noRedirects is a client that stops at the first redirect, so that a
// test can read where the provider sends the browser.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// consent opens an authorization URL at the provider (which consents at
// once) and returns the query the provider sends to the callback.
func consent(tb testing.TB, authURL string) url.Values {
	tb.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		tb.Fatalf("opening the authorization URL: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		tb.Fatalf("the provider answered %d, want a redirect to the callback", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "https://atp.example.com/oauth/callback" {
		tb.Fatalf("the provider redirects to %s, want the callback", got)
	}
	return loc.Query()
}

// connect runs the whole flow for user and returns the callback's result.
func (e *env) connect(tb testing.TB, user, redirect string) *oauth.CallbackResult {
	tb.Helper()
	a, err := e.m.Authorize(tb.Context(), e.key, "acme", user, redirect)
	if err != nil {
		tb.Fatalf("Authorize: %v", err)
	}
	res, err := e.m.Callback(tb.Context(), consent(tb, a.AuthorizationURL))
	if err != nil {
		tb.Fatalf("Callback: %v", err)
	}
	if !res.Connected {
		tb.Fatalf("Callback: not connected: %+v", res)
	}
	return res
}

// checkNoSecrets fails if text holds any secret the provider issued.
func checkNoSecrets(tb testing.TB, what, text string, secrets []string) {
	tb.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			tb.Errorf("%s contains a secret in the clear (%.8s…)", what, s)
		}
	}
}

func mustKind(tb testing.TB, err error, kind toolkit.Kind, code string) {
	tb.Helper()
	var te *toolkit.Error
	if !asError(err, &te) || te.Kind != kind || te.Code != code {
		tb.Fatalf("error = %v, want kind %v code %s", err, kind, code)
	}
}

func asError(err error, target **toolkit.Error) bool { return errors.As(err, target) }
