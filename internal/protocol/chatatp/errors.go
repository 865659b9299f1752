package chatatp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/atp-server/atp-server/internal/httpstatus"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// handlerFunc is the shape of every HTTP handler here: it writes a success
// answer itself and returns any failure for handle to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// httpError is a fault of the exchange that has no domain kind (405).
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.message }

// wwwAuthenticate names the schemes a 401 asks for.
const wwwAuthenticate = "ApiKey, Bearer"

// errorBody is the error shape of this surface's non-frame answers.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// classify maps err to what a client may see. Anything that is not an
// *httpError or a *toolkit.Error is an internal fault whose text is hidden.
func classify(err error) (status int, code, message string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.code, he.message
	}
	return httpstatus.Of(err)
}

// logFault logs err once, where it is answered: server faults at error
// level, an unavailable database at warn, client faults at debug (they
// are the client's to fix, and would let anyone fill the logs).
func (h *Handler) logFault(ctx context.Context, msg string, status int, code string, err error) {
	level := slog.LevelDebug
	switch {
	case status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	h.logger.Log(ctx, level, msg, "status", status, "code", code, "err", err)
}

func (h *Handler) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// writeError answers err as {"error","code"} with its status.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client hung up; nobody reads an answer
	}
	status, code, message := classify(err)
	h.logFault(r.Context(), "chatatp request failed", status, code, err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	}
	h.writeJSON(w, r, status, errorBody{Error: message, Code: code})
}

// writeJSON answers v as JSON, marshalled first so that a failure is a
// clean 500 rather than half an answer.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.logger.ErrorContext(r.Context(), "encoding a chatatp answer", "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "internal error", Code: "internal"})
	}
	h.writeRaw(w, status, b)
}

// writeRaw answers b, a JSON document, with status.
func (h *Handler) writeRaw(w http.ResponseWriter, status int, b []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)+1))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte{'\n'})
}

func invalidf(format string, args ...any) error {
	return toolkit.Errorf(toolkit.KindInvalid, "invalid_request", format, args...)
}

// readBody reads r's whole body, at most MaxBodyBytes (413 beyond).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, tooLarge(h.cfg.MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(h.cfg.MaxBodyBytes)
	}
	if err != nil {
		return nil, invalidf("request body: could not be read")
	}
	return b, nil
}

func tooLarge(max int64) error {
	return toolkit.Errorf(toolkit.KindTooLarge, "body_too_large", "request body: larger than %d bytes", max)
}

// decodeBody reads a JSON object into v. Unknown fields are accepted: the
// SDK has added fields across versions and may add more. A field of the
// wrong type is named.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(b, v)
}

func decodeJSON(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return invalidf("request body: required, a JSON object")
	}
	err := json.Unmarshal(b, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.Field != "":
		return invalidf("%s: must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &te):
		return invalidf("request body: must be a JSON object, got %s", te.Value)
	default:
		return invalidf("request body: not valid JSON (%s)", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// methodNotAllowed answers a known path with a wrong method.
func methodNotAllowed(r *http.Request, w http.ResponseWriter, allowed ...string) error {
	for _, m := range allowed {
		w.Header().Add("Allow", m)
	}
	return &httpError{
		status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		message: fmt.Sprintf("method %s is not allowed on this path; use %s", sanitizeMethod(r.Method), strings.Join(allowed, " or ")),
	}
}

func sanitizeMethod(m string) string {
	if len(m) > 16 || strings.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return "(other)"
	}
	return m
}
