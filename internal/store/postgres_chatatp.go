package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// The methods of this file serve ChatATP: compare-and-swap replaces and
// summaries of toolkits, remote tool registrations and webhooks.

func (e *pgEngine) ReplaceToolkit(ctx context.Context, tk *toolkit.Toolkit, ifRevision int64) error {
	tools, err := encodeTools(tk.Tools)
	if err != nil {
		return err
	}
	var (
		rev              int64
		owner            string
		created, updated time.Time
		t                = now()
	)
	subj := subject("toolkit", tk.ID)
	err = e.write(ctx, func(tx pgx.Tx) error {
		// The UPDATE locks the row: a concurrent replace waits, then sees
		// the new revision and matches nothing.
		err := tx.QueryRow(ctx, `
			UPDATE toolkits SET
				name = $2,
				description = $3,
				instructions = $4,
				revision = revision + 1,
				updated_at = GREATEST(updated_at, $5)
			WHERE id = $1 AND revision = $6
			RETURNING revision, owner_key_id, created_at, updated_at`,
			tk.ID, tk.Name, tk.Description, tk.Instructions, t, ifRevision,
		).Scan(&rev, &owner, &created, &updated)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM toolkits WHERE id = $1)`, tk.ID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return notFoundErr(subj, nil)
			}
			return revisionMismatch(tk.ID, ifRevision)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tools WHERE toolkit_id = $1`, tk.ID); err != nil {
			return err
		}
		return insertPGTools(ctx, tx, tk.ID, tools)
	})
	if err != nil {
		return pgTranslate(err, subj)
	}
	tk.Revision, tk.OwnerKeyID, tk.CreatedAt, tk.UpdatedAt = rev, owner, created.UTC(), updated.UTC()
	return nil
}

const pgSummarySelect = `
	SELECT k.id, k.name, k.description, k.instructions, k.revision, k.owner_key_id, k.created_at, k.updated_at,
	       (SELECT count(*) FROM tools t WHERE t.toolkit_id = k.id)
	FROM toolkits k`

func scanPGSummary(row pgx.Row) (*toolkit.ToolkitSummary, error) {
	var s toolkit.ToolkitSummary
	err := row.Scan(&s.ID, &s.Name, &s.Description, &s.Instructions, &s.Revision, &s.OwnerKeyID,
		&s.CreatedAt, &s.UpdatedAt, &s.ToolCount)
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s, nil
}

func (e *pgEngine) FindToolkitSummary(ctx context.Context, id string) (*toolkit.ToolkitSummary, error) {
	s, err := scanPGSummary(e.pool.QueryRow(ctx, pgSummarySelect+` WHERE k.id = $1`, id))
	return s, pgTranslate(err, subject("toolkit", id))
}

func (e *pgEngine) ListToolkitSummaries(ctx context.Context) ([]*toolkit.ToolkitSummary, error) {
	rows, err := e.pool.Query(ctx, pgSummarySelect+` ORDER BY k.id`)
	if err != nil {
		return nil, pgTranslate(err, "toolkits")
	}
	defer rows.Close()
	out := []*toolkit.ToolkitSummary{}
	for rows.Next() {
		s, err := scanPGSummary(rows)
		if err != nil {
			return nil, pgTranslate(err, "toolkits")
		}
		out = append(out, s)
	}
	return out, pgTranslate(rows.Err(), "toolkits")
}

func (e *pgEngine) PutRemoteTool(ctx context.Context, rt *toolkit.RemoteTool) error {
	t := now()
	_, err := e.pool.Exec(ctx, `
		INSERT INTO remote_tools (toolkit_id, name, key_id, code_hash, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (toolkit_id, name) DO UPDATE SET
			key_id = excluded.key_id,
			code_hash = excluded.code_hash,
			updated_at = GREATEST(remote_tools.updated_at, excluded.updated_at)`,
		rt.ToolkitID, rt.Name, rt.KeyID, rt.CodeHash, t)
	if err != nil {
		return pgTranslate(err, subject("toolkit", rt.ToolkitID))
	}
	rt.UpdatedAt = t
	return nil
}

func (e *pgEngine) ListRemoteTools(ctx context.Context, toolkitID string) ([]*toolkit.RemoteTool, error) {
	rows, err := e.pool.Query(ctx, `
		SELECT toolkit_id, name, key_id, code_hash, updated_at FROM remote_tools
		WHERE toolkit_id = $1 ORDER BY name`, toolkitID)
	if err != nil {
		return nil, pgTranslate(err, "remote tools")
	}
	defer rows.Close()
	out := []*toolkit.RemoteTool{}
	for rows.Next() {
		var rt toolkit.RemoteTool
		if err := rows.Scan(&rt.ToolkitID, &rt.Name, &rt.KeyID, &rt.CodeHash, &rt.UpdatedAt); err != nil {
			return nil, pgTranslate(err, "remote tools")
		}
		rt.UpdatedAt = rt.UpdatedAt.UTC()
		out = append(out, &rt)
	}
	return out, pgTranslate(rows.Err(), "remote tools")
}

func (e *pgEngine) PutRemoteRegistration(ctx context.Context, r *toolkit.RemoteRegistration) error {
	t := now()
	_, err := e.pool.Exec(ctx, `
		INSERT INTO remote_registrations (toolkit_id, key_id, toolkit_hash, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (toolkit_id, key_id) DO UPDATE SET
			toolkit_hash = excluded.toolkit_hash,
			updated_at = GREATEST(remote_registrations.updated_at, excluded.updated_at)`,
		r.ToolkitID, r.KeyID, r.ToolkitHash, t)
	if err != nil {
		return pgTranslate(err, subject("toolkit", r.ToolkitID))
	}
	r.UpdatedAt = t
	return nil
}

func (e *pgEngine) FindRemoteRegistration(ctx context.Context, toolkitID, keyID string) (*toolkit.RemoteRegistration, error) {
	var r toolkit.RemoteRegistration
	err := e.pool.QueryRow(ctx, `
		SELECT toolkit_id, key_id, toolkit_hash, updated_at FROM remote_registrations
		WHERE toolkit_id = $1 AND key_id = $2`, toolkitID, keyID,
	).Scan(&r.ToolkitID, &r.KeyID, &r.ToolkitHash, &r.UpdatedAt)
	if err != nil {
		return nil, pgTranslate(err, registrationSubject(toolkitID, keyID))
	}
	r.UpdatedAt = r.UpdatedAt.UTC()
	return &r, nil
}

func (e *pgEngine) CreateWebhook(ctx context.Context, w *toolkit.Webhook) error {
	prepareWebhook(w)
	_, err := e.pool.Exec(ctx, `
		INSERT INTO webhooks (id, key_id, url, events, sealed_secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		w.ID, w.KeyID, w.URL, encodeStrings(w.Events), w.SealedSecret, w.CreatedAt)
	return pgTranslate(err, subject("webhook", w.ID))
}

func (e *pgEngine) ListWebhooks(ctx context.Context, keyID string) ([]*toolkit.Webhook, error) {
	rows, err := e.pool.Query(ctx, `
		SELECT id, key_id, url, events, sealed_secret, created_at FROM webhooks
		WHERE key_id = $1 ORDER BY created_at, id`, keyID)
	if err != nil {
		return nil, pgTranslate(err, "webhooks")
	}
	defer rows.Close()
	out := []*toolkit.Webhook{}
	for rows.Next() {
		var (
			w      toolkit.Webhook
			events []byte
		)
		if err := rows.Scan(&w.ID, &w.KeyID, &w.URL, &events, &w.SealedSecret, &w.CreatedAt); err != nil {
			return nil, pgTranslate(err, "webhooks")
		}
		w.CreatedAt = w.CreatedAt.UTC()
		if w.Events, err = decodeStrings(events); err != nil {
			return nil, pgTranslate(err, "webhooks")
		}
		out = append(out, &w)
	}
	return out, pgTranslate(rows.Err(), "webhooks")
}

func (e *pgEngine) DeleteWebhook(ctx context.Context, keyID, id string) error {
	tag, err := e.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND key_id = $2`, id, keyID)
	if err != nil {
		return pgTranslate(err, subject("webhook", id))
	}
	return mustAffect(tag.RowsAffected(), notFoundErr(subject("webhook", id), nil))
}
