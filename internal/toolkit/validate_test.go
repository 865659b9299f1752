package toolkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validToolkit returns a toolkit that passes validation, with one tool of
// each executor kind; cases mutate a fresh copy.
func validToolkit() *Toolkit {
	return &Toolkit{
		ID:          "math",
		Name:        "Math",
		Description: "Arithmetic helpers",
		Tools: []Tool{
			{
				Name:         "add",
				Description:  "Add two numbers",
				InputSchema:  json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`),
				OutputSchema: json.RawMessage(`{"type":"object"}`),
				Annotations:  &Annotations{OperationType: "read", Sensitivity: "public"},
				Executor:     Executor{Kind: ExecutorJS, Code: "return {sum: input.a + input.b};"},
			},
			{
				Name:        "get_item",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"},"limit":{"type":"integer"},"note":{"type":"string"}}}`),
				Executor: Executor{
					Kind: ExecutorHTTP, Method: "POST", URL: "https://api.example.com/v1/items/{id}?v=1",
					Query: []string{"limit"}, Headers: map[string]string{"Accept": "application/json"}, Body: "input",
					Auth: &HTTPAuth{Type: AuthBearer, Secret: "s3cret"}, TimeoutMS: 5000,
				},
			},
			{
				Name:        "remote_one",
				InputSchema: json.RawMessage(`{"type":"object"}`),
				Executor:    Executor{Kind: ExecutorRemote},
			},
		},
	}
}

func TestValidateToolkit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(tk *Toolkit)
		want   string // "" = valid; else the exact message
	}{
		{"valid", func(*Toolkit) {}, ""},
		{"no tools", func(tk *Toolkit) { tk.Tools = nil }, ""},
		{"bad id", func(tk *Toolkit) { tk.ID = "Math" }, `id: "Math" does not match ^[a-z][a-z0-9_]{0,62}$`},
		{"id too long", func(tk *Toolkit) { tk.ID = "a" + strings.Repeat("b", 63) }, `id: "a` + strings.Repeat("b", 63) + `" does not match ^[a-z][a-z0-9_]{0,62}$`},
		{"no name", func(tk *Toolkit) { tk.Name = "  " }, "name: required"},
		{"long name", func(tk *Toolkit) { tk.Name = strings.Repeat("é", 201) }, "name: 201 characters, at most 200"},
		{"long description", func(tk *Toolkit) { tk.Description = strings.Repeat("x", 10_001) }, "description: 10001 characters, at most 10000"},
		{"long instructions", func(tk *Toolkit) { tk.Instructions = strings.Repeat("x", 100_001) }, "instructions: 100001 characters, at most 100000"},
		{"too many tools", func(tk *Toolkit) {
			tk.Tools = make([]Tool, 1001)
			for i := range tk.Tools {
				tk.Tools[i] = Tool{Name: fmt.Sprintf("t%d", i), InputSchema: json.RawMessage(`{"type":"object"}`), Executor: Executor{Kind: ExecutorRemote}}
			}
		}, "tools: 1001 tools, at most 1000"},
		{"bad tool name", func(tk *Toolkit) { tk.Tools[1].Name = "get-item" }, `tools[1].name: "get-item" does not match ^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`},
		{"duplicate tool", func(tk *Toolkit) { tk.Tools[2].Name = "add" }, `tools[2].name: "add" is already the name of tools[0]`},
		{"long tool description", func(tk *Toolkit) { tk.Tools[0].Description = strings.Repeat("x", 10_001) }, "tools[0].description: 10001 characters, at most 10000"},

		// input_schema
		{"missing input_schema", func(tk *Toolkit) { tk.Tools[0].InputSchema = nil }, `tools[0].input_schema: required (a JSON Schema with "type": "object")`},
		{"null input_schema", func(tk *Toolkit) { tk.Tools[0].InputSchema = json.RawMessage(`null`) }, `tools[0].input_schema: required (a JSON Schema with "type": "object")`},
		{"input_schema not an object", func(tk *Toolkit) { tk.Tools[0].InputSchema = json.RawMessage(`true`) }, "tools[0].input_schema: must be a JSON object"},
		{"input_schema without type", func(tk *Toolkit) { tk.Tools[0].InputSchema = json.RawMessage(`{"properties":{}}`) }, `tools[0].input_schema.type: must be "object" (tool arguments are a JSON object)`},
		{"input_schema of type array", func(tk *Toolkit) { tk.Tools[0].InputSchema = json.RawMessage(`{"type":"array"}`) }, `tools[0].input_schema.type: must be "object" (tool arguments are a JSON object)`},
		{"bad keyword type", func(tk *Toolkit) {
			tk.Tools[1].InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"type":"strin"}}}`)
		}, "tools[1].input_schema.properties.a.type: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'"},
		{"bad minLength", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"type":"string","minLength":"x"}}}`)
		}, "tools[0].input_schema.properties.a.minLength: got string, want integer"},
		{"bad required", func(tk *Toolkit) { tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","required":"a"}`) }, "tools[0].input_schema.required: got string, want array"},
		{"array index in path", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","allOf":[{},{"properties":{"x":{"enum":"no"}}}]}`)
		}, "tools[0].input_schema.allOf[1].properties.x.enum: got string, want array"},
		{"odd key in path", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","properties":{"a b":{"items":[1]}}}`)
		}, `tools[0].input_schema.properties["a b"].items: got array, want boolean or object`},
		{"invalid regex", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"pattern":"(?=x)"}}}`)
		}, "tools[0].input_schema.properties.a.pattern: '(?=x)' is not valid regex: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
		{"dangling ref", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"$ref":"#/$defs/nope"}}}`)
		}, `tools[0].input_schema: json-pointer in "#/$defs/nope" not found`},
		{"file ref refused", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`)
		}, `tools[0].input_schema: cannot resolve "file:///etc/passwd": only references inside the schema (#/…) are supported`},
		{"remote metaschema refused", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","$schema":"https://evil.example/schema"}`)
		}, `tools[0].input_schema: cannot resolve "https://evil.example/schema": only references inside the schema (#/…) are supported`},
		{"older draft accepted", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","definitions":{"n":{"type":"number"}},"properties":{"a":{"$ref":"#/definitions/n"}}}`)
		}, ""},
		{"local ref accepted", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","$defs":{"n":{"type":"number"}},"properties":{"a":{"$ref":"#/$defs/n"}}}`)
		}, ""},
		{"not JSON", func(tk *Toolkit) { tk.Tools[0].InputSchema = json.RawMessage(`{"type":`) }, "tools[0].input_schema: not valid JSON"},
		{"schema too large", func(tk *Toolkit) {
			tk.Tools[0].InputSchema = json.RawMessage(`{"type":"object","description":"` + strings.Repeat("x", 256<<10) + `"}`)
		}, fmt.Sprintf("tools[0].input_schema: %d bytes, at most %d", 256<<10+34, 256<<10)},
		{"bad output_schema", func(tk *Toolkit) { tk.Tools[0].OutputSchema = json.RawMessage(`{"type":7}`) }, "tools[0].output_schema.type: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'"},
		{"boolean output_schema", func(tk *Toolkit) { tk.Tools[0].OutputSchema = json.RawMessage(`true`) }, ""},
		{"string output_schema", func(tk *Toolkit) { tk.Tools[0].OutputSchema = json.RawMessage(`"x"`) }, "tools[0].output_schema: got string, want boolean or object"},

		// annotations
		{"bad operation_type", func(tk *Toolkit) { tk.Tools[0].Annotations.OperationType = "delete" }, `tools[0].annotations.operation_type: "delete" is not one of read, write, destructive`},
		{"bad sensitivity", func(tk *Toolkit) { tk.Tools[0].Annotations.Sensitivity = "secret" }, `tools[0].annotations.sensitivity: "secret" is not one of public, internal, sensitive`},

		// executor: common
		{"no kind", func(tk *Toolkit) { tk.Tools[0].Executor.Kind = "" }, "tools[0].executor.kind: required, one of js, http, remote"},
		{"bad kind", func(tk *Toolkit) { tk.Tools[0].Executor.Kind = "python" }, `tools[0].executor.kind: "python" is not one of js, http, remote`},
		{"negative timeout", func(tk *Toolkit) { tk.Tools[0].Executor.TimeoutMS = -1 }, "tools[0].executor.timeout_ms: -1 is outside 0..300000"},
		{"huge timeout", func(tk *Toolkit) { tk.Tools[1].Executor.TimeoutMS = 300_001 }, "tools[1].executor.timeout_ms: 300001 is outside 0..300000"},

		// js
		{"js without code", func(tk *Toolkit) { tk.Tools[0].Executor.Code = " " }, "tools[0].executor.code: required for a js executor"},
		{"js code too large", func(tk *Toolkit) { tk.Tools[0].Executor.Code = strings.Repeat(" ", 256<<10) + "return 1" }, fmt.Sprintf("tools[0].executor.code: %d bytes, at most %d", 256<<10+8, 256<<10)},
		{"js syntax error", func(tk *Toolkit) { tk.Tools[0].Executor.Code = "const a = 1;\nreturn a +;" }, "tools[0].executor.code: SyntaxError: Unexpected token ; (line 2, column 11)"},
		{"js escaping its function", func(tk *Toolkit) { tk.Tools[0].Executor.Code = "}); (async function () {" }, "tools[0].executor.code: SyntaxError: unbalanced braces: the code closes the function it runs in"},
		{"js with url", func(tk *Toolkit) { tk.Tools[0].Executor.URL = "https://x.example" }, "tools[0].executor.url: not used by a js executor"},
		{"js with auth", func(tk *Toolkit) { tk.Tools[0].Executor.Auth = &HTTPAuth{Type: AuthBearer, Secret: "x"} }, "tools[0].executor.auth: not used by a js executor"},
		{"js with query", func(tk *Toolkit) { tk.Tools[0].Executor.Query = []string{"a"} }, "tools[0].executor.query: not used by a js executor"},

		// remote
		{"remote with code", func(tk *Toolkit) { tk.Tools[2].Executor.Code = "return 1" }, "tools[2].executor.code: not used by a remote executor"},
		{"remote with method", func(tk *Toolkit) { tk.Tools[2].Executor.Method = "GET" }, "tools[2].executor.method: not used by a remote executor"},
		{"remote with timeout", func(tk *Toolkit) { tk.Tools[2].Executor.TimeoutMS = 10 }, "tools[2].executor.timeout_ms: not used by a remote executor"},

		// http
		{"http with code", func(tk *Toolkit) { tk.Tools[1].Executor.Code = "return 1" }, "tools[1].executor.code: not used by a http executor"},
		{"http bad method", func(tk *Toolkit) { tk.Tools[1].Executor.Method = "TRACE" }, `tools[1].executor.method: "TRACE" is not one of GET, POST, PUT, PATCH, DELETE`},
		{"http no url", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "" }, "tools[1].executor.url: required for an http executor"},
		{"http relative url", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "/v1/items" }, "tools[1].executor.url: must be an absolute http:// or https:// URL"},
		{"http ftp url", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "ftp://x.example/a" }, "tools[1].executor.url: must be an absolute http:// or https:// URL"},
		{"http file url", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "file:///etc/passwd" }, "tools[1].executor.url: must be an absolute http:// or https:// URL"},
		{"http userinfo", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://u:p@x.example/a" }, "tools[1].executor.url: credentials in the URL are not allowed; use auth"},
		{"http fragment", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://x.example/a#b" }, "tools[1].executor.url: must not have a #fragment"},
		{"http unknown placeholder", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://x.example/items/{item_id}" }, "tools[1].executor.url: placeholder {item_id} is not a property of input_schema"},
		{"http placeholder in host", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://{id}.example.com/items" }, "tools[1].executor.url: placeholders may appear in the path and query only, not in the host"},
		{"http placeholder in query", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://x.example/items?id={id}" }, ""},
		{"http unbalanced brace", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://x.example/items/{id" }, "tools[1].executor.url: unbalanced { or }"},
		{"http empty placeholder", func(tk *Toolkit) { tk.Tools[1].Executor.URL = "https://x.example/items/{}" }, "tools[1].executor.url: placeholder {} is not a valid name"},
		{"http unknown query name", func(tk *Toolkit) { tk.Tools[1].Executor.Query = []string{"limit", "page"} }, `tools[1].executor.query[1]: "page" is not a property of input_schema`},
		{"http duplicate query name", func(tk *Toolkit) { tk.Tools[1].Executor.Query = []string{"limit", "limit"} }, `tools[1].executor.query[1]: "limit" is listed twice`},
		{"http bad body", func(tk *Toolkit) { tk.Tools[1].Executor.Body = "json" }, `tools[1].executor.body: "json" is not "input" or empty`},
		{"http GET with body", func(tk *Toolkit) { tk.Tools[1].Executor.Method = "get" }, "tools[1].executor.body: a GET request carries no body; use query, or another method"},
		{"http bad header name", func(tk *Toolkit) { tk.Tools[1].Executor.Headers = map[string]string{"X Bad": "1"} }, `tools[1].executor.headers["X Bad"]: not a valid header name`},
		{"http header injection", func(tk *Toolkit) { tk.Tools[1].Executor.Headers = map[string]string{"X-A": "1\r\nX-B: 2"} }, `tools[1].executor.headers["X-A"]: the value must be at most 8192 bytes with no control characters`},
		{"http Host header", func(tk *Toolkit) { tk.Tools[1].Executor.Headers = map[string]string{"host": "internal"} }, `tools[1].executor.headers["host"]: set by the server, cannot be configured`},
		{"http Authorization with auth", func(tk *Toolkit) { tk.Tools[1].Executor.Headers = map[string]string{"authorization": "Basic x"} }, `tools[1].executor.headers["authorization"]: auth sets the Authorization header`},
		{"http Authorization without auth", func(tk *Toolkit) {
			tk.Tools[1].Executor.Auth = nil
			tk.Tools[1].Executor.Headers = map[string]string{"Authorization": "Basic x"}
		}, ""},
		{"http header duplicated by case", func(tk *Toolkit) { tk.Tools[1].Executor.Headers = map[string]string{"Accept": "a", "accept": "b"} }, `tools[1].executor.headers["accept"]: given twice (header names are case-insensitive)`},

		// http auth
		{"auth without type", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Secret: "x"} }, "tools[1].executor.auth.type: required, one of oauth2, bearer, header"},
		{"auth bad type", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: "basic"} }, `tools[1].executor.auth.type: "basic" is not one of oauth2, bearer, header`},
		{"bearer without secret", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthBearer} }, "tools[1].executor.auth.secret: required for auth type bearer (secrets are never returned, so every write must include it)"},
		{"bearer already sealed", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthBearer, SealedSecret: "sealed"} }, ""},
		{"bearer with name", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthBearer, Name: "X", Secret: "s"} }, "tools[1].executor.auth.name: only for auth type header"},
		{"bearer secret with newline", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthBearer, Secret: "a\nb"} }, "tools[1].executor.auth.secret: must be at most 8192 bytes with no control characters"},
		{"header auth", func(tk *Toolkit) {
			tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthHeader, Name: "X-API-Key", Secret: "s"}
		}, ""},
		{"header auth without name", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthHeader, Secret: "s"} }, "tools[1].executor.auth.name: required for auth type header, and must be a valid header name"},
		{"header auth on Host", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthHeader, Name: "Host", Secret: "s"} }, `tools[1].executor.auth.name: "Host" is set by the server, cannot carry a secret`},
		{"header auth without secret", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthHeader, Name: "X-Key"} }, "tools[1].executor.auth.secret: required for auth type header (secrets are never returned, so every write must include it)"},
		{"header auth clashes with a header", func(tk *Toolkit) {
			tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthHeader, Name: "X-Key", Secret: "s"}
			tk.Tools[1].Executor.Headers = map[string]string{"x-key": "static"}
		}, `tools[1].executor.headers["x-key"]: auth sets this header`},
		{"oauth2", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthOAuth2, Platform: "hubspot"} }, ""},
		{"oauth2 without platform", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthOAuth2} }, "tools[1].executor.auth.platform: required for oauth2, and must match ^[a-z][a-z0-9_]{0,62}$"},
		{"oauth2 bad platform", func(tk *Toolkit) { tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthOAuth2, Platform: "Hub Spot"} }, "tools[1].executor.auth.platform: required for oauth2, and must match ^[a-z][a-z0-9_]{0,62}$"},
		{"oauth2 with secret", func(tk *Toolkit) {
			tk.Tools[1].Executor.Auth = &HTTPAuth{Type: AuthOAuth2, Platform: "hubspot", Secret: "s"}
		}, "tools[1].executor.auth.secret: not used by oauth2 (the end user's token is sent)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tk := validToolkit()
			tt.mutate(tk)
			err := validateToolkit(tk)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Kind != KindInvalid || e.Code != "invalid_toolkit" {
				t.Errorf("kind, code = %v, %q; want invalid, invalid_toolkit", e.Kind, e.Code)
			}
			if diff := cmp.Diff(tt.want, e.Message); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateToolkitDefaults(t *testing.T) {
	t.Parallel()
	tk := validToolkit()
	tk.Tools = nil
	tk.Tools = append(tk.Tools, Tool{
		Name:        "list",
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Executor:    Executor{Kind: ExecutorHTTP, Method: "", URL: "https://api.example.com/items"},
	}, Tool{
		Name:        "put",
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Executor:    Executor{Kind: ExecutorHTTP, Method: "put", URL: "https://api.example.com/items"},
	})
	if err := validateToolkit(tk); err != nil {
		t.Fatal(err)
	}
	if got := []string{tk.Tools[0].Executor.Method, tk.Tools[1].Executor.Method}; !cmp.Equal(got, []string{"GET", "PUT"}) {
		t.Errorf("methods = %v, want the default GET and PUT in upper case", got)
	}

	empty := &Toolkit{ID: "empty", Name: "Empty"}
	if err := validateToolkit(empty); err != nil {
		t.Fatal(err)
	}
	if empty.Tools == nil {
		t.Error("tools left nil; want an empty slice so it encodes as []")
	}
}

func validPlatform() *Platform {
	return &Platform{
		ID:           "hubspot",
		Name:         "HubSpot",
		AuthURL:      "https://app.hubspot.com/oauth/authorize",
		TokenURL:     "https://api.hubapi.com/oauth/v1/token",
		ClientID:     "client-1",
		ClientSecret: "secret-1",
		Scopes:       []string{"crm.objects.contacts.read"},
		AuthParams:   map[string]string{"access_type": "offline"},
		UserinfoURL:  "https://api.hubapi.com/oauth/v1/access-tokens/{access_token}",
	}
}

func TestValidatePlatform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(p *Platform)
		want   string
	}{
		{"valid", func(*Platform) {}, ""},
		{"no userinfo", func(p *Platform) { p.UserinfoURL = "" }, ""},
		{"basic style", func(p *Platform) { p.TokenAuthStyle = "basic" }, ""},
		{"bad id", func(p *Platform) { p.ID = "hub-spot" }, `id: "hub-spot" does not match ^[a-z][a-z0-9_]{0,62}$`},
		{"no name", func(p *Platform) { p.Name = "" }, "name: required"},
		{"no auth_url", func(p *Platform) { p.AuthURL = "" }, "auth_url: required"},
		{"relative auth_url", func(p *Platform) { p.AuthURL = "/authorize" }, "auth_url: must be an absolute http:// or https:// URL"},
		{"javascript token_url", func(p *Platform) { p.TokenURL = "javascript:alert(1)" }, "token_url: must be an absolute http:// or https:// URL"},
		{"bad userinfo_url", func(p *Platform) { p.UserinfoURL = "ftp://x.example/u" }, "userinfo_url: must be an absolute http:// or https:// URL"},
		{"no client_id", func(p *Platform) { p.ClientID = " " }, "client_id: required"},
		{"no client_secret", func(p *Platform) { p.ClientSecret = "" }, "client_secret: required (it is never returned, so every write must include it)"},
		{"empty scope", func(p *Platform) { p.Scopes = []string{"a", ""} }, "scopes[1]: must be non-empty, at most 256 bytes, without spaces (scopes are joined with spaces)"},
		{"scope with space", func(p *Platform) { p.Scopes = []string{"a b"} }, "scopes[0]: must be non-empty, at most 256 bytes, without spaces (scopes are joined with spaces)"},
		{"reserved auth param", func(p *Platform) { p.AuthParams = map[string]string{"redirect_uri": "https://evil.example"} }, `auth_params["redirect_uri"]: set by the server in every authorization request`},
		{"bad token_auth_style", func(p *Platform) { p.TokenAuthStyle = "header" }, `token_auth_style: "header" is not one of auto, basic, form`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validPlatform()
			tt.mutate(p)
			err := validatePlatform(p)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || e.Code != "invalid_platform" {
				t.Fatalf("err = %#v, want KindInvalid invalid_platform", err)
			}
			if diff := cmp.Diff(tt.want, e.Message); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePlatformDefaults(t *testing.T) {
	t.Parallel()
	p := validPlatform()
	p.Scopes, p.TokenAuthStyle = nil, ""
	if err := validatePlatform(p); err != nil {
		t.Fatal(err)
	}
	if p.TokenAuthStyle != "auto" || p.Scopes == nil {
		t.Errorf("token_auth_style = %q, scopes = %#v; want auto and an empty slice", p.TokenAuthStyle, p.Scopes)
	}
}

func TestSchemaCacheValidate(t *testing.T) {
	t.Parallel()
	tk := &Toolkit{ID: "math", Revision: 1}
	tool := &Tool{Name: "add", InputSchema: json.RawMessage(`{
		"type": "object",
		"properties": {
			"a": {"type": "number"},
			"b": {"type": "number"},
			"n": {"type": "integer", "minimum": 1},
			"c": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"d": {"type": "integer"}}}]},
			"items": {"type": "array", "items": {"type": "object", "required": ["id"]}},
			"mode": {"enum": ["x", "y"]},
			"any": {"description": "untyped: any JSON value"}
		},
		"required": ["a", "b"],
		"additionalProperties": false
	}`)}
	tests := []struct {
		name, args string
		want       string // "" = valid
	}{
		{"valid", `{"a": 1, "b": 2.5}`, ""},
		{"big integer", `{"a": 12345678901234567890123, "b": 2, "n": 12345678901234567890123}`, ""},
		{"integer as float literal", `{"a": 1, "b": 2, "n": 2.0}`, ""},
		{"untyped accepts anything", `{"a": 1, "b": 2, "any": [{"x": null}]}`, ""},
		{"wrong type", `{"a": "x", "b": 2}`, "invalid arguments: a: got string, want number"},
		{"missing and wrong", `{"a": "x"}`, "invalid arguments: missing property 'b'; a: got string, want number"},
		{"not an integer", `{"a": 1, "b": 2, "n": 1.5}`, "invalid arguments: n: got number, want integer"},
		{"below minimum", `{"a": 1, "b": 2, "n": 0}`, "invalid arguments: n: minimum: got 0, want 1"},
		{"anyOf of types", `{"a": 1, "b": 2, "c": 5}`, "invalid arguments: c: got number, want string or object"},
		{"anyOf deeper branch", `{"a": 1, "b": 2, "c": {"d": "x"}}`, "invalid arguments: c.d: got string, want integer"},
		{"array item", `{"a": 1, "b": 2, "items": [{"id": 1}, {}]}`, "invalid arguments: items[1]: missing property 'id'"},
		{"enum", `{"a": 1, "b": 2, "mode": "z"}`, "invalid arguments: mode: value must be one of 'x', 'y'"},
		{"additional property", `{"a": 1, "b": 2, "zz": 1}`, "invalid arguments: additional properties 'zz' not allowed"},
		{"array", `[1, 2]`, "invalid arguments: must be a JSON object, got array"},
		{"string", `"x"`, "invalid arguments: must be a JSON object, got string"},
		{"not JSON", `{"a":`, "invalid arguments: not valid JSON"},
		{"many failures are bounded", `{"a": "x", "b": "y", "n": "z", "mode": 1, "items": 2, "c": 3, "q": 1}`, ""},
	}
	cache := newSchemaCache()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			terr := cache.validate(tk, tool, json.RawMessage(tt.args))
			if tt.name == "many failures are bounded" {
				if terr == nil || !strings.HasSuffix(terr.Message, "; and 2 more") {
					t.Errorf("got %v, want five failures and 'and 2 more'", terr)
				}
				return
			}
			if tt.want == "" {
				if terr != nil {
					t.Fatalf("unexpected tool error: %v", terr)
				}
				return
			}
			if terr == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			want := &ToolError{Code: ToolErrInvalidArguments, Message: tt.want}
			if diff := cmp.Diff(want, terr); diff != "" {
				t.Errorf("tool error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchemaCacheFollowsSchemaChanges(t *testing.T) {
	t.Parallel()
	cache := newSchemaCache()
	tk := &Toolkit{ID: "k"} // same id and revision for both versions
	v1 := &Tool{Name: "t", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"}}}`)}
	v2 := &Tool{Name: "t", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}}}`)}
	args := json.RawMessage(`{"a":"x"}`)
	if terr := cache.validate(tk, v1, args); terr == nil {
		t.Fatal("v1 accepted a string")
	}
	if terr := cache.validate(tk, v2, args); terr != nil {
		t.Fatalf("v2 refused a string: %v (a stale cache entry)", terr)
	}
}

func TestSchemaCacheBounded(t *testing.T) {
	t.Parallel()
	cache := newSchemaCache()
	cache.max = 8
	tool := &Tool{Name: "t", InputSchema: json.RawMessage(`{"type":"object"}`)}
	for i := range 20 {
		if terr := cache.validate(&Toolkit{ID: "k", Revision: int64(i)}, tool, json.RawMessage(`{}`)); terr != nil {
			t.Fatal(terr)
		}
	}
	cache.mu.Lock()
	n := len(cache.entries)
	cache.mu.Unlock()
	if n != 8 {
		t.Errorf("cache holds %d entries, want its bound of 8", n)
	}
}

func TestSchemaCacheConcurrent(t *testing.T) {
	t.Parallel()
	cache := newSchemaCache()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			tk := &Toolkit{ID: "k", Revision: int64(i % 4)}
			tool := &Tool{Name: fmt.Sprintf("t%d", i%3), InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"}},"required":["a"]}`)}
			for range 20 {
				if terr := cache.validate(tk, tool, json.RawMessage(`{"a":1}`)); terr != nil {
					t.Error(terr)
					return
				}
				if terr := cache.validate(tk, tool, json.RawMessage(`{}`)); terr == nil {
					t.Error("missing a accepted")
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSchemaCacheValidate(b *testing.B) {
	cache := newSchemaCache()
	tk := &Toolkit{ID: "math", Revision: 1}
	tool := &validToolkit().Tools[0]
	args := json.RawMessage(`{"a": 1, "b": 2}`)
	for b.Loop() {
		if terr := cache.validate(tk, tool, args); terr != nil {
			b.Fatal(terr)
		}
	}
}
