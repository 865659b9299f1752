package store

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Sessions of protocol clients (monday ATP) live in the sessions table of
// migration 000002, shared by every instance on one database. Both engines
// implement sessionEngine; DB exposes it as toolkit.SessionStore.

// sessionEngine is what each engine implements for sessions.
type sessionEngine interface {
	CreateSession(ctx context.Context, s *toolkit.Session) error
	FindSession(ctx context.Context, id string) (*toolkit.Session, error)
	FindSessionWithKey(ctx context.Context, id string) (*toolkit.Session, *toolkit.APIKey, error)
	ExtendSession(ctx context.Context, id string, now, until time.Time) error
	DeleteSession(ctx context.Context, id string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

var (
	_ toolkit.SessionStore = (*DB)(nil)
	_ sessionEngine        = (*pgEngine)(nil)
	_ sessionEngine        = (*sqliteEngine)(nil)
)

// sessions returns the engine's session methods. Both engines have them
// (checked above), so the assertion cannot fail.
func (db *DB) sessions() sessionEngine { return db.engine.(sessionEngine) }

// CreateSession implements toolkit.SessionStore.
func (db *DB) CreateSession(ctx context.Context, s *toolkit.Session) error {
	if err := prepareSession(s); err != nil {
		return err
	}
	return db.sessions().CreateSession(ctx, s)
}

// FindSession implements toolkit.SessionStore.
func (db *DB) FindSession(ctx context.Context, id string) (*toolkit.Session, error) {
	return db.sessions().FindSession(ctx, id)
}

// FindSessionWithKey (toolkit.SessionStore) is one query, a
// LEFT JOIN of sessions with api_keys on the session's key id.
func (db *DB) FindSessionWithKey(ctx context.Context, id string) (*toolkit.Session, *toolkit.APIKey, error) {
	return db.sessions().FindSessionWithKey(ctx, id)
}

// ExtendSession implements toolkit.SessionStore.
func (db *DB) ExtendSession(ctx context.Context, id string, now, until time.Time) error {
	return db.sessions().ExtendSession(ctx, id, normTime(now), normTime(until))
}

// DeleteSession implements toolkit.SessionStore.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	return db.sessions().DeleteSession(ctx, id)
}

// DeleteExpiredSessions implements toolkit.SessionStore.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	return db.sessions().DeleteExpiredSessions(ctx, normTime(now))
}

// prepareSession checks what the schema cannot say as clearly and
// normalises times to what will be stored, so that s equals what a Find
// returns afterwards.
func prepareSession(s *toolkit.Session) error {
	if s.ID == "" {
		return toolkit.Errorf(toolkit.KindInvalid, "invalid_session", "session: id is required")
	}
	data := bytes.TrimSpace(s.Data)
	if len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return toolkit.Errorf(toolkit.KindInvalid, "invalid_session", "session %q: data must be a JSON object", s.ID)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	s.CreatedAt, s.ExpiresAt = normTime(s.CreatedAt), normTime(s.ExpiresAt)
	return nil
}

// sessionGone is the NotFound of an extension that found no live session.
func sessionGone(id string) error {
	return toolkit.Errorf(toolkit.KindNotFound, toolkit.KindNotFound.String(), "session %q not found or expired", id)
}
