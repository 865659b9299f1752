package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// parker is a ParkFunc that names calls p0, p1, … and records their
// arguments as the request.
type parker struct {
	n      int
	settle func(json.RawMessage) (json.RawMessage, error)
}

func (p *parker) park(args []json.RawMessage) (*Park, error) {
	id := fmt.Sprintf("p%d", p.n)
	p.n++
	return &Park{ID: id, Request: string(args[0]), Settle: p.settle}, nil
}

// start compiles body with CompileCode and starts it.
func start(t testing.TB, body string, lim Limits, host Host) *Live {
	t.Helper()
	p, err := CompileCode(body)
	if err != nil {
		t.Fatal(err)
	}
	if lim.Timeout == 0 {
		lim.Timeout = 5 * time.Second
	}
	l, err := p.Start(nil, nil, lim, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Cancel(nil) })
	return l
}

func next(t testing.TB, l *Live) Step {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := l.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return s
}

func requests(s Step) []string {
	var out []string
	for _, p := range s.Parked {
		out = append(out, p.ID+"="+p.Request.(string))
	}
	return out
}

func TestLivePauseAndResume(t *testing.T) {
	t.Parallel()
	t.Run("sequential calls pause one at a time in the same VM", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `let runs = 0; runs++;
			const a = await ask("a"); const b = await ask("b");
			return {runs, a, b}`, Limits{}, Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		s := next(t, l)
		if diff := cmp.Diff([]string{`p0="a"`}, requests(s)); diff != "" {
			t.Fatalf("first pause (-want +got):\n%s", diff)
		}
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`1`)}}); err != nil {
			t.Fatal(err)
		}
		s = next(t, l)
		if diff := cmp.Diff([]string{`p1="b"`}, requests(s)); diff != "" {
			t.Fatalf("second pause (-want +got):\n%s", diff)
		}
		if err := l.Resume([]Answer{{ID: "p1", Value: json.RawMessage(`{"x":2}`)}}); err != nil {
			t.Fatal(err)
		}
		s = next(t, l)
		if s.Err != nil || string(s.Result) != `{"runs":1,"a":1,"b":{"x":2}}` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
		<-l.Done()
	})
	t.Run("Promise.all parks every call before pausing", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `return await Promise.all(["x", "y", "z"].map(async v => ask(v)))`, Limits{},
			Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		s := next(t, l)
		if diff := cmp.Diff([]string{`p0="x"`, `p1="y"`, `p2="z"`}, requests(s)); diff != "" {
			t.Fatalf("pause (-want +got):\n%s", diff)
		}
		// Answer out of order and in two goes: the rest stay parked.
		if err := l.Resume([]Answer{{ID: "p2", Value: json.RawMessage(`"Z"`)}, {ID: "p0", Value: json.RawMessage(`"X"`)}}); err != nil {
			t.Fatal(err)
		}
		s = next(t, l)
		if diff := cmp.Diff([]string{`p1="y"`}, requests(s)); diff != "" {
			t.Fatalf("second pause (-want +got):\n%s", diff)
		}
		if err := l.Resume([]Answer{{ID: "p1", Value: json.RawMessage(`"Y"`)}}); err != nil {
			t.Fatal(err)
		}
		if s = next(t, l); string(s.Result) != `["X","Y","Z"]` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
	})
	t.Run("settle transforms and rejects", func(t *testing.T) {
		t.Parallel()
		p := &parker{settle: func(v json.RawMessage) (json.RawMessage, error) {
			if string(v) == `"bad"` {
				return nil, errors.New("refused by the host")
			}
			return json.RawMessage(`"settled:` + strings.Trim(string(v), `"`) + `"`), nil
		}}
		l := start(t, `const ok = await ask(1);
			try { await ask(2) } catch (e) { return [ok, e instanceof Error, e.message] }`, Limits{},
			Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		next(t, l)
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`"good"`)}}); err != nil {
			t.Fatal(err)
		}
		next(t, l)
		if err := l.Resume([]Answer{{ID: "p1", Value: json.RawMessage(`"bad"`)}}); err != nil {
			t.Fatal(err)
		}
		if s := next(t, l); string(s.Result) != `["settled:good",true,"refused by the host"]` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
	})
	t.Run("resume errors leave the run paused", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `return await ask(1)`, Limits{}, Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		if err := l.Resume([]Answer{{ID: "p0"}}); !errors.Is(err, ErrNotPaused) && err != nil {
			// The run may not have paused yet; then ErrNotPaused is right.
			t.Fatalf("early resume: %v", err)
		}
		next(t, l)
		if err := l.Resume([]Answer{{ID: "nope", Value: json.RawMessage(`1`)}}); !errors.Is(err, ErrUnknownCall) {
			t.Fatalf("unknown id: %v", err)
		}
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`1`)}, {ID: "p0", Value: json.RawMessage(`2`)}}); !errors.Is(err, ErrUnknownCall) {
			t.Fatalf("duplicate id: %v", err)
		}
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`7`)}}); err != nil {
			t.Fatal(err)
		}
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`7`)}}); !errors.Is(err, ErrNotPaused) {
			t.Fatalf("second resume: %v", err)
		}
		if s := next(t, l); string(s.Result) != `7` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
	})
	t.Run("cancel while paused", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `return await ask(1)`, Limits{}, Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		next(t, l)
		cause := errors.New("expired")
		l.Cancel(cause)
		s := next(t, l)
		var serr *Error
		if !errors.As(s.Err, &serr) || serr.Kind != KindCanceled || !errors.Is(s.Err, cause) {
			t.Fatalf("end = %v, want KindCanceled wrapping the cause", s.Err)
		}
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`1`)}}); !errors.Is(err, ErrNotPaused) {
			t.Fatalf("resume after cancel: %v", err)
		}
	})
	t.Run("a call the code ignores does not hold the run", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `ask(1).catch(() => {}); return await Promise.race([ask(2), Promise.resolve("fast")])`, Limits{},
			Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		if s := next(t, l); s.Paused() || string(s.Result) != `"fast"` {
			t.Fatalf("step = %+v", s)
		}
	})
	t.Run("a halting park function ends the run uncatchably", func(t *testing.T) {
		t.Parallel()
		limit := errors.New("too many asks")
		halt := ParkFunc(func([]json.RawMessage) (*Park, error) { return nil, Halt(limit) })
		l := start(t, `try { await ask(1) } catch (e) { return "caught" } return "went on"`, Limits{},
			Host{Globals: map[string]any{"ask": halt}})
		s := next(t, l)
		var serr *Error
		if !errors.As(s.Err, &serr) || serr.Kind != KindHalted || !errors.Is(s.Err, limit) || serr.Message != "too many asks" {
			t.Fatalf("end = (%s, %#v)", s.Result, s.Err)
		}
	})
	t.Run("a run without parked calls behaves as Run", func(t *testing.T) {
		t.Parallel()
		l := start(t, `await new Promise(r => setTimeout(r, 1)); return {input: typeof input}`, Limits{}, Host{})
		if s := next(t, l); string(s.Result) != `{"input":"undefined"}` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
	})
}

func TestLiveTimeLimit(t *testing.T) {
	t.Parallel()
	t.Run("paused time does not count", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `await ask(1); return 2`, Limits{Timeout: 100 * time.Millisecond},
			Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		next(t, l)
		time.Sleep(150 * time.Millisecond) // longer than the whole limit
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`1`)}}); err != nil {
			t.Fatal(err)
		}
		s := next(t, l)
		if s.Err != nil || string(s.Result) != `2` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
		if s.Active >= 100*time.Millisecond {
			t.Errorf("active = %v, want the paused time left out", s.Active)
		}
	})
	t.Run("active time adds up across pauses", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		l := start(t, `const spin = ms => { const end = Date.now() + ms; while (Date.now() < end) {} };
			spin(60); await ask(1); spin(60); return 1`, Limits{Timeout: 100 * time.Millisecond},
			Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		next(t, l)
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`1`)}}); err != nil {
			t.Fatal(err)
		}
		var serr *Error
		if s := next(t, l); !errors.As(s.Err, &serr) || serr.Kind != KindTimeout {
			t.Fatalf("end = (%s, %v), want KindTimeout", s.Result, s.Err)
		}
	})
	t.Run("timers are shifted by a pause", func(t *testing.T) {
		t.Parallel()
		p := &parker{}
		// If the pause counted, the 60 ms timer would be overdue at resume
		// and fire before the 0 ms one set after it.
		l := start(t, `let fired = false;
			setTimeout(() => { fired = true }, 60);
			await ask(1);
			await new Promise(r => setTimeout(r, 0));
			return fired`, Limits{}, Host{Globals: map[string]any{"ask": ParkFunc(p.park)}})
		next(t, l)
		time.Sleep(100 * time.Millisecond) // past the timer's due time, but paused
		if err := l.Resume([]Answer{{ID: "p0", Value: json.RawMessage(`1`)}}); err != nil {
			t.Fatal(err)
		}
		if s := next(t, l); string(s.Result) != `false` {
			t.Fatalf("end = (%s, %v), want the timer not yet fired", s.Result, s.Err)
		}
	})
}

func TestLiveHostHooks(t *testing.T) {
	t.Parallel()
	t.Run("clock, randomness and events", func(t *testing.T) {
		t.Parallel()
		var events []Event
		slow := AsyncFunc(func(ctx context.Context, args []json.RawMessage) (json.RawMessage, error) {
			if string(args[0]) == `"fail"` {
				return nil, errors.New("no")
			}
			return json.RawMessage(`{"ok":true}`), nil
		})
		l := start(t, `const a = await tool("x"); let b; try { await tool("fail") } catch (e) { b = e.message }
			await new Promise(r => setTimeout(r, 1));
			return [Date.now(), new Date().toISOString(), Math.random(), a, b]`, Limits{}, Host{
			Globals: map[string]any{"tool": slow},
			Now:     func() time.Time { return time.UnixMilli(1700000000123) },
			Random:  func() float64 { return 0.25 },
			OnEvent: func(ev Event) { events = append(events, ev) },
		})
		s := next(t, l)
		if want := `[1700000000123,"2023-11-14T22:13:20.123Z",0.25,{"ok":true},"no"]`; string(s.Result) != want {
			t.Fatalf("result = %s (%v), want %s", s.Result, s.Err, want)
		}
		want := []Event{
			{Kind: EventResult, Seq: 0, Func: "tool", Args: []json.RawMessage{json.RawMessage(`"x"`)}, Result: json.RawMessage(`{"ok":true}`)},
			{Kind: EventResult, Seq: 1, Func: "tool", Args: []json.RawMessage{json.RawMessage(`"fail"`)}, Err: "no"},
			{Kind: EventTimer, Seq: 1},
		}
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("prelude builds globals from hidden host functions", func(t *testing.T) {
		t.Parallel()
		prelude, err := CompilePrelude("p.js", `(function (host, js) {
			return {
				greet: function () { return function (name) { return host.hello(name) + "!" } },
				items: function () { return host.items },
			};
		})`)
		if err != nil {
			t.Fatal(err)
		}
		hello := Func(func(args []json.RawMessage) (json.RawMessage, error) {
			var s string
			_ = json.Unmarshal(args[0], &s)
			return json.Marshal("hello " + s)
		})
		l := start(t, `return [greet("bob"), typeof host, items.length, items[1].n]`, Limits{}, Host{
			Prelude:        prelude,
			PreludeGlobals: []string{"greet", "items"},
			PreludeHost:    map[string]any{"hello": hello, "items": []any{map[string]any{"n": 1}, map[string]any{"n": 2}}},
		})
		if s := next(t, l); string(s.Result) != `["hello bob!","undefined",2,2]` {
			t.Fatalf("end = (%s, %v)", s.Result, s.Err)
		}
		if _, err := CompilePrelude("bad.js", `globalThis.x = 1`); err == nil {
			t.Error("a prelude that is not a function expression compiled")
		}
	})
}

func TestLiveResults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want, errContains, class string
	}{
		{"undefined is no result", `return undefined`, ``, "", ""},
		{"code may declare input and ctx", `const input = 1; let ctx = 2; return input + ctx`, `3`, "", ""},
		{"function", `return () => 1`, "", "could not be cloned", "Error"},
		{"nested function", `return {a: [1, {f() {}}]}`, "", `could not be cloned: it holds a function (at key "f")`, "Error"},
		{"symbol", `return Symbol("s")`, "", "could not be cloned", "Error"},
		{"TypeError class", `null.x`, "", "TypeError", "TypeError"},
		{"subclass of TypeError", `class E extends TypeError {}; throw new E("sub")`, "", "sub", "TypeError"},
		{"renamed error keeps its class", `const e = new RangeError("r"); e.name = "TypeError"; throw e`, "", "TypeError: r", "RangeError"},
		{"ReferenceError class", `nope`, "", "ReferenceError", "ReferenceError"},
		{"runtime SyntaxError", `JSON.parse("{")`, "", "SyntaxError", "SyntaxError"},
		{"not an Error", `throw {message: "plain"}`, "", "plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := next(t, start(t, tt.body, Limits{}, Host{}))
			if tt.errContains == "" {
				if s.Err != nil || string(s.Result) != tt.want {
					t.Fatalf("end = (%q, %v), want %q", s.Result, s.Err, tt.want)
				}
				return
			}
			var serr *Error
			if !errors.As(s.Err, &serr) || !strings.Contains(serr.Message, tt.errContains) || serr.Class != tt.class {
				t.Fatalf("end = (%s, %#v), want an error containing %q of class %q", s.Result, s.Err, tt.errContains, tt.class)
			}
		})
	}
}

func TestDirectCaps(t *testing.T) {
	t.Parallel()
	limited := Limits{MaxMemory: 64 << 20}
	tests := []struct {
		name     string
		body     string
		lim      Limits
		contains string // of the error; empty: the run succeeds with want
		want     string
	}{
		{"fill of a huge sparse array", `new Array(1e9).fill(0)`, limited, "Invalid array length: fill", ""},
		{"join of a huge sparse array", `return new Array(1e9).join("x").length`, limited, "Invalid array length: join", ""},
		{"Array.from of a huge array-like", `Array.from({length: 1e9})`, limited, "Invalid array length: Array.from", ""},
		{"Array.from of a huge sparse array", `Array.from(new Array(2 ** 28))`, limited, "Invalid array length: Array.from", ""},
		{"small arrays still work", `return [new Array(3).fill(1).join("-"), Array.from({length: 2}, (_, i) => i), Array.from(new Set([1, 2]))]`,
			limited, "", `["1-1-1",[0,1],[1,2]]`},
		{"huge ArrayBuffer", `new ArrayBuffer(2 ** 40)`, limited, "Array buffer allocation failed", ""},
		{"huge ArrayBuffer from a string", `new ArrayBuffer("1099511627776")`, limited, "Array buffer allocation failed", ""},
		{"huge ArrayBuffer from valueOf", `new ArrayBuffer({valueOf() { return 2 ** 40 }})`, limited, "Array buffer allocation failed", ""},
		{"huge typed array", `new Float64Array(2 ** 30)`, limited, "Float64Array of 8589934592 bytes", ""},
		{"huge typed array through the constructor property", `new (new Uint8Array(1).constructor)(2 ** 40)`, limited, "Array buffer allocation failed", ""},
		{"huge typed array through from", `Uint8Array.from({length: 2 ** 40})`, limited, "Array buffer allocation failed", ""},
		{"typed array after another", `const a = new Uint8Array(1); new Float64Array(2 ** 30)`, limited, "Float64Array of 8589934592 bytes", ""},
		{"ArrayBuffer after a typed array", `typeof Int8Array; new ArrayBuffer(2 ** 40)`, limited, "Array buffer allocation failed", ""},
		{"caps hold after the built-ins are patched",
			`Proxy = function (t) { return t }; Reflect.construct = () => ({}); Object.defineProperty = () => {};
			Object.getOwnPropertyDescriptor = () => undefined; Number = () => 0; Object.prototype.get = function () {};
			Object.getPrototypeOf = () => null; Symbol.hasInstance; Array.prototype[Symbol.iterator] = function* () { yield 1 };
			new Uint8Array(2 ** 40)`, limited, "Array buffer allocation failed", ""},
		// An object argument is an array-like, an iterable or a source
		// typed array: each of those allocates from what it says.
		{"typed array from an array-like", `new Uint8Array({length: 2 ** 40})`, limited, "Uint8Array of 1099511627776 bytes", ""},
		{"Float64Array from an array-like", `new Float64Array({length: 1e12})`, limited, "Float64Array of 8000000000000 bytes", ""},
		{"typed array from a huge sparse array", `new Uint8Array(new Array(2 ** 30))`, limited, "Array buffer allocation failed", ""},
		{"from of a huge sparse array", `Uint8Array.from(new Array(2 ** 30))`, limited, "Array buffer allocation failed", ""},
		{"subclass from an array-like", `class B extends Int32Array {}; new B({length: 2 ** 40})`, limited, "Int32Array of", ""},
		{"typed array widened from a typed array", `new Float64Array(new Uint8Array(16 << 20))`, limited, "Float64Array of 134217728 bytes", ""},
		{"every way to the constructors leads to the cap", `const ways = [
				() => new (new Uint8Array(1).constructor)(2 ** 40),
				() => new (Object.getPrototypeOf(new Int8Array(1)).constructor)(2 ** 40),
				() => new (new Uint8Array(4).buffer.constructor)(2 ** 40),
				() => new (new Float32Array(2).map(x => x).constructor)(2 ** 40),
				() => new (new Uint16Array(2).subarray(1).constructor)(2 ** 40),
				() => Reflect.construct(Uint32Array, [2 ** 40]),
				() => new (class extends BigInt64Array {})(2 ** 40),
				() => new (Object.getOwnPropertyDescriptor(globalThis, "Uint8ClampedArray").value)(2 ** 40),
				() => Float64Array.of.call(Float64Array, ...new Array(3)).constructor.from({length: 2 ** 40}),
			];
			return ways.map(f => { try { f(); return "allocated" } catch (e) { return e instanceof RangeError } })`,
			limited, "", `[true,true,true,true,true,true,true,true,true]`},
		{"built from an object as the original builds it", `let reads = 0;
			const src = {get length() { reads++; return 3 }, 0: 1, 1: {valueOf() { reads++; return 2 }}, 2: 3};
			const a = new Uint8Array(src);
			const it = new Int16Array(new Set([4, 5]));
			const m = new Uint8Array(new Map([[1, 2]]).keys());
			const s = new Uint8Array(new String("12"));
			class C extends Uint8Array {}
			const c = new C({length: 2, 0: 7});
			return [reads, Array.from(a), Array.from(it), Array.from(m), Array.from(s), c instanceof C, Array.from(c),
				Uint8Array.from({length: 2}, (_, i) => i * 3).join(), new Uint8Array([1, 2, 3]).length]`,
			limited, "", `[2,[1,2,3],[4,5],[1],[1,2],true,[7,0],"0,3",3]`},
		{"instanceof the typed array constructors and their parent", `const TA = Object.getPrototypeOf(Uint8Array);
			const u = new Uint8Array(1);
			return [u instanceof Uint8Array, u instanceof TA, u instanceof Int8Array, new ArrayBuffer(1) instanceof ArrayBuffer,
				u.buffer instanceof ArrayBuffer, {} instanceof Uint8Array, 1 instanceof Uint8Array]`,
			limited, "", `[true,true,false,true,true,false,false]`},
		{"frozen global", `Object.freeze(globalThis); new Uint8Array(2 ** 40)`, limited, "Array buffer allocation failed", ""},
		{"globals stay assignable and deletable", `Int8Array = 5; delete globalThis.Int16Array; Object.freeze(globalThis);
			const d = Object.getOwnPropertyDescriptor(globalThis, "Uint8Array");
			return [Int8Array, typeof Int16Array, new Uint8Array(1).constructor === Uint8Array, d.writable, d.enumerable, new Uint32Array(2).length]`,
			limited, "", `[5,"undefined",true,false,false,2]`},
		{"constructor errors and arguments pass through the cap", `try { new Int8Array(-1) } catch (e) {
			return [e instanceof RangeError, new Uint8Array(new ArrayBuffer(4), 1, 2).length, new Uint16Array([1, 2, 3]).length] }`,
			limited, "", `[true,2,3]`},
		{"typed arrays still work", `class B extends Uint8Array {};
			const b = new B(2); const u = new Uint8Array([1, 2, 3]);
			return [u instanceof Uint8Array, u.constructor === Uint8Array, b instanceof Uint8Array, b.length,
				Uint8Array.BYTES_PER_ELEMENT, Array.from(u.map(x => x * 2)), new ArrayBuffer(8).byteLength, new DataView(new ArrayBuffer(4)).byteLength]`,
			limited, "", `[true,true,true,2,1,[2,4,6],8,4]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := tt.lim
			if lim.MaxMemory > 0 {
				w := NewMemoryWatchdog(MemoryWatchdogOptions{})
				t.Cleanup(w.Close)
				lim.Memory = w
			}
			got, err := run(t, tt.body, "", lim, Host{})
			if tt.contains == "" {
				if err != nil || compactJSON(t, string(got)) != compactJSON(t, tt.want) {
					t.Fatalf("got (%s, %v), want %s", got, err, tt.want)
				}
				return
			}
			var serr *Error
			if !errors.As(err, &serr) || serr.Kind != KindRuntime || !strings.Contains(serr.Message, tt.contains) || serr.Class != "RangeError" {
				t.Fatalf("got (%s, %#v), want a RangeError containing %q", got, err, tt.contains)
			}
		})
	}
	t.Run("typed array from an endless iterable", func(t *testing.T) {
		t.Parallel()
		w := NewMemoryWatchdog(MemoryWatchdogOptions{})
		t.Cleanup(w.Close)
		// The list of values is refused past the limit, unless the watchdog
		// stops the run first.
		_, err := run(t, `new Uint8Array((function* () { for (;;) yield 1 })())`, "", Limits{MaxMemory: 1 << 20, Memory: w}, Host{})
		var serr *Error
		if !errors.As(err, &serr) || !(serr.Kind == KindMemory || serr.Class == "RangeError" && strings.Contains(serr.Message, "Array buffer allocation failed")) {
			t.Fatalf("err = %#v, want a RangeError or KindMemory", err)
		}
	})
}
