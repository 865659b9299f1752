package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// The methods of this file serve ChatATP: compare-and-swap replaces and
// summaries of toolkits, remote tool registrations and webhooks.

func (e *sqliteEngine) ReplaceToolkit(ctx context.Context, tk *toolkit.Toolkit, ifRevision int64) error {
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
	// Writers take turns (BEGIN IMMEDIATE), so the revision read by the
	// UPDATE's WHERE cannot change before the commit.
	err = e.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			UPDATE toolkits SET
				name = ?,
				description = ?,
				instructions = ?,
				revision = revision + 1,
				updated_at = max(updated_at, ?)
			WHERE id = ? AND revision = ?
			RETURNING revision, owner_key_id, created_at, updated_at`,
			tk.Name, tk.Description, tk.Instructions, sqliteTime(t), tk.ID, ifRevision,
		).Scan(&rev, &owner, timeCol{&created}, timeCol{&updated})
		if errors.Is(err, sql.ErrNoRows) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM toolkits WHERE id = ?`, tk.ID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return notFoundErr(subj, nil)
			}
			return revisionMismatch(tk.ID, ifRevision)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tools WHERE toolkit_id = ?`, tk.ID); err != nil {
			return err
		}
		return e.insertTools(ctx, tx, tk.ID, tools)
	})
	if err != nil {
		return sqliteTranslate(err, subj)
	}
	tk.Revision, tk.OwnerKeyID, tk.CreatedAt, tk.UpdatedAt = rev, owner, created, updated
	return nil
}

const sqliteSummarySelect = `
	SELECT k.id, k.name, k.description, k.instructions, k.revision, k.owner_key_id, k.created_at, k.updated_at,
	       (SELECT count(*) FROM tools t WHERE t.toolkit_id = k.id)
	FROM toolkits k`

func scanSQLiteSummary(row interface{ Scan(...any) error }) (*toolkit.ToolkitSummary, error) {
	var s toolkit.ToolkitSummary
	err := row.Scan(&s.ID, &s.Name, &s.Description, &s.Instructions, &s.Revision, &s.OwnerKeyID,
		timeCol{&s.CreatedAt}, timeCol{&s.UpdatedAt}, &s.ToolCount)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (e *sqliteEngine) FindToolkitSummary(ctx context.Context, id string) (*toolkit.ToolkitSummary, error) {
	s, err := scanSQLiteSummary(e.readRow(ctx, sqliteSummarySelect+` WHERE k.id = ?`, id))
	return s, sqliteTranslate(err, subject("toolkit", id))
}

func (e *sqliteEngine) ListToolkitSummaries(ctx context.Context) ([]*toolkit.ToolkitSummary, error) {
	rows, err := e.readRows(ctx, sqliteSummarySelect+` ORDER BY k.id`)
	if err != nil {
		return nil, sqliteTranslate(err, "toolkits")
	}
	defer rows.Close()
	out := []*toolkit.ToolkitSummary{}
	for rows.Next() {
		s, err := scanSQLiteSummary(rows)
		if err != nil {
			return nil, sqliteTranslate(err, "toolkits")
		}
		out = append(out, s)
	}
	return out, sqliteTranslate(rows.Err(), "toolkits")
}

func (e *sqliteEngine) PutRemoteTool(ctx context.Context, rt *toolkit.RemoteTool) error {
	t := now()
	err := e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO remote_tools (toolkit_id, name, key_id, code_hash, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (toolkit_id, name) DO UPDATE SET
				key_id = excluded.key_id,
				code_hash = excluded.code_hash,
				updated_at = max(remote_tools.updated_at, excluded.updated_at)`,
			rt.ToolkitID, rt.Name, rt.KeyID, rt.CodeHash, sqliteTime(t))
		return err
	})
	if err != nil {
		return sqliteTranslate(err, subject("toolkit", rt.ToolkitID))
	}
	rt.UpdatedAt = t
	return nil
}

func (e *sqliteEngine) ListRemoteTools(ctx context.Context, toolkitID string) ([]*toolkit.RemoteTool, error) {
	rows, err := e.reader().QueryContext(ctx, `
		SELECT toolkit_id, name, key_id, code_hash, updated_at FROM remote_tools
		WHERE toolkit_id = ? ORDER BY name`, toolkitID)
	if err != nil {
		return nil, sqliteTranslate(err, "remote tools")
	}
	defer rows.Close()
	out := []*toolkit.RemoteTool{}
	for rows.Next() {
		var rt toolkit.RemoteTool
		if err := rows.Scan(&rt.ToolkitID, &rt.Name, &rt.KeyID, &rt.CodeHash, timeCol{&rt.UpdatedAt}); err != nil {
			return nil, sqliteTranslate(err, "remote tools")
		}
		out = append(out, &rt)
	}
	return out, sqliteTranslate(rows.Err(), "remote tools")
}

func (e *sqliteEngine) PutRemoteRegistration(ctx context.Context, r *toolkit.RemoteRegistration) error {
	t := now()
	err := e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO remote_registrations (toolkit_id, key_id, toolkit_hash, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (toolkit_id, key_id) DO UPDATE SET
				toolkit_hash = excluded.toolkit_hash,
				updated_at = max(remote_registrations.updated_at, excluded.updated_at)`,
			r.ToolkitID, r.KeyID, r.ToolkitHash, sqliteTime(t))
		return err
	})
	if err != nil {
		return sqliteTranslate(err, subject("toolkit", r.ToolkitID))
	}
	r.UpdatedAt = t
	return nil
}

func (e *sqliteEngine) FindRemoteRegistration(ctx context.Context, toolkitID, keyID string) (*toolkit.RemoteRegistration, error) {
	var r toolkit.RemoteRegistration
	err := e.reader().QueryRowContext(ctx, `
		SELECT toolkit_id, key_id, toolkit_hash, updated_at FROM remote_registrations
		WHERE toolkit_id = ? AND key_id = ?`, toolkitID, keyID,
	).Scan(&r.ToolkitID, &r.KeyID, &r.ToolkitHash, timeCol{&r.UpdatedAt})
	if err != nil {
		return nil, sqliteTranslate(err, registrationSubject(toolkitID, keyID))
	}
	return &r, nil
}

func (e *sqliteEngine) CreateWebhook(ctx context.Context, w *toolkit.Webhook) error {
	prepareWebhook(w)
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO webhooks (id, key_id, url, events, sealed_secret, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			w.ID, w.KeyID, w.URL, encodeStrings(w.Events), w.SealedSecret, sqliteTime(w.CreatedAt))
		return err
	}), subject("webhook", w.ID))
}

func (e *sqliteEngine) ListWebhooks(ctx context.Context, keyID string) ([]*toolkit.Webhook, error) {
	rows, err := e.reader().QueryContext(ctx, `
		SELECT id, key_id, url, events, sealed_secret, created_at FROM webhooks
		WHERE key_id = ? ORDER BY created_at, id`, keyID)
	if err != nil {
		return nil, sqliteTranslate(err, "webhooks")
	}
	defer rows.Close()
	out := []*toolkit.Webhook{}
	for rows.Next() {
		var (
			w      toolkit.Webhook
			events []byte
		)
		if err := rows.Scan(&w.ID, &w.KeyID, &w.URL, &events, &w.SealedSecret, timeCol{&w.CreatedAt}); err != nil {
			return nil, sqliteTranslate(err, "webhooks")
		}
		if w.Events, err = decodeStrings(events); err != nil {
			return nil, sqliteTranslate(err, "webhooks")
		}
		out = append(out, &w)
	}
	return out, sqliteTranslate(rows.Err(), "webhooks")
}

func (e *sqliteEngine) DeleteWebhook(ctx context.Context, keyID, id string) error {
	subj := subject("webhook", id)
	return sqliteTranslate(e.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND key_id = ?`, id, keyID)
		if err != nil {
			return err
		}
		return sqliteMustAffect(res, notFoundErr(subj, nil))
	}), subj)
}
