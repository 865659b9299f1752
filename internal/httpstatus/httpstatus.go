package httpstatus

import (
	"context"
	"errors"
	"net/http"

	"github.com/atp-server/atp-server/internal/toolkit"
)

var kindStatus = map[toolkit.Kind]int{
	toolkit.KindInvalid:         http.StatusBadRequest,
	toolkit.KindUnauthenticated: http.StatusUnauthorized,
	toolkit.KindForbidden:       http.StatusForbidden,
	toolkit.KindNotFound:        http.StatusNotFound,
	toolkit.KindConflict:        http.StatusConflict,
	toolkit.KindTooLarge:        http.StatusRequestEntityTooLarge,
	toolkit.KindRateLimited:     http.StatusTooManyRequests,
	toolkit.KindTimeout:         http.StatusGatewayTimeout,
	toolkit.KindUnavailable:     http.StatusServiceUnavailable,
	toolkit.KindInternal:        http.StatusInternalServerError,
}

// FromKind returns the HTTP status of a domain error kind; a kind without
// an entry is a 500, and ok is false for it (and for KindInternal), so a
// surface knows to hide the message.
func FromKind(k toolkit.Kind) (status int, ok bool) {
	s, found := kindStatus[k]
	if !found || k == toolkit.KindInternal {
		return http.StatusInternalServerError, false
	}
	return s, true
}

// ClientClosed is the status recorded (never sent: nobody is listening)
// when the client went away before the answer; nginx uses the same number,
// so dashboards know it.
const ClientClosed = 499

// Of maps an error to what a client may see: a *toolkit.Error gives its
// kind's status, its code (the kind's name when empty) and its message; a
// deadline is a 504; anything else, and KindInternal, is a 500 "internal
// error" whose cause is never shown. Surfaces check their own HTTP-only
// errors (405, 415) first, then call Of.
func Of(err error) (status int, code, message string) {
	var te *toolkit.Error
	if errors.As(err, &te) {
		status, ok := FromKind(te.Kind)
		if !ok {
			return http.StatusInternalServerError, "internal", "internal error"
		}
		code := te.Code
		if code == "" {
			code = te.Kind.String()
		}
		return status, code, te.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, "timeout", "the request timed out"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}
