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
