package sandbox

import (
	"fmt"
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
// proxy. It is installed only for runs with a memory limit, because
// materialising twelve constructors costs tens of microseconds.
const bufferCapSource = `(function (maxBytes) {
	'use strict';
	const g = globalThis;
	const ProxyCtor = Proxy;
	const construct = Reflect.construct;
	const defineProperty = Object.defineProperty;
	const NumberCtor = Number;
	const RangeErrorCtor = RangeError;
	const getProto = Object.getPrototypeOf;
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
	const names = ['ArrayBuffer', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
		'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];
	for (let i = 0; i < names.length; i++) {
		const name = names[i];
		const ctor = g[name];
		if (typeof ctor !== 'function') continue;
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
		defineProperty(ctor, Symbol.hasInstance, {value: hasInstance, writable: false, enumerable: false, configurable: true});
		defineProperty(ctor.prototype, 'constructor', {value: wrapped, writable: true, enumerable: false, configurable: true});
		defineProperty(g, name, {value: wrapped, writable: true, enumerable: false, configurable: true});
	}
})`

var bufferCapProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("buffercap.js", bufferCapSource, true)
})

// capBuffers installs bufferCapSource with the run's memory limit.
func (e *execution) capBuffers(maxBytes int64) error {
	v, err := e.vm.RunProgram(bufferCapProgram())
	if err != nil {
		return err
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return fmt.Errorf("buffercap.js is not a function")
	}
	_, err = fn(goja.Undefined(), e.vm.ToValue(maxBytes))
	return err
}
