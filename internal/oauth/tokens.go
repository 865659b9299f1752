package oauth

import (
	"context"
	"errors"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Tokens is what the client surfaces answer for a connection (ChatATP
// get_user_tokens / wait_for_connection, the native API): fresh tokens and
// what the provider granted. RefreshToken is null unless the platform
// has expose_refresh_token.
type Tokens struct {
	IntegrationID     string     `json:"integration_id"`
	PlatformID        string     `json:"platform_id"`
	ExternalUserID    string     `json:"external_user_id"`
	ExternalUserEmail *string    `json:"external_user_email"`
	AccessToken       string     `json:"access_token"`
	RefreshToken      *string    `json:"refresh_token"`
	TokenType         string     `json:"token_type"`
	ExpiresAt         *time.Time `json:"expires_at"`
	Scope             string     `json:"scope"`
	Status            string     `json:"status"`
}

// RefreshMargin is the largest margin of the refresh rule.
const RefreshMargin = 60 * time.Second

// RefreshDue is the refresh rule of admin-api.md §7: a token is refreshed
// before use when its remaining lifetime is under 60 s, or under a quarter
// of its whole lifetime when that is shorter, so that short-lived tokens
// are not refreshed on every request. A token without an expiry is never
// due; one whose issue time is unknown uses 60 s.
func RefreshDue(expiresAt, issuedAt *time.Time, now time.Time) bool {
	if expiresAt == nil {
		return false
	}
	margin := RefreshMargin
	if issuedAt != nil {
		if q := expiresAt.Sub(*issuedAt) / 4; q < margin {
			margin = q
		}
	}
	return expiresAt.Sub(now) < margin
}

func notConnected(platformID, userID string) error {
	return toolkit.Errorf(toolkit.KindNotFound, "not_connected",
		"user %q has not connected platform %q (yet)", userID, platformID)
}

// needsReauth is the error of a connection the end user must make again
// (admin-api.md §7: 409, code needs_reauth).
func needsReauth(platformID, userID string) error {
	return toolkit.Errorf(toolkit.KindConflict, "needs_reauth",
		"the connection of user %q to platform %q needs the user to reconnect: start a new authorization", userID, platformID)
}

// Status returns key's connection of externalUserID to the platform as
// stored, without refreshing it. KindNotFound (not_connected) if there is
// none.
func (m *Manager) Status(ctx context.Context, key *toolkit.APIKey, platformID, externalUserID string) (*toolkit.Connection, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	c, err := m.store.FindConnection(ctx, platformID, externalUserID, keyID(key))
	if toolkit.IsNotFound(err) {
		return nil, notConnected(platformID, externalUserID)
	}
	return c, err
}

// Disconnect forgets key's connection of externalUserID to the platform
// and its tokens. KindNotFound (not_connected) if there is none.
func (m *Manager) Disconnect(ctx context.Context, key *toolkit.APIKey, platformID, externalUserID string) error {
	c, err := m.Status(ctx, key, platformID, externalUserID)
	if err != nil {
		return err
	}
	err = m.store.DeleteConnection(ctx, c.ID)
	if toolkit.IsNotFound(err) {
		return notConnected(platformID, externalUserID)
	}
	if err == nil {
		m.logger.InfoContext(ctx, "connection removed", "platform", platformID, "connection_id", c.ID)
	}
	return err
}

// Tokens returns key's connection of externalUserID to the platform with
// a fresh access token (refreshed first when RefreshDue). Errors:
// KindNotFound (not_connected) until the user connected, or when another
// key started the connection; KindConflict (needs_reauth) when the user
// must connect again; KindUnavailable when a due refresh failed for a
// reason worth retrying and the token has expired.
func (m *Manager) Tokens(ctx context.Context, key *toolkit.APIKey, platformID, externalUserID string) (*Tokens, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	c, p, access, err := m.fresh(ctx, keyID(key), platformID, externalUserID)
	if err != nil {
		return nil, err
	}
	t := &Tokens{
		IntegrationID: c.ID, PlatformID: c.PlatformID, ExternalUserID: c.ExternalUserID,
		AccessToken: access, TokenType: "Bearer", ExpiresAt: c.ExpiresAt, Scope: c.Scope, Status: c.Status,
	}
	if c.ExternalUserEmail != "" {
		t.ExternalUserEmail = &c.ExternalUserEmail
	}
	if p.ExposeRefreshToken && c.SealedRefreshToken != "" {
		b, err := m.sealer.Open(c.SealedRefreshToken)
		if err != nil {
			return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "the refresh token cannot be read on this server")
		}
		rt := string(b)
		t.RefreshToken = &rt
	}
	return t, nil
}

// AccessToken implements toolkit.TokenSource for tools: the fresh access
// token of the end user's connection started by key. No connection is
// KindNotFound (the Service says which platform to connect); a connection
// that needs the user to reconnect is a needs_reauth *toolkit.ToolError
// naming the platform.
func (m *Manager) AccessToken(ctx context.Context, key *toolkit.APIKey, platformID, externalUserID string) (string, error) {
	_, _, access, err := m.fresh(ctx, keyID(key), platformID, externalUserID)
	var te *toolkit.Error
	if errors.As(err, &te) && te.Code == "needs_reauth" {
		return "", toolkit.NewToolError(toolkit.ToolErrNeedsReauth,
			"user %q must reconnect platform %q: the connection was revoked or has expired", externalUserID, platformID)
	}
	return access, err
}

// fresh finds the connection and returns it with its opened access
// token, refreshed under the connection's lock when due: of concurrent
// callers (on any instance sharing the database) one refreshes, and the
// others find the new token when they get the lock. The new tokens are
// stored before any caller gets the new access token.
func (m *Manager) fresh(ctx context.Context, keyID, platformID, userID string) (*toolkit.Connection, *toolkit.Platform, string, error) {
	c, err := m.store.FindConnection(ctx, platformID, userID, keyID)
	if toolkit.IsNotFound(err) {
		return nil, nil, "", notConnected(platformID, userID)
	}
	if err != nil {
		return nil, nil, "", err
	}
	p, err := m.findPlatform(ctx, platformID)
	if err != nil {
		return nil, nil, "", err
	}
	if c.Status == toolkit.ConnActive && RefreshDue(c.ExpiresAt, c.TokenIssuedAt, m.now()) {
		if c, err = m.refreshLocked(ctx, p, c.ID); err != nil {
			return nil, nil, "", err
		}
	}
	if c.Status != toolkit.ConnActive {
		return nil, nil, "", needsReauth(platformID, userID)
	}
	b, err := m.sealer.Open(c.SealedAccessToken)
	if err != nil {
		return nil, nil, "", toolkit.Wrap(err, toolkit.KindInternal, "internal", "the access token cannot be read on this server")
	}
	return c, p, string(b), nil
}

// errRefreshUnavailable is a due refresh that failed for a reason worth
// retrying, with the token already expired.
var errRefreshUnavailable = toolkit.Errorf(toolkit.KindUnavailable, "refresh_failed",
	"the provider could not refresh the token just now: try again shortly")

// refreshLocked refreshes connection id under its lock, unless the holder
// before did. It returns the connection as stored afterwards. The lock
// and the provider call run on a context detached from the caller's (but
// bounded): a refresh token the provider rotated must be saved even when
// the request that asked went away.
func (m *Manager) refreshLocked(ctx context.Context, p *toolkit.Platform, id string) (*toolkit.Connection, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.refreshTO)
	defer cancel()
	var expired bool
	c, err := m.store.WithConnectionLock(lctx, id, func(in *toolkit.Connection) (*toolkit.Connection, error) {
		now := m.now().UTC()
		if in.Status != toolkit.ConnActive || !RefreshDue(in.ExpiresAt, in.TokenIssuedAt, now) {
			return nil, nil // another caller refreshed (or gave up) first
		}
		stillValid := now.Before(*in.ExpiresAt)
		if in.SealedRefreshToken == "" {
			if stillValid {
				return nil, nil // nothing to refresh with: use it while it lasts
			}
			next := *in
			next.Status = toolkit.ConnExpired
			expired = true
			return &next, nil
		}
		rt, err := m.sealer.Open(in.SealedRefreshToken)
		if err != nil {
			return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "the refresh token cannot be read on this server")
		}
		tok, err := m.refresh(lctx, p, string(rt))
		switch {
		case err != nil && rejected(err):
			m.logger.WarnContext(ctx, "the provider rejected a refresh: the user must reconnect",
				"platform", p.ID, "connection_id", in.ID, "err", describe(err))
			next := *in
			next.Status = toolkit.ConnNeedsReauth
			expired = true
			return &next, nil
		case err != nil:
			m.logger.WarnContext(ctx, "refreshing a token", "platform", p.ID, "connection_id", in.ID, "err", describe(err))
			if stillValid {
				return nil, nil
			}
			return nil, errRefreshUnavailable
		case tok.AccessToken == "":
			m.logger.WarnContext(ctx, "refreshing a token", "platform", p.ID, "connection_id", in.ID, "err", "no access_token in the answer")
			if stillValid {
				return nil, nil
			}
			return nil, errRefreshUnavailable
		}
		next := *in
		if next.SealedAccessToken, err = m.sealer.Seal([]byte(tok.AccessToken)); err != nil {
			return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "could not encrypt the access token")
		}
		if tok.RefreshToken != "" && tok.RefreshToken != string(rt) { // rotated
			if next.SealedRefreshToken, err = m.sealer.Seal([]byte(tok.RefreshToken)); err != nil {
				return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "could not encrypt the refresh token")
			}
		}
		issued := m.now().UTC()
		next.TokenIssuedAt, next.ExpiresAt = &issued, m.tokenExpiry(tok, issued)
		if _, ok := tok.Extra("scope").(string); ok {
			next.Scope = tokenScope(tok, nil)
		}
		m.logger.DebugContext(ctx, "token refreshed", "platform", p.ID, "connection_id", in.ID)
		return &next, nil
	})
	if toolkit.IsNotFound(err) { // disconnected meanwhile
		return nil, toolkit.Errorf(toolkit.KindNotFound, "not_connected", "the connection was removed")
	}
	if err != nil {
		return nil, err
	}
	if expired {
		m.publish(toolkit.EventConnectionExpired, c.ClientKeyID, c.PlatformID, c.ExternalUserID, c.ID, "")
	}
	return c, nil
}
