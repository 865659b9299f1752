-- Runtime state shared by all instances: monday client sessions, paused
-- executions with their replay journal, and the audit trail. The store
-- methods that use these tables come with later changes; the tables exist
-- now so that several instances can share state from the first release.

CREATE TABLE sessions (
    id         text PRIMARY KEY,          -- the monday clientId
    key_id     text NOT NULL DEFAULT '',  -- the API key that opened it; '' = anonymous
    data       jsonb NOT NULL,            -- clientInfo, guidance, tools, services
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE executions (
    id         text PRIMARY KEY,
    client_id  text NOT NULL DEFAULT '',  -- the session that owns it
    key_id     text NOT NULL DEFAULT '',
    status     text NOT NULL,
    state      bytea,                     -- opaque to the store: the paused execution
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX executions_expires_at ON executions (expires_at);

-- One row per pausable call of an execution, in call order, so that a
-- resumed execution can be replayed deterministically.
CREATE TABLE execution_journal (
    execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    entry        jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor_key_id text NOT NULL DEFAULT '',
    action       text NOT NULL,
    subject      text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    detail       jsonb
);

CREATE INDEX audit_events_at ON audit_events (at);
