package chatatp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// bases are the two base_url forms users pass: the server itself, and the
// README's, which the 0.2.x SDK doubles into every path.
func bases(e *env) map[string]string {
	return map[string]string{"sdk": e.srv.URL, "readme": e.srv.URL + readmeBase}
}

func TestLLMSocketContextAllProviders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for scheme, base := range bases(e) {
		s := dialLLM(t, base, e.client)
		for provider, check := range map[string]func(tool map[string]any) bool{
			"openai": func(tool map[string]any) bool {
				return tool["type"] == "function" && tool["name"] == "add" && tool["parameters"] != nil
			},
			"Anthropic": func(tool map[string]any) bool { return tool["name"] == "add" && tool["input_schema"] != nil },
			"mistral": func(tool map[string]any) bool {
				fn, _ := tool["function"].(map[string]any)
				return tool["type"] == "function" && fn["name"] == "add" && fn["parameters"] != nil
			},
			"mistralai": func(tool map[string]any) bool {
				fn, _ := tool["function"].(map[string]any)
				return fn["name"] == "add"
			},
		} {
			// By id and by name, as the SDK lets users pass either.
			for _, ref := range []string{"math", "Math Tools"} {
				id := "context_" + ref + "_" + uuid4()
				s.send(contextFrame(e.client, ref, id, provider, "what is 2+3?"))
				f := s.wait(py(id))
				if field(t, f, "type") != "toolkit_context" {
					t.Fatalf("%s %s: %s", scheme, provider, f)
				}
				p, _ := field(t, f, "payload").(map[string]any)
				if p["toolkit_id"] != "math" || p["toolkit_name"] != "Math Tools" || p["caption"] != "Arithmetic helpers." ||
					p["instructions"] != "Use add for sums." || p["user_prompt"] != "what is 2+3?" {
					t.Errorf("%s %s: payload %v", scheme, provider, p)
				}
				tools, _ := p["tools"].([]any)
				if len(tools) != 4 {
					t.Fatalf("%s %s: %d tools", scheme, provider, len(tools))
				}
				first, _ := tools[0].(map[string]any)
				if !check(first) {
					t.Errorf("%s %s: first tool %v", scheme, provider, first)
				}
			}
		}
	}
}

func TestLLMSocketTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for scheme, base := range bases(e) {
		s := dialLLM(t, base, e.client)
		id := "task_math_0_" + uuid4()
		s.send(taskFrame(e.client, "math", id, "add", pyObj{{"a", 2}, {"b", 3.5}}, nil))
		f := s.wait(py(id))
		res := wantToolResult(t, f, "add")
		if fmt.Sprint(res) != "map[sum:5.5]" || field(t, f, "tool_call_id") != "call_"+id {
			t.Errorf("%s: %s", scheme, f)
		}
	}
}

// The SDK matches answers by request_id in a dict; the server must echo it
// byte for byte, escapes included.
func TestRequestIDEchoedByteForByte(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := dialLLM(t, e.srv.URL, e.client)
	for _, id := range []string{"task_math_0_é-😀-" + uuid4(), `with "quotes" and \ slash`} {
		raw := py(id) // json.dumps escapes: "\u00e9", "\ud83d\ude00"
		s.send(taskFrame(e.client, "math", id, "add", pyObj{{"a", 1}, {"b", 1}}, nil))
		f := s.wait(raw)
		if !strings.Contains(string(f), `"request_id":`+raw) {
			t.Errorf("request_id not echoed as %s: %s", raw, f)
		}
	}
	// Over HTTP too, and for a context.
	res, body := postSDK(t, e.srv.URL+"/api/v1/atp/llm-client/process/", e.client,
		contextFrame(e.client, "math", "ctx-\u00e9", "openai", "hi"))
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"request_id":"ctx-\u00e9"`) {
		t.Errorf("%d %s", res.StatusCode, body)
	}
}

// Every tool failure reaches the model inside the success shape, over both
// transports.
func TestToolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := dialLLM(t, e.srv.URL, e.client)
	cases := []struct {
		name, function string
		params         pyObj
		code, fragment string
	}{
		{"unparsed tool call", "unknown", nil, "tool_not_found", `function "unknown"`},
		{"unregistered name", "subtract", nil, "tool_not_found", `has no tool "subtract"`},
		{"bad arguments", "add", pyObj{{"a", "two"}}, "invalid_arguments", "invalid arguments"},
		{"executor failure", "fail", nil, "execution_error", "boom"},
		{"timeout", "spin", nil, "timeout", ""},
		{"upstream refuses without a token", "secure", nil, "not_connected", "acme"},
	}
	for i, c := range cases {
		id := fmt.Sprintf("task_math_%d_%s", i, uuid4())
		s.send(taskFrame(e.client, "math", id, c.function, c.params, nil))
		wantToolError(t, s.wait(py(id)), c.function, c.code, c.fragment)

		res, body := postSDK(t, e.srv.URL+"/api/v1/atp/llm-client/process/", e.client,
			taskFrame(e.client, "math", uuid4(), c.function, c.params, nil))
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s over HTTP: status %d %s", c.name, res.StatusCode, body)
		}
		wantToolError(t, body, c.function, c.code, c.fragment)
	}
	// An unknown toolkit is a tool error too (the model reads why).
	id := uuid4()
	s.send(taskFrame(e.client, "nope", id, "add", nil, nil))
	wantToolError(t, s.wait(py(id)), "add", "toolkit_not_found", `"nope"`)
}

// auth_token reaches an http tool as its bearer token.
func TestAuthTokenReachesHTTPTool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := dialLLM(t, e.srv.URL, e.client)
	id := uuid4()
	s.send(taskFrame(e.client, "math", id, "secure", pyObj{{"q", "x"}}, "tok-123"))
	if res := wantToolResult(t, s.wait(py(id)), "secure"); fmt.Sprint(res) != "map[ok:true q:x]" {
		t.Errorf("result %v", res)
	}
	// A wrong token is the upstream's 401, inside the success shape.
	id = uuid4()
	s.send(taskFrame(e.client, "math", id, "secure", nil, "wrong"))
	wantToolError(t, s.wait(py(id)), "secure", "upstream_error", "401")
}

func TestLLMSocketAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for key, status := range map[string]int{
		"atp_cli_wrong": http.StatusUnauthorized,
		e.tkKey:         http.StatusForbidden,
	} {
		_, resp, err := tryDialLLM(t, e.srv.URL, key)
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Errorf("dial with %.10s…: %v %v, want %d", key, err, resp, status)
		}
	}
	// Admin keys may use the LLM side.
	dialLLM(t, e.srv.URL, e.admin)

	// A frame carrying another key is refused in its own frame.
	s := dialLLM(t, e.srv.URL, e.client)
	id := uuid4()
	s.send(taskFrame(e.scoped, "math", id, "add", pyObj{{"a", 1}, {"b", 2}}, nil))
	wantToolError(t, s.wait(py(id)), "add", "unauthenticated", "api_key differs")
	// An auth frame with another key: auth_response false, then 1008.
	s.send(py(pyObj{{"type", "auth"}, {"api_key", e.scoped}}))
	if f := s.next(); field(t, f, "type") != "auth_response" || field(t, f, "success") != false {
		t.Errorf("auth mismatch: %s", f)
	}
	if code := s.closed(); code != websocket.StatusPolicyViolation {
		t.Errorf("closed with %v, want 1008", code)
	}

	// A scoped key cannot use other toolkits (or learn whether they exist).
	s = dialLLM(t, e.srv.URL, e.scoped)
	for _, ref := range []string{"other", "nope"} {
		id := uuid4()
		s.send(contextFrame(e.scoped, ref, id, "openai", ""))
		f := s.wait(py(id))
		if field(t, f, "payload.code") != "forbidden" || len(field(t, f, "payload.tools").([]any)) != 0 {
			t.Errorf("scoped context of %s: %s", ref, f)
		}
	}
}

// Several requests in flight on one socket are handled at once: the
// remote toolkit holds every call until all have arrived (a server that
// handled one at a time would never get there), then answers in reverse
// order, and each answer finds its request.
func TestConcurrentRequestsOnOneSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	registerSDKTool(t, e, "echo", []string{"n"}, "def echo(n: int):\n    return {'n': n}\n")
	p := dialToolkit(t, e)
	s := dialLLM(t, e.srv.URL, e.client)
	const n = 24
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("task_weather_%d_%s", i, uuid4())
		s.send(taskFrame(e.client, "weather", ids[i], "echo", pyObj{{"n", i}}, nil))
	}
	reqs := make([]json.RawMessage, n)
	for i := range n {
		reqs[i] = p.nextRequest()
	}
	for i := n - 1; i >= 0; i-- {
		req := payloadOf(t, reqs[i])
		p.respond(req.RequestID, pyObj{{"n", int(req.Params["n"].(float64))}})
	}
	for i, id := range ids {
		res := wantToolResult(t, s.wait(py(id)), "echo")
		if fmt.Sprint(res) != fmt.Sprintf("map[n:%d]", i) {
			t.Errorf("request %d got %v", i, res)
		}
	}
}

// Many js calls at once on one socket all come back right.
func TestManyConcurrentJSCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := dialLLM(t, e.srv.URL, e.client)
	const n = 64
	for i := range n {
		s.send(taskFrame(e.client, "math", fmt.Sprintf("t%d", i), "add", pyObj{{"a", i}, {"b", 1}}, nil))
	}
	for i := range n {
		res := wantToolResult(t, s.wait(py(fmt.Sprintf("t%d", i))), "add")
		if fmt.Sprint(res) != fmt.Sprintf("map[sum:%d]", i+1) {
			t.Errorf("t%d: %v", i, res)
		}
	}
}

func TestMalformedFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.cfg.MaxMessageBytes = 4096 })
	s := dialLLM(t, e.srv.URL, e.client)
	for _, c := range []struct {
		frame, wantType, wantCode string
	}{
		{`{"type": "get_toolkit_context", "request_id": "r1"`, "error", "invalid_request"}, // not JSON
		{`["a", "list"]`, "error", "invalid_request"},
		{`{"type": "subscribe", "request_id": "r2"}`, "error", "invalid_request"},
		{`{"request_id": "r3"}`, "error", "invalid_request"},
		{`{"type": "get_toolkit_context", "request_id": "r4", "provider": "openai"}`, "toolkit_context", "invalid_request"},
		{`{"type": "get_toolkit_context", "request_id": "r5", "toolkit_id": "math", "provider": "cohere"}`, "toolkit_context", "unknown_provider"},
		{`{"type": "get_toolkit_context", "request_id": "r6", "toolkit_id": 5}`, "toolkit_context", "invalid_request"},
		{`{"type": "task_request", "request_id": "r7", "toolkit_id": "math"}`, "task_response", "invalid_request"},
		{`{"type": "task_request", "request_id": "r8", "toolkit_id": "math", "payload": {"function": "add", "parameters": [1, 2]}}`, "task_response", "invalid_arguments"},
	} {
		s.send(c.frame)
		f := s.next()
		code := field(t, f, "code")
		if c.wantType == "toolkit_context" {
			code = field(t, f, "payload.code")
		}
		if c.wantType == "task_response" {
			code = field(t, f, "result.tool.result.code")
		}
		if field(t, f, "type") != c.wantType || code != c.wantCode {
			t.Errorf("%s\n → %s, want type %s code %s", c.frame, f, c.wantType, c.wantCode)
		}
	}
	// The socket still works after all that.
	s.send(taskFrame(e.client, "math", "ok", "add", pyObj{{"a", 1}, {"b", 2}}, nil))
	wantToolResult(t, s.wait(py("ok")), "add")

	// A binary frame is answered, not obeyed.
	if err := s.c.Write(t.Context(), websocket.MessageBinary, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if f := s.next(); field(t, f, "type") != "error" {
		t.Errorf("binary frame: %s", f)
	}
	// An oversized frame closes the socket with 1009.
	s.send(taskFrame(e.client, "math", "big", "add", pyObj{{"a", strings.Repeat("x", 5000)}}, nil))
	if code := s.closed(); code != websocket.StatusMessageTooBig {
		t.Errorf("oversized frame: closed with %v, want 1009", code)
	}
	// And the SDK reconnects (several sockets per key over time).
	s = dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "math", "again", "add", pyObj{{"a", 1}, {"b", 2}}, nil))
	wantToolResult(t, s.wait(py("again")), "add")
}
