package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func (e *sqliteEngine) FindConnection(ctx context.Context, platformID, externalUserID, clientKeyID string) (*toolkit.Connection, error) {
	row := e.reader().QueryRowContext(ctx, `SELECT `+sqliteConnectionColumns+` FROM oauth_connections
		WHERE platform_id = ? AND external_user_id = ? AND client_key_id = ?`, platformID, externalUserID, clientKeyID)
	c, err := scanSQLiteConnection(row)
	return c, sqliteTranslate(err, connectionSubject(&toolkit.Connection{PlatformID: platformID, ExternalUserID: externalUserID}))
}

// WithConnectionLock: the embedded engine serves one instance, so a
// process lock per connection serialises the callers. fn runs outside any
// transaction (a provider call must not hold the single writer); the
// write is conditional on the row being as fn saw it, so that a
// connection replaced meanwhile (the user connected again) is not
// overwritten with what fn made of the old one: the replacement wins and
// is returned.
func (e *sqliteEngine) WithConnectionLock(ctx context.Context, id string, fn func(c *toolkit.Connection) (*toolkit.Connection, error)) (*toolkit.Connection, error) {
	unlock, err := e.conns.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := e.FindConnectionByID(ctx, id)
	if err != nil {
		return nil, err
	}
	next, err := fn(c)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return c, nil
	}
	var out *toolkit.Connection
	err = e.write(ctx, func(tx *sql.Tx) error {
		out, err = scanSQLiteConnection(tx.QueryRowContext(ctx, `
			UPDATE oauth_connections SET
				external_user_email = ?, status = ?, scope = ?, expires_at = ?,
				sealed_access_token = ?, sealed_refresh_token = ?, token_issued_at = ?,
				updated_at = max(updated_at, ?)
			WHERE id = ? AND updated_at = ?
			RETURNING `+sqliteConnectionColumns,
			next.ExternalUserEmail, next.Status, next.Scope, sqliteTimePtr(next.ExpiresAt),
			next.SealedAccessToken, next.SealedRefreshToken, sqliteTimePtr(next.TokenIssuedAt),
			sqliteTime(now()), id, sqliteTime(c.UpdatedAt)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return e.FindConnectionByID(ctx, id)
	}
	if err != nil {
		return nil, sqliteTranslate(err, subject("connection", id))
	}
	return out, nil
}

// ---- OAuth states ----

const sqliteStateColumns = `state_hash, platform_id, external_user_id, client_key_id, redirect_url, sealed_verifier, created_at, expires_at`

func (e *sqliteEngine) CreateOAuthState(ctx context.Context, st *toolkit.OAuthState) error {
	prepareState(st)
	err := e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_states (`+sqliteStateColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			st.Hash, st.PlatformID, st.ExternalUserID, st.ClientKeyID, st.RedirectURL, st.SealedVerifier,
			sqliteTime(st.CreatedAt), sqliteTime(st.ExpiresAt))
		return err
	})
	return sqliteTranslate(err, stateSubject)
}

func (e *sqliteEngine) TakeOAuthState(ctx context.Context, hash []byte) (*toolkit.OAuthState, error) {
	var st toolkit.OAuthState
	err := e.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE state_hash = ? RETURNING `+sqliteStateColumns, hash).Scan(
			&st.Hash, &st.PlatformID, &st.ExternalUserID, &st.ClientKeyID, &st.RedirectURL, &st.SealedVerifier,
			timeCol{&st.CreatedAt}, timeCol{&st.ExpiresAt})
	})
	if err != nil {
		return nil, sqliteTranslate(err, stateSubject)
	}
	return &st, nil
}

func (e *sqliteEngine) DeleteExpiredOAuthStates(ctx context.Context, at time.Time) (int64, error) {
	var n int64
	err := e.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires_at <= ?`, sqliteTime(at))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, sqliteTranslate(err, "oauth states")
}

// ---- key rotation ----

// ResealSecrets runs in one write transaction: the embedded engine has
// one writer anyway, and a rotation is rare.
func (e *sqliteEngine) ResealSecrets(ctx context.Context, reseal toolkit.ResealFunc) (toolkit.ResealReport, error) {
	var rep toolkit.ResealReport
	err := e.write(ctx, func(tx *sql.Tx) error {
		for _, t := range sealedTables {
			if err := sqliteResealTable(ctx, tx, t, reseal, &rep); err != nil {
				return err
			}
		}
		return sqliteResealTools(ctx, tx, reseal, &rep)
	})
	if err != nil {
		var re *resealError
		if errors.As(err, &re) {
			return toolkit.ResealReport{}, err
		}
		return toolkit.ResealReport{}, sqliteTranslate(err, "sealed values")
	}
	return rep, nil
}

func sqliteResealTable(ctx context.Context, tx *sql.Tx, t sealedTable, reseal toolkit.ResealFunc, rep *toolkit.ResealReport) error {
	rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s`,
		strings.Join(t.keys, ", "), strings.Join(t.cols, ", "), t.table))
	if err != nil {
		return err
	}
	type row struct {
		keys []any
		vals []string
	}
	var all []row
	for rows.Next() {
		r := row{keys: make([]any, len(t.keys)), vals: make([]string, len(t.cols))}
		dest := make([]any, 0, len(t.keys)+len(t.cols))
		for i := range r.keys {
			dest = append(dest, &r.keys[i])
		}
		for i := range r.vals {
			dest = append(dest, &r.vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	set := make([]string, len(t.cols))
	for i, c := range t.cols {
		set[i] = c + " = ?"
	}
	where := make([]string, len(t.keys))
	for i, k := range t.keys {
		where[i] = k + " = ?"
	}
	update := fmt.Sprintf(`UPDATE %s SET %s WHERE %s`, t.table, strings.Join(set, ", "), strings.Join(where, " AND "))
	for _, r := range all {
		changed, checked, err := resealValues(reseal, t.table, r.vals)
		rep.Checked += checked
		if err != nil {
			return err
		}
		if changed == 0 {
			continue
		}
		args := make([]any, 0, len(r.vals)+len(r.keys))
		for _, v := range r.vals {
			args = append(args, v)
		}
		args = append(args, r.keys...)
		if _, err := tx.ExecContext(ctx, update, args...); err != nil {
			return err
		}
		t.count(rep, changed)
	}
	return nil
}

func sqliteResealTools(ctx context.Context, tx *sql.Tx, reseal toolkit.ResealFunc, rep *toolkit.ResealReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT toolkit_id, position, executor FROM tools WHERE json_extract(executor, '$.auth') IS NOT NULL`)
	if err != nil {
		return err
	}
	type row struct {
		toolkitID string
		position  int
		executor  string
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.toolkitID, &r.position, &r.executor); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range all {
		out, changed, checked, err := resealExecutor(reseal, []byte(r.executor))
		rep.Checked += checked
		if err != nil {
			return err
		}
		if out == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tools SET executor = ? WHERE toolkit_id = ? AND position = ?`,
			string(out), r.toolkitID, r.position); err != nil {
			return err
		}
		rep.ToolSecrets += changed
	}
	return nil
}
