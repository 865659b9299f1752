package sandbox

import (
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

	return {
		parse: JSON.parse,
		stringify: stringify,
		describe: describe,
		formatArg: formatArg,
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
	parse     goja.Callable // JSON.parse
	stringify goja.Callable // JSON.stringify; called with one argument
	describe  goja.Callable // thrown value → message
	formatArg goja.Callable // console argument → text
	newError  goja.Callable // (message, isRange) → new Error(message) or new RangeError(message)
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
