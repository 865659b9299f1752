package chatatp_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestProcessHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, url := range []string{
		e.srv.URL + "/api/v1/atp/llm-client/process/",
		e.srv.URL + "/api/v1/atp/llm-client/process",
		e.srv.URL + readmeBase + "/api/v1/atp/llm-client/process/", // the README's base_url
		e.srv.URL + "/some/gateway/prefix/api/v1/atp/llm-client/process/",
	} {
		for _, provider := range []string{"openai", "anthropic", "mistral", "MistralAI", "openai-chat", "gemini"} {
			res, body := postSDK(t, url, e.client, contextFrame(e.client, "math", uuid4(), provider, "hi"))
			if res.StatusCode != http.StatusOK || field(t, body, "type") != "toolkit_context" ||
				field(t, body, "payload.toolkit_id") != "math" || field(t, body, "payload.tools") == nil {
				t.Fatalf("%s %s: %d %s", url, provider, res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		}
		res, body := postSDK(t, url, e.client, taskFrame(e.client, "math", uuid4(), "add", pyObj{{"a", 1}, {"b", 2}}, nil))
		if res.StatusCode != http.StatusOK || fmt.Sprint(wantToolResult(t, body, "add")) != "map[sum:3]" {
			t.Fatalf("%s task: %d %s", url, res.StatusCode, body)
		}
	}
}

func TestProcessHTTPAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.srv.URL + "/api/v1/atp/llm-client/process/"
	task := func(bodyKey any) string {
		return py(pyObj{
			{"type", "task_request"}, {"request_id", "r"}, {"toolkit_id", "math"}, {"api_key", bodyKey},
			{"payload", pyObj{{"function", "add"}, {"parameters", pyObj{{"a", 1}, {"b", 1}}}}},
		})
	}
	for _, c := range []struct {
		name       string
		header     string // Authorization
		body       string
		status     int
		resultCode string // result.tool.result.code, "" for a success
	}{
		{"ApiKey header and body key", "ApiKey " + e.client, task(e.client), 200, ""},
		{"Bearer (SDK 0.1.8–0.2.1)", "Bearer " + e.client, task(e.client), 200, ""},
		{"body key only (SDK 0.2.0 sent none in the body; 0.2.2+ both)", "", task(e.client), 200, ""},
		{"header only", "ApiKey " + e.client, task(nil), 200, ""},
		{"case-insensitive scheme", "apikey " + e.client, task(e.client), 200, ""},
		{"admin key", "ApiKey " + e.admin, task(e.admin), 200, ""},
		{"no key", "", task(nil), 401, "unauthenticated"},
		{"wrong key", "ApiKey atp_cli_nope", task("atp_cli_nope"), 401, "unauthenticated"},
		{"different keys", "ApiKey " + e.client, task(e.scoped), 401, "unauthenticated"},
		{"other scheme", "Basic " + e.client, task(e.client), 401, "unauthenticated"},
		{"toolkit key", "ApiKey " + e.tkKey, task(e.tkKey), 403, "forbidden"},
	} {
		res, body := postSDK(t, url, "", c.body, "Authorization", c.header)
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.status, body)
			continue
		}
		if c.resultCode == "" {
			wantToolResult(t, body, "add")
			continue
		}
		// Refusals still answer in the frame the SDK reads.
		wantToolError(t, body, "add", c.resultCode, "")
		if c.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}

	// A scoped key: 403 for a toolkit it may not use, in the frame.
	res, body := postSDK(t, url, e.scoped, contextFrame(e.scoped, "other", "c1", "openai", ""))
	if res.StatusCode != http.StatusForbidden || field(t, body, "payload.code") != "forbidden" || field(t, body, "request_id") != "c1" {
		t.Errorf("scoped context: %d %s", res.StatusCode, body)
	}
	res, body = postSDK(t, url, e.scoped, taskFrame(e.scoped, "other", "t1", "x", nil, nil))
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("scoped task: %d %s", res.StatusCode, body)
	}
	wantToolError(t, body, "x", "forbidden", "other")

	// Context failures: payload {error, code, tools: []}, with a fitting status.
	for _, c := range []struct {
		frame  string
		status int
		code   string
	}{
		{contextFrame(e.client, "nope", "c2", "openai", ""), 404, "toolkit_not_found"},
		{contextFrame(e.client, "math", "c3", "cohere", ""), 400, "unknown_provider"},
	} {
		res, body := postSDK(t, url, e.client, c.frame)
		tools, _ := field(t, body, "payload.tools").([]any)
		if res.StatusCode != c.status || field(t, body, "payload.code") != c.code || tools == nil || len(tools) != 0 {
			t.Errorf("%s: %d %s", c.frame, res.StatusCode, body)
		}
	}
}

func TestProcessHTTPFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.cfg.MaxBodyBytes = 2048 })
	url := e.srv.URL + "/api/v1/atp/llm-client/process/"
	for _, c := range []struct {
		name, body string
		status     int
	}{
		{"not JSON", `{"type": `, 400},
		{"not an object", `[1, 2]`, 400},
		{"empty", ``, 400},
		{"unknown type", `{"type": "ping", "request_id": "x", "api_key": "` + e.client + `"}`, 400},
		{"too large", `{"type": "task_request", "pad": "` + strings.Repeat("x", 4096) + `"}`, 413},
	} {
		res, body := postSDK(t, url, e.client, c.body)
		if res.StatusCode != c.status || field(t, body, "error") == nil {
			t.Errorf("%s: %d %s, want %d with an error", c.name, res.StatusCode, body, c.status)
		}
	}
	// Never a redirect, whatever the slash; wrong methods get 405 with Allow.
	res, body := getSDK(t, url, e.client)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" || field(t, body, "code") != "method_not_allowed" {
		t.Errorf("GET process/: %d %v %s", res.StatusCode, res.Header, body)
	}
	for _, path := range []string{"/api/v1/atp/llm-client/nope/", "/api/v1/atp/llm-client/", "/api/v1/toolkit/x/y/z", "/ws/v1/atp/llm-client/a/b/"} {
		res, body := getSDK(t, e.srv.URL+path, e.client)
		if res.StatusCode != http.StatusNotFound || field(t, body, "code") != "not_found" {
			t.Errorf("%s: %d %s", path, res.StatusCode, body)
		}
	}
}

// With Accept: text/event-stream (the SDK's *_streaming methods) answers are
// server-sent events: one complete JSON object per "data: " line.
func TestProcessSSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.srv.URL + "/api/v1/atp/llm-client/process/"
	events := func(body []byte) []json.RawMessage {
		t.Helper()
		var out []json.RawMessage
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				if !json.Valid([]byte(line)) {
					t.Fatalf("data line is not JSON: %s", line)
				}
				out = append(out, json.RawMessage(line))
			}
		}
		return out
	}
	res, body := postSDK(t, url, e.client, contextFrame(e.client, "math", "s1", "anthropic", "hi"), "Accept", "text/event-stream")
	evs := events(body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || len(evs) != 1 || field(t, evs[0], "payload.toolkit_id") != "math" {
		t.Fatalf("context stream: %d %v %s", res.StatusCode, res.Header, body)
	}
	res, body = postSDK(t, url, e.client, taskFrame(e.client, "math", "s2", "add", pyObj{{"a", 2}, {"b", 2}}, nil), "Accept", "text/event-stream")
	evs = events(body)
	if res.StatusCode != 200 || len(evs) != 1 || fmt.Sprint(wantToolResult(t, evs[0], "add")) != "map[sum:4]" {
		t.Fatalf("task stream: %d %s", res.StatusCode, body)
	}
	if strings.Contains(string(body), "[DONE]") {
		t.Error("the stream ends with [DONE]")
	}
	// A tool error is an event too; a refused request is a plain error.
	res, body = postSDK(t, url, e.client, taskFrame(e.client, "math", "s3", "fail", nil, nil), "Accept", "text/event-stream")
	if evs = events(body); res.StatusCode != 200 || len(evs) != 1 {
		t.Fatalf("tool error stream: %d %s", res.StatusCode, body)
	}
	wantToolError(t, evs[0], "fail", "execution_error", "boom")
	res, body = postSDK(t, url, "atp_cli_nope", taskFrame("atp_cli_nope", "math", "s4", "add", nil, nil), "Accept", "text/event-stream")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("refused stream: %d %s", res.StatusCode, body)
	}
}
