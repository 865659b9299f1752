package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Route labels for requests that matched no route pattern. Raw paths are
// never used as labels or logged: they would make metric cardinality
// unbounded, and some surfaces carry keys in their paths.
const (
	routeUnmatched = "unmatched"
	routeFallback  = "fallback"
)

// requestInfo travels in the request context so that inner handlers can
// tell the outer middleware facts only they know.
type requestInfo struct {
	id    string
	route string // set when the route pattern does not tell (unmatched, fallback)
}

type requestInfoKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside a
// request served by this package), for surfaces behind Config.Fallback to
// log with.
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

func markUnmatched(r *http.Request) { setRoute(r, routeUnmatched) }

func setRoute(r *http.Request, label string) {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		info.route = label
	}
}

// routeLabel is the bounded route name of r: chi's pattern once routing is
// done, else what a handler set.
func routeLabel(r *http.Request) string {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok && info.route != "" {
		return info.route
	}
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return routeUnmatched
}

// HeaderRequestID is the header a request id arrives in and is echoed in.
const HeaderRequestID = "X-Request-ID"

// saneRequestID reports whether an incoming id may be reused: short and
// made of characters that cannot forge log lines or headers.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// requestID honours a sane incoming X-Request-ID (so a proxy's id ties its
// logs to ours) or makes one, and echoes it in the answer.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		ctx := context.WithValue(r.Context(), requestInfoKey{}, &requestInfo{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// httpMetrics are the per-request Prometheus series.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the series on reg, or reuses them when a handler
// built earlier on the same registry registered them already.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	labels := []string{"route", "method", "status"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atp_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atp_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern, method and status.",
			Buckets: prometheus.DefBuckets,
		}, labels),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("api: registering metrics: " + err.Error())
	}
	return c
}

// methodLabel keeps the method label bounded: a client can send any token
// as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// observe records one access log line and the metrics of every request. It
// runs outside recoverer so that a recovered panic is counted as the 500 it
// became.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		elapsed := time.Since(start)

		status := ww.Status()
		if status == 0 {
			// Nothing was written through the wrapper: either net/http
			// answered 200 with an empty body, or a WebSocket upgrade
			// hijacked the connection after writing 101 itself.
			status = http.StatusOK
			if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				status = http.StatusSwitchingProtocols
			}
		}
		route := routeLabel(r)
		method := methodLabel(r.Method)
		code := strconv.Itoa(status)
		s.metrics.requests.WithLabelValues(route, method, code).Inc()
		s.metrics.duration.WithLabelValues(route, method, code).Observe(elapsed.Seconds())

		// Probes and scrapes arrive every few seconds; at info level they
		// would drown the lines that matter.
		level := slog.LevelInfo
		switch route {
		case "/healthz", "/readyz", "/metrics":
			level = slog.LevelDebug
		}
		s.logger.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.Int("bytes", ww.BytesWritten()),
		)
	})
}

// recoverer turns a panic in a handler into the JSON 500 and logs the stack;
// the stack never reaches the client.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				// net/http's way to abort a response on purpose; let it do so.
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "panic serving request",
				"request_id", RequestID(r.Context()), "method", r.Method, "route", routeLabel(r),
				"panic", v, "stack", string(debug.Stack()))
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				// The answer has started; a second status line would be
				// garbage. Abort the connection so the client sees a failure.
				panic(http.ErrAbortHandler)
			}
			s.writeJSON(w, r, http.StatusInternalServerError,
				errorBody{Error: "internal error", Code: "internal", RequestID: RequestID(r.Context())})
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body at maxBody, so no route (the fallback
// surfaces included) reads more than ATP_MAX_BODY_BYTES. decode turns the
// overflow into the JSON 413. It must see net/http's own ResponseWriter
// (run it before observe wraps it): that is how MaxBytesReader tells the
// server to close the connection instead of draining the rest.
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}
