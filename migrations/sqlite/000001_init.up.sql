-- The core of atp-server: server settings, API keys, toolkits with their
-- tools, OAuth platforms and the end users' connections to them.
-- Secrets are never stored in plain text: key secrets as SHA-256 hashes,
-- tool secrets, client secrets and tokens sealed (encrypted) by the server.
--
-- Same schema as postgres/000001_init.up.sql. Timestamps are UTC text in the
-- fixed-width form 2006-01-02T15:04:05.000000Z, so that text order is time
-- order; booleans are 0/1; JSON is text checked by json_valid.

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    toolkits            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(toolkits)),
    toolkit_id          TEXT NOT NULL DEFAULT '',
    oauth_redirect_urls TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(oauth_redirect_urls)),
    prefix              TEXT NOT NULL DEFAULT '',
    hash                BLOB NOT NULL UNIQUE,
    created_at          TEXT NOT NULL,
    last_used_at        TEXT,
    revoked_at          TEXT
) STRICT;

-- CountActiveAPIKeys runs at every start (is there an admin key?).
CREATE INDEX api_keys_active_kind ON api_keys (kind) WHERE revoked_at IS NULL;

CREATE TABLE toolkits (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    instructions TEXT NOT NULL DEFAULT '',
    revision     INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE tools (
    toolkit_id    TEXT NOT NULL REFERENCES toolkits (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    -- Kept byte for byte: the order of "properties" is the parameter order
    -- that clients and models see.
    input_schema  TEXT CHECK (json_valid(input_schema)),
    output_schema TEXT CHECK (json_valid(output_schema)),
    annotations   TEXT CHECK (json_valid(annotations)),
    -- The executor with its auth; a static secret only in sealed form.
    executor      TEXT NOT NULL CHECK (json_valid(executor)),
    PRIMARY KEY (toolkit_id, position),
    UNIQUE (toolkit_id, name)
) STRICT;

CREATE TABLE oauth_platforms (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    auth_url             TEXT NOT NULL,
    token_url            TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    sealed_client_secret TEXT NOT NULL DEFAULT '',
    scopes               TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    auth_params          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(auth_params)),
    pkce                 INTEGER CHECK (pkce IN (0, 1)), -- NULL: the default, which is on
    token_auth_style     TEXT NOT NULL DEFAULT '',
    userinfo_url         TEXT NOT NULL DEFAULT '',
    expose_refresh_token INTEGER NOT NULL DEFAULT 0 CHECK (expose_refresh_token IN (0, 1)),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;

-- A connection is useless without its platform, and its tokens should not
-- outlive the platform's removal: they cascade.
CREATE TABLE oauth_connections (
    id                   TEXT PRIMARY KEY,
    platform_id          TEXT NOT NULL REFERENCES oauth_platforms (id) ON DELETE CASCADE,
    external_user_id     TEXT NOT NULL,
    external_user_email  TEXT NOT NULL DEFAULT '',
    client_key_id        TEXT NOT NULL DEFAULT '', -- '' = not tied to a client key
    status               TEXT NOT NULL,
    scope                TEXT NOT NULL DEFAULT '',
    expires_at           TEXT,
    sealed_access_token  TEXT NOT NULL DEFAULT '',
    sealed_refresh_token TEXT NOT NULL DEFAULT '',
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (platform_id, external_user_id, client_key_id)
) STRICT;

CREATE INDEX oauth_connections_external_user ON oauth_connections (external_user_id);
