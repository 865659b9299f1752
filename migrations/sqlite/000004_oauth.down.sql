ALTER TABLE oauth_connections DROP COLUMN token_issued_at;
DROP TABLE IF EXISTS oauth_states;
