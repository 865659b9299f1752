package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// This file is where golang.org/x/oauth2 is used: the platform as an
// oauth2.Config, the token endpoint calls, and what is read from their
// answers. Nothing of x/oauth2 leaves the package.

// oauthConfig returns p as an oauth2.Config with its client secret opened.
func (m *Manager) oauthConfig(p *toolkit.Platform) (*oauth2.Config, error) {
	secret, err := m.sealer.Open(p.SealedClientSecret)
	if err != nil {
		return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "the platform's client secret cannot be read on this server")
	}
	style := oauth2.AuthStyleAutoDetect
	switch p.TokenAuthStyle {
	case "basic":
		style = oauth2.AuthStyleInHeader
	case "form":
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: string(secret),
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: style},
		RedirectURL:  m.callback,
		Scopes:       p.Scopes,
	}, nil
}

// clientContext makes x/oauth2 use the Manager's HTTP client.
func (m *Manager) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, m.client)
}

// exchange trades an authorization code (with its PKCE verifier, if any)
// for tokens.
func (m *Manager) exchange(ctx context.Context, p *toolkit.Platform, code, verifier string) (*oauth2.Token, error) {
	cfg, err := m.oauthConfig(p)
	if err != nil {
		return nil, err
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return cfg.Exchange(m.clientContext(ctx), code, opts...)
}

// refresh asks the token endpoint for a new access token. A provider that
// sends no new refresh token keeps the old one valid (x/oauth2 carries it
// over).
func (m *Manager) refresh(ctx context.Context, p *toolkit.Platform, refreshToken string) (*oauth2.Token, error) {
	cfg, err := m.oauthConfig(p)
	if err != nil {
		return nil, err
	}
	// An expired token with only the refresh token makes the source refresh.
	return cfg.TokenSource(m.clientContext(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
}

// rejected reports whether err is the provider refusing a grant (RFC 6749
// §5.2: a 400 or 401 answer, typically invalid_grant), as opposed to a
// failure worth trying again (network, 5xx).
func rejected(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	if re.Response != nil && (re.Response.StatusCode == http.StatusBadRequest || re.Response.StatusCode == http.StatusUnauthorized) {
		return true
	}
	return re.ErrorCode == "invalid_grant"
}

// errorCodePattern is what an error code shown to developers may look
// like; anything else from a provider (or someone forging a callback)
// becomes a generic code.
var errorCodePattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

func sanitizeCode(code, fallback string) string {
	if errorCodePattern.MatchString(code) {
		return code
	}
	return fallback
}

// providerErrorCode is the RFC 6749 error code of a token endpoint
// failure, or fallback.
func providerErrorCode(err error, fallback string) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return sanitizeCode(re.ErrorCode, fallback)
	}
	return fallback
}

// describe says what went wrong with a provider call for the logs,
// without the provider's answer body (x/oauth2 puts it in its error text,
// and a body may echo a token) and without the request URL's query.
func describe(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Sprintf("token endpoint answered %d %s", status, sanitizeCode(re.ErrorCode, "(unreadable error code)"))
		}
		return fmt.Sprintf("token endpoint answered %d", status)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		where := "the provider"
		if perr == nil {
			where = u.Scheme + "://" + u.Host + u.Path
		}
		if ue.Timeout() {
			return "timed out calling " + where
		}
		return fmt.Sprintf("calling %s: %v", where, ue.Err)
	}
	var te *toolkit.Error
	if errors.As(err, &te) {
		return te.Message
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err.Error()
	}
	return "unexpected answer from the token endpoint"
}

// tokenScope is the scope the provider granted (RFC 6749 §5.1 allows it
// to leave it out when it granted what was asked).
func tokenScope(tok *oauth2.Token, asked []string) string {
	switch s := tok.Extra("scope").(type) {
	case string:
		return strings.Join(strings.Fields(s), " ")
	case []any: // some providers send a list
		var parts []string
		for _, v := range s {
			if str, ok := v.(string); ok {
				parts = append(parts, str)
			}
		}
		return strings.Join(parts, " ")
	}
	return strings.Join(asked, " ")
}

// tokenExpiry is when tok expires by the Manager's clock (x/oauth2's own
// Expiry uses the wall clock), nil when the provider did not say.
func (m *Manager) tokenExpiry(tok *oauth2.Token, issued time.Time) *time.Time {
	if tok.ExpiresIn > 0 {
		t := issued.Add(time.Duration(tok.ExpiresIn) * time.Second)
		return &t
	}
	if !tok.Expiry.IsZero() {
		t := tok.Expiry.UTC()
		return &t
	}
	return nil
}

// maxUserinfoBytes bounds a userinfo answer.
const maxUserinfoBytes = 1 << 20

// userEmail learns the end user's email: from the platform's userinfo_url
// (fetched with the new token; "{access_token}" in it is replaced), else
// from the email claim of an OpenID Connect id_token, else "". A failure
// is logged (without the URL, which may hold the token) and not fatal.
func (m *Manager) userEmail(ctx context.Context, p *toolkit.Platform, tok *oauth2.Token) string {
	if p.UserinfoURL != "" {
		email, err := m.fetchEmail(ctx, p.UserinfoURL, tok.AccessToken)
		if err == nil && email != "" {
			return email
		}
		if err != nil {
			m.logger.WarnContext(ctx, "reading the end user's email from userinfo_url", "platform", p.ID, "err", err)
		}
	}
	if raw, ok := tok.Extra("id_token").(string); ok {
		return idTokenEmail(raw)
	}
	return ""
}

func (m *Manager) fetchEmail(ctx context.Context, rawURL, accessToken string) (string, error) {
	u := strings.ReplaceAll(rawURL, "{access_token}", url.PathEscape(accessToken))
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", errors.New("userinfo_url does not make a valid request")
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return "", errors.New("userinfo_url could not be reached") // the error text holds the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("userinfo_url answered %d", resp.StatusCode)
	}
	var body struct {
		Email any `json:"email"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxUserinfoBytes)).Decode(&body); err != nil {
		return "", errors.New("userinfo_url did not answer a JSON object")
	}
	email, _ := body.Email.(string)
	return cleanEmail(email), nil
}

// idTokenEmail reads the email claim of an id_token. The token came
// straight from the token endpoint over the connection this server opened,
// so its signature need not be checked (OpenID Connect Core §3.1.3.7).
func idTokenEmail(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Email any `json:"email"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	email, _ := claims.Email.(string)
	return cleanEmail(email)
}

// cleanEmail keeps a plausible email address, or "".
func cleanEmail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 320 || !strings.Contains(s, "@") || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return ""
	}
	return s
}
