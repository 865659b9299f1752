package chatatp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// registerBody is POST /api/v1/register_tool as the SDK 0.2.5 sends it.
func registerBody(key, app, name string, params, required []string, source, toolkitHash string) string {
	return py(pyObj{
		{"function_id", name}, {"api_key", key}, {"app_name", app}, {"programming_language", "Python"},
		{"code_hash", sha(source)}, {"toolkit_hash", toolkitHash},
		{"metadata", pyObj{
			{"params", params}, {"required_params", required}, {"description", "The " + name + " tool"},
			{"auth_provider", nil}, {"auth_type", nil}, {"auth_with", nil}, {"sample_response", ""},
			{"source_code", source},
		}},
	})
}

// postToolkit sends a ToolKitClient request: no auth header, the key in
// the body.
func postToolkit(t testing.TB, url, body string) (*http.Response, []byte) {
	t.Helper()
	return postSDK(t, url, "", body)
}

func registerSDKTool(t testing.TB, e *env, name string, params []string, source string) {
	t.Helper()
	res, body := postToolkit(t, e.srv.URL+"/api/v1/register_tool",
		registerBody(e.tkKey, "weather", name, params, params, source, sha(source)))
	if res.StatusCode != http.StatusOK || field(t, body, "exchange_token") == nil {
		t.Fatalf("register_tool %s: %d %s", name, res.StatusCode, body)
	}
}

// field2 returns the raw JSON at a top-level key.
func field2(t testing.TB, doc []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("not a JSON object: %s", doc)
	}
	return m[key]
}

// ---- a ToolKitClient over WebSocket ----

type toolkitProc struct {
	t      testing.TB
	c      *websocket.Conn
	frames chan json.RawMessage
	done   chan struct{}
	err    error
}

// dialToolkit connects a toolkit process for e's toolkit key and waits for
// atp_client_connected (which the server sends once the process serves).
func dialToolkit(t testing.TB, e *env) *toolkitProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(e.srv.URL)+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", nil)
	if err != nil {
		t.Fatalf("dial toolkit: %v %v", err, resp)
	}
	p := &toolkitProc{t: t, c: c, frames: make(chan json.RawMessage, 1000), done: make(chan struct{})}
	t.Cleanup(func() { _ = c.CloseNow() })
	go func() {
		defer close(p.done)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				p.err = err
				return
			}
			p.frames <- data
		}
	}()
	if f := p.next(); field(t, f, "message_type") != "atp_client_connected" || field(t, f, "payload.message") == nil {
		t.Fatalf("first frame %s", f)
	}
	return p
}

func (p *toolkitProc) next() json.RawMessage {
	p.t.Helper()
	select {
	case f := <-p.frames:
		return f
	case <-p.done:
		p.t.Fatalf("toolkit socket closed: %v", p.err)
	case <-time.After(20 * time.Second):
		p.t.Fatal("no frame for the toolkit")
	}
	return nil
}

// nextRequest skips keepalives and returns the next atp_tool_request.
func (p *toolkitProc) nextRequest() json.RawMessage {
	p.t.Helper()
	for {
		f := p.next()
		if field(p.t, f, "message_type") == "atp_tool_request" {
			return f
		}
	}
}

// respond answers as the SDK does: {"type": "tool_response", "request_id", "result"}.
func (p *toolkitProc) respond(requestID string, result any) {
	p.t.Helper()
	frame := py(pyObj{{"type", "tool_response"}, {"request_id", requestID}, {"result", result}})
	if err := p.c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		p.t.Fatalf("respond: %v", err)
	}
}

type toolRequest struct {
	RequestID string         `json:"request_id"`
	ToolName  string         `json:"tool_name"`
	Params    map[string]any `json:"params"`
	AuthToken *string        `json:"auth_token"`
}

func payloadOf(t testing.TB, frame []byte) toolRequest {
	t.Helper()
	var r toolRequest
	if err := json.Unmarshal(field2(t, frame, "payload"), &r); err != nil {
		t.Fatalf("payload of %s: %v", frame, err)
	}
	return r
}

// ---- registration ----

func TestRegisterTool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := "@client.register_tool(function_name=\"forecast\", params=[\"city\", \"days\"], required_params=[\"city\"], " +
		"description=\"Forecast\", auth_provider=None, auth_type=None, auth_with=None)\n" +
		"def forecast(city: str, days: int = 3, units=None, auth_token=None):\n" +
		"    \"\"\"Forecast.\n\n    Args:\n        city: City name.\n        days (int): How many days.\n    \"\"\"\n" +
		"    return {}\n"
	partial := sha(src)
	body := registerBody(e.tkKey, "weather", "forecast", []string{"city", "days", "units"}, []string{"city"}, src, partial)
	for _, url := range []string{"/api/v1/register_tool", "/some/prefix/api/v1/register_tool", "/api/v1/register_tool/"} {
		res, out := postToolkit(t, e.srv.URL+url, body)
		if res.StatusCode != http.StatusOK || field(t, out, "exchange_token") == nil {
			t.Fatalf("%s: %d %s", url, res.StatusCode, out)
		}
	}
	tk, err := e.svc.FindToolkit(t.Context(), "weather")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Revision != 1 || len(tk.Tools) != 1 || tk.OwnerKeyID != e.keyIDs["tk"] {
		t.Fatalf("registered toolkit: revision %d, %d tools, owner %q (idempotence or ownership broken)", tk.Revision, len(tk.Tools), tk.OwnerKeyID)
	}
	want := `{"type":"object","properties":{"city":{"type":"string","description":"City name."},` +
		`"days":{"type":"integer","description":"How many days."},"units":{"description":"units"}},"required":["city"],"additionalProperties":false}`
	if got := string(tk.Tools[0].InputSchema); got != want {
		t.Errorf("schema\n got %s\nwant %s", got, want)
	}

	// The SDK's start(): verify_hash with the full hash, then per tool.
	res, out := postToolkit(t, e.srv.URL+"/api/v1/toolkit/verify_hash",
		py(pyObj{{"api_key", e.tkKey}, {"app_name", "weather"}, {"toolkit_hash", partial}}))
	if res.StatusCode != http.StatusOK || string(out) != "{\"up_to_date\":true}\n" {
		t.Errorf("verify_hash: %d %s", res.StatusCode, out)
	}
	res, out = postToolkit(t, e.srv.URL+"/api/v1/toolkit/verify_hash",
		py(pyObj{{"api_key", e.tkKey}, {"app_name", "weather"}, {"toolkit_hash", "changed"}}))
	if res.StatusCode != http.StatusOK || field(t, out, "up_to_date") != false {
		t.Errorf("verify_hash changed: %d %s", res.StatusCode, out)
	}
	for hash, want := range map[string]bool{sha(src): true, "other": false} {
		res, out = postToolkit(t, e.srv.URL+"/api/v1/toolkit/verify_tool_hash",
			py(pyObj{{"api_key", e.tkKey}, {"tool_hash", hash}, {"tool_name", "forecast"}}))
		if res.StatusCode != http.StatusOK || field(t, out, "up_to_date") != want {
			t.Errorf("verify_tool_hash %s: %d %s", hash, res.StatusCode, out)
		}
	}

	// Refusals: another toolkit's app_name (403), a client key (403), a
	// wrong key (401), a name an admin tool has (409), bad bodies (400).
	for _, c := range []struct {
		url, body string
		status    int
	}{
		{"/api/v1/register_tool", registerBody(e.tkKey, "news", "x", nil, nil, "", ""), http.StatusForbidden},
		{"/api/v1/register_tool", registerBody(e.client, "weather", "x", nil, nil, "", ""), http.StatusForbidden},
		{"/api/v1/register_tool", registerBody("atp_tk_wrong", "weather", "x", nil, nil, "", ""), http.StatusUnauthorized},
		{"/api/v1/register_tool", registerBody(e.tkKey, "weather", "bad name", nil, nil, "", ""), http.StatusBadRequest},
		{"/api/v1/register_tool", `{"function_id": 5}`, http.StatusBadRequest},
		{"/api/v1/register_tool", `not json`, http.StatusBadRequest},
		{"/api/v1/toolkit/verify_hash", py(pyObj{{"api_key", e.tkKey}, {"app_name", "news"}, {"toolkit_hash", "h"}}), http.StatusForbidden},
		{"/api/v1/toolkit/verify_tool_hash", py(pyObj{{"api_key", e.client}, {"tool_hash", "h"}, {"tool_name", "x"}}), http.StatusForbidden},
	} {
		res, out := postToolkit(t, e.srv.URL+c.url, c.body)
		if res.StatusCode != c.status || field(t, out, "error") == nil || field(t, out, "code") == nil {
			t.Errorf("%s %.60s: %d %s, want %d", c.url, c.body, res.StatusCode, out, c.status)
		}
	}
	// A toolkit key of an admin toolkit may add remote tools, not take the
	// name of an admin tool.
	_, mathKey, err := e.svc.CreateAPIKey(t.Context(), toolkit.NewAPIKey{Name: "math worker", Kind: toolkit.KeyToolkit, ToolkitID: "math"})
	if err != nil {
		t.Fatal(err)
	}
	res, out = postToolkit(t, e.srv.URL+"/api/v1/register_tool", registerBody(mathKey, "math", "add", nil, nil, "", ""))
	if res.StatusCode != http.StatusConflict || field(t, out, "code") != "tool_exists" {
		t.Errorf("taking an admin tool's name: %d %s", res.StatusCode, out)
	}
	res, out = postToolkit(t, e.srv.URL+"/api/v1/register_tool", registerBody(mathKey, "math", "mul", []string{"x"}, nil, "", ""))
	if res.StatusCode != http.StatusOK {
		t.Errorf("adding a remote tool to an admin toolkit: %d %s", res.StatusCode, out)
	}
}

// ---- serving over a WebSocket ----

func TestToolkitSocketServesCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.cfg.KeepaliveInterval = 20 * time.Millisecond })
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city: str, auth_token=None):\n    return {}\n")
	p := dialToolkit(t, e)

	// Keepalives come every KeepaliveInterval.
	for range 2 {
		if f := p.next(); field(t, f, "message_type") != "atp_client_connected" {
			t.Fatalf("keepalive: %s", f)
		}
	}

	// An LLM call over HTTP reaches the process with the token; its result
	// comes back in the success shape.
	type reply struct {
		res  *http.Response
		body []byte
	}
	got := make(chan reply, 1)
	go func() {
		res, body := postSDK(t, e.srv.URL+"/api/v1/atp/llm-client/process/", e.client,
			taskFrame(e.client, "weather", uuid4(), "now", pyObj{{"city", "Paris"}}, "tok-9"))
		got <- reply{res, body}
	}()
	req := payloadOf(t, p.nextRequest())
	if req.ToolName != "now" || req.Params["city"] != "Paris" || req.AuthToken == nil || *req.AuthToken != "tok-9" {
		t.Fatalf("request %+v", req)
	}
	p.respond(req.RequestID, pyObj{{"temp", 21}})
	r := <-got
	if res := wantToolResult(t, r.body, "now"); fmt.Sprint(res) != "map[temp:21]" {
		t.Errorf("result %v", res)
	}

	// The SDK's {"error": …} for an exception is a tool error.
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "t-err", "now", pyObj{{"city", "Oslo"}}, nil))
	req = payloadOf(t, p.nextRequest())
	if req.AuthToken != nil {
		t.Errorf("auth_token %q, want null", *req.AuthToken)
	}
	p.respond(req.RequestID, pyObj{{"error", "now() got an unexpected keyword argument 'x'"}})
	wantToolError(t, s.wait(py("t-err")), "now", "execution_error", "unexpected keyword")

	// Arguments are validated against the inferred schema before the
	// process sees them.
	s.send(taskFrame(e.client, "weather", "t-bad", "now", pyObj{{"city", 5}}, nil))
	wantToolError(t, s.wait(py("t-bad")), "now", "invalid_arguments", "city")

	// A late or unknown answer is dropped; the socket keeps serving.
	p.respond("req_unknown", pyObj{})
	s.send(taskFrame(e.client, "weather", "t-ok", "now", pyObj{{"city", "Rome"}}, nil))
	p.respond(payloadOf(t, p.nextRequest()).RequestID, "sunny")
	if res := wantToolResult(t, s.wait(py("t-ok")), "now"); res != "sunny" {
		t.Errorf("result %v", res)
	}
}

// A process that disconnects mid-call fails the call at once, long before
// the call timeout; one that never answers times out.
func TestToolkitProcessLeavesOrHangs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.hub.Timeout = time.Hour })
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	p := dialToolkit(t, e)
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "t1", "now", pyObj{{"city", "Paris"}}, nil))
	p.nextRequest()
	_ = p.c.CloseNow()
	wantToolError(t, s.wait(py("t1")), "now", "unavailable", "disconnected before answering")

	e2 := newEnv(t, func(o *options) { o.hub.Timeout = 50 * time.Millisecond })
	registerSDKTool(t, e2, "now", []string{"city"}, "def now(city):\n    return {}\n")
	p2 := dialToolkit(t, e2)
	s2 := dialLLM(t, e2.srv.URL, e2.client)
	s2.send(taskFrame(e2.client, "weather", "t2", "now", pyObj{{"city", "Paris"}}, nil))
	p2.nextRequest() // received, never answered
	wantToolError(t, s2.wait(py("t2")), "now", "timeout", "did not answer")

	// With no process at all, the call waits (in the inbox) until it times out.
	s2.send(taskFrame(e2.client, "weather", "t3", "now", pyObj{{"city", "Paris"}}, nil))
	_ = p2.c.CloseNow()
	f := s2.wait(py("t3"))
	res, _ := wantToolResult(t, f, "now").(map[string]any)
	if res["code"] != "timeout" && res["code"] != "unavailable" {
		t.Errorf("t3: %s", f)
	}
}

func TestNoProcessWaitsUntilTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.hub.Timeout = 50 * time.Millisecond })
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "t", "now", pyObj{{"city", "Paris"}}, nil))
	wantToolError(t, s.wait(py("t")), "now", "timeout", "none is connected")
}

// Two processes serving one toolkit share its calls: each holds its call
// until the other has one too, which only happens if both got one.
func TestProcessesShareCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	a, b := dialToolkit(t, e), dialToolkit(t, e)
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "ta", "now", pyObj{{"city", "A"}}, nil))
	s.send(taskFrame(e.client, "weather", "tb", "now", pyObj{{"city", "B"}}, nil))
	var wg sync.WaitGroup
	barrier := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(2)
	for _, p := range []*toolkitProc{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := payloadOf(t, p.nextRequest())
			arrived.Done()
			<-barrier
			p.respond(req.RequestID, "by "+req.Params["city"].(string))
		}()
	}
	arrived.Wait()
	close(barrier)
	wg.Wait()
	got := []string{
		wantToolResult(t, s.wait(py("ta")), "now").(string),
		wantToolResult(t, s.wait(py("tb")), "now").(string),
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "by A,by B" {
		t.Errorf("results %v", got)
	}
}

// ---- serving over the inbox ----

func TestInbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.cfg.InboxWait = 30 * time.Millisecond })
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	inbox := e.srv.URL + "/api/v1/toolkit/" + e.tkKey + "/inbox"

	// Idle: {} after the long poll.
	res, body := getSDK(t, inbox, "")
	if res.StatusCode != http.StatusOK || string(body) != "{}\n" {
		t.Fatalf("idle inbox: %d %s", res.StatusCode, body)
	}

	// A call with no process connected waits in the inbox.
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "t1", "now", pyObj{{"city", "Lima"}}, "tok"))
	var req toolRequest
	for req.RequestID == "" { // the call may land after a first, empty poll
		res, body = getSDK(t, inbox, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("inbox: %d %s", res.StatusCode, body)
		}
		_ = json.Unmarshal(body, &req)
	}
	if req.ToolName != "now" || req.Params["city"] != "Lima" || req.AuthToken == nil || *req.AuthToken != "tok" {
		t.Fatalf("inbox request %s", body)
	}
	respond := e.srv.URL + "/api/v1/toolkit/" + e.tkKey + "/inbox/respond"
	res, body = postToolkit(t, respond, py(pyObj{{"request_id", req.RequestID}, {"response", pyObj{{"temp", 25}}}}))
	if res.StatusCode != http.StatusOK || field(t, body, "status") != "ok" {
		t.Fatalf("respond: %d %s", res.StatusCode, body)
	}
	if r := wantToolResult(t, s.wait(py("t1")), "now"); fmt.Sprint(r) != "map[temp:25]" {
		t.Errorf("result %v", r)
	}
	// A second answer to the same call, and the wrong key.
	res, body = postToolkit(t, respond, py(pyObj{{"request_id", req.RequestID}, {"response", 1}}))
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("late respond: %d %s", res.StatusCode, body)
	}
	for _, url := range []string{
		e.srv.URL + "/api/v1/toolkit/atp_tk_wrong/inbox",
		e.srv.URL + "/api/v1/toolkit/" + e.client + "/inbox",
	} {
		if res, _ := getSDK(t, url, ""); res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d", url, res.StatusCode)
		}
	}
}

// A long poll waiting when a call arrives returns it at once.
func TestInboxLongPoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.cfg.InboxWait = 20 * time.Second })
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	got := make(chan toolRequest, 1)
	go func() {
		_, body := getSDK(t, e.srv.URL+"/prefix/api/v1/toolkit/"+e.tkKey+"/inbox/", "")
		var r toolRequest
		_ = json.Unmarshal(body, &r)
		got <- r
	}()
	// The poll is waiting once the hub has nothing queued and the call
	// still reaches it; either order works, since a queued call is taken by
	// the next poll.
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "t", "now", pyObj{{"city", "Kyiv"}}, nil))
	req := <-got
	if req.Params["city"] != "Kyiv" {
		t.Fatalf("long poll got %+v", req)
	}
	if err := e.hub.Resolve("weather", req.RequestID, json.RawMessage(`"ok"`)); err != nil {
		t.Fatal(err)
	}
	wantToolResult(t, s.wait(py("t")), "now")
}

func TestToolkitSocketKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for key, status := range map[string]int{
		"atp_tk_wrong": http.StatusUnauthorized,
		e.client:       http.StatusForbidden,
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, wsURL(e.srv.URL)+"/ws/v1/atp/toolkit-client/"+key+"/", nil)
		cancel()
		if err == nil {
			_ = c.CloseNow()
		}
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Errorf("toolkit socket with %.10s…: %v %v, want %d", key, err, resp, status)
		}
	}
	// Through a prefix, as with any base_url.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(e.srv.URL)+"/gateway/ws/v1/atp/toolkit-client/"+e.tkKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, data, err := c.Read(ctx)
	if err != nil || field(t, data, "message_type") != "atp_client_connected" {
		t.Fatalf("%s %v", data, err)
	}
}
