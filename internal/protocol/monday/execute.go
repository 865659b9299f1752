package monday

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/atp-server/atp-server/internal/execution"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// executeRequest is POST /api/execute's body (§3.7). The reference reads
// config, else options.
type executeRequest struct {
	Code    *string         `json:"code"`
	Config  json.RawMessage `json:"config"`
	Options json.RawMessage `json:"options"`
}

// execConfig is the part of the config this layer reads itself; the
// engine parses the limits and clientServices (execution.ParseOptions).
type execConfig struct {
	ToolRules *toolRules `json:"toolRules"`
}

// maxUserIDBytes bounds X-User-ID, which names the end user of OAuth-backed tools.
const maxUserIDBytes = 256

// prepared is an execution request checked and ready for the engine.
type prepared struct {
	caller *caller // nil without a session
	req    execution.Request
}

// prepare authenticates an execute (or stream) request and builds the
// engine request. With X-Client-ID the caller must verify (401/403) and
// gets a fresh token on whatever the answer is; without it, a client key
// (X-API-Key) or ATP_ALLOW_ANONYMOUS lets code run that never pauses.
func (h *Handler) prepare(w http.ResponseWriter, r *http.Request) (*prepared, error) {
	ctx := r.Context()
	p := &prepared{}
	var key *toolkit.APIKey
	if r.Header.Get(headerClientID) != "" {
		c, err := h.verify(ctx, r, executeAuth)
		if err != nil {
			return nil, err
		}
		if err := h.rotateToken(w, c); err != nil {
			return nil, err
		}
		p.caller, key = c, c.key
	} else {
		k, err := h.keyOf(ctx, r, false)
		if err != nil {
			return nil, err
		}
		if k == nil && !h.allowAnonymous {
			return nil, errUnauthenticated("Authentication required: init a session (X-Client-ID and Authorization: Bearer), or send X-API-Key")
		}
		key = k
	}

	var body executeRequest
	if err := h.decode(w, r, &body, true); err != nil {
		return nil, err
	}
	if body.Code == nil {
		return nil, errInvalid("code is required: a string of JavaScript")
	}
	config := body.Config
	if isAbsent(config) {
		config = body.Options
	}
	opts, err := execution.ParseOptions(config)
	if err != nil {
		return nil, err
	}
	var ec execConfig
	if !isAbsent(config) {
		if err := json.Unmarshal(config, &ec); err != nil {
			return nil, errInvalid("config.toolRules: must be an object of string lists")
		}
	}
	userID := r.Header.Get(headerUserID)
	if len(userID) > maxUserIDBytes {
		return nil, errInvalid("X-User-ID: at most %d bytes", maxUserIDBytes)
	}

	tks, err := h.toolkitsFor(ctx, key)
	if err != nil {
		return nil, err
	}
	groups := ec.ToolRules.apply(groupsOf(tks))
	p.req = execution.Request{
		Code:    *body.Code,
		Options: opts,
		Tools:   &toolCaller{svc: h.svc, key: key, userID: userID, toolkits: tks},
	}
	for _, g := range groups {
		eg := execution.Group{Name: g.name}
		for _, fn := range g.functions {
			eg.Tools = append(eg.Tools, execution.ServerTool{Name: fn.name, Annotations: ec.ToolRules.annotations(&fn)})
		}
		p.req.Groups = append(p.req.Groups, eg)
	}
	if key != nil {
		p.req.RateKey = key.ID
	}
	if c := p.caller; c != nil {
		p.req.Owner = c.session.ID
		for _, t := range c.data.Tools {
			p.req.ClientTools = append(p.req.ClientTools, execution.ClientTool{
				Name: t.Name, Namespace: t.Namespace, Description: t.Description,
				InputSchema: t.InputSchema, Metadata: t.Metadata,
			})
		}
		// The session's tools decide hasTools, whatever the request says (§5.7).
		if cs := opts.ClientServices; cs != nil {
			fixed := *cs
			fixed.HasTools = len(c.data.Tools) > 0
			p.req.Options.ClientServices = &fixed
		}
	}
	return p, nil
}

func isAbsent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// execute answers POST /api/execute: the ExecutionResult, HTTP 200 whatever
// the code did (§2).
func (h *Handler) execute(w http.ResponseWriter, r *http.Request) error {
	p, err := h.prepare(w, r)
	if err != nil {
		return err
	}
	res, err := h.engine.Execute(r.Context(), p.req)
	if err != nil {
		// The engine's kinds carry the spec's messages: "Client ID
		// required for paused executions" (400) and the like.
		return err
	}
	h.writeJSON(w, r, http.StatusOK, res)
	return nil
}

// resumeBody is POST /api/resume/{id}'s body: {result} or {results}. A
// json.RawMessage keeps a JSON null ("null"), so an absent field (empty)
// and a null answer differ.
type resumeBody struct {
	Result  json.RawMessage `json:"result"`
	Results json.RawMessage `json:"results"`
}

type batchAnswer struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result"`
}

// resume answers POST /api/resume/{id} (§3.8). The caller must own the
// execution (403) and it must be paused (404 once finished or expired).
func (h *Handler) resume(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := h.verify(ctx, r, resumeAuth)
	if err != nil {
		return err
	}
	if err := h.rotateToken(w, c); err != nil {
		return err
	}
	var body resumeBody
	if err := h.decode(w, r, &body, true); err != nil {
		return err
	}
	req := execution.ResumeRequest{
		Owner:       c.session.ID,
		ExecutionID: pathID(r),
		// Over plain HTTP progress reports go nowhere; this also detaches
		// the sink of a stream that started the execution.
		OnProgress: func(string, float64) {},
	}
	switch {
	case len(body.Results) > 0 && !isAbsent(body.Results):
		var answers []batchAnswer
		if err := json.Unmarshal(body.Results, &answers); err != nil {
			return errInvalid("results: must be an array of {id, result}")
		}
		req.Batch = true
		for _, a := range answers {
			req.Answers = append(req.Answers, execution.Answer{ID: a.ID, Value: orNull(a.Result)})
		}
	case len(body.Result) > 0:
		req.Answers = []execution.Answer{{Value: body.Result}}
	default:
		return errInvalid("result or results is required")
	}
	res, err := h.engine.Resume(ctx, req)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusOK, res)
	return nil
}

func orNull(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage("null")
	}
	return v
}

// toolCaller runs server tools for an execution through the Service, as
// the key that started it and for the end user named by X-User-ID.
//
// It calls the toolkits prepare resolved when the execution started (a
// snapshot) and never reads them again, so an execution sees one version
// of each toolkit from start to end, across pauses: the version its api
// object was built from. A toolkit changed meanwhile, through any
// instance, is seen by the next execution; this one keeps the tools,
// schemas and executors it started with, instead of finding a tool gone
// or renamed, or the arguments it built refused by a new schema, halfway
// through. That holds for a toolkit deleted meanwhile too: it stays
// callable until the execution ends. The key and the session are not part
// of the snapshot: every resume verifies them again, so a revoked key or
// an expired session stops a paused execution at its next resume.
type toolCaller struct {
	svc      *toolkit.Service
	key      *toolkit.APIKey // nil: anonymous (every toolkit)
	userID   string
	toolkits []*toolkit.Toolkit // shared with the catalog: read only
}

// CallTool implements execution.ToolCaller. Faults of the call itself
// (the toolkit or tool is not in the snapshot, the key may not use it)
// become tool errors, which the code can read and catch.
func (tc *toolCaller) CallTool(ctx context.Context, group, tool string, input json.RawMessage) (json.RawMessage, error) {
	var (
		out json.RawMessage
		err error
	)
	// A linear search: the store's order (its collation) need not be
	// byte order, and a key uses a handful of toolkits.
	if i := slices.IndexFunc(tc.toolkits, func(tk *toolkit.Toolkit) bool { return tk.ID == group }); i >= 0 {
		out, err = tc.svc.CallToolkitTool(ctx, tc.key, tc.toolkits[i], tool, input, toolkit.CallOptions{ExternalUserID: tc.userID})
	} else {
		err = toolkit.Errorf(toolkit.KindNotFound, "toolkit_not_found", "toolkit %q not found", group)
	}
	var te *toolkit.Error
	if errors.As(err, &te) {
		switch te.Kind {
		case toolkit.KindNotFound, toolkit.KindForbidden:
			return nil, toolkit.NewToolError(toolkit.ToolErrUnavailable, "%s.%s is not available: %s", group, tool, te.Message)
		}
	}
	return out, err
}
