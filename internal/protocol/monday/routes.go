package monday

import (
	"context"
	"net/http"
	"strings"
)

// route is one endpoint. pattern is the path after Prefix; a "{id}"
// segment matches one non-empty path segment (the execution id).
type route struct {
	method  string
	pattern string
	handle  handlerFunc
}

// routes is the whole surface (§3) in one place.
func (h *Handler) routes() []route {
	return []route{
		{http.MethodPost, "/api/init", h.init},
		{http.MethodGet, "/api/definitions", h.definitions},
		{http.MethodGet, "/api/runtime", h.runtime},
		{http.MethodGet, "/api/info", h.info},
		{http.MethodPost, "/api/search", h.search},
		{http.MethodGet, "/api/search", h.searchQuery},
		{http.MethodPost, "/api/explore", h.explore},
		{http.MethodPost, "/api/execute", h.execute},
		{http.MethodPost, "/api/execute/stream", h.executeStream},
		{http.MethodPost, "/api/resume/{id}", h.resume},
		{http.MethodPost, "/api/token/refresh", h.refreshToken},
	}
}

type routeKey struct{}

// routeName is the pattern of the route r matched, for logs; raw paths
// are never logged (they carry execution ids).
func routeName(r *http.Request) string {
	if p, ok := r.Context().Value(routeKey{}).(string); ok {
		return p
	}
	return "unmatched"
}

type pathIDKey struct{}

// pathID returns the {id} segment of the matched route.
func pathID(r *http.Request) string {
	id, _ := r.Context().Value(pathIDKey{}).(string)
	return id
}

// ServeHTTP routes on the path alone (the query string is not part of
// it, and a bare trailing "?" or "/" is accepted). Paths outside the
// surface go to Config.Next; unknown paths under Prefix+"/api/" too, when
// Next is set (another surface, such as ChatATP's /api/v1/…, may own them),
// else they get the JSON 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok || !strings.HasPrefix(rest, "/api/") {
		h.notFound(w, r)
		return
	}
	if len(rest) > len("/api/") {
		rest = strings.TrimSuffix(rest, "/")
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // net/http drops the body
	}
	var allow []string
	for _, rt := range h.table {
		id, ok := matchPattern(rt.pattern, rest)
		if !ok {
			continue
		}
		if rt.method != method {
			allow = append(allow, rt.method)
			continue
		}
		ctx := context.WithValue(r.Context(), routeKey{}, rt.pattern)
		if id != "" {
			ctx = context.WithValue(ctx, pathIDKey{}, id)
		}
		h.handle(rt.handle)(w, r.WithContext(ctx))
		return
	}
	if len(allow) > 0 {
		h.writeError(w, r, &methodError{allow: allow})
		return
	}
	h.notFound(w, r)
}

// notFound hands r to Next, or answers the JSON 404.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if h.next != nil {
		h.next.ServeHTTP(w, r)
		return
	}
	h.writeError(w, r, errNotFound("Not found"))
}

// matchPattern matches path against pattern, returning the {id} segment.
func matchPattern(pattern, path string) (id string, ok bool) {
	before, after, hasID := strings.Cut(pattern, "{id}")
	if !hasID {
		return "", path == pattern
	}
	seg, ok := strings.CutPrefix(path, before)
	if !ok {
		return "", false
	}
	seg, ok = strings.CutSuffix(seg, after)
	if !ok || seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	return seg, true
}
