package oauth

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Defaults of zero Config fields.
const (
	DefaultStateTTL       = 10 * time.Minute
	DefaultRefreshTimeout = 30 * time.Second
	DefaultHTTPTimeout    = 30 * time.Second
)

// CallbackPath is where providers send the browser back:
// {ATP_PUBLIC_URL}/oauth/callback is the redirect URI of every platform.
const CallbackPath = "/oauth/callback"

// maxExternalUserID bounds an end user id (runes): it is stored, logged
// and sent back in URLs.
const maxExternalUserID = 256

// sweepEvery is how often Authorize removes expired states.
const sweepEvery = time.Minute

// Config wires a Manager. Store and Sealer are required.
type Config struct {
	Store  toolkit.Store
	Sealer toolkit.Sealer

	// PublicURL (ATP_PUBLIC_URL) is the server's external base URL; the
	// redirect URI of every authorization is PublicURL + CallbackPath.
	PublicURL string
	// RedirectAllowlist (ATP_OAUTH_REDIRECT_ALLOWLIST) holds URL prefixes
	// that a developer_redirect_url must start with; empty allows any
	// http(s) URL. A client key's OAuthRedirectURLs narrow it further.
	RedirectAllowlist []string

	// HTTPClient calls the platforms' token and userinfo endpoints, which
	// the admin configured and are trusted (no SSRF guard). Nil → a client
	// with DefaultHTTPTimeout.
	HTTPClient *http.Client
	// Events receives connection_success, connection_failed and
	// connection_expired; nil drops them.
	Events toolkit.EventPublisher
	Logger *slog.Logger // nil discards
	Now    func() time.Time

	// StateTTL is how long an authorization URL can be completed.
	StateTTL time.Duration
	// RefreshTimeout bounds one refresh with its write, which goes on
	// even if the request that started it goes away: a refresh token the
	// provider rotated must be saved.
	RefreshTimeout time.Duration
}

// Manager runs the end-user OAuth2 lifecycle: authorization URLs with a
// single-use state and PKCE, the callback's code exchange, encrypted
// storage, refresh under a per-connection lock, and the tokens the client
// surfaces and tools get. It implements toolkit.TokenSource. Safe for
// concurrent use.
type Manager struct {
	store     toolkit.Store
	sealer    toolkit.Sealer
	callback  string
	allowlist []string
	client    *http.Client
	events    toolkit.EventPublisher
	logger    *slog.Logger
	now       func() time.Time
	stateTTL  time.Duration
	refreshTO time.Duration

	sweepMu   sync.Mutex
	lastSweep time.Time
}

var _ toolkit.TokenSource = (*Manager)(nil)

// NewManager returns a Manager. It panics without a Store or a Sealer (a
// wiring mistake the first test run finds).
func NewManager(cfg Config) *Manager {
	if cfg.Store == nil || cfg.Sealer == nil {
		panic("oauth.NewManager: Config.Store and Config.Sealer are required")
	}
	m := &Manager{
		store:     cfg.Store,
		sealer:    cfg.Sealer,
		callback:  strings.TrimRight(cfg.PublicURL, "/") + CallbackPath,
		allowlist: cfg.RedirectAllowlist,
		client:    cfg.HTTPClient,
		events:    cfg.Events,
		logger:    cfg.Logger,
		now:       cfg.Now,
		stateTTL:  cfg.StateTTL,
		refreshTO: cfg.RefreshTimeout,
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.stateTTL <= 0 {
		m.stateTTL = DefaultStateTTL
	}
	if m.refreshTO <= 0 {
		m.refreshTO = DefaultRefreshTimeout
	}
	return m
}

// CallbackURL is the redirect URI registered with every provider.
func (m *Manager) CallbackURL() string { return m.callback }

// publish hands ev to the event publisher, which never blocks.
func (m *Manager) publish(typ, keyID, platformID, userID, integrationID, code string) {
	if m.events == nil || keyID == "" {
		return
	}
	m.events.Publish(toolkit.Event{
		ID: toolkit.NewID("evt_"), Type: typ, CreatedAt: m.now().UTC(), KeyID: keyID,
		PlatformID: platformID, ExternalUserID: userID, IntegrationID: integrationID, Error: code,
	})
}

// keyID is the id connections of key are filed under: "" for calls
// without a key (anonymous monday clients).
func keyID(key *toolkit.APIKey) string {
	if key == nil {
		return ""
	}
	return key.ID
}

// checkKey lets client and admin keys (and keyless calls the surface
// allowed) use the OAuth calls; toolkit keys serve tools and may not.
func checkKey(key *toolkit.APIKey) error {
	if key != nil && key.Kind != toolkit.KeyClient && key.Kind != toolkit.KeyAdmin {
		return toolkit.Errorf(toolkit.KindForbidden, "forbidden", "OAuth connections belong to client keys; this is a %s key", key.Kind)
	}
	return nil
}

// checkUserID validates an end user id: required, at most 256
// characters, no control characters.
func checkUserID(id string) error {
	switch {
	case id == "":
		return toolkit.Errorf(toolkit.KindInvalid, "invalid_request", "external_user_id: required")
	case !utf8.ValidString(id) || utf8.RuneCountInString(id) > maxExternalUserID:
		return toolkit.Errorf(toolkit.KindInvalid, "invalid_request", "external_user_id: at most %d characters of valid UTF-8", maxExternalUserID)
	case strings.ContainsFunc(id, unicode.IsControl):
		return toolkit.Errorf(toolkit.KindInvalid, "invalid_request", "external_user_id: must not contain control characters")
	}
	return nil
}

// findPlatform returns the platform or a not-found error naming it.
func (m *Manager) findPlatform(ctx context.Context, id string) (*toolkit.Platform, error) {
	p, err := m.store.FindPlatformByID(ctx, id)
	if toolkit.IsNotFound(err) {
		return nil, toolkit.Errorf(toolkit.KindNotFound, "platform_not_found", "platform %q is not configured on this server", id)
	}
	return p, err
}
