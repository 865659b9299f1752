package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// sqliteEngine is the embedded engine: one file, one server instance.
//
// SQLite allows one writer at a time and, when two connections race for
// the write lock, one of them can get SQLITE_BUSY at once whatever the
// busy_timeout (a deferred transaction that read first cannot wait). So
// every write goes through w, a pool of exactly one connection whose
// transactions BEGIN IMMEDIATE: concurrent writers queue in database/sql
// (honouring ctx) instead of failing. Reads go to r, a pool of read-only
// connections that run in parallel with the writer thanks to WAL mode.
type sqliteEngine struct {
	w, r     *sql.DB
	acquires atomic.Int64 // operations started, for PoolStats.AcquireCount
	conns    keyedLocks   // WithConnectionLock: one instance, so a process lock suffices

	// stmts holds the hot reads prepared once on r, by query text (see
	// prepared); stmtMu serialises preparing and Close.
	stmts      sync.Map // string → *sql.Stmt
	stmtMu     sync.Mutex
	stmtClosed bool
}

// sqliteDSN is the modernc.org/sqlite data source for path with extra
// parameters. busy_timeout covers the waits that remain: another process
// (atp-server migrate) or a checkpoint holding a lock briefly.
func sqliteDSN(path, extra string) string {
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	if extra != "" {
		dsn += "&" + extra
	}
	return dsn
}

func openSQLite(ctx context.Context, o Options) (*sqliteEngine, error) {
	path, err := o.sqlitePath()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the data directory: %w", err)
	}
	// synchronous(FULL): a key secret is shown once, so a commit must
	// survive a power cut; writes are rare enough to afford the fsync.
	w, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connects first: it switches the file to WAL mode, which
	// the readers rely on.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=foreign_keys(1)&_pragma=query_only(1)"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	readers := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	return &sqliteEngine{w: w, r: r}, nil
}

func (e *sqliteEngine) name() string { return EngineSQLite }

func (e *sqliteEngine) stats() PoolStats {
	w, r := e.w.Stats(), e.r.Stats()
	return PoolStats{
		MaxConns:          int32(w.MaxOpenConnections + r.MaxOpenConnections),
		TotalConns:        int32(w.OpenConnections + r.OpenConnections),
		IdleConns:         int32(w.Idle + r.Idle),
		AcquiredConns:     int32(w.InUse + r.InUse),
		AcquireCount:      e.acquires.Load(),
		EmptyAcquireCount: w.WaitCount + r.WaitCount,
		AcquireDuration:   w.WaitDuration + r.WaitDuration,
	}
}

func (e *sqliteEngine) Ping(ctx context.Context) error {
	e.acquires.Add(1)
	if err := e.w.PingContext(ctx); err != nil {
		return sqliteTranslate(err, "database")
	}
	return sqliteTranslate(e.r.PingContext(ctx), "database")
}

func (e *sqliteEngine) Close() error {
	e.stmtMu.Lock()
	e.stmtClosed = true
	var errs []error
	e.stmts.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		e.stmts.Delete(k)
		return true
	})
	e.stmtMu.Unlock()
	return errors.Join(append(errs, e.r.Close(), e.w.Close())...)
}

// write runs fn in a write transaction and commits it if fn succeeds.
// Errors come back untranslated.
func (e *sqliteEngine) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	e.acquires.Add(1)
	tx, err := e.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// sqliteMustAffect returns notFound when an UPDATE or DELETE touched no row.
func sqliteMustAffect(res sql.Result, notFound error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	return mustAffect(n, notFound)
}

// reader returns the pool for single-statement reads (a statement sees
// one snapshot, so they need no transaction).
func (e *sqliteEngine) reader() *sql.DB {
	e.acquires.Add(1)
	return e.r
}

// prepared returns query prepared on the reader pool, preparing it on first
// use: compiling a statement costs more than running these point reads, and
// database/sql keeps one prepared copy per reader connection. It returns
// nil when the statement cannot be prepared (the schema is not migrated
// yet, the engine is closed); the caller then runs the plain query, which
// reports the error. Only constant query texts belong here: the cache
// keeps every statement until Close.
func (e *sqliteEngine) prepared(ctx context.Context, query string) *sql.Stmt {
	if st, ok := e.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	e.stmtMu.Lock()
	defer e.stmtMu.Unlock()
	if e.stmtClosed {
		return nil
	}
	if st, ok := e.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := e.r.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	e.stmts.Store(query, st)
	return st
}

// readRow is reader().QueryRowContext through a prepared statement.
func (e *sqliteEngine) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	e.acquires.Add(1)
	if st := e.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return e.r.QueryRowContext(ctx, query, args...)
}

// readRows is reader().QueryContext through a prepared statement.
func (e *sqliteEngine) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	e.acquires.Add(1)
	if st := e.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return e.r.QueryContext(ctx, query, args...)
}

// sqliteTranslate maps a driver error to a *toolkit.Error; subj names the
// row in messages (`toolkit "x"`). *toolkit.Errors pass through.
func sqliteTranslate(err error, subj string) error {
	if err == nil {
		return nil
	}
	var te *toolkit.Error
	if errors.As(err, &te) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return notFoundErr(subj, nil)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return timeoutErr(err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return conflictErr(subj, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return missingRefErr(subj, err)
		case sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_CHECK,
			sqlite3.SQLITE_CONSTRAINT_DATATYPE, sqlite3.SQLITE_TOOBIG:
			return invalidErr(subj, err)
		}
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL:
			return unavailableErr(err)
		}
	}
	return internalErr(err)
}

// Times are stored as fixed-width UTC text so that text order is time
// order (RFC 3339 trims trailing zeros and would not sort).
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

func sqliteTime(t time.Time) string { return normTime(t).Format(sqliteTimeLayout) }

func sqliteTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return sqliteTime(*t)
}

// sqliteText binds JSON as TEXT (STRICT tables refuse a BLOB there), nil
// as NULL.
func sqliteText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// timeCol scans a NOT NULL time column.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("time column: got %T, want text", v)
	}
	t, err := time.Parse(sqliteTimeLayout, s)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*c.t = t.UTC()
	return nil
}

// nullTimeCol scans a nullable time column.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(v); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// ---- toolkits ----

func (e *sqliteEngine) CreateToolkit(ctx context.Context, tk *toolkit.Toolkit) error {
	tools, err := encodeTools(tk.Tools)
	if err != nil {
		return err
	}
	t := now()
	err = e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO toolkits (id, name, description, instructions, revision, owner_key_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?)`,
			tk.ID, tk.Name, tk.Description, tk.Instructions, tk.OwnerKeyID, sqliteTime(t), sqliteTime(t))
		if err != nil {
			return sqliteTranslate(err, subject("toolkit", tk.ID))
		}
		return e.insertTools(ctx, tx, tk.ID, tools)
	})
	if err != nil {
		return sqliteTranslate(err, subject("toolkit", tk.ID))
	}
	tk.Revision, tk.CreatedAt, tk.UpdatedAt = 1, t, t
	return nil
}

func (e *sqliteEngine) PutToolkit(ctx context.Context, tk *toolkit.Toolkit) (bool, error) {
	tools, err := encodeTools(tk.Tools)
	if err != nil {
		return false, err
	}
	var (
		rev              int64
		owner            string
		created, updated time.Time
		t                = now()
	)
	err = e.write(ctx, func(tx *sql.Tx) error {
		// max() keeps updated_at from going back when the clock was read
		// before this writer got its turn. The owner is set on insert only.
		err := tx.QueryRowContext(ctx, `
			INSERT INTO toolkits (id, name, description, instructions, revision, owner_key_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				name = excluded.name,
				description = excluded.description,
				instructions = excluded.instructions,
				revision = toolkits.revision + 1,
				updated_at = max(toolkits.updated_at, excluded.updated_at)
			RETURNING revision, owner_key_id, created_at, updated_at`,
			tk.ID, tk.Name, tk.Description, tk.Instructions, tk.OwnerKeyID, sqliteTime(t), sqliteTime(t),
		).Scan(&rev, &owner, timeCol{&created}, timeCol{&updated})
		if err != nil {
			return sqliteTranslate(err, subject("toolkit", tk.ID))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tools WHERE toolkit_id = ?`, tk.ID); err != nil {
			return err
		}
		return e.insertTools(ctx, tx, tk.ID, tools)
	})
	if err != nil {
		return false, sqliteTranslate(err, subject("toolkit", tk.ID))
	}
	tk.Revision, tk.OwnerKeyID, tk.CreatedAt, tk.UpdatedAt = rev, owner, created, updated
	return rev == 1, nil
}

func (e *sqliteEngine) insertTools(ctx context.Context, tx *sql.Tx, toolkitID string, tools []toolRecord) error {
	if len(tools) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `
		INSERT INTO tools (toolkit_id, position, name, description, input_schema, output_schema, annotations, executor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, t := range tools {
		_, err := stmt.ExecContext(ctx, toolkitID, i, t.Name, t.Description,
			sqliteText(t.InputSchema), sqliteText(t.OutputSchema), sqliteText(t.Annotations), sqliteText(t.Executor))
		if err != nil {
			return sqliteTranslate(err, toolSubject(toolkitID, t.Name))
		}
	}
	return nil
}

// The toolkit columns repeat on each of its tools' rows: one statement
// reads a toolkit with its tools from one snapshot, in one step.
const sqliteToolkitSelect = `
	SELECT k.id, k.name, k.description, k.instructions, k.revision, k.owner_key_id, k.created_at, k.updated_at,
	       t.name, t.description, t.input_schema, t.output_schema, t.annotations, t.executor
	FROM toolkits k LEFT JOIN tools t ON t.toolkit_id = k.id`

func (e *sqliteEngine) FindToolkitByID(ctx context.Context, id string) (*toolkit.Toolkit, error) {
	rows, err := e.readRows(ctx, sqliteToolkitSelect+` WHERE k.id = ? ORDER BY t.position`, id)
	if err != nil {
		return nil, sqliteTranslate(err, subject("toolkit", id))
	}
	tks, err := scanSQLiteToolkits(rows)
	if err != nil {
		return nil, sqliteTranslate(err, subject("toolkit", id))
	}
	if len(tks) == 0 {
		return nil, notFoundErr(subject("toolkit", id), nil)
	}
	return tks[0], nil
}

func (e *sqliteEngine) ListToolkits(ctx context.Context) ([]*toolkit.Toolkit, error) {
	rows, err := e.readRows(ctx, sqliteToolkitSelect+` ORDER BY k.id, t.position`)
	if err != nil {
		return nil, sqliteTranslate(err, "toolkits")
	}
	tks, err := scanSQLiteToolkits(rows)
	if err != nil {
		return nil, sqliteTranslate(err, "toolkits")
	}
	return tks, nil
}

// scanSQLiteToolkits reads rows of sqliteToolkitSelect ordered by toolkit,
// then tool position, and closes them.
func scanSQLiteToolkits(rows *sql.Rows) ([]*toolkit.Toolkit, error) {
	defer rows.Close()
	tks := []*toolkit.Toolkit{}
	var cur *toolkit.Toolkit
	for rows.Next() {
		var (
			tk                     toolkit.Toolkit
			toolName, toolDesc     sql.NullString
			in, out, ann, executor []byte
		)
		err := rows.Scan(&tk.ID, &tk.Name, &tk.Description, &tk.Instructions, &tk.Revision, &tk.OwnerKeyID,
			timeCol{&tk.CreatedAt}, timeCol{&tk.UpdatedAt},
			&toolName, &toolDesc, &in, &out, &ann, &executor)
		if err != nil {
			return nil, err
		}
		if cur == nil || cur.ID != tk.ID {
			cur = &tk
			tks = append(tks, cur)
		}
		if !toolName.Valid { // a toolkit without tools
			continue
		}
		tool, err := decodeTool(toolRecord{
			Name: toolName.String, Description: toolDesc.String,
			InputSchema: in, OutputSchema: out, Annotations: ann, Executor: executor,
		})
		if err != nil {
			return nil, err
		}
		cur.Tools = append(cur.Tools, tool)
	}
	return tks, rows.Err()
}

func (e *sqliteEngine) DeleteToolkit(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM toolkits WHERE id = ?`, id, subject("toolkit", id))
}

// deleteByID runs a DELETE of one row by id; NotFound if there was none.
func (e *sqliteEngine) deleteByID(ctx context.Context, query, id, subj string) error {
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, id)
		if err != nil {
			return err
		}
		return sqliteMustAffect(res, notFoundErr(subj, nil))
	}), subj)
}

// ---- API keys ----

const sqliteAPIKeyColumns = `id, name, kind, toolkits, toolkit_id, oauth_redirect_urls, prefix, hash, created_at, last_used_at, revoked_at`

func sqliteAPIKeyArgs(k *toolkit.APIKey) []any {
	return []any{k.ID, k.Name, k.Kind, encodeStrings(k.Toolkits), k.ToolkitID, encodeStrings(k.OAuthRedirectURLs),
		k.Prefix, k.Hash, sqliteTime(k.CreatedAt), sqliteTimePtr(k.LastUsedAt), sqliteTimePtr(k.RevokedAt)}
}

func (e *sqliteEngine) CreateAPIKey(ctx context.Context, k *toolkit.APIKey) error {
	prepareAPIKey(k)
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+sqliteAPIKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sqliteAPIKeyArgs(k)...)
		return err
	}), subject("api key", k.ID))
}

func (e *sqliteEngine) PutAPIKey(ctx context.Context, k *toolkit.APIKey) error {
	prepareAPIKey(k)
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO api_keys (`+sqliteAPIKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				name = excluded.name,
				kind = excluded.kind,
				toolkits = excluded.toolkits,
				toolkit_id = excluded.toolkit_id,
				oauth_redirect_urls = excluded.oauth_redirect_urls,
				prefix = excluded.prefix,
				hash = excluded.hash,
				created_at = excluded.created_at,
				last_used_at = excluded.last_used_at,
				revoked_at = excluded.revoked_at`,
			sqliteAPIKeyArgs(k)...)
		return err
	}), subject("api key", k.ID))
}

func (e *sqliteEngine) FindAPIKeyByHash(ctx context.Context, hash []byte) (*toolkit.APIKey, error) {
	row := e.readRow(ctx, `SELECT `+sqliteAPIKeyColumns+` FROM api_keys WHERE hash = ?`, hash)
	k, err := scanSQLiteAPIKey(row)
	return k, sqliteTranslate(err, "api key")
}

func (e *sqliteEngine) FindAPIKeyByID(ctx context.Context, id string) (*toolkit.APIKey, error) {
	row := e.readRow(ctx, `SELECT `+sqliteAPIKeyColumns+` FROM api_keys WHERE id = ?`, id)
	k, err := scanSQLiteAPIKey(row)
	return k, sqliteTranslate(err, subject("api key", id))
}

func (e *sqliteEngine) ListAPIKeys(ctx context.Context) ([]*toolkit.APIKey, error) {
	rows, err := e.reader().QueryContext(ctx, `SELECT `+sqliteAPIKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, sqliteTranslate(err, "api keys")
	}
	defer rows.Close()
	keys := []*toolkit.APIKey{}
	for rows.Next() {
		k, err := scanSQLiteAPIKey(rows)
		if err != nil {
			return nil, sqliteTranslate(err, "api keys")
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteTranslate(err, "api keys")
	}
	return keys, nil
}

func scanSQLiteAPIKey(row interface{ Scan(...any) error }) (*toolkit.APIKey, error) {
	var r sqliteAPIKeyRow
	if err := row.Scan(r.dest(make([]any, 0, 11))...); err != nil {
		return nil, err
	}
	return r.key()
}

// sqliteAPIKeyRow is an api_keys row being scanned, so that a query that
// reads a key with something else (FindSessionWithKey) scans it as
// scanSQLiteAPIKey does.
type sqliteAPIKeyRow struct {
	k                   toolkit.APIKey
	toolkits, redirects []byte
}

// dest appends the scan destinations of sqliteAPIKeyColumns, in order.
func (r *sqliteAPIKeyRow) dest(into []any) []any {
	return append(into, &r.k.ID, &r.k.Name, &r.k.Kind, &r.toolkits, &r.k.ToolkitID, &r.redirects,
		&r.k.Prefix, &r.k.Hash, timeCol{&r.k.CreatedAt}, nullTimeCol{&r.k.LastUsedAt}, nullTimeCol{&r.k.RevokedAt})
}

// key finishes the scanned key.
func (r *sqliteAPIKeyRow) key() (*toolkit.APIKey, error) {
	k := &r.k
	var err error
	if k.Toolkits, err = decodeStrings(r.toolkits); err != nil {
		return nil, err
	}
	if k.OAuthRedirectURLs, err = decodeStrings(r.redirects); err != nil {
		return nil, err
	}
	return k, nil
}

func (e *sqliteEngine) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			sqliteTime(at), id)
		if err != nil {
			return err
		}
		return sqliteMustAffect(res, revokeNotFound(id))
	}), subject("api key", id))
}

func (e *sqliteEngine) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		// Never backwards: touches from concurrent requests may land out of order.
		res, err := tx.ExecContext(ctx, `
			UPDATE api_keys SET last_used_at = CASE
				WHEN last_used_at IS NULL OR last_used_at < ?1 THEN ?1 ELSE last_used_at END
			WHERE id = ?2`, sqliteTime(at), id)
		if err != nil {
			return err
		}
		return sqliteMustAffect(res, notFoundErr(subject("api key", id), nil))
	}), subject("api key", id))
}

func (e *sqliteEngine) CountActiveAPIKeys(ctx context.Context, kind string) (int, error) {
	var n int
	err := e.reader().QueryRowContext(ctx,
		`SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND (?1 = '' OR kind = ?1)`, kind).Scan(&n)
	return n, sqliteTranslate(err, "api keys")
}

// ---- OAuth platforms ----

const sqlitePlatformColumns = `id, name, auth_url, token_url, client_id, sealed_client_secret, scopes, auth_params,
	pkce, token_auth_style, userinfo_url, expose_refresh_token, created_at, updated_at`

func sqlitePlatformArgs(p *toolkit.Platform, created, updated time.Time) []any {
	return []any{p.ID, p.Name, p.AuthURL, p.TokenURL, p.ClientID, p.SealedClientSecret, encodeStrings(p.Scopes),
		encodeMap(p.AuthParams), p.PKCE, p.TokenAuthStyle, p.UserinfoURL, p.ExposeRefreshToken,
		sqliteTime(created), sqliteTime(updated)}
}

func (e *sqliteEngine) CreatePlatform(ctx context.Context, p *toolkit.Platform) error {
	if err := checkPlatformSealed(p); err != nil {
		return err
	}
	t := now()
	err := e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_platforms (`+sqlitePlatformColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, sqlitePlatformArgs(p, t, t)...)
		return err
	})
	if err != nil {
		return sqliteTranslate(err, subject("platform", p.ID))
	}
	p.CreatedAt, p.UpdatedAt = t, t
	return nil
}

func (e *sqliteEngine) PutPlatform(ctx context.Context, p *toolkit.Platform) (bool, error) {
	if err := checkPlatformSealed(p); err != nil {
		return false, err
	}
	var (
		existed          bool
		created, updated time.Time
	)
	err := e.write(ctx, func(tx *sql.Tx) error {
		// Safe to look first: this transaction holds the write lock.
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_platforms WHERE id = ?)`, p.ID).Scan(&existed)
		if err != nil {
			return err
		}
		t := now()
		return tx.QueryRowContext(ctx, `INSERT INTO oauth_platforms (`+sqlitePlatformColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				name = excluded.name,
				auth_url = excluded.auth_url,
				token_url = excluded.token_url,
				client_id = excluded.client_id,
				sealed_client_secret = excluded.sealed_client_secret,
				scopes = excluded.scopes,
				auth_params = excluded.auth_params,
				pkce = excluded.pkce,
				token_auth_style = excluded.token_auth_style,
				userinfo_url = excluded.userinfo_url,
				expose_refresh_token = excluded.expose_refresh_token,
				updated_at = max(oauth_platforms.updated_at, excluded.updated_at)
			RETURNING created_at, updated_at`, sqlitePlatformArgs(p, t, t)...,
		).Scan(timeCol{&created}, timeCol{&updated})
	})
	if err != nil {
		return false, sqliteTranslate(err, subject("platform", p.ID))
	}
	p.CreatedAt, p.UpdatedAt = created, updated
	return !existed, nil
}

func (e *sqliteEngine) FindPlatformByID(ctx context.Context, id string) (*toolkit.Platform, error) {
	row := e.reader().QueryRowContext(ctx, `SELECT `+sqlitePlatformColumns+` FROM oauth_platforms WHERE id = ?`, id)
	p, err := scanSQLitePlatform(row)
	return p, sqliteTranslate(err, subject("platform", id))
}

func (e *sqliteEngine) ListPlatforms(ctx context.Context) ([]*toolkit.Platform, error) {
	rows, err := e.reader().QueryContext(ctx, `SELECT `+sqlitePlatformColumns+` FROM oauth_platforms ORDER BY id`)
	if err != nil {
		return nil, sqliteTranslate(err, "platforms")
	}
	defer rows.Close()
	ps := []*toolkit.Platform{}
	for rows.Next() {
		p, err := scanSQLitePlatform(rows)
		if err != nil {
			return nil, sqliteTranslate(err, "platforms")
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteTranslate(err, "platforms")
	}
	return ps, nil
}

func scanSQLitePlatform(row interface{ Scan(...any) error }) (*toolkit.Platform, error) {
	var (
		p              toolkit.Platform
		scopes, params []byte
		pkce           sql.NullBool
		err            error
	)
	err = row.Scan(&p.ID, &p.Name, &p.AuthURL, &p.TokenURL, &p.ClientID, &p.SealedClientSecret, &scopes, &params,
		&pkce, &p.TokenAuthStyle, &p.UserinfoURL, &p.ExposeRefreshToken, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt})
	if err != nil {
		return nil, err
	}
	if pkce.Valid {
		p.PKCE = &pkce.Bool
	}
	if p.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	if p.AuthParams, err = decodeMap(params); err != nil {
		return nil, err
	}
	return &p, nil
}

func (e *sqliteEngine) DeletePlatform(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM oauth_platforms WHERE id = ?`, id, subject("platform", id))
}

// ---- OAuth connections ----

const sqliteConnectionColumns = `id, platform_id, external_user_id, external_user_email, client_key_id, status, scope,
	expires_at, sealed_access_token, sealed_refresh_token, token_issued_at, created_at, updated_at`

func (e *sqliteEngine) UpsertConnection(ctx context.Context, c *toolkit.Connection) error {
	id := c.ID
	if id == "" {
		id = toolkit.NewID("conn_")
	}
	t := now()
	var created, updated time.Time
	err := e.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `
			INSERT INTO oauth_connections (`+sqliteConnectionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (platform_id, external_user_id, client_key_id) DO UPDATE SET
				external_user_email = excluded.external_user_email,
				status = excluded.status,
				scope = excluded.scope,
				expires_at = excluded.expires_at,
				sealed_access_token = excluded.sealed_access_token,
				sealed_refresh_token = excluded.sealed_refresh_token,
				token_issued_at = excluded.token_issued_at,
				updated_at = max(oauth_connections.updated_at, excluded.updated_at)
			RETURNING id, created_at, updated_at`,
			id, c.PlatformID, c.ExternalUserID, c.ExternalUserEmail, c.ClientKeyID, c.Status, c.Scope,
			sqliteTimePtr(c.ExpiresAt), c.SealedAccessToken, c.SealedRefreshToken, sqliteTimePtr(c.TokenIssuedAt),
			sqliteTime(t), sqliteTime(t),
		).Scan(&id, timeCol{&created}, timeCol{&updated})
	})
	if err != nil {
		return sqliteTranslate(err, connectionSubject(c))
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, created, updated
	c.ExpiresAt, c.TokenIssuedAt = normTimePtr(c.ExpiresAt), normTimePtr(c.TokenIssuedAt)
	return nil
}

func (e *sqliteEngine) FindConnectionByID(ctx context.Context, id string) (*toolkit.Connection, error) {
	row := e.reader().QueryRowContext(ctx, `SELECT `+sqliteConnectionColumns+` FROM oauth_connections WHERE id = ?`, id)
	c, err := scanSQLiteConnection(row)
	return c, sqliteTranslate(err, subject("connection", id))
}

func (e *sqliteEngine) ListConnections(ctx context.Context, f toolkit.ConnectionFilter) ([]*toolkit.Connection, error) {
	rows, err := e.reader().QueryContext(ctx, `
		SELECT `+sqliteConnectionColumns+` FROM oauth_connections
		WHERE (?1 = '' OR platform_id = ?1)
		  AND (?2 = '' OR external_user_id = ?2)
		  AND (?3 = '' OR client_key_id = ?3)
		ORDER BY created_at, id`, f.PlatformID, f.ExternalUserID, f.ClientKeyID)
	if err != nil {
		return nil, sqliteTranslate(err, "connections")
	}
	defer rows.Close()
	cs := []*toolkit.Connection{}
	for rows.Next() {
		c, err := scanSQLiteConnection(rows)
		if err != nil {
			return nil, sqliteTranslate(err, "connections")
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteTranslate(err, "connections")
	}
	return cs, nil
}

func scanSQLiteConnection(row interface{ Scan(...any) error }) (*toolkit.Connection, error) {
	var c toolkit.Connection
	err := row.Scan(&c.ID, &c.PlatformID, &c.ExternalUserID, &c.ExternalUserEmail, &c.ClientKeyID, &c.Status, &c.Scope,
		nullTimeCol{&c.ExpiresAt}, &c.SealedAccessToken, &c.SealedRefreshToken, nullTimeCol{&c.TokenIssuedAt},
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (e *sqliteEngine) DeleteConnection(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM oauth_connections WHERE id = ?`, id, subject("connection", id))
}

// ---- settings ----

func (e *sqliteEngine) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := e.reader().QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	return v, sqliteTranslate(err, subject("setting", key))
}

func (e *sqliteEngine) SetSetting(ctx context.Context, key, value string) error {
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			key, value, sqliteTime(now()))
		return err
	}), subject("setting", key))
}

func (e *sqliteEngine) schemaVersion(ctx context.Context) (version uint, dirty, ok bool, err error) {
	err = e.reader().QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, false, nil
	}
	if err != nil && strings.Contains(err.Error(), "no such table") { // never migrated
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, sqliteTranslate(err, "schema version")
	}
	return version, dirty, true, nil
}
