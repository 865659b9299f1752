package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Authorization is the answer to an initiation: where to send the end
// user, and what the consent is about. Both client surfaces answer it as
// it is (ChatATP readers disagree on authorization_url and auth_url, so
// both are there).
type Authorization struct {
	AuthorizationURL string    `json:"authorization_url"`
	AuthURL          string    `json:"auth_url"`
	ConfirmationURL  string    `json:"confirmation_url"`
	PlatformID       string    `json:"platform_id"`
	ProviderName     string    `json:"provider_name"`
	ProviderLogo     *string   `json:"provider_logo"`
	DeveloperAppName string    `json:"developer_app_name"`
	ExternalUserID   string    `json:"external_user_id"`
	Scopes           []string  `json:"scopes"`
	AuthMode         string    `json:"auth_mode"`
	PoweredBy        string    `json:"powered_by"`
	RedirectURI      string    `json:"redirect_uri"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// stateBytes is the entropy of a state: 256 bits.
const stateBytes = 32

// Authorize starts connecting externalUserID to the platform for key: it
// stores a random, single-use state (its hash) bound to the platform, the
// user, the key and the developer's redirect URL, with a PKCE verifier
// when the platform uses PKCE, and returns the provider's authorization
// URL. Errors: KindNotFound (platform_not_found), KindInvalid (the user
// id, or a redirect URL that is not allowed: invalid_redirect_url),
// KindForbidden (a toolkit key).
func (m *Manager) Authorize(ctx context.Context, key *toolkit.APIKey, platformID, externalUserID, redirectURL string) (*Authorization, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := checkUserID(externalUserID); err != nil {
		return nil, err
	}
	if redirectURL != "" {
		if err := m.checkRedirect(key, redirectURL); err != nil {
			return nil, err
		}
	}
	p, err := m.findPlatform(ctx, platformID)
	if err != nil {
		return nil, err
	}
	cfg, err := m.oauthConfig(p)
	if err != nil {
		return nil, err
	}
	m.sweep(ctx)

	b := make([]byte, stateBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	state := base64.RawURLEncoding.EncodeToString(b)
	now := m.now().UTC()
	st := &toolkit.OAuthState{
		Hash: hashState(state), PlatformID: p.ID, ExternalUserID: externalUserID, ClientKeyID: keyID(key),
		RedirectURL: redirectURL, CreatedAt: now, ExpiresAt: now.Add(m.stateTTL),
	}
	var opts []oauth2.AuthCodeOption
	for k, v := range p.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	if p.UsesPKCE() {
		verifier := oauth2.GenerateVerifier()
		if st.SealedVerifier, err = m.sealer.Seal([]byte(verifier)); err != nil {
			return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "could not encrypt the PKCE verifier")
		}
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	if err := m.store.CreateOAuthState(ctx, st); err != nil {
		if toolkit.IsNotFound(err) { // the platform was deleted meanwhile
			return nil, toolkit.Errorf(toolkit.KindNotFound, "platform_not_found", "platform %q is not configured on this server", p.ID)
		}
		return nil, err
	}
	u := cfg.AuthCodeURL(state, opts...)
	app := ""
	if key != nil {
		app = key.Name
	}
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return &Authorization{
		AuthorizationURL: u, AuthURL: u, ConfirmationURL: u,
		PlatformID: p.ID, ProviderName: p.Name, DeveloperAppName: app, ExternalUserID: externalUserID,
		Scopes: scopes, AuthMode: "oauth2", PoweredBy: "atp-server", RedirectURI: m.callback,
		ExpiresAt: st.ExpiresAt,
	}, nil
}

// hashState is what the store keeps of a state.
func hashState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// sweep removes expired states, at most once a minute per process; a
// failure only delays it.
func (m *Manager) sweep(ctx context.Context) {
	now := m.now()
	m.sweepMu.Lock()
	if now.Sub(m.lastSweep) < sweepEvery {
		m.sweepMu.Unlock()
		return
	}
	m.lastSweep = now
	m.sweepMu.Unlock()
	if _, err := m.store.DeleteExpiredOAuthStates(ctx, now); err != nil {
		m.logger.WarnContext(ctx, "removing expired OAuth states", "err", err)
	}
}

func invalidRedirect(format string, args ...any) error {
	return toolkit.Errorf(toolkit.KindInvalid, "invalid_redirect_url", "developer_redirect_url: "+format, args...)
}

// checkRedirect accepts an absolute http(s) URL without credentials that
// starts with a prefix of the server's allowlist (if any) and of key's
// own list (if any).
func (m *Manager) checkRedirect(key *toolkit.APIKey, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidRedirect("must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return invalidRedirect("credentials in the URL are not allowed")
	}
	if len(raw) > 2048 {
		return invalidRedirect("at most 2048 bytes")
	}
	if len(m.allowlist) > 0 && !matchesPrefix(raw, m.allowlist) {
		return invalidRedirect("not allowed by this server (ATP_OAUTH_REDIRECT_ALLOWLIST)")
	}
	if key != nil && len(key.OAuthRedirectURLs) > 0 && !matchesPrefix(raw, key.OAuthRedirectURLs) {
		return invalidRedirect("not among the oauth_redirect_urls of this API key")
	}
	return nil
}

// matchesPrefix reports whether raw starts with one of prefixes at a
// boundary: "https://app.example.com" admits "https://app.example.com/x"
// and "https://app.example.com?x", never "https://app.example.com.evil.net"
// or "https://app.example.com:8443". A prefix that ends in "/", "?" or
// "&" is a boundary itself.
func matchesPrefix(raw string, prefixes []string) bool {
	for _, p := range prefixes {
		rest, ok := strings.CutPrefix(raw, p)
		if !ok {
			continue
		}
		if rest == "" || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "?") || strings.HasSuffix(p, "&") ||
			strings.ContainsRune("/?#", rune(rest[0])) {
			return true
		}
	}
	return false
}
