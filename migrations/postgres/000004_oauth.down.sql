ALTER TABLE oauth_connections DROP COLUMN IF EXISTS token_issued_at;
DROP TABLE IF EXISTS oauth_states;
