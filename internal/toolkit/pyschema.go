package toolkit

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// This file turns what a ChatATP ToolKitClient registers for a Python
// function (parameter names, required names, the function's source) into
// the JSON Schema of its arguments.
//
// The SDK sends names only. Types come from the annotations in the source:
// str → string, int → integer, float → number, bool → boolean, list (and
// List[…], tuple, set, Sequence[…]) → array, dict (and Dict[…], Mapping[…])
// → object, Optional[X] / X | None → X or null, Literal[…] → enum. A
// parameter without an annotation, or with one outside that list, accepts
// any value: its schema has a description and no type (admin-api.md §7).
// Descriptions come from the docstring (Google "Args:", Sphinx ":param x:"
// or NumPy "Parameters" sections); an undocumented parameter is described
// by its name. When the signature was read and has no **kwargs, extra
// arguments are refused (additionalProperties: false), since Python would
// raise a TypeError for them anyway.
//
// The parser is a small tokenizer, not a Python parser: it finds the first
// def at any nesting level outside strings and comments and reads its
// parameter list. Anything it cannot read leaves the parameter untyped.

// pyParam is one parameter of a parsed signature.
type pyParam struct {
	name       string
	annotation string
}

// pySignature is what InferPythonSchema reads from the source.
type pySignature struct {
	params    []pyParam
	hasKwargs bool
	docstring string
}

var pyIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// InferPythonSchema returns the input_schema of a function registered with
// params (in order), required (names), and source (the function's source,
// decorators included; may be empty). Names in required but not in params
// are added after them. The result always is a valid JSON Schema object.
func InferPythonSchema(params, required []string, source string) json.RawMessage {
	sig, ok := parsePySignature(source)
	var docs map[string]string
	if ok {
		docs = parseDocstringParams(sig.docstring)
	}
	annotations := map[string]string{}
	for _, p := range sig.params {
		annotations[p.name] = p.annotation
	}

	names := make([]string, 0, len(params)+len(required))
	seen := map[string]bool{}
	for _, list := range [][]string{params, required} {
		for _, n := range list {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}

	var b bytes.Buffer
	b.WriteString(`{"type":"object","properties":{`)
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, n)
		b.WriteByte(':')
		desc := docs[n]
		if desc == "" {
			desc = n
		}
		writePyType(&b, annotations[n], desc, 0)
	}
	b.WriteByte('}')
	req := make([]string, 0, len(required))
	reqSeen := map[string]bool{}
	for _, n := range required {
		if !reqSeen[n] {
			reqSeen[n] = true
			req = append(req, n)
		}
	}
	if len(req) > 0 {
		b.WriteString(`,"required":`)
		r, _ := json.Marshal(req) // a []string always marshals
		b.Write(r)
	}
	if ok && !sig.hasKwargs {
		b.WriteString(`,"additionalProperties":false`)
	}
	b.WriteByte('}')
	return json.RawMessage(b.Bytes())
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// maxAnnotationDepth bounds nested annotations (list[list[list[…]]]).
const maxAnnotationDepth = 4

// writePyType writes the schema of an annotation, with desc when not empty.
func writePyType(b *bytes.Buffer, annotation, desc string, depth int) {
	b.WriteByte('{')
	typ, nullable, inner, enum := pyType(annotation)
	wrote := false
	sep := func() {
		if wrote {
			b.WriteByte(',')
		}
		wrote = true
	}
	if typ != "" {
		sep()
		if nullable {
			b.WriteString(`"type":["` + typ + `","null"]`)
		} else {
			b.WriteString(`"type":"` + typ + `"`)
		}
	}
	if len(enum) > 0 {
		sep()
		b.WriteString(`"enum":[`)
		for i, v := range enum {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(v)
		}
		if nullable {
			b.WriteString(`,null`)
		}
		b.WriteByte(']')
	}
	if typ == "array" && inner != "" && depth < maxAnnotationDepth {
		if it, _, _, _ := pyType(inner); it != "" {
			sep()
			b.WriteString(`"items":`)
			writePyType(b, inner, "", depth+1)
		}
	}
	if desc != "" {
		sep()
		b.WriteString(`"description":`)
		writeJSONString(b, desc)
	}
	b.WriteByte('}')
}

// pyType maps an annotation to a JSON Schema type ("" = any), whether None
// is allowed, the element annotation of a sequence, and the JSON literals of
// a Literal[…].
func pyType(annotation string) (typ string, nullable bool, inner string, enum []string) {
	a := strings.TrimSpace(annotation)
	if len(a) >= 2 && (a[0] == '"' || a[0] == '\'') && a[len(a)-1] == a[0] {
		a = strings.TrimSpace(a[1 : len(a)-1]) // a string (forward) annotation
	}
	if a == "" {
		return "", false, "", nil
	}
	// X | None, None | X
	if parts := splitTopLevel(a, '|'); len(parts) > 1 {
		return unionType(parts)
	}
	base, args := a, ""
	if i := strings.IndexByte(a, '['); i > 0 && strings.HasSuffix(a, "]") {
		base, args = strings.TrimSpace(a[:i]), a[i+1:len(a)-1]
	}
	if i := strings.LastIndexByte(base, '.'); i >= 0 { // typing.List, t.Optional
		base = base[i+1:]
	}
	switch base {
	case "str":
		return "string", false, "", nil
	case "int":
		return "integer", false, "", nil
	case "float":
		return "number", false, "", nil
	case "bool":
		return "boolean", false, "", nil
	case "list", "List", "tuple", "Tuple", "set", "Set", "frozenset", "FrozenSet", "Sequence", "Iterable", "MutableSequence":
		parts := splitTopLevel(args, ',')
		if len(parts) == 1 || (len(parts) == 2 && strings.TrimSpace(parts[1]) == "...") {
			inner = strings.TrimSpace(parts[0])
		}
		return "array", false, inner, nil
	case "dict", "Dict", "Mapping", "MutableMapping":
		return "object", false, "", nil
	case "Optional":
		t, _, in, en := pyType(args)
		return t, true, in, en
	case "Union":
		return unionType(splitTopLevel(args, ','))
	case "Literal":
		return literalType(splitTopLevel(args, ','))
	}
	return "", false, "", nil
}

// unionType handles X | None and Union[X, None]: a union of one type and
// None is that type or null; any other union accepts any value.
func unionType(parts []string) (string, bool, string, []string) {
	var rest []string
	nullable := false
	for _, p := range parts {
		if p = strings.TrimSpace(p); p == "None" || p == "NoneType" {
			nullable = true
		} else {
			rest = append(rest, p)
		}
	}
	if len(rest) != 1 {
		return "", false, "", nil
	}
	t, n, in, en := pyType(rest[0])
	if t == "" {
		return "", false, "", nil
	}
	return t, n || nullable, in, en
}

// literalType reads Literal["a", "b"] or Literal[1, 2]; mixed or
// unreadable literals accept any value.
func literalType(parts []string) (string, bool, string, []string) {
	typ := ""
	var enum []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		var t, lit string
		switch {
		case len(p) >= 2 && (p[0] == '"' || p[0] == '\'') && p[len(p)-1] == p[0] && !strings.ContainsRune(p[1:len(p)-1], '\\'):
			t, lit = "string", strconv.Quote(p[1:len(p)-1])
		case pyIntLiteral.MatchString(p):
			t, lit = "integer", p
		case p == "True" || p == "False":
			t, lit = "boolean", strings.ToLower(p)
		default:
			return "", false, "", nil
		}
		if typ != "" && typ != t {
			return "", false, "", nil
		}
		typ = t
		enum = append(enum, lit)
	}
	if typ == "" {
		return "", false, "", nil
	}
	return typ, false, "", enum
}

var pyIntLiteral = regexp.MustCompile(`^-?[0-9]{1,15}$`)

// ---- the tokenizer ----

// parsePySignature finds the first def in src and reads its parameters and
// docstring; ok is false when there is none or it cannot be read.
func parsePySignature(src string) (sig pySignature, ok bool) {
	i, found := findDef(src)
	if !found {
		return sig, false
	}
	// src[i] is the '(' after the function name.
	end, found := matchParen(src, i)
	if !found {
		return sig, false
	}
	for _, raw := range splitTopLevel(src[i+1:end], ',') {
		p := strings.TrimSpace(stripComments(raw))
		switch {
		case p == "", p == "/", p == "*":
			continue
		case strings.HasPrefix(p, "**"):
			sig.hasKwargs = true
			continue
		case strings.HasPrefix(p, "*"):
			continue
		}
		name, rest := p, ""
		if j := indexTopLevel(p, ":"); j >= 0 {
			name, rest = p[:j], p[j+1:]
		} else if j := indexTopLevel(p, "="); j >= 0 {
			name = p[:j]
		}
		annotation := rest
		if j := indexTopLevel(rest, "="); j >= 0 {
			annotation = rest[:j]
		}
		name = strings.TrimSpace(name)
		if !pyIdentifier.MatchString(name) {
			return pySignature{}, false
		}
		sig.params = append(sig.params, pyParam{name: name, annotation: strings.TrimSpace(annotation)})
	}
	sig.docstring = readDocstring(src, end+1)
	return sig, true
}

// findDef returns the index of the '(' that opens the parameter list of the
// first "def name(" outside strings and comments.
func findDef(src string) (int, bool) {
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '#':
			i = skipComment(src, i)
		case c == '"' || c == '\'':
			i = skipString(src, i)
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if src[i:j] == "def" && (i == 0 || !isIdentPart(src[i-1])) {
				k := skipSpaces(src, j)
				n := k
				for n < len(src) && isIdentPart(src[n]) {
					n++
				}
				if n > k {
					if p := skipSpaces(src, n); p < len(src) && src[p] == '(' {
						return p, true
					}
				}
			}
			i = j
		default:
			i++
		}
	}
	return 0, false
}

// matchParen returns the index of the ')' closing the '(' at open.
func matchParen(src string, open int) (int, bool) {
	depth := 0
	for i := open; i < len(src); {
		switch c := src[i]; c {
		case '#':
			i = skipComment(src, i)
			continue
		case '"', '\'':
			i = skipString(src, i)
			continue
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				return i, c == ')'
			}
		}
		i++
	}
	return 0, false
}

// readDocstring reads the string literal that starts the body after the
// ')' of a signature (past an optional "-> X" and the ':').
func readDocstring(src string, from int) string {
	i := from
	// Skip the return annotation up to the ':' that ends the header.
	depth := 0
	for i < len(src) {
		c := src[i]
		if c == '"' || c == '\'' {
			i = skipString(src, i)
			continue
		}
		if c == '#' {
			i = skipComment(src, i)
			continue
		}
		if c == '(' || c == '[' || c == '{' {
			depth++
		} else if c == ')' || c == ']' || c == '}' {
			depth--
		} else if c == ':' && depth == 0 {
			i++
			break
		}
		i++
	}
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\r', '\n', '\\':
			i++
			continue
		case '#':
			i = skipComment(src, i)
			continue
		}
		break
	}
	// String prefixes (r, u, and their capitals); f-strings are not docstrings.
	j := i
	for j < len(src) && strings.IndexByte("rRuU", src[j]) >= 0 && j-i < 2 {
		j++
	}
	if j >= len(src) || (src[j] != '"' && src[j] != '\'') {
		return ""
	}
	end := skipString(src, j)
	lit := src[j:end]
	q := 1
	if len(lit) >= 6 && (strings.HasPrefix(lit, `"""`) || strings.HasPrefix(lit, `'''`)) {
		q = 3
	}
	if len(lit) < 2*q {
		return ""
	}
	return lit[q : len(lit)-q]
}

func skipSpaces(src string, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
		i++
	}
	return i
}

func skipComment(src string, i int) int {
	for i < len(src) && src[i] != '\n' {
		i++
	}
	return i
}

// skipString returns the index after the string literal starting at i
// (single or triple quoted, with backslash escapes). An unterminated
// literal runs to the end.
func skipString(src string, i int) int {
	q := src[i]
	if strings.HasPrefix(src[i:], strings.Repeat(string(q), 3)) {
		i += 3
		for i < len(src) {
			if src[i] == '\\' {
				i += 2
				continue
			}
			if strings.HasPrefix(src[i:], strings.Repeat(string(q), 3)) {
				return i + 3
			}
			i++
		}
		return len(src)
	}
	i++
	for i < len(src) {
		switch src[i] {
		case '\\':
			i += 2
			continue
		case q:
			return i + 1
		case '\n':
			return i
		}
		i++
	}
	return len(src)
}

func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || '0' <= c && c <= '9' }

// splitTopLevel splits s at sep outside brackets and strings.
func splitTopLevel(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '"' || c == '\'':
			i = skipString(s, i)
			continue
		case c == '#':
			i = skipComment(s, i)
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
		i++
	}
	return append(out, s[start:])
}

// indexTopLevel finds tok outside brackets and strings; "=" does not match
// inside "==", "<=", ">=" or "!=".
func indexTopLevel(s, tok string) int {
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			i = skipString(s, i)
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], tok):
			if tok == "=" && ((i+1 < len(s) && s[i+1] == '=') || (i > 0 && strings.IndexByte("=<>!", s[i-1]) >= 0)) {
				i += 2
				continue
			}
			return i
		}
		i++
	}
	return -1
}

// stripComments removes # comments (outside strings) from a parameter.
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case '"', '\'':
			j := skipString(s, i)
			b.WriteString(s[i:j])
			i = j
		case '#':
			i = skipComment(s, i)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// ---- docstrings ----

var (
	googleSection  = regexp.MustCompile(`^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:\s*$`)
	googleAnyHead  = regexp.MustCompile(`^[A-Z][A-Za-z ]*:\s*$`)
	googleEntry    = regexp.MustCompile(`^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$`)
	sphinxParam    = regexp.MustCompile(`^:param\s+(?:[^:]*\s)?([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$`)
	sphinxField    = regexp.MustCompile(`^:[a-z]+`)
	numpyUnderline = regexp.MustCompile(`^-{3,}\s*$`)
	numpyEntry     = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(?::.*)?$`)
)

// maxDocDescription caps a description taken from a docstring.
const maxDocDescription = 1000

// parseDocstringParams returns the description of each parameter a
// docstring documents (Google, Sphinx or NumPy style).
func parseDocstringParams(doc string) map[string]string {
	out := map[string]string{}
	if doc == "" {
		return out
	}
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " \t")) }
	add := func(name, desc string) {
		desc = strings.Join(strings.Fields(desc), " ")
		if r := []rune(desc); len(r) > maxDocDescription {
			desc = string(r[:maxDocDescription])
		}
		if desc != "" && out[name] == "" {
			out[name] = desc
		}
	}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case googleSection.MatchString(line):
			head := indent(lines[i])
			var name, desc string
			entryIndent := -1
			flush := func() {
				if name != "" {
					add(name, desc)
				}
				name, desc = "", ""
			}
			for i++; i < len(lines); i++ {
				l := lines[i]
				t := strings.TrimSpace(l)
				if t == "" {
					continue
				}
				ind := indent(l)
				if ind <= head && googleAnyHead.MatchString(t) || ind < head {
					i--
					break
				}
				if m := googleEntry.FindStringSubmatch(t); m != nil && (entryIndent < 0 || ind <= entryIndent) {
					flush()
					entryIndent = ind
					name, desc = m[1], m[2]
					continue
				}
				if name != "" {
					desc += " " + t
				}
			}
			flush()
		case sphinxParam.MatchString(line):
			m := sphinxParam.FindStringSubmatch(line)
			desc := m[2]
			for i+1 < len(lines) {
				t := strings.TrimSpace(lines[i+1])
				if t == "" || sphinxField.MatchString(t) {
					break
				}
				desc += " " + t
				i++
			}
			add(m[1], desc)
		case (line == "Parameters" || line == "Arguments") && i+1 < len(lines) && numpyUnderline.MatchString(strings.TrimSpace(lines[i+1])):
			head := indent(lines[i])
			var name, desc string
			for i += 2; i < len(lines); i++ {
				l := lines[i]
				t := strings.TrimSpace(l)
				if t == "" {
					continue
				}
				if i+1 < len(lines) && numpyUnderline.MatchString(strings.TrimSpace(lines[i+1])) {
					i--
					break
				}
				if indent(l) <= head {
					if m := numpyEntry.FindStringSubmatch(t); m != nil {
						if name != "" {
							add(name, desc)
						}
						name, desc = m[1], ""
						continue
					}
					break
				}
				desc += " " + t
			}
			if name != "" {
				add(name, desc)
			}
		}
	}
	return out
}
