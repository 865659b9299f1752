// Package httptool runs http tools: it turns a tool call into one HTTP
// request as the tool's executor describes it (URL placeholders, query,
// JSON body, static headers, credential) and the answer into a tool result
// or a *toolkit.ToolError.
//
// It also owns the outbound SSRF guard (NewTransport, IsBlocked): unless
// private addresses are allowed, every connection is checked at dial time
// against the address actually resolved, so DNS tricks and redirects cannot
// reach loopback, private, link-local (cloud metadata) or other internal
// addresses. Webhook deliveries should use the same transport.
//
// It depends on internal/toolkit (the Runner contract and tool types) and
// the standard library; toolkit must not import it (cmd wires it in).
package httptool
