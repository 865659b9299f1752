package sandbox

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/dop251/goja"
)

// bootstrapSource runs once per VM before the code. It captures the
// built-ins the host relies on (JSON, String, Error) before user code can
// replace them and returns the helpers the Go side calls. It is a function
// expression, so nothing it defines is reachable from the global object.
//
// It is deliberately small: every built-in it touches is materialised in
// each VM, and that is most of the cost of a run (see BenchmarkRunReturn1).
// Console, timers and the string caps are installed from Go for the same
// reason.
const bootstrapSource = `(function () {
	'use strict';
	const stringify = JSON.stringify;
	const ErrorCtor = Error;
	const RangeErrorCtor = RangeError;
	const StringCtor = String;
	const getProto = Object.getPrototypeOf;
	// errorClasses are the built-in error classes callers tell apart, by
	// prototype: a thrown value's class is found by walking its prototype
	// chain, which user code cannot fake by renaming or by
	// Symbol.hasInstance. They are found on first use, from errors the
	// engine itself raises (so replaced globals cannot mislead it), because
	// touching a constructor here would materialise it in every VM.
	let errorClasses = null;
	const intrinsicClasses = function () {
		const protoOf = function (f) {
			try { f(); } catch (e) { return getProto(e); }
			return null;
		};
		return [
			[protoOf(function () { null.x; }), 'TypeError'],
			[protoOf(function () { tdz; let tdz; }), 'ReferenceError'],
			[protoOf(function () { parse('{'); }), 'SyntaxError'],
			[RangeErrorCtor.prototype, 'RangeError'],
			[ErrorCtor.prototype, 'Error'],
		];
	};
	const parse = JSON.parse;

	// describe turns a thrown value into the one-line message a run fails
	// with. Getters on an error may throw or loop; the first is caught here,
	// the second is stopped by the run's interrupt.
	const describe = function (e) {
		try {
			if (e instanceof ErrorCtor) {
				const name = e.name === undefined ? 'Error' : StringCtor(e.name);
				const msg = e.message === undefined ? '' : StringCtor(e.message);
				return msg === '' ? name : name + ': ' + msg;
			}
			if (typeof e === 'object' && e !== null) {
				const s = stringify(e);
				if (s !== undefined) return s;
			}
			return StringCtor(e);
		} catch (_) {
			return 'a thrown value that cannot be described';
		}
	};

	// formatArg renders one console argument that is not a string.
	const formatArg = function (a) {
		if (a instanceof ErrorCtor) return describe(a);
		if (typeof a === 'object' && a !== null) {
			try {
				const s = stringify(a);
				if (s !== undefined) return s;
			} catch (_) { /* fall back to String */ }
		}
		try { return StringCtor(a); } catch (_) { return '[value]'; }
	};

	// classOf names the built-in error class of a thrown value, '' if it
	// is not an Error. Proxies may trap getPrototypeOf; that is caught, and
	// a trap that loops is stopped by the run's interrupt.
	const classOf = function (e) {
		try {
			if (errorClasses === null) errorClasses = intrinsicClasses();
			for (let p = e, depth = 0; p !== null && (typeof p === 'object' || typeof p === 'function') && depth < 64; depth++) {
				p = getProto(p);
				for (let i = 0; i < errorClasses.length; i++) {
					if (p === errorClasses[i][0]) return errorClasses[i][1];
				}
			}
		} catch (_) { /* not classifiable */ }
		return '';
	};

	// strictStringify is JSON.stringify that refuses what a structured
	// clone refuses too: a function or a symbol anywhere in the value,
	// which plain JSON.stringify would silently drop.
	const refuseUncloneable = function (key, value) {
		const t = typeof value;
		if (t === 'function' || t === 'symbol') {
			throw new ErrorCtor('the result could not be cloned: it holds a ' + t +
				(key === '' ? '' : ' (at key "' + StringCtor(key) + '")') + ', which is not JSON');
		}
		return value;
	};

	return {
		parse: parse,
		stringify: stringify,
		strictStringify: function (v) { return stringify(v, refuseUncloneable); },
		describe: describe,
		formatArg: formatArg,
		classOf: classOf,
		newError: function (msg, range) { return range ? new RangeErrorCtor(msg) : new ErrorCtor(msg); },
	};
})`

// bootstrapProgram is compiled once per process: a goja.Program is immutable
// and may run in many VMs at once.
var bootstrapProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("bootstrap.js", bootstrapSource, true)
})

// intrinsics are the built-ins captured by the bootstrap, called from Go.
type intrinsics struct {
	parse           goja.Callable // JSON.parse
	stringify       goja.Callable // JSON.stringify; called with one argument
	strictStringify goja.Callable // JSON.stringify that throws on functions and symbols
	describe        goja.Callable // thrown value → message
	classOf         goja.Callable // thrown value → built-in error class name, or ''
	formatArg       goja.Callable // console argument → text
	newError        goja.Callable // (message, isRange) → new Error(message) or new RangeError(message)
}

// maxStringLength caps the strings that String.prototype.repeat, padStart
// and padEnd may build (in UTF-16 code units): one call of those is the
// cheapest way to allocate gigabytes in a single, uninterruptible native step.
const maxStringLength = 1 << 24

// capStringBuilders replaces repeat, padStart and padEnd with natives that
// refuse results longer than maxStringLength, then call the original.
func (e *execution) capStringBuilders() error {
	proto := e.vm.Get("String").ToObject(e.vm).Get("prototype").ToObject(e.vm)
	for _, name := range []string{"repeat", "padStart", "padEnd"} {
		orig, ok := goja.AssertFunction(proto.Get(name))
		if !ok {
			continue
		}
		fn := func(call goja.FunctionCall) goja.Value {
			if goja.IsUndefined(call.This) || goja.IsNull(call.This) {
				panic(e.vm.NewTypeError("String.prototype." + name + " called on null or undefined"))
			}
			// Convert once and hand the converted values on, so a toString
			// or valueOf with side effects runs once, as with the original.
			s := call.This.ToString()
			n := call.Argument(0).ToFloat()
			length := n
			if name == "repeat" {
				length = float64(stringLength(s)) * n
			}
			if length > maxStringLength {
				e.throw(rangeError, "Invalid string length: "+name+" would build more than 16777216 characters")
			}
			args := append([]goja.Value{e.vm.ToValue(n)}, call.Arguments[min(1, len(call.Arguments)):]...)
			v, err := orig(s, args...)
			if err != nil {
				panic(err) // rethrow the RangeError (negative count) or the interrupt
			}
			return v
		}
		if err := proto.DefineDataProperty(name, e.vm.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	return nil
}

func stringLength(v goja.Value) int {
	if s, ok := v.(goja.String); ok {
		return s.Length()
	}
	return len(v.String())
}

// maxArrayLength caps the arrays Array.prototype.fill and join may walk and
// Array.from may build from an array-like (in elements): each is one native
// step that cannot be interrupted, and on a sparse array of a huge length
// (new Array(1e9) costs nothing) it runs for minutes and allocates
// gigabytes before the run's time or memory limit can act.
const maxArrayLength = 1 << 22

// capArrayBuilders replaces Array.prototype.fill and join and Array.from
// with natives that refuse lengths past maxArrayLength, then call the
// original. Runs with a memory limit only (see Limits.MaxMemory).
func (e *execution) capArrayBuilders() error {
	arrayCtor := e.vm.Get("Array").ToObject(e.vm)
	proto := arrayCtor.Get("prototype").ToObject(e.vm)
	length := func(v goja.Value) float64 {
		if goja.IsUndefined(v) || goja.IsNull(v) {
			return 0
		}
		return v.ToObject(e.vm).Get("length").ToFloat()
	}
	tooLong := func(name string) {
		e.throw(rangeError, fmt.Sprintf("Invalid array length: %s would walk more than %d elements", name, maxArrayLength))
	}
	wrap := func(obj *goja.Object, name string, check func(call goja.FunctionCall)) error {
		orig, ok := goja.AssertFunction(obj.Get(name))
		if !ok {
			return nil
		}
		fn := func(call goja.FunctionCall) goja.Value {
			check(call)
			v, err := orig(call.This, call.Arguments...)
			if err != nil {
				panic(err) // rethrow what the original threw, or the interrupt
			}
			return v
		}
		return obj.DefineDataProperty(name, e.vm.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	// fill counts this.length, not the start..end it may be cut to: reading
	// start and end here would run their valueOf twice, and nobody fills a
	// slice of a four-million-element array.
	if err := wrap(proto, "fill", func(call goja.FunctionCall) {
		if length(call.This) > maxArrayLength {
			tooLong("fill")
		}
	}); err != nil {
		return err
	}
	if err := wrap(proto, "join", func(call goja.FunctionCall) {
		if length(call.This) > maxArrayLength {
			tooLong("join")
		}
	}); err != nil {
		return err
	}
	return wrap(arrayCtor, "from", func(call goja.FunctionCall) {
		src := call.Argument(0)
		obj, ok := src.(*goja.Object)
		if !ok {
			return // a string or a primitive: bounded by its own size
		}
		if it := obj.GetSymbol(goja.SymIterator); it != nil && !goja.IsUndefined(it) && !goja.IsNull(it) {
			return // an iterable: iteration is interruptible, or bounded by the collection
		}
		if length(obj) > maxArrayLength {
			tooLong("Array.from")
		}
	})
}

// bufferCapSource wraps ArrayBuffer and the typed array constructors in
// proxies that refuse to allocate more than a number of bytes at once. One
// `new ArrayBuffer(2 ** 40)` is a single allocation no watchdog can stop,
// and past the machine's memory the Go runtime does not panic, it aborts
// the whole process. A proxy keeps the constructors working as before
// (instanceof, statics, subclassing, species); prototype.constructor is
// pointed at it, so `x.constructor === Uint8Array` still holds and the
// unwrapped constructor is not reachable. The length is converted once
// here and handed on converted, so a valueOf runs once, as without the
// proxy.
//
// Building twelve proxies costs more than most runs, and few runs touch a
// typed array, so capBuffers installs them lazily (see there): this runs on
// first access, possibly after the code has patched the built-ins. So the
// intrinsics it uses are captured before the code runs and passed in, and
// every descriptor literal has no prototype (an Object.prototype.get must
// not turn it into an accessor descriptor).
const bufferCapSource = `(function (g, ProxyCtor, construct, defineProperty, getOwnPropertyDescriptor,
	NumberCtor, RangeErrorCtor, getProto, hasInstanceSym) {
	'use strict';
	// goja cannot run instanceof against a proxy (it throws), so each
	// constructor gets the ordinary check as its own Symbol.hasInstance.
	// It reads this.prototype, so subclasses inherit a working one.
	const hasInstance = function (v) {
		if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return false;
		const proto = this.prototype;
		for (let p = getProto(v); p !== null; p = getProto(p)) {
			if (p === proto) return true;
		}
		return false;
	};
	// wrap caps one constructor, points its prototype's constructor at the
	// proxy and, if the global is still the lazy accessor (getter) and not
	// frozen, replaces it with the proxy as a data property.
	return function (maxBytes, name, ctor, getter) {
		const isBuffer = name === 'ArrayBuffer';
		const size = isBuffer ? 1 : ctor.BYTES_PER_ELEMENT;
		// The handler has no prototype: traps the code adds to
		// Object.prototype must not become traps of this proxy.
		const wrapped = new ProxyCtor(ctor, {
			__proto__: null,
			construct: function (target, args, newTarget) {
				// ArrayBuffer takes its first argument as a length whatever it
				// is; a typed array only a primitive one (an object is an
				// array, an iterable or a buffer, bounded by what exists).
				const a = args[0];
				if (args.length > 0 && (isBuffer || a === null || (typeof a !== 'object' && typeof a !== 'function'))) {
					const n = NumberCtor(a);
					if (n * size > maxBytes) {
						throw new RangeErrorCtor('Array buffer allocation failed: ' + name + ' of ' + (n * size) +
							' bytes is more than the memory limit of ' + maxBytes + ' bytes');
					}
					// A literal, not concat: Array.prototype is the code's to patch.
					args = [n, args[1]];
				}
				return construct(target, args, newTarget === wrapped ? target : newTarget);
			},
		});
		defineProperty(ctor, hasInstanceSym, {__proto__: null, value: hasInstance, writable: false, enumerable: false, configurable: true});
		defineProperty(ctor.prototype, 'constructor', {__proto__: null, value: wrapped, writable: true, enumerable: false, configurable: true});
		const d = getOwnPropertyDescriptor(g, name);
		if (d !== undefined && d.get === getter && d.configurable) {
			defineProperty(g, name, {__proto__: null, value: wrapped, writable: true, enumerable: false, configurable: true});
		}
		return wrapped;
	};
})`

var bufferCapProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("buffercap.js", bufferCapSource, true)
})

// bufferCtorNames are the constructors bufferCapSource wraps.
var bufferCtorNames = [...]string{"ArrayBuffer", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
	"Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"}

// bufferCaps is the lazy state of capBuffers for one VM.
type bufferCaps struct {
	e        *execution
	maxBytes int64
	// intrinsics are the arguments of bufferCapSource, captured before
	// the code runs; construct (index 2) is built by install, in Go, as
	// Reflect would cost more to materialise than the rest.
	intrinsics []goja.Value
	raw        [len(bufferCtorNames)]goja.Value // the unwrapped constructors
	getters    [len(bufferCtorNames)]goja.Value // the lazy accessors' getters
	wrap       goja.Callable                    // bufferCapSource's inner function, once built
	wrapped    [len(bufferCtorNames)]goja.Value // the proxies, as install builds them
	installed  bool
}

// capBuffers caps ArrayBuffer and the typed arrays at maxBytes per
// allocation (bufferCapSource). Each of the twelve globals becomes an
// accessor whose first use, by any of them, wraps all twelve at once and
// turns the globals back into data properties holding the proxies, exactly
// as if they had been wrapped before the code ran. No unwrapped
// constructor is reachable before that: none of them, nor an instance, can
// be had except through these globals.
func (e *execution) capBuffers(maxBytes int64) error {
	vm := e.vm
	g := vm.GlobalObject()
	object := g.Get("Object").ToObject(vm)
	c := &bufferCaps{e: e, maxBytes: maxBytes, intrinsics: []goja.Value{
		g, g.Get("Proxy"), nil, object.Get("defineProperty"),
		object.Get("getOwnPropertyDescriptor"), g.Get("Number"), g.Get("RangeError"),
		object.Get("getPrototypeOf"), goja.SymHasInstance,
	}}
	for i, name := range bufferCtorNames {
		c.raw[i] = g.Get(name)
		c.getters[i] = vm.ToValue(func(goja.FunctionCall) goja.Value {
			c.install()
			return c.wrapped[i]
		})
		// Assigning to the global replaces it, as it would a data
		// property; on a frozen global the assignment is ignored.
		setter := vm.ToValue(func(call goja.FunctionCall) goja.Value {
			c.install()
			_ = g.DefineDataProperty(name, call.Argument(0), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
			return goja.Undefined()
		})
		if err := g.DefineAccessorProperty(name, c.getters[i], setter, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	return nil
}

// install wraps all twelve constructors, once. It runs inside a getter or
// setter called by the code, so a failure (the run's interrupt, a stack
// overflow) is thrown into the code, and the next access resumes where it
// stopped: a constructor's global only changes after its proxy is complete,
// and a getter never returns an unwrapped constructor.
func (c *bufferCaps) install() {
	if c.installed {
		return
	}
	if err := c.wrapAll(); err != nil {
		panic(err) // rethrow the exception or the interrupt
	}
	c.installed = true
}

func (c *bufferCaps) wrapAll() error {
	vm := c.e.vm
	if c.wrap == nil {
		v, err := vm.RunProgram(bufferCapProgram())
		if err != nil {
			return err
		}
		outer, ok := goja.AssertFunction(v)
		if !ok {
			return fmt.Errorf("buffercap.js is not a function")
		}
		c.intrinsics[2] = vm.ToValue(c.construct)
		w, err := outer(goja.Undefined(), c.intrinsics...)
		if err != nil {
			return err
		}
		if c.wrap, ok = goja.AssertFunction(w); !ok {
			return fmt.Errorf("buffercap.js did not return a function")
		}
	}
	max := vm.ToValue(c.maxBytes)
	for i, name := range bufferCtorNames {
		if c.wrapped[i] != nil {
			continue
		}
		w, err := c.wrap(goja.Undefined(), max, vm.ToValue(name), c.raw[i], c.getters[i])
		if err != nil {
			return err
		}
		c.wrapped[i] = w
	}
	return nil
}

// construct is Reflect.construct(target, args, newTarget) for the proxies'
// construct trap: target is an unwrapped constructor, args the list the
// trap got or built, newTarget a constructor.
func (c *bufferCaps) construct(call goja.FunctionCall) goja.Value {
	vm := c.e.vm
	ctor, ok := goja.AssertConstructor(call.Argument(0))
	if !ok {
		panic(vm.NewTypeError("buffer cap: target is not a constructor"))
	}
	list := call.Argument(1).ToObject(vm)
	args := make([]goja.Value, list.Get("length").ToInteger())
	for i := range args {
		args[i] = list.Get(strconv.Itoa(i))
	}
	o, err := ctor(call.Argument(2).ToObject(vm), args...)
	if err != nil {
		panic(err) // rethrow what the constructor threw
	}
	return o
}
