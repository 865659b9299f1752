package monday

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/atp-server/atp-server/internal/httpstatus"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// handlerFunc is the shape of every handler: it writes its success answer
// itself and returns any failure for handle to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// methodError is a 405: the path exists, the method does not.
type methodError struct{ allow []string }

func (e *methodError) Error() string { return "Method not allowed" }

// errorBody is the protocol's error envelope (§2): {"error","requestId"}.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"requestId"`
}

// Error constructors with the messages of the spec's tables.
func errInvalid(format string, args ...any) error {
	return toolkit.Errorf(toolkit.KindInvalid, "invalid_request", format, args...)
}

func errUnauthenticated(msg string) error {
	return toolkit.Errorf(toolkit.KindUnauthenticated, "unauthenticated", "%s", msg)
}

func errForbidden(msg string) error {
	return toolkit.Errorf(toolkit.KindForbidden, "forbidden", "%s", msg)
}

func errNotFound(msg string) error {
	return toolkit.Errorf(toolkit.KindNotFound, "not_found", "%s", msg)
}

// handle adapts a handlerFunc to http.Handler.
func (h *Handler) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// classify maps err to the status and the message a client may see.
// Anything that is not a *toolkit.Error or a *methodError is an internal
// fault whose text is never shown.
func classify(err error) (int, string) {
	var me *methodError
	if errors.As(err, &me) {
		return http.StatusMethodNotAllowed, me.Error()
	}
	status, _, message := httpstatus.Of(err)
	switch status {
	case http.StatusInternalServerError:
		message = "Internal server error"
	case http.StatusGatewayTimeout:
		if !errors.As(err, new(*toolkit.Error)) {
			message = "The request timed out"
		}
	}
	return status, message
}

// writeError answers err in the envelope and logs it once with its cause:
// server faults at error level, 503 at warn, client faults at debug.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		h.logger.DebugContext(ctx, "client went away", "request_id", requestID(w), "err", err)
		w.WriteHeader(httpstatus.ClientClosed)
		return
	}
	status, message := classify(err)
	level := slog.LevelDebug
	switch {
	case status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	h.logger.Log(ctx, level, "monday request failed",
		"request_id", requestID(w), "method", r.Method, "route", routeName(r), "status", status, "err", err)
	var me *methodError
	if errors.As(err, &me) {
		for _, m := range me.allow {
			w.Header().Add("Allow", m)
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	h.writeJSON(w, r, status, errorBody{Error: message, RequestID: requestID(w)})
}

// writeJSON answers v as JSON, marshalled before anything is written so
// that a value that cannot be encoded becomes a clean 500.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.logger.ErrorContext(r.Context(), "encoding response", "request_id", requestID(w), "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "Internal server error", RequestID: requestID(w)})
	}
	b = append(b, '\n')
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// headerRequestID is where internal/api's middleware puts the request id of
// the answer; the envelope's requestId repeats it, so logs and answers agree.
const headerRequestID = "X-Request-Id" // X-Request-ID, canonical (see auth.go)

// requestID returns the id of the answer being written, making one (a
// UUID, as the reference's) when no middleware did.
func requestID(w http.ResponseWriter) string {
	if id := w.Header().Get(headerRequestID); id != "" {
		return id
	}
	id := newUUID()
	w.Header().Set(headerRequestID, id)
	return id
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:16])
	return string(s[:])
}
