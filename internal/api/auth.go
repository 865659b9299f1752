package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/atp-server/atp-server/internal/toolkit"
)

type keyCtxKey struct{}

// keyFrom returns the authenticated key of a request that passed
// requireAdmin or requireClient.
func keyFrom(ctx context.Context) *toolkit.APIKey {
	k, _ := ctx.Value(keyCtxKey{}).(*toolkit.APIKey)
	return k
}

// HeaderAPIKey is the header the native API (like the monday protocol)
// accepts a client key in, besides Authorization: Bearer.
const HeaderAPIKey = "X-API-Key"

// bearer extracts the token of an "Authorization: Bearer <token>" header.
// present is false when there is no Authorization header at all.
func bearer(r *http.Request) (token string, present bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, token, _ := strings.Cut(h, " ")
	// RFC 9110 §11.1: the scheme is case-insensitive.
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", true, toolkit.Errorf(toolkit.KindUnauthenticated, "unauthenticated",
			"Authorization: expected \"Bearer <API key>\"")
	}
	return strings.TrimSpace(token), true, nil
}

// requireAdmin lets through requests carrying a live admin key as a Bearer
// token: 401 without a valid key, 403 with a valid key of another kind.
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		token, _, err := bearer(r)
		if err != nil {
			return err
		}
		key, err := s.svc.Authenticate(r.Context(), token)
		if err != nil {
			return err
		}
		if key.Kind != toolkit.KeyAdmin {
			return toolkit.Errorf(toolkit.KindForbidden, "forbidden", "the admin API needs an admin key; this is a %s key", key.Kind)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtxKey{}, key)))
		return nil
	})
}

// requireClient lets through requests carrying a live client or admin key,
// as a Bearer token or in X-API-Key. Admin keys are allowed so that an
// operator can try a toolkit with the key they hold; toolkit keys serve
// tools and may not call them (403).
func (s *server) requireClient(next http.Handler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		token, present, err := bearer(r)
		if err != nil {
			return err
		}
		if other := r.Header.Get(HeaderAPIKey); other != "" {
			if present && other != token {
				// Two different keys: guessing which one was meant could
				// act with the wrong authority.
				return toolkit.Errorf(toolkit.KindUnauthenticated, "unauthenticated",
					"Authorization and X-API-Key carry different keys; send one")
			}
			token = other
		}
		key, err := s.svc.Authenticate(r.Context(), token)
		if err != nil {
			return err
		}
		if key.Kind != toolkit.KeyClient && key.Kind != toolkit.KeyAdmin {
			return toolkit.Errorf(toolkit.KindForbidden, "forbidden", "the native API needs a client key; this is a %s key", key.Kind)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtxKey{}, key)))
		return nil
	})
}
