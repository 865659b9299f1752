// Package webhook delivers connection events (connection_success,
// connection_failed, connection_expired) to the webhooks that client keys
// registered: a POST of {"id","type","created_at","data":{…}} signed with
// the webhook's secret in X-ATP-Signature (admin-api.md §7).
//
// A Dispatcher is the toolkit.EventPublisher of the server. Publish never
// blocks the request that caused the event: events go to a bounded queue
// (when it is full the event is dropped and logged) that a few workers
// drain. A delivery that fails for a reason worth retrying (no answer,
// 408, 429, 5xx) is tried again after an exponential backoff, up to
// MaxAttempts; other answers are final. Close stops taking events and
// delivers what is queued or waiting for a retry (one last attempt each)
// within its context's deadline.
//
// Deliveries go through the transport cmd gives it: the SSRF-guarded one
// of internal/httptool, which honours ATP_HTTP_ALLOW_PRIVATE.
//
// The package depends on internal/toolkit (events, webhooks, signing). It
// must not import internal/api, internal/protocol, internal/store or cmd.
package webhook
