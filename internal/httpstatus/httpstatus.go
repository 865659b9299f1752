package httpstatus

import (
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
