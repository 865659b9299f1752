package chatatp

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		path    string
		surface surface
		rest    string
	}{
		{"/api/v1/atp/llm-client/process/", surfaceLLMHTTP, "process/"},
		{"/ws/v1/atp/llm-client/api/v1/atp/llm-client/process/", surfaceLLMHTTP, "process/"}, // README base_url
		{"/ws/v1/atp/llm-client/ws/v1/atp/llm-client/atp_cli_x/", surfaceLLMWS, "atp_cli_x/"},
		{"/gw/ws/v1/atp/toolkit-client/atp_tk_x/", surfaceToolkitWS, "atp_tk_x/"},
		{"/api/v1/toolkit/verify_hash", surfaceToolkitHTTP, "verify_hash"},
		{"/x/api/v1/toolkit/atp_tk_x/inbox/respond", surfaceToolkitHTTP, "atp_tk_x/inbox/respond"},
		{"/api/v1/register_tool", surfaceRegister, ""},
		{"/prefix/api/v1/register_tool/", surfaceRegister, "/"},
		{"/api/v1/register_tool/more", surfaceNone, ""},
		{"/api/v1/atp/llm-client/store/developers/toolkits/", surfaceLLMHTTP, "store/developers/toolkits/"},
		{"/api/v1/atp/llm-client/oauth/tokens/hubspot/jane.doe+x@example.com/", surfaceLLMHTTP, "oauth/tokens/hubspot/jane.doe+x@example.com/"},
		{"/admin/v1/toolkits", surfaceNone, ""},
		{"/v1/toolkits/math", surfaceNone, ""},
		{"/healthz", surfaceNone, ""},
	} {
		s, rest := split(c.path)
		if s != c.surface || rest != c.rest {
			t.Errorf("split(%q) = %v %q, want %v %q", c.path, s, rest, c.surface, c.rest)
		}
		if Match(c.path) != (c.surface != surfaceNone) {
			t.Errorf("Match(%q) = %v", c.path, Match(c.path))
		}
	}
}

func TestNormalizeProvider(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "openai", "OpenAI": "openai", "anthropic": "anthropic", " Mistral ": "mistralai", "mistralai": "mistralai",
		"openai-chat": "openai-chat", "Gemini": "gemini", "cohere": "",
	} {
		got, ok := normalizeProvider(in)
		if got != want || ok != (want != "") {
			t.Errorf("normalizeProvider(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func sampleToolkit() *toolkit.Toolkit {
	return &toolkit.Toolkit{ID: "kit", Name: "Kit", Tools: []toolkit.Tool{
		{Name: "search", Description: "Search things", InputSchema: json.RawMessage(`{
			"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"properties": {
				"query": {"type": "string", "description": "what"},
				"limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 50},
				"order": {"enum": ["asc", "desc"]},
				"level": {"enum": [1, 2]},
				"filter": {"$ref": "#/$defs/filter"},
				"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
				"anything": {"description": "any value"},
				"when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
				"mode": {"const": "fast"},
				"extra": {"type": "object", "additionalProperties": true, "patternProperties": {"^x": {}}}
			},
			"required": ["query", "missing"],
			"additionalProperties": false,
			"$defs": {"filter": {"type": "object", "properties": {"field": {"type": "string"}}, "required": ["field"]}}
		}`)},
		{Name: "ping", InputSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "either", Description: "One of two shapes", InputSchema: json.RawMessage(`{
			"type": "object",
			"oneOf": [
				{"properties": {"id": {"type": "string"}}, "required": ["id", "kind"]},
				{"properties": {"name": {"type": "string"}}, "required": ["name", "kind"]}
			],
			"allOf": [{"properties": {"kind": {"type": "string"}}, "required": ["kind"]}],
			"not": {"required": ["both"]}
		}`)},
	}}
}

func TestRenderTools(t *testing.T) {
	t.Parallel()
	tk := sampleToolkit()
	searchJSON := `{"type":"object","properties":{"query":{"type":"string","description":"what"},"limit":{"type":["integer","null"],"minimum":1,"maximum":50},` +
		`"order":{"enum":["asc","desc"]},"level":{"enum":[1,2]},"filter":{"$ref":"#/$defs/filter"},"tags":{"type":"array","items":{"type":"string"},"maxItems":5},` +
		`"anything":{"description":"any value"},"when":{"anyOf":[{"type":"string","format":"date-time"},{"type":"null"}]},"mode":{"const":"fast"},` +
		`"extra":{"type":"object","additionalProperties":true,"patternProperties":{"^x":{}}}},"required":["query","missing"],"additionalProperties":false,` +
		`"$defs":{"filter":{"type":"object","properties":{"field":{"type":"string"}},"required":["field"]}}}`
	pingJSON := `{"type":"object","properties":{}}`
	eitherJSON := `{"type":"object","properties":{"kind":{"type":"string"},"id":{"type":"string"},"name":{"type":"string"}},"required":["kind"]}`
	want := map[string]string{
		providerOpenAI: `[{"type":"function","name":"search","description":"Search things","parameters":` + searchJSON + `},` +
			`{"type":"function","name":"ping","description":"","parameters":` + pingJSON + `},` +
			`{"type":"function","name":"either","description":"One of two shapes","parameters":` + eitherJSON + `}]`,
		providerAnthropic: `[{"name":"search","description":"Search things","input_schema":` + searchJSON + `},` +
			`{"name":"ping","description":"","input_schema":` + pingJSON + `},` +
			`{"name":"either","description":"One of two shapes","input_schema":` + eitherJSON + `}]`,
		providerMistral: `[{"type":"function","function":{"name":"search","description":"Search things","parameters":` + searchJSON + `}},` +
			`{"type":"function","function":{"name":"ping","description":"","parameters":` + pingJSON + `}},` +
			`{"type":"function","function":{"name":"either","description":"One of two shapes","parameters":` + eitherJSON + `}}]`,
		providerGemini: `[{"function_declarations":[{"name":"search","description":"Search things","parameters":{"type":"object","properties":{` +
			`"query":{"type":"string","description":"what"},` +
			`"limit":{"type":"integer","nullable":true,"minimum":1,"maximum":50},` +
			`"order":{"type":"string","enum":["asc","desc"]},` +
			`"level":{"type":"string","description":"(one of: 1, 2)"},` +
			`"filter":{"type":"object","properties":{"field":{"type":"string"}},"required":["field"]},` +
			`"tags":{"type":"array","items":{"type":"string"},"maxItems":5},` +
			`"anything":{"type":"string","description":"any value"},` +
			`"when":{"type":"string","nullable":true,"format":"date-time"},` +
			`"mode":{"type":"string","enum":["fast"]},` +
			`"extra":{"type":"object"}},"required":["query"]}},` +
			`{"name":"ping","description":"ping"},` +
			`{"name":"either","description":"One of two shapes","parameters":{"type":"object","properties":{"kind":{"type":"string"},"id":{"type":"string"}},"required":["kind","id"]}}]}]`,
	}
	want[providerOpenAIChat] = want[providerMistral]
	for provider, w := range want {
		got := string(renderTools(tk, provider))
		if got != w {
			t.Errorf("%s:\n got %s\nwant %s", provider, got, w)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s: invalid JSON", provider)
		}
	}
	for _, p := range []string{providerOpenAI, providerGemini} {
		if got := string(renderTools(&toolkit.Toolkit{ID: "e"}, p)); got != "[]" {
			t.Errorf("%s without tools: %s", p, got)
		}
	}
}

// A recursive $ref stops at maxRefDepth for gemini.
func TestGeminiRecursiveRef(t *testing.T) {
	t.Parallel()
	tk := &toolkit.Toolkit{ID: "t", Tools: []toolkit.Tool{{Name: "tree", InputSchema: json.RawMessage(
		`{"type":"object","properties":{"node":{"$ref":"#/$defs/node"}},"$defs":{"node":{"type":"object","properties":{"child":{"$ref":"#/$defs/node"}}}}}`)}}}
	out := renderTools(tk, providerGemini)
	if !json.Valid(out) || len(out) > 4096 {
		t.Fatalf("%s", out)
	}
}

func TestContextFrameAndCache(t *testing.T) {
	t.Parallel()
	c := newRenderCache()
	tk := sampleToolkit()
	tk.Revision = 1
	r1 := c.get(tk, providerOpenAI)
	if r2 := c.get(tk, providerOpenAI); r1 != r2 {
		t.Error("an unchanged toolkit was rendered again")
	}
	next := *tk
	next.Revision = 2
	next.Tools = tk.Tools[:1]
	if r3 := c.get(&next, providerOpenAI); r3 == r1 || string(r3.tools) == string(r1.tools) {
		t.Error("a changed toolkit was served from the cache")
	}
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	if n != 1 {
		t.Errorf("%d renderings kept, want only the live version", n)
	}
}

// FuzzLLMFrame: whatever a socket sends, the answer is one JSON object
// carrying the request's request_id, and nothing panics.
func FuzzLLMFrame(f *testing.F) {
	for _, s := range []string{
		`{"type": "get_toolkit_context", "toolkit_id": "x", "request_id": "r", "provider": "openai", "user_prompt": "hi", "api_key": "k"}`,
		`{"type": "task_request", "request_id": "t", "toolkit_id": "x", "payload": {"function": "f", "parameters": {"a": 1}}}`,
		`{"type": "task_request", "request_id": 5, "payload": "{\"function\": \"f\"}"}`,
		`{"type": 7}`, `[]`, `null`, `"x"`, `{"request_id": {"a": [1]}}`, `{"type": "auth"}`,
	} {
		f.Add([]byte(s))
	}
	h := &Handler{cfg: Config{}.withDefaults(), logger: Config{}.withDefaults().Logger}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeLLMRequest(b)
		if err != nil {
			req = &llmRequest{}
		}
		typ, _ := str(req.Type)
		var rep llmReply
		switch typ {
		case typeContext:
			// Up to the toolkit lookup, which needs a store.
			ref, ok := str(req.ToolkitID)
			p, pok := str(req.Provider)
			if _, known := normalizeProvider(p); ok && ref != "" && pok && known {
				return
			}
			rep = h.faultReply(context.Background(), req, invalidf("x"))
		default:
			rep = h.faultReply(context.Background(), req, invalidf("x"))
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(rep.body, &m); err != nil {
			t.Fatalf("answer is not a JSON object: %s", rep.body)
		}
		if len(req.RequestID) > 0 && string(m["request_id"]) != string(req.RequestID) {
			t.Fatalf("request_id %s echoed as %s", req.RequestID, m["request_id"])
		}
		if a, terr := arguments(req.Payload); terr == nil && !json.Valid(a) {
			t.Fatalf("arguments gave invalid JSON %q", a)
		}
	})
}
