package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/atp-server/atp-server/internal/oauth"
)

// routes is the whole surface of this package in one place. openapi.json
// describes exactly these routes (TestOpenAPICoversRoutes keeps them in step).
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	// Order matters: ids first so every log line has one; the body cap sees
	// net/http's own writer; observe wraps recoverer to count panics as 500s.
	// GetHead answers HEAD on every GET route (load balancers probe with
	// it); net/http drops the body.
	r.Use(requestID, s.limitBody, s.observe, s.recoverer, middleware.GetHead)

	r.Get("/healthz", s.handle(s.healthz))
	r.Get("/readyz", s.handle(s.readyz))
	r.Method(http.MethodGet, "/metrics", s.metricsHandler())
	r.Get("/openapi.json", s.handle(s.openAPI))
	// Where providers send end users back; no key (the state is the proof).
	r.Get(oauth.CallbackPath, s.handle(s.oauthCallback))

	// Groups, not sub-routers: the key check wraps each endpoint, so an
	// unknown route or a wrong method answers 404/405 whatever the key.
	r.Group(func(r chi.Router) {
		r.Use(s.requireAdmin)

		r.Post("/admin/v1/toolkits", s.handle(s.createToolkit))
		r.Get("/admin/v1/toolkits", s.handle(s.listToolkits))
		r.Get("/admin/v1/toolkits/{id}", s.handle(s.getToolkit))
		r.Put("/admin/v1/toolkits/{id}", s.handle(s.putToolkit))
		r.Delete("/admin/v1/toolkits/{id}", s.handle(s.deleteToolkit))

		r.Post("/admin/v1/api-keys", s.handle(s.createAPIKey))
		r.Get("/admin/v1/api-keys", s.handle(s.listAPIKeys))
		r.Delete("/admin/v1/api-keys/{id}", s.handle(s.deleteAPIKey))

		r.Post("/admin/v1/platforms", s.handle(s.createPlatform))
		r.Get("/admin/v1/platforms", s.handle(s.listPlatforms))
		r.Get("/admin/v1/platforms/{id}", s.handle(s.getPlatform))
		r.Put("/admin/v1/platforms/{id}", s.handle(s.putPlatform))
		r.Delete("/admin/v1/platforms/{id}", s.handle(s.deletePlatform))

		r.Get("/admin/v1/connections", s.handle(s.listConnections))
		r.Delete("/admin/v1/connections/{id}", s.handle(s.deleteConnection))
	})

	r.Group(func(r chi.Router) {
		r.Use(s.requireClient)

		r.Get("/v1/toolkits", s.handle(s.nativeListToolkits))
		r.Get("/v1/toolkits/{id}", s.handle(s.nativeGetToolkit))
		r.Post("/v1/toolkits/{id}/tools/{name}/call", s.handle(s.callTool))

		r.Post("/v1/oauth/{platform}/connect", s.handle(s.oauthConnect))
		r.Get("/v1/oauth/{platform}/connections/{user}", s.handle(s.oauthStatus))
		r.Delete("/v1/oauth/{platform}/connections/{user}", s.handle(s.oauthDisconnect))
		r.Get("/v1/oauth/{platform}/connections/{user}/tokens", s.handle(s.oauthTokens))
	})

	r.NotFound(s.unrouted)
	r.MethodNotAllowed(s.handle(s.methodNotAllowed(func(path string) []string {
		return allowedMethods(r, path)
	})))
	return r
}

// ownPrefixes are the paths this surface answers for itself, unknown routes
// included; everything else may belong to Config.Fallback.
var ownPrefixes = []string{"/admin/", "/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json", oauth.CallbackPath}

// unrouted serves requests that match no route: the JSON 404 for paths of
// this surface, Config.Fallback for the rest.
func (s *server) unrouted(w http.ResponseWriter, r *http.Request) {
	if s.fallback != nil && !ownsPath(r.URL.Path) {
		setRoute(r, routeFallback)
		s.fallback.ServeHTTP(w, r)
		return
	}
	s.handle(s.notFound)(w, r)
}

func ownsPath(path string) bool {
	if path == "/admin" || path == "/v1" {
		return true
	}
	for _, p := range ownPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// allowedMethods lists the methods path has a route for, for the Allow
// header of a 405.
func allowedMethods(routes chi.Routes, path string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
		}
	}
	return out
}
