package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sync"

	"github.com/dop251/goja"
)

// The host never reaches a built-in through anything the code can replace:
// JSON crosses by the VM's own implementation called from Go (parseJSON,
// stringify), the few built-ins the host calls are captured before the code
// runs (captureIntrinsics), and the rest is found on first use from objects
// the engine itself creates. Capturing is kept to a minimum because every
// built-in touched before the code runs is materialised in each VM, and
// that used to be most of the cost of a run (see BenchmarkRunReturn1).
type intrinsics struct {
	// Captured before the code runs: the constructor of the errors the
	// host throws, and SyntaxError, whose prototype only its constructor
	// leads to. Each costs a few dozen allocations per VM. (RangeErrors are
	// the engine's own: see newError.)
	errorCtor, syntaxErrorCtor *goja.Object

	// stringify is the VM's JSON.stringify, captured for strict results
	// (Live runs) only: a replacer that refuses functions and symbols
	// needs the function itself, not MarshalJSON.
	stringify goja.Callable

	// hasOwn is Object.prototype.hasOwnProperty, captured for runs with
	// a prelude (js.hasOwn).
	hasOwn goja.Callable

	classes []errorClass // built on first use by classOf
	refuse  goja.Value   // strictStringify's replacer, on first use
}

// errorClass is a built-in error prototype and the class it stands for.
type errorClass struct {
	proto *goja.Object
	name  string
}

// captureIntrinsics reads the constructors the host relies on from the
// global object, before the code can replace them.
func (e *execution) captureIntrinsics() error {
	g := e.vm.GlobalObject()
	for _, c := range []struct {
		name string
		dst  **goja.Object
	}{{"Error", &e.js.errorCtor}, {"SyntaxError", &e.js.syntaxErrorCtor}} {
		o, ok := g.Get(c.name).(*goja.Object)
		if !ok {
			return fmt.Errorf("sandbox: the global %s is not an object", c.name)
		}
		*c.dst = o
	}
	if e.host.Prelude != nil {
		var ok bool
		if e.js.hasOwn, ok = goja.AssertFunction(e.vm.NewObject().Prototype().Get("hasOwnProperty")); !ok {
			return errors.New("sandbox: Object.prototype.hasOwnProperty is not a function")
		}
	}
	if e.strictResult {
		j, ok := g.Get("JSON").(*goja.Object)
		if !ok {
			return errors.New("sandbox: the global JSON is not an object")
		}
		if e.js.stringify, ok = goja.AssertFunction(j.Get("stringify")); !ok {
			return errors.New("sandbox: JSON.stringify is not a function")
		}
	}
	return nil
}

// errorType selects the constructor of an error thrown into JS.
type errorType bool

const (
	plainError errorType = false
	rangeError errorType = true
)

// newError makes an Error with the captured constructor, or a RangeError
// raised by the engine itself: setting an array's length to -1 makes one
// with the engine's own RangeError constructor, which the code cannot
// have replaced, and its message is then set (as own, writable, not
// enumerable, as the constructor sets it). That spares capturing the
// constructor in every run for errors only the caps throw. It fails only
// if the run is interrupted meanwhile.
func (e *execution) newError(typ errorType, msg string) (*goja.Object, error) {
	if typ == plainError {
		return e.vm.New(e.js.errorCtor, e.vm.ToValue(msg))
	}
	err := e.vm.NewArray().Set("length", -1)
	var ex *goja.Exception
	if !errors.As(err, &ex) {
		if err != nil {
			return nil, err
		}
		return nil, errors.New("sandbox: the engine raised no RangeError")
	}
	obj, ok := ex.Value().(*goja.Object)
	if !ok {
		return nil, errors.New("sandbox: the engine raised no RangeError")
	}
	if err := obj.DefineDataProperty("message", e.vm.ToValue(msg), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
		return nil, err
	}
	return obj, nil
}

// throw throws a new Error (or RangeError) into the running JS. It must be
// called from a native function: goja turns the panic into a JS throw.
func (e *execution) throw(typ errorType, msg string) {
	v, err := e.newError(typ, msg)
	if err != nil {
		panic(err) // an interrupt: goja propagates it as uncatchable
	}
	panic(v)
}

// guard runs f, which may run the code's JavaScript (getters, toJSON,
// proxy traps), from Go: an exception comes back as a *goja.Exception, an
// interrupt or a stack overflow as its error. Called from inside a native
// function, the caller must panic with an interrupt it gets back, so that
// it stays uncatchable.
func (e *execution) guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch x := r.(type) {
			case *goja.InterruptedError:
				err = x
			case *goja.StackOverflowError:
				err = x
			default:
				panic(r)
			}
		}
	}()
	if ex := e.vm.Try(f); ex != nil {
		return ex
	}
	return nil
}

// uncatchable reports whether err is an interrupt or a stack overflow,
// which must end the run rather than be caught.
func uncatchable(err error) bool {
	var interrupted *goja.InterruptedError
	var overflow *goja.StackOverflowError
	return errors.As(err, &interrupted) || errors.As(err, &overflow)
}

// parseJSON turns JSON into a JS value exactly as the VM's JSON.parse does
// (the same token stream, plain objects and arrays, data properties), but
// from Go, so the code cannot interfere with it.
func (e *execution) parseJSON(raw json.RawMessage) (goja.Value, error) {
	switch string(raw) {
	case "null":
		return goja.Null(), nil
	case "true":
		return e.vm.ToValue(true), nil
	case "false":
		return e.vm.ToValue(false), nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	v, err := e.decodeValue(d)
	if err != nil {
		return nil, err
	}
	if tok, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the value: %v", tok)
	}
	return v, nil
}

func (e *execution) decodeValue(d *json.Decoder) (goja.Value, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			return e.decodeObject(d)
		}
		return e.decodeArray(d) // the decoder yields '}' and ']' only after their opening
	case nil:
		return goja.Null(), nil
	case string, float64, bool:
		return e.vm.ToValue(tok), nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func (e *execution) decodeObject(d *json.Decoder) (goja.Value, error) {
	obj := e.vm.NewObject()
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string) // the decoder only yields strings as keys
		v, err := e.decodeValue(d)
		if err != nil {
			return nil, err
		}
		// Defined, not set: "__proto__" is a key like any other, and
		// setters the code put on Object.prototype do not run.
		if err := obj.DefineDataProperty(key, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
			return nil, err
		}
	}
	if _, err := d.Token(); err != nil { // '}'
		return nil, err
	}
	return obj, nil
}

func (e *execution) decodeArray(d *json.Decoder) (goja.Value, error) {
	var vals []any
	for d.More() {
		v, err := e.decodeValue(d)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	if _, err := d.Token(); err != nil { // ']'
		return nil, err
	}
	return e.vm.NewArray(vals...), nil
}

var (
	typeInt64   = reflect.TypeOf(int64(0))
	typeFloat64 = reflect.TypeOf(float64(0))
	typeBool    = reflect.TypeOf(false)
)

// stringify is JSON.stringify(v); ok is false where that is undefined (v
// is undefined, a function or a symbol). It runs the VM's own
// implementation (MarshalJSON) on a holder {"": v} with no prototype, which
// is what JSON.stringify itself serialises, and cuts the value's JSON out:
// toJSON methods and getters run as they would, and the code cannot
// replace JSON.stringify. Numbers and booleans are formatted here. An
// exception comes back as the error; an interrupt panics.
func (e *execution) stringify(v goja.Value) (s string, ok bool, err error) {
	if v == nil || goja.IsUndefined(v) {
		return "", false, nil
	}
	if goja.IsNull(v) {
		return "null", true, nil
	}
	if _, isSym := v.(*goja.Symbol); isSym {
		return "", false, nil
	}
	if _, isObj := v.(*goja.Object); !isObj {
		switch v.ExportType() {
		case typeInt64, typeBool:
			return v.String(), true, nil
		case typeFloat64:
			if f := v.ToFloat(); math.IsNaN(f) || math.IsInf(f, 0) {
				return "null", true, nil
			}
			return v.String(), true, nil
		}
	}
	// Strings (whose quoting must be the VM's), BigInts (which have a
	// toJSON lookup and then fail) and objects.
	h := e.vm.CreateObject(nil)
	if err := h.DefineDataProperty("", v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
		return "", false, err
	}
	b, err := h.MarshalJSON()
	if err != nil {
		return "", false, err
	}
	const prefix = `{"":`
	if len(b) < len(prefix)+1 || string(b[:len(prefix)]) != prefix {
		return "", false, nil // {}: the value was left out
	}
	return string(b[len(prefix) : len(b)-1]), true, nil
}

// strictStringify is JSON.stringify that refuses what a structured clone
// refuses too: a function or a symbol anywhere in the value, which plain
// JSON.stringify would silently drop. It calls the captured
// JSON.stringify (e.strictResult runs only) with a native replacer.
func (e *execution) strictStringify(v goja.Value) (goja.Value, error) {
	if e.js.refuse == nil {
		e.js.refuse = e.vm.ToValue(func(call goja.FunctionCall) goja.Value {
			key, value := call.Argument(0), call.Argument(1)
			t := ""
			if _, ok := value.(*goja.Symbol); ok {
				t = "symbol"
			} else if _, ok := goja.AssertFunction(value); ok {
				t = "function"
			}
			if t != "" {
				at := ""
				if k := key.String(); k != "" {
					at = ` (at key "` + k + `")`
				}
				e.throw(plainError, "the result could not be cloned: it holds a "+t+at+", which is not JSON")
			}
			return value
		})
	}
	return e.js.stringify(goja.Undefined(), v, e.js.refuse)
}

// describe turns a thrown value into the one-line message a run fails
// with: "name: message" for an Error, JSON for other objects, else
// String(v). Getters on an error may throw (the message then says the
// value cannot be described) or loop (stopped by the run's interrupt,
// which comes back as the error).
func (e *execution) describe(v goja.Value) (string, error) {
	var msg string
	err := e.guard(func() { msg = e.describeValue(v) })
	if err != nil && !uncatchable(err) {
		return "a thrown value that cannot be described", nil
	}
	return msg, err
}

func (e *execution) describeValue(v goja.Value) string {
	obj, isObj := v.(*goja.Object)
	if isObj && e.isError(obj) {
		name, msg := "Error", ""
		if n := obj.Get("name"); n != nil && !goja.IsUndefined(n) {
			name = e.toString(n)
		}
		if m := obj.Get("message"); m != nil && !goja.IsUndefined(m) {
			msg = e.toString(m)
		}
		if msg == "" {
			return name
		}
		return name + ": " + msg
	}
	if _, callable := goja.AssertFunction(v); isObj && !callable {
		if s, ok, err := e.stringify(v); err != nil {
			panic(err) // rethrown into guard
		} else if ok {
			return s
		}
	}
	return e.toString(v)
}

// formatArg renders one console argument that is not a string: an Error
// as describe does, another object as JSON, anything else (or an object
// JSON.stringify refuses) as String(v), "[value]" if that throws. Called
// from a native function: what isError throws (a proxy's trap) propagates
// to the code, as instanceof would, and so does an interrupt.
func (e *execution) formatArg(v goja.Value) string {
	obj, isObj := v.(*goja.Object)
	if isObj && e.isError(obj) {
		msg, err := e.describe(v)
		if err != nil {
			panic(err)
		}
		return msg
	}
	if _, callable := goja.AssertFunction(v); isObj && !callable {
		var s string
		var ok bool
		err := e.guard(func() {
			var serr error
			if s, ok, serr = e.stringify(v); serr != nil {
				panic(serr)
			}
		})
		if err == nil && ok {
			return s
		}
		if err != nil && uncatchable(err) {
			panic(err)
		}
	}
	var s string
	if err := e.guard(func() { s = e.toString(v) }); err != nil {
		if uncatchable(err) {
			panic(err)
		}
		return "[value]"
	}
	return s
}

// toString is String(v): a symbol becomes its description, anything else
// goes through ToString (which may run the code's toString).
func (e *execution) toString(v goja.Value) string {
	if s, ok := v.(*goja.Symbol); ok {
		return "Symbol(" + s.String() + ")"
	}
	return v.String()
}

// isError reports whether obj is an Error: whether Error.prototype is on
// its prototype chain (proxies' getPrototypeOf traps run, as for
// instanceof).
func (e *execution) isError(obj *goja.Object) bool {
	proto := e.js.errorCtor.Get("prototype")
	for p := obj.Prototype(); p != nil; p = p.Prototype() {
		if p.SameAs(proto) {
			return true
		}
	}
	return false
}

// classOf names the built-in error class of a thrown value by its
// prototype chain, which the code cannot fake by renaming or by
// Symbol.hasInstance; "" if it is not an Error. Proxies may trap
// getPrototypeOf: a trap that throws makes the value unclassifiable, one
// that loops is stopped by the run's interrupt (the error).
func (e *execution) classOf(v goja.Value) (string, error) {
	obj, ok := v.(*goja.Object)
	if !ok {
		return "", nil
	}
	if e.js.classes == nil {
		classes, err := e.errorClasses()
		if err != nil {
			return "", err
		}
		e.js.classes = classes
	}
	class := ""
	err := e.guard(func() {
		p := obj
		for depth := 0; p != nil && depth < 64; depth++ {
			if p = p.Prototype(); p == nil {
				return
			}
			for _, c := range e.js.classes {
				if p.SameAs(c.proto) {
					class = c.name
					return
				}
			}
		}
	})
	if err != nil && uncatchable(err) {
		return "", err
	}
	return class, nil
}

// errorClasses finds the built-in error prototypes, most specific first.
// TypeError's, ReferenceError's and RangeError's come from errors the
// engine itself raises, so replaced globals cannot mislead it; the others
// from the captured constructors (whose prototype property cannot change).
func (e *execution) errorClasses() ([]errorClass, error) {
	typeErr := e.vm.NewTypeError("")
	rangeErr, err := e.newError(rangeError, "")
	if err != nil {
		return nil, err
	}
	v, err := e.vm.RunProgram(referenceErrorProgram())
	if err != nil {
		return nil, err
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return nil, errors.New("sandbox: referror.js is not a function")
	}
	refErr, err := fn(goja.Undefined())
	if err != nil {
		return nil, err
	}
	refObj, ok := refErr.(*goja.Object)
	if !ok {
		return nil, errors.New("sandbox: referror.js did not return an error")
	}
	proto := func(ctor *goja.Object) *goja.Object {
		p, _ := ctor.Get("prototype").(*goja.Object)
		return p
	}
	return []errorClass{
		{typeErr.Prototype(), "TypeError"},
		{refObj.Prototype(), "ReferenceError"},
		{proto(e.js.syntaxErrorCtor), "SyntaxError"},
		{rangeErr.Prototype(), "RangeError"},
		{proto(e.js.errorCtor), "Error"},
	}, nil
}

// referenceErrorSource raises a ReferenceError from the engine itself (a
// read in the temporal dead zone, which looks nothing up) and returns it.
const referenceErrorSource = `(function () {
	'use strict';
	try { tdz; let tdz; } catch (e) { return e; }
})`

var referenceErrorProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("referror.js", referenceErrorSource, true)
})
