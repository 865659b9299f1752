package chatatp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// llmRequest is an LLMClient request, an HTTP body or a WebSocket frame.
// Fields stay raw: request_id is echoed byte for byte, and a field of an
// unexpected type must not lose the request_id the answer needs.
type llmRequest struct {
	Type       json.RawMessage `json:"type"`
	RequestID  json.RawMessage `json:"request_id"`
	ToolkitID  json.RawMessage `json:"toolkit_id"`
	Provider   json.RawMessage `json:"provider"`
	UserPrompt json.RawMessage `json:"user_prompt"`
	APIKey     json.RawMessage `json:"api_key"`
	AuthToken  json.RawMessage `json:"auth_token"`
	Payload    json.RawMessage `json:"payload"`
}

// taskPayload is the payload of a task_request.
type taskPayload struct {
	Function   json.RawMessage `json:"function"`
	Parameters json.RawMessage `json:"parameters"`
	AuthToken  json.RawMessage `json:"auth_token"`
	ToolCallID json.RawMessage `json:"tool_call_id"`
}

// Request types.
const (
	typeContext = "get_toolkit_context"
	typeTask    = "task_request"
	typeAuth    = "auth"
)

// decodeLLMRequest reads one request. Only a body that is not a JSON object
// is an error; fields are checked where they are used.
func decodeLLMRequest(b []byte) (*llmRequest, error) {
	var req llmRequest
	if err := json.Unmarshal(b, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, invalidf("request: must be a JSON object, got %s", te.Value)
		}
		return nil, invalidf("request: not valid JSON")
	}
	return &req, nil
}

// str reads an optional JSON string: absent and null are "", ok; any other
// type is not ok.
func str(raw json.RawMessage) (string, bool) {
	if isNull(raw) {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// orNull is raw, or null when absent: how request_id and user_prompt are
// echoed.
func orNull(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return []byte("null")
	}
	return raw
}

// llmReply is the answer to one request: the frame, which is also the HTTP
// body, and the HTTP status it goes with (WebSockets ignore it).
type llmReply struct {
	status int
	body   []byte
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// faultReply answers a request that cannot be served (bad key, malformed)
// in the frame its type expects, so that the SDK matches it by request_id
// and shows the message.
func (h *Handler) faultReply(ctx context.Context, req *llmRequest, err error) llmReply {
	status, code, msg := classify(err)
	h.logFault(ctx, "chatatp request refused", status, code, err)
	typ, _ := str(req.Type)
	switch typ {
	case typeContext:
		return llmReply{status, contextError(req.RequestID, code, msg)}
	case typeTask:
		name := functionName(req)
		return llmReply{status, taskReply(req.RequestID, name, toolCallID(req), toolErrorResult(code, msg))}
	}
	b := []byte(`{"type":"error","request_id":`)
	b = append(b, orNull(req.RequestID)...)
	b = append(b, `,"error":`...)
	b = appendString(b, msg)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	return llmReply{status, append(b, '}')}
}

// serveLLM answers one authenticated request.
func (h *Handler) serveLLM(ctx context.Context, key *toolkit.APIKey, req *llmRequest) llmReply {
	typ, _ := str(req.Type)
	switch typ {
	case typeContext:
		return h.toolkitContext(ctx, key, req)
	case typeTask:
		job, fault := h.prepareTask(ctx, key, req)
		if job == nil {
			return fault
		}
		return job.run(ctx)
	case "":
		return h.faultReply(ctx, req, invalidf("type: required, get_toolkit_context or task_request"))
	}
	return h.faultReply(ctx, req, invalidf("type: %q is not get_toolkit_context or task_request", typ))
}

// checkFrameKey refuses a request whose api_key names another key than the
// one the exchange authenticated with (0.2.2+ clients repeat it in every
// request; older ones leave it out).
func checkFrameKey(key *toolkit.APIKey, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	s, ok := str(raw)
	if !ok || !bytes.Equal(toolkit.HashKey(s), key.Hash) {
		return toolkit.Errorf(toolkit.KindUnauthenticated, "unauthenticated", "api_key differs from the key this connection authenticated with")
	}
	return nil
}

// checkLLMKey allows the keys of the LLM side: client keys, and admin keys
// (an operator trying a toolkit with the key they hold).
func checkLLMKey(key *toolkit.APIKey) error {
	if key.Kind != toolkit.KeyClient && key.Kind != toolkit.KeyAdmin {
		return toolkit.Errorf(toolkit.KindForbidden, "forbidden", "the LLM client routes need a client key; this is a %s key", key.Kind)
	}
	return nil
}

// ---- toolkit context ----

// Provider names, as normalised.
const (
	providerOpenAI     = "openai"
	providerAnthropic  = "anthropic"
	providerMistral    = "mistralai"
	providerOpenAIChat = "openai-chat"
	providerGemini     = "gemini"
)

// normalizeProvider case-folds a provider name and resolves aliases; the
// SDK sends it as the caller typed it. Absent means openai (the SDK's
// default).
func normalizeProvider(p string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "", "openai", "openai-responses", "openai_responses":
		return providerOpenAI, true
	case "anthropic", "claude":
		return providerAnthropic, true
	case "mistral", "mistralai", "mistral-ai", "mistral_ai":
		return providerMistral, true
	case "openai-chat", "openai_chat", "chat-completions", "chat_completions":
		return providerOpenAIChat, true
	case "gemini", "google", "google-genai", "google_genai":
		return providerGemini, true
	}
	return "", false
}

func contextError(requestID json.RawMessage, code, msg string) []byte {
	b := []byte(`{"type":"toolkit_context","request_id":`)
	b = append(b, orNull(requestID)...)
	b = append(b, `,"payload":{"error":`...)
	b = appendString(b, msg)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	return append(b, `,"tools":[]}}`...)
}

// toolkitContext answers get_toolkit_context: the toolkit's name, caption,
// instructions and tools in the provider's format, the user prompt echoed.
func (h *Handler) toolkitContext(ctx context.Context, key *toolkit.APIKey, req *llmRequest) llmReply {
	ref, ok := str(req.ToolkitID)
	if !ok || ref == "" {
		return h.faultReply(ctx, req, invalidf("toolkit_id: required, a toolkit id or name"))
	}
	p, ok := str(req.Provider)
	if !ok {
		return h.faultReply(ctx, req, invalidf("provider: must be a string"))
	}
	provider, ok := normalizeProvider(p)
	if !ok {
		return h.faultReply(ctx, req, toolkit.Errorf(toolkit.KindInvalid, "unknown_provider",
			"provider %q is not one of openai, anthropic, mistral, mistralai, openai-chat, gemini", p))
	}
	tk, err := h.catalog.Resolve(ctx, key, ref)
	if err != nil {
		return h.faultReply(ctx, req, err)
	}
	r := h.renders.get(tk, provider)
	b := make([]byte, 0, len(r.head)+len(r.tools)+len(req.RequestID)+len(req.UserPrompt)+96)
	b = append(b, `{"type":"toolkit_context","request_id":`...)
	b = append(b, orNull(req.RequestID)...)
	b = append(b, `,"payload":`...)
	b = append(b, r.head...)
	b = append(b, `,"user_prompt":`...)
	b = append(b, orNull(req.UserPrompt)...)
	b = append(b, `,"tools":`...)
	b = append(b, r.tools...)
	b = append(b, `}}`...)
	return llmReply{http.StatusOK, b}
}

// ---- tool calls ----

// functionName is the function a task names; the SDK sends "unknown" when
// it could not read the model's tool call.
func functionName(req *llmRequest) string {
	var p taskPayload
	if json.Unmarshal(req.Payload, &p) != nil {
		return "unknown"
	}
	if s, ok := str(p.Function); ok && s != "" {
		return s
	}
	return "unknown"
}

func toolCallID(req *llmRequest) json.RawMessage {
	var p taskPayload
	if json.Unmarshal(req.Payload, &p) != nil {
		return nil
	}
	return p.ToolCallID
}

// taskReply is the task_response of the SDK 0.2.1+: success-shaped, the
// tool's result (or its error) in result.tool.result.
func taskReply(requestID json.RawMessage, name string, callID json.RawMessage, result []byte) []byte {
	b := make([]byte, 0, len(result)+len(requestID)+len(name)+128)
	b = append(b, `{"type":"task_response","request_id":`...)
	b = append(b, orNull(requestID)...)
	b = append(b, `,"status":"success","result":{"tool":{"name":`...)
	b = appendString(b, name)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	b = append(b, `}}`...)
	if !isNull(callID) {
		b = append(b, `,"tool_call_id":`...)
		b = append(b, callID...)
	}
	return append(b, '}')
}

// toolErrorResult is a tool error as result.tool.result (admin-api.md §7).
func toolErrorResult(code, msg string) []byte {
	b := []byte(`{"error":`)
	b = appendString(b, msg)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	return append(b, '}')
}

// taskJob is a task_request that passed every check and is ready to run.
type taskJob struct {
	h         *Handler
	requestID json.RawMessage
	callID    json.RawMessage
	name      string
	call      *toolkit.Call
}

// prepareTask checks a task_request and resolves its toolkit and tool. It
// returns a job, or the answer when there is nothing to run: a fault of the
// request (400, 403) or a tool error (200, success-shaped).
func (h *Handler) prepareTask(ctx context.Context, key *toolkit.APIKey, req *llmRequest) (*taskJob, llmReply) {
	var p taskPayload
	payload := req.Payload
	if s, ok := str(payload); ok && s != "" {
		payload = json.RawMessage(s) // pre-0.1.4 clients sent the payload as a JSON string
	}
	if isNull(payload) || json.Unmarshal(payload, &p) != nil {
		return nil, h.faultReply(ctx, req, invalidf("payload: required, an object with function and parameters"))
	}
	name := "unknown"
	if s, ok := str(p.Function); ok && s != "" {
		name = s
	}
	job := &taskJob{h: h, requestID: req.RequestID, callID: p.ToolCallID, name: name}
	ref, ok := str(req.ToolkitID)
	if !ok || ref == "" {
		return nil, h.faultReply(ctx, req, invalidf("toolkit_id: required, a toolkit id or name"))
	}
	tk, err := h.catalog.Resolve(ctx, key, ref)
	if err != nil {
		switch toolkit.KindOf(err) {
		case toolkit.KindForbidden, toolkit.KindUnauthenticated:
			return nil, h.faultReply(ctx, req, err)
		}
		return nil, job.failed(err)
	}
	tool, ok := tk.Tool(name)
	if !ok {
		msg := "toolkit " + quote(tk.ID) + " has no tool " + quote(name)
		if name == "unknown" {
			msg = `the tool call could not be read: the SDK sends function "unknown" when it cannot parse the model's tool call ` +
				`(for provider openai, pass Responses API function_call items)`
		}
		return nil, job.toolError("tool_not_found", msg)
	}
	args, terr := arguments(p.Parameters)
	if terr != nil {
		return nil, job.toolError(terr.Code, terr.Message)
	}
	token, _ := str(p.AuthToken)
	if token == "" {
		token, _ = str(req.AuthToken)
	}
	job.call = &toolkit.Call{Toolkit: tk, Tool: tool, Arguments: args, Key: key, AuthToken: token}
	return job, llmReply{}
}

func quote(s string) string {
	q, _ := json.Marshal(s) // a string always marshals
	return string(q)
}

// arguments reads a call's parameters: an object, null or absent (none),
// or an object encoded as a JSON string (as some clients pass a model's
// arguments unparsed).
func arguments(raw json.RawMessage) (json.RawMessage, *toolkit.ToolError) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return json.RawMessage("{}"), nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if t := bytes.TrimSpace([]byte(s)); len(t) > 0 && t[0] == '{' && json.Valid(t) {
				return t, nil
			}
		}
	}
	if raw[0] != '{' {
		return nil, toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "invalid arguments: parameters must be a JSON object")
	}
	return raw, nil
}

func (j *taskJob) toolError(code, msg string) llmReply {
	return llmReply{http.StatusOK, taskReply(j.requestID, j.name, j.callID, toolErrorResult(code, msg))}
}

// failed answers a fault found while resolving the task (an unknown
// toolkit, a database failure) as a tool error the model can read.
func (j *taskJob) failed(err error) llmReply {
	status, code, msg := classify(err)
	if status >= 500 {
		j.h.logFault(context.Background(), "chatatp task failed", status, code, err)
	}
	return j.toolError(code, msg)
}

// run calls the tool within CallTimeout and answers its result or error.
func (j *taskJob) run(ctx context.Context) llmReply {
	ctx, cancel := context.WithTimeout(ctx, j.h.cfg.CallTimeout)
	defer cancel()
	out, err := j.h.svc.Run(ctx, j.call)
	var terr *toolkit.ToolError
	switch {
	case err == nil:
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		return llmReply{http.StatusOK, taskReply(j.requestID, j.name, j.callID, out)}
	case errors.As(err, &terr):
		return j.toolError(terr.Code, terr.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return j.toolError(toolkit.ToolErrTimeout, "the tool did not finish within "+j.h.cfg.CallTimeout.String())
	case errors.Is(err, context.Canceled):
		return j.toolError("canceled", "the call was cancelled: the client went away or the server is shutting down")
	}
	return j.failed(err)
}
