package monday

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"unicode"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// ---- tool rules (§8, §14 #8) ----

// toolRules are the client's ClientToolRules. They only ever narrow what
// the key may use: block and allow-only rules hide tools (apply), and the
// requireApproval* rules add an approval before a tool runs (annotations),
// which the engine enforces through the approval pause of §7 (§14 #16).
type toolRules struct {
	BlockOperationTypes                 []string `json:"blockOperationTypes,omitempty"`
	BlockSensitivityLevels              []string `json:"blockSensitivityLevels,omitempty"`
	RequireApprovalForOperationTypes    []string `json:"requireApprovalForOperationTypes,omitempty"`
	RequireApprovalForSensitivityLevels []string `json:"requireApprovalForSensitivityLevels,omitempty"`
	BlockTools                          []string `json:"blockTools,omitempty"`
	AllowOnlyTools                      []string `json:"allowOnlyTools,omitempty"`
	BlockAPIGroups                      []string `json:"blockApiGroups,omitempty"`
	AllowOnlyAPIGroups                  []string `json:"allowOnlyApiGroups,omitempty"`
}

// annotations returns fn's annotations with RequiresApproval set when a
// requireApproval* rule names its operation type or sensitivity; fn's own
// are never changed (groups may be shared).
func (tr *toolRules) annotations(fn *function) *toolkit.Annotations {
	a := fn.annotations
	if tr == nil || a == nil || a.RequiresApproval {
		return a
	}
	if (a.OperationType != "" && slices.Contains(tr.RequireApprovalForOperationTypes, a.OperationType)) ||
		(a.Sensitivity != "" && slices.Contains(tr.RequireApprovalForSensitivityLevels, a.Sensitivity)) {
		c := *a
		c.RequiresApproval = true
		return &c
	}
	return a
}

// apply returns the groups and functions the rules let through; groups
// left without functions are dropped. Tool names match either the bare
// name or "group.name". A nil *toolRules lets everything through.
func (tr *toolRules) apply(groups []*group) []*group {
	if tr == nil {
		return groups
	}
	out := make([]*group, 0, len(groups))
	for _, g := range groups {
		if slices.Contains(tr.BlockAPIGroups, g.name) ||
			(len(tr.AllowOnlyAPIGroups) > 0 && !slices.Contains(tr.AllowOnlyAPIGroups, g.name)) {
			continue
		}
		ng := *g
		ng.functions = nil
		for _, fn := range g.functions {
			if tr.allowsFunction(g.name, &fn) {
				ng.functions = append(ng.functions, fn)
			}
		}
		if len(ng.functions) > 0 {
			out = append(out, &ng)
		}
	}
	return out
}

func (tr *toolRules) allowsFunction(groupName string, fn *function) bool {
	named := func(list []string) bool {
		return slices.Contains(list, fn.name) || slices.Contains(list, groupName+"."+fn.name)
	}
	if named(tr.BlockTools) || (len(tr.AllowOnlyTools) > 0 && !named(tr.AllowOnlyTools)) {
		return false
	}
	if a := fn.annotations; a != nil {
		if a.OperationType != "" && slices.Contains(tr.BlockOperationTypes, a.OperationType) {
			return false
		}
		if a.Sensitivity != "" && slices.Contains(tr.BlockSensitivityLevels, a.Sensitivity) {
			return false
		}
	}
	return true
}

// filterGroups keeps the named groups (definitions' apiGroups, search's
// apiGroups); no names keeps all.
func filterGroups(groups []*group, names []string) []*group {
	if len(names) == 0 {
		return groups
	}
	out := make([]*group, 0, len(names))
	for _, g := range groups {
		if slices.Contains(names, g.name) {
			out = append(out, g)
		}
	}
	return out
}

// splitList splits a comma-separated query value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ---- search (§3.5) ----

// searchResult is one SearchResult of the wire.
type searchResult struct {
	APIGroup       string `json:"apiGroup"`
	FunctionName   string `json:"functionName"`
	Description    string `json:"description"`
	Signature      string `json:"signature"`
	RelevanceScore int    `json:"relevanceScore"`
}

const (
	defaultMaxResults = 10
	maxMaxResults     = 100
)

// stopWords carry no meaning for ranking.
var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "to": true, "of": true, "and": true, "or": true, "for": true,
	"in": true, "on": true, "with": true, "by": true, "is": true, "it": true, "me": true, "my": true,
}

// words splits text into lowercase words, breaking camelCase and
// snake_case identifiers too ("getUserRepos" → get, user, repos).
func words(text string) []string {
	var (
		out  []string
		cur  []rune
		prev rune
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range text {
		switch {
		case unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			flush()
			cur = append(cur, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur = append(cur, r)
		default:
			flush()
		}
		prev = r
	}
	flush()
	return out
}

// queryWords are the meaningful words of a query, stemmed.
func queryWords(q string) []string {
	var out []string
	for _, w := range words(q) {
		if w = stem(w); len(w) >= 2 && !stopWords[w] && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// stem is a deliberately crude English stemmer: it drops a plural "s", so
// that "numbers" finds "Add two number" and "users" finds getUser.
func stem(w string) string {
	if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
		return w[:len(w)-1]
	}
	return w
}

// stems stems every word.
func stems(ws []string) []string {
	for i, w := range ws {
		ws[i] = stem(w)
	}
	return ws
}

// score ranks fn for a query. It improves on the reference (§3.5) by
// matching whole words of the name (camelCase split) above substrings,
// counting parameter names and the group, and ignoring stop words:
//
//	+100 the name equals the query (case and separators ignored)
//	 +50 the name contains the query; +40 the description contains it
//	per query word (plural "s" dropped, on both sides):
//	 +20 a word of the name, else +10 inside the name;
//	 +8 a word of the description, else +3 inside it;
//	 +5 a word of the group's id or title; +2 a parameter name.
func score(q string, qw []string, g *group, fn *function) int {
	name := strings.ToLower(fn.name)
	desc := strings.ToLower(fn.description)
	nameWords := stems(words(fn.name))
	descWords := stems(words(fn.description))
	groupWords := stems(append(words(g.name), words(g.title)...))
	var params []string
	if s, ok := parseSchema(fn.input); ok {
		for _, p := range s.properties() {
			params = append(params, strings.ToLower(p.name))
		}
	}

	n := 0
	if compact := strings.Join(words(q), ""); compact != "" && compact == strings.Join(words(fn.name), "") {
		n += 100
	}
	if q != "" && strings.Contains(name, q) {
		n += 50
	}
	if len(q) > 2 && strings.Contains(desc, q) {
		n += 40
	}
	for _, w := range qw {
		switch {
		case slices.Contains(nameWords, w):
			n += 20
		case strings.Contains(name, w):
			n += 10
		}
		switch {
		case slices.Contains(descWords, w):
			n += 8
		case strings.Contains(desc, w):
			n += 3
		}
		if slices.Contains(groupWords, w) {
			n += 5
		}
		for _, p := range params {
			if strings.Contains(p, w) {
				n += 2
				break
			}
		}
	}
	return n
}

// search ranks every function of groups for query, best first, ties by
// group and name; results with no match are left out.
func search(groups []*group, query string, maxResults int) []searchResult {
	if maxResults <= 0 {
		maxResults = defaultMaxResults
	}
	maxResults = min(maxResults, maxMaxResults)
	q := strings.ToLower(strings.TrimSpace(query))
	qw := queryWords(q)
	out := []searchResult{}
	for _, g := range groups {
		for i := range g.functions {
			fn := &g.functions[i]
			if s := score(q, qw, g, fn); s > 0 {
				out = append(out, searchResult{
					APIGroup: g.name, FunctionName: fn.name, Description: fn.description,
					Signature: signature(fn), RelevanceScore: s,
				})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b searchResult) int {
		return cmp.Or(
			cmp.Compare(b.RelevanceScore, a.RelevanceScore),
			cmp.Compare(a.APIGroup, b.APIGroup),
			cmp.Compare(a.FunctionName, b.FunctionName),
		)
	})
	if len(out) > maxResults {
		out = out[:maxResults]
	}
	return out
}

// ---- explore (§3.6) ----

// exploreRoot is the directory that holds the groups, as in the
// reference's layout /<group type>/<group>/<function>. Every toolkit is a
// "custom" group.
const exploreRoot = "custom"

type exploreItem struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // directory | function
	Description string `json:"description,omitempty"`
}

type exploreDirectory struct {
	Type  string        `json:"type"` // directory
	Path  string        `json:"path"`
	Items []exploreItem `json:"items"`
}

type exploreFunction struct {
	Type         string          `json:"type"` // function
	Path         string          `json:"path"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Definition   string          `json:"definition"`
	Group        string          `json:"group"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
}

// cleanPath normalises an explore path: one leading slash, no empty
// segments, no trailing slash.
func cleanPath(p string) (string, []string) {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			segs = append(segs, s)
		}
	}
	return "/" + strings.Join(segs, "/"), segs
}

// explore resolves path in the tree; ok is false for a path that names
// nothing. Group names with "/" are nested directories, so every group is
// reachable (the reference's §14 #10 bug).
func explore(groups []*group, path string) (result any, ok bool) {
	clean, segs := cleanPath(path)
	if len(segs) == 0 {
		items := []exploreItem{}
		if len(groups) > 0 {
			items = append(items, exploreItem{Name: exploreRoot, Type: "directory", Description: "Server API groups (toolkits)"})
		}
		return exploreDirectory{Type: "directory", Path: clean, Items: items}, true
	}
	if segs[0] != exploreRoot {
		return nil, false
	}
	n := buildTree(groups)
	for i, s := range segs[1:] {
		var next *groupNode
		for _, c := range n.children {
			if c.name == s {
				next = c
				break
			}
		}
		if next == nil {
			// The last segment may name a function of the group at n.
			if i == len(segs)-2 && n.group != nil {
				if fn, found := n.group.function(s); found {
					return exploreFunction{
						Type: "function", Path: clean, Name: fn.name, Description: fn.description,
						Definition: definition(n.group, fn), Group: n.group.name,
						InputSchema: fn.input, OutputSchema: fn.output,
					}, true
				}
			}
			return nil, false
		}
		n = next
	}
	items := []exploreItem{}
	for _, c := range n.children {
		desc := ""
		if c.group != nil {
			desc = c.group.description
		}
		items = append(items, exploreItem{Name: c.name, Type: "directory", Description: desc})
	}
	if n.group != nil {
		for _, fn := range n.group.functions {
			items = append(items, exploreItem{Name: fn.name, Type: "function", Description: fn.description})
		}
	}
	slices.SortStableFunc(items, func(a, b exploreItem) int {
		if a.Type != b.Type {
			if a.Type == "directory" {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return exploreDirectory{Type: "directory", Path: clean, Items: items}, true
}
