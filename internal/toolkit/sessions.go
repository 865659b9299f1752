package toolkit

import (
	"context"
	"encoding/json"
	"time"
)

// Session is what a protocol surface keeps about one connected client
// between requests (the monday ATP session that POST /api/init opens). It
// lives in the database, so that every instance sharing it can serve the
// client, and it names the key that opened it, so that revoking the key
// ends the session.
type Session struct {
	ID    string // the protocol's client id (monday: "cli_<32 hex>")
	KeyID string // the client key that opened it; "" = anonymous

	// Data is the surface's own state for the session (monday: client
	// info, guidance, client tool definitions, services), as a JSON
	// object. It is opaque to the store.
	Data json.RawMessage

	CreatedAt time.Time
	ExpiresAt time.Time // slides with activity; see SessionStore.ExtendSession
}

// Expired reports whether s has expired at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// SessionStore persists sessions. *store.DB implements it on both engines.
//
// Times are stored with microsecond precision, in UTC. Expected outcomes are
// *Error kinds as in Store: KindNotFound, KindConflict; anything else is
// KindInternal (or KindUnavailable, KindTimeout) with the cause hidden.
type SessionStore interface {
	// CreateSession stores s; KindConflict if its id exists, KindInvalid if
	// Data is not a JSON object.
	CreateSession(ctx context.Context, s *Session) error
	// FindSession returns the session with id, expired or not (the caller
	// compares ExpiresAt with its clock); KindNotFound if there is none.
	FindSession(ctx context.Context, id string) (*Session, error)
	// FindSessionWithKey is FindSession that also returns, in the same
	// read, the API key named by the session's KeyID, revoked or not
	// (Service.CheckSessionKey decides): for surfaces that check both on
	// every request. key is nil when the session is anonymous or its key
	// no longer exists.
	FindSessionWithKey(ctx context.Context, id string) (*Session, *APIKey, error)
	// ExtendSession moves the expiry of a session that is still live at now
	// to until; an expiry later than until is kept (it never goes back).
	// KindNotFound if the session does not exist or has expired at now, so
	// that a session cannot be brought back to life.
	ExtendSession(ctx context.Context, id string, now, until time.Time) error
	// DeleteSession removes a session; KindNotFound if there is none.
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions removes every session expired at now and
	// reports how many it removed.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// FindLiveAPIKey returns the key with id if it still works: KindNotFound
// if there is no such key, KindUnauthenticated if it was revoked. Surfaces
// that remember which key opened a session call it on every request, so a
// revoked key stops working at once.
func (s *Service) FindLiveAPIKey(ctx context.Context, id string) (*APIKey, error) {
	k, err := s.store.FindAPIKeyByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.CheckSessionKey(id, k)
}

// CheckSessionKey is FindLiveAPIKey for key id already read (by
// SessionStore.FindSessionWithKey; nil when there is no such key): the
// same checks, the same errors.
func (s *Service) CheckSessionKey(id string, k *APIKey) (*APIKey, error) {
	if k == nil {
		return nil, Errorf(KindNotFound, KindNotFound.String(), "api key %q not found", id)
	}
	if k.RevokedAt != nil {
		return nil, Errorf(KindUnauthenticated, "unauthenticated", "the API key of this session was revoked")
	}
	return k, nil
}
