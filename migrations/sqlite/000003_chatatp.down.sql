DROP TABLE IF EXISTS webhooks;
DROP TABLE IF EXISTS remote_registrations;
DROP TABLE IF EXISTS remote_tools;
ALTER TABLE toolkits DROP COLUMN owner_key_id;
