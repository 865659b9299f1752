// Package api is atp-server's own HTTP surface: the admin REST API
// (/admin/v1/*), the native tool-call and OAuth API (/v1/*), the OAuth
// provider callback (/oauth/callback, small HTML pages), the probes
// (/healthz, /readyz), Prometheus metrics (/metrics) and the OpenAPI
// document that describes them (/openapi.json).
//
// Every route is declared in routes.go. Handlers return an error; one
// adapter (errors.go) turns it into the JSON error shape of the contract
// (shared/spec/admin-api.md §3) through one Kind→status table, logs the
// cause once and never sends it. Request bodies go through one decoder
// (decode.go) that caps their size and rejects unknown fields.
//
// The package translates HTTP to calls on *toolkit.Service (and the
// *oauth.Manager for the end-user OAuth flow) and back; the rules live in
// internal/toolkit and internal/oauth. It must not import internal/store (the
// Service hides persistence) nor the protocol surfaces (monday, ChatATP):
// cmd wires those in through Config.Fallback.
package api
