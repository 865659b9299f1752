package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func (e *sqliteEngine) CreateSession(ctx context.Context, s *toolkit.Session) error {
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO sessions (id, key_id, data, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`,
			s.ID, s.KeyID, string(s.Data), sqliteTime(s.CreatedAt), sqliteTime(s.ExpiresAt))
		return err
	}), subject("session", s.ID))
}

func (e *sqliteEngine) FindSession(ctx context.Context, id string) (*toolkit.Session, error) {
	var (
		s    toolkit.Session
		data string
	)
	err := e.readRow(ctx, `
		SELECT id, key_id, data, created_at, expires_at FROM sessions WHERE id = ?`, id,
	).Scan(&s.ID, &s.KeyID, &data, timeCol{&s.CreatedAt}, timeCol{&s.ExpiresAt})
	if err != nil {
		return nil, sqliteTranslate(err, subject("session", id))
	}
	s.Data = []byte(data)
	return &s, nil
}

// sqliteSessionWithKeySelect reads a session and its key in one prepared
// statement. Without a key row every key column is NULL; COALESCE turns
// them into what sqliteAPIKeyRow scans, with an empty id meaning no key.
// An anonymous session (empty key_id) is kept from matching any key.
const sqliteSessionWithKeySelect = `
	SELECT s.id, s.key_id, s.data, s.created_at, s.expires_at,
		COALESCE(k.id, ''), COALESCE(k.name, ''), COALESCE(k.kind, ''), COALESCE(k.toolkits, '[]'),
		COALESCE(k.toolkit_id, ''), COALESCE(k.oauth_redirect_urls, '[]'), COALESCE(k.prefix, ''),
		COALESCE(k.hash, X''), COALESCE(k.created_at, s.created_at), k.last_used_at, k.revoked_at
	FROM sessions s LEFT JOIN api_keys k ON s.key_id <> '' AND k.id = s.key_id
	WHERE s.id = ?`

func (e *sqliteEngine) FindSessionWithKey(ctx context.Context, id string) (*toolkit.Session, *toolkit.APIKey, error) {
	var (
		s    toolkit.Session
		data string
		kr   sqliteAPIKeyRow
	)
	dest := append(make([]any, 0, 16), &s.ID, &s.KeyID, &data, timeCol{&s.CreatedAt}, timeCol{&s.ExpiresAt})
	if err := e.readRow(ctx, sqliteSessionWithKeySelect, id).Scan(kr.dest(dest)...); err != nil {
		return nil, nil, sqliteTranslate(err, subject("session", id))
	}
	s.Data = []byte(data)
	if kr.k.ID == "" {
		return &s, nil, nil
	}
	k, err := kr.key()
	if err != nil {
		return nil, nil, sqliteTranslate(err, subject("api key", s.KeyID))
	}
	return &s, k, nil
}

func (e *sqliteEngine) ExtendSession(ctx context.Context, id string, now, until time.Time) error {
	// Fixed-width UTC text sorts as time does, so max() and > compare times.
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE sessions SET expires_at = max(expires_at, ?)
			WHERE id = ? AND expires_at > ?`, sqliteTime(until), id, sqliteTime(now))
		if err != nil {
			return err
		}
		return sqliteMustAffect(res, sessionGone(id))
	}), subject("session", id))
}

func (e *sqliteEngine) DeleteSession(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM sessions WHERE id = ?`, id, subject("session", id))
}

func (e *sqliteEngine) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := e.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, sqliteTime(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, sqliteTranslate(err, "sessions")
	}
	return n, nil
}
