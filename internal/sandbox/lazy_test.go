package sandbox

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// counter counts calls by name; host functions and Lazy values of the
// tests below report to it, so a test can see what a run built.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *counter) get() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// lazyPrelude builds two globals, greet and tools, from host functions,
// using every helper of js. Its builders and Lazy values count themselves.
const lazyPrelude = `(function (host, js) {
	'use strict';
	host.ran();
	return {
		greet: function () {
			host.built('greet');
			const greet = {};
			js.define(greet, 'hello', function (name) { return host.hello(js.string(name)); });
			js.define(greet, '__proto__', 'a key');
			return greet;
		},
		tools: function () {
			host.built('tools');
			const tools = {};
			const names = host.names;
			for (let i = 0; i < names.length; i++) {
				const name = names[i];
				js.lazy(tools, name, function () {
					host.built(name);
					const g = host.groups[name];
					return {size: g.length, own: js.hasOwn(g, 'length'), missing: typeof host.nothing};
				});
			}
			return tools;
		},
	};
})`

func lazyHost(t testing.TB, c *counter) Host {
	t.Helper()
	p, err := CompilePrelude("lazy.js", lazyPrelude)
	if err != nil {
		t.Fatal(err)
	}
	note := func(name string) Func {
		return func(args []json.RawMessage) (json.RawMessage, error) {
			if name == "built" {
				var s string
				_ = json.Unmarshal(args[0], &s)
				c.add("built " + s)
				return nil, nil
			}
			c.add(name)
			return nil, nil
		}
	}
	return Host{
		Prelude:        p,
		PreludeGlobals: []string{"greet", "tools"},
		PreludeHost: map[string]any{
			"ran":   note("ran"),
			"built": note("built"),
			"hello": Func(func(args []json.RawMessage) (json.RawMessage, error) {
				var s string
				_ = json.Unmarshal(args[0], &s)
				return json.Marshal("hello " + s)
			}),
			"names": []string{"a", "b"},
			"groups": map[string]any{
				"a": Lazy(func() any { c.add("convert a"); return []any{1, 2} }),
				"b": Lazy(func() any { c.add("convert b"); return []any{3} }),
			},
		},
	}
}

func TestLazyPrelude(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
		built            map[string]int
	}{
		{"nothing touched, nothing built", `return 1`, `1`, map[string]int{}},
		{"typeof of another global builds nothing", `return [typeof atp, typeof console.log]`, `["undefined","function"]`, map[string]int{}},
		{"one global, one member", `return tools.b`, `{"size":1,"own":true,"missing":"undefined"}`,
			map[string]int{"ran": 1, "built tools": 1, "built b": 1, "convert b": 1}},
		{"a global used twice is built once", `return [greet.hello("x"), greet.hello(1), Object.keys(greet)]`,
			`["hello x","hello 1",["hello","__proto__"]]`, map[string]int{"ran": 1, "built greet": 1}},
		{"keys of a lazy object build nothing", `return Object.keys(tools)`, `["a","b"]`, map[string]int{"ran": 1, "built tools": 1}},
		{"assignment before use builds nothing", `greet = 5; tools = "t"; return [greet, tools]`, `[5,"t"]`, map[string]int{}},
		{"an assigned global is not rebuilt by another's use", `greet = 5; return [greet, tools.a.size]`, `[5,2]`,
			map[string]int{"ran": 1, "built tools": 1, "built a": 1, "convert a": 1}},
		{"delete before use", `delete globalThis.greet; return [typeof greet, "greet" in globalThis]`, `["undefined",false]`, map[string]int{}},
		{"redefined before use", `Object.defineProperty(globalThis, "greet", {value: 7}); return greet`, `7`, map[string]int{}},
		{"after use a data property", `greet; tools; const g = Object.getOwnPropertyDescriptor(globalThis, "greet");
			const a = (tools.a, Object.getOwnPropertyDescriptor(tools, "a"));
			return [typeof g.value, g.writable, g.enumerable, g.configurable, "get" in g, typeof a.value, a.writable, a.enumerable, a.configurable]`,
			`["object",true,false,true,false,"object",true,true,true]`,
			map[string]int{"ran": 1, "built greet": 1, "built tools": 1, "built a": 1, "convert a": 1}},
		{"assignment through an inheriting object", `const o = Object.create(globalThis); o.greet = 1;
			return [o.greet, typeof greet, Object.prototype.hasOwnProperty.call(o, "greet")]`, `[1,"object",true]`,
			map[string]int{"ran": 1, "built greet": 1}},
		{"frozen global", `Object.freeze(globalThis); return [greet.hello("f"), greet === greet, Object.isFrozen(globalThis)]`,
			`["hello f",true,true]`, map[string]int{"ran": 1, "built greet": 1}},
		{"the prelude's helpers do not leak", `return [typeof host, typeof js, typeof greet.hello.call]`, `["undefined","undefined","function"]`,
			map[string]int{"ran": 1, "built greet": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c counter
			got, err := run(t, tt.body, "", Limits{}, lazyHost(t, &c))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(compactJSON(t, tt.want), compactJSON(t, string(got))); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.built, c.get()); diff != "" {
				t.Errorf("built (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLazyPreludeAfterTampering: the prelude may run after the code has
// replaced what it would otherwise use.
func TestLazyPreludeAfterTampering(t *testing.T) {
	t.Parallel()
	tampers := []string{
		`Object.defineProperty = () => { throw new Error("patched defineProperty") }`,
		`Object.prototype.hasOwnProperty = () => { throw new Error("patched hasOwnProperty") }`,
		`String = () => "patched String"`,
		`const ds = {__proto__: null};
		for (const k of ["get", "set", "value", "writable", "enumerable", "configurable", "hello", "a", "length", "nothing"])
			ds[k] = {__proto__: null, get() { throw new Error("getter " + k) }, set() { throw new Error("setter " + k) }, configurable: true};
		Object.defineProperties(Object.prototype, ds)`,
		`Array.prototype[Symbol.iterator] = function* () { throw new Error("patched iterator") }; Array.prototype.length = 99`,
		`Function.prototype.call = Function.prototype.apply = () => { throw new Error("patched call") }`,
		`JSON.parse = JSON.stringify = () => { throw new Error("patched JSON") }`,
		`Error = function () { return {fake: true} }; TypeError = RangeError = Error`,
		`globalThis.globalThis = {}`,
	}
	for _, tamper := range tampers {
		t.Run(tamper, func(t *testing.T) {
			t.Parallel()
			var c counter
			got, err := run(t, tamper+`;
				return [greet.hello({toString() { return "obj" }}), greet.hello(Symbol("s")), tools.a.size, tools.b.own, tools.b.missing]`,
				"", Limits{}, lazyHost(t, &c))
			if err != nil {
				t.Fatal(err)
			}
			if want := `["hello obj","hello Symbol(s)",2,true,"undefined"]`; compactJSON(t, string(got)) != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestLazyPreludeFaults(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, prelude, body string }{
		{"a builder that throws", `(function () { return {g: function () { throw new Error("bug") }} })`,
			`try { g } catch (e) { return "caught" }`},
		{"the prelude throws", `(function () { throw new Error("bug") })`, `try { g } catch (e) { return "caught" }`},
		{"no builder", `(function () { return {} })`, `try { g } catch (e) { return "caught" }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := CompilePrelude("p.js", tt.prelude)
			if err != nil {
				t.Fatal(err)
			}
			host := Host{Prelude: p, PreludeGlobals: []string{"g"}}
			got, err := run(t, tt.body, "", Limits{}, host)
			var serr *Error
			if err == nil || errors.As(err, &serr) {
				t.Fatalf("got (%s, %v), want a host fault the code cannot catch", got, err)
			}
			// A run that does not use the global never runs the prelude.
			if got, err := run(t, `return 1`, "", Limits{}, host); err != nil || string(got) != "1" {
				t.Errorf("unused: got (%s, %v)", got, err)
			}
		})
	}
}

func TestLazyConsole(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, want, lines string }{
		{"descriptor after use", `console; const d = Object.getOwnPropertyDescriptor(globalThis, "console");
			return [typeof d.value.log, d.writable, d.enumerable, d.configurable, Object.keys(console)]`,
			`["function",true,false,true,["log","info","debug","trace","warn","error"]]`, ``},
		{"assigned before use", `console = {log() { return "mine" }}; return console.log()`, `"mine"`, ``},
		{"deleted before use", `delete globalThis.console; return typeof console`, `"undefined"`, ``},
		{"after Object.prototype is tampered with", `Object.defineProperty(Object.prototype, "log", {get() { return () => "fake" }, set() { throw 1 }});
			Object.defineProperty(Object.prototype, "value", {get() { throw 2 }}); console.log("real", 1); return 1`, `1`, `info real 1`},
		{"frozen global", `Object.freeze(globalThis); console.warn("w"); return console === console`, `true`, `warn w`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			got, err := run(t, tt.body, "", Limits{}, Host{Console: rec.console})
			if err != nil {
				t.Fatal(err)
			}
			if compactJSON(t, string(got)) != compactJSON(t, tt.want) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if lines := strings.Join(rec.lines, "\n"); lines != tt.lines {
				t.Errorf("console %q, want %q", lines, tt.lines)
			}
		})
	}
}

// TestSyncBodies runs each body twice: as it is, and with a comment that
// makes it an async function (isSyncBody), which must not change anything
// the code can observe.
func TestSyncBodies(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, want, err string }{
		{"value", `return {a: [1, "x"]}`, `{"a":[1,"x"]}`, ""},
		{"no return", `const x = 1`, `null`, ""},
		{"a thenable is followed", `return {then(r) { r(5) }}`, `5`, ""},
		{"a promise is followed", `return Promise.resolve(7)`, `7`, ""},
		{"a rejected promise", `return Promise.reject(new TypeError("no"))`, ``, "TypeError: no"},
		{"a throw", `throw new RangeError("r")`, ``, "RangeError: r"},
		{"then is read once", `let n = 0; const o = {get then() { n++; return undefined }, x: 1}; globalThis.o = o; return o`, `{"x":1}`, ""},
		{"a then getter that throws", `return {get then() { throw new Error("then") }}`, ``, "Error: then"},
		{"resolution comes before the body's later jobs", `const log = [];
			Promise.resolve().then(() => 0).then(() => log.push("job"));
			return {then(r) { log.push("then"); r(log) }}`, `["then","job"]`, ""},
		{"jobs run before the result", `const log = []; Promise.resolve().then(() => log.push(1)); return log`, `[1]`, ""},
		{"timers after the result do not run", `let fired = false; setTimeout(() => { fired = true }, 0); return fired`, `false`, ""},
		{"this is the global object", `return this === globalThis`, `true`, ""},
		{"a thenable resolving with a timer", `return {then(r) { setTimeout(() => r("later"), 1) }}`, `"later"`, ""},
	}
	for _, tt := range tests {
		for _, variant := range []string{"sync", "async"} {
			t.Run(tt.name+" "+variant, func(t *testing.T) {
				t.Parallel()
				body := tt.body
				if variant == "async" {
					body += "\n// await"
				}
				p, err := Compile(body)
				if err != nil {
					t.Fatal(err)
				}
				if p.sync != (variant == "sync") {
					t.Fatalf("sync = %v", p.sync)
				}
				got, err := p.Run(t.Context(), nil, nil, Limits{}, Host{})
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("got (%s, %v), want an error containing %q", got, err, tt.err)
					}
					return
				}
				if err != nil || compactJSON(t, string(got)) != compactJSON(t, tt.want) {
					t.Fatalf("got (%s, %v), want %s", got, err, tt.want)
				}
			})
		}
	}
	for body, sync := range map[string]bool{
		`return 1`:                          true,
		`return await 1`:                    false,
		`return arguments.length`:           false,
		`return eval("1")`:                  false,
		`return "\u0061"`:                   false,
		`return 1 // await in a comment`:    false,
		`const f = async () => 1; return f`: true,
	} {
		p, err := Compile(body)
		if err != nil {
			t.Fatal(err)
		}
		if p.sync != sync {
			t.Errorf("%q: sync = %v, want %v", body, p.sync, sync)
		}
	}
}

// TestIntrinsicsAfterTampering: what the host does for the code (JSON in
// and out, errors it throws, the classes it reports) does not depend on
// globals the code replaced.
func TestIntrinsicsAfterTampering(t *testing.T) {
	t.Parallel()
	echo := Func(func(args []json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(map[string]any{"got": args})
	})
	fail := Func(func([]json.RawMessage) (json.RawMessage, error) { return nil, errors.New("host says no") })
	host := Host{Globals: map[string]any{"echo": echo, "fail": fail}}
	tests := []struct{ name, body, want, class string }{
		{"JSON replaced", `JSON.parse = JSON.stringify = () => "hacked"; return echo({a: [1, "é"]}, undefined, () => 1, 1n === 1n)`,
			`{"got":[{"a":[1,"é"]},null,null,true]}`, ""},
		{"toJSON runs once per argument", `let n = 0; echo({toJSON() { n++; return "j" }}); return n`, `1`, ""},
		{"Error replaced", `Error = function () { return {fake: true} };
			try { fail() } catch (e) { return [e.fake === undefined, e.message, e.name, e instanceof Object.getPrototypeOf(TypeError)] }`,
			`[true,"host says no","Error",true]`, ""},
		{"RangeError replaced", `RangeError = function () { return {fake: true} };
			try { "x".repeat(2 ** 30) } catch (e) { return [e.fake === undefined, e.name, Object.prototype.toString.call(e), e.message.slice(0, 22)] }`,
			`[true,"RangeError","[object Error]","Invalid string length:"]`, ""},
		{"classes from the prototype chain", `SyntaxError = TypeError = RangeError = Error = function () {}; JSON.parse("{")`, ``, "SyntaxError"},
		{"TypeError", `TypeError = Error; null.x`, ``, "TypeError"},
		{"RangeError", `RangeError = Error; new Array(-1)`, ``, "RangeError"},
		{"ReferenceError", `ReferenceError = Error; nope`, ``, "ReferenceError"},
		{"Error", `Error = RangeError; throw new (Object.getPrototypeOf(TypeError))("plain")`, ``, "Error"},
		{"String replaced in messages", `String = () => "x"; throw {toString() { return "t" }, toJSON() { return "thrown" }}`, ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tt.body, "", Limits{}, host)
			if tt.want != "" {
				if err != nil || compactJSON(t, string(got)) != compactJSON(t, tt.want) {
					t.Fatalf("got (%s, %v), want %s", got, err, tt.want)
				}
				return
			}
			var serr *Error
			if !errors.As(err, &serr) || serr.Class != tt.class {
				t.Fatalf("got (%s, %#v), want class %q", got, err, tt.class)
			}
			if tt.name == "String replaced in messages" && serr.Message != `"thrown"` {
				t.Errorf("message = %q", serr.Message)
			}
		})
	}
}

func TestLazyGlobals(t *testing.T) {
	t.Parallel()
	var c counter
	host := Host{Globals: map[string]any{
		"cfg": Lazy(func() any { c.add("cfg"); return map[string]any{"limit": 3} }),
		"ns": map[string]any{
			"add": Func(func(args []json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`3`), nil }),
			"big": Lazy(func() any { c.add("big"); return []any{1, 2, 3} }),
		},
	}}
	got, err := run(t, `const before = Object.keys(ns); return [before, ns.add(), typeof cfg]`, "", Limits{}, host)
	if err != nil || compactJSON(t, string(got)) != `[["add","big"],3,"object"]` && compactJSON(t, string(got)) != `[["big","add"],3,"object"]` {
		t.Fatalf("got (%s, %v)", got, err)
	}
	if diff := cmp.Diff(map[string]int{"cfg": 1}, c.get()); diff != "" {
		t.Errorf("built (-want +got):\n%s", diff)
	}
	got, err = run(t, `return [ns.big, cfg.limit, Object.getOwnPropertyDescriptor(globalThis, "cfg").enumerable]`, "", Limits{}, host)
	if err != nil || compactJSON(t, string(got)) != `[[1,2,3],3,true]` {
		t.Fatalf("got (%s, %v)", got, err)
	}
}
