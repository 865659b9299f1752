package monday

import (
	"regexp"
	"strings"
)

// The runtime declarations of GET /api/runtime (§3.3), generated the way
// atp-runtime's generateRuntimeTypes does (the upstream
// runtime-definitions test checks the layout), from a table of what the
// sandbox's atp object offers.

type runtimeParam struct {
	name, typ, description string
	optional               bool
}

type runtimeMethod struct {
	name, description string
	params            []runtimeParam
	returns           string
}

type runtimeAPI struct {
	name, description string
	methods           []runtimeMethod
}

// runtimeAPIs is the atp object, in the reference's order, as the engine
// (internal/execution/runtime.js) implements it: unlike the reference's,
// cache.clear and embedding.similarity/getAll/count work (§14 #12).
// embedding.similarity takes two texts and pauses for the client's provider.
var runtimeAPIs = []runtimeAPI{
	{name: "approval", description: "Approval API - Request explicit human approval for sensitive operations", methods: []runtimeMethod{
		{name: "request", description: "Request approval from a human", params: []runtimeParam{
			{name: "message", typ: "string", description: "The message to display to the user"},
			{name: "context", typ: "Record<string, unknown>", description: "Optional context information about what needs approval", optional: true},
		}, returns: "Promise<ApprovalResponse>"},
	}},
	{name: "cache", description: "Cache API - Store and retrieve data with optional TTL", methods: []runtimeMethod{
		{name: "get<T = unknown>", description: "Get a value from cache by key", params: []runtimeParam{
			{name: "key", typ: "string", description: "Cache key"},
		}, returns: "Promise<T | null>"},
		{name: "set", description: "Set a value in cache with optional TTL", params: []runtimeParam{
			{name: "key", typ: "string", description: "Cache key"},
			{name: "value", typ: "unknown", description: "Value to cache"},
			{name: "ttl", typ: "number", description: "Time to live in seconds", optional: true},
		}, returns: "Promise<void>"},
		{name: "delete", description: "Delete a value from cache", params: []runtimeParam{
			{name: "key", typ: "string", description: "Cache key to delete"},
		}, returns: "Promise<void>"},
		{name: "has", description: "Check if a key exists in cache", params: []runtimeParam{
			{name: "key", typ: "string", description: "Cache key to check"},
		}, returns: "Promise<boolean>"},
		{name: "clear", description: "Clear all cache entries of this client", returns: "Promise<void>"},
	}},
	{name: "embedding", description: "Embedding API - Client-side embedding with server-side vector storage", methods: []runtimeMethod{
		{name: "embed", description: "Request client to generate and store embeddings", params: []runtimeParam{
			{name: "input", typ: "string | string[]", description: "Text(s) to embed"},
			{name: "metadata", typ: "Record<string, unknown>", description: "Optional metadata to store with embeddings", optional: true},
		}, returns: "Promise<string | string[]>"},
		{name: "search", description: "Search stored embeddings by similarity", params: []runtimeParam{
			{name: "query", typ: "string", description: "Search query text (will be embedded by client)"},
			{name: "options", typ: "Omit<SearchOptions, 'query'>", description: "Search options (topK, minSimilarity, filter, collection)", optional: true},
		}, returns: "Promise<SearchResult[]>"},
		{name: "similarity", description: "Similarity of two texts, computed by the client's embedding provider", params: []runtimeParam{
			{name: "text1", typ: "string", description: "First text"},
			{name: "text2", typ: "string", description: "Second text"},
		}, returns: "Promise<number>"},
		{name: "getAll", description: "Get all embeddings stored by this execution", returns: "EmbeddingRecord[]"},
		{name: "count", description: "Get the count of embeddings stored by this execution", returns: "number"},
	}},
	{name: "llm", description: "LLM API - Large Language Model calls using client-provided LLM (requires client.provideLLM())", methods: []runtimeMethod{
		{name: "call", description: "Make an LLM call with a prompt", params: []runtimeParam{
			{name: "options", typ: "LLMCallOptions", description: "LLM call options including prompt"},
		}, returns: "Promise<string>"},
		{name: "extract<T = unknown>", description: "Extract structured data from text using an LLM", params: []runtimeParam{
			{name: "options", typ: "LLMExtractOptions", description: "Extraction options with JSON schema"},
		}, returns: "Promise<T>"},
		{name: "classify", description: "Classify text into one of the provided categories", params: []runtimeParam{
			{name: "options", typ: "LLMClassifyOptions", description: "Classification options with categories"},
		}, returns: "Promise<string>"},
	}},
	{name: "progress", description: "Progress API - Report execution progress to clients", methods: []runtimeMethod{
		{name: "report", description: "Report progress with message and completion fraction", params: []runtimeParam{
			{name: "message", typ: "string", description: "Progress message"},
			{name: "fraction", typ: "number", description: "Completion fraction (0-1)"},
		}, returns: "void"},
	}},
}

// runtimeTypes are the support types, in the reference's order; one is
// printed when a selected method mentions it.
var runtimeTypes = []struct{ name, definition string }{
	{"ApprovalResponse", "export interface ApprovalResponse<T = unknown> {\n\tapproved: boolean;\n\tresponse?: T;\n\ttimestamp: number;\n}"},
	{"SearchOptions", "interface SearchOptions {\n  query: string;\n  topK?: number;\n  minSimilarity?: number;\n  filter?: Record<string, unknown>;\n  collection?: string;\n}"},
	{"SearchResult", "interface SearchResult {\n  id: string;\n  text: string;\n  similarity: number;\n  metadata?: Record<string, unknown>;\n}"},
	{"EmbeddingRecord", "interface EmbeddingRecord {\n  id: string;\n  text: string;\n  embedding: number[];\n  metadata?: Record<string, unknown>;\n}"},
	{"LLMCallOptions", "interface LLMCallOptions {\n  prompt: string;\n  context?: Record<string, unknown>;\n  model?: string;\n  maxTokens?: number;\n  temperature?: number;\n  systemPrompt?: string;\n}"},
	{"LLMExtractOptions", "interface LLMExtractOptions {\n  prompt: string;\n  context?: Record<string, unknown>;\n  schema: unknown;\n}"},
	{"LLMClassifyOptions", "interface LLMClassifyOptions {\n  text: string;\n  categories: string[];\n  context?: Record<string, unknown>;\n}"},
}

// services are the client's capabilities (init's services, execute's
// clientServices).
type services struct {
	HasLLM       bool `json:"hasLLM"`
	HasApproval  bool `json:"hasApproval"`
	HasEmbedding bool `json:"hasEmbedding"`
	HasTools     bool `json:"hasTools"`
}

var typeWord = regexp.MustCompile(`\b[A-Z][a-zA-Z]+\b`)

// runtimeText selects APIs by §3.3: the requested ones in order (unknown
// names dropped); else, for a session with services, all but progress and
// the client services it lacks; else cache only.
func runtimeText(requested []string, svc *services) string {
	var apis []*runtimeAPI
	switch {
	case len(requested) > 0:
		seen := map[string]bool{}
		for _, name := range requested {
			if a := findRuntimeAPI(name); a != nil && !seen[name] {
				seen[name] = true
				apis = append(apis, a)
			}
		}
	case svc != nil:
		for i := range runtimeAPIs {
			a := &runtimeAPIs[i]
			switch {
			case a.name == "progress",
				a.name == "llm" && !svc.HasLLM,
				a.name == "approval" && !svc.HasApproval,
				a.name == "embedding" && !svc.HasEmbedding:
				continue
			}
			apis = append(apis, a)
		}
	default:
		apis = []*runtimeAPI{findRuntimeAPI("cache")}
	}

	var b strings.Builder
	b.WriteString("// Runtime SDK Type Definitions\n\n")
	used := map[string]bool{}
	for _, a := range apis {
		for _, m := range a.methods {
			words := m.returns
			for _, p := range m.params {
				words += " " + p.typ
			}
			for _, w := range typeWord.FindAllString(words, -1) {
				used[w] = true
			}
		}
	}
	for _, t := range runtimeTypes {
		if used[t.name] {
			b.WriteString(t.definition + "\n\n")
		}
	}
	b.WriteString("// Runtime SDK\ndeclare const atp: {\n")
	for _, a := range apis {
		b.WriteString("  /**\n")
		for _, line := range strings.Split(a.description, "\n") {
			b.WriteString("   * " + line + "\n")
		}
		b.WriteString("   */\n")
		b.WriteString("  " + a.name + ": {\n")
		for _, m := range a.methods {
			b.WriteString("    /**\n")
			b.WriteString("     * " + m.description + "\n")
			for _, p := range m.params {
				if p.description != "" {
					b.WriteString("     * @param " + p.name + " - " + p.description + "\n")
				}
			}
			if m.returns != "void" {
				desc := "Result value"
				if strings.HasPrefix(m.returns, "Promise") {
					desc = "Promise resolving to result"
				}
				b.WriteString("     * @returns " + desc + "\n")
			}
			b.WriteString("     */\n")
			params := make([]string, 0, len(m.params))
			for _, p := range m.params {
				params = append(params, p.name+optionalMark(!p.optional)+": "+p.typ)
			}
			b.WriteString("    " + m.name + "(" + strings.Join(params, ", ") + "): " + m.returns + ";\n\n")
		}
		b.WriteString("  };\n\n")
	}
	b.WriteString("};\n\n")
	return b.String()
}

func findRuntimeAPI(name string) *runtimeAPI {
	for i := range runtimeAPIs {
		if runtimeAPIs[i].name == name {
			return &runtimeAPIs[i]
		}
	}
	return nil
}
