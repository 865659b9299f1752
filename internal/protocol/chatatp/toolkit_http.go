package chatatp

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// toolkitKey authenticates a toolkit process: its key, from the path or
// the body (or an Authorization header, which must then agree), must be a
// live toolkit key.
func (h *Handler) toolkitKey(r *http.Request, bodyKey json.RawMessage) (*toolkit.APIKey, error) {
	key, err := h.requestKey(r, bodyKey)
	if err != nil {
		return nil, err
	}
	if key.Kind != toolkit.KeyToolkit {
		return nil, toolkit.Errorf(toolkit.KindForbidden, "forbidden", "the toolkit client routes need a toolkit key; this is a %s key", key.Kind)
	}
	return key, nil
}

// pathKey is the key of a toolkit route that carries it in the path.
func (h *Handler) pathKey(r *http.Request, secret string) (*toolkit.APIKey, error) {
	b, _ := json.Marshal(secret) // a string always marshals
	return h.toolkitKey(r, b)
}

// registerRequest is the body of POST …/api/v1/register_tool.
type registerRequest struct {
	FunctionID          string          `json:"function_id"`
	APIKey              json.RawMessage `json:"api_key"`
	AppName             string          `json:"app_name"`
	ProgrammingLanguage string          `json:"programming_language"`
	CodeHash            string          `json:"code_hash"`
	ToolkitHash         string          `json:"toolkit_hash"`
	Metadata            struct {
		Params         []string `json:"params"`
		RequiredParams []string `json:"required_params"`
		Description    string   `json:"description"`
		SourceCode     string   `json:"source_code"`
		// An OAuth2 auth_provider that names a platform makes the tool
		// act for end users there (see RemoteToolRegistration); other
		// values (API keys) travel in the call's auth_token as given.
		// auth_with and sample_response are informational for the SDK:
		// the token always arrives as the function's auth_token.
		AuthProvider any `json:"auth_provider"`
		AuthType     any `json:"auth_type"`
	} `json:"metadata"`
}

// registerTool serves POST …/api/v1/register_tool: an idempotent upsert of
// one remote tool into the toolkit of the key (app_name must be it).
func (h *Handler) registerTool(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	key, err := h.toolkitKey(r, req.APIKey)
	if err != nil {
		return err
	}
	tk, err := h.svc.RegisterRemoteTool(r.Context(), key, toolkit.RemoteToolRegistration{
		AppName:        req.AppName,
		FunctionID:     req.FunctionID,
		Description:    req.Metadata.Description,
		Params:         req.Metadata.Params,
		RequiredParams: req.Metadata.RequiredParams,
		SourceCode:     req.Metadata.SourceCode,
		CodeHash:       req.CodeHash,
		ToolkitHash:    req.ToolkitHash,
		AuthProvider:   stringOr(req.Metadata.AuthProvider),
		AuthType:       stringOr(req.Metadata.AuthType),
	})
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{
		// Only dead code of the SDK reads the exchange token; it is a
		// random value that grants nothing.
		"exchange_token": toolkit.NewID("xt_"),
		"status":         "registered",
		"toolkit_id":     tk.ID,
		"tool":           req.FunctionID,
		"revision":       tk.Revision,
	})
	return nil
}

type upToDate struct {
	UpToDate bool `json:"up_to_date"`
}

// verifyHash serves POST …/api/v1/toolkit/verify_hash.
func (h *Handler) verifyHash(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		APIKey      json.RawMessage `json:"api_key"`
		AppName     string          `json:"app_name"`
		ToolkitHash string          `json:"toolkit_hash"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	key, err := h.toolkitKey(r, req.APIKey)
	if err != nil {
		return err
	}
	ok, err := h.svc.RemoteToolkitUpToDate(r.Context(), key, req.AppName, req.ToolkitHash)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, upToDate{ok})
	return nil
}

// verifyToolHash serves POST …/api/v1/toolkit/verify_tool_hash.
func (h *Handler) verifyToolHash(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		APIKey   json.RawMessage `json:"api_key"`
		ToolHash string          `json:"tool_hash"`
		ToolName string          `json:"tool_name"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	key, err := h.toolkitKey(r, req.APIKey)
	if err != nil {
		return err
	}
	ok, err := h.svc.RemoteToolUpToDate(r.Context(), key, req.ToolName, req.ToolHash)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, upToDate{ok})
	return nil
}

// inbox serves GET …/api/v1/toolkit/{api_key}/inbox: one waiting call of
// the key's toolkit, or {} after InboxWait without one.
func (h *Handler) inbox(w http.ResponseWriter, r *http.Request, secret string) error {
	key, err := h.pathKey(r, secret)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.InboxWait)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel) // a shutdown ends the wait
	defer stop()
	req, ok := h.hub.Poll(ctx, key.ToolkitID)
	if !ok {
		h.writeRaw(w, http.StatusOK, []byte("{}"))
		return nil
	}
	if r.Context().Err() != nil {
		// The process gave up its request while the call was handed over:
		// the next poll (or socket) gets it.
		h.hub.Requeue(key.ToolkitID, req.ID)
		return nil
	}
	h.writeJSON(w, r, http.StatusOK, req)
	return nil
}

// inboxRespond serves POST …/api/v1/toolkit/{api_key}/inbox/respond with
// the process's {"request_id", "response"}.
func (h *Handler) inboxRespond(w http.ResponseWriter, r *http.Request, secret string) error {
	key, err := h.pathKey(r, secret)
	if err != nil {
		return err
	}
	var req struct {
		RequestID string          `json:"request_id"`
		Response  json.RawMessage `json:"response"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.RequestID == "" {
		return invalidf("request_id: required")
	}
	if err := h.hub.Resolve(key.ToolkitID, req.RequestID, req.Response); err != nil {
		return err
	}
	h.writeRaw(w, http.StatusOK, []byte(`{"status":"ok"}`))
	return nil
}

// stringOr is v when it is a string (the SDK sends None, or whatever the
// decorator got), else "".
func stringOr(v any) string {
	s, _ := v.(string)
	return s
}
