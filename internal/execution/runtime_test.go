package execution

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
	"github.com/google/go-cmp/cmp"
)

// TestRuntimeCallbacks checks each pausing runtime call: the exact callback
// it pauses with (spec §5.2), and that the answer comes back as its value.
func TestRuntimeCallbacks(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	tests := []struct {
		name, code       string
		typ, op, payload string
		answer, want     string
	}{
		{"llm.call with a string", `return await atp.llm.call("hi")`,
			"llm", "call", `{"prompt":"hi","options":{"prompt":"hi"},"sequenceNumber":0}`, `"LLM(hi)"`, `"LLM(hi)"`},
		{"llm.call with options", `return await atp.llm.call({prompt: "p", temperature: 0.5, model: "m"})`,
			"llm", "call", `{"prompt":"p","options":{"prompt":"p","temperature":0.5,"model":"m"},"sequenceNumber":0}`, `"ok"`, `"ok"`},
		{"llm.extract", `return await atp.llm.extract({prompt: "who", schema: {type: "object"}})`,
			"llm", "extract", `{"prompt":"who","schema":{"type":"object"},"options":{"prompt":"who","schema":{"type":"object"}},"sequenceNumber":0}`,
			`{"name":"Alice"}`, `{"name":"Alice"}`},
		{"llm.classify", `return await atp.llm.classify({text: "great!", categories: ["pos", "neg"]})`,
			"llm", "classify", `{"text":"great!","categories":["pos","neg"],"options":{"text":"great!","categories":["pos","neg"]},"sequenceNumber":0}`,
			`"pos"`, `"pos"`},
		{"approval.request with context", `return await atp.approval.request("ok?", {amount: 3})`,
			"approval", "request", `{"message":"ok?","context":{"amount":3},"sequenceNumber":0}`,
			`{"approved":true,"response":"yes","timestamp":1}`, `{"approved":true,"response":"yes","timestamp":1}`},
		{"approval.request without context", `const r = await atp.approval.request("go?"); return r.approved`,
			"approval", "request", `{"message":"go?","sequenceNumber":0}`, `{"approved":false,"timestamp":1}`, `false`},
		{"embedding.similarity", `return await atp.embedding.similarity("a", "b")`,
			"embedding", "similarity", `{"text1":"a","text2":"b","sequenceNumber":0}`, `0.75`, `0.75`},
		{"client tool", `return await api.client.getLocation({precise: true})`,
			"tool", "call", `{"toolName":"getLocation","namespace":"client","input":{"precise":true},"sequenceNumber":0}`,
			`{"city":"TLV"}`, `{"city":"TLV"}`},
		{"client tool merged into a server group", `return [await api.math.helper({x: 1}), typeof api.math.add]`,
			"tool", "call", `{"toolName":"helper","namespace":"math","input":{"x":1},"sequenceNumber":0}`, `7`, `[7,"function"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := execute(t, e, request(tt.code, &fakeTools{}))
			if res.Status != StatusPaused || res.NeedsCallback == nil || len(res.NeedsCallbacks) != 0 {
				t.Fatalf("want one callback: %s", dump(res))
			}
			cb := res.NeedsCallback
			if cb.ID != "" || cb.Type != tt.typ || cb.Operation != tt.op {
				t.Errorf("callback = %s, want type %s operation %s and no id", dump(cb), tt.typ, tt.op)
			}
			if diff := cmp.Diff(canon(t, tt.payload), canon(t, string(cb.Payload))); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			wantCompleted(t, resume(t, e, "c1", res, tt.answer), tt.want)
		})
	}
}

func TestEmbeddings(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	res := execute(t, e, request(`
		const empty = await atp.embedding.search("anything");
		const a = await atp.embedding.embed("cats purr", {collection: "pets"});
		const [b, c] = await atp.embedding.embed(["dogs bark", "dogs run"], {collection: "pets", kind: "dog"});
		const d = await atp.embedding.embed("stocks fell", {collection: "news"});
		const pets = await atp.embedding.search("kittens", {collection: "pets", topK: 2});
		const strict = await atp.embedding.search("kittens", {minSimilarity: 0.999});
		const dogs = await atp.embedding.search("puppies", {filter: {kind: "dog"}});
		return {empty, ids: [a, b, c, d], pets, strict, dogs, count: atp.embedding.count(), texts: atp.embedding.getAll().map(r => r.text)}`,
		&fakeTools{}))

	// The first search of an empty store still asks for the query vector.
	cb := res.NeedsCallback
	if cb == nil || cb.Operation != "search" {
		t.Fatalf("first pause: %s", dump(res))
	}
	if diff := cmp.Diff(canon(t, `{"query":"anything","options":{"query":"anything"},"sequenceNumber":0}`), canon(t, string(cb.Payload))); diff != "" {
		t.Errorf("search payload (-want +got):\n%s", diff)
	}
	res = resume(t, e, "c1", res, `[1,0,0]`)

	// embed: the payload carries the ids the call will return.
	var p struct {
		Text     string         `json:"text"`
		Input    any            `json:"input"`
		IDs      []string       `json:"ids"`
		Metadata map[string]any `json:"metadata"`
		Seq      int            `json:"sequenceNumber"`
	}
	if err := json.Unmarshal(res.NeedsCallback.Payload, &p); err != nil || res.NeedsCallback.Operation != "embed" {
		t.Fatalf("embed pause: %s", dump(res))
	}
	idPattern := regexp.MustCompile(`^emb_\d{13}_0_[0-9a-z]{10}$`)
	if p.Text != "cats purr" || p.Input != "cats purr" || len(p.IDs) != 1 || !idPattern.MatchString(p.IDs[0]) ||
		p.Metadata["collection"] != "pets" || p.Seq != 1 {
		t.Errorf("embed payload = %s", res.NeedsCallback.Payload)
	}
	res = resume(t, e, "c1", res, `[1,0,0]`)
	if err := json.Unmarshal(res.NeedsCallback.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Text != "dogs bark\ndogs run" || len(p.IDs) != 2 || !strings.Contains(p.IDs[1], "_1_") {
		t.Errorf("batch embed payload = %s", res.NeedsCallback.Payload)
	}
	res = resume(t, e, "c1", res, `[0,1,0]`)
	res = resume(t, e, "c1", res, `[0,0,1]`)
	res = resume(t, e, "c1", res, `[0.9,0.1,0]`) // kittens
	res = resume(t, e, "c1", res, `[0.9,0.1,0]`) // kittens, strict
	res = resume(t, e, "c1", res, `[0,1,0]`)     // puppies
	if res.Status != StatusCompleted {
		t.Fatalf("end: %s", dump(res))
	}
	var out struct {
		Empty []any    `json:"empty"`
		IDs   []string `json:"ids"`
		Pets  []struct {
			ID         string         `json:"id"`
			Text       string         `json:"text"`
			Similarity float64        `json:"similarity"`
			Metadata   map[string]any `json:"metadata"`
		} `json:"pets"`
		Strict []any `json:"strict"`
		Dogs   []struct {
			Text string `json:"text"`
		} `json:"dogs"`
		Count int      `json:"count"`
		Texts []string `json:"texts"`
	}
	if err := json.Unmarshal(res.Result, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Empty) != 0 || len(out.Strict) != 0 || out.Count != 4 {
		t.Errorf("empty %v, strict %v, count %d", out.Empty, out.Strict, out.Count)
	}
	if len(out.Pets) != 2 || out.Pets[0].Text != "cats purr" || out.Pets[0].ID != out.IDs[0] ||
		out.Pets[0].Metadata["collection"] != "pets" || out.Pets[0].Similarity <= out.Pets[1].Similarity {
		t.Errorf("pets = %+v", out.Pets)
	}
	if len(out.Dogs) != 2 || out.Dogs[0].Text != "dogs bark" {
		t.Errorf("dogs = %+v", out.Dogs)
	}
	if diff := cmp.Diff([]string{"cats purr", "dogs bark", "dogs run", "stocks fell"}, out.Texts); diff != "" {
		t.Errorf("getAll (-want +got):\n%s", diff)
	}
}

func TestBatching(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	t.Run("Promise.all of three llm calls", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await Promise.all([atp.llm.call("A"), atp.llm.call("B"), atp.llm.call({prompt: "C"})])`, &fakeTools{}))
		if res.NeedsCallback != nil || len(res.NeedsCallbacks) != 3 {
			t.Fatalf("want one batch of 3: %s", dump(res))
		}
		ids := map[string]bool{}
		for i, cb := range res.NeedsCallbacks {
			ids[cb.ID] = true
			if cb.Type != "llm" || cb.Operation != "call" {
				t.Errorf("callback %d = %s", i, dump(cb))
			}
			var p struct{ Prompt string }
			_ = json.Unmarshal(cb.Payload, &p)
			if want := string(rune('A' + i)); p.Prompt != want {
				t.Errorf("callback %d prompt %q, want %q", i, p.Prompt, want)
			}
		}
		if len(ids) != 3 || ids[""] {
			t.Errorf("ids are not unique: %v", ids)
		}
		// Answered in reverse order: matched by id, not position.
		cbs := res.NeedsCallbacks
		next, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Batch: true, Answers: []Answer{
			{ID: cbs[2].ID, Value: json.RawMessage(`"c"`)},
			{ID: cbs[0].ID, Value: json.RawMessage(`"a"`)},
			{ID: cbs[1].ID, Value: json.RawMessage(`"b"`)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		wantCompleted(t, next, `["a","b","c"]`)
		if next.Stats.LLMCallsCount != 3 {
			t.Errorf("llmCallsCount = %d", next.Stats.LLMCallsCount)
		}
	})
	t.Run("map inside Promise.all, answered by position", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`const items = ["x", "y"];
			const out = await Promise.all(items.map(async item => ({item, text: await atp.llm.call({prompt: "describe " + item})})));
			return out`, &fakeTools{}))
		if len(res.NeedsCallbacks) != 2 {
			t.Fatalf("want one batch of 2: %s", dump(res))
		}
		next, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Batch: true,
			Answers: []Answer{{Value: json.RawMessage(`"X!"`)}, {Value: json.RawMessage(`"Y!"`)}}})
		if err != nil {
			t.Fatal(err)
		}
		wantCompleted(t, next, `[{"item":"x","text":"X!"},{"item":"y","text":"Y!"}]`)
	})
	t.Run("mixed callback types with normalised payloads", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await Promise.all([
			atp.approval.request("ok?"), api.client.getLocation({}), atp.llm.call("q"), api.math.add({a: 1, b: 1})])`, &fakeTools{}))
		if len(res.NeedsCallbacks) != 3 {
			t.Fatalf("want one batch of 3 (the server tool does not pause): %s", dump(res))
		}
		if got := res.NeedsCallbacks[0]; got.Type != "approval" || canon(t, string(got.Payload)) != canon(t, `{"message":"ok?","sequenceNumber":0}`) {
			t.Errorf("approval in a batch = %s", dump(got))
		}
		next := resume(t, e, "c1", res, `{"approved":true}`, `{"city":"TLV"}`, `"answer"`)
		wantCompleted(t, next, `[{"approved":true},{"city":"TLV"},"answer",{"sum":2}]`)
	})
}

// TestSameVM shows that a resume continues the VM rather than re-running
// the code: state from before the first pause survives, server tools run
// once, and the clock and randomness are the recorded ones.
func TestSameVM(t *testing.T) {
	t.Parallel()
	var js journals
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	e := newEngine(t, Config{NewJournal: js.new, Now: clk.now})
	tools := &fakeTools{}
	res := execute(t, e, request(`
		globalThis.runs = (globalThis.runs || 0) + 1;
		const t0 = Date.now();
		const r = Math.random();
		const x = await api.math.add({a: 1, b: 2});
		const a = await atp.llm.call("first");
		const b = await atp.llm.call("second " + a);
		const y = await api.math.add({a: x.sum, b: 10});
		return {runs, t0, r, a, b, x: x.sum, y: y.sum, t1: new Date().getTime()}`, tools))
	if res.NeedsCallback == nil || !strings.Contains(string(res.NeedsCallback.Payload), `"first"`) {
		t.Fatalf("first pause: %s", dump(res))
	}
	clk.advance(time.Minute)
	res = resume(t, e, "c1", res, `"A"`)
	if res.NeedsCallback == nil || !strings.Contains(string(res.NeedsCallback.Payload), `"second A"`) {
		t.Fatalf("second pause: %s", dump(res))
	}
	if seq := string(res.NeedsCallback.Payload); !strings.Contains(seq, `"sequenceNumber":1`) {
		t.Errorf("second payload %s, want sequenceNumber 1", seq)
	}
	res = resume(t, e, "c1", res, `"B"`)
	if res.Status != StatusCompleted {
		t.Fatalf("end: %s", dump(res))
	}
	var out struct {
		Runs, T0, X, Y, T1 int64
		R                  float64
		A, B               string
	}
	if err := json.Unmarshal(res.Result, &out); err != nil {
		t.Fatal(err)
	}
	if out.Runs != 1 || out.A != "A" || out.B != "B" || out.X != 3 || out.Y != 13 {
		t.Errorf("result = %s", res.Result)
	}
	if out.T0 != 1_700_000_000_000 || out.T1 != 1_700_000_060_000 {
		t.Errorf("clock readings %d, %d: want the engine's clock before and after the advance", out.T0, out.T1)
	}
	if n := tools.count(); n != 2 {
		t.Errorf("server tools ran %d times, want 2", n)
	}

	entries := js.of(res.ExecutionID)
	var kinds []string
	for i, en := range entries {
		if en.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d", i, en.Seq)
		}
		kinds = append(kinds, string(en.Kind)+":"+en.Ref+":"+en.Name+":"+string(en.Value))
	}
	want := []string{
		"seed:::" + string(entries[0].Value),
		"time:::1700000000000",
		"tool:0:math.add:" + `{"sum":3}`,
		"answer:cb_0::" + `"A"`,
		"answer:cb_1::" + `"B"`,
		"tool:1:math.add:" + `{"sum":13}`,
		"time:::1700000060000",
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
	if len(entries[0].Value) != 66 { // a quoted 64-digit hex seed
		t.Errorf("seed = %s", entries[0].Value)
	}
}

func TestJournalFoldsClockReadings(t *testing.T) {
	t.Parallel()
	var js journals
	clk := &clock{t: time.UnixMilli(5)}
	e := newEngine(t, Config{NewJournal: js.new, Now: clk.now})
	res := execute(t, e, request(`let n = 0; for (let i = 0; i < 1000; i++) n += Date.now(); 
		await new Promise(r => setTimeout(r, 1)); await atp.cache.set("k", 1); return [n, await atp.cache.get("k"), await atp.cache.has("nope")]`, &fakeTools{}))
	wantCompleted(t, res, `[5000,1,false]`)
	var got []string
	for _, en := range js.of(res.ExecutionID)[1:] {
		got = append(got, string(en.Kind)+":"+en.Name+":"+en.Ref+":"+string(en.Value)+":"+strconv.Itoa(en.Count))
	}
	want := []string{"time:::5:1000", "timer::1::0", "cache:set:k::0", "cache:get:k:1:0", "cache:has:nope:false:0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
}

func TestServerTools(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	tests := []struct{ name, code, want string }{
		{"result", `return await api.math.add({a: 2, b: 3})`, `{"sum":5}`},
		{"nested group", `return await api.github.readOnly.getUser({login: "x"})`, `{"did":"getUser"}`},
		{"tool error is a catchable Error", `try { await api.math.fail({}) } catch (e) { return [e instanceof Error, e.message] }`, `[true,"upstream said no"]`},
		{"internal errors are hidden", `try { await api.math.broken({}) } catch (e) { return e.message }`, `"the tool math.broken failed with an internal error"`},
		{"concurrent calls", `return await Promise.all([1, 2, 3].map(i => api.math.add({a: i, b: i})))`, `[{"sum":2},{"sum":4},{"sum":6}]`},
		{"no require, process, fetch, module, exports", `return [typeof require, typeof process, typeof fetch, typeof module, typeof exports]`,
			`["undefined","undefined","undefined","undefined","undefined"]`},
		{"timers, console, progress", `console.log("hi"); atp.progress.report("half", 0.5);
			await new Promise(r => setTimeout(r, 5)); return typeof setTimeout`, `"function"`},
		{"JSON-cloned arguments", `const input = {a: 1, b: 2}; const r = await api.math.add(input); input.a = 5; return [r, input.a]`, `[{"sum":3},5]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantCompleted(t, execute(t, e, request(tt.code, &fakeTools{})), tt.want)
		})
	}
	t.Run("uncaught tool error fails the execution", func(t *testing.T) {
		t.Parallel()
		wantFailed(t, execute(t, e, request(`await api.math.fail({})`, &fakeTools{})), StatusFailed, CodeExecutionFailed, "upstream said no")
	})
	t.Run("without a ToolCaller", func(t *testing.T) {
		t.Parallel()
		req := request(`try { await api.math.add({}) } catch (e) { return e.message }`, nil)
		req.Tools = nil
		wantCompleted(t, execute(t, e, req), `"server tools are not available to this execution"`)
	})
}

func TestClientAnswersWithErrors(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	errAnswer := `{"__error":true,"message":"handler blew up"}`
	tests := []struct{ name, code, want string }{
		{"client tool throws a catchable Error", `try { await api.client.getLocation({}) } catch (e) { return [e instanceof Error, e.message] }`,
			`[true,"handler blew up"]`},
		{"llm returns the error object", `const r = await atp.llm.call("x"); return [r.__error, r.message]`, `[true,"handler blew up"]`},
		{"approval returns the error object", `const r = await atp.approval.request("x"); return r`, errAnswer},
		{"embedding throws", `try { await atp.embedding.embed("x") } catch (e) { return e.message }`, `"handler blew up"`},
		{"search throws", `try { await atp.embedding.search("x") } catch (e) { return e.message }`, `"handler blew up"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := execute(t, e, request(tt.code, &fakeTools{}))
			wantCompleted(t, resume(t, e, "c1", res, errAnswer), tt.want)
		})
	}
	t.Run("an uncaught client tool error fails the execution", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await api.client.getLocation({})`, &fakeTools{}))
		wantFailed(t, resume(t, e, "c1", res, errAnswer), StatusFailed, CodeExecutionFailed, "handler blew up")
	})
	t.Run("a non-vector embedding answer throws", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`try { await atp.embedding.embed("x") } catch (e) { return e.message }`, &fakeTools{}))
		wantCompleted(t, resume(t, e, "c1", res, `"not a vector"`), `"the client's embedding is not a non-empty array of numbers"`)
	})
}

func TestServiceNotProvided(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	for _, batch := range []bool{false, true} {
		code := `return await atp.llm.call("x")`
		if batch {
			code = `return await Promise.all([atp.approval.request("a"), atp.llm.call("x")])`
		}
		res := execute(t, e, request(code, &fakeTools{}))
		values := []string{`{"__error":true,"message":"LLM service not provided by client"}`}
		if batch {
			values = []string{`{"approved":true}`, values[0]}
		}
		got := resume(t, e, "c1", res, values...)
		want := &Result{ExecutionID: res.ExecutionID, Status: StatusFailed,
			Error: &ExecError{Message: "LLM service not provided by client", Code: CodeServiceNotProvided}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("batch=%v (-want +got):\n%s", batch, diff)
		}
		_, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: []Answer{{Value: json.RawMessage(`1`)}}})
		wantKind(t, err, toolkit.KindNotFound) // the state is gone
	}
}

func TestApprovalGates(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	approve, deny := `{"approved":true,"timestamp":1}`, `{"approved":false,"timestamp":1}`
	tests := []struct {
		name, tool, code, message, context string
		toolCalls                          int // server tool calls after approval
	}{
		{"destructive server tool", "drop", `return await api.admin.drop({table: "t"})`,
			"Approve destructive operation: drop", `{"tool":"drop","group":"admin","params":{"table":"t"},"metadata":{"operationType":"destructive"}}`, 1},
		{"sensitive server tool", "peek", `return await api.admin.peek({})`,
			"Approve sensitive operation: peek", `{"tool":"peek","group":"admin","params":{},"metadata":{"sensitivityLevel":"sensitive"}}`, 1},
		{"server tool requiring approval", "touch", `return await api.admin.touch({})`,
			"Approve operation: touch", `{"tool":"touch","group":"admin","params":{},"metadata":{"requiresApproval":true}}`, 1},
		{"client tool requiring approval", "wipe", `return await api.client.wipe({all: true})`,
			"Approve client tool operation: wipe", `{"tool":"wipe","namespace":"client","params":{"all":true},"metadata":{"requiresApproval":true},"isClientTool":true}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name+" approved", func(t *testing.T) {
			t.Parallel()
			tools := &fakeTools{}
			res := execute(t, e, request(tt.code, tools))
			cb := res.NeedsCallback
			if cb == nil || cb.Type != "approval" || cb.Operation != "request" {
				t.Fatalf("want an approval first: %s", dump(res))
			}
			want := `{"message":` + dump(tt.message) + `,"context":` + tt.context + `,"sequenceNumber":0}`
			if diff := cmp.Diff(canon(t, want), canon(t, string(cb.Payload))); diff != "" {
				t.Errorf("approval payload (-want +got):\n%s", diff)
			}
			if tools.count() != 0 {
				t.Fatal("the tool ran before the approval")
			}
			res = resume(t, e, "c1", res, approve)
			if tt.toolCalls == 0 { // a client tool: now its own callback
				if res.NeedsCallback == nil || res.NeedsCallback.Type != "tool" {
					t.Fatalf("want the tool callback: %s", dump(res))
				}
				res = resume(t, e, "c1", res, `"wiped"`)
			}
			if res.Status != StatusCompleted || tools.count() != tt.toolCalls || res.Stats.ApprovalCallsCount != 0 {
				t.Errorf("end: %s, %d tool calls", dump(res), tools.count())
			}
		})
		t.Run(tt.name+" denied", func(t *testing.T) {
			t.Parallel()
			tools := &fakeTools{}
			res := execute(t, e, request(`try { `+tt.code+` } catch (e) { return e.message }`, tools))
			want := `"Operation ` + tt.tool + ` denied by user"`
			if tt.toolCalls == 0 {
				want = `"Client tool ` + tt.tool + ` denied by user"`
			}
			wantCompleted(t, resume(t, e, "c1", res, deny), want)
			if tools.count() != 0 {
				t.Error("a denied tool ran")
			}
		})
	}
	t.Run("explicit approvals are counted", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`await atp.approval.request("a"); await api.admin.touch({}); return 1`, &fakeTools{}))
		res = resume(t, e, "c1", res, approve)
		res = resume(t, e, "c1", res, approve)
		if res.Status != StatusCompleted || res.Stats.ApprovalCallsCount != 1 {
			t.Errorf("end: %s", dump(res))
		}
	})
}

func TestServicesNotClaimed(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	req := request(`const out = [];
		for (const f of [() => atp.approval.request("x"), () => atp.embedding.embed("x"), () => api.admin.drop({})]) {
			try { await f() } catch (e) { out.push(e.message) } }
		return out`, &fakeTools{})
	req.Options.ClientServices = &ClientServices{}
	wantCompleted(t, execute(t, e, req), `["Approval handler not configured. Human approval is required but no handler is set.",
		"Embedding service not provided by client", "Approval handler not configured. Human approval is required but no handler is set."]`)
}

func TestCache(t *testing.T) {
	t.Parallel()
	cacheClock := &clock{t: time.Unix(1000, 0)}
	e := newEngine(t, Config{Cache: NewMemoryCache(MemoryCacheOptions{Now: cacheClock.now})})
	run := func(owner, code string) *Result {
		req := request(code, &fakeTools{})
		req.Owner = owner
		return execute(t, e, req)
	}
	wantCompleted(t, run("alice", `await atp.cache.set("k", {v: 1}); await atp.cache.set("short", 1, 5);
		return [await atp.cache.get("k"), await atp.cache.has("k"), await atp.cache.get("missing")]`), `[{"v":1},true,null]`)
	wantCompleted(t, run("alice", `return [await atp.cache.get("k"), await atp.cache.get("short")]`), `[{"v":1},1]`)
	wantCompleted(t, run("bob", `return [await atp.cache.get("k"), await atp.cache.has("k")]`), `[null,false]`)
	wantCompleted(t, run("", `await atp.cache.set("k", "anon"); return await atp.cache.get("k")`), `"anon"`)
	cacheClock.advance(10 * time.Second)
	wantCompleted(t, run("alice", `const s = await atp.cache.get("short"); await atp.cache.delete("k");
		return [s, await atp.cache.get("k")]`), `[null,null]`)
	wantCompleted(t, run("alice", `await atp.cache.set("a", 1); await atp.cache.set("b", 2); await atp.cache.clear();
		return [await atp.cache.has("a"), await atp.cache.has("b")]`), `[false,false]`)
	wantCompleted(t, run("", `return await atp.cache.get("k")`), `"anon"`) // clear is per client
}

func TestMemoryCacheCaps(t *testing.T) {
	t.Parallel()
	c := NewMemoryCache(MemoryCacheOptions{MaxKeysPerScope: 2, MaxValueBytes: 10, MaxBytes: 30})
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		if err := c.Set(ctx, "s", k, json.RawMessage(`1`), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set(ctx, "s", "c", json.RawMessage(`1`), 0); err == nil || !strings.Contains(err.Error(), "at most 2 keys") {
		t.Errorf("third key: %v", err)
	}
	if err := c.Set(ctx, "s", "a", json.RawMessage(`2`), 0); err != nil {
		t.Errorf("overwriting a key at the cap: %v", err)
	}
	if err := c.Set(ctx, "t", "x", json.RawMessage(`"0123456789"`), 0); err == nil {
		t.Error("a value over MaxValueBytes was stored")
	}
	if err := c.Set(ctx, "t", "x", json.RawMessage(`"0123456"`), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "u", "yyyyyyyyyy", json.RawMessage(`"01234567"`), 0); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("over MaxBytes: %v", err)
	}
}

func TestProgressAndConsole(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	var mu sync.Mutex
	var progress, console []string
	req := request(`atp.progress.report("start", 0); console.log("step", {n: 1});
		await atp.llm.call("x");
		atp.progress.report("done", 1); console.warn("late");
		for (let i = 0; i < 2000; i++) atp.progress.report("spam", 0.5);
		return 1`, &fakeTools{})
	req.OnProgress = func(msg string, f float64) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, msg+":"+strconv.Itoa(int(f*100)))
	}
	req.OnConsole = func(level, msg string) {
		mu.Lock()
		defer mu.Unlock()
		console = append(console, level+" "+msg)
	}
	res := execute(t, e, req)
	var resumedProgress []string
	res, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID,
		Answers: []Answer{{Value: json.RawMessage(`"y"`)}},
		OnProgress: func(msg string, f float64) {
			mu.Lock()
			defer mu.Unlock()
			resumedProgress = append(resumedProgress, msg)
		}})
	if err != nil || res.Status != StatusCompleted {
		t.Fatalf("resume: %v %s", err, dump(res))
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"start:0"}, progress); diff != "" {
		t.Errorf("progress before the pause (-want +got):\n%s", diff)
	}
	if len(resumedProgress) != maxProgressReports-1 || resumedProgress[0] != "done" {
		t.Errorf("progress after resume: %d reports starting %v", len(resumedProgress), resumedProgress[:1])
	}
	if diff := cmp.Diff([]string{`info step {"n":1}`, "warn late"}, console); diff != "" {
		t.Errorf("console (-want +got):\n%s", diff)
	}
}
