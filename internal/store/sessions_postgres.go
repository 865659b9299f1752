package store

import (
	"context"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func (e *pgEngine) CreateSession(ctx context.Context, s *toolkit.Session) error {
	_, err := e.pool.Exec(ctx, `
		INSERT INTO sessions (id, key_id, data, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`,
		s.ID, s.KeyID, string(s.Data), s.CreatedAt, s.ExpiresAt)
	return pgTranslate(err, subject("session", s.ID))
}

func (e *pgEngine) FindSession(ctx context.Context, id string) (*toolkit.Session, error) {
	var (
		s    toolkit.Session
		data []byte
	)
	err := e.pool.QueryRow(ctx, `
		SELECT id, key_id, data, created_at, expires_at FROM sessions WHERE id = $1`, id,
	).Scan(&s.ID, &s.KeyID, &data, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		return nil, pgTranslate(err, subject("session", id))
	}
	s.Data = data
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

// pgSessionWithKeySelect reads a session and its key in one round trip.
// Without a key row every key column is NULL; COALESCE turns them into
// what pgAPIKeyRow scans, with an empty id meaning no key. An anonymous
// session (empty key_id) is kept from matching any key.
const pgSessionWithKeySelect = `
	SELECT s.id, s.key_id, s.data, s.created_at, s.expires_at,
		COALESCE(k.id, ''), COALESCE(k.name, ''), COALESCE(k.kind, ''), COALESCE(k.toolkits, '[]'),
		COALESCE(k.toolkit_id, ''), COALESCE(k.oauth_redirect_urls, '[]'), COALESCE(k.prefix, ''),
		COALESCE(k.hash, ''::bytea), COALESCE(k.created_at, s.created_at), k.last_used_at, k.revoked_at
	FROM sessions s LEFT JOIN api_keys k ON s.key_id <> '' AND k.id = s.key_id
	WHERE s.id = $1`

func (e *pgEngine) FindSessionWithKey(ctx context.Context, id string) (*toolkit.Session, *toolkit.APIKey, error) {
	var (
		s    toolkit.Session
		data []byte
		kr   pgAPIKeyRow
	)
	dest := append(make([]any, 0, 16), &s.ID, &s.KeyID, &data, &s.CreatedAt, &s.ExpiresAt)
	if err := e.pool.QueryRow(ctx, pgSessionWithKeySelect, id).Scan(kr.dest(dest)...); err != nil {
		return nil, nil, pgTranslate(err, subject("session", id))
	}
	s.Data = data
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	if kr.k.ID == "" {
		return &s, nil, nil
	}
	k, err := kr.key()
	if err != nil {
		return nil, nil, pgTranslate(err, subject("api key", s.KeyID))
	}
	return &s, k, nil
}

func (e *pgEngine) ExtendSession(ctx context.Context, id string, now, until time.Time) error {
	// One statement: the row lock orders concurrent extensions, and
	// GREATEST keeps a later expiry set by another instance.
	tag, err := e.pool.Exec(ctx, `
		UPDATE sessions SET expires_at = GREATEST(expires_at, $3)
		WHERE id = $1 AND expires_at > $2`, id, now, until)
	if err != nil {
		return pgTranslate(err, subject("session", id))
	}
	return mustAffect(tag.RowsAffected(), sessionGone(id))
}

func (e *pgEngine) DeleteSession(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM sessions WHERE id = $1`, id, subject("session", id))
}

func (e *pgEngine) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := e.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, pgTranslate(err, "sessions")
	}
	return tag.RowsAffected(), nil
}
