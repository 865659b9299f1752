DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS execution_journal;
DROP TABLE IF EXISTS executions;
DROP TABLE IF EXISTS sessions;
