package oauth

import (
	"context"
	"net/url"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// CallbackResult says how to answer the browser at the end of a flow
// whose state was good: redirect it to RedirectURL (the developer's URL
// with status=success|error added), or, without one, show a small page.
type CallbackResult struct {
	RedirectURL    string
	Connected      bool
	PlatformName   string
	ExternalUserID string
	ErrorCode      string // when not Connected: the provider's code or ours
}

// Codes of callbacks that fail after a good state.
const (
	ErrCodeMissingCode   = "invalid_request"
	ErrCodeExchange      = "token_exchange_failed"
	ErrCodeServer        = "server_error"
	ErrCodeProviderError = "provider_error"
	ErrCodePlatformGone  = "platform_not_found"
)

// State errors (KindInvalid, code invalid_state): the callback shows them
// as a 400 page and stores nothing.
var (
	errStateMissing = toolkit.Errorf(toolkit.KindInvalid, "invalid_state",
		"This link is missing its state parameter. Start connecting again from the application.")
	errStateUnknown = toolkit.Errorf(toolkit.KindInvalid, "invalid_state",
		"This authorization link is unknown or was already used. Start connecting again from the application.")
	errStateExpired = toolkit.Errorf(toolkit.KindInvalid, "invalid_state",
		"This authorization link has expired. Start connecting again from the application.")
)

// Callback finishes a flow from the query of GET /oauth/callback. An
// unknown, reused or expired state is an *toolkit.Error (KindInvalid,
// code invalid_state) whose message can be shown, and nothing is stored.
// With a good state, the state is used up and the result says where the
// browser goes: a provider error (error=access_denied, …), a missing code
// or a failed exchange give ErrorCode and fire connection_failed; success
// stores the connection (tokens sealed), fires connection_success and
// gives Connected. Other errors are internal faults.
func (m *Manager) Callback(ctx context.Context, q url.Values) (*CallbackResult, error) {
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return nil, errStateMissing
	}
	st, err := m.store.TakeOAuthState(ctx, hashState(state))
	if toolkit.IsNotFound(err) {
		return nil, errStateUnknown
	}
	if err != nil {
		return nil, err
	}
	if st.Expired(m.now()) {
		return nil, errStateExpired
	}
	res := &CallbackResult{ExternalUserID: st.ExternalUserID, PlatformName: st.PlatformID}
	fail := func(code string) (*CallbackResult, error) {
		res.ErrorCode = code
		res.RedirectURL = developerURL(st.RedirectURL, url.Values{"status": {"error"}, "error": {code},
			"platform": {st.PlatformID}, "external_user_id": {st.ExternalUserID}})
		m.publish(toolkit.EventConnectionFailed, st.ClientKeyID, st.PlatformID, st.ExternalUserID, "", code)
		return res, nil
	}

	p, err := m.findPlatform(ctx, st.PlatformID)
	if toolkit.IsNotFound(err) {
		return fail(ErrCodePlatformGone)
	}
	if err != nil {
		return nil, err
	}
	res.PlatformName = p.Name
	if perr := q.Get("error"); perr != "" {
		m.logger.InfoContext(ctx, "the provider refused an authorization", "platform", p.ID, "error", sanitizeCode(perr, ErrCodeProviderError))
		return fail(sanitizeCode(perr, ErrCodeProviderError))
	}
	code := q.Get("code")
	if code == "" {
		return fail(ErrCodeMissingCode)
	}
	verifier := ""
	if st.SealedVerifier != "" {
		b, err := m.sealer.Open(st.SealedVerifier)
		if err != nil {
			m.logger.ErrorContext(ctx, "opening a PKCE verifier", "platform", p.ID, "err", err)
			return fail(ErrCodeServer)
		}
		verifier = string(b)
	}
	issued := m.now().UTC()
	tok, err := m.exchange(ctx, p, code, verifier)
	if err != nil {
		m.logger.WarnContext(ctx, "exchanging an authorization code", "platform", p.ID, "err", describe(err))
		return fail(providerErrorCode(err, ErrCodeExchange))
	}
	if tok.AccessToken == "" {
		m.logger.WarnContext(ctx, "exchanging an authorization code", "platform", p.ID, "err", "no access_token in the answer")
		return fail(ErrCodeExchange)
	}
	c := &toolkit.Connection{
		PlatformID: p.ID, ExternalUserID: st.ExternalUserID, ClientKeyID: st.ClientKeyID,
		ExternalUserEmail: m.userEmail(ctx, p, tok),
		Status:            toolkit.ConnActive, Scope: tokenScope(tok, p.Scopes),
		ExpiresAt: m.tokenExpiry(tok, issued), TokenIssuedAt: &issued,
	}
	if c.SealedAccessToken, err = m.sealer.Seal([]byte(tok.AccessToken)); err != nil {
		return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "could not encrypt the access token")
	}
	if tok.RefreshToken != "" {
		if c.SealedRefreshToken, err = m.sealer.Seal([]byte(tok.RefreshToken)); err != nil {
			return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "could not encrypt the refresh token")
		}
	}
	if err := m.store.UpsertConnection(ctx, c); err != nil {
		if toolkit.IsNotFound(err) {
			return fail(ErrCodePlatformGone)
		}
		m.logger.ErrorContext(ctx, "storing a connection", "platform", p.ID, "err", err)
		return fail(ErrCodeServer)
	}
	m.logger.InfoContext(ctx, "end user connected", "platform", p.ID, "connection_id", c.ID)
	m.publish(toolkit.EventConnectionSuccess, st.ClientKeyID, p.ID, st.ExternalUserID, c.ID, "")
	res.Connected = true
	res.RedirectURL = developerURL(st.RedirectURL, url.Values{"status": {"success"},
		"platform": {p.ID}, "external_user_id": {st.ExternalUserID}, "integration_id": {c.ID}})
	return res, nil
}

// developerURL adds params to the developer's redirect URL, keeping its
// own query; "" stays "" (no redirect: the callback shows a page).
func developerURL(raw string, params url.Values) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil { // checked at initiation; cannot happen
		return ""
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}
