-- The core of atp-server: server settings, API keys, toolkits with their
-- tools, OAuth platforms and the end users' connections to them.
-- Secrets are never stored in plain text: key secrets as SHA-256 hashes,
-- tool secrets, client secrets and tokens sealed (encrypted) by the server.

CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    kind                text NOT NULL,
    toolkits            jsonb NOT NULL DEFAULT '[]',
    toolkit_id          text NOT NULL DEFAULT '',
    oauth_redirect_urls jsonb NOT NULL DEFAULT '[]',
    prefix              text NOT NULL DEFAULT '',
    hash                bytea NOT NULL UNIQUE,
    created_at          timestamptz NOT NULL,
    last_used_at        timestamptz,
    revoked_at          timestamptz
);

-- CountActiveAPIKeys runs at every start (is there an admin key?).
CREATE INDEX api_keys_active_kind ON api_keys (kind) WHERE revoked_at IS NULL;

CREATE TABLE toolkits (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    instructions text NOT NULL DEFAULT '',
    revision     bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE tools (
    toolkit_id    text NOT NULL REFERENCES toolkits (id) ON DELETE CASCADE,
    position      integer NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    -- json, not jsonb: jsonb reorders object keys, and the order of
    -- "properties" is the parameter order that clients and models see.
    input_schema  json,
    output_schema json,
    annotations   jsonb,
    -- The executor with its auth; a static secret only in sealed form.
    executor      jsonb NOT NULL,
    PRIMARY KEY (toolkit_id, position),
    UNIQUE (toolkit_id, name)
);

CREATE TABLE oauth_platforms (
    id                   text PRIMARY KEY,
    name                 text NOT NULL,
    auth_url             text NOT NULL,
    token_url            text NOT NULL,
    client_id            text NOT NULL,
    sealed_client_secret text NOT NULL DEFAULT '',
    scopes               jsonb NOT NULL DEFAULT '[]',
    auth_params          jsonb NOT NULL DEFAULT '{}',
    pkce                 boolean, -- NULL: the default, which is on
    token_auth_style     text NOT NULL DEFAULT '',
    userinfo_url         text NOT NULL DEFAULT '',
    expose_refresh_token boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

-- A connection is useless without its platform, and its tokens should not
-- outlive the platform's removal: they cascade.
CREATE TABLE oauth_connections (
    id                   text PRIMARY KEY,
    platform_id          text NOT NULL REFERENCES oauth_platforms (id) ON DELETE CASCADE,
    external_user_id     text NOT NULL,
    external_user_email  text NOT NULL DEFAULT '',
    client_key_id        text NOT NULL DEFAULT '', -- '' = not tied to a client key
    status               text NOT NULL,
    scope                text NOT NULL DEFAULT '',
    expires_at           timestamptz,
    sealed_access_token  text NOT NULL DEFAULT '',
    sealed_refresh_token text NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    UNIQUE (platform_id, external_user_id, client_key_id)
);

CREATE INDEX oauth_connections_external_user ON oauth_connections (external_user_id);
