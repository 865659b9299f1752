package sandbox

import (
	"fmt"

	"github.com/dop251/goja"
)

// Lazy is a host value converted only when it is first read (in
// Host.Globals or Host.PreludeHost): the property holding it is built from
// func's result on first use, by the rules of Host.Globals. A host gives a large or
// rarely used part of its API this way (a group of tools), so that a run
// pays only for the parts its code touches.
type Lazy func() any

// hostFault ends a run for a fault of the host found while the code runs
// (a prelude or a Lazy value that fails): a panic with it is not a value
// the code can catch, and the run fails with it as an internal error.
type hostFault struct{ err error }

func (h hostFault) Error() string { return h.err.Error() }

// defineLazy defines key on obj as an accessor whose first use replaces
// it with a data property (writable and configurable, enumerable as
// given) holding build's value, exactly as if the property had held that
// value from the start:
//
//   - a read builds the value and returns it;
//   - an assignment stores the assigned value without building anything,
//     as on a writable data property (through an object that inherits the
//     property, it makes an own property of that object, as then);
//   - delete, Object.defineProperty and the like replace the accessor
//     without building anything.
//
// One native serves as getter and setter: a getter is called with no
// argument, a setter with one. Before the first use the property shows as
// an accessor; once the code has made it non-configurable (Object.freeze)
// it stays one, and keeps returning the same value. build runs inside the
// code's access: what it panics with (a host fault, an interrupt) ends
// the run.
func (e *execution) defineLazy(obj *goja.Object, key string, enumerable bool, build func() goja.Value) error {
	enum := goja.FLAG_FALSE
	if enumerable {
		enum = goja.FLAG_TRUE
	}
	var value goja.Value // once built or assigned
	settle := func(v goja.Value) {
		value = v
		// Fails only on a non-configurable accessor: it then stays.
		_ = obj.DefineDataProperty(key, v, goja.FLAG_TRUE, goja.FLAG_TRUE, enum)
	}
	accessor := e.vm.ToValue(func(call goja.FunctionCall) goja.Value {
		if len(call.Arguments) == 0 { // [[Get]]
			if value == nil {
				settle(build())
			} else {
				settle(value)
			}
			return value
		}
		v := call.Argument(0) // [[Set]]
		if this, ok := call.This.(*goja.Object); ok && this != obj {
			if value == nil {
				settle(build())
			}
			if err := this.Set(key, v); err != nil {
				panic(err)
			}
			return goja.Undefined()
		}
		settle(v)
		return goja.Undefined()
	})
	return obj.DefineAccessorProperty(key, accessor, accessor, goja.FLAG_TRUE, enum)
}

// installPreludeGlobals defines each of Host.PreludeGlobals as a lazy
// global (defineLazy: writable, configurable, not enumerable) whose first
// use runs the prelude, once, and then the prelude's builder for that
// global. A global the code assigns, deletes or redefines before using it
// never runs its builder, as if the prelude had defined it before the
// code and the code had then changed it.
func (e *execution) installPreludeGlobals() error {
	if e.host.Prelude == nil {
		return nil
	}
	g := e.vm.GlobalObject()
	for _, name := range e.host.PreludeGlobals {
		if err := e.defineLazy(g, name, false, func() goja.Value { return e.preludeGlobal(name) }); err != nil {
			return fmt.Errorf("sandbox: installing global %s: %w", name, err)
		}
	}
	return nil
}

// preludeGlobal builds the global name: it runs the prelude if it has not
// run, then the builder it returned for name.
func (e *execution) preludeGlobal(name string) goja.Value {
	if e.prelude == nil {
		builders, err := e.runPrelude()
		if err != nil {
			if uncatchable(err) {
				panic(err)
			}
			panic(hostFault{err})
		}
		e.prelude = builders
	}
	build, ok := goja.AssertFunction(e.prelude.Get(name))
	if !ok {
		panic(hostFault{fmt.Errorf("sandbox: the prelude returned no builder for %s", name)})
	}
	v, err := build(goja.Undefined())
	if err != nil {
		if uncatchable(err) {
			panic(err)
		}
		panic(hostFault{fmt.Errorf("sandbox: prelude: building %s: %w", name, err)})
	}
	return v
}

// runPrelude calls the prelude with the host object built from
// Host.PreludeHost and the helpers object, and returns what it returned.
func (e *execution) runPrelude() (*goja.Object, error) {
	v, err := e.vm.RunProgram(e.host.Prelude.prg)
	if err != nil {
		return nil, fmt.Errorf("sandbox: prelude: %w", err)
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return nil, fmt.Errorf("sandbox: prelude: not a function")
	}
	hostObj, err := e.hostValue("host", e.host.PreludeHost, true)
	if err != nil {
		return nil, err
	}
	res, err := fn(goja.Undefined(), hostObj, e.preludeHelpers())
	if err != nil {
		if uncatchable(err) {
			return nil, err
		}
		return nil, fmt.Errorf("sandbox: prelude: %w", err)
	}
	builders, ok := res.(*goja.Object)
	if !ok {
		return nil, fmt.Errorf("sandbox: the prelude did not return its builders")
	}
	return builders, nil
}

// preludeHelpers is the prelude's second argument: what it needs of the
// language, done from Go or with a built-in captured before the code ran,
// because the prelude may run after the code has replaced Object,
// String, Object.prototype's methods or put getters and setters on
// Object.prototype (see Prelude).
func (e *execution) preludeHelpers() goja.Value {
	vm := e.vm
	js := vm.CreateObject(nil)
	obj := func(v goja.Value) *goja.Object {
		o, ok := v.(*goja.Object)
		if !ok {
			panic(vm.NewTypeError("prelude helper: not an object"))
		}
		return o
	}
	helpers := []struct {
		name string
		fn   func(goja.FunctionCall) goja.Value
	}{
		// define(obj, key, value): a writable, enumerable, configurable
		// data property, also for keys like __proto__.
		{"define", func(call goja.FunctionCall) goja.Value {
			if err := obj(call.Argument(0)).DefineDataProperty(call.Argument(1).String(), call.Argument(2),
				goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
				panic(err)
			}
			return goja.Undefined()
		}},
		// lazy(obj, key, build): the same, holding build()'s value, built
		// on first use (defineLazy).
		{"lazy", func(call goja.FunctionCall) goja.Value {
			o, key := obj(call.Argument(0)), call.Argument(1).String()
			build, ok := goja.AssertFunction(call.Argument(2))
			if !ok {
				panic(vm.NewTypeError("prelude helper lazy: build is not a function"))
			}
			err := e.defineLazy(o, key, true, func() goja.Value {
				v, err := build(goja.Undefined())
				if err != nil {
					if uncatchable(err) {
						panic(err)
					}
					panic(hostFault{fmt.Errorf("sandbox: prelude: building %s: %w", key, err)})
				}
				return v
			})
			if err != nil {
				panic(err)
			}
			return goja.Undefined()
		}},
		// string(v): String(v).
		{"string", func(call goja.FunctionCall) goja.Value {
			v := call.Argument(0)
			if s, ok := v.(goja.String); ok {
				return s
			}
			return vm.ToValue(e.toString(v))
		}},
		// hasOwn(obj, key): Object.prototype.hasOwnProperty.call(obj, key).
		{"hasOwn", func(call goja.FunctionCall) goja.Value {
			v, err := e.js.hasOwn(call.Argument(0), call.Argument(1))
			if err != nil {
				panic(err)
			}
			return v
		}},
	}
	for _, h := range helpers {
		_ = js.DefineDataProperty(h.name, vm.ToValue(h.fn), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	}
	return js
}
