-- ChatATP: which toolkit key created a toolkit by registering into it, what
-- toolkit processes registered (the code hash of each remote tool for
-- verify_tool_hash, the last toolkit hash of each key for verify_hash), and
-- the webhooks of client keys. Same schema as postgres/000003_chatatp.up.sql.

ALTER TABLE toolkits ADD COLUMN owner_key_id TEXT NOT NULL DEFAULT ''; -- '' = created by an admin

-- The tool itself lives in tools (executor kind remote); this row says who
-- registered it and with which code. An admin PUT may drop the tool and
-- leave this row behind: readers check the tool is still there.
CREATE TABLE remote_tools (
    toolkit_id TEXT NOT NULL REFERENCES toolkits (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    code_hash  TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (toolkit_id, name)
) STRICT;

CREATE TABLE remote_registrations (
    toolkit_id   TEXT NOT NULL REFERENCES toolkits (id) ON DELETE CASCADE,
    key_id       TEXT NOT NULL,
    toolkit_hash TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (toolkit_id, key_id)
) STRICT;

CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    events        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(events)),
    sealed_secret TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;

-- Listing a key's webhooks, in creation order.
CREATE INDEX webhooks_key_created ON webhooks (key_id, created_at);
