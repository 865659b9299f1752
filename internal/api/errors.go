package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/atp-server/atp-server/internal/httpstatus"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// handlerFunc is the shape of every handler: it writes a success answer
// itself and returns any failure for the adapter to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// httpError is a fault of the HTTP exchange itself that has no domain kind
// (405, 415): it carries its status directly.
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.message }

// errorBody is the contract's error shape (admin-api.md §3).
type errorBody struct {
	Error     string `json:"error"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
}

// handle adapts a handlerFunc to http.Handler: a returned error becomes the
// JSON error answer.
func (s *server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// classify maps err to the status, code and message a client may see.
// Anything that is not an *httpError or a *toolkit.Error is an internal
// fault whose text is never shown.
func classify(err error) (status int, code, message string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.code, he.message
	}
	return httpstatus.Of(err)
}

// writeError answers err in the contract's shape and logs it once, with its
// cause: server faults at error level; 503 at warn level (a database
// outage is an operating condition, not a bug, and readiness probes would
// repeat it every few seconds); client faults at debug level (they are
// the client's problem and would let anyone fill the logs).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The client hung up; nobody will read an answer.
		s.logger.DebugContext(ctx, "client went away", "request_id", RequestID(ctx), "err", err)
		w.WriteHeader(httpstatus.ClientClosed)
		return
	}
	status, code, message := classify(err)
	s.logger.Log(ctx, levelFor(status), "request failed",
		"request_id", RequestID(ctx), "method", r.Method, "route", routeLabel(r),
		"status", status, "code", code, "err", err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	s.writeJSON(w, r, status, errorBody{Error: message, Code: code, RequestID: RequestID(ctx)})
}

// levelFor is the log level of a failure answered with status: server
// faults at error, 503 at warn, client faults at debug.
func levelFor(status int) slog.Level {
	switch {
	case status == http.StatusServiceUnavailable:
		return slog.LevelWarn
	case status >= 500:
		return slog.LevelError
	}
	return slog.LevelDebug
}

// writeJSON answers v as JSON. It marshals before writing so that a value
// that cannot be encoded becomes a clean 500 instead of half an answer.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "encoding response", "request_id", RequestID(r.Context()), "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "internal error", Code: "internal", RequestID: RequestID(r.Context())})
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	// Admin answers carry key secrets and configuration; no cache keeps them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// invalidf is a 400 whose message names the field at fault.
func invalidf(format string, args ...any) error {
	return toolkit.Errorf(toolkit.KindInvalid, "invalid_request", format, args...)
}

// notFound answers unknown routes under this surface in the JSON shape.
// Messages of routing faults do not repeat the path: they are logged, and
// some clients put keys in paths.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) error {
	markUnmatched(r)
	return toolkit.Errorf(toolkit.KindNotFound, "not_found", "no route for this path")
}

// methodNotAllowed answers a known path with a wrong method, listing the
// methods that path takes in Allow as RFC 9110 asks.
func (s *server) methodNotAllowed(allowed func(path string) []string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		markUnmatched(r)
		for _, m := range allowed(r.URL.Path) {
			w.Header().Add("Allow", m)
		}
		return &httpError{
			status:  http.StatusMethodNotAllowed,
			code:    "method_not_allowed",
			message: fmt.Sprintf("method %s is not allowed on this path; Allow lists those it takes", methodLabel(r.Method)),
		}
	}
}
