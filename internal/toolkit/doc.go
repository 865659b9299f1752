// Package toolkit is the domain of atp-server: toolkits and their tools, API keys,
// OAuth platforms and connections, and the rules for calling a tool (argument
// validation, executors, tool errors).
//
// It defines the interfaces it needs from the outside (Store, Runner, Sealer,
// TokenSource for the end users' OAuth tokens, EventPublisher for webhook
// events) and the one error type the other packages translate to their
// wire shapes.
//
// It must not import internal/api, internal/store or net/http: transports and
// persistence depend on it, never the other way round. It may use
// internal/sandbox (to run js tools).
package toolkit
