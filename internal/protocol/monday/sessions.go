package monday

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// sessionData is what a session keeps (toolkit.Session.Data): §3.1's
// {clientInfo, guidance, tools, services}.
type sessionData struct {
	ClientInfo json.RawMessage `json:"clientInfo,omitempty"`
	Guidance   string          `json:"guidance,omitempty"`
	Tools      []clientTool    `json:"tools"`
	Services   services        `json:"services"`
}

// clientTool is a ClientToolDefinition: a tool the client runs itself,
// reached from sandbox code as api.<namespace ?? "client">.<name>.
type clientTool struct {
	Name                string          `json:"name"`
	Namespace           string          `json:"namespace,omitempty"`
	Description         string          `json:"description"`
	InputSchema         json.RawMessage `json:"inputSchema"`
	OutputSchema        json.RawMessage `json:"outputSchema,omitempty"`
	Metadata            json.RawMessage `json:"metadata,omitempty"`
	SupportsConcurrency *bool           `json:"supportsConcurrency,omitempty"`
	Keywords            []string        `json:"keywords,omitempty"`
}

// defaultNamespace is where client tools without a namespace live.
const defaultNamespace = "client"

func decodeSessionData(raw json.RawMessage) (*sessionData, error) {
	var d sessionData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("monday: decoding stored session data: %w", err)
	}
	return &d, nil
}

// Limits on what init may register.
const (
	maxClientTools      = 256
	maxClientToolName   = 128
	maxClientGuidance   = 64 << 10
	maxClientInfoLength = 16 << 10
)

// initRequest is POST /api/init's body (§3.1). Tools are decoded one by
// one so that a bad one can be named.
type initRequest struct {
	ClientInfo json.RawMessage   `json:"clientInfo"`
	Tools      []json.RawMessage `json:"tools"`
	Services   *services         `json:"services"`
	Guidance   string            `json:"guidance"`
}

// toolFields detects missing or mistyped fields of a tool definition.
type toolFields struct {
	Name        any             `json:"name"`
	Description any             `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Namespace   any             `json:"namespace"`
}

// validateTool checks one ClientToolDefinition with the reference's rules
// (a string name and description, an object inputSchema) and messages.
func validateTool(raw json.RawMessage) (clientTool, error) {
	var f toolFields
	if err := json.Unmarshal(raw, &f); err != nil {
		return clientTool{}, errInvalid("Invalid tool definition: must be an object")
	}
	name, _ := f.Name.(string)
	if name == "" {
		return clientTool{}, errInvalid("Invalid tool definition: name is required")
	}
	if len(name) > maxClientToolName {
		return clientTool{}, errInvalid("Invalid tool definition for '%s': name is longer than %d characters", name[:maxClientToolName], maxClientToolName)
	}
	if _, ok := f.Description.(string); !ok {
		return clientTool{}, errInvalid("Invalid tool definition for '%s': description is required", name)
	}
	if in := bytes.TrimSpace(f.InputSchema); len(in) == 0 || in[0] != '{' {
		return clientTool{}, errInvalid("Invalid tool definition for '%s': inputSchema is required and must be an object", name)
	}
	if _, ok := f.Namespace.(string); f.Namespace != nil && !ok {
		return clientTool{}, errInvalid("Invalid tool definition for '%s': namespace must be a string", name)
	}
	var t clientTool
	if err := json.Unmarshal(raw, &t); err != nil {
		return clientTool{}, errInvalid("Invalid tool definition for '%s': %s", name, jsonFieldError(err))
	}
	return t, nil
}

// jsonFieldError names the field of a decoding error without echoing input.
func jsonFieldError(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
		return te.Field + " has the wrong type"
	}
	return "invalid JSON"
}

// initResponse is §3.1's answer.
type initResponse struct {
	ClientID      string `json:"clientId"`
	Token         string `json:"token"`
	ExpiresAt     int64  `json:"expiresAt"`
	TokenRotateAt int64  `json:"tokenRotateAt"`
}

// init opens a session: POST /api/init. It needs a client key (X-API-Key,
// or Authorization: Bearer) unless anonymous clients are allowed.
func (h *Handler) init(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	key, err := h.keyOf(ctx, r, true)
	if err != nil {
		return err
	}
	if key == nil && !h.allowAnonymous {
		return errUnauthenticated("API key required: send X-API-Key (or Authorization: Bearer on init)")
	}
	var req initRequest
	if err := h.decode(w, r, &req, true); err != nil {
		return err
	}
	data, err := sessionFromInit(&req)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	now := h.now()
	s := &toolkit.Session{ID: newClientID(), Data: raw, CreatedAt: now}
	s.ExpiresAt = h.sessionDeadline(s, now)
	if key != nil {
		s.KeyID = key.ID
	}
	if err := h.sessions.CreateSession(ctx, s); err != nil {
		return err
	}
	h.sweepSessions(ctx, now)

	exp := h.tokenExpiry(s, now)
	token, err := h.issueToken(s.ID, now, exp)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, initResponse{
		ClientID:      s.ID,
		Token:         token,
		ExpiresAt:     exp.UnixMilli(),
		TokenRotateAt: now.Add(exp.Sub(now) / 2).UnixMilli(),
	})
	return nil
}

// sessionFromInit validates an init body into what the session keeps.
func sessionFromInit(req *initRequest) (*sessionData, error) {
	if len(req.Tools) > maxClientTools {
		return nil, errInvalid("tools: at most %d client tools", maxClientTools)
	}
	if len(req.ClientInfo) > maxClientInfoLength {
		return nil, errInvalid("clientInfo: larger than %d bytes", maxClientInfoLength)
	}
	if len(req.Guidance) > maxClientGuidance {
		return nil, errInvalid("guidance: larger than %d bytes", maxClientGuidance)
	}
	d := &sessionData{Guidance: req.Guidance, Tools: []clientTool{}}
	if ci := bytes.TrimSpace(req.ClientInfo); len(ci) > 0 && !bytes.Equal(ci, []byte("null")) {
		d.ClientInfo = ci
	}
	if req.Services != nil {
		d.Services = *req.Services
	}
	seen := map[string]bool{}
	for _, raw := range req.Tools {
		t, err := validateTool(raw)
		if err != nil {
			return nil, err
		}
		ns := t.Namespace
		if ns == "" {
			ns = defaultNamespace
		}
		if seen[ns+"."+t.Name] {
			return nil, errInvalid("Invalid tool definition for '%s': another tool has that name in namespace '%s'", t.Name, ns)
		}
		seen[ns+"."+t.Name] = true
		d.Tools = append(d.Tools, t)
	}
	// The session's own tools decide hasTools, not what the client claims
	// (§4: the server derives hasTools from the init-time tools).
	d.Services.HasTools = len(d.Tools) > 0
	return d, nil
}

// newClientID returns "cli_" and 32 hex digits, as the reference's.
func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "cli_" + hex.EncodeToString(b[:])
}

// sweepEvery is how often init removes expired sessions; the sweep is one
// indexed DELETE, cheap enough to run inside a request.
const sweepEvery = 10 * time.Minute

// sweepSessions deletes expired sessions at most once per sweepEvery per
// instance. A failure is logged: the session just made is fine.
func (h *Handler) sweepSessions(ctx context.Context, now time.Time) {
	h.sweepMu.Lock()
	due := now.Sub(h.lastSweep) >= sweepEvery
	if due {
		h.lastSweep = now
	}
	h.sweepMu.Unlock()
	if !due {
		return
	}
	n, err := h.sessions.DeleteExpiredSessions(ctx, now)
	if err != nil {
		h.logger.WarnContext(ctx, "removing expired monday sessions", "err", err)
		return
	}
	if n > 0 {
		h.logger.DebugContext(ctx, "removed expired monday sessions", "count", n)
	}
}

// refreshRequest is POST /api/token/refresh's body (§3.10).
type refreshRequest struct {
	ClientID string `json:"clientId"`
}

// refreshToken gives a live session a new token (client 0.21). The
// current token may have expired, but its signature must hold and its
// session must be live.
func (h *Handler) refreshToken(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req refreshRequest
	if err := h.decode(w, r, &req, false); err != nil {
		return err
	}
	clientID := r.Header.Get(headerClientID)
	if clientID == "" {
		clientID = req.ClientID
	}
	if clientID == "" {
		return errInvalid("Client ID is required for token refresh")
	}
	if req.ClientID != "" && req.ClientID != clientID {
		return errInvalid("clientId: does not match X-Client-ID")
	}
	token := bearer(r)
	if token == "" {
		return errUnauthenticated("Bearer token required for refresh")
	}
	if err := h.parseToken(token, clientID, true); err != nil {
		return toolkit.Wrap(err, toolkit.KindUnauthenticated, "unauthenticated", "Invalid token or session expired")
	}
	c, err := h.liveCaller(ctx, clientID, "Session not found or expired")
	if err != nil {
		if toolkit.KindOf(err) == toolkit.KindForbidden {
			return toolkit.Wrap(err, toolkit.KindUnauthenticated, "unauthenticated", "Session not found or expired")
		}
		return err
	}
	now := h.now()
	exp := h.tokenExpiry(c.session, now)
	newToken, err := h.issueToken(clientID, now, exp)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, initResponse{
		ClientID:      clientID,
		Token:         newToken,
		ExpiresAt:     exp.UnixMilli(),
		TokenRotateAt: now.Add(exp.Sub(now) / 2).UnixMilli(),
	})
	return nil
}
