// Package store persists the domain of internal/toolkit: it implements
// toolkit.Store twice, on PostgreSQL (pgx/v5, pgxpool; several server
// instances share one database) and on an embedded SQLite file
// (modernc.org/sqlite, pure Go; one instance), and runs the schema
// migrations embedded by package migrations.
//
// Open picks the engine: an empty Options.DatabaseURL means the SQLite file
// DataDir/atp.db. Both engines keep the same contract, which one test suite
// (storetest.RunContract) checks against both:
//
//   - Every method takes ctx first and owns its transaction.
//   - Expected outcomes are *toolkit.Error kinds: KindNotFound for a missing
//     row (message such as `toolkit "x" not found`), KindConflict for a
//     duplicate id or hash, KindInvalid for a value the schema rejects,
//     KindUnavailable when the database cannot be reached, KindTimeout when
//     ctx's deadline passed. Anything else is KindInternal, with the driver
//     error as the cause, which is logged and never shown to clients. Each
//     engine maps its driver's errors in one translate function.
//   - Times are stored in UTC with microsecond precision (PostgreSQL's), and
//     the times written back into the caller's struct are the stored ones,
//     so a value read back compares equal to the one written. The store
//     stamps CreatedAt/UpdatedAt of toolkits, platforms and connections
//     itself (a replace keeps CreatedAt; UpdatedAt never goes back); an API
//     key's CreatedAt is the caller's, or now when zero, and a key or
//     connection without an id is given one.
//   - Deleting a toolkit deletes its tools and the records of what toolkit
//     processes registered into it; deleting a platform deletes its
//     connections (and their tokens). A toolkit's owner is set on create
//     only. ReplaceToolkit is a compare-and-swap on the revision.
//   - Secrets arrive sealed. A plaintext tool secret or client secret is
//     refused (KindInternal): it means a caller skipped the Sealer. Webhook
//     signing secrets are sealed too (the server signs with them).
//   - WithConnectionLock serialises the callers for one OAuth connection
//     (token refreshes): a per-process queue, then on PostgreSQL the row
//     lock (SELECT … FOR UPDATE) held until commit, so instances sharing
//     the database take turns; on SQLite (one instance) the process lock,
//     with a write that yields to a connection replaced meanwhile. OAuth
//     states are single-use: TakeOAuthState is one DELETE … RETURNING.
//     ResealSecrets re-encrypts every sealed column for key rotation.
//   - Empty slices and maps come back nil; List methods never return nil.
//   - Tool schemas come back byte for byte as written (property order is
//     the parameter order clients show).
//
// Migrations (MigrateUp, MigrateDown, MigrationVersion, or Open with
// Options.Migrate) use golang-migrate on the embedded files; CheckSchema
// tells a readiness probe whether the schema is current.
//
// SQLite serialises writes through a single connection (BEGIN IMMEDIATE),
// so concurrent writers queue in Go instead of failing with SQLITE_BUSY,
// while reads run in parallel on a separate read-only pool (WAL mode).
//
// The package depends on internal/toolkit (it returns domain types) and on
// migrations. It must not import internal/api, internal/oauth or
// internal/sandbox: it stores sealed values and knows no protocol.
package store
