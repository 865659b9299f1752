package httpstatus

import (
	"context"
	"errors"
	"fmt"
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

func TestOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err           error
		status        int
		code, message string
	}{
		{toolkit.Errorf(toolkit.KindNotFound, "tool_not_found", "no tool %q", "x"), 404, "tool_not_found", `no tool "x"`},
		{toolkit.Errorf(toolkit.KindConflict, "", "exists"), 409, "conflict", "exists"},
		{fmt.Errorf("wrapped: %w", toolkit.Errorf(toolkit.KindForbidden, "forbidden", "no")), 403, "forbidden", "no"},
		{toolkit.Wrap(errors.New("pq: secret driver text"), toolkit.KindInternal, "db", "database error"), 500, "internal", "internal error"},
		{context.DeadlineExceeded, 504, "timeout", "the request timed out"},
		{errors.New("some driver text"), 500, "internal", "internal error"},
	} {
		status, code, message := Of(tt.err)
		if status != tt.status || code != tt.code || message != tt.message {
			t.Errorf("Of(%v) = %d %q %q, want %d %q %q", tt.err, status, code, message, tt.status, tt.code, tt.message)
		}
	}
}
