package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func (e *pgEngine) FindConnection(ctx context.Context, platformID, externalUserID, clientKeyID string) (*toolkit.Connection, error) {
	row := e.pool.QueryRow(ctx, `SELECT `+pgConnectionColumns+` FROM oauth_connections
		WHERE platform_id = $1 AND external_user_id = $2 AND client_key_id = $3`, platformID, externalUserID, clientKeyID)
	c, err := scanPGConnection(row)
	return c, pgTranslate(err, connectionSubject(&toolkit.Connection{PlatformID: platformID, ExternalUserID: externalUserID}))
}

// errFnFailed marks a transaction rolled back because the caller's
// function failed; its error is returned as it is.
var errFnFailed = errors.New("the function under the lock failed")

// WithConnectionLock queues the callers of this process per connection,
// then holds the row lock (SELECT … FOR UPDATE) for fn and the write, so
// that instances sharing the database take turns too.
func (e *pgEngine) WithConnectionLock(ctx context.Context, id string, fn func(c *toolkit.Connection) (*toolkit.Connection, error)) (*toolkit.Connection, error) {
	unlock, err := e.conns.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var (
		out   *toolkit.Connection
		fnErr error
	)
	err = e.write(ctx, func(tx pgx.Tx) error {
		c, err := scanPGConnection(tx.QueryRow(ctx,
			`SELECT `+pgConnectionColumns+` FROM oauth_connections WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		next, err := fn(c)
		if err != nil {
			fnErr = err
			return errFnFailed
		}
		if next == nil {
			out = c
			return nil
		}
		out, err = scanPGConnection(tx.QueryRow(ctx, `
			UPDATE oauth_connections SET
				external_user_email = $2, status = $3, scope = $4, expires_at = $5,
				sealed_access_token = $6, sealed_refresh_token = $7, token_issued_at = $8,
				updated_at = GREATEST(updated_at, $9)
			WHERE id = $1
			RETURNING `+pgConnectionColumns,
			id, next.ExternalUserEmail, next.Status, next.Scope, normTimePtr(next.ExpiresAt),
			next.SealedAccessToken, next.SealedRefreshToken, normTimePtr(next.TokenIssuedAt), now()))
		return err
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, pgTranslate(err, subject("connection", id))
	}
	return out, nil
}

// ---- OAuth states ----

const pgStateColumns = `state_hash, platform_id, external_user_id, client_key_id, redirect_url, sealed_verifier, created_at, expires_at`

func (e *pgEngine) CreateOAuthState(ctx context.Context, st *toolkit.OAuthState) error {
	prepareState(st)
	_, err := e.pool.Exec(ctx, `INSERT INTO oauth_states (`+pgStateColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		st.Hash, st.PlatformID, st.ExternalUserID, st.ClientKeyID, st.RedirectURL, st.SealedVerifier, st.CreatedAt, st.ExpiresAt)
	return pgTranslate(err, stateSubject)
}

func (e *pgEngine) TakeOAuthState(ctx context.Context, hash []byte) (*toolkit.OAuthState, error) {
	var st toolkit.OAuthState
	err := e.pool.QueryRow(ctx, `DELETE FROM oauth_states WHERE state_hash = $1 RETURNING `+pgStateColumns, hash).Scan(
		&st.Hash, &st.PlatformID, &st.ExternalUserID, &st.ClientKeyID, &st.RedirectURL, &st.SealedVerifier, &st.CreatedAt, &st.ExpiresAt)
	if err != nil {
		return nil, pgTranslate(err, stateSubject)
	}
	st.CreatedAt, st.ExpiresAt = st.CreatedAt.UTC(), st.ExpiresAt.UTC()
	return &st, nil
}

func (e *pgEngine) DeleteExpiredOAuthStates(ctx context.Context, at time.Time) (int64, error) {
	tag, err := e.pool.Exec(ctx, `DELETE FROM oauth_states WHERE expires_at <= $1`, normTime(at))
	if err != nil {
		return 0, pgTranslate(err, "oauth states")
	}
	return tag.RowsAffected(), nil
}

// ---- key rotation ----

// ResealSecrets works table by table, each in a transaction that locks
// the rows it reads (FOR UPDATE), so that a refresh running meanwhile on
// another instance either wrote before or writes after, under the new key.
func (e *pgEngine) ResealSecrets(ctx context.Context, reseal toolkit.ResealFunc) (toolkit.ResealReport, error) {
	var rep toolkit.ResealReport
	for _, t := range sealedTables {
		err := e.write(ctx, func(tx pgx.Tx) error { return pgResealTable(ctx, tx, t, reseal, &rep) })
		if err != nil {
			return rep, pgResealError(err, t.table)
		}
	}
	err := e.write(ctx, func(tx pgx.Tx) error { return pgResealTools(ctx, tx, reseal, &rep) })
	return rep, pgResealError(err, "tools")
}

func pgResealError(err error, table string) error {
	if err == nil {
		return nil
	}
	var re *resealError
	if errors.As(err, &re) {
		return err
	}
	return pgTranslate(err, table)
}

func pgResealTable(ctx context.Context, tx pgx.Tx, t sealedTable, reseal toolkit.ResealFunc, rep *toolkit.ResealReport) error {
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s FOR UPDATE`,
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
		set[i] = fmt.Sprintf("%s = $%d", c, i+1)
	}
	where := make([]string, len(t.keys))
	for i, k := range t.keys {
		where[i] = fmt.Sprintf("%s = $%d", k, len(t.cols)+i+1)
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
		if _, err := tx.Exec(ctx, update, args...); err != nil {
			return err
		}
		t.count(rep, changed)
	}
	return nil
}

func pgResealTools(ctx context.Context, tx pgx.Tx, reseal toolkit.ResealFunc, rep *toolkit.ResealReport) error {
	rows, err := tx.Query(ctx, `SELECT toolkit_id, position, executor FROM tools WHERE executor ? 'auth' FOR UPDATE`)
	if err != nil {
		return err
	}
	type row struct {
		toolkitID string
		position  int
		executor  []byte
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
		out, changed, checked, err := resealExecutor(reseal, r.executor)
		rep.Checked += checked
		if err != nil {
			return err
		}
		if out == nil {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE tools SET executor = $1 WHERE toolkit_id = $2 AND position = $3`,
			out, r.toolkitID, r.position); err != nil {
			return err
		}
		rep.ToolSecrets += changed
	}
	return nil
}
