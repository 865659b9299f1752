package toolkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/atp-server/atp-server/internal/sandbox"
)

// Caps on what one toolkit may hold. They keep a single admin write (and
// every later read and tool listing) bounded; none is near what a real
// toolkit needs.
const (
	maxNameChars         = 200
	maxDescriptionChars  = 10_000
	maxInstructionsChars = 100_000
	maxTools             = 1000
	maxSchemaBytes       = 256 << 10
	maxCodeBytes         = 256 << 10
	maxTimeoutMS         = 300_000
	maxURLBytes          = 2048
	maxQueryParams       = 100
	maxHeaders           = 50
	maxHeaderValueBytes  = 8 << 10
	maxSecretBytes       = 8 << 10
	maxClientIDBytes     = 1024
	maxScopes            = 100
	maxScopeBytes        = 256
	maxAuthParams        = 50
	maxAuthParamBytes    = 2048
)

// placeholderPattern finds {name} in an http tool's URL. internal/httptool
// fills them with the same syntax.
var placeholderPattern = regexp.MustCompile(`\{([^{}]*)\}`)

var placeholderNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

func invalidToolkit(format string, args ...any) *Error {
	return Errorf(KindInvalid, "invalid_toolkit", format, args...)
}

// validateToolkit checks tk before it is stored and fills defaults (an
// empty tools list, GET for an http tool without a method). Every error is
// KindInvalid with code invalid_toolkit and a message that starts with the
// path of the offending field, e.g. "tools[1].input_schema.properties.a: …".
func validateToolkit(tk *Toolkit) error {
	if !toolkitIDPattern.MatchString(tk.ID) {
		return invalidToolkit("id: %q does not match %s", tk.ID, toolkitIDPattern)
	}
	if err := checkName("name", tk.Name, invalidToolkit); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(tk.Description); n > maxDescriptionChars {
		return invalidToolkit("description: %d characters, at most %d", n, maxDescriptionChars)
	}
	if n := utf8.RuneCountInString(tk.Instructions); n > maxInstructionsChars {
		return invalidToolkit("instructions: %d characters, at most %d", n, maxInstructionsChars)
	}
	if tk.Tools == nil {
		tk.Tools = []Tool{}
	}
	if len(tk.Tools) > maxTools {
		return invalidToolkit("tools: %d tools, at most %d", len(tk.Tools), maxTools)
	}
	seen := make(map[string]int, len(tk.Tools))
	for i := range tk.Tools {
		at := fmt.Sprintf("tools[%d]", i)
		if err := validateTool(&tk.Tools[i], at); err != nil {
			return err
		}
		if j, dup := seen[tk.Tools[i].Name]; dup {
			return invalidToolkit("%s.name: %q is already the name of tools[%d]", at, tk.Tools[i].Name, j)
		}
		seen[tk.Tools[i].Name] = i
	}
	return nil
}

func checkName(field, name string, mk func(string, ...any) *Error) error {
	if strings.TrimSpace(name) == "" {
		return mk("%s: required", field)
	}
	if n := utf8.RuneCountInString(name); n > maxNameChars {
		return mk("%s: %d characters, at most %d", field, n, maxNameChars)
	}
	return nil
}

func validateTool(t *Tool, at string) error {
	if !toolNamePattern.MatchString(t.Name) {
		return invalidToolkit("%s.name: %q does not match %s", at, t.Name, toolNamePattern)
	}
	if n := utf8.RuneCountInString(t.Description); n > maxDescriptionChars {
		return invalidToolkit("%s.description: %d characters, at most %d", at, n, maxDescriptionChars)
	}

	if isAbsent(t.InputSchema) {
		return invalidToolkit("%s.input_schema: required (a JSON Schema with \"type\": \"object\")", at)
	}
	doc, err := checkSchema(t.InputSchema, at+".input_schema")
	if err != nil {
		return err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return invalidToolkit("%s.input_schema: must be a JSON object", at)
	}
	if typ, _ := obj["type"].(string); typ != "object" {
		return invalidToolkit("%s.input_schema.type: must be \"object\" (tool arguments are a JSON object)", at)
	}
	if !isAbsent(t.OutputSchema) {
		// The metaschema already limits the root to an object or a boolean.
		if _, err := checkSchema(t.OutputSchema, at+".output_schema"); err != nil {
			return err
		}
	}

	if a := t.Annotations; a != nil {
		switch a.OperationType {
		case "", "read", "write", "destructive":
		default:
			return invalidToolkit("%s.annotations.operation_type: %q is not one of read, write, destructive", at, a.OperationType)
		}
		switch a.Sensitivity {
		case "", "public", "internal", "sensitive":
		default:
			return invalidToolkit("%s.annotations.sensitivity: %q is not one of public, internal, sensitive", at, a.Sensitivity)
		}
	}

	props := map[string]bool{}
	if p, ok := obj["properties"].(map[string]any); ok {
		for name := range p {
			props[name] = true
		}
	}
	return validateExecutor(&t.Executor, props, at+".executor")
}

// isAbsent reports whether a raw JSON field was left out (or null).
func isAbsent(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

func validateExecutor(x *Executor, props map[string]bool, at string) error {
	if x.TimeoutMS < 0 || x.TimeoutMS > maxTimeoutMS {
		return invalidToolkit("%s.timeout_ms: %d is outside 0..%d", at, x.TimeoutMS, maxTimeoutMS)
	}
	// Fields of another kind are refused rather than ignored: a tool that
	// says both code and url was most likely written by mistake.
	notFor := func(field, kind string) error {
		return invalidToolkit("%s.%s: not used by a %s executor", at, field, kind)
	}
	httpFields := func(kind string) error {
		switch {
		case x.Method != "":
			return notFor("method", kind)
		case x.URL != "":
			return notFor("url", kind)
		case len(x.Query) > 0:
			return notFor("query", kind)
		case len(x.Headers) > 0:
			return notFor("headers", kind)
		case x.Body != "":
			return notFor("body", kind)
		case x.Auth != nil:
			return notFor("auth", kind)
		}
		return nil
	}

	switch x.Kind {
	case ExecutorJS:
		if err := httpFields("js"); err != nil {
			return err
		}
		if strings.TrimSpace(x.Code) == "" {
			return invalidToolkit("%s.code: required for a js executor", at)
		}
		if len(x.Code) > maxCodeBytes {
			return invalidToolkit("%s.code: %d bytes, at most %d", at, len(x.Code), maxCodeBytes)
		}
		if err := sandbox.CheckSyntax(x.Code); err != nil {
			var serr *sandbox.Error
			if errors.As(err, &serr) {
				return invalidToolkit("%s.code: %s", at, serr.Message)
			}
			return Wrap(err, KindInternal, "internal", "could not check the code")
		}
		return nil
	case ExecutorHTTP:
		if x.Code != "" {
			return notFor("code", "http")
		}
		return validateHTTPExecutor(x, props, at)
	case ExecutorRemote:
		if x.Code != "" {
			return notFor("code", "remote")
		}
		// A remote tool may act for end users on a platform: the token is
		// handed to the toolkit process as the call's auth_token.
		auth := x.Auth
		x.Auth = nil
		err := httpFields("remote")
		x.Auth = auth
		if err != nil {
			return err
		}
		if auth != nil {
			if auth.Type != AuthOAuth2 {
				return invalidToolkit("%s.auth.type: a remote executor takes only oauth2 auth (the end user's token is passed as auth_token)", at)
			}
			if err := validateHTTPAuth(auth, at+".auth"); err != nil {
				return err
			}
		}
		if x.TimeoutMS != 0 {
			return notFor("timeout_ms", "remote")
		}
		return nil
	case "":
		return invalidToolkit("%s.kind: required, one of js, http, remote", at)
	default:
		return invalidToolkit("%s.kind: %q is not one of js, http, remote", at, x.Kind)
	}
}

func validateHTTPExecutor(x *Executor, props map[string]bool, at string) error {
	x.Method = strings.ToUpper(strings.TrimSpace(x.Method))
	if x.Method == "" {
		x.Method = "GET"
	}
	switch x.Method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		return invalidToolkit("%s.method: %q is not one of GET, POST, PUT, PATCH, DELETE", at, x.Method)
	}
	if err := validateURLTemplate(x.URL, props, at+".url"); err != nil {
		return err
	}

	if len(x.Query) > maxQueryParams {
		return invalidToolkit("%s.query: %d names, at most %d", at, len(x.Query), maxQueryParams)
	}
	for i, name := range x.Query {
		if !props[name] {
			return invalidToolkit("%s.query[%d]: %q is not a property of input_schema", at, i, name)
		}
		if slices.Index(x.Query, name) != i {
			return invalidToolkit("%s.query[%d]: %q is listed twice", at, i, name)
		}
	}

	switch x.Body {
	case "":
	case "input":
		if x.Method == "GET" {
			return invalidToolkit("%s.body: a GET request carries no body; use query, or another method", at)
		}
	default:
		return invalidToolkit("%s.body: %q is not \"input\" or empty", at, x.Body)
	}

	if x.Auth != nil {
		if err := validateHTTPAuth(x.Auth, at+".auth"); err != nil {
			return err
		}
	}

	if len(x.Headers) > maxHeaders {
		return invalidToolkit("%s.headers: %d headers, at most %d", at, len(x.Headers), maxHeaders)
	}
	names := make([]string, 0, len(x.Headers))
	for name := range x.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic errors
	for i, name := range names {
		field := fmt.Sprintf("%s.headers[%q]", at, name)
		if !isToken(name) {
			return invalidToolkit("%s: not a valid header name", field)
		}
		if i > 0 && strings.EqualFold(names[i-1], name) {
			return invalidToolkit("%s: given twice (header names are case-insensitive)", field)
		}
		if isReservedHeader(name) {
			return invalidToolkit("%s: set by the server, cannot be configured", field)
		}
		if a := x.Auth; a != nil {
			if (a.Type == AuthBearer || a.Type == AuthOAuth2) && strings.EqualFold(name, "Authorization") {
				return invalidToolkit("%s: auth sets the Authorization header", field)
			}
			if a.Type == AuthHeader && strings.EqualFold(name, a.Name) {
				return invalidToolkit("%s: auth sets this header", field)
			}
		}
		if v := x.Headers[name]; len(v) > maxHeaderValueBytes || !isHeaderValue(v) {
			return invalidToolkit("%s: the value must be at most %d bytes with no control characters", field, maxHeaderValueBytes)
		}
	}
	return nil
}

// validateURLTemplate checks an absolute http(s) URL whose path and query
// may hold {name} placeholders naming input properties. The host may not:
// arguments must not choose where a request goes.
func validateURLTemplate(tmpl string, props map[string]bool, at string) error {
	if tmpl == "" {
		return invalidToolkit("%s: required for an http executor", at)
	}
	if len(tmpl) > maxURLBytes {
		return invalidToolkit("%s: %d bytes, at most %d", at, len(tmpl), maxURLBytes)
	}
	const sentinel = "atpplaceholder"
	for _, m := range placeholderPattern.FindAllStringSubmatch(tmpl, -1) {
		name := m[1]
		if !placeholderNamePattern.MatchString(name) {
			return invalidToolkit("%s: placeholder {%s} is not a valid name", at, name)
		}
		if !props[name] {
			return invalidToolkit("%s: placeholder {%s} is not a property of input_schema", at, name)
		}
	}
	filled := placeholderPattern.ReplaceAllString(tmpl, sentinel)
	if strings.ContainsAny(filled, "{}") {
		return invalidToolkit("%s: unbalanced { or }", at)
	}
	u, err := url.Parse(filled)
	if err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidToolkit("%s: must be an absolute http:// or https:// URL", at)
	}
	if strings.Contains(strings.ToLower(u.Host), sentinel) {
		return invalidToolkit("%s: placeholders may appear in the path and query only, not in the host", at)
	}
	if u.User != nil {
		return invalidToolkit("%s: credentials in the URL are not allowed; use auth", at)
	}
	if u.Fragment != "" || strings.Contains(filled, "#") {
		return invalidToolkit("%s: must not have a #fragment", at)
	}
	return nil
}

func validateHTTPAuth(a *HTTPAuth, at string) error {
	hasSecret := a.Secret != "" || a.SealedSecret != ""
	switch a.Type {
	case AuthOAuth2:
		if !toolkitIDPattern.MatchString(a.Platform) {
			return invalidToolkit("%s.platform: required for oauth2, and must match %s", at, toolkitIDPattern)
		}
		if a.Name != "" {
			return invalidToolkit("%s.name: only for auth type header", at)
		}
		if a.Secret != "" {
			return invalidToolkit("%s.secret: not used by oauth2 (the end user's token is sent)", at)
		}
		return nil
	case AuthBearer:
		if a.Platform != "" {
			return invalidToolkit("%s.platform: only for auth type oauth2", at)
		}
		if a.Name != "" {
			return invalidToolkit("%s.name: only for auth type header", at)
		}
	case AuthHeader:
		if a.Platform != "" {
			return invalidToolkit("%s.platform: only for auth type oauth2", at)
		}
		if !isToken(a.Name) {
			return invalidToolkit("%s.name: required for auth type header, and must be a valid header name", at)
		}
		if isReservedHeader(a.Name) {
			return invalidToolkit("%s.name: %q is set by the server, cannot carry a secret", at, a.Name)
		}
	case "":
		return invalidToolkit("%s.type: required, one of oauth2, bearer, header", at)
	default:
		return invalidToolkit("%s.type: %q is not one of oauth2, bearer, header", at, a.Type)
	}
	if !hasSecret {
		// Secrets are write-only: a PUT must send them again.
		return invalidToolkit("%s.secret: required for auth type %s (secrets are never returned, so every write must include it)", at, a.Type)
	}
	if len(a.Secret) > maxSecretBytes || !isHeaderValue(a.Secret) {
		return invalidToolkit("%s.secret: must be at most %d bytes with no control characters", at, maxSecretBytes)
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (a valid header name).
func isToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHeaderValue refuses control characters (CR and LF would split headers).
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isReservedHeader names headers that the HTTP client owns: framing,
// connection management and routing. Setting them would break the request
// or be silently ignored.
func isReservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
		"te", "trailer", "proxy-connection", "proxy-authorization", "expect":
		return true
	}
	return false
}

// ---- JSON Schema ----

// schemaBaseURL names a schema while it is compiled. References that leave
// the document resolve against it and are refused by noRemoteLoader.
const schemaBaseURL = "https://schema.atp.invalid/schema.json"

// schemaPrinter renders the library's messages; a Printer is safe for
// concurrent use (the library shares one itself).
var schemaPrinter = message.NewPrinter(language.English)

// noRemoteLoader refuses every $ref or $schema outside the document. The
// library's default loader reads file:// URLs, which would let an admin
// write read the server's files.
type noRemoteLoader struct{}

func (noRemoteLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("only references inside the schema (#…) are supported, not %q", u)
}

// compileSchema decodes raw and compiles it (draft 2020-12 unless $schema
// says otherwise), checking it against its metaschema.
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noRemoteLoader{})
	if err := c.AddResource(schemaBaseURL, doc); err != nil {
		return nil, doc, err
	}
	sch, err := c.Compile(schemaBaseURL)
	return sch, doc, err
}

// checkSchema compiles a tool schema and turns a failure into an
// invalid_toolkit error naming the offending keyword, e.g.
// "tools[0].input_schema.properties.a.type: value must be one of …".
func checkSchema(raw json.RawMessage, at string) (any, error) {
	if len(raw) > maxSchemaBytes {
		return nil, invalidToolkit("%s: %d bytes, at most %d", at, len(raw), maxSchemaBytes)
	}
	_, doc, err := compileSchema(raw)
	if err == nil {
		return doc, nil
	}
	if doc == nil {
		return nil, invalidToolkit("%s: not valid JSON", at)
	}
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		issues := schemaIssues(ve, doc)
		if len(issues) > 0 {
			return nil, invalidToolkit("%s: %s", joinPath(at, issues[0].path), issues[0].msg)
		}
	}
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return nil, invalidToolkit("%s: cannot resolve %q: only references inside the schema (#/…) are supported", at, le.URL)
	}
	var rxe *jsonschema.InvalidRegexError
	if errors.As(err, &rxe) {
		return nil, invalidToolkit("%s: invalid regular expression %q: %v", joinPath(at, pathOfURL(rxe.URL, doc)), rxe.Regex, rxe.Err)
	}
	// Anything else (unresolvable $ref, bad $id, …): the library's message,
	// minus the internal base URL.
	msg := strings.ReplaceAll(err.Error(), schemaBaseURL, "")
	return nil, invalidToolkit("%s: %s", at, msg)
}

func joinPath(at, sub string) string {
	switch {
	case sub == "":
		return at
	case strings.HasPrefix(sub, "["):
		return at + sub
	default:
		return at + "." + sub
	}
}

// pathOfURL renders the fragment of a schema location URL as a path.
func pathOfURL(u string, doc any) string {
	_, frag, _ := strings.Cut(u, "#")
	frag, err := url.PathUnescape(frag)
	if err != nil || frag == "" {
		return ""
	}
	var tokens []string
	for _, t := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		tokens = append(tokens, strings.NewReplacer("~1", "/", "~0", "~").Replace(t))
	}
	return renderPath(doc, tokens)
}

type issue struct {
	path string // rendered instance location, "" for the root
	msg  string
}

// schemaIssues flattens a validation error tree into the concrete failures
// under it, in document order. Under anyOf/oneOf only the branch that got
// deepest into the instance is kept: listing why every alternative failed
// buries the one the author meant.
func schemaIssues(ve *jsonschema.ValidationError, doc any) []issue {
	var out []issue
	for _, l := range leaves(ve) {
		out = append(out, issue{path: renderPath(doc, l.InstanceLocation), msg: leafMessage(l)})
	}
	return out
}

func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		if merged := mergeTypeAlternatives(ve); merged != nil {
			return []*jsonschema.ValidationError{merged}
		}
		var best []*jsonschema.ValidationError
		bestDepth := -1
		for _, c := range ve.Causes {
			ls := leaves(c)
			d := 0
			for _, l := range ls {
				d = max(d, len(l.InstanceLocation))
			}
			if d > bestDepth {
				best, bestDepth = ls, d
			}
		}
		if best == nil {
			return []*jsonschema.ValidationError{ve}
		}
		return best
	}
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// mergeTypeAlternatives handles the common anyOf/oneOf of types
// ({"anyOf": [{"type": "string"}, {"type": "object"}]}): when every
// alternative failed only on its type, at the value itself, the one failure
// is "got number, want string or object".
func mergeTypeAlternatives(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return nil
	}
	merged := &kind.Type{}
	for _, c := range ve.Causes {
		ls := leaves(c)
		if len(ls) != 1 || !slices.Equal(ls[0].InstanceLocation, ve.InstanceLocation) {
			return nil
		}
		t, ok := ls[0].ErrorKind.(*kind.Type)
		if !ok {
			return nil
		}
		merged.Got = t.Got
		for _, w := range t.Want {
			if !slices.Contains(merged.Want, w) {
				merged.Want = append(merged.Want, w)
			}
		}
	}
	return &jsonschema.ValidationError{SchemaURL: ve.SchemaURL, InstanceLocation: ve.InstanceLocation, ErrorKind: merged}
}

func leafMessage(ve *jsonschema.ValidationError) string {
	if _, ok := ve.ErrorKind.(*kind.FalseSchema); ok {
		return "not allowed"
	}
	return ve.ErrorKind.LocalizedString(schemaPrinter)
}

// renderPath renders an instance location as a field path: a.b[0].c.
// Tokens are strings in the library's output, so the instance is walked to
// tell an array index from an object key that happens to be a number.
func renderPath(doc any, tokens []string) string {
	var b strings.Builder
	cur := doc
	for _, tok := range tokens {
		switch v := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				cur = v[i]
			} else {
				cur = nil
			}
			continue
		case map[string]any:
			cur = v[tok]
		default:
			cur = nil
		}
		if isPlainKey(tok) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		} else {
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	return b.String()
}

func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '$' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// ---- argument validation ----

// maxCachedSchemas bounds the schema cache; past it an arbitrary entry is
// evicted, which is enough for a cache whose misses cost one compile.
const maxCachedSchemas = 4096

// maxArgumentIssues bounds how many failures one invalid_arguments error lists.
const maxArgumentIssues = 5

type schemaKey struct {
	toolkit  string
	revision int64
	tool     string
}

type schemaEntry struct {
	raw    []byte // the schema it was compiled from: a hit must match it exactly
	schema *jsonschema.Schema
}

// schemaCache holds compiled input schemas by (toolkit, revision, tool).
// Entries are also checked against the schema bytes, so a caller that does
// not bump Revision (tests, remote registrations) never validates against a
// stale schema. Safe for concurrent use.
type schemaCache struct {
	max     int // entries kept; maxCachedSchemas outside tests
	mu      sync.Mutex
	entries map[schemaKey]schemaEntry
}

func newSchemaCache() *schemaCache {
	return &schemaCache{max: maxCachedSchemas, entries: make(map[schemaKey]schemaEntry)}
}

func (c *schemaCache) schema(tk *Toolkit, tool *Tool) (*jsonschema.Schema, error) {
	key := schemaKey{toolkit: tk.ID, revision: tk.Revision, tool: tool.Name}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, tool.InputSchema) {
		return e.schema, nil
	}
	sch, _, err := compileSchema(tool.InputSchema)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = schemaEntry{raw: bytes.Clone(tool.InputSchema), schema: sch}
	return sch, nil
}

// validate checks call arguments against the tool's input schema. A failure
// is a *ToolError (invalid_arguments) naming each offending field, e.g.
// `invalid arguments: a: got string, want number; missing property "b"`.
func (c *schemaCache) validate(tk *Toolkit, tool *Tool, args json.RawMessage) *ToolError {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return NewToolError(ToolErrInvalidArguments, "invalid arguments: not valid JSON")
	}
	if _, ok := inst.(map[string]any); !ok {
		return NewToolError(ToolErrInvalidArguments, "invalid arguments: must be a JSON object, got %s", jsonTypeName(inst))
	}
	if isAbsent(tool.InputSchema) {
		return nil // remote tools registered without a schema accept any object
	}
	sch, err := c.schema(tk, tool)
	if err != nil {
		// Schemas are checked on write; one that no longer compiles is the
		// server's fault, not the caller's.
		return NewToolError(ToolErrExecution, "the tool's input_schema cannot be compiled: %s", strings.ReplaceAll(err.Error(), schemaBaseURL, ""))
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return NewToolError(ToolErrInvalidArguments, "invalid arguments: %s", strings.ReplaceAll(err.Error(), schemaBaseURL, ""))
	}
	issues := schemaIssues(ve, inst)
	parts := make([]string, 0, min(len(issues), maxArgumentIssues)+1)
	for i, is := range issues {
		if i == maxArgumentIssues {
			parts = append(parts, fmt.Sprintf("and %d more", len(issues)-i))
			break
		}
		if is.path == "" {
			parts = append(parts, is.msg)
		} else {
			parts = append(parts, is.path+": "+is.msg)
		}
	}
	return NewToolError(ToolErrInvalidArguments, "invalid arguments: %s", strings.Join(parts, "; "))
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	default:
		return "object"
	}
}

// ---- platforms ----

func invalidPlatform(format string, args ...any) *Error {
	return Errorf(KindInvalid, "invalid_platform", format, args...)
}

// oauthReservedParams are set by the server in every authorization request;
// auth_params may not replace them.
var oauthReservedParams = []string{
	"response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method",
}

// validatePlatform checks p before it is stored and fills defaults
// (token_auth_style "auto", an empty scope list). Errors are KindInvalid with
// code invalid_platform, naming the field.
func validatePlatform(p *Platform) error {
	if !toolkitIDPattern.MatchString(p.ID) {
		return invalidPlatform("id: %q does not match %s", p.ID, toolkitIDPattern)
	}
	if err := checkName("name", p.Name, invalidPlatform); err != nil {
		return err
	}
	for _, f := range []struct {
		field, value string
		required     bool
	}{
		{"auth_url", p.AuthURL, true}, {"token_url", p.TokenURL, true}, {"userinfo_url", p.UserinfoURL, false},
	} {
		if f.value == "" && !f.required {
			continue
		}
		if err := checkHTTPURL(f.value); err != nil {
			return invalidPlatform("%s: %v", f.field, err)
		}
	}
	if strings.TrimSpace(p.ClientID) == "" {
		return invalidPlatform("client_id: required")
	}
	if len(p.ClientID) > maxClientIDBytes || !isHeaderValue(p.ClientID) {
		return invalidPlatform("client_id: at most %d bytes with no control characters", maxClientIDBytes)
	}
	if p.ClientSecret == "" {
		// Write-only, like tool secrets: every PUT sends it again.
		return invalidPlatform("client_secret: required (it is never returned, so every write must include it)")
	}
	if len(p.ClientSecret) > maxSecretBytes {
		return invalidPlatform("client_secret: at most %d bytes", maxSecretBytes)
	}
	if p.Scopes == nil {
		p.Scopes = []string{}
	}
	if len(p.Scopes) > maxScopes {
		return invalidPlatform("scopes: %d scopes, at most %d", len(p.Scopes), maxScopes)
	}
	for i, s := range p.Scopes {
		if s == "" || len(s) > maxScopeBytes || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return invalidPlatform("scopes[%d]: must be non-empty, at most %d bytes, without spaces (scopes are joined with spaces)", i, maxScopeBytes)
		}
	}
	if len(p.AuthParams) > maxAuthParams {
		return invalidPlatform("auth_params: %d parameters, at most %d", len(p.AuthParams), maxAuthParams)
	}
	for k, v := range p.AuthParams {
		if k == "" {
			return invalidPlatform("auth_params: a parameter name is empty")
		}
		if slices.Contains(oauthReservedParams, k) {
			return invalidPlatform("auth_params[%q]: set by the server in every authorization request", k)
		}
		if len(k)+len(v) > maxAuthParamBytes {
			return invalidPlatform("auth_params[%q]: at most %d bytes", k, maxAuthParamBytes)
		}
	}
	switch p.TokenAuthStyle {
	case "":
		p.TokenAuthStyle = "auto"
	case "auto", "basic", "form":
	default:
		return invalidPlatform("token_auth_style: %q is not one of auto, basic, form", p.TokenAuthStyle)
	}
	return nil
}

// checkHTTPURL accepts an absolute http(s) URL with a host.
func checkHTTPURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > maxURLBytes {
		return fmt.Errorf("%d bytes, at most %d", len(s), maxURLBytes)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	return nil
}
