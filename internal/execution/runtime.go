package execution

import (
	"context"
	"crypto/rand"
	_ "embed" // runtime.js
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atp-server/atp-server/internal/sandbox"
	"github.com/atp-server/atp-server/internal/toolkit"
)

//go:embed runtime.js
var runtimeSource string

// maxProgressReports bounds atp.progress.report calls per execution that
// reach the sink: a loop around it must not flood a stream.
const maxProgressReports = 1000

// thrown is an error whose message is thrown in the code as it is: the
// reference runtime's own wording, which clients and models may match.
type thrown string

func (t thrown) Error() string { return string(t) }

// Errors of calls that need a service the client said it lacks (spec
// §5.7: without pause mode).
const (
	errApprovalNotConfigured thrown = "Approval handler not configured. Human approval is required but no handler is set."
	errEmbeddingNotProvided  thrown = "Embedding service not provided by client"
)

// llmCapError is how an execution past its LLM-call cap is halted.
type llmCapError struct{ max int }

func (e *llmCapError) Error() string { return fmt.Sprintf("Exceeded max LLM calls: %d", e.max) }

// atpRuntime is the host side of one execution's atp/api objects. Its
// functions run on the execution's goroutine; the engine reads its counters
// only when the code is not running (after a pause or the end).
type atpRuntime struct {
	eng   *Engine
	id    string
	owner string
	ctx   context.Context // ends with the execution
	opts  effective
	tools ToolCaller

	rec    *recorder
	now    func() time.Time
	random *mrand.Rand // Math.random and embedding ids, seeded through the journal

	seq           int // sequence numbers of pausable calls, from 0
	llmCalls      int
	approvalCalls int
	progress      int
	vectors       vectorStore

	server []serverEntry
	client []ClientTool

	sinksMu    sync.Mutex
	onProgress func(string, float64)
	onConsole  func(string, string)
}

type serverEntry struct {
	group string
	tool  ServerTool
}

// pending is what a parked call reports (sandbox.Parked.Request).
type pending struct {
	cb Callback
}

// host builds the sandbox host of the execution. Only the seed is made
// now (it is the journal's first entry); what runtime.js reads of the host
// is built when it first reads it (sandbox.Lazy), so an execution whose
// code touches neither atp nor api costs nothing more, and one that calls
// one tool builds that tool's group only.
func (r *atpRuntime) host() sandbox.Host {
	seed := make([]byte, 32)
	_, _ = rand.Read(seed) // crypto/rand.Read never fails (Go 1.24+)
	r.rec.append(Entry{Kind: EntrySeed, Value: json.RawMessage(strconv.Quote(hex.EncodeToString(seed)))})
	r.random = mrand.New(mrand.NewChaCha8([32]byte(seed)))

	return sandbox.Host{
		Console:        r.console,
		Prelude:        r.eng.prelude,
		PreludeGlobals: []string{"atp", "api"},
		Now:            r.clock,
		Random:         r.random.Float64,
		OnEvent:        r.event,
		PreludeHost: map[string]any{
			"atp": sandbox.Lazy(r.atpHost),
			"api": sandbox.Lazy(r.apiHost),
		},
	}
}

// atpHost is host.atp of runtime.js.
func (r *atpRuntime) atpHost() any {
	return map[string]any{
		"llm":      sandbox.ParkFunc(r.parkLLM),
		"approval": sandbox.ParkFunc(r.parkApproval),
		"embedding": sandbox.Lazy(func() any {
			return map[string]any{
				"embed":      sandbox.ParkFunc(r.parkEmbed),
				"search":     sandbox.ParkFunc(r.parkSearch),
				"similarity": sandbox.ParkFunc(r.parkSimilarity),
				"all":        sandbox.Func(r.embeddings),
				"count":      sandbox.Func(r.embeddingCount),
			}
		}),
		"cache": sandbox.Lazy(func() any {
			return map[string]any{
				"get":    sandbox.Func(r.cacheGet),
				"set":    sandbox.Func(r.cacheSet),
				"has":    sandbox.Func(r.cacheHas),
				"delete": sandbox.Func(r.cacheDelete),
				"clear":  sandbox.Func(r.cacheClear),
			}
		}),
		"progress": sandbox.Func(r.reportProgress),
	}
}

// apiHost is host.api of runtime.js: the top-level names of api in the
// order they first appear among the tools (server tools, then client
// tools), per name the tools under it (built on first read, see
// groupHost), the number of server tools, and the functions the tools
// call: callTool for server tools, clientTool and gate.
func (r *atpRuntime) apiHost() any {
	var keys []string
	byKey := map[string][]apiTool{}
	add := func(index int, name string, path []string, gate bool) {
		key := path[0]
		if _, ok := byKey[key]; !ok {
			keys = append(keys, key)
		}
		byKey[key] = append(byKey[key], apiTool{index: index, name: name, path: path[1:], gate: gate})
	}
	for i, e := range r.server {
		add(i, e.tool.Name, strings.Split(e.group, "/"), metadataOf(e.tool.Annotations).needsApproval())
	}
	for i, t := range r.client {
		add(len(r.server)+i, t.Name, []string{t.namespace()}, clientMetadata(t).needsApproval())
	}
	groups := make(map[string]any, len(keys))
	for _, key := range keys {
		groups[key] = sandbox.Lazy(func() any { return groupHost(byKey[key]) })
	}
	return map[string]any{
		"keys":       keys,
		"groups":     groups,
		"servers":    len(r.server),
		"callTool":   sandbox.AsyncFunc(r.callTool),
		"clientTool": sandbox.ParkFunc(r.parkClientTool),
		"gate":       sandbox.ParkFunc(r.parkGate),
	}
}

// apiTool is a tool of api: its index (server tools first, then client
// tools), its name, its group path below the top-level name, and whether
// its metadata forces an approval.
type apiTool struct {
	index int
	name  string
	path  []string
	gate  bool
}

// groupHost is host.api.groups[key] of runtime.js: per tool under key, in
// order, the array [index, name, gate, path] (kept this small because a
// group is built whenever the code touches it).
func groupHost(tools []apiTool) any {
	out := make([]any, len(tools))
	for j, t := range tools {
		out[j] = []any{t.index, t.name, t.gate, t.path}
	}
	return out
}

func clientMetadata(t ClientTool) toolMetadata {
	var md toolMetadata
	if len(t.Metadata) > 0 {
		_ = json.Unmarshal(t.Metadata, &md) // metadata of other shapes forces nothing
	}
	return md
}

// clock is Date.now() and new Date(): the engine's clock at millisecond
// precision, recorded.
func (r *atpRuntime) clock() time.Time {
	ms := r.now().UnixMilli()
	r.rec.clock(ms)
	return time.UnixMilli(ms)
}

// event journals what the event loop delivers: server tool results (the
// only AsyncFuncs) and timers.
func (r *atpRuntime) event(ev sandbox.Event) {
	switch ev.Kind {
	case sandbox.EventResult: // of callTool, the only AsyncFunc
		name := ""
		if e, ok := r.serverEntry(arg(ev.Args, 0)); ok {
			name = e.group + "." + e.tool.Name
		}
		r.rec.append(Entry{Kind: EntryTool, Ref: strconv.FormatUint(ev.Seq, 10), Name: name, Value: ev.Result, Error: ev.Err})
	case sandbox.EventTimer:
		r.rec.append(Entry{Kind: EntryTimer, Ref: strconv.FormatUint(ev.Seq, 10)})
	}
}

// console forwards console output to the current sink, else the log.
func (r *atpRuntime) console(level, msg string) {
	r.sinksMu.Lock()
	sink := r.onConsole
	r.sinksMu.Unlock()
	if sink != nil {
		sink(level, msg)
		return
	}
	r.eng.log.Debug("execution console", "execution_id", r.id, "console_level", level, "output", msg)
}

func (r *atpRuntime) setSinks(progress func(string, float64), console func(string, string)) {
	r.sinksMu.Lock()
	defer r.sinksMu.Unlock()
	if progress != nil {
		r.onProgress = progress
	}
	if console != nil {
		r.onConsole = console
	}
}

// ---- pausable calls ----

// park registers a call for the client: the next sequence number, the
// callback id cb_<n>, and settle for its answer.
func (r *atpRuntime) park(typ, op string, payload map[string]any, settle func(json.RawMessage) (json.RawMessage, error)) (*sandbox.Park, error) {
	n := r.seq
	r.seq++
	payload["sequenceNumber"] = n
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: the arguments are not JSON: %v", typ, op, err)
	}
	id := "cb_" + strconv.Itoa(n)
	return &sandbox.Park{
		ID:      id,
		Request: &pending{cb: Callback{ID: id, Type: typ, Operation: op, Payload: b}},
		Settle:  settle,
	}, nil
}

// asValue settles with the answer as it is, an {__error} object included
// (llm and approval, spec §5.3).
func asValue(v json.RawMessage) (json.RawMessage, error) { return v, nil }

// orThrow settles with the answer, or throws the message of an {__error}
// answer (client tools; embeddings, where the reference misuses the object
// as a vector, spec §14).
func orThrow(next func(json.RawMessage) (json.RawMessage, error)) func(json.RawMessage) (json.RawMessage, error) {
	return func(v json.RawMessage) (json.RawMessage, error) {
		if msg, ok := clientError(v); ok {
			return nil, errors.New(msg)
		}
		if next == nil {
			return v, nil
		}
		return next(v)
	}
}

// arg returns argument i, JSON null when absent.
func arg(args []json.RawMessage, i int) json.RawMessage {
	if i < len(args) {
		return args[i]
	}
	return json.RawMessage("null")
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// object decodes v as a JSON object, nil for null.
func object(v json.RawMessage) (map[string]json.RawMessage, bool) {
	if isNull(v) {
		return nil, true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return nil, false
	}
	return m, true
}

func str(v json.RawMessage) (string, bool) {
	var s string
	return s, json.Unmarshal(v, &s) == nil && len(v) > 0 && v[0] == '"'
}

func (r *atpRuntime) parkLLM(args []json.RawMessage) (*sandbox.Park, error) {
	op, _ := str(arg(args, 0))
	opts := arg(args, 1)
	name := "atp.llm." + op
	if r.llmCalls >= r.opts.llmCalls {
		return nil, sandbox.Halt(&llmCapError{max: r.opts.llmCalls})
	}
	payload := map[string]any{}
	if s, ok := str(opts); ok && op == "call" {
		payload["prompt"] = s
		payload["options"] = map[string]any{"prompt": s}
	} else {
		m, ok := object(opts)
		if !ok || m == nil {
			if op == "call" {
				return nil, fmt.Errorf("%s: expected a prompt string or an options object", name)
			}
			return nil, fmt.Errorf("%s: expected an options object", name)
		}
		required := map[string][]string{"call": {"prompt"}, "extract": {"prompt", "schema"}, "classify": {"text", "categories"}}[op]
		for _, f := range required {
			v, ok := m[f]
			if !ok || isNull(v) {
				return nil, fmt.Errorf("%s: options.%s is required", name, f)
			}
			payload[f] = v
		}
		payload["options"] = m
	}
	r.llmCalls++
	return r.park(callbackTypeLLM, op, payload, asValue)
}

func (r *atpRuntime) parkApproval(args []json.RawMessage) (*sandbox.Park, error) {
	if !r.opts.services.pauses() {
		return nil, errApprovalNotConfigured
	}
	payload := map[string]any{"message": arg(args, 0)}
	if c := arg(args, 1); !isNull(c) {
		payload["context"] = c
	}
	r.approvalCalls++
	return r.park(callbackTypeApproval, "request", payload, asValue)
}

// parkGate asks for the approval a tool's metadata forces (spec §7); it is
// not counted as an approval call. The call goes on if the answer
// approves it (see approves); anything else (a denial, an __error answer)
// rejects with "Operation <tool> denied by user" ("Client tool <tool> …").
func (r *atpRuntime) parkGate(args []json.RawMessage) (*sandbox.Park, error) {
	if !r.opts.services.pauses() {
		return nil, errApprovalNotConfigured
	}
	var i int
	if json.Unmarshal(arg(args, 0), &i) != nil || i < 0 || i >= len(r.server)+len(r.client) {
		return nil, errors.New("approval gate: unknown tool")
	}
	input := arg(args, 1)
	var message, denied string
	var about map[string]any // the approval's context
	if i < len(r.server) {
		e := r.server[i]
		md := metadataOf(e.tool.Annotations)
		message = fmt.Sprintf("Approve %s: %s", md.describe(), e.tool.Name)
		denied = fmt.Sprintf("Operation %s denied by user", e.tool.Name)
		about = map[string]any{"tool": e.tool.Name, "group": e.group, "params": input, "metadata": md}
	} else {
		t := r.client[i-len(r.server)]
		md := clientMetadata(t)
		meta := t.Metadata
		if isNull(meta) {
			meta = json.RawMessage("{}")
		}
		message = fmt.Sprintf("Approve client tool %s: %s", md.describe(), t.Name)
		denied = fmt.Sprintf("Client tool %s denied by user", t.Name)
		about = map[string]any{"tool": t.Name, "namespace": t.namespace(), "params": input, "metadata": meta, "isClientTool": true}
	}
	return r.park(callbackTypeApproval, "request", map[string]any{"message": message, "context": about}, func(v json.RawMessage) (json.RawMessage, error) {
		if !approves(v) {
			return nil, thrown(denied)
		}
		return nil, nil
	})
}

// approves reports whether an approval answer lets a gated call go on:
// whether it is an object whose own "approved" is truthy in JavaScript's
// sense (true, a number other than 0, a non-empty string, an object), as
// the reference's `answer && answer.approved`.
func approves(answer json.RawMessage) bool {
	m, ok := object(answer)
	if !ok || m == nil {
		return false
	}
	v, ok := m["approved"]
	if !ok {
		return false
	}
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	switch x := x.(type) {
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case nil:
		return false
	default: // an object or an array
		return true
	}
}

func (r *atpRuntime) parkClientTool(args []json.RawMessage) (*sandbox.Park, error) {
	var i int
	if json.Unmarshal(arg(args, 0), &i) != nil || i < len(r.server) || i >= len(r.server)+len(r.client) {
		return nil, errors.New("client tool: unknown tool")
	}
	t := r.client[i-len(r.server)]
	payload := map[string]any{"toolName": t.Name, "namespace": t.namespace(), "input": arg(args, 1)}
	return r.park(callbackTypeTool, "call", payload, orThrow(nil))
}

func (r *atpRuntime) embeddingsOff() error {
	if !r.opts.services.pauses() {
		return errEmbeddingNotProvided
	}
	return nil
}

func (r *atpRuntime) parkEmbed(args []json.RawMessage) (*sandbox.Park, error) {
	if err := r.embeddingsOff(); err != nil {
		return nil, err
	}
	input := arg(args, 0)
	var texts []string
	single, isSingle := str(input)
	switch {
	case isSingle:
		texts = []string{single}
	case json.Unmarshal(input, &texts) == nil && len(texts) > 0 && input[0] == '[':
	default:
		return nil, errors.New("atp.embedding.embed: expected a string or a non-empty array of strings")
	}
	meta, ok := object(arg(args, 1))
	if !ok {
		return nil, errors.New("atp.embedding.embed: metadata must be an object")
	}
	ms := r.clock().UnixMilli()
	ids := make([]string, len(texts))
	for i := range texts {
		ids[i] = fmt.Sprintf("emb_%d_%d_%s", ms, i, r.randomSuffix())
	}
	payload := map[string]any{"text": strings.Join(texts, "\n"), "input": input, "ids": ids}
	if meta != nil {
		payload["metadata"] = meta
	}
	return r.park(callbackTypeEmbedding, "embed", payload, orThrow(func(v json.RawMessage) (json.RawMessage, error) {
		vec, err := parseVector(v)
		if err != nil {
			return nil, err
		}
		// The client embeds payload.text once, so every text of a batch
		// gets that vector, as with the reference runtime.
		for i, text := range texts {
			r.vectors.add(embeddingRecord{ID: ids[i], Text: text, Embedding: vec, Metadata: meta})
		}
		if isSingle {
			return json.Marshal(ids[0])
		}
		return json.Marshal(ids)
	}))
}

// randomSuffix is the <rand> of an embedding id: ten base-36 digits from
// the execution's seeded stream, as Math.random().toString(36) gives.
func (r *atpRuntime) randomSuffix() string {
	s := strconv.FormatUint(r.random.Uint64()%uint64(math.Pow(36, 10)), 36)
	return strings.Repeat("0", 10-len(s)) + s
}

func (r *atpRuntime) parkSearch(args []json.RawMessage) (*sandbox.Park, error) {
	if err := r.embeddingsOff(); err != nil {
		return nil, err
	}
	query, ok := str(arg(args, 0))
	if !ok {
		return nil, errors.New("atp.embedding.search: the query must be a string")
	}
	raw := arg(args, 1)
	opts, ok := object(raw)
	if !ok {
		return nil, errors.New("atp.embedding.search: options must be an object")
	}
	var so searchOptions
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &so); err != nil {
			return nil, fmt.Errorf("atp.embedding.search: options: %s", jsonProblem(err))
		}
	}
	withQuery := map[string]json.RawMessage{}
	for k, v := range opts {
		withQuery[k] = v
	}
	withQuery["query"], _ = json.Marshal(query)
	payload := map[string]any{"query": query, "options": withQuery}
	return r.park(callbackTypeEmbedding, "search", payload, orThrow(func(v json.RawMessage) (json.RawMessage, error) {
		vec, err := parseVector(v)
		if err != nil {
			return nil, err
		}
		hits, err := r.vectors.search(vec, so)
		if err != nil {
			return nil, err
		}
		return json.Marshal(hits)
	}))
}

func (r *atpRuntime) parkSimilarity(args []json.RawMessage) (*sandbox.Park, error) {
	if err := r.embeddingsOff(); err != nil {
		return nil, err
	}
	a, ok1 := str(arg(args, 0))
	b, ok2 := str(arg(args, 1))
	if !ok1 || !ok2 {
		return nil, errors.New("atp.embedding.similarity: expected two strings")
	}
	payload := map[string]any{"text1": a, "text2": b}
	return r.park(callbackTypeEmbedding, "similarity", payload, orThrow(func(v json.RawMessage) (json.RawMessage, error) {
		var f float64
		if json.Unmarshal(v, &f) != nil {
			return nil, errors.New("the client's similarity is not a number")
		}
		return v, nil
	}))
}

// ---- server tools ----

// callTool is the AsyncFunc of every server tool: callTool(index, input).
// It runs on its own goroutine, the code awaits it as a promise, and it
// never pauses.
func (r *atpRuntime) callTool(ctx context.Context, args []json.RawMessage) (json.RawMessage, error) {
	e, ok := r.serverEntry(arg(args, 0))
	if !ok {
		return nil, errors.New("server tool: unknown tool")
	}
	input := arg(args, 1)
	out, err := r.tools.CallTool(ctx, e.group, e.tool.Name, input)
	if err == nil {
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		return out, nil
	}
	var terr *toolkit.ToolError
	if errors.As(err, &terr) {
		return nil, errors.New(terr.Message)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // the execution ended; nobody reads this
	}
	r.eng.log.Error("server tool failed", "execution_id", r.id, "group", e.group, "tool", e.tool.Name, "err", err)
	return nil, fmt.Errorf("the tool %s.%s failed with an internal error", e.group, e.tool.Name)
}

// serverEntry is the server tool of a JSON index.
func (r *atpRuntime) serverEntry(index json.RawMessage) (serverEntry, bool) {
	var i int
	if json.Unmarshal(index, &i) != nil || i < 0 || i >= len(r.server) {
		return serverEntry{}, false
	}
	return r.server[i], true
}

// ---- synchronous host functions ----

func (r *atpRuntime) scope() string {
	if r.owner == "" {
		return "anonymous"
	}
	return r.owner
}

func (r *atpRuntime) cacheKey(args []json.RawMessage) string {
	k, _ := str(arg(args, 0)) // the prelude passes String(key)
	return k
}

func (r *atpRuntime) cacheGet(args []json.RawMessage) (json.RawMessage, error) {
	key := r.cacheKey(args)
	v, ok, err := r.eng.cache.Get(r.ctx, r.scope(), key)
	if err != nil {
		return nil, r.cacheFailed("get", key, err)
	}
	if !ok {
		v = json.RawMessage("null")
	}
	r.rec.append(Entry{Kind: EntryCache, Name: "get", Ref: key, Value: v})
	return v, nil
}

func (r *atpRuntime) cacheSet(args []json.RawMessage) (json.RawMessage, error) {
	key := r.cacheKey(args)
	var ttl time.Duration
	var sec float64
	if json.Unmarshal(arg(args, 2), &sec) == nil && sec > 0 {
		ttl = time.Duration(math.Min(sec, 1e9) * float64(time.Second))
	}
	if err := r.eng.cache.Set(r.ctx, r.scope(), key, arg(args, 1), ttl); err != nil {
		return nil, r.cacheFailed("set", key, err)
	}
	r.rec.append(Entry{Kind: EntryCache, Name: "set", Ref: key})
	return nil, nil
}

func (r *atpRuntime) cacheHas(args []json.RawMessage) (json.RawMessage, error) {
	key := r.cacheKey(args)
	ok, err := r.eng.cache.Has(r.ctx, r.scope(), key)
	if err != nil {
		return nil, r.cacheFailed("has", key, err)
	}
	v := json.RawMessage(strconv.FormatBool(ok))
	r.rec.append(Entry{Kind: EntryCache, Name: "has", Ref: key, Value: v})
	return v, nil
}

func (r *atpRuntime) cacheDelete(args []json.RawMessage) (json.RawMessage, error) {
	key := r.cacheKey(args)
	if err := r.eng.cache.Delete(r.ctx, r.scope(), key); err != nil {
		return nil, r.cacheFailed("delete", key, err)
	}
	r.rec.append(Entry{Kind: EntryCache, Name: "delete", Ref: key})
	return nil, nil
}

func (r *atpRuntime) cacheClear([]json.RawMessage) (json.RawMessage, error) {
	if err := r.eng.cache.Clear(r.ctx, r.scope()); err != nil {
		return nil, r.cacheFailed("clear", "", err)
	}
	r.rec.append(Entry{Kind: EntryCache, Name: "clear"})
	return nil, nil
}

// cacheFailed journals a failed cache call and returns what the code sees.
func (r *atpRuntime) cacheFailed(op, key string, err error) error {
	msg := "atp.cache." + op + ": " + err.Error()
	if !errors.Is(err, ErrCacheFull) {
		r.eng.log.Error("cache failed", "execution_id", r.id, "op", op, "err", err)
		msg = "atp.cache." + op + ": the cache is unavailable"
	}
	r.rec.append(Entry{Kind: EntryCache, Name: op, Ref: key, Error: msg})
	return errors.New(msg)
}

func (r *atpRuntime) reportProgress(args []json.RawMessage) (json.RawMessage, error) {
	r.progress++
	r.sinksMu.Lock()
	sink := r.onProgress
	r.sinksMu.Unlock()
	if sink == nil || r.progress > maxProgressReports {
		return nil, nil
	}
	msg, ok := str(arg(args, 0))
	if !ok && !isNull(arg(args, 0)) {
		msg = string(arg(args, 0))
	}
	var fraction float64
	if json.Unmarshal(arg(args, 1), &fraction) != nil || math.IsNaN(fraction) {
		fraction = 0
	}
	sink(msg, fraction)
	return nil, nil
}

func (r *atpRuntime) embeddings([]json.RawMessage) (json.RawMessage, error) {
	if r.vectors.records == nil {
		return json.RawMessage("[]"), nil
	}
	return json.Marshal(r.vectors.records)
}

func (r *atpRuntime) embeddingCount([]json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(strconv.Itoa(len(r.vectors.records))), nil
}

// logger returns l, or one that discards.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
