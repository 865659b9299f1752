// Package remote runs tools of executor kind "remote": tools served by
// toolkit processes that connect to this server (the ChatATP
// ToolKitClient), over a WebSocket or by polling an HTTP inbox.
//
// A Hub is the toolkit.Runner of remote tools. For each call it mints a
// request id and hands the call to a process of the tool's toolkit: an idle
// WebSocket process first, else a process waiting on the inbox (long poll),
// else the least busy WebSocket process, else a queue that the next
// connecting or polling process drains. It then waits for the process's
// answer (Resolve), the Hub's timeout or the caller's context, whichever
// comes first. A late answer is dropped.
//
// Delivery is at most once: when a WebSocket process disconnects, the calls
// it had received fail at once with an unavailable tool error (it may or
// may not have run them), and calls still queued wait for another process.
// A call delivered through the inbox can only time out, since a polling
// process is not seen leaving.
//
// The Hub is per server instance: a process connected to instance A serves
// the calls that arrive at A. With several instances behind a load
// balancer, every instance that receives calls for a toolkit needs a
// process of that toolkit connected to it (or polling it).
//
// The package knows nothing of WebSockets or HTTP: the transport (package
// chatatp) attaches each connected process as a Worker and feeds back its
// answers. It depends on internal/toolkit only, and must not import
// internal/api, internal/store or a protocol package.
package remote
