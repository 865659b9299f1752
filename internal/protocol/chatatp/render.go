package chatatp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// This file renders a toolkit's tools in each provider's format, and
// adapts input schemas where a provider refuses a JSON Schema construct.
//
// openai (Responses API): {"type":"function","name","description","parameters"}
// anthropic:              {"name","description","input_schema"}
// mistralai, openai-chat: {"type":"function","function":{"name","description","parameters"}}
// gemini:                 [{"function_declarations":[{"name","description","parameters"}]}]
//
// Adaptations. For openai, openai-chat, anthropic and mistralai (which all
// take JSON Schema but want a plain object at the top):
//   - the top level is {"type":"object", "properties": {…}} ("properties"
//     is added when missing: OpenAI refuses an object schema without it);
//   - top-level allOf branches are merged into it (their properties and
//     required); top-level anyOf/oneOf branches are merged too, keeping as
//     required only what every branch requires; top-level not, enum, const
//     and if/then/else are dropped (OpenAI and Anthropic refuse these at the
//     top level);
//   - $schema and $comment are dropped at the top level.
// For gemini (an OpenAPI 3.0 subset: no $ref, no combinators, no type
// lists, no additionalProperties):
//   - local $ref (#/$defs/…, #/definitions/…) are inlined, up to a depth of
//     8, past which the value is an object with no properties;
//   - allOf branches are merged; anyOf/oneOf keep their first non-null
//     branch, merged into the schema (a null branch, or "null" in a type
//     list, becomes "nullable": true);
//   - a missing type is inferred (properties → object, items → array,
//     otherwise string: admin-api.md §7 renders untyped parameters as
//     string); a type list keeps its first non-null type;
//   - enum is kept for strings only (other enums move into the
//     description), const becomes a one-value string enum;
//   - kept keywords: type, nullable, description, enum, format (string
//     date-time/enum, number float/double, integer int32/int64),
//     properties, required (only names that are properties), items,
//     minItems, maxItems, minimum, maximum; everything else is dropped;
//   - a tool without parameters has no "parameters" (Gemini refuses an
//     object with no properties at the top).
// Every call's arguments are still validated against the tool's stored
// schema, so an adaptation only changes what the model is told.

// ---- an order-preserving JSON tree ----

type member struct {
	key string
	val any
}

// object is a JSON object in document order. Other values are []any,
// string, json.Number, bool and nil.
type object []member

func (o object) get(k string) (any, bool) {
	for _, m := range o {
		if m.key == k {
			return m.val, true
		}
	}
	return nil, false
}

func (o object) str(k string) string {
	v, _ := o.get(k)
	s, _ := v.(string)
	return s
}

func (o object) set(k string, v any) object {
	for i := range o {
		if o[i].key == k {
			o[i].val = v
			return o
		}
	}
	return append(o, member{k, v})
}

func (o object) without(keys ...string) object {
	out := make(object, 0, len(o))
	for _, m := range o {
		if !slices.Contains(keys, m.key) {
			out = append(out, m)
		}
	}
	return out
}

func parseTree(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return parseValue(dec)
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{k.(string), v})
		}
		_, err := dec.Token()
		return o, err
	case '[':
		a := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

func writeTree(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case object:
		b.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, m.key)
			b.WriteByte(':')
			writeTree(b, m.val)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeTree(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(t.String())
	default:
		writeJSON(b, t)
	}
}

func writeJSON(b *bytes.Buffer, v any) {
	q, _ := json.Marshal(v) // strings, bools and nil always marshal
	b.Write(q)
}

// ---- JSON Schema adaptations ----

// emptyParams is the schema of a tool without one.
func emptyParams() object {
	return object{{"type", "object"}, {"properties", object{}}}
}

// toolSchema parses a tool's input schema; a tool without one (or with one
// that is not an object) takes any object.
func toolSchema(t *toolkit.Tool) object {
	if len(t.InputSchema) == 0 {
		return emptyParams()
	}
	v, err := parseTree(t.InputSchema)
	o, ok := v.(object)
	if err != nil || !ok {
		return emptyParams()
	}
	return o
}

// jsonSchemaParams adapts a schema for the providers that take JSON Schema.
func jsonSchemaParams(s object) object {
	s = s.without("$schema", "$comment", "not", "enum", "const", "if", "then", "else")
	if all, ok := s.get("allOf"); ok {
		s = s.without("allOf")
		for _, br := range asList(all) {
			if bo, ok := br.(object); ok {
				s = mergeProps(s, bo, true)
			}
		}
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		alts, ok := s.get(kw)
		if !ok {
			continue
		}
		s = s.without(kw)
		var common []string
		for i, br := range asList(alts) {
			bo, ok := br.(object)
			if !ok {
				continue
			}
			s = mergeProps(s, bo, false)
			req := stringList(bo, "required")
			if i == 0 {
				common = req
			} else {
				common = slices.DeleteFunc(common, func(n string) bool { return !slices.Contains(req, n) })
			}
		}
		for _, n := range common {
			s = addRequired(s, n)
		}
	}
	s = s.set("type", "object")
	if _, ok := s.get("properties"); !ok {
		s = s.set("properties", object{})
	}
	return s
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func stringList(o object, k string) []string {
	var out []string
	v, _ := o.get(k)
	for _, e := range asList(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// mergeProps adds br's properties to s (s's own win), and br's required
// names when withRequired.
func mergeProps(s, br object, withRequired bool) object {
	props, _ := s.get("properties")
	po, _ := props.(object)
	if bp, ok := br.get("properties"); ok {
		if bpo, ok := bp.(object); ok {
			for _, m := range bpo {
				if _, exists := po.get(m.key); !exists {
					po = append(po, m)
				}
			}
		}
	}
	if po != nil {
		s = s.set("properties", po)
	}
	if withRequired {
		for _, n := range stringList(br, "required") {
			s = addRequired(s, n)
		}
	}
	return s
}

func addRequired(s object, name string) object {
	req := stringList(s, "required")
	if slices.Contains(req, name) {
		return s
	}
	l := make([]any, 0, len(req)+1)
	for _, r := range req {
		l = append(l, r)
	}
	return s.set("required", append(l, name))
}

// maxRefDepth bounds $ref inlining for gemini (recursive schemas).
const maxRefDepth = 8

// geminiConverter turns JSON Schema into Gemini's OpenAPI subset.
type geminiConverter struct {
	root object
}

func (g *geminiConverter) convert(v any, depth int) object {
	s, ok := v.(object)
	if !ok {
		return object{{"type", "string"}} // true, or not a schema: any value
	}
	if ref := s.str("$ref"); ref != "" {
		if depth >= maxRefDepth {
			return object{{"type", "object"}}
		}
		if target := g.resolve(ref); target != nil {
			merged := append(object{}, target...)
			if d := s.str("description"); d != "" {
				merged = merged.set("description", d)
			}
			return g.convert(merged, depth+1)
		}
		return object{{"type", "object"}}
	}
	if all, ok := s.get("allOf"); ok {
		s = s.without("allOf")
		for _, br := range asList(all) {
			if bo, ok := br.(object); ok {
				if ref := bo.str("$ref"); ref != "" && depth < maxRefDepth {
					if t := g.resolve(ref); t != nil {
						bo = t
					}
				}
				for _, m := range bo {
					if m.key == "properties" || m.key == "required" {
						continue
					}
					if _, exists := s.get(m.key); !exists {
						s = append(s, m)
					}
				}
				s = mergeProps(s, bo, true)
			}
		}
	}
	nullable := false
	for _, kw := range []string{"anyOf", "oneOf"} {
		alts, ok := s.get(kw)
		if !ok {
			continue
		}
		s = s.without(kw)
		var pick object
		for _, br := range asList(alts) {
			bo, ok := br.(object)
			if !ok {
				continue
			}
			if bo.str("type") == "null" {
				nullable = true
				continue
			}
			if pick == nil {
				pick = bo
			}
		}
		if pick != nil {
			if ref := pick.str("$ref"); ref != "" && depth < maxRefDepth {
				if target := g.resolve(ref); target != nil {
					pick = target
				}
			}
			for _, m := range pick {
				if m.key == "properties" || m.key == "required" {
					continue
				}
				if _, exists := s.get(m.key); !exists {
					s = append(s, m)
				}
			}
			s = mergeProps(s, pick, true)
		}
	}

	typ := ""
	switch t := mustGet(s, "type").(type) {
	case string:
		typ = t
	case []any:
		for _, e := range t {
			if es, ok := e.(string); ok {
				if es == "null" {
					nullable = true
				} else if typ == "" {
					typ = es
				}
			}
		}
	}
	if typ == "null" {
		typ, nullable = "", true
	}
	if typ == "" {
		_, hasProps := s.get("properties")
		_, hasItems := s.get("items")
		switch {
		case hasProps:
			typ = "object"
		case hasItems:
			typ = "array"
		default:
			typ = "string"
		}
	}
	if !slices.Contains([]string{"string", "number", "integer", "boolean", "array", "object"}, typ) {
		typ = "string"
	}

	out := object{{"type", typ}}
	if nullable {
		out = append(out, member{"nullable", true})
	}
	desc := s.str("description")
	enum, hasEnum := s.get("enum")
	if c, ok := s.get("const"); ok && !hasEnum {
		enum, hasEnum = []any{c}, true
	}
	if hasEnum {
		if strs, ok := allStrings(enum); ok && typ == "string" {
			out = append(out, member{"enum", strs})
		} else {
			var parts []string
			for _, e := range asList(enum) {
				var b bytes.Buffer
				writeTree(&b, e)
				parts = append(parts, b.String())
			}
			desc = strings.TrimSpace(desc + " (one of: " + strings.Join(parts, ", ") + ")")
		}
	}
	if desc != "" {
		out = append(out, member{"description", desc})
	}
	if f := s.str("format"); f != "" {
		switch {
		case typ == "string" && (f == "date-time" || f == "enum"),
			typ == "number" && (f == "float" || f == "double"),
			typ == "integer" && (f == "int32" || f == "int64"):
			out = append(out, member{"format", f})
		}
	}
	switch typ {
	case "object":
		if props, ok := s.get("properties"); ok {
			if po, ok := props.(object); ok && len(po) > 0 {
				conv := make(object, 0, len(po))
				for _, m := range po {
					conv = append(conv, member{m.key, g.convert(m.val, depth+1)})
				}
				out = append(out, member{"properties", conv})
				var req []any
				for _, n := range stringList(s, "required") {
					if _, ok := po.get(n); ok {
						req = append(req, n)
					}
				}
				if len(req) > 0 {
					out = append(out, member{"required", req})
				}
			}
		}
	case "array":
		items, ok := s.get("items")
		if !ok {
			items = object{}
		}
		out = append(out, member{"items", g.convert(items, depth+1)})
		for _, k := range []string{"minItems", "maxItems"} {
			if v, ok := s.get(k); ok {
				out = append(out, member{k, v})
			}
		}
	case "number", "integer":
		for _, k := range []string{"minimum", "maximum"} {
			if v, ok := s.get(k); ok {
				out = append(out, member{k, v})
			}
		}
	}
	return out
}

func mustGet(o object, k string) any {
	v, _ := o.get(k)
	return v
}

func allStrings(v any) ([]any, bool) {
	l := asList(v)
	if len(l) == 0 {
		return nil, false
	}
	for _, e := range l {
		if _, ok := e.(string); !ok {
			return nil, false
		}
	}
	return l, true
}

// resolve finds a local reference: #/$defs/x, #/definitions/x, or any
// JSON pointer into the root schema.
func (g *geminiConverter) resolve(ref string) object {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = g.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		o, ok := cur.(object)
		if !ok {
			return nil
		}
		if cur, ok = o.get(tok); !ok {
			return nil
		}
	}
	o, _ := cur.(object)
	return o
}

// ---- rendering per provider ----

// renderTools renders every tool of tk for provider as a JSON array.
func renderTools(tk *toolkit.Toolkit, provider string) []byte {
	var b bytes.Buffer
	if provider == providerGemini {
		if len(tk.Tools) == 0 {
			return []byte("[]")
		}
		b.WriteString(`[{"function_declarations":[`)
	} else {
		b.WriteByte('[')
	}
	for i := range tk.Tools {
		t := &tk.Tools[i]
		if i > 0 {
			b.WriteByte(',')
		}
		switch provider {
		case providerOpenAI:
			b.WriteString(`{"type":"function","name":`)
			writeJSON(&b, t.Name)
			b.WriteString(`,"description":`)
			writeJSON(&b, t.Description)
			b.WriteString(`,"parameters":`)
			writeTree(&b, jsonSchemaParams(toolSchema(t)))
			b.WriteByte('}')
		case providerAnthropic:
			b.WriteString(`{"name":`)
			writeJSON(&b, t.Name)
			b.WriteString(`,"description":`)
			writeJSON(&b, t.Description)
			b.WriteString(`,"input_schema":`)
			writeTree(&b, jsonSchemaParams(toolSchema(t)))
			b.WriteByte('}')
		case providerMistral, providerOpenAIChat:
			b.WriteString(`{"type":"function","function":{"name":`)
			writeJSON(&b, t.Name)
			b.WriteString(`,"description":`)
			writeJSON(&b, t.Description)
			b.WriteString(`,"parameters":`)
			writeTree(&b, jsonSchemaParams(toolSchema(t)))
			b.WriteString(`}}`)
		case providerGemini:
			desc := t.Description
			if desc == "" {
				desc = t.Name // Gemini asks for a description
			}
			b.WriteString(`{"name":`)
			writeJSON(&b, t.Name)
			b.WriteString(`,"description":`)
			writeJSON(&b, desc)
			root := toolSchema(t)
			params := (&geminiConverter{root: root}).convert(root, 0)
			if _, ok := params.get("properties"); ok {
				b.WriteString(`,"parameters":`)
				writeTree(&b, params)
			}
			b.WriteByte('}')
		}
	}
	if provider == providerGemini {
		b.WriteString(`]}]`)
	} else {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// renderHead renders the payload fields of a context that depend on the
// toolkit and provider only, without the closing brace.
func renderHead(tk *toolkit.Toolkit, provider string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"toolkit_id":`)
	writeJSON(&b, tk.ID)
	b.WriteString(`,"toolkit_name":`)
	writeJSON(&b, tk.Name)
	b.WriteString(`,"caption":`)
	writeJSON(&b, toolkit.Caption(tk.Description))
	b.WriteString(`,"description":`)
	writeJSON(&b, tk.Description)
	b.WriteString(`,"provider":`)
	writeJSON(&b, provider)
	b.WriteString(`,"instructions":`)
	writeJSON(&b, tk.Instructions)
	return b.Bytes()
}

// rendered is a toolkit's context for one provider, minus the request's
// own fields (request_id, user_prompt).
type rendered struct {
	head  []byte
	tools []byte
}

type renderKey struct {
	id       string
	version  toolkit.Version
	provider string
}

// maxRendered bounds the render cache; past it the cache starts afresh.
const maxRendered = 1024

// renderCache keeps renderings per toolkit version and provider: a context
// for an unchanged toolkit costs a copy, not a rendering. Safe for
// concurrent use.
type renderCache struct {
	mu sync.Mutex
	m  map[renderKey]*rendered
}

func newRenderCache() *renderCache { return &renderCache{m: map[renderKey]*rendered{}} }

func (c *renderCache) get(tk *toolkit.Toolkit, provider string) *rendered {
	k := renderKey{tk.ID, tk.Version(), provider}
	c.mu.Lock()
	r, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return r
	}
	r = &rendered{head: renderHead(tk, provider), tools: renderTools(tk, provider)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxRendered {
		clear(c.m)
	}
	for old := range c.m { // older versions of the toolkit are dead
		if old.id == k.id && old.version != k.version {
			delete(c.m, old)
		}
	}
	c.m[k] = r
	return r
}
