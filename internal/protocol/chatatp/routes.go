package chatatp

import (
	"net/http"
	"strings"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// surface is the protocol segment a path belongs to.
type surface int

const (
	surfaceNone surface = iota
	surfaceLLMHTTP
	surfaceLLMWS
	surfaceToolkitWS
	surfaceToolkitHTTP
	surfaceRegister
)

// segments are matched anywhere in a path; the one that starts last wins,
// so a base_url carrying another segment as its prefix (the README's
// ".../ws/v1/atp/llm-client/" for HTTP calls) still routes right.
var segments = []struct {
	seg     string
	surface surface
}{
	{"/api/v1/atp/llm-client/", surfaceLLMHTTP},
	{"/ws/v1/atp/llm-client/", surfaceLLMWS},
	{"/ws/v1/atp/toolkit-client/", surfaceToolkitWS},
	{"/api/v1/toolkit/", surfaceToolkitHTTP},
	{"/api/v1/register_tool", surfaceRegister},
}

// split finds the protocol segment of path and what follows it.
func split(path string) (surface, string) {
	best, at := surfaceNone, -1
	var rest string
	for _, s := range segments {
		if i := strings.LastIndex(path, s.seg); i > at {
			best, at, rest = s.surface, i, path[i+len(s.seg):]
		}
	}
	if best == surfaceRegister && rest != "" && rest != "/" {
		return surfaceNone, ""
	}
	return best, rest
}

// Match reports whether path belongs to this surface: it contains
// /api/v1/atp/llm-client/, /ws/v1/atp/llm-client/,
// /ws/v1/atp/toolkit-client/ or /api/v1/toolkit/, or ends in
// /api/v1/register_tool (with or without a slash). A front router sends
// such paths here, unknown routes under them included (answered 404 in
// this surface's shape).
func Match(path string) bool {
	s, _ := split(path)
	return s != surfaceNone
}

// parts splits the rest of a path into its segments, ignoring one trailing
// slash: every route is served with and without it, never redirected.
func parts(rest string) []string {
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil
	}
	return strings.Split(rest, "/")
}

// ServeHTTP routes a request of this surface. Every route is here.
//
//	LLM client, HTTP (after …/api/v1/atp/llm-client/)
//	  POST        process/                       get_toolkit_context, task_request (JSON or SSE)
//	  POST        webhooks/register/             register a webhook
//	  GET         webhooks/                      list webhooks
//	  GET, DELETE webhooks/{id}/delete/          delete a webhook (the SDK sends GET)
//	  GET         store/toolkits/list/           toolkits the key may use
//	  GET         developers/toolkits/           the same
//	  GET         store/toolkits/{id}/           one toolkit with its tools
//	  GET         store/developers/{name}/       the (single) developer's toolkits
//	  POST        oauth/confirmation/{platform}/ start connecting an end user (authorization URL)
//	  GET         oauth/tokens/{platform}/{user}/ the user's fresh tokens; 404 until connected
//	LLM client, WebSocket
//	  GET  …/ws/v1/atp/llm-client/{api_key}/
//	Toolkit client
//	  POST …/api/v1/register_tool                register (upsert) one tool
//	  POST …/api/v1/toolkit/verify_hash          is the whole toolkit up to date
//	  POST …/api/v1/toolkit/verify_tool_hash     is one tool up to date
//	  GET  …/api/v1/toolkit/{api_key}/inbox      long-poll one call
//	  POST …/api/v1/toolkit/{api_key}/inbox/respond
//	  GET  …/ws/v1/atp/toolkit-client/{api_key}/ serve calls over a WebSocket
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, rest := split(r.URL.Path)
	p := parts(rest)
	var fn handlerFunc
	switch s {
	case surfaceLLMHTTP:
		fn = h.routeLLM(p)
	case surfaceLLMWS:
		if len(p) == 1 {
			fn = get(func(w http.ResponseWriter, r *http.Request) error { return h.serveLLMSocket(w, r, p[0]) })
		}
	case surfaceToolkitWS:
		if len(p) == 1 {
			fn = get(func(w http.ResponseWriter, r *http.Request) error { return h.serveToolkitSocket(w, r, p[0]) })
		}
	case surfaceRegister:
		fn = post(h.registerTool)
	case surfaceToolkitHTTP:
		fn = h.routeToolkit(p)
	}
	if fn == nil {
		fn = notFound
	}
	h.handle(fn)(w, r)
}

func (h *Handler) routeLLM(p []string) handlerFunc {
	switch {
	case len(p) == 1 && p[0] == "process":
		return post(h.process)
	case len(p) == 2 && p[0] == "webhooks" && p[1] == "register":
		return post(h.registerWebhook)
	case len(p) == 1 && p[0] == "webhooks":
		return get(h.listWebhooks)
	case len(p) == 3 && p[0] == "webhooks" && p[2] == "delete":
		return methods(func(w http.ResponseWriter, r *http.Request) error { return h.deleteWebhook(w, r, p[1]) },
			http.MethodGet, http.MethodDelete)
	case len(p) == 3 && p[0] == "store" && p[1] == "toolkits" && p[2] == "list",
		len(p) == 2 && p[0] == "developers" && p[1] == "toolkits":
		return get(h.listStoreToolkits)
	case len(p) == 3 && p[0] == "store" && p[1] == "toolkits":
		return get(func(w http.ResponseWriter, r *http.Request) error { return h.getStoreToolkit(w, r, p[2]) })
	case len(p) == 3 && p[0] == "store" && p[1] == "developers":
		return get(func(w http.ResponseWriter, r *http.Request) error { return h.getDeveloper(w, r, p[2]) })
	case len(p) == 3 && p[0] == "oauth" && p[1] == "confirmation":
		return post(func(w http.ResponseWriter, r *http.Request) error { return h.oauthConfirmation(w, r, p[2]) })
	case len(p) == 4 && p[0] == "oauth" && p[1] == "tokens":
		return get(func(w http.ResponseWriter, r *http.Request) error { return h.oauthTokens(w, r, p[2], p[3]) })
	}
	return nil
}

func (h *Handler) routeToolkit(p []string) handlerFunc {
	switch {
	case len(p) == 1 && p[0] == "verify_hash":
		return post(h.verifyHash)
	case len(p) == 1 && p[0] == "verify_tool_hash":
		return post(h.verifyToolHash)
	case len(p) == 2 && p[1] == "inbox":
		return get(func(w http.ResponseWriter, r *http.Request) error { return h.inbox(w, r, p[0]) })
	case len(p) == 3 && p[1] == "inbox" && p[2] == "respond":
		return post(func(w http.ResponseWriter, r *http.Request) error { return h.inboxRespond(w, r, p[0]) })
	}
	return nil
}

func get(fn handlerFunc) handlerFunc  { return methods(fn, http.MethodGet) }
func post(fn handlerFunc) handlerFunc { return methods(fn, http.MethodPost) }

// methods lets only the given methods through (HEAD with GET); others get
// 405 with Allow.
func methods(fn handlerFunc, allowed ...string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		for _, m := range allowed {
			if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
				return fn(w, r)
			}
		}
		return methodNotAllowed(r, w, allowed...)
	}
}

// notFound answers unknown paths under a protocol segment. The message does
// not repeat the path: some carry keys.
func notFound(http.ResponseWriter, *http.Request) error {
	return toolkit.Errorf(toolkit.KindNotFound, "not_found", "no ChatATP route for this path")
}
