package chatatp

import (
	"encoding/json"
	"net/http"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// The OAuth calls of LLMClient (shared/spec/chatatp.md §4.8), served by
// the oauth.Manager: initiate_oauth_connection, and the tokens route that
// wait_for_connection polls (404 = not yet) and get_user_tokens reads.

// errNoOAuth answers the OAuth routes of a Handler built without a Manager.
var errNoOAuth = toolkit.Errorf(toolkit.KindUnavailable, "oauth_unavailable", "this server does not run the OAuth flow")

// oauthConfirmation serves POST …/oauth/confirmation/{platform_id}/
// {"external_user_id", "developer_redirect_url"?, "api_key"}: the
// authorization URL, as both authorization_url and auth_url.
func (h *Handler) oauthConfirmation(w http.ResponseWriter, r *http.Request, platformID string) error {
	var req struct {
		ExternalUserID       json.RawMessage `json:"external_user_id"`
		DeveloperRedirectURL json.RawMessage `json:"developer_redirect_url"`
		APIKey               json.RawMessage `json:"api_key"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	key, err := h.llmKey(r, req.APIKey)
	if err != nil {
		return err
	}
	if h.oauth == nil {
		return errNoOAuth
	}
	user, ok := str(req.ExternalUserID)
	if !ok && !isNull(req.ExternalUserID) {
		return invalidf("external_user_id: must be a string")
	}
	redirect, ok := str(req.DeveloperRedirectURL)
	if !ok && !isNull(req.DeveloperRedirectURL) {
		return invalidf("developer_redirect_url: must be a string")
	}
	a, err := h.oauth.Authorize(r.Context(), key, platformID, user, redirect)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, a)
	return nil
}

// oauthTokens serves GET …/oauth/tokens/{platform_id}/{external_user_id}/:
// 404 until the user connected (the SDK keeps polling), then the fresh
// tokens; 409 needs_reauth when the user must connect again.
func (h *Handler) oauthTokens(w http.ResponseWriter, r *http.Request, platformID, user string) error {
	key, err := h.headerOnlyKey(r)
	if err != nil {
		return err
	}
	if h.oauth == nil {
		return errNoOAuth
	}
	t, err := h.oauth.Tokens(r.Context(), key, platformID, user)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, t)
	return nil
}
