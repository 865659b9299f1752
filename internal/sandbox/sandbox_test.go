package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// run is RunFunction with short limits for tests.
func run(t testing.TB, body string, input string, lim Limits, host Host) (json.RawMessage, error) {
	t.Helper()
	if lim.Timeout == 0 {
		lim.Timeout = 5 * time.Second
	}
	var in json.RawMessage
	if input != "" {
		in = json.RawMessage(input)
	}
	return RunFunction(t.Context(), body, in, map[string]string{"tool": "t1"}, lim, host)
}

// compactJSON normalises JSON for comparison.
func compactJSON(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %q: %v", s, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunFunctionResults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, input, want string
	}{
		{"number", `return 1`, "", `1`},
		{"float", `return 1.5`, "", `1.5`},
		{"string", `return "héllo ☃"`, "", `"héllo ☃"`},
		{"true", `return true`, "", `true`},
		{"false", `return false`, "", `false`},
		{"null", `return null`, "", `null`},
		{"no return", `const x = 1;`, "", `null`},
		{"undefined", `return undefined`, "", `null`},
		{"function", `return () => 1`, "", `null`},
		{"array", `return [1, "a", null, true, {b: 2}]`, "", `[1,"a",null,true,{"b":2}]`},
		{"object", `return {a: {b: [1, 2]}, c: "d"}`, "", `{"a":{"b":[1,2]},"c":"d"}`},
		{"input", `return {sum: input.a + input.b}`, `{"a": 1, "b": 2}`, `{"sum":3}`},
		{"empty input is null", `return input`, "", `null`},
		{"ctx", `return ctx.tool`, "", `"t1"`},
		{"top-level await", `const v = await Promise.resolve(41); return v + 1`, "", `42`},
		{"await a timer", `await new Promise(r => setTimeout(r, 5)); return "later"`, "", `"later"`},
		{"date", `return new Date(0)`, "", `"1970-01-01T00:00:00.000Z"`},
		{"NaN becomes null", `return [NaN, Infinity]`, "", `[null,null]`},
		{"eval works inside", `return eval("1 + 1")`, "", `2`},
		{"use strict directive", "'use strict';\nreturn typeof this", "", `"undefined"`},
		{"trailing line comment", "return 7 // the answer", "", `7`},
		{"caught error", `try { null.x } catch (e) { return e instanceof TypeError }`, "", `true`},
		{"host-independent JSON", `JSON.stringify = () => "hacked"; return {ok: 1}`, "", `{"ok":1}`},
		{"repeat within the cap", `return "ab".repeat(3).padStart(8, "-")`, "", `"--ababab"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tt.body, tt.input, Limits{}, Host{})
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if diff := cmp.Diff(compactJSON(t, tt.want), compactJSON(t, string(got))); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunFunctionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		lim      Limits
		kind     ErrorKind
		contains string
	}{
		{"thrown Error", `throw new Error("boom")`, Limits{}, KindRuntime, "Error: boom"},
		{"not a function", `[1].filter(5)`, Limits{}, KindRuntime, "TypeError: 5 is not a function"},
		{"call a number", `const x = 1; x()`, Limits{}, KindRuntime, "TypeError: "},
		{"no member", `const o = {}; o.f()`, Limits{}, KindRuntime, "TypeError: Object has no member 'f'"},
		{"ReferenceError", `return nope + 1`, Limits{}, KindRuntime, "ReferenceError: nope is not defined"},
		{"thrown string", `throw "plain"`, Limits{}, KindRuntime, "plain"},
		{"thrown object", `throw {code: 1}`, Limits{}, KindRuntime, `{"code":1}`},
		{"rejected await", `await Promise.reject(new RangeError("no"))`, Limits{}, KindRuntime, "RangeError: no"},
		{"custom error name", `class MyErr extends Error { constructor(m) { super(m); this.name = "MyErr" } }; throw new MyErr("x")`, Limits{}, KindRuntime, "MyErr: x"},
		{"throwing getter", `const e = new Error("x"); Object.defineProperty(e, "message", {get() { throw 1 }}); throw e`, Limits{}, KindRuntime, "cannot be described"},
		{"syntax", `return {{;`, Limits{}, KindSyntax, "SyntaxError"},
		{"syntax position", "const a = 1;\nreturn a +;", Limits{}, KindSyntax, "(line 2, column"},
		{"syntax at the end", "return {{", Limits{}, KindSyntax, "(at the end of the code)"},
		{"compile-time syntax", "let a = 1;\nlet a = 2;", Limits{}, KindSyntax, "(line 2, column"},
		{"escaping the wrapper", `}); (async function () {`, Limits{}, KindSyntax, "SyntaxError"},
		{"escaping by expression", `}) || (async function () {`, Limits{}, KindSyntax, "closes the function"},
		{"stack overflow", `function f() { return f() + 1 } return f()`, Limits{}, KindRuntime, "Maximum call stack size exceeded"},
		{"BigInt result", `return 1n`, Limits{}, KindRuntime, "TypeError"},
		{"cyclic result", `const a = {}; a.a = a; return a`, Limits{}, KindRuntime, "TypeError"},
		{"pending forever", `await new Promise(() => {})`, Limits{}, KindRuntime, "never settles"},
		{"pending after cleared timer", `await new Promise(r => { const id = setTimeout(r, 10); clearTimeout(id) })`, Limits{}, KindRuntime, "never settles"},
		{"uncaught in timer", `setTimeout(() => { throw new Error("late") }, 1); await new Promise(r => setTimeout(r, 50))`, Limits{}, KindRuntime, "Error: late"},
		{"repeat cap", `return "x".repeat(1 << 30).length`, Limits{}, KindRuntime, "RangeError: Invalid string length"},
		{"padEnd cap", `return "x".padEnd(1 << 30).length`, Limits{}, KindRuntime, "RangeError: Invalid string length"},
		{"setTimeout needs a function", `setTimeout("code", 1)`, Limits{}, KindRuntime, "TypeError: setTimeout: the callback must be a function"},
		{"result too large", `return "x".repeat(2000)`, Limits{MaxResultBytes: 1000}, KindResultTooLarge, "more than the limit of 1000"},
		{"code too large", `return "` + strings.Repeat("x", 100) + `"`, Limits{MaxCodeBytes: 50}, KindCodeTooLarge, "more than the limit of 50"},
		{"busy loop", `while (true) {}`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit of 100ms"},
		{"async busy loop", `for (;;) { await null }`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit"},
		{"microtask loop", `const spin = () => Promise.resolve().then(spin); spin(); await new Promise(() => {})`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit"},
		{"slow timer", `await new Promise(r => setTimeout(r, 60000))`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit"},
		{"native interval", `setInterval(Date.now, 0); await new Promise(() => {})`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit"},
		{"busy loop in a timer", `setTimeout(() => { for (;;) {} }, 0); await new Promise(r => setTimeout(r, 1000))`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit"},
		{"busy getter in error", `const e = new Error("x"); Object.defineProperty(e, "message", {get() { for (;;) {} }}); throw e`, Limits{Timeout: 100 * time.Millisecond}, KindTimeout, "time limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tt.body, "", tt.lim, Host{})
			var serr *Error
			if !errors.As(err, &serr) {
				t.Fatalf("got (%s, %v), want a *sandbox.Error", got, err)
			}
			if serr.Kind != tt.kind || !strings.Contains(serr.Message, tt.contains) {
				t.Errorf("got %v %q, want %v containing %q", serr.Kind, serr.Message, tt.kind, tt.contains)
			}
			if strings.Contains(serr.Message, "goroutine") || strings.Contains(serr.Message, ".go:") {
				t.Errorf("message leaks Go internals: %q", serr.Message)
			}
		})
	}
}

func TestRunFunctionTimeoutIsErrDeadline(t *testing.T) {
	t.Parallel()
	_, err := run(t, `while (true) {}`, "", Limits{Timeout: 20 * time.Millisecond}, Host{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func TestRunFunctionCancel(t *testing.T) {
	t.Parallel()
	t.Run("during a busy loop", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := RunFunction(ctx, `while (true) {}`, nil, nil, Limits{Timeout: 10 * time.Second}, Host{})
		var serr *Error
		if !errors.As(err, &serr) || serr.Kind != KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %#v, want KindCanceled wrapping context.Canceled", err)
		}
	})
	t.Run("while waiting for a timer", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := RunFunction(ctx, `await new Promise(r => setTimeout(r, 60000))`, nil, nil, Limits{Timeout: 10 * time.Second}, Host{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("before the run", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := RunFunction(ctx, `return 1`, nil, nil, Limits{}, Host{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		_, err := RunFunction(ctx, `while (true) {}`, nil, nil, Limits{Timeout: 10 * time.Second}, Host{})
		var serr *Error
		if !errors.As(err, &serr) || serr.Kind != KindTimeout {
			t.Errorf("err = %v, want KindTimeout", err)
		}
	})
}

func TestTimers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"ordering", `
			const out = [];
			setTimeout(() => out.push("t20"), 20);
			setTimeout(() => out.push("t0a"), 0);
			setTimeout(() => out.push("t0b"), 0);
			setTimeout((a, b) => out.push(a + b), 5, "arg", "s");
			Promise.resolve().then(() => out.push("micro"));
			out.push("sync");
			await new Promise(r => setTimeout(r, 30));
			return out`, `["sync","micro","t0a","t0b","args","t20"]`},
		{"clearTimeout", `
			const out = [];
			const id = setTimeout(() => out.push("cleared"), 1);
			clearTimeout(id);
			clearTimeout(12345);
			await new Promise(r => setTimeout(r, 10));
			return out`, `[]`},
		{"setInterval", `
			let n = 0;
			await new Promise(r => { const id = setInterval(() => { if (++n === 3) { clearInterval(id); r() } }, 1) });
			return n`, `3`},
		{"promise chain across timers", `
			const sleep = (ms, v) => new Promise(r => setTimeout(() => r(v), ms));
			const [a, b] = await Promise.all([sleep(10, "a"), sleep(1, "b")]);
			return a + b`, `"ab"`},
		{"pending timers do not delay the result", `
			setTimeout(() => {}, 60000);
			return "done"`, `"done"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tt.body, "", Limits{}, Host{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTooManyTimers(t *testing.T) {
	t.Parallel()
	_, err := run(t, `for (let i = 0; i < 20000; i++) setTimeout(() => {}, 60000)`, "", Limits{}, Host{})
	var serr *Error
	if !errors.As(err, &serr) || !strings.Contains(serr.Message, "RangeError: setTimeout: more than 10000 timers") {
		t.Errorf("err = %v, want the timer cap", err)
	}
}

func TestNoHostAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"no node or host globals", `return [typeof require, typeof process, typeof fetch, typeof module, typeof exports,
			typeof Deno, typeof Bun, typeof XMLHttpRequest, typeof WebSocket, typeof importScripts]`,
			`["undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined"]`},
		// goja's GoError is left in place (see setup): a plain Error
		// subclass that reaches nothing of the host.
		{"GoError is an Error", `const e = new GoError("x"); return [e instanceof Error, e.message, Object.keys(e), typeof e.value]`,
			`[true,"x",[],"undefined"]`},
		{"Function constructor sees only the sandbox global",
			`const g = ({}).constructor.constructor("return this")(); return [g === globalThis, typeof g.require, typeof g.process]`,
			`[true,"undefined","undefined"]`},
		{"indirect eval sees only the sandbox global", `return (0, eval)("typeof process + typeof require")`, `"undefinedundefined"`},
		{"async function constructor", `const AF = (async () => {}).constructor; return await AF("return typeof process")()`, `"undefined"`},
		{"globals are the language's own", `
			const allowed = new Set(["Object","Function","Array","String","Number","BigInt","RegExp","Date","Boolean",
				"Proxy","Reflect","Error","AggregateError","TypeError","ReferenceError","SyntaxError","RangeError","EvalError",
				"URIError","eval","Math","JSON","ArrayBuffer","DataView","Uint8Array","Uint8ClampedArray","Int8Array",
				"Uint16Array","Int16Array","Uint32Array","Int32Array","Float32Array","Float64Array","BigInt64Array",
				"BigUint64Array","Symbol","WeakSet","WeakMap","Map","Set","Promise","globalThis","NaN","undefined","Infinity",
				"isNaN","parseInt","parseFloat","isFinite","decodeURI","decodeURIComponent","encodeURI","encodeURIComponent",
				"escape","unescape","console","setTimeout","setInterval","clearTimeout","clearInterval","GoError"]);
			return Object.getOwnPropertyNames(globalThis).filter(n => !allowed.has(n))`, `[]`},
		// goja resolves sourceMappingURL comments by reading the local file
		// system unless told not to; /dev/zero would never finish reading.
		{"source map comment in code", "//# sourceMappingURL=/dev/zero\nreturn 1", `1`},
		{"source map comment in eval", `return eval("2\n//# sourceMappingURL=/dev/zero")`, `2`},
		{"source map comment in Function", `return Function("return 3\n//# sourceMappingURL=/dev/zero")()`, `3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tt.body, "", Limits{Timeout: 2 * time.Second}, Host{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(compactJSON(t, tt.want), compactJSON(t, string(got))); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunsAreIsolated(t *testing.T) {
	t.Parallel()
	p, err := Compile(`const seen = typeof Array.prototype.trap; Array.prototype.trap = 1; globalThis.leak = 1; return seen + typeof leak`)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := p.Run(t.Context(), nil, nil, Limits{}, Host{})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != `"undefinednumber"` {
			t.Errorf("got %s: state leaked from an earlier run", got)
		}
	}
}

// recorder collects console output.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) console(level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, level+" "+msg)
}

func TestConsole(t *testing.T) {
	t.Parallel()
	t.Run("levels and formatting", func(t *testing.T) {
		t.Parallel()
		var rec recorder
		_, err := run(t, `
			console.log("a", 1, {b: 2}, [3], null, undefined);
			console.info("i"); console.debug("d"); console.warn("w"); console.error(new TypeError("e"));
			return 1`, "", Limits{}, Host{Console: rec.console})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`info a 1 {"b":2} [3] null undefined`, "info i", "debug d", "warn w", "error TypeError: e"}
		if diff := cmp.Diff(want, rec.lines); diff != "" {
			t.Errorf("console (-want +got):\n%s", diff)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		var rec recorder
		_, err := run(t, `for (let i = 0; i < 5000; i++) console.log("line", i); console.log("x".repeat(100000)); return 1`,
			"", Limits{}, Host{Console: rec.console})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.lines) != maxConsoleLines+1 {
			t.Errorf("got %d lines, want %d", len(rec.lines), maxConsoleLines+1)
		}
		if last := rec.lines[len(rec.lines)-1]; !strings.HasPrefix(last, "warn console output truncated") {
			t.Errorf("last line = %q", last)
		}
	})
	t.Run("long line truncated", func(t *testing.T) {
		t.Parallel()
		var rec recorder
		_, err := run(t, `console.log("é".repeat(10000)); return 1`, "", Limits{}, Host{Console: rec.console})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rec.lines[0]); n > maxConsoleLineBytes+len("info ")+len("…") {
			t.Errorf("line is %d bytes", n)
		}
	})
	t.Run("without a sink", func(t *testing.T) {
		t.Parallel()
		if _, err := run(t, `console.log("dropped"); return 1`, "", Limits{}, Host{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHostGlobals(t *testing.T) {
	t.Parallel()
	add := Func(func(args []json.RawMessage) (json.RawMessage, error) {
		var in struct{ A, B float64 }
		if err := json.Unmarshal(args[0], &in); err != nil {
			return nil, err
		}
		return json.Marshal(in.A + in.B)
	})
	fail := Func(func([]json.RawMessage) (json.RawMessage, error) { return nil, errors.New("upstream said no") })
	slow := AsyncFunc(func(ctx context.Context, args []json.RawMessage) (json.RawMessage, error) {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return json.RawMessage(`{"echo":` + string(args[0]) + `}`), nil
	})
	asyncFail := AsyncFunc(func(context.Context, []json.RawMessage) (json.RawMessage, error) {
		return nil, errors.New("async no")
	})
	host := Host{Globals: map[string]any{
		"api": map[string]any{
			"math": map[string]any{"add": add, "fail": fail},
			"util": map[string]any{"slow": slow, "asyncFail": asyncFail},
		},
		"settings":  map[string]any{"limit": 3},
		"raw":       json.RawMessage(`{"x":[1,2]}`),
		"plainFunc": func(args []json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`"plain"`), nil },
		"noResult":  Func(func([]json.RawMessage) (json.RawMessage, error) { return nil, nil }),
		"argsJSON": Func(func(args []json.RawMessage) (json.RawMessage, error) {
			return json.Marshal(fmt.Sprintf("%s", args))
		}),
	}}
	tests := []struct {
		name, body, want string
	}{
		{"sync func", `return api.math.add({a: 1, b: 2})`, `3`},
		{"sync error is a catchable Error", `try { api.math.fail() } catch (e) { return [e instanceof Error, e.message] }`, `[true,"upstream said no"]`},
		{"async func", `return await api.util.slow({q: 1})`, `{"echo":{"q":1}}`},
		{"async in parallel", `return await Promise.all([api.util.slow(1), api.util.slow(2), api.util.slow(3)])`, `[{"echo":1},{"echo":2},{"echo":3}]`},
		{"async error rejects", `try { await api.util.asyncFail() } catch (e) { return e.message }`, `"async no"`},
		{"data", `return [settings.limit, raw.x]`, `[3,[1,2]]`},
		{"unnamed func type", `return plainFunc()`, `"plain"`},
		{"empty result is undefined", `return typeof noResult()`, `"undefined"`},
		{"arguments as JSON", `return argsJSON(undefined, null, "s", [1], () => 1)`, `"[null null \"s\" [1] null]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tt.body, "", Limits{}, host)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(compactJSON(t, tt.want), compactJSON(t, string(got))); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostFaults(t *testing.T) {
	t.Parallel()
	t.Run("unconvertible global", func(t *testing.T) {
		t.Parallel()
		_, err := run(t, `return 1`, "", Limits{}, Host{Globals: map[string]any{"ch": make(chan int)}})
		var serr *Error
		if err == nil || errors.As(err, &serr) {
			t.Errorf("err = %v, want a plain (host) error", err)
		}
	})
	t.Run("panicking func", func(t *testing.T) {
		t.Parallel()
		boom := Func(func([]json.RawMessage) (json.RawMessage, error) { panic("host bug") })
		_, err := run(t, `try { boom() } catch (e) { return "swallowed" }`, "", Limits{}, Host{Globals: map[string]any{"boom": boom}})
		var serr *Error
		if err == nil || errors.As(err, &serr) || !strings.Contains(err.Error(), "host bug") {
			t.Errorf("err = %v, want a plain error naming the panic", err)
		}
	})
	t.Run("panicking async func", func(t *testing.T) {
		t.Parallel()
		boom := AsyncFunc(func(context.Context, []json.RawMessage) (json.RawMessage, error) { panic("async host bug") })
		_, err := run(t, `await boom()`, "", Limits{}, Host{Globals: map[string]any{"boom": boom}})
		if err == nil || !strings.Contains(err.Error(), "async host bug") {
			t.Errorf("err = %v, want a plain error naming the panic", err)
		}
	})
	t.Run("invalid input", func(t *testing.T) {
		t.Parallel()
		_, err := run(t, `return 1`, `{not json`, Limits{}, Host{})
		var serr *Error
		if err == nil || errors.As(err, &serr) {
			t.Errorf("err = %v, want a plain (caller) error", err)
		}
	})
	t.Run("async ctx canceled when the run ends", func(t *testing.T) {
		t.Parallel()
		done := make(chan error, 1)
		hang := AsyncFunc(func(ctx context.Context, _ []json.RawMessage) (json.RawMessage, error) {
			<-ctx.Done()
			done <- ctx.Err()
			return nil, ctx.Err()
		})
		got, err := run(t, `hang(); return "early"`, "", Limits{}, Host{Globals: map[string]any{"hang": hang}})
		if err != nil || string(got) != `"early"` {
			t.Fatalf("got (%s, %v)", got, err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("host ctx err = %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the host call's context was not canceled")
		}
	})
}

func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	p, err := Compile(`await new Promise(r => setTimeout(r, 1)); return {n: input.n * 2}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			var got json.RawMessage
			var err error
			if i%2 == 0 {
				got, err = p.Run(t.Context(), json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), nil, Limits{}, Host{})
			} else {
				got, err = RunFunction(t.Context(), `return {n: input.n * 2}`, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), nil, Limits{}, Host{})
			}
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf(`{"n":%d}`, i*2); string(got) != want {
				errs <- fmt.Errorf("run %d: got %s, want %s", i, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCheckSyntax(t *testing.T) {
	t.Parallel()
	if err := CheckSyntax(`return await fetchSomething()`); err != nil {
		t.Errorf("valid code: %v", err)
	}
	err := CheckSyntax("return 1 +")
	var serr *Error
	if !errors.As(err, &serr) || serr.Kind != KindSyntax {
		t.Errorf("err = %v, want KindSyntax", err)
	}
}

func BenchmarkRunReturn1(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := RunFunction(ctx, `return 1`, nil, nil, Limits{}, Host{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunSmallObject(b *testing.B) {
	ctx := context.Background()
	input := json.RawMessage(`{"a": 1, "b": 2, "tags": ["x", "y"]}`)
	for b.Loop() {
		if _, err := RunFunction(ctx, `return {sum: input.a + input.b, tags: input.tags.map(t => t.toUpperCase()), tool: ctx.tool}`,
			input, map[string]string{"tool": "add"}, Limits{}, Host{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProgramRunReturn1(b *testing.B) {
	ctx := context.Background()
	p, err := Compile(`return 1`)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Run(ctx, nil, nil, Limits{}, Host{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunReturn1MemoryLimit is BenchmarkRunReturn1 with a memory
// limit, as monday executions run: the caps that make the limit
// enforceable (arrays, typed arrays) come with it.
func BenchmarkRunReturn1MemoryLimit(b *testing.B) {
	w := NewMemoryWatchdog(MemoryWatchdogOptions{})
	b.Cleanup(w.Close)
	lim := Limits{MaxMemory: 128 << 20, Memory: w}
	ctx := context.Background()
	for b.Loop() {
		if _, err := RunFunction(ctx, `return 1`, nil, nil, lim, Host{}); err != nil {
			b.Fatal(err)
		}
	}
}
