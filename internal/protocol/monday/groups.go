package monday

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// A group is an API group of the protocol: one toolkit, reached from
// sandbox code as api.<toolkit id>.<tool>(input).
type group struct {
	name         string // the toolkit id; "/" would nest (api.a.b), as the spec allows
	title        string // the toolkit's display name
	description  string
	instructions string
	functions    []function
}

type function struct {
	name        string
	description string
	input       json.RawMessage
	output      json.RawMessage
	annotations *toolkit.Annotations
}

// groupsOf turns toolkits into groups, in the order given (the store
// lists them by id).
func groupsOf(tks []*toolkit.Toolkit) []*group {
	out := make([]*group, 0, len(tks))
	for _, tk := range tks {
		g := &group{name: tk.ID, title: tk.Name, description: tk.Description, instructions: tk.Instructions}
		for i := range tk.Tools {
			t := &tk.Tools[i]
			g.functions = append(g.functions, function{
				name: t.Name, description: t.Description,
				input: t.InputSchema, output: t.OutputSchema, annotations: t.Annotations,
			})
		}
		out = append(out, g)
	}
	return out
}

// segments are the parts of a group name: "github/readOnly" nests as
// api.github.readOnly and /custom/github/readOnly.
func (g *group) segments() []string {
	var out []string
	for _, s := range strings.Split(g.name, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// access is how code reaches the group from api: ".math", or `.github.readOnly`.
func (g *group) access() string {
	var b strings.Builder
	for _, s := range g.segments() {
		b.WriteString(memberAccess(s))
	}
	return b.String()
}

// typeName is a TypeScript-safe prefix for the group's declarations.
func (g *group) typeName() string { return identPart(g.name) }

// inputTypeName and outputTypeName name the declarations of fn's schemas.
func (g *group) inputTypeName(fn *function) string {
	return g.typeName() + "_" + identPart(fn.name) + "_Input"
}

func (g *group) outputTypeName(fn *function) string {
	return g.typeName() + "_" + identPart(fn.name) + "_Output"
}

// identPart maps s to identifier characters (others become "_").
func identPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return b.String()
}

func (g *group) function(name string) (*function, bool) {
	for i := range g.functions {
		if g.functions[i].name == name {
			return &g.functions[i], true
		}
	}
	return nil, false
}

func (fn *function) inputOrEmpty() json.RawMessage {
	if len(fn.input) == 0 {
		return json.RawMessage(`{"type":"object"}`)
	}
	return fn.input
}

// outputType is the TypeScript type of what the tool returns: its output
// schema when it declares one, else unknown.
func (fn *function) outputType() string {
	if len(fn.output) == 0 {
		return "unknown"
	}
	return tsType(fn.output)
}

// ---- /api/definitions ----

// definitionsHeader opens the definitions text, as the reference does.
const definitionsHeader = "// Agent Tool Protocol Runtime SDK v1.0.0\n\n"

// definitionsText is the TypeScript of §3.2: the runtime (cache only), then
// per group the input and output types of each function, then one
// `declare const api` with every group, nested where names contain "/".
func definitionsText(groups []*group) string {
	var b strings.Builder
	b.WriteString(definitionsHeader)
	b.WriteString(runtimeText(nil, nil))
	for _, g := range groups {
		fmt.Fprintf(&b, "\n// API Group: %s\n", g.name)
		if g.description != "" {
			fmt.Fprintf(&b, "// %s\n", oneLine(g.description, 500))
		}
		if g.instructions != "" {
			fmt.Fprintf(&b, "// Instructions: %s\n", oneLine(g.instructions, 2000))
		}
		for i := range g.functions {
			fn := &g.functions[i]
			writeInterface(&b, g.inputTypeName(fn), fn.inputOrEmpty())
			if len(fn.output) > 0 {
				writeInterface(&b, g.outputTypeName(fn), fn.output)
			} else {
				fmt.Fprintf(&b, "type %s = unknown;\n", g.outputTypeName(fn))
			}
		}
	}
	b.WriteString("\ndeclare const api: {\n")
	writeGroupTree(&b, buildTree(groups), 1)
	b.WriteString("};\n\nexport { api };\n")
	return b.String()
}

// writeInterface declares name for a schema: an interface with one
// documented member per property when it is an object with properties,
// else a type alias.
func writeInterface(b *strings.Builder, name string, raw json.RawMessage) {
	s, ok := parseSchema(raw)
	props := s.properties()
	if !ok || len(props) == 0 {
		fmt.Fprintf(b, "type %s = %s;\n", name, tsType(raw))
		return
	}
	fmt.Fprintf(b, "interface %s {\n", name)
	for _, p := range props {
		if ps, ok := parseSchema(p.schema); ok && ps.Description != "" {
			fmt.Fprintf(b, "  /** %s */\n", oneLine(ps.Description, 500))
		}
		fmt.Fprintf(b, "  %s%s: %s;\n", propertyKey(p.name), optionalMark(p.required), tsType(p.schema))
	}
	b.WriteString("}\n")
}

// groupNode is one level of the api object: groups whose names share a
// prefix ("github/readOnly", "github/admin") share a node.
type groupNode struct {
	name     string
	group    *group // the group at exactly this path, if any
	children []*groupNode
}

func (n *groupNode) child(name string) *groupNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	c := &groupNode{name: name}
	n.children = append(n.children, c)
	return c
}

func buildTree(groups []*group) *groupNode {
	root := &groupNode{}
	for _, g := range groups {
		n := root
		for _, s := range g.segments() {
			n = n.child(s)
		}
		n.group = g
	}
	return root
}

func writeGroupTree(b *strings.Builder, n *groupNode, depth int) {
	indent := strings.Repeat("  ", depth)
	for _, c := range n.children {
		fmt.Fprintf(b, "%s%s: {\n", indent, propertyKey(c.name))
		if g := c.group; g != nil {
			for i := range g.functions {
				fn := &g.functions[i]
				doc := oneLine(fn.description, 200)
				if fn.annotations.NeedsApproval() {
					// Models should know a call may wait for a human.
					doc = strings.TrimSpace(doc + " (Asks the user for approval before it runs.)")
				}
				if doc != "" {
					fmt.Fprintf(b, "%s  /** %s */\n", indent, doc)
				}
				fmt.Fprintf(b, "%s  %s(params: %s): Promise<%s>;\n",
					indent, propertyKey(fn.name), g.inputTypeName(fn), g.outputTypeName(fn))
			}
		}
		writeGroupTree(b, c, depth+1)
		fmt.Fprintf(b, "%s};\n", indent)
	}
}
