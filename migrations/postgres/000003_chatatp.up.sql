-- ChatATP: which toolkit key created a toolkit by registering into it, what
-- toolkit processes registered (the code hash of each remote tool for
-- verify_tool_hash, the last toolkit hash of each key for verify_hash), and
-- the webhooks of client keys (signing secrets sealed: the server signs
-- deliveries with them, so they cannot be hashed).

ALTER TABLE toolkits ADD COLUMN owner_key_id text NOT NULL DEFAULT ''; -- '' = created by an admin

-- The tool itself lives in tools (executor kind remote); this row says who
-- registered it and with which code. An admin PUT may drop the tool and
-- leave this row behind: readers check the tool is still there.
CREATE TABLE remote_tools (
    toolkit_id text NOT NULL REFERENCES toolkits (id) ON DELETE CASCADE,
    name       text NOT NULL,
    key_id     text NOT NULL,
    code_hash  text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (toolkit_id, name)
);

CREATE TABLE remote_registrations (
    toolkit_id   text NOT NULL REFERENCES toolkits (id) ON DELETE CASCADE,
    key_id       text NOT NULL,
    toolkit_hash text NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (toolkit_id, key_id)
);

CREATE TABLE webhooks (
    id            text PRIMARY KEY,
    key_id        text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    url           text NOT NULL,
    events        jsonb NOT NULL DEFAULT '[]',
    sealed_secret text NOT NULL,
    created_at    timestamptz NOT NULL
);

-- Listing a key's webhooks, in creation order.
CREATE INDEX webhooks_key_created ON webhooks (key_id, created_at);
