package execution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
	"github.com/google/go-cmp/cmp"
)

func TestClassification(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{MaxResultBytes: 1000, MaxCodeBytes: 2000})
	tests := []struct {
		name, code       string
		status           Status
		errCode, message string
	}{
		{"thrown Error", `throw new Error("boom")`, StatusFailed, CodeExecutionFailed, "Error: boom"},
		{"syntax", `return {{;`, StatusParseError, CodeSyntaxError, "SyntaxError"},
		{"reference", `foo.bar`, StatusFailed, CodeReferenceError, "ReferenceError: foo is not defined"},
		{"type", `null.x`, StatusFailed, CodeTypeError, "TypeError"},
		{"not a function", `const f = 1; f()`, StatusFailed, CodeTypeError, "TypeError"},
		{"runtime SyntaxError", `JSON.parse("{")`, StatusParseError, CodeSyntaxError, "SyntaxError"},
		{"thrown string", `throw "plain"`, StatusFailed, CodeExecutionFailed, "plain"},
		{"function result", `return () => 1`, StatusFailed, CodeExecutionFailed, "could not be cloned"},
		{"nested function result", `return {ok: 1, cb() {}}`, StatusFailed, CodeExecutionFailed, "could not be cloned"},
		{"result too large", `return "x".repeat(2000)`, StatusFailed, CodeExecutionFailed, "more than the limit of 1000"},
		{"code too large", `return "` + strings.Repeat("x", 2000) + `"`, StatusValidationFailed, CodeValidationFailed, "more than the limit of 2000"},
		{"stack overflow", `function f() { return f() } return f()`, StatusFailed, CodeExecutionFailed, "Maximum call stack size exceeded"},
		{"TypeScript is not JavaScript", `const x: number = 1; return x`, StatusParseError, CodeSyntaxError, "SyntaxError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := execute(t, e, request(tt.code, &fakeTools{}))
			wantFailed(t, res, tt.status, tt.errCode, tt.message)
			if res.ExecutionID == "" || res.Result != nil {
				t.Errorf("result = %s", dump(res))
			}
		})
	}
	t.Run("undefined completes without a result", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`const x = 1;`, &fakeTools{}))
		if res.Status != StatusCompleted || res.Result != nil || strings.Contains(dump(res), `"result"`) {
			t.Errorf("got %s", dump(res))
		}
	})
	t.Run("the wire shape", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return {a: [1, "b", null]}`, &fakeTools{}))
		res.ExecutionID = "x"
		want := `{"executionId":"x","status":"completed","result":{"a":[1,"b",null]},
			"stats":{"duration":0,"memoryUsed":0,"llmCallsCount":0,"approvalCallsCount":0}}`
		res.Stats.Duration, res.Stats.MemoryUsed = 0, 0
		if diff := cmp.Diff(canon(t, want), canon(t, dump(res))); diff != "" {
			t.Errorf("JSON (-want +got):\n%s", diff)
		}
	})
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	t.Run("busy loop", func(t *testing.T) {
		t.Parallel()
		req := request(`while (true) {}`, &fakeTools{})
		req.Options.Timeout = 200 * time.Millisecond
		res := execute(t, e, req)
		wantFailed(t, res, StatusTimeout, CodeTimeout, "time limit of 200ms")
		if !res.Error.Retryable || res.Stats.Duration < 200 || res.Stats.Duration > 2000 {
			t.Errorf("got %s", dump(res))
		}
	})
	t.Run("paused time does not count", func(t *testing.T) {
		t.Parallel()
		req := request(`const a = await atp.llm.call("x"); return a`, &fakeTools{})
		req.Options.Timeout = 100 * time.Millisecond
		res := execute(t, e, req)
		time.Sleep(150 * time.Millisecond) // longer than the whole limit, paused
		res = resume(t, e, "c1", res, `"late but fine"`)
		wantCompleted(t, res, `"late but fine"`)
		if res.Stats.Duration >= 100 {
			t.Errorf("duration %d ms counts the pause", res.Stats.Duration)
		}
	})
	t.Run("waiting on a server tool counts", func(t *testing.T) {
		t.Parallel()
		tools := &fakeTools{block: make(chan struct{})}
		defer close(tools.block)
		req := request(`return await api.math.slow({})`, tools)
		req.Options.Timeout = 100 * time.Millisecond
		wantFailed(t, execute(t, e, req), StatusTimeout, CodeTimeout, "time limit")
	})
	t.Run("clamped to the maximum", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t, Config{MaxTimeout: 150 * time.Millisecond})
		req := request(`while (true) {}`, &fakeTools{})
		req.Options.Timeout = time.Hour
		wantFailed(t, execute(t, e, req), StatusTimeout, CodeTimeout, "time limit of 150ms")
	})
}

func TestLLMCallCap(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	opts, err := ParseOptions(json.RawMessage(`{"maxLLMCalls": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	req := request(`const out = [];
		for (let i = 0; i < 5; i++) { try { out.push(await atp.llm.call("q" + i)) } catch (e) { out.push("caught") } }
		return out`, &fakeTools{})
	req.Options = opts
	res := execute(t, e, req)
	res = resume(t, e, "c1", res, `"a"`)
	res = resume(t, e, "c1", res, `"b"`)
	wantFailed(t, res, StatusLLMCallsExceeded, CodeLLMCallLimit, "Exceeded max LLM calls: 2")
	if res.Error.Message != "Exceeded max LLM calls: 2" || res.Stats.LLMCallsCount != 2 {
		t.Errorf("got %s", dump(res))
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		config string
		want   Options
		err    string
	}{
		{``, Options{}, ""},
		{`null`, Options{}, ""},
		{`{}`, Options{}, ""},
		{`{"timeout": 2000, "memoryLimit": 1000000, "llmCalls": 3, "provenanceHints": ["x"], "unknown": {"a": 1}}`,
			Options{Timeout: 2 * time.Second, Memory: 1000000, LLMCalls: 3}, ""},
		{`{"memory": 5, "maxMemory": 7, "maxLLMCalls": 9}`, Options{Memory: 5, LLMCalls: 9}, ""},
		{`{"maxMemory": 7, "memoryLimit": 0}`, Options{Memory: 7}, ""},
		{`{"timeout": null, "clientServices": {"hasLLM": true, "hasTools": false}}`,
			Options{ClientServices: &ClientServices{HasLLM: true}}, ""},
		{`{"timeout": 1e300, "memory": 1e300, "llmCalls": 1e300}`, Options{Timeout: 1e12 * time.Millisecond, Memory: 1e12, LLMCalls: math.MaxInt32}, ""},
		{`{"timeout": "soon"}`, Options{}, "config.timeout: must be a number"},
		{`{"timeout": -1}`, Options{}, "config.timeout: must be a non-negative number"},
		{`{"clientServices": {"hasLLM": "yes"}}`, Options{}, "config.clientServices.hasLLM: must be a boolean"},
		{`[1]`, Options{}, "config: must be a JSON object"},
	}
	for _, tt := range tests {
		got, err := ParseOptions(json.RawMessage(tt.config))
		if tt.err != "" {
			if toolkit.KindOf(err) != toolkit.KindInvalid || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want invalid %q", tt.config, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.config, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.config, diff)
		}
	}
}

func TestLimitsClamp(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	got := e.effective(Options{Timeout: time.Hour, Memory: 1 << 40, LLMCalls: 1e6})
	if got.timeout != 300*time.Second || got.memory != 512<<20 || got.llmCalls != 1000 {
		t.Errorf("clamped = %+v", got)
	}
	got = e.effective(Options{Memory: 10})
	if got.timeout != 30*time.Second || got.memory != minMemory || got.llmCalls != 10 {
		t.Errorf("defaults = %+v", got)
	}
	want := Limits{DefaultTimeout: 30 * time.Second, MaxTimeout: 300 * time.Second, DefaultMemory: 128 << 20, MaxMemory: 512 << 20,
		DefaultLLMCalls: 10, MaxLLMCalls: 1000, MaxCodeBytes: 1_000_000}
	if diff := cmp.Diff(want, e.Limits()); diff != "" {
		t.Errorf("Limits (-want +got):\n%s", diff)
	}
}

func TestResumeErrors(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	answer := []Answer{{Value: json.RawMessage(`"x"`)}}
	t.Run("another client", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await atp.llm.call("x")`, &fakeTools{}))
		_, err := e.Resume(t.Context(), ResumeRequest{Owner: "intruder", ExecutionID: res.ExecutionID, Answers: answer})
		wantKind(t, err, toolkit.KindForbidden)
		wantCompleted(t, resume(t, e, "c1", res, `"mine"`), `"mine"`) // still paused for its owner
	})
	t.Run("after completion", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await atp.llm.call("x")`, &fakeTools{}))
		resume(t, e, "c1", res, `"done"`)
		_, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: answer})
		wantKind(t, err, toolkit.KindNotFound)
	})
	t.Run("unknown and never paused", func(t *testing.T) {
		t.Parallel()
		_, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: "exec_nope", Answers: answer})
		wantKind(t, err, toolkit.KindNotFound)
		res := execute(t, e, request(`return 1`, &fakeTools{}))
		_, err = e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: answer})
		wantKind(t, err, toolkit.KindNotFound)
	})
	t.Run("answers that do not fit leave it paused", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await Promise.all([atp.llm.call("a"), atp.llm.call("b")])`, &fakeTools{}))
		for _, bad := range [][]Answer{
			nil,
			{{ID: "cb_9", Value: json.RawMessage(`1`)}},
			{{ID: "cb_0", Value: json.RawMessage(`1`)}, {ID: "cb_0", Value: json.RawMessage(`2`)}},
			{{Value: json.RawMessage(`1`)}, {Value: json.RawMessage(`2`)}, {Value: json.RawMessage(`3`)}},
		} {
			_, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: bad, Batch: true})
			wantKind(t, err, toolkit.KindInvalid)
		}
		wantCompleted(t, resume(t, e, "c1", res, `1`, `2`), `[1,2]`)
	})
	t.Run("a single result goes to the first of several", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await Promise.all([atp.llm.call("a"), atp.llm.call("b")])`, &fakeTools{}))
		next, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: answer})
		if err != nil {
			t.Fatal(err)
		}
		if next.NeedsCallback == nil || !strings.Contains(string(next.NeedsCallback.Payload), `"b"`) {
			t.Fatalf("want the second call still pending: %s", dump(next))
		}
		wantCompleted(t, resume(t, e, "c1", next, `"y"`), `["x","y"]`)
	})
	t.Run("concurrent resumes: one wins", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await atp.llm.call("x")`, &fakeTools{}))
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: answer})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				wantKind(t, err, toolkit.KindNotFound)
			}
		}
		if ok != 1 {
			t.Errorf("%d resumes succeeded", ok)
		}
	})
}

func TestPauseExpiry(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_000_000, 0)}
	e := newEngine(t, Config{Now: clk.now, PauseTTL: time.Minute})
	first := execute(t, e, request(`return await atp.llm.call("x")`, &fakeTools{}))
	second := execute(t, e, request(`return await atp.llm.call("y")`, &fakeTools{}))
	clk.advance(59 * time.Second)
	wantCompleted(t, resume(t, e, "c1", first, `"in time"`), `"in time"`)
	clk.advance(2 * time.Second)
	_, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: second.ExecutionID, Answers: []Answer{{Value: json.RawMessage(`1`)}}})
	wantKind(t, err, toolkit.KindNotFound)

	// The reaper drops expired executions without a resume.
	third := execute(t, e, request(`return await atp.llm.call("z")`, &fakeTools{}))
	if _, paused := e.Counts(); paused != 1 {
		t.Fatalf("paused = %d", paused)
	}
	clk.advance(time.Hour)
	e.reap()
	if _, paused := e.Counts(); paused != 0 {
		t.Errorf("paused after reaping = %d", paused)
	}
	_, err = e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: third.ExecutionID, Answers: []Answer{{Value: json.RawMessage(`1`)}}})
	wantKind(t, err, toolkit.KindNotFound)
}

func TestCaps(t *testing.T) {
	t.Parallel()
	t.Run("paused per key and in total", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t, Config{MaxPausedPerKey: 2, MaxPausedTotal: 3})
		pause := func(key string) *Result {
			req := request(`return await atp.llm.call("x")`, &fakeTools{})
			req.RateKey = key
			return execute(t, e, req)
		}
		a1, a2 := pause("a"), pause("a")
		wantFailed(t, pause("a"), StatusRateLimited, CodeConcurrentLimit, "at most 2 per client and 3 in all")
		pause("b")
		wantFailed(t, pause("c"), StatusRateLimited, CodeConcurrentLimit, "too many paused executions")
		resume(t, e, "c1", a1, `1`)
		pause("c")
		if running, paused := e.Counts(); running != 0 || paused != 3 {
			t.Errorf("counts = %d running, %d paused", running, paused)
		}
		resume(t, e, "c1", a2, `1`)
	})
	t.Run("running per key", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t, Config{MaxRunningPerKey: 1})
		tools := &fakeTools{block: make(chan struct{})}
		done := make(chan *Result)
		go func() {
			res, _ := e.Execute(context.Background(), request(`return await api.math.slow({})`, tools))
			done <- res
		}()
		for {
			if running, _ := e.Counts(); running == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		wantFailed(t, execute(t, e, request(`return 1`, &fakeTools{})), StatusRateLimited, CodeConcurrentLimit, "at most 1")
		other := request(`return 2`, &fakeTools{})
		other.RateKey = "someone else"
		wantCompleted(t, execute(t, e, other), `2`)
		close(tools.block)
		wantCompleted(t, <-done, `"slow done"`)
		wantCompleted(t, execute(t, e, request(`return 3`, &fakeTools{})), `3`)
	})
}

func TestIgnoredPendingCalls(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	tests := []struct{ name, code, want string }{
		{"caught and not awaited", `atp.llm.call("x").catch(() => {}); return "done"`, `"done"`},
		{"not awaited at all", `api.client.getLocation({}); atp.approval.request("?"); return "done"`, `"done"`},
		{"race against a resolved promise", `return await Promise.race([atp.llm.call("x"), Promise.resolve("fast")])`, `"fast"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantCompleted(t, execute(t, e, request(tt.code, &fakeTools{})), tt.want)
		})
	}
	t.Run("race of two calls: the loser is dropped", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`return await Promise.race([atp.llm.call("a"), atp.llm.call("b")])`, &fakeTools{}))
		if len(res.NeedsCallbacks) != 2 {
			t.Fatalf("want both pending: %s", dump(res))
		}
		next, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Batch: true,
			Answers: []Answer{{ID: res.NeedsCallbacks[1].ID, Value: json.RawMessage(`"b wins"`)}}})
		if err != nil {
			t.Fatal(err)
		}
		wantCompleted(t, next, `"b wins"`)
		_, err = e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: []Answer{{Value: json.RawMessage(`1`)}}})
		wantKind(t, err, toolkit.KindNotFound)
	})
	t.Run("a pending call awaited later joins the batch", func(t *testing.T) {
		t.Parallel()
		res := execute(t, e, request(`const p = atp.llm.call("early"); const q = await atp.llm.call("late"); return [await p, q]`, &fakeTools{}))
		wantCompleted(t, resume(t, e, "c1", res, `"E"`, `"L"`), `["E","L"]`)
	})
}

func TestAnonymousCannotPause(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	req := request(`return await atp.llm.call("x")`, &fakeTools{})
	req.Owner = ""
	_, err := e.Execute(t.Context(), req)
	wantKind(t, err, toolkit.KindInvalid)
	if !strings.Contains(err.Error(), "Client ID required for paused executions") {
		t.Errorf("err = %v", err)
	}
	req.Code = `return await api.math.add({a: 1, b: 1})`
	wantCompleted(t, execute(t, e, req), `{"sum":2}`)
	if running, paused := e.Counts(); running != 0 || paused != 0 {
		t.Errorf("counts = %d, %d", running, paused)
	}
}

func TestCallerGoes(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	tools := &fakeTools{block: make(chan struct{})}
	defer close(tools.block)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.Execute(ctx, request(`return await api.math.slow({})`, tools))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if running, _ := e.Counts(); running != 0 {
		t.Errorf("running = %d after the caller left", running)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	e := NewEngine(Config{})
	paused := execute(t, e, request(`return await atp.llm.call("x")`, &fakeTools{}))
	tools := &fakeTools{block: make(chan struct{})}
	done := make(chan *Result)
	go func() {
		res, _ := e.Execute(context.Background(), request(`return await api.math.slow({})`, tools))
		done <- res
	}()
	for tools.count() == 0 { // running, inside the tool
		time.Sleep(time.Millisecond)
	}
	e.Close()
	wantFailed(t, <-done, StatusCancelled, CodeExecutionFailed, "shutting down")
	_, err := e.Resume(t.Context(), ResumeRequest{Owner: "c1", ExecutionID: paused.ExecutionID, Answers: []Answer{{Value: json.RawMessage(`1`)}}})
	wantKind(t, err, toolkit.KindUnavailable)
	_, err = e.Execute(t.Context(), request(`return 1`, &fakeTools{}))
	wantKind(t, err, toolkit.KindUnavailable)
	e.Close() // idempotent
}

// TestManyConcurrentExecutions pauses 200 executions at once, each on an
// LLM call after a server tool, then resumes them all at once.
func TestManyConcurrentExecutions(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	const n = 200
	paused := make([]*Result, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			req := request(`const x = await api.math.add({a: `+fmt.Sprint(i)+`, b: 1});
				const answer = await atp.llm.call("question " + x.sum);
				return {i: `+fmt.Sprint(i)+`, answer}`, &fakeTools{})
			req.Owner = fmt.Sprintf("client-%d", i)
			res, err := e.Execute(context.Background(), req)
			if err != nil || res.NeedsCallback == nil {
				errs <- fmt.Errorf("%d: execute: %v %s", i, err, dump(res))
				return
			}
			paused[i] = res
		})
	}
	wg.Wait()
	if running, p := e.Counts(); running != 0 || p != n {
		t.Fatalf("counts = %d running, %d paused; want all %d paused", running, p, n)
	}
	for i := range n {
		wg.Go(func() {
			res := paused[i]
			var p struct{ Prompt string }
			_ = json.Unmarshal(res.NeedsCallback.Payload, &p)
			res, err := e.Resume(context.Background(), ResumeRequest{Owner: fmt.Sprintf("client-%d", i), ExecutionID: res.ExecutionID,
				Answers: []Answer{{Value: json.RawMessage(`"re: ` + p.Prompt + `"`)}}})
			if err != nil {
				errs <- fmt.Errorf("%d: resume: %v", i, err)
				return
			}
			if want := fmt.Sprintf(`{"i":%d,"answer":"re: question %d"}`, i, i+1); string(res.Result) != want {
				errs <- fmt.Errorf("%d: got %s, want %s", i, dump(res), want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if running, p := e.Counts(); running != 0 || p != 0 {
		t.Errorf("counts = %d running, %d paused", running, p)
	}
}

// TestImports keeps the package free of transports and persistence.
func TestImports(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || strings.HasSuffix(dep, "/internal/api") || strings.Contains(dep, "/internal/api/") ||
			strings.HasSuffix(dep, "/internal/store") || strings.Contains(dep, "/internal/store/") {
			t.Errorf("internal/execution depends on %s", dep)
		}
	}
}

// The same code is compiled once and shared, and each execution still
// gets a VM of its own: what one run leaves on its globals, the next does
// not see.
func TestExecuteSharesCompiledCode(t *testing.T) {
	e := newEngine(t, Config{})
	code := `globalThis.runs = (globalThis.runs || 0) + 1; return runs`
	for range 3 {
		res, err := e.Execute(context.Background(), Request{Owner: "c1", Code: code})
		if err != nil || res.Status != StatusCompleted || string(res.Result) != "1" {
			t.Fatalf("got %v %s, want completed with 1", err, dump(res))
		}
	}
	if n := e.programs.Len(); n != 1 {
		t.Errorf("%d programs cached for one code, want 1", n)
	}
}
