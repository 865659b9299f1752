package monday

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// This file turns JSON Schemas into TypeScript for the LLM-facing texts of
// /api/definitions (§3.2), /api/search signatures and /api/explore
// definitions. The texts are read by models, never parsed by the client, so
// the aim is readable, faithful types rather than byte parity with the
// reference (which maps every object to Record<string, unknown>).

// maxSchemaDepth bounds the nesting rendered; deeper schemas become unknown.
const maxSchemaDepth = 6

// schema is the part of a JSON Schema the renderer reads.
type schema struct {
	Type                 json.RawMessage   `json:"type"`
	Description          string            `json:"description"`
	Properties           json.RawMessage   `json:"properties"`
	Required             []string          `json:"required"`
	Items                json.RawMessage   `json:"items"`
	Enum                 []json.RawMessage `json:"enum"`
	Const                json.RawMessage   `json:"const"`
	AnyOf                []json.RawMessage `json:"anyOf"`
	OneOf                []json.RawMessage `json:"oneOf"`
	AdditionalProperties json.RawMessage   `json:"additionalProperties"`
}

// property is one entry of "properties", in the order it was written: the
// parameter order clients show.
type property struct {
	name     string
	schema   json.RawMessage
	required bool
}

func parseSchema(raw json.RawMessage) (schema, bool) {
	var s schema
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return s, false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, false
	}
	return s, true
}

// types returns the schema's "type" as a list ("string" or ["string","null"]).
func (s schema) types() []string {
	if len(s.Type) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(s.Type, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(s.Type, &many) == nil {
		return many
	}
	return nil
}

// properties lists the schema's properties in document order.
func (s schema) properties() []property {
	if len(s.Properties) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(s.Properties))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	required := make(map[string]bool, len(s.Required))
	for _, r := range s.Required {
		required[r] = true
	}
	var out []property
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out
		}
		out = append(out, property{name: name, schema: raw, required: required[name]})
	}
	return out
}

// tsType renders a schema as a TypeScript type expression.
func tsType(raw json.RawMessage) string { return tsTypeAt(raw, 0) }

func tsTypeAt(raw json.RawMessage, depth int) string {
	if depth > maxSchemaDepth {
		return "unknown"
	}
	s, ok := parseSchema(raw)
	if !ok {
		return "unknown"
	}
	switch {
	case len(s.Const) > 0:
		return tsLiteral(s.Const)
	case len(s.Enum) > 0:
		parts := make([]string, 0, len(s.Enum))
		for _, e := range s.Enum {
			parts = append(parts, tsLiteral(e))
		}
		return union(parts)
	case len(s.AnyOf) > 0 || len(s.OneOf) > 0:
		var parts []string
		for _, sub := range append(append([]json.RawMessage{}, s.AnyOf...), s.OneOf...) {
			parts = append(parts, tsTypeAt(sub, depth+1))
		}
		return union(parts)
	}
	types := s.types()
	if len(types) == 0 {
		if len(s.Properties) > 0 {
			types = []string{"object"}
		} else if len(s.Items) > 0 {
			types = []string{"array"}
		}
	}
	if len(types) == 0 {
		return "unknown"
	}
	parts := make([]string, 0, len(types))
	for _, t := range types {
		parts = append(parts, s.tsOfType(t, depth))
	}
	return union(parts)
}

func (s schema) tsOfType(t string, depth int) string {
	switch t {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "null":
		return "null"
	case "array":
		if len(s.Items) == 0 {
			return "unknown[]"
		}
		item := tsTypeAt(s.Items, depth+1)
		if strings.Contains(item, "|") {
			item = "(" + item + ")"
		}
		return item + "[]"
	case "object":
		props := s.properties()
		if len(props) == 0 {
			if ap, ok := parseSchema(s.AdditionalProperties); ok && (len(ap.types()) > 0 || len(ap.Properties) > 0) {
				return "Record<string, " + tsTypeAt(s.AdditionalProperties, depth+1) + ">"
			}
			return "Record<string, unknown>"
		}
		members := make([]string, 0, len(props))
		for _, p := range props {
			members = append(members, propertyKey(p.name)+optionalMark(p.required)+": "+tsTypeAt(p.schema, depth+1))
		}
		return "{ " + strings.Join(members, "; ") + " }"
	}
	return "unknown"
}

// tsLiteral renders a JSON value as a TypeScript literal type; JSON
// strings, numbers, booleans and null are valid TypeScript literals.
func tsLiteral(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == '{' || raw[0] == '[' {
		return "unknown"
	}
	return string(raw)
}

// union joins types with |, dropping repeats; a union with unknown is unknown.
func union(parts []string) string {
	seen := make(map[string]bool, len(parts))
	out := parts[:0:0]
	for _, p := range parts {
		if p == "unknown" {
			return "unknown"
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return "unknown"
	}
	return strings.Join(out, " | ")
}

func optionalMark(required bool) string {
	if required {
		return ""
	}
	return "?"
}

var identifierPattern = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// propertyKey quotes names that are not identifiers.
func propertyKey(name string) string {
	if identifierPattern.MatchString(name) {
		return name
	}
	b, _ := json.Marshal(name)
	return string(b)
}

// memberAccess is how code reaches a member: .name, or ["name"].
func memberAccess(name string) string {
	if identifierPattern.MatchString(name) {
		return "." + name
	}
	b, _ := json.Marshal(name)
	return "[" + string(b) + "]"
}

// oneLine makes a description fit a one-line comment: newlines become
// spaces, comment terminators are broken, and it is cut at max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "*/", "*\\/")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

// signature is the short form search results show: add({ a: number, b?: number }).
func signature(fn *function) string {
	s, ok := parseSchema(fn.input)
	if !ok {
		return fn.name + "()"
	}
	props := s.properties()
	if len(props) == 0 {
		return fn.name + "()"
	}
	members := make([]string, 0, len(props))
	for _, p := range props {
		members = append(members, propertyKey(p.name)+optionalMark(p.required)+": "+tsType(p.schema))
	}
	return fn.name + "({ " + strings.Join(members, ", ") + " })"
}

// definition is the one-line declaration /api/explore shows for a function.
func definition(g *group, fn *function) string {
	return fmt.Sprintf("async function api%s%s(params: %s): Promise<%s>",
		g.access(), memberAccess(fn.name), tsType(fn.inputOrEmpty()), fn.outputType())
}
