package monday

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestTSType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ schema, want string }{
		{`{"type":"string"}`, "string"},
		{`{"type":"integer"}`, "number"},
		{`{"type":"boolean"}`, "boolean"},
		{`{"type":["string","null"]}`, "string | null"},
		{`{"enum":["a","b",1]}`, `"a" | "b" | 1`},
		{`{"const":true}`, "true"},
		{`{"type":"array"}`, "unknown[]"},
		{`{"type":"array","items":{"type":"number"}}`, "number[]"},
		{`{"type":"array","items":{"type":["string","number"]}}`, "(string | number)[]"},
		{`{"type":"object"}`, "Record<string, unknown>"},
		{`{"type":"object","additionalProperties":{"type":"number"}}`, "Record<string, number>"},
		{`{"type":"object","properties":{"b":{"type":"number"},"a":{"type":"string"},"my-key":{}},"required":["b"]}`,
			`{ b: number; a?: string; "my-key"?: unknown }`},
		{`{"properties":{"x":{"type":"boolean"}}}`, "{ x?: boolean }"},
		{`{"anyOf":[{"type":"string"},{"type":"number"},{"type":"string"}]}`, "string | number"},
		{`{"anyOf":[{"type":"string"},{}]}`, "unknown"},
		{`{}`, "unknown"},
		{`true`, "unknown"},
		{`not json`, "unknown"},
		{`{"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"string"}}}}}}}}}}}}}}}`,
			"{ a?: { a?: { a?: { a?: { a?: { a?: { a?: unknown } } } } } } }"},
	} {
		if got := tsType(json.RawMessage(tc.schema)); got != tc.want {
			t.Errorf("tsType(%s) = %q, want %q", tc.schema, got, tc.want)
		}
	}
}

func TestWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"getUserRepos", []string{"get", "user", "repos"}},
		{"repos_list", []string{"repos", "list"}},
		{"Add two numbers!", []string{"add", "two", "numbers"}},
		{"sha256Sum", []string{"sha256", "sum"}},
		{"", nil},
	} {
		if d := cmp.Diff(tc.want, words(tc.in)); d != "" {
			t.Errorf("words(%q) (-want +got):\n%s", tc.in, d)
		}
	}
}

// sampleGroups: two toolkits, one with nested-looking names.
func sampleGroups() []*group {
	return groupsOf([]*toolkit.Toolkit{
		{ID: "math", Name: "Math", Description: "Arithmetic helpers", Tools: []toolkit.Tool{
			{Name: "add", Description: "Add two numbers", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number","description":"first"},"b":{"type":"number"}},"required":["a","b"]}`),
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"sum":{"type":"number"}}}`)},
			{Name: "multiply", Description: "Multiply two numbers", InputSchema: json.RawMessage(`{"type":"object","properties":{"x":{"type":"number"}}}`)},
			{Name: "wipe", Description: "Delete every number", InputSchema: json.RawMessage(`{"type":"object"}`),
				Annotations: &toolkit.Annotations{OperationType: "destructive"}},
		}},
		{ID: "weather", Name: "Weather", Description: "Forecasts", Instructions: "Use metric units.", Tools: []toolkit.Tool{
			{Name: "getForecast", Description: "Get the forecast for a city", InputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)},
		}},
	})
}

func TestDefinitionsText(t *testing.T) {
	t.Parallel()
	text := definitionsText(sampleGroups())
	for _, want := range []string{
		"// Agent Tool Protocol Runtime SDK v1.0.0\n\n// Runtime SDK Type Definitions",
		"cache: {",
		"// API Group: math\n// Arithmetic helpers\n",
		"interface math_add_Input {\n  /** first */\n  a: number;\n  b: number;\n}\n",
		"interface math_add_Output {\n  sum?: number;\n}\n",
		"type math_multiply_Output = unknown;",
		"type math_wipe_Input = Record<string, unknown>;",
		"// Instructions: Use metric units.",
		"declare const api: {\n  math: {\n    /** Add two numbers */\n    add(params: math_add_Input): Promise<math_add_Output>;\n",
		"    /** Delete every number (Asks the user for approval before it runs.) */\n    wipe(",
		"  weather: {\n    /** Get the forecast for a city */\n    getForecast(params: weather_getForecast_Input): Promise<weather_getForecast_Output>;\n  };\n};\n\nexport { api };\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("definitions lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "llm:") {
		t.Errorf("definitions carry the llm runtime; the reference prints cache only:\n%s", text)
	}
}

func TestDefinitionsNestGroups(t *testing.T) {
	t.Parallel()
	groups := []*group{
		{name: "github/readOnly", functions: []function{{name: "getUser", description: "x"}}},
		{name: "github/admin", functions: []function{{name: "delete-repo"}}},
	}
	text := definitionsText(groups)
	want := "declare const api: {\n  github: {\n    readOnly: {\n      /** x */\n      getUser(params: github_readOnly_getUser_Input): Promise<github_readOnly_getUser_Output>;\n    };\n" +
		"    admin: {\n      \"delete-repo\"(params: github_admin_delete_repo_Input)"
	if !strings.Contains(text, want) {
		t.Errorf("nested groups: want %q in:\n%s", want, text)
	}
	if got := definition(groups[0], &groups[0].functions[0]); got != "async function api.github.readOnly.getUser(params: Record<string, unknown>): Promise<unknown>" {
		t.Errorf("definition = %q", got)
	}
}

func TestRuntimeText(t *testing.T) {
	t.Parallel()
	all := &services{HasLLM: true, HasApproval: true, HasEmbedding: true}
	for _, tc := range []struct {
		name      string
		requested []string
		svc       *services
		want      []string
		notWant   []string
	}{
		{"no session: cache only", nil, nil, []string{"cache: {"}, []string{"llm: {", "approval: {", "progress: {", "ApprovalResponse"}},
		{"all services", nil, all, []string{"cache: {", "llm: {", "approval: {", "embedding: {",
			"export interface ApprovalResponse", "interface SearchOptions", "interface LLMCallOptions", "@param", "@returns"},
			[]string{"progress: {"}},
		{"no llm", nil, &services{HasApproval: true}, []string{"approval: {", "cache: {"}, []string{"llm: {", "embedding: {", "LLMCallOptions"}},
		{"requested order", []string{"progress", "llm", "nope", "llm"}, all, []string{"progress: {", "llm: {"}, []string{"cache: {", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text := runtimeText(tc.requested, tc.svc)
			if !strings.HasPrefix(text, "// Runtime SDK Type Definitions\n\n") || !strings.Contains(text, "declare const atp: {") || !strings.HasSuffix(text, "};\n\n") {
				t.Errorf("layout is off:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) {
					t.Errorf("unexpected %q in:\n%s", w, text)
				}
			}
			if tc.requested != nil && strings.Index(text, "progress: {") > strings.Index(text, "llm: {") {
				t.Errorf("requested order not kept:\n%s", text)
			}
		})
	}
	text := runtimeText(nil, all)
	if !strings.Contains(text, "    set(key: string, value: unknown, ttl?: number): Promise<void>;\n") {
		t.Errorf("cache.set declaration is off:\n%s", text)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	groups := sampleGroups()
	names := func(rs []searchResult) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.APIGroup+"."+r.FunctionName)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		max   int
		want  []string
	}{
		{"add", 0, []string{"math.add"}},
		{"forecast city", 0, []string{"weather.getForecast"}},
		{"numbers", 0, []string{"math.add", "math.multiply", "math.wipe"}},
		{"multiply numbers", 0, []string{"math.multiply", "math.add", "math.wipe"}},
		{"numbers", 1, []string{"math.add"}},
		{"the of", 0, nil},
		{"zebra", 0, nil},
	} {
		got := search(groups, tc.query, tc.max)
		if d := cmp.Diff(tc.want, names(got)); d != "" {
			t.Errorf("search(%q) (-want +got):\n%s", tc.query, d)
		}
	}
	got := search(groups, "add", 0)
	if got[0].Signature != "add({ a: number, b: number })" || got[0].Description != "Add two numbers" || got[0].RelevanceScore <= 0 {
		t.Errorf("result = %+v", got[0])
	}
	// An exact name ranks above a name that merely contains the query.
	g := groupsOf([]*toolkit.Toolkit{{ID: "t", Tools: []toolkit.Tool{{Name: "getUserList"}, {Name: "getUser"}}}})
	if d := cmp.Diff([]string{"t.getUser", "t.getUserList"}, names(search(g, "getUser", 0))); d != "" {
		t.Errorf("exact name ranking (-want +got):\n%s", d)
	}
}

func TestToolRules(t *testing.T) {
	t.Parallel()
	names := func(gs []*group) []string {
		var out []string
		for _, g := range gs {
			for _, f := range g.functions {
				out = append(out, g.name+"."+f.name)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		rules *toolRules
		want  []string
	}{
		{"nil", nil, []string{"math.add", "math.multiply", "math.wipe", "weather.getForecast"}},
		{"allow groups", &toolRules{AllowOnlyAPIGroups: []string{"weather"}}, []string{"weather.getForecast"}},
		{"block groups", &toolRules{BlockAPIGroups: []string{"weather"}}, []string{"math.add", "math.multiply", "math.wipe"}},
		{"allow tools", &toolRules{AllowOnlyTools: []string{"add", "weather.getForecast"}}, []string{"math.add", "weather.getForecast"}},
		{"block tools", &toolRules{BlockTools: []string{"math.multiply", "getForecast"}}, []string{"math.add", "math.wipe"}},
		{"block destructive", &toolRules{BlockOperationTypes: []string{"destructive"}}, []string{"math.add", "math.multiply", "weather.getForecast"}},
	} {
		if d := cmp.Diff(tc.want, names(tc.rules.apply(sampleGroups()))); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestToolRulesRequireApproval(t *testing.T) {
	t.Parallel()
	read := &function{name: "get", annotations: &toolkit.Annotations{OperationType: "read", Sensitivity: "internal"}}
	bare := &function{name: "bare"}
	for _, tc := range []struct {
		name  string
		rules *toolRules
		fn    *function
		want  bool
	}{
		{"no rules", nil, read, false},
		{"by operation type", &toolRules{RequireApprovalForOperationTypes: []string{"read"}}, read, true},
		{"by sensitivity", &toolRules{RequireApprovalForSensitivityLevels: []string{"internal"}}, read, true},
		{"other type", &toolRules{RequireApprovalForOperationTypes: []string{"write"}}, read, false},
		{"not annotated", &toolRules{RequireApprovalForOperationTypes: []string{"read"}}, bare, false},
	} {
		if got := tc.rules.annotations(tc.fn).NeedsApproval(); got != tc.want {
			t.Errorf("%s: NeedsApproval = %v, want %v", tc.name, got, tc.want)
		}
	}
	if read.annotations.RequiresApproval {
		t.Error("the rules changed the tool's own annotations")
	}
}

func TestExplore(t *testing.T) {
	t.Parallel()
	groups := append(sampleGroups(), &group{name: "github/readOnly", description: "GitHub, read only",
		functions: []function{{name: "getUser", description: "Get a user", input: json.RawMessage(`{"type":"object","properties":{"login":{"type":"string"}},"required":["login"]}`)}}})
	for _, tc := range []struct {
		path string
		want any
	}{
		{"/", exploreDirectory{Type: "directory", Path: "/", Items: []exploreItem{{Name: "custom", Type: "directory", Description: "Server API groups (toolkits)"}}}},
		{"", exploreDirectory{Type: "directory", Path: "/", Items: []exploreItem{{Name: "custom", Type: "directory", Description: "Server API groups (toolkits)"}}}},
		{"/custom/", exploreDirectory{Type: "directory", Path: "/custom", Items: []exploreItem{
			{Name: "github", Type: "directory"},
			{Name: "math", Type: "directory", Description: "Arithmetic helpers"},
			{Name: "weather", Type: "directory", Description: "Forecasts"},
		}}},
		{"custom//math", exploreDirectory{Type: "directory", Path: "/custom/math", Items: []exploreItem{
			{Name: "add", Type: "function", Description: "Add two numbers"},
			{Name: "multiply", Type: "function", Description: "Multiply two numbers"},
			{Name: "wipe", Type: "function", Description: "Delete every number"},
		}}},
		{"/custom/github", exploreDirectory{Type: "directory", Path: "/custom/github", Items: []exploreItem{
			{Name: "readOnly", Type: "directory", Description: "GitHub, read only"},
		}}},
		{"/custom/github/readOnly/getUser", exploreFunction{Type: "function", Path: "/custom/github/readOnly/getUser", Name: "getUser",
			Description: "Get a user", Definition: "async function api.github.readOnly.getUser(params: { login: string }): Promise<unknown>",
			Group: "github/readOnly", InputSchema: json.RawMessage(`{"type":"object","properties":{"login":{"type":"string"}},"required":["login"]}`)}},
	} {
		got, ok := explore(groups, tc.path)
		if !ok {
			t.Errorf("explore(%q) found nothing", tc.path)
			continue
		}
		if d := cmp.Diff(tc.want, got, cmp.AllowUnexported()); d != "" {
			t.Errorf("explore(%q) (-want +got):\n%s", tc.path, d)
		}
	}
	for _, p := range []string{"/nope", "/custom/nope", "/custom/math/nope", "/custom/math/add/extra", "/math"} {
		if _, ok := explore(groups, p); ok {
			t.Errorf("explore(%q) found something", p)
		}
	}
	// No groups: the root is empty.
	got, _ := explore(nil, "/")
	if d := cmp.Diff(exploreDirectory{Type: "directory", Path: "/", Items: []exploreItem{}}, got); d != "" {
		t.Errorf("empty root (-want +got):\n%s", d)
	}
}

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, path, id string
		ok                bool
	}{
		{"/api/init", "/api/init", "", true},
		{"/api/init", "/api/initx", "", false},
		{"/api/resume/{id}", "/api/resume/abc", "abc", true},
		{"/api/resume/{id}", "/api/resume/", "", false},
		{"/api/resume/{id}", "/api/resume/a/b", "", false},
		{"/api/resume/{id}", "/api/resumeabc", "", false},
	} {
		id, ok := matchPattern(tc.pattern, tc.path)
		if id != tc.id || ok != tc.ok {
			t.Errorf("matchPattern(%q, %q) = %q, %v; want %q, %v", tc.pattern, tc.path, id, ok, tc.id, tc.ok)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	type body struct {
		Query string `json:"query"`
	}
	for _, tc := range []struct {
		in       string
		required bool
		wantErr  string
	}{
		{`{"query":"x","extra":1}`, true, ""},
		{``, false, ""},
		{`null`, false, ""},
		{``, true, "Request body is required"},
		{`[1]`, true, "must be a JSON object"},
		{`{"query":1}`, true, "query has the wrong type"},
		{`{"query":`, true, "Invalid JSON"},
		{`{} {}`, true, "data after the object"},
	} {
		var b body
		err := decodeJSON([]byte(tc.in), &b, tc.required)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("decodeJSON(%q) = %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || toolkit.KindOf(err) != toolkit.KindInvalid):
			t.Errorf("decodeJSON(%q) = %v, want an invalid error with %q", tc.in, err, tc.wantErr)
		}
	}
}

// FuzzDecodeJSON: no input makes the decoder panic, and every failure is
// a client error.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"code":"return 1","config":{"timeout":5}}`, `{"results":[{"id":"a","result":null}]}`, ``, `{`, `{"code":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v executeRequest
		if err := decodeJSON(b, &v, true); err != nil && toolkit.KindOf(err) != toolkit.KindInvalid {
			t.Fatalf("decodeJSON(%q) = %v, not a client error", b, err)
		}
	})
}
