package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// DefaultMaxBodyBytes is the request body cap when Config.MaxBodyBytes is
// not positive (ATP_MAX_BODY_BYTES' default).
const DefaultMaxBodyBytes = 10 << 20

// Config wires the handler. Service is required; the rest has defaults.
type Config struct {
	Service *toolkit.Service

	// OAuth runs the end-user OAuth flow: GET /oauth/callback and the
	// /v1/oauth/… routes. Nil → those routes answer 503 (the callback a
	// page saying so).
	OAuth *oauth.Manager

	// Ready reports whether the server may take traffic (the database
	// answers, migrations are applied); nil error = ready. Nil Ready means
	// always ready.
	Ready func(ctx context.Context) error

	Logger *slog.Logger // nil discards

	// MaxBodyBytes caps every request body, on every route including
	// Fallback's (ATP_MAX_BODY_BYTES). Not positive → DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// Registry receives the HTTP metrics and is what /metrics serves (cmd
	// registers the Go runtime and database pool collectors on it). Nil → a
	// private registry holding only the HTTP metrics.
	Registry *prometheus.Registry

	// PublicURL (ATP_PUBLIC_URL) becomes the server URL of /openapi.json, so
	// that tools generating clients from it point at the right host.
	PublicURL string

	// Fallback, when set, serves every request whose path is not under this
	// surface (/admin/, /v1/, the probes, /metrics, /openapi.json): the
	// monday and ChatATP surfaces, which route on path suffixes no prefix
	// mount can express. It runs inside this handler's middleware, so it
	// gets request ids, the body cap, panic recovery, access logs and
	// metrics (route label "fallback"), but answers in its own error shapes.
	// Its ResponseWriter supports http.Flusher and http.Hijacker (SSE,
	// WebSockets). Nil → such requests get the JSON 404.
	Fallback http.Handler
}

// server holds what the handlers share.
type server struct {
	svc      *toolkit.Service
	oauth    *oauth.Manager
	ready    func(ctx context.Context) error
	logger   *slog.Logger
	maxBody  int64
	metrics  *httpMetrics
	registry *prometheus.Registry
	openapi  []byte
	fallback http.Handler
}

// NewHandler returns the HTTP handler of the admin API, the native API, the
// probes, /metrics and /openapi.json (see routes.go). It panics if
// cfg.Service is nil or the embedded OpenAPI document cannot be prepared,
// both programming errors caught by the first test run.
func NewHandler(cfg Config) http.Handler {
	if cfg.Service == nil {
		panic("api.NewHandler: Config.Service is required")
	}
	s := &server{
		svc:      cfg.Service,
		oauth:    cfg.OAuth,
		ready:    cfg.Ready,
		logger:   cfg.Logger,
		maxBody:  cfg.MaxBodyBytes,
		registry: cfg.Registry,
		fallback: cfg.Fallback,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics(s.registry)
	doc, err := openAPIDocument(cfg.PublicURL)
	if err != nil {
		panic("api.NewHandler: " + err.Error())
	}
	s.openapi = doc
	return s.routes()
}
