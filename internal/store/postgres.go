package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// pgEngine is the PostgreSQL engine, for one or many server instances.
// Statements that must see or change several rows together run in one
// transaction; lost updates are prevented by row locks (INSERT … ON
// CONFLICT DO UPDATE locks the row it updates), so the default READ
// COMMITTED level suffices and no serialization retries are needed.
type pgEngine struct {
	pool *pgxpool.Pool
	// conns queues WithConnectionLock calls of this process per
	// connection before they take a pooled connection to wait on the row
	// lock: fifty waiters must not hold fifty pooled connections.
	conns keyedLocks
}

func openPostgres(ctx context.Context, o Options) (*pgEngine, error) {
	cfg, err := pgxpool.ParseConfig(o.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	return &pgEngine{pool: pool}, nil
}

func (e *pgEngine) name() string { return EnginePostgres }

func (e *pgEngine) stats() PoolStats {
	s := e.pool.Stat()
	return PoolStats{
		MaxConns:          s.MaxConns(),
		TotalConns:        s.TotalConns(),
		IdleConns:         s.IdleConns(),
		AcquiredConns:     s.AcquiredConns(),
		AcquireCount:      s.AcquireCount(),
		EmptyAcquireCount: s.EmptyAcquireCount(),
		AcquireDuration:   s.AcquireDuration(),
	}
}

func (e *pgEngine) Ping(ctx context.Context) error {
	return pgTranslate(e.pool.Ping(ctx), "database")
}

func (e *pgEngine) Close() error {
	e.pool.Close()
	return nil
}

// write runs fn in a transaction and commits it if fn succeeds. Errors
// come back untranslated.
func (e *pgEngine) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, e.pool, pgx.TxOptions{}, fn)
}

// pgTranslate maps a driver error to a *toolkit.Error; subj names the row
// in messages (`toolkit "x"`). *toolkit.Errors pass through.
func pgTranslate(err error, subj string) error {
	if err == nil {
		return nil
	}
	var te *toolkit.Error
	if errors.As(err, &te) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return notFoundErr(subj, nil)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return timeoutErr(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == pgerrcode.UniqueViolation:
			return conflictErr(subj, err)
		case pe.Code == pgerrcode.ForeignKeyViolation:
			return missingRefErr(subj, err)
		case pe.Code == pgerrcode.NotNullViolation, pe.Code == pgerrcode.CheckViolation,
			pgerrcode.IsDataException(pe.Code):
			return invalidErr(subj, err)
		case pe.Code == pgerrcode.QueryCanceled: // statement_timeout
			return timeoutErr(err)
		case pgerrcode.IsConnectionException(pe.Code), pgerrcode.IsInsufficientResources(pe.Code),
			pgerrcode.IsOperatorIntervention(pe.Code):
			return unavailableErr(err)
		}
		return internalErr(err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return unavailableErr(err)
	}
	return internalErr(err)
}

// utcPtr converts a time read from PostgreSQL (pgx gives local time) to UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ---- toolkits ----

func (e *pgEngine) CreateToolkit(ctx context.Context, tk *toolkit.Toolkit) error {
	tools, err := encodeTools(tk.Tools)
	if err != nil {
		return err
	}
	t := now()
	err = e.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO toolkits (id, name, description, instructions, revision, owner_key_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $6)`,
			tk.ID, tk.Name, tk.Description, tk.Instructions, tk.OwnerKeyID, t)
		if err != nil {
			return pgTranslate(err, subject("toolkit", tk.ID))
		}
		return insertPGTools(ctx, tx, tk.ID, tools)
	})
	if err != nil {
		return pgTranslate(err, subject("toolkit", tk.ID))
	}
	tk.Revision, tk.CreatedAt, tk.UpdatedAt = 1, t, t
	return nil
}

func (e *pgEngine) PutToolkit(ctx context.Context, tk *toolkit.Toolkit) (bool, error) {
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
	err = e.write(ctx, func(tx pgx.Tx) error {
		// The upsert locks the toolkit row until commit, so concurrent puts
		// of one toolkit take turns: each sees the revision of the one
		// before. GREATEST keeps updated_at from going back when the clock
		// was read before this transaction got the lock. The owner is set
		// on insert only.
		err := tx.QueryRow(ctx, `
			INSERT INTO toolkits (id, name, description, instructions, revision, owner_key_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $6)
			ON CONFLICT (id) DO UPDATE SET
				name = excluded.name,
				description = excluded.description,
				instructions = excluded.instructions,
				revision = toolkits.revision + 1,
				updated_at = GREATEST(toolkits.updated_at, excluded.updated_at)
			RETURNING revision, owner_key_id, created_at, updated_at`,
			tk.ID, tk.Name, tk.Description, tk.Instructions, tk.OwnerKeyID, t,
		).Scan(&rev, &owner, &created, &updated)
		if err != nil {
			return pgTranslate(err, subject("toolkit", tk.ID))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tools WHERE toolkit_id = $1`, tk.ID); err != nil {
			return err
		}
		return insertPGTools(ctx, tx, tk.ID, tools)
	})
	if err != nil {
		return false, pgTranslate(err, subject("toolkit", tk.ID))
	}
	tk.Revision, tk.OwnerKeyID, tk.CreatedAt, tk.UpdatedAt = rev, owner, created.UTC(), updated.UTC()
	return rev == 1, nil
}

// insertPGTools inserts the tools in one round trip.
func insertPGTools(ctx context.Context, tx pgx.Tx, toolkitID string, tools []toolRecord) error {
	if len(tools) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for i, t := range tools {
		b.Queue(`
			INSERT INTO tools (toolkit_id, position, name, description, input_schema, output_schema, annotations, executor)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			toolkitID, i, t.Name, t.Description, t.InputSchema, t.OutputSchema, t.Annotations, t.Executor)
	}
	br := tx.SendBatch(ctx, b)
	for _, t := range tools {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return pgTranslate(err, toolSubject(toolkitID, t.Name))
		}
	}
	return br.Close()
}

// The toolkit columns repeat on each of its tools' rows: one statement
// reads a toolkit with its tools from one snapshot, in one round trip
// (this runs on every tool call).
const pgToolkitSelect = `
	SELECT k.id, k.name, k.description, k.instructions, k.revision, k.owner_key_id, k.created_at, k.updated_at,
	       t.name, t.description, t.input_schema, t.output_schema, t.annotations, t.executor
	FROM toolkits k LEFT JOIN tools t ON t.toolkit_id = k.id`

func (e *pgEngine) FindToolkitByID(ctx context.Context, id string) (*toolkit.Toolkit, error) {
	rows, err := e.pool.Query(ctx, pgToolkitSelect+` WHERE k.id = $1 ORDER BY t.position`, id)
	if err != nil {
		return nil, pgTranslate(err, subject("toolkit", id))
	}
	tks, err := scanPGToolkits(rows)
	if err != nil {
		return nil, pgTranslate(err, subject("toolkit", id))
	}
	if len(tks) == 0 {
		return nil, notFoundErr(subject("toolkit", id), nil)
	}
	return tks[0], nil
}

func (e *pgEngine) ListToolkits(ctx context.Context) ([]*toolkit.Toolkit, error) {
	rows, err := e.pool.Query(ctx, pgToolkitSelect+` ORDER BY k.id, t.position`)
	if err != nil {
		return nil, pgTranslate(err, "toolkits")
	}
	tks, err := scanPGToolkits(rows)
	if err != nil {
		return nil, pgTranslate(err, "toolkits")
	}
	return tks, nil
}

// scanPGToolkits reads rows of pgToolkitSelect ordered by toolkit, then
// tool position, and closes them.
func scanPGToolkits(rows pgx.Rows) ([]*toolkit.Toolkit, error) {
	defer rows.Close()
	tks := []*toolkit.Toolkit{}
	var cur *toolkit.Toolkit
	for rows.Next() {
		var (
			tk                     toolkit.Toolkit
			toolName, toolDesc     *string
			in, out, ann, executor []byte
		)
		err := rows.Scan(&tk.ID, &tk.Name, &tk.Description, &tk.Instructions, &tk.Revision, &tk.OwnerKeyID,
			&tk.CreatedAt, &tk.UpdatedAt, &toolName, &toolDesc, &in, &out, &ann, &executor)
		if err != nil {
			return nil, err
		}
		if cur == nil || cur.ID != tk.ID {
			tk.CreatedAt, tk.UpdatedAt = tk.CreatedAt.UTC(), tk.UpdatedAt.UTC()
			cur = &tk
			tks = append(tks, cur)
		}
		if toolName == nil { // a toolkit without tools
			continue
		}
		rec := toolRecord{Name: *toolName, InputSchema: in, OutputSchema: out, Annotations: ann, Executor: executor}
		if toolDesc != nil {
			rec.Description = *toolDesc
		}
		tool, err := decodeTool(rec)
		if err != nil {
			return nil, err
		}
		cur.Tools = append(cur.Tools, tool)
	}
	return tks, rows.Err()
}

func (e *pgEngine) DeleteToolkit(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM toolkits WHERE id = $1`, id, subject("toolkit", id))
}

// deleteByID runs a DELETE of one row by id; NotFound if there was none.
func (e *pgEngine) deleteByID(ctx context.Context, query, id, subj string) error {
	tag, err := e.pool.Exec(ctx, query, id)
	if err != nil {
		return pgTranslate(err, subj)
	}
	return mustAffect(tag.RowsAffected(), notFoundErr(subj, nil))
}

// ---- API keys ----

const pgAPIKeyColumns = `id, name, kind, toolkits, toolkit_id, oauth_redirect_urls, prefix, hash, created_at, last_used_at, revoked_at`

func pgAPIKeyArgs(k *toolkit.APIKey) []any {
	return []any{k.ID, k.Name, k.Kind, encodeStrings(k.Toolkits), k.ToolkitID, encodeStrings(k.OAuthRedirectURLs),
		k.Prefix, k.Hash, k.CreatedAt, k.LastUsedAt, k.RevokedAt}
}

func (e *pgEngine) CreateAPIKey(ctx context.Context, k *toolkit.APIKey) error {
	prepareAPIKey(k)
	_, err := e.pool.Exec(ctx, `INSERT INTO api_keys (`+pgAPIKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		pgAPIKeyArgs(k)...)
	return pgTranslate(err, subject("api key", k.ID))
}

func (e *pgEngine) PutAPIKey(ctx context.Context, k *toolkit.APIKey) error {
	prepareAPIKey(k)
	_, err := e.pool.Exec(ctx, `
		INSERT INTO api_keys (`+pgAPIKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
		pgAPIKeyArgs(k)...)
	return pgTranslate(err, subject("api key", k.ID))
}

func (e *pgEngine) FindAPIKeyByHash(ctx context.Context, hash []byte) (*toolkit.APIKey, error) {
	row := e.pool.QueryRow(ctx, `SELECT `+pgAPIKeyColumns+` FROM api_keys WHERE hash = $1`, hash)
	k, err := scanPGAPIKey(row)
	return k, pgTranslate(err, "api key")
}

func (e *pgEngine) FindAPIKeyByID(ctx context.Context, id string) (*toolkit.APIKey, error) {
	row := e.pool.QueryRow(ctx, `SELECT `+pgAPIKeyColumns+` FROM api_keys WHERE id = $1`, id)
	k, err := scanPGAPIKey(row)
	return k, pgTranslate(err, subject("api key", id))
}

func (e *pgEngine) ListAPIKeys(ctx context.Context) ([]*toolkit.APIKey, error) {
	rows, err := e.pool.Query(ctx, `SELECT `+pgAPIKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, pgTranslate(err, "api keys")
	}
	defer rows.Close()
	keys := []*toolkit.APIKey{}
	for rows.Next() {
		k, err := scanPGAPIKey(rows)
		if err != nil {
			return nil, pgTranslate(err, "api keys")
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, pgTranslate(err, "api keys")
	}
	return keys, nil
}

func scanPGAPIKey(row pgx.Row) (*toolkit.APIKey, error) {
	var r pgAPIKeyRow
	if err := row.Scan(r.dest(make([]any, 0, 11))...); err != nil {
		return nil, err
	}
	return r.key()
}

// pgAPIKeyRow is an api_keys row being scanned, so that a query that
// reads a key with something else (FindSessionWithKey) scans it as
// scanPGAPIKey does.
type pgAPIKeyRow struct {
	k                   toolkit.APIKey
	toolkits, redirects []byte
}

// dest appends the scan destinations of pgAPIKeyColumns, in order.
func (r *pgAPIKeyRow) dest(into []any) []any {
	return append(into, &r.k.ID, &r.k.Name, &r.k.Kind, &r.toolkits, &r.k.ToolkitID, &r.redirects,
		&r.k.Prefix, &r.k.Hash, &r.k.CreatedAt, &r.k.LastUsedAt, &r.k.RevokedAt)
}

// key finishes the scanned key.
func (r *pgAPIKeyRow) key() (*toolkit.APIKey, error) {
	k := &r.k
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = k.CreatedAt.UTC(), utcPtr(k.LastUsedAt), utcPtr(k.RevokedAt)
	var err error
	if k.Toolkits, err = decodeStrings(r.toolkits); err != nil {
		return nil, err
	}
	if k.OAuthRedirectURLs, err = decodeStrings(r.redirects); err != nil {
		return nil, err
	}
	return k, nil
}

func (e *pgEngine) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	tag, err := e.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`,
		id, normTime(at))
	if err != nil {
		return pgTranslate(err, subject("api key", id))
	}
	return mustAffect(tag.RowsAffected(), revokeNotFound(id))
}

func (e *pgEngine) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	// Never backwards: touches from concurrent requests may land out of
	// order. GREATEST ignores the NULL of a key never used.
	tag, err := e.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1`,
		id, normTime(at))
	if err != nil {
		return pgTranslate(err, subject("api key", id))
	}
	return mustAffect(tag.RowsAffected(), notFoundErr(subject("api key", id), nil))
}

func (e *pgEngine) CountActiveAPIKeys(ctx context.Context, kind string) (int, error) {
	var n int
	err := e.pool.QueryRow(ctx,
		`SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND ($1 = '' OR kind = $1)`, kind).Scan(&n)
	return n, pgTranslate(err, "api keys")
}

// ---- OAuth platforms ----

const pgPlatformColumns = `id, name, auth_url, token_url, client_id, sealed_client_secret, scopes, auth_params,
	pkce, token_auth_style, userinfo_url, expose_refresh_token, created_at, updated_at`

func pgPlatformArgs(p *toolkit.Platform, t time.Time) []any {
	return []any{p.ID, p.Name, p.AuthURL, p.TokenURL, p.ClientID, p.SealedClientSecret, encodeStrings(p.Scopes),
		encodeMap(p.AuthParams), p.PKCE, p.TokenAuthStyle, p.UserinfoURL, p.ExposeRefreshToken, t}
}

func (e *pgEngine) CreatePlatform(ctx context.Context, p *toolkit.Platform) error {
	if err := checkPlatformSealed(p); err != nil {
		return err
	}
	t := now()
	_, err := e.pool.Exec(ctx, `INSERT INTO oauth_platforms (`+pgPlatformColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)`, pgPlatformArgs(p, t)...)
	if err != nil {
		return pgTranslate(err, subject("platform", p.ID))
	}
	p.CreatedAt, p.UpdatedAt = t, t
	return nil
}

func (e *pgEngine) PutPlatform(ctx context.Context, p *toolkit.Platform) (bool, error) {
	if err := checkPlatformSealed(p); err != nil {
		return false, err
	}
	var (
		inserted         bool
		created, updated time.Time
	)
	// xmax is 0 on a row version that an INSERT created and set by an
	// update: the usual way to learn which branch an upsert took.
	err := e.pool.QueryRow(ctx, `INSERT INTO oauth_platforms (`+pgPlatformColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
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
			updated_at = GREATEST(oauth_platforms.updated_at, excluded.updated_at)
		RETURNING created_at, updated_at, xmax = 0`, pgPlatformArgs(p, now())...,
	).Scan(&created, &updated, &inserted)
	if err != nil {
		return false, pgTranslate(err, subject("platform", p.ID))
	}
	p.CreatedAt, p.UpdatedAt = created.UTC(), updated.UTC()
	return inserted, nil
}

func (e *pgEngine) FindPlatformByID(ctx context.Context, id string) (*toolkit.Platform, error) {
	row := e.pool.QueryRow(ctx, `SELECT `+pgPlatformColumns+` FROM oauth_platforms WHERE id = $1`, id)
	p, err := scanPGPlatform(row)
	return p, pgTranslate(err, subject("platform", id))
}

func (e *pgEngine) ListPlatforms(ctx context.Context) ([]*toolkit.Platform, error) {
	rows, err := e.pool.Query(ctx, `SELECT `+pgPlatformColumns+` FROM oauth_platforms ORDER BY id`)
	if err != nil {
		return nil, pgTranslate(err, "platforms")
	}
	defer rows.Close()
	ps := []*toolkit.Platform{}
	for rows.Next() {
		p, err := scanPGPlatform(rows)
		if err != nil {
			return nil, pgTranslate(err, "platforms")
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, pgTranslate(err, "platforms")
	}
	return ps, nil
}

func scanPGPlatform(row pgx.Row) (*toolkit.Platform, error) {
	var (
		p              toolkit.Platform
		scopes, params []byte
		err            error
	)
	err = row.Scan(&p.ID, &p.Name, &p.AuthURL, &p.TokenURL, &p.ClientID, &p.SealedClientSecret, &scopes, &params,
		&p.PKCE, &p.TokenAuthStyle, &p.UserinfoURL, &p.ExposeRefreshToken, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	if p.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	if p.AuthParams, err = decodeMap(params); err != nil {
		return nil, err
	}
	return &p, nil
}

func (e *pgEngine) DeletePlatform(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM oauth_platforms WHERE id = $1`, id, subject("platform", id))
}

// ---- OAuth connections ----

const pgConnectionColumns = `id, platform_id, external_user_id, external_user_email, client_key_id, status, scope,
	expires_at, sealed_access_token, sealed_refresh_token, token_issued_at, created_at, updated_at`

func (e *pgEngine) UpsertConnection(ctx context.Context, c *toolkit.Connection) error {
	id := c.ID
	if id == "" {
		id = toolkit.NewID("conn_")
	}
	expires, issued := normTimePtr(c.ExpiresAt), normTimePtr(c.TokenIssuedAt)
	var created, updated time.Time
	err := e.pool.QueryRow(ctx, `
		INSERT INTO oauth_connections (`+pgConnectionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
		ON CONFLICT (platform_id, external_user_id, client_key_id) DO UPDATE SET
			external_user_email = excluded.external_user_email,
			status = excluded.status,
			scope = excluded.scope,
			expires_at = excluded.expires_at,
			sealed_access_token = excluded.sealed_access_token,
			sealed_refresh_token = excluded.sealed_refresh_token,
			token_issued_at = excluded.token_issued_at,
			updated_at = GREATEST(oauth_connections.updated_at, excluded.updated_at)
		RETURNING id, created_at, updated_at`,
		id, c.PlatformID, c.ExternalUserID, c.ExternalUserEmail, c.ClientKeyID, c.Status, c.Scope,
		expires, c.SealedAccessToken, c.SealedRefreshToken, issued, now(),
	).Scan(&id, &created, &updated)
	if err != nil {
		return pgTranslate(err, connectionSubject(c))
	}
	c.ID, c.CreatedAt, c.UpdatedAt, c.ExpiresAt, c.TokenIssuedAt = id, created.UTC(), updated.UTC(), expires, issued
	return nil
}

func (e *pgEngine) FindConnectionByID(ctx context.Context, id string) (*toolkit.Connection, error) {
	row := e.pool.QueryRow(ctx, `SELECT `+pgConnectionColumns+` FROM oauth_connections WHERE id = $1`, id)
	c, err := scanPGConnection(row)
	return c, pgTranslate(err, subject("connection", id))
}

func (e *pgEngine) ListConnections(ctx context.Context, f toolkit.ConnectionFilter) ([]*toolkit.Connection, error) {
	rows, err := e.pool.Query(ctx, `
		SELECT `+pgConnectionColumns+` FROM oauth_connections
		WHERE ($1 = '' OR platform_id = $1)
		  AND ($2 = '' OR external_user_id = $2)
		  AND ($3 = '' OR client_key_id = $3)
		ORDER BY created_at, id`, f.PlatformID, f.ExternalUserID, f.ClientKeyID)
	if err != nil {
		return nil, pgTranslate(err, "connections")
	}
	defer rows.Close()
	cs := []*toolkit.Connection{}
	for rows.Next() {
		c, err := scanPGConnection(rows)
		if err != nil {
			return nil, pgTranslate(err, "connections")
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, pgTranslate(err, "connections")
	}
	return cs, nil
}

func scanPGConnection(row pgx.Row) (*toolkit.Connection, error) {
	var c toolkit.Connection
	err := row.Scan(&c.ID, &c.PlatformID, &c.ExternalUserID, &c.ExternalUserEmail, &c.ClientKeyID, &c.Status, &c.Scope,
		&c.ExpiresAt, &c.SealedAccessToken, &c.SealedRefreshToken, &c.TokenIssuedAt, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, err
	}
	c.ExpiresAt, c.TokenIssuedAt = utcPtr(c.ExpiresAt), utcPtr(c.TokenIssuedAt)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func (e *pgEngine) DeleteConnection(ctx context.Context, id string) error {
	return e.deleteByID(ctx, `DELETE FROM oauth_connections WHERE id = $1`, id, subject("connection", id))
}

// ---- settings ----

func (e *pgEngine) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := e.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	return v, pgTranslate(err, subject("setting", key))
}

func (e *pgEngine) SetSetting(ctx context.Context, key, value string) error {
	_, err := e.pool.Exec(ctx, `
		INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, now())
	return pgTranslate(err, subject("setting", key))
}

func (e *pgEngine) schemaVersion(ctx context.Context) (version uint, dirty, ok bool, err error) {
	var v int64
	err = e.pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, false, nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgerrcode.UndefinedTable { // never migrated
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, pgTranslate(err, "schema version")
	}
	return uint(v), dirty, true, nil
}
