// Package monday is the HTTP surface of the monday.com Agent Tool Protocol
// (shared/spec/monday-atp.md): the wire contract of the npm client
// @mondaydotcomorg/atp-client 0.19.20. It serves, under a configurable
// prefix, POST /api/init, GET /api/definitions, GET /api/runtime,
// GET /api/info, POST (and GET) /api/search, POST /api/explore,
// POST /api/execute, POST /api/execute/stream (server-sent events),
// POST /api/resume/{id} and POST /api/token/refresh; routes.go lists them.
//
// # Model
//
// Toolkits are API groups: sandbox code calls api.<toolkit id>.<tool>(input)
// and the tool runs through toolkit.Service as the client's API key, for
// the end user named by X-User-ID. /api/definitions, /api/search and
// /api/explore describe the toolkits that key may use (APIKey.MayUseToolkit),
// narrowed by the client's toolRules, never widened. Code runs in the
// pausable engine of internal/execution; this package translates HTTP to
// Execute and Resume calls and back.
//
// Every request that needs the key's toolkits reads them through a
// toolkit.Catalog: one query for the summaries (no tools), and a whole
// toolkit only when its version differs from the one this instance last
// loaded. A toolkit changed through any instance sharing the database is
// therefore in the very next request, and an unchanged one costs no tool
// read. An execution calls the toolkits it resolved when it started (a
// snapshot, see toolCaller): one version of each, from start to end,
// across pauses.
//
// # Sessions and tokens
//
// POST /api/init needs a client key (X-API-Key, or Authorization: Bearer on
// init only, since the client overwrites Authorization afterwards) unless
// Config.AllowAnonymous. It stores a toolkit.Session — client tools,
// services, the key id — through toolkit.SessionStore, so that every
// instance sharing the database can serve the client, and answers an HS256
// JWT signed with Config.JWTSecret. A request is verified when its token is
// valid for its X-Client-ID AND the session is live AND its key has not
// been revoked; sessions slide with activity up to a maximum age. Execute
// and resume answers to a verified caller, and only those, carry a fresh
// token in X-ATP-Token and X-ATP-Token-Expires (no token-minting oracle).
// Executions belong to the client that started them: another client's
// resume is 403, a finished or expired one 404. Paused executions live in
// the engine of the instance that ran them (a live VM), so a load balancer
// must route a client's resumes to that instance; sessions need no such
// affinity.
//
// # Errors
//
// Handlers return errors; one adapter (errors.go) answers them as
// {"error", "requestId"} through one kind→status table, logs the cause once
// and never sends it. A program that fails inside the sandbox is not an HTTP
// error: it is a 200 ExecutionResult with a non-completed status.
//
// The package may import internal/toolkit and internal/execution. It must
// not import internal/store (it reaches persistence through
// toolkit.SessionStore and toolkit.Service), internal/api or cmd; and
// nothing below it (toolkit, sandbox, store, execution) may import it.
package monday
