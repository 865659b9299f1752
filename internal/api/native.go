package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// nativeToolkit is a toolkit as a client sees it: what a model needs to
// call its tools, nothing about how they run (executors hold URLs,
// headers and code that are the operator's business).
type nativeToolkit struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Description  string       `json:"description"`
	Instructions string       `json:"instructions,omitempty"`
	Revision     int64        `json:"revision"`
	Tools        []nativeTool `json:"tools"`
}

type nativeTool struct {
	Name         string               `json:"name"`
	Description  string               `json:"description"`
	InputSchema  json.RawMessage      `json:"input_schema"`
	OutputSchema json.RawMessage      `json:"output_schema,omitempty"`
	Annotations  *toolkit.Annotations `json:"annotations,omitempty"`
}

func newNativeToolkit(tk *toolkit.Toolkit) nativeToolkit {
	out := nativeToolkit{
		ID:           tk.ID,
		Name:         tk.Name,
		Description:  tk.Description,
		Instructions: tk.Instructions,
		Revision:     tk.Revision,
		Tools:        make([]nativeTool, len(tk.Tools)),
	}
	for i, t := range tk.Tools {
		out.Tools[i] = nativeTool{
			Name:         t.Name,
			Description:  t.Description,
			InputSchema:  t.InputSchema,
			OutputSchema: t.OutputSchema,
			Annotations:  t.Annotations,
		}
	}
	return out
}

// mayUse reports whether key may see and call toolkit id: admin keys may
// use every toolkit, client keys those they are limited to (all when none).
func mayUse(key *toolkit.APIKey, id string) bool {
	return key.Kind == toolkit.KeyAdmin || key.MayUseToolkit(id)
}

func (s *server) nativeListToolkits(w http.ResponseWriter, r *http.Request) error {
	key := keyFrom(r.Context())
	tks, err := s.svc.ListToolkits(r.Context())
	if err != nil {
		return err
	}
	out := make([]nativeToolkit, 0, len(tks))
	for _, tk := range tks {
		if mayUse(key, tk.ID) {
			out = append(out, newNativeToolkit(tk))
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"toolkits": out})
	return nil
}

func (s *server) nativeGetToolkit(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	// Scope before lookup, as CallTool does: a key out of scope gets 403
	// whether or not the toolkit exists.
	if !mayUse(keyFrom(r.Context()), id) {
		return toolkit.Errorf(toolkit.KindForbidden, "forbidden", "this key may not use toolkit %q", id)
	}
	tk, err := s.svc.FindToolkit(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newNativeToolkit(tk))
	return nil
}

// callRequest is the body of a native tool call. The whole body is
// optional: a tool without parameters can be called with none.
type callRequest struct {
	Arguments      json.RawMessage `json:"arguments"`
	ExternalUserID string          `json:"external_user_id"`
}

// HeaderUserID names the end user a call acts for when the body does not
// (the same header the monday protocol uses).
const HeaderUserID = "X-User-ID"

// maxExternalUserID bounds the end user id; it is stored with connections
// and logged, so an unbounded one would be a cheap way to bloat both.
const maxExternalUserID = 256

// callResult is the answer to a call whose tool succeeded; Result is the
// tool's JSON answer, possibly null.
type callResult struct {
	Result json.RawMessage `json:"result"`
}

// callError is the answer to a call whose tool failed.
type callError struct {
	Error *toolkit.ToolError `json:"error"`
}

// callTool runs one tool. A failure of the tool itself (bad arguments,
// thrown error, upstream failure, timeout) is 200 {"error": {...}}, because
// it is an answer for the caller (often a model) to read; HTTP errors are
// only for faults of the request (key, route, body).
func (s *server) callTool(w http.ResponseWriter, r *http.Request) error {
	var req callRequest
	if err := s.decodeOptional(r, &req); err != nil {
		return err
	}
	args := bytes.TrimSpace(req.Arguments)
	switch {
	case len(args) == 0 || bytes.Equal(args, []byte("null")):
		args = []byte("{}")
	case args[0] != '{':
		return invalidf("arguments: must be a JSON object")
	}
	user := req.ExternalUserID
	if user == "" {
		user = r.Header.Get(HeaderUserID)
	}
	if utf8.RuneCountInString(user) > maxExternalUserID {
		return invalidf("external_user_id: at most %d characters", maxExternalUserID)
	}

	ctx := r.Context()
	out, err := s.svc.CallTool(ctx, keyFrom(ctx), chi.URLParam(r, "id"), chi.URLParam(r, "name"), args,
		toolkit.CallOptions{ExternalUserID: user})
	var terr *toolkit.ToolError
	if errors.As(err, &terr) {
		s.writeJSON(w, r, http.StatusOK, callError{Error: terr})
		return nil
	}
	if err != nil {
		// Including a cancelled ctx: writeError logs a client that hung
		// up at debug level and answers nothing.
		return err
	}
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	s.writeJSON(w, r, http.StatusOK, callResult{Result: out})
	return nil
}
