package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dop251/goja"
)

// errorType selects the constructor of an error thrown into JS.
type errorType bool

const (
	plainError errorType = false
	rangeError errorType = true
)

// throw throws a new Error (or RangeError) into the running JS. It must be
// called from a native function: goja turns the panic into a JS throw.
func (e *execution) throw(typ errorType, msg string) {
	v, err := e.js.newError(goja.Undefined(), e.vm.ToValue(msg), e.vm.ToValue(bool(typ)))
	if err != nil {
		panic(err) // an interrupt: goja propagates it as uncatchable
	}
	panic(v)
}

// hostValue converts one Host.Globals entry (path names it in errors).
func (e *execution) hostValue(path string, v any) (goja.Value, error) {
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
			jv, err := e.hostValue(fmt.Sprintf("%s[%d]", path, i), x)
			if err != nil {
				return nil, err
			}
			vals[i] = jv
		}
		return e.vm.NewArray(vals...), nil
	case map[string]any:
		obj := e.vm.NewObject()
		for k, x := range v {
			jv, err := e.hostValue(path+"."+k, x)
			if err != nil {
				return nil, err
			}
			if err := obj.Set(k, jv); err != nil {
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
					ev := Event{Kind: EventResult, Seq: seq, Func: path, Result: res}
					if err != nil {
						ev.Result, ev.Err = nil, err.Error()
					}
					e.host.OnEvent(ev)
				}
				if err != nil {
					ev, jerr := e.js.newError(goja.Undefined(), e.vm.ToValue(err.Error()), e.vm.ToValue(false))
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
					pv, perr := e.js.parse(goja.Undefined(), e.vm.ToValue(string(res)))
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

// exportArgs converts JS arguments to JSON with the captured JSON.stringify.
func (e *execution) exportArgs(call goja.FunctionCall) []json.RawMessage {
	args := make([]json.RawMessage, len(call.Arguments))
	for i, a := range call.Arguments {
		s, err := e.js.stringify(goja.Undefined(), a)
		if err != nil {
			panic(err) // rethrow the TypeError (BigInt, cycle) or the interrupt
		}
		if goja.IsUndefined(s) {
			args[i] = json.RawMessage("null")
			continue
		}
		args[i] = json.RawMessage(s.String())
	}
	return args
}

// importResult converts a Func's JSON result; empty is undefined.
func (e *execution) importResult(path string, res json.RawMessage) goja.Value {
	if len(res) == 0 {
		return goja.Undefined()
	}
	v, err := e.js.parse(goja.Undefined(), e.vm.ToValue(string(res)))
	if err != nil {
		// A host bug, not the code's: end the run as an internal fault.
		panic(fmt.Sprintf("sandbox: host function %s returned invalid JSON: %v", path, err))
	}
	return v
}
