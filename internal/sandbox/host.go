package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/dop251/goja"
)

// hostValue converts one Host.Globals or PreludeHost entry (path names
// it in errors and in Event.Func). Objects are built with data properties
// defined, not assigned, so a key like __proto__ is a key, and setters the
// code may have put on Object.prototype by the time a Lazy value is
// converted do not run. hidden objects (the prelude's host object and
// what it holds) have no prototype, so a key the prelude reads that is not
// there is undefined, not something the code put on Object.prototype.
func (e *execution) hostValue(path string, v any, hidden bool) (goja.Value, error) {
	switch v := v.(type) {
	case Func:
		return e.vm.ToValue(e.syncFunc(path, v)), nil
	case func([]json.RawMessage) (json.RawMessage, error):
		return e.vm.ToValue(e.syncFunc(path, v)), nil
	case AsyncFunc:
		return e.vm.ToValue(e.asyncFunc(path, v)), nil
	case func(context.Context, []json.RawMessage) (json.RawMessage, error):
		return e.vm.ToValue(e.asyncFunc(path, v)), nil
	case ParkFunc:
		return e.vm.ToValue(e.parkFunc(path, v)), nil
	case []any:
		vals := make([]any, len(v))
		for i, x := range v {
			jv, err := e.hostValue(path+"["+strconv.Itoa(i)+"]", x, hidden)
			if err != nil {
				return nil, err
			}
			vals[i] = jv
		}
		return e.vm.NewArray(vals...), nil
	case map[string]any:
		var obj *goja.Object
		if hidden {
			obj = e.vm.CreateObject(nil)
		} else {
			obj = e.vm.NewObject()
		}
		for k, x := range v {
			if lazy, ok := x.(Lazy); ok {
				p := path + "." + k
				if err := e.defineLazy(obj, k, true, func() goja.Value {
					jv, err := e.hostValue(p, lazy(), hidden)
					if err != nil {
						panic(hostFault{err})
					}
					return jv
				}); err != nil {
					return nil, fmt.Errorf("sandbox: global %s.%s: %w", path, k, err)
				}
				continue
			}
			jv, err := e.hostValue(path+"."+k, x, hidden)
			if err != nil {
				return nil, err
			}
			if err := obj.DefineDataProperty(k, jv, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
				return nil, fmt.Errorf("sandbox: global %s.%s: %w", path, k, err)
			}
		}
		return obj, nil
	// Primitives and string lists are converted directly: they cannot wrap
	// host types, and a JSON round trip per value is most of the cost of a
	// large PreludeHost.
	case string:
		return e.vm.ToValue(v), nil
	case bool:
		return e.vm.ToValue(v), nil
	case int:
		return e.vm.ToValue(v), nil
	case float64:
		return e.vm.ToValue(v), nil
	case []string:
		vals := make([]any, len(v))
		for i, s := range v {
			vals[i] = s
		}
		return e.vm.NewArray(vals...), nil
	case json.RawMessage:
		jv, err := e.parseJSON(v)
		if err != nil {
			return nil, fmt.Errorf("sandbox: global %s: not valid JSON: %w", path, err)
		}
		return jv, nil
	case Lazy:
		return e.hostValue(path, v(), hidden)
	default:
		// Plain data only: goja's own wrapping of Go values would expose
		// methods and fields of host types to the code.
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("sandbox: global %s: %w", path, err)
		}
		jv, err := e.parseJSON(b)
		if err != nil {
			return nil, fmt.Errorf("sandbox: global %s: %w", path, err)
		}
		return jv, nil
	}
}

func (e *execution) syncFunc(path string, fn Func) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		args := e.exportArgs(call)
		res, err := fn(args)
		if err != nil {
			return e.fail(err)
		}
		return e.importResult(path, res)
	}
}

// fail reports a host function's error to the code: a Halt stops the run
// (the interrupt lands as soon as the native function returns, before any
// catch can see it); anything else is thrown as an Error.
func (e *execution) fail(err error) goja.Value {
	var halt *haltError
	if errors.As(err, &halt) {
		e.kill(halt)
		return goja.Undefined()
	}
	e.throw(plainError, err.Error())
	return nil // not reached: throw panics
}

func (e *execution) parkFunc(path string, fn ParkFunc) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		args := e.exportArgs(call)
		pk, err := fn(args)
		if err != nil {
			return e.fail(err)
		}
		if pk == nil || pk.ID == "" {
			panic(fmt.Sprintf("sandbox: park function %s returned no id", path))
		}
		if _, dup := e.parked[pk.ID]; dup {
			panic(fmt.Sprintf("sandbox: park function %s returned the id %q twice", path, pk.ID))
		}
		promise, resolve, reject := e.vm.NewPromise()
		if e.parked == nil {
			e.parked = make(map[string]*parkedCall)
		}
		e.parked[pk.ID] = &parkedCall{request: pk.Request, settle: pk.Settle, resolve: resolve, reject: reject}
		e.parkOrder = append(e.parkOrder, pk.ID)
		return e.vm.ToValue(promise)
	}
}

func (e *execution) asyncFunc(path string, fn AsyncFunc) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		args := e.exportArgs(call)
		promise, resolve, reject := e.vm.NewPromise()
		e.pending++
		seq := e.asyncSeq
		e.asyncSeq++
		go func() {
			res, panicked, err := callAsync(e.ctx, fn, args)
			e.post(func() error {
				e.pending--
				if panicked != nil {
					return fmt.Errorf("sandbox: host function %s panicked: %v", path, panicked)
				}
				var halt *haltError
				if errors.As(err, &halt) {
					e.kill(halt)
					return e.stopped()
				}
				if e.host.OnEvent != nil {
					ev := Event{Kind: EventResult, Seq: seq, Func: path, Args: args, Result: res}
					if err != nil {
						ev.Result, ev.Err = nil, err.Error()
					}
					e.host.OnEvent(ev)
				}
				if err != nil {
					ev, jerr := e.newError(plainError, err.Error())
					if jerr != nil {
						return e.jsError(jerr)
					}
					if err := reject(ev); err != nil {
						return e.jsError(err)
					}
					return nil
				}
				var v goja.Value = goja.Undefined()
				if len(res) > 0 {
					pv, perr := e.parseJSON(res)
					if perr != nil {
						return fmt.Errorf("sandbox: host function %s returned invalid JSON: %w", path, perr)
					}
					v = pv
				}
				if err := resolve(v); err != nil {
					return e.jsError(err)
				}
				return nil
			})
		}()
		return e.vm.ToValue(promise)
	}
}

// callAsync runs fn and turns a panic into a value, because a panic on this
// goroutine would otherwise take the whole process down.
func callAsync(ctx context.Context, fn AsyncFunc, args []json.RawMessage) (res json.RawMessage, panicked any, err error) {
	defer func() { panicked = recover() }()
	res, err = fn(ctx, args)
	return res, nil, err
}

// post hands a completion to the loop goroutine; it gives up once the run
// has ended, so a late host call does not block forever.
func (e *execution) post(f func() error) {
	select {
	case e.completions <- f:
	case <-e.ctx.Done():
	}
}

// exportArgs converts JS arguments to JSON as JSON.stringify does (see
// stringify); undefined, functions and symbols become null.
func (e *execution) exportArgs(call goja.FunctionCall) []json.RawMessage {
	args := make([]json.RawMessage, len(call.Arguments))
	for i, a := range call.Arguments {
		s, ok, err := e.stringify(a)
		if err != nil {
			panic(err) // rethrow the TypeError (BigInt, cycle)
		}
		if !ok {
			args[i] = json.RawMessage("null")
			continue
		}
		args[i] = json.RawMessage(s)
	}
	return args
}

// importResult converts a Func's JSON result; empty is undefined.
func (e *execution) importResult(path string, res json.RawMessage) goja.Value {
	if len(res) == 0 {
		return goja.Undefined()
	}
	v, err := e.parseJSON(res)
	if err != nil {
		// A host bug, not the code's: end the run as an internal fault.
		panic(fmt.Sprintf("sandbox: host function %s returned invalid JSON: %v", path, err))
	}
	return v
}
