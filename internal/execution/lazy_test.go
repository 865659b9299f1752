package execution

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRuntimeShape pins what the code sees of atp and api, which runtime.js
// builds on first use: the same keys in the same order, the same kinds of
// functions and the same property attributes as if it had all been built
// before the code ran.
func TestRuntimeShape(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	code := `const desc = (o, k) => { const d = Object.getOwnPropertyDescriptor(o, k); return [d.writable, d.enumerable, d.configurable, typeof d.value] };
		return [
			Object.keys(api), Object.keys(api.math), Object.keys(api.github), Object.keys(api.github.readOnly), Object.keys(api.client),
			Object.keys(atp), Object.keys(atp.llm), Object.keys(atp.approval), Object.keys(atp.embedding), Object.keys(atp.cache), Object.keys(atp.progress),
			[atp.llm.call.name, atp.llm.call.length, api.math.add.name, api.math.add.length, atp.embedding.getAll.name, atp.progress.report.length],
			[api.math.add.constructor === atp.llm.call.constructor, atp.llm.call.constructor === (async () => {}).constructor,
				atp.embedding.getAll.constructor === Function],
			desc(globalThis, "api"), desc(globalThis, "atp"), desc(api, "math"), desc(atp, "llm"), desc(api.math, "add"),
			[Object.getPrototypeOf(api) === Object.prototype, Object.getPrototypeOf(api.github.readOnly) === Object.prototype,
				Object.getPrototypeOf(atp.cache) === Object.prototype, Object.isExtensible(api)],
			[typeof atp, typeof api, "atp" in globalThis, Object.keys(globalThis).includes("api")],
		]`
	wantCompleted(t, execute(t, e, request(code, &fakeTools{})), `[
		["math","admin","github","client"], ["add","fail","broken","slow","helper"], ["readOnly"], ["getUser"], ["getLocation","wipe"],
		["llm","approval","embedding","cache","progress"], ["call","extract","classify"], ["request"],
		["embed","search","similarity","getAll","count"], ["get","set","has","delete","clear"], ["report"],
		["call",1,"",1,"getAll",2],
		[true,true,true],
		[true,false,true,"object"], [true,false,true,"object"], [true,true,true,"object"], [true,true,true,"object"], [true,true,true,"function"],
		[true,true,true,true],
		["object","object",true,false]
	]`)
}

// TestRuntimeGlobalsBeforeUse: atp and api behave as writable,
// configurable data properties before the code first uses them.
func TestRuntimeGlobalsBeforeUse(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	tests := []struct{ name, code, want string }{
		{"assigned", `atp = 1; api = {mine: true}; return [atp, api]`, `[1,{"mine":true}]`},
		{"one assigned, the other still works", `atp = 1; return [atp, (await api.math.add({a: 1, b: 1})).sum]`, `[1,2]`},
		{"deleted", `delete globalThis.api; return [typeof api, typeof atp.llm.call]`, `["undefined","function"]`},
		{"redefined", `Object.defineProperty(globalThis, "atp", {value: 3, writable: false}); atp = 4; return atp`, `3`},
		{"an api group assigned", `api.math = 5; return [api.math, Object.keys(api.admin)]`, `[5,["drop","peek","touch"]]`},
		{"frozen", `Object.freeze(globalThis); Object.freeze(api); return [(await api.math.add({a: 2, b: 2})).sum, Object.isFrozen(api),
			api.math === api.math]`, `[4,true,true]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantCompleted(t, execute(t, e, request(tt.code, &fakeTools{})), tt.want)
		})
	}
}

// TestRuntimeOddNames: group and tool names that are also special keys
// (__proto__, constructor, toString) are plain keys of api, as before.
func TestRuntimeOddNames(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{})
	var mu sync.Mutex
	var calls []string
	tools := ToolCallerFunc(func(_ context.Context, group, tool string, input json.RawMessage) (json.RawMessage, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, group+"."+tool)
		return json.Marshal(group + "." + tool)
	})
	req := Request{Owner: "c1", Tools: tools,
		Groups: []Group{
			{Name: "__proto__", Tools: []ServerTool{{Name: "x"}, {Name: "__proto__"}}},
			{Name: "toString/constructor", Tools: []ServerTool{{Name: "hasOwnProperty"}}},
		},
		ClientTools: []ClientTool{{Name: "valueOf", Namespace: "__proto__", InputSchema: json.RawMessage(`{}`)}},
		Code: `return [Object.keys(api), Object.keys(api.__proto__), Object.getPrototypeOf(api) === Object.prototype,
			Object.getPrototypeOf(api.__proto__) === Object.prototype, typeof api.__proto__.__proto__,
			await api.__proto__.x({}), await api.__proto__.__proto__({}), await api.toString.constructor.hasOwnProperty({})]`,
	}
	res := execute(t, e, req)
	wantCompleted(t, res, `[["__proto__","toString"],["x","__proto__","valueOf"],true,true,"function",
		"__proto__.x","__proto__.__proto__","toString/constructor.hasOwnProperty"]`)
}

// tamperedRun is a run that calls every kind of runtime function once:
// server tools (one failing), a client tool and an LLM call (pauses), a
// gated tool (an approval pause), the cache and the console.
const tamperedRun = `const out = [];
	out.push((await api.math.add({a: 1, b: 2})).sum);
	out.push(await api.github.readOnly.getUser({login: "x"}));
	out.push(await api.client.getLocation({precise: true}));
	out.push(await atp.llm.call("hi"));
	await atp.cache.set({toString() { return "k" }}, [1]);
	out.push(await atp.cache.get("k"), await atp.cache.has(Symbol("k")));
	out.push(await api.admin.touch({}));
	atp.progress.report("half", 0.5);
	console.log("done", {n: out.length});
	try { await api.math.fail({}) } catch (e) { out.push(e.message) }
	try { await atp.llm.call() } catch (e) { out.push(e.message) }
	return out`

// TestRuntimeAfterTampering: code that replaces built-ins before it first
// touches atp, api or console still gets a runtime whose calls reach the
// host as they would otherwise: the same result, the same journal, the
// same console output.
func TestRuntimeAfterTampering(t *testing.T) {
	t.Parallel()
	tampers := []string{
		``,
		`Object.defineProperty = Object.defineProperties = Object.create = () => { throw new Error("patched Object") }`,
		`Object.prototype.hasOwnProperty = () => { throw new Error("patched hasOwnProperty") }`,
		`const ds = {__proto__: null};
		for (const k of ["get", "set", "value", "writable", "enumerable", "configurable", "call", "length", "approved", "path",
			"llm", "cache", "math", "client", "index", "name", "gate", "servers", "keys", "groups", "log", "nothing"])
			ds[k] = {__proto__: null, get() { throw new Error("getter " + k) }, set() { throw new Error("setter " + k) }, configurable: true};
		Object.defineProperties(Object.prototype, ds)`,
		`const then = Promise.prototype.then; let thens = 0;
		Promise.prototype.then = function (a, b) { thens++; return then.call(this, a, b) }`,
		`Error = TypeError = RangeError = SyntaxError = function () { return {fake: true} }`,
		`String = Number = Boolean = Symbol.prototype.toString = () => "patched"`,
		`JSON.parse = JSON.stringify = () => { throw new Error("patched JSON") }`,
		`Array.prototype[Symbol.iterator] = function* () { throw new Error("patched iterator") };
		Array.prototype.map = Array.prototype.forEach = Array.prototype.slice = null`,
		`Function.prototype.call = Function.prototype.apply = Function.prototype.bind = null`,
		`Reflect.get = Reflect.set = Reflect.defineProperty = Reflect.construct = null; Proxy = null`,
		`globalThis.globalThis = null`,
		`Object.freeze(Object.prototype); Object.freeze(Array.prototype); Object.freeze(Function.prototype); Object.freeze(globalThis)`,
	}
	var js journals
	e := newEngine(t, Config{NewJournal: js.new, Now: func() time.Time { return time.UnixMilli(1_700_000_000_000) }})
	type outcome struct {
		result  string
		journal []string
		console []string
	}
	runOne := func(t *testing.T, owner, tamper string) outcome {
		req := request(tamper+";\n"+tamperedRun, &fakeTools{})
		req.Owner = owner
		var mu sync.Mutex
		var console []string
		req.OnConsole = func(level, msg string) {
			mu.Lock()
			defer mu.Unlock()
			console = append(console, level+" "+msg)
		}
		res := execute(t, e, req)
		for _, answer := range []string{`{"city":"TLV"}`, `"LLM"`, `{"approved":true}`} {
			res = resume(t, e, owner, res, answer)
		}
		if res.Status != StatusCompleted {
			t.Fatalf("end: %s", dump(res))
		}
		var journal []string
		for _, en := range js.of(res.ExecutionID)[1:] { // after the seed
			journal = append(journal, string(en.Kind)+":"+en.Ref+":"+en.Name+":"+string(en.Value)+":"+en.Error)
		}
		mu.Lock()
		defer mu.Unlock()
		return outcome{result: canon(t, string(res.Result)), journal: journal, console: console}
	}
	want := runOne(t, "plain", "")
	if want.result != canon(t, `[3,{"did":"getUser"},{"city":"TLV"},"LLM",[1],false,{"did":"touch"},"upstream said no",
		"atp.llm.call: expected a prompt string or an options object"]`) {
		t.Fatalf("untampered result: %s", want.result)
	}
	for i, tamper := range tampers[1:] {
		t.Run(strings.SplitN(tamper, "\n", 2)[0], func(t *testing.T) {
			t.Parallel()
			got := runOne(t, "tamper"+string(rune('a'+i)), tamper)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("tampered run differs (-untampered +tampered):\n%s", diff)
			}
		})
	}
}
