package monday

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Client tokens are HS256 JWTs signed with ATP_JWT_SECRET, as the
// reference's (§10.1): {clientId, type:"client", jti, iat, exp}, plus iss
// and sub. The client treats them as opaque; what makes a caller verified
// is the token AND a live session whose key still works.

const (
	tokenType   = "client"
	tokenIssuer = "atp-server"
	// tokenLeeway is the clock skew between instances a token's expiry
	// tolerates.
	tokenLeeway = 5 * time.Second
)

// Header names as net/http keys them (canonical form), so that Header.Get
// and Set use them as they are instead of making a canonical copy on every
// call. They are the spec's X-Client-ID, X-API-Key, X-User-ID, X-ATP-Token
// and X-ATP-Token-Expires: header names are case-insensitive, and these
// are the bytes net/http always wrote.
const (
	headerClientID     = "X-Client-Id"
	headerAPIKey       = "X-Api-Key"
	headerUserID       = "X-User-Id"
	headerToken        = "X-Atp-Token"
	headerTokenExpires = "X-Atp-Token-Expires"
)

// tokenClaims are the claims of a client token.
type tokenClaims struct {
	ClientID string `json:"clientId"`
	Type     string `json:"type"`
	jwt.RegisteredClaims
}

// tokenCodec signs and checks client tokens. A Handler builds one, so that
// the parsers (whose options never change; the clock is the handler's)
// and the boxed key are not rebuilt on every request. Safe for concurrent
// use.
type tokenCodec struct {
	secret      []byte
	parser      *jwt.Parser // HS256 only, issuer, expiry required, leeway
	parserStale *jwt.Parser // HS256 only, claims not validated (refresh)
	key         jwt.Keyfunc
}

func newTokenCodec(secret []byte, now func() time.Time) *tokenCodec {
	methods := jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()})
	key := any(secret) // boxed once, not per parse
	return &tokenCodec{
		secret: secret,
		parser: jwt.NewParser(methods, jwt.WithIssuer(tokenIssuer), jwt.WithTimeFunc(now),
			jwt.WithLeeway(tokenLeeway), jwt.WithExpirationRequired()),
		parserStale: jwt.NewParser(methods, jwt.WithoutClaimsValidation()),
		key:         func(*jwt.Token) (any, error) { return key, nil },
	}
}

// issueToken signs a token for clientID that expires at exp.
func (h *Handler) issueToken(clientID string, now, exp time.Time) (string, error) {
	claims := tokenClaims{
		ClientID: clientID,
		Type:     tokenType,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   clientID,
			ID:        newUUID(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.tokens.secret)
}

// parseToken checks the signature (HS256 only), issuer, type and client id
// of a token and, unless allowExpired, its expiry (required, with
// tokenLeeway). Any failure is the same error: the caller answers it with
// its own message.
func (h *Handler) parseToken(token, clientID string, allowExpired bool) error {
	p := h.tokens.parser
	if allowExpired {
		p = h.tokens.parserStale
	}
	var claims tokenClaims
	if _, err := p.ParseWithClaims(token, &claims, h.tokens.key); err != nil {
		return err
	}
	if claims.Issuer != tokenIssuer || claims.Type != tokenType || claims.ClientID == "" || claims.ClientID != clientID {
		return errors.New("token claims do not match the client")
	}
	return nil
}

// caller is a verified client: a valid token for a live session whose
// key (nil when anonymous) still works.
type caller struct {
	session *toolkit.Session
	data    *sessionData
	key     *toolkit.APIKey
}

// authMessages are the messages of one endpoint's 401 and 403 (§3.7, §3.8).
type authMessages struct{ missing, invalid string }

var (
	executeAuth = authMessages{
		missing: "Authentication error: Invalid token or client ID mismatch",
		invalid: "Authentication error: Invalid token or client ID mismatch",
	}
	resumeAuth  = authMessages{missing: "Authentication required", invalid: "Invalid client credentials"}
	sessionAuth = authMessages{missing: "Authentication required", invalid: "Invalid token or session expired"}
)

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// verify checks X-Client-ID and its bearer token: 401 when either is
// missing, 403 when the token is bad, issued to another client or
// expired, or when the session has expired or its key was revoked. On
// success the session has been slid forward.
func (h *Handler) verify(ctx context.Context, r *http.Request, msgs authMessages) (*caller, error) {
	clientID := r.Header.Get(headerClientID)
	token := bearer(r)
	if clientID == "" || token == "" {
		return nil, errUnauthenticated(msgs.missing)
	}
	if err := h.parseToken(token, clientID, false); err != nil {
		return nil, toolkit.Wrap(err, toolkit.KindForbidden, "forbidden", msgs.invalid)
	}
	return h.liveCaller(ctx, clientID, msgs.invalid)
}

// liveCaller loads the session of a client whose token was checked,
// makes sure it and its key still work, and slides it. Failures are
// KindForbidden with msg (the client cannot tell which check failed).
//
// The session and its key come from one query.
func (h *Handler) liveCaller(ctx context.Context, clientID, msg string) (*caller, error) {
	now := h.now()
	s, key, err := h.sessions.FindSessionWithKey(ctx, clientID)
	switch {
	case toolkit.IsNotFound(err):
		return nil, toolkit.Wrap(err, toolkit.KindForbidden, "forbidden", msg)
	case err != nil:
		return nil, err
	case s.Expired(now):
		return nil, errForbidden(msg)
	}
	c := &caller{session: s}
	if c.data, err = decodeSessionData(s.Data); err != nil {
		return nil, err
	}
	switch {
	case s.KeyID != "":
		c.key, err = h.svc.CheckSessionKey(s.KeyID, key)
		if k := toolkit.KindOf(err); k == toolkit.KindNotFound || k == toolkit.KindUnauthenticated {
			return nil, toolkit.Wrap(err, toolkit.KindForbidden, "forbidden", msg)
		}
		if err != nil {
			return nil, err
		}
	case !h.allowAnonymous:
		// An anonymous session outlives a switch to key-only mode no longer.
		return nil, errForbidden(msg)
	}
	if err := h.slide(ctx, s, now); err != nil {
		if toolkit.IsNotFound(err) {
			return nil, toolkit.Wrap(err, toolkit.KindForbidden, "forbidden", msg)
		}
		return nil, err
	}
	return c, nil
}

// slideStep is how far a session must be able to move before it is
// written: at most one write a minute per active session.
func (h *Handler) slideStep() time.Duration { return min(time.Minute, h.sessionIdle/10) }

// slide moves the session's expiry to now + the idle TTL, capped at its
// maximum age (§14 #2).
func (h *Handler) slide(ctx context.Context, s *toolkit.Session, now time.Time) error {
	until := h.sessionDeadline(s, now)
	if !until.After(s.ExpiresAt.Add(h.slideStep())) {
		return nil
	}
	if err := h.sessions.ExtendSession(ctx, s.ID, now, until); err != nil {
		return err
	}
	s.ExpiresAt = until
	return nil
}

// sessionDeadline is when s expires if it is used at now.
func (h *Handler) sessionDeadline(s *toolkit.Session, now time.Time) time.Time {
	until := now.Add(h.sessionIdle)
	if hard := s.CreatedAt.Add(h.sessionMaxAge); until.After(hard) {
		until = hard
	}
	return until
}

// tokenExpiry is when a token issued at now for s expires: the token TTL,
// never past the session's maximum age.
func (h *Handler) tokenExpiry(s *toolkit.Session, now time.Time) time.Time {
	exp := now.Add(h.tokenTTL)
	if hard := s.CreatedAt.Add(h.sessionMaxAge); exp.After(hard) {
		exp = hard
	}
	return exp
}

// rotateToken sets X-ATP-Token and X-ATP-Token-Expires (epoch ms) on an
// answer to a verified caller (§2): the client 0.19.20 takes the new
// token as its bearer. Never called for an unverified caller (§14 #1).
func (h *Handler) rotateToken(w http.ResponseWriter, c *caller) error {
	now := h.now()
	exp := h.tokenExpiry(c.session, now)
	token, err := h.issueToken(c.session.ID, now, exp)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set(headerToken, token)
	hd.Set(headerTokenExpires, strconv.FormatInt(exp.UnixMilli(), 10))
	return nil
}

// keyOf authenticates the API key of a request that has no session yet:
// X-API-Key, or (init only, where the client still sends the caller's
// headers unchanged) Authorization: Bearer. It returns nil, nil when no
// key was sent. Only client keys may use this surface.
func (h *Handler) keyOf(ctx context.Context, r *http.Request, bearerAllowed bool) (*toolkit.APIKey, error) {
	secret := r.Header.Get(headerAPIKey)
	if secret == "" && bearerAllowed {
		secret = bearer(r)
	}
	if secret == "" {
		return nil, nil
	}
	k, err := h.svc.Authenticate(ctx, secret)
	if err != nil {
		if toolkit.KindOf(err) == toolkit.KindUnauthenticated {
			return nil, errUnauthenticated("Invalid API key")
		}
		return nil, err
	}
	if k.Kind != toolkit.KeyClient {
		return nil, errForbidden("This API key is not a client key")
	}
	return k, nil
}

// scope is who is asking on a discovery or anonymous route: a verified
// session, a bare client key, or (ATP_ALLOW_ANONYMOUS) nobody.
type scope struct {
	caller *caller         // nil without a session
	key    *toolkit.APIKey // nil = every toolkit (anonymous)
}

// scopeOf resolves the scope of a request outside execute and resume: a
// request with X-Client-ID must verify; else an X-API-Key must be valid;
// else the request is anonymous, which only ATP_ALLOW_ANONYMOUS permits.
func (h *Handler) scopeOf(ctx context.Context, r *http.Request) (*scope, error) {
	if r.Header.Get(headerClientID) != "" {
		c, err := h.verify(ctx, r, sessionAuth)
		if err != nil {
			return nil, err
		}
		return &scope{caller: c, key: c.key}, nil
	}
	k, err := h.keyOf(ctx, r, false)
	if err != nil {
		return nil, err
	}
	if k == nil && !h.allowAnonymous {
		return nil, errUnauthenticated("Authentication required: init a session, or send X-API-Key")
	}
	return &scope{key: k}, nil
}
