package httpstatus

import (
	"net/http"
	"testing"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestFromKind(t *testing.T) {
	t.Parallel()
	// Every kind has a status, so no kind silently becomes a 500.
	for k := toolkit.KindInternal + 1; k <= toolkit.KindUnavailable; k++ {
		if s, ok := FromKind(k); !ok || s == http.StatusInternalServerError {
			t.Errorf("FromKind(%v) = %d, %v; want a status of its own", k, s, ok)
		}
	}
	for k, want := range map[toolkit.Kind]int{
		toolkit.KindInvalid: 400, toolkit.KindUnauthenticated: 401, toolkit.KindForbidden: 403,
		toolkit.KindNotFound: 404, toolkit.KindConflict: 409, toolkit.KindTooLarge: 413,
		toolkit.KindRateLimited: 429, toolkit.KindUnavailable: 503, toolkit.KindTimeout: 504,
	} {
		if s, _ := FromKind(k); s != want {
			t.Errorf("FromKind(%v) = %d, want %d", k, s, want)
		}
	}
	if s, ok := FromKind(toolkit.KindInternal); s != 500 || ok {
		t.Errorf("FromKind(internal) = %d, %v; want 500, false", s, ok)
	}
	if s, ok := FromKind(toolkit.Kind(99)); s != 500 || ok {
		t.Errorf("FromKind(unknown) = %d, %v; want 500, false", s, ok)
	}
}
