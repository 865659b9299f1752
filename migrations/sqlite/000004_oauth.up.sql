-- The OAuth end-user flow: authorizations in progress (state + PKCE), and
-- when a connection's access token was issued (the refresh margin is a
-- share of the token's whole lifetime).

-- One row per authorization URL handed out, deleted when its callback
-- arrives (single use) or when it expires. Only a hash of the state is
-- kept: a database dump cannot be used to complete someone's flow. The
-- PKCE verifier is a secret until the code is exchanged: sealed.
CREATE TABLE oauth_states (
    state_hash       BLOB PRIMARY KEY,
    platform_id      TEXT NOT NULL REFERENCES oauth_platforms (id) ON DELETE CASCADE,
    external_user_id TEXT NOT NULL,
    client_key_id    TEXT NOT NULL DEFAULT '', -- '' = anonymous
    redirect_url     TEXT NOT NULL DEFAULT '', -- '' = show the "connected" page
    sealed_verifier  TEXT NOT NULL DEFAULT '', -- '' = the platform does not use PKCE
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL
) STRICT;

CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

ALTER TABLE oauth_connections ADD COLUMN token_issued_at TEXT;
