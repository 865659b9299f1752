// Package chatatp serves the ChatATP Agent Tool Protocol, as the unmodified
// Python SDK atp_sdk 0.2.5 speaks it (shared/spec/chatatp.md): LLMClient
// over WebSocket and HTTP (toolkit contexts, tool calls, SSE variants,
// OAuth connections, webhooks, store listings) and ToolKitClient (registration, serving calls
// over a WebSocket or the HTTP inbox).
//
// Routing. Every route is matched on the part of the path after the last
// protocol segment (/api/v1/atp/llm-client/, /ws/v1/atp/llm-client/,
// /ws/v1/atp/toolkit-client/, /api/v1/toolkit/, /api/v1/register_tool), so
// any base_url prefix works, the README's doubled one included. Both slash
// forms of each path are served directly; nothing redirects. All routes are
// in routes.go; Match tells a front router which paths belong here.
//
// Shapes. Answers to LLM requests are toolkit_context / task_response
// frames carrying the request's request_id byte for byte. Tool failures
// (unknown function, bad arguments, executor failure, timeout, a toolkit
// process that left) travel inside the success shape, as
// result.tool.result = {"error", "code"}. HTTP errors are kept for faults
// of the request itself: 401 (no, wrong or revoked key; header and body
// keys that differ), 403 (a key used outside its kind or toolkits), 400
// (malformed), 413 (too large); their bodies still are frames where the
// request had a type. A toolkit context that cannot be given answers with
// payload {"error", "code", "tools": []} and a fitting status (404 for an
// unknown toolkit). Other routes answer errors as {"error", "code"}.
//
// Tools in a context are rendered per provider (render.go): openai
// (Responses API, flat), anthropic (input_schema), mistral/mistralai and
// openai-chat (nested function), gemini (function_declarations), with the
// JSON Schema adapted where a provider refuses a construct. Renderings are
// cached per toolkit version and provider.
//
// WebSockets (github.com/coder/websocket). Every connection is tracked; its
// context derives from the Handler's own context (not the request's), every
// write has its own deadline and writes are serialised, reads are limited
// in size, any Origin is accepted (the SDK sends its default), the server
// pings to find dead peers, and the key of every open socket is checked
// again every KeyCheckInterval, so that a key revoked on any instance
// sharing the database closes its sockets with 1008. Shutdown drains
// in-flight requests, then closes every socket with 1001.
//
// Tool calls run through toolkit.Service.Run; remote tools through the
// remote.Hub that toolkit processes attach to (per instance; see package
// remote). A task_request's auth_token is used as given: the SDK names no
// end user, so no stored connection is chosen for it.
//
// OAuth (oauth/confirmation/{platform}/, oauth/tokens/{platform}/{user}/)
// is the oauth.Manager's: answers as it gives them, 404 {"error","code"}
// until the user connected (wait_for_connection polls on it), 409
// needs_reauth when the user must connect again. Path segments are taken
// as the SDK sends them, unencoded: @ . + are plain characters.
//
// The package depends on internal/toolkit, internal/oauth and
// internal/remote. It must not
// import internal/api, internal/store or cmd: cmd builds it and the admin
// surface mounts it in front of its router.
package chatatp
