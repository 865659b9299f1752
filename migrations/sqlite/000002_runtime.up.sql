-- Runtime state: monday client sessions, paused executions with their
-- replay journal, and the audit trail. Same schema as
-- postgres/000002_runtime.up.sql; the store methods that use these tables
-- come with later changes.

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,          -- the monday clientId
    key_id     TEXT NOT NULL DEFAULT '',  -- the API key that opened it; '' = anonymous
    data       TEXT NOT NULL CHECK (json_valid(data)), -- clientInfo, guidance, tools, services
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE executions (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL DEFAULT '',  -- the session that owns it
    key_id     TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL,
    state      BLOB,                      -- opaque to the store: the paused execution
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX executions_expires_at ON executions (expires_at);

-- One row per pausable call of an execution, in call order, so that a
-- resumed execution can be replayed deterministically.
CREATE TABLE execution_journal (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    entry        TEXT NOT NULL CHECK (json_valid(entry)),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
) STRICT;

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor_key_id TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    request_id   TEXT NOT NULL DEFAULT '',
    detail       TEXT CHECK (json_valid(detail))
) STRICT;

CREATE INDEX audit_events_at ON audit_events (at);
