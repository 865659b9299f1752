package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Defaults applied to zero Limits fields.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxResultBytes = 1 << 20
	// DefaultMaxCodeBytes matches the monday reference's MAX_CODE_SIZE.
	DefaultMaxCodeBytes = 1_000_000
)

const (
	// maxCallStackSize stops runaway recursion with a RangeError instead of
	// letting goja grow its call stack until memory runs out.
	maxCallStackSize = 8192
	// maxErrorMessageBytes bounds the message of a failed run; a thrown
	// value can be arbitrarily large.
	maxErrorMessageBytes = 4 << 10
)

// Limits bound one run. Zero fields take the defaults above.
type Limits struct {
	// Timeout bounds the time the run is active: for Run, the wall-clock
	// time of the whole run; for a Live run, the time it runs or waits on
	// host calls, not the time it is paused waiting for its caller.
	Timeout        time.Duration
	MaxResultBytes int // length of the JSON result
	MaxCodeBytes   int // length of the body

	// MaxMemory is the heap the run may be charged with by Memory; with
	// either unset the run's memory is not accounted (see MemoryWatchdog
	// for how, and how precisely, heap is charged to a run). With both set,
	// the run also gets the direct caps on single huge allocations:
	// Array.prototype.fill and join and Array.from of an array or an
	// array-like beyond 4 M elements, ArrayBuffer and typed arrays beyond
	// MaxMemory.
	MaxMemory int64
	Memory    *MemoryWatchdog
}

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxResultBytes <= 0 {
		l.MaxResultBytes = DefaultMaxResultBytes
	}
	if l.MaxCodeBytes <= 0 {
		l.MaxCodeBytes = DefaultMaxCodeBytes
	}
	return l
}

// Host is what the code may reach beyond the language itself.
type Host struct {
	// Globals are installed on the global object. A value may be a Func, an
	// AsyncFunc or a ParkFunc (or a func with the same signature), a
	// map[string]any (a namespace object whose values follow the same rules,
	// e.g. api.math.add; its keys are plain keys, __proto__ too), a Lazy (a
	// value built on first read), a json.RawMessage, or anything
	// encoding/json can marshal, which the code sees as plain data. Go values
	// are never exposed as wrapped objects, so the code cannot reach Go
	// methods or fields.
	Globals map[string]any

	// Console receives console.log/info/debug/warn/error output, one call per
	// line, level one of "debug", "info", "warn", "error". Output is bounded
	// per run (see console.go). Nil discards it.
	Console func(level, msg string)

	// Prelude, if set, builds the globals named by PreludeGlobals, in
	// JavaScript on top of host functions: it is called with an object
	// built from PreludeHost by the rules of Globals (a Lazy value is
	// converted when the prelude first reads it) and returns a builder per
	// global (see Prelude). Host functions handed to it that way stay in
	// its closure, out of the code's reach, so it can build a runtime API
	// (argument checks, composition of host calls) on top of them. It runs
	// when the code first uses one of those globals, never if it uses none,
	// and then behaves as if it had run before the code.
	Prelude        *Prelude
	PreludeGlobals []string
	PreludeHost    map[string]any

	// Now, if set, is the clock of Date.now() and new Date() (without
	// arguments); Random, if set, is the source of Math.random(). A host
	// that records what they return can replay a run exactly.
	Now    func() time.Time
	Random func() float64

	// OnEvent, if set, is told of each macrotask the event loop delivers
	// to the code, in order, on the run's goroutine: AsyncFunc results and
	// timer firings. With Now, Random and the answers to parked calls, the
	// sequence is everything a run depends on besides its code.
	OnEvent func(Event)
}

// EventKind says what an Event delivered.
type EventKind int

const (
	// EventResult: an AsyncFunc call settled; Seq is the call's number (in
	// call order, from 0), Func the host path of the function, Args what
	// it was called with, Result or Err what it settled with.
	EventResult EventKind = iota + 1
	// EventTimer: a timer fired; Seq is the id setTimeout/setInterval returned.
	EventTimer
)

// Event is one macrotask delivered to the code (see Host.OnEvent).
type Event struct {
	Kind   EventKind
	Seq    uint64
	Func   string
	Args   []json.RawMessage
	Result json.RawMessage
	Err    string // the rejection message; empty if the call succeeded
}

// Func is a synchronous host capability. Each JS argument arrives as JSON
// (undefined as null); a non-empty result is parsed and returned to JS,
// an empty one is undefined. An error is thrown in JS as an Error whose
// message is err.Error(), so it must be fit for the code's author to read.
// A Func runs on the loop goroutine and cannot be interrupted: it must be
// quick. A panic ends the run with an internal (non-*Error) error.
type Func func(args []json.RawMessage) (json.RawMessage, error)

// AsyncFunc is an asynchronous host capability: JS gets a Promise that
// settles with its result or rejects with an Error of its message. It runs on
// its own goroutine with a context that is canceled when the run ends, so it
// may block (on I/O, or later on a monday client's answer).
type AsyncFunc func(ctx context.Context, args []json.RawMessage) (json.RawMessage, error)

// RunFunction compiles body as the body of `async function (input, ctx)`
// and runs it once: input is the JSON passed as `input`, ctxObj is marshalled
// to JSON and passed as `ctx`. It returns the JSON of what the function's
// promise resolves to (undefined becomes null).
//
// Failures of the code are *Error. Any other error is a fault of the caller
// or of a host function (input that is not JSON, a Global that cannot be
// converted, a panicking host function) and is not meant for the code's author.
func RunFunction(ctx context.Context, body string, input json.RawMessage, ctxObj any, lim Limits, host Host) (json.RawMessage, error) {
	lim = lim.withDefaults()
	if len(body) > lim.MaxCodeBytes {
		return nil, codeTooLarge(len(body), lim.MaxCodeBytes)
	}
	p, err := Compile(body)
	if err != nil {
		return nil, err
	}
	return p.Run(ctx, input, ctxObj, lim, host)
}

// Run runs a compiled program once in a fresh VM; see RunFunction.
func (p *Program) Run(ctx context.Context, input json.RawMessage, ctxObj any, lim Limits, host Host) (out json.RawMessage, err error) {
	lim = lim.withDefaults()
	if p.size > lim.MaxCodeBytes {
		return nil, codeTooLarge(p.size, lim.MaxCodeBytes)
	}
	ctxJSON, err := json.Marshal(ctxObj)
	if err != nil {
		return nil, fmt.Errorf("sandbox: marshalling ctx: %w", err)
	}
	if len(input) == 0 {
		input = json.RawMessage("null")
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, lim.Timeout, errTimeLimit)
	defer cancel() // also cancels the AsyncFuncs still in flight
	e := newExecution(runCtx, lim, host)
	defer e.release()
	// The VM is used by this goroutine only; the interrupt is the one call
	// goja allows from another goroutine.
	stop := context.AfterFunc(runCtx, func() { e.kill(context.Cause(runCtx)) })
	defer stop()
	if runCtx.Err() != nil {
		e.kill(context.Cause(runCtx))
		return nil, e.stopped()
	}
	defer func() {
		// A host function or goja itself panicked. The VM is thrown away, so
		// its state does not matter; the process must not die for one run.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("sandbox: panic during run: %v", r)
		}
	}()
	e.mem.setActive(true)
	return e.run(p, input, ctxJSON)
}

var (
	// errTimeLimit is the cause of a run stopped when Limits.Timeout
	// passes; it wraps DeadlineExceeded for callers that test for it.
	errTimeLimit = fmt.Errorf("sandbox time limit reached: %w", context.DeadlineExceeded)
	// errPaused is what loop returns when the run waits for parked calls
	// only: nothing else can make progress until its caller answers.
	errPaused = errors.New("sandbox run paused")
)

func codeTooLarge(n, limit int) *Error {
	return &Error{Kind: KindCodeTooLarge, Message: fmt.Sprintf("the code is %d bytes, more than the limit of %d", n, limit)}
}

// execution is one run: one VM, its event loop, and the host around it.
// Everything but the completions channel and the kill state is touched by
// one goroutine at a time: the caller's for Run, the run's own for Live.
type execution struct {
	ctx  context.Context // host calls' context; done when the run ends
	vm   *goja.Runtime
	lim  Limits
	host Host
	js   intrinsics

	timers timers

	// pending counts AsyncFunc calls in flight; completions carries their
	// results back to the loop goroutine. asyncSeq numbers the calls.
	pending     int
	completions chan func() error
	asyncSeq    uint64

	// parked holds the ParkFunc calls waiting for the caller, by id, and
	// parkOrder their ids in the order they were made.
	parked    map[string]*parkedCall
	parkOrder []string

	// strictResult makes a result holding a function or a symbol fail
	// the run (Live) instead of being dropped as JSON.stringify does (Run).
	strictResult bool

	console consoleState

	// prelude holds the builders the prelude returned, once it has run.
	prelude *goja.Object

	// killed is closed, and cause set before, when the run is stopped
	// from outside the code: time limit, memory, cancellation, halt.
	killOnce sync.Once
	killed   chan struct{}
	cause    error

	mem *memRun // nil unless the run's memory is accounted
}

type parkedCall struct {
	request         any
	settle          func(json.RawMessage) (json.RawMessage, error)
	resolve, reject func(any) error
}

func newExecution(ctx context.Context, lim Limits, host Host) *execution {
	vm := goja.New()
	vm.SetParserOptions(parserOptions...)
	vm.SetMaxCallStackSize(maxCallStackSize)
	if host.Now != nil {
		vm.SetTimeSource(host.Now)
	}
	if host.Random != nil {
		vm.SetRandSource(host.Random)
	}
	e := &execution{
		ctx:         ctx,
		vm:          vm,
		lim:         lim,
		host:        host,
		timers:      newTimers(),
		completions: make(chan func() error, 16),
		killed:      make(chan struct{}),
	}
	if lim.Memory != nil && lim.MaxMemory > 0 {
		e.mem = lim.Memory.register(lim.MaxMemory, func() { e.kill(&memoryError{limit: lim.MaxMemory}) })
		e.mem.attachVM(vm)
	}
	return e
}

// kill stops the run with cause: the first cause wins. It may be called
// from any goroutine; the code is interrupted at its next instruction, and
// the loop stops waiting.
func (e *execution) kill(cause error) {
	e.killOnce.Do(func() {
		if cause == nil {
			cause = context.Canceled
		}
		e.cause = cause
		close(e.killed)
		e.vm.Interrupt(cause)
	})
}

func (e *execution) isKilled() bool {
	select {
	case <-e.killed:
		return true
	default:
		return false
	}
}

// release ends the run's memory accounting; the VM is garbage once the
// caller drops the execution.
func (e *execution) release() {
	if e.mem != nil {
		e.mem.unregister()
	}
}

// prepare sets the VM up and returns the code's function with its two
// arguments; both a run to completion and a live (pausable) run start here.
func (e *execution) prepare(p *Program, input, ctxJSON json.RawMessage) (c *codeCall, err error) {
	if err := e.setup(); err != nil {
		return nil, err
	}
	c = &codeCall{sync: p.sync}
	if c.input, err = e.parseJSON(input); err != nil {
		return nil, e.hostError("input", err)
	}
	if c.ctx, err = e.parseJSON(ctxJSON); err != nil {
		return nil, e.hostError("ctx", err)
	}
	if c.fn, err = e.vm.RunProgram(p.prg); err != nil {
		return nil, e.jsError(err)
	}
	return c, nil
}

// codeCall is the code's function, ready to be called once.
type codeCall struct {
	fn, input, ctx goja.Value
	sync           bool // see Program.sync
}

// outcome is what calling the code's function gave: the promise the run
// waits for, or, for a sync body that returned no thenable, its value.
type outcome struct {
	promise *goja.Promise
	value   goja.Value
}

func (e *execution) run(p *Program, input, ctxJSON json.RawMessage) (json.RawMessage, error) {
	c, err := e.prepare(p, input, ctxJSON)
	if err != nil {
		return nil, err
	}
	out, err := e.call(c)
	if err != nil {
		return nil, err
	}
	if out.promise == nil {
		return e.result(out.value)
	}
	if err := e.loop(out.promise); err != nil {
		if errors.Is(err, errPaused) {
			return nil, &Error{Kind: KindRuntime, Message: "the function's promise never settles: it waits for a parked " +
				"host call, which only a live run (Start) can answer"}
		}
		return nil, err
	}
	return e.settle(out.promise)
}

// call calls the code's function (goja drains the microtasks it queued
// before returning here). An async function runs up to its first await
// and gives its promise. A sync body (Program.sync) is called through the
// trampoline, a strict function that hands what the body returns to
// followResult before it returns itself: exactly where an async function
// would resolve its promise with it, before the microtasks the body
// queued run, so everything the code can observe happens in the same order.
func (e *execution) call(c *codeCall) (outcome, error) {
	if !c.sync {
		fn, ok := goja.AssertFunction(c.fn)
		if !ok {
			return outcome{}, errors.New("sandbox: the compiled code is not a function")
		}
		res, err := fn(goja.Undefined(), c.input, c.ctx)
		if err != nil {
			return outcome{}, e.jsError(err)
		}
		promise, ok := res.Export().(*goja.Promise)
		if !ok {
			return outcome{}, errors.New("sandbox: the async function did not return a promise")
		}
		return outcome{promise: promise}, nil
	}
	t, err := e.vm.RunProgram(trampolineProgram())
	if err != nil {
		return outcome{}, e.jsError(err)
	}
	tramp, ok := goja.AssertFunction(t)
	if !ok {
		return outcome{}, errors.New("sandbox: trampoline.js is not a function")
	}
	var followed *goja.Promise
	follow := e.vm.ToValue(func(call goja.FunctionCall) goja.Value {
		v, p := e.followResult(call.Argument(0))
		followed = p
		return v
	})
	res, err := tramp(goja.Undefined(), c.fn, c.input, c.ctx, follow)
	if err != nil {
		return outcome{}, e.jsError(err)
	}
	if followed != nil {
		return outcome{promise: followed}, nil
	}
	return outcome{value: res}, nil
}

// followResult does with the value a sync body returned what an async
// function's promise does when resolved with it: a thenable (an object
// whose then, read once, is callable) is followed through a promise, by a
// job queued now that calls then with the promise's resolving functions;
// anything else is the result as it is. Only a thenable makes a promise
// (and so materialises goja's Promise).
func (e *execution) followResult(v goja.Value) (goja.Value, *goja.Promise) {
	obj, ok := v.(*goja.Object)
	if !ok {
		return v, nil
	}
	then, ok := goja.AssertFunction(obj.Get("then"))
	if !ok {
		return v, nil
	}
	p, resolve, _ := e.vm.NewPromise()
	// Resolving with a thenable of our own, whose then calls the code's
	// with the code's value as this, queues the job without reading the
	// code's then a second time.
	w := e.vm.CreateObject(nil)
	_ = w.DefineDataProperty("then", e.vm.ToValue(func(call goja.FunctionCall) goja.Value {
		if _, err := then(obj, call.Arguments...); err != nil {
			panic(err)
		}
		return goja.Undefined()
	}), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	if err := resolve(w); err != nil {
		panic(err)
	}
	return e.vm.ToValue(p), p
}

// trampolineSource calls a sync body as the async wrapper would be
// called (this undefined) and hands what it returns to follow.
const trampolineSource = `(function (body, input, ctx, follow) {
	'use strict';
	return follow(body(input, ctx));
})`

var trampolineProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("trampoline.js", trampolineSource, true)
})

// setup prepares the global object. Only what every run needs at once,
// or what must be captured before the code can change it, is done here;
// the console and the prelude's globals are built on first use, and each
// built-in is materialised by goja only when something touches it.
//
// goja's global GoError constructor (for Go errors thrown into JS) is left
// in place: removing it would materialise it in every VM, and hiding it
// buys nothing. It is a plain Error subclass, and the runtime makes its
// instances, with the Go error in a "value" property, only for Go
// functions exposed by reflection and Go values with MarshalJSON, none of
// which the sandbox ever hands to the code.
func (e *execution) setup() error {
	if err := e.captureIntrinsics(); err != nil {
		return err
	}
	if err := e.installConsole(); err != nil {
		return fmt.Errorf("sandbox: installing console: %w", err)
	}
	if err := e.capStringBuilders(); err != nil {
		return fmt.Errorf("sandbox: capping string builders: %w", err)
	}
	// The caps that make a memory limit enforceable come with one: each
	// materialises built-ins, which is most of the cost of a small run.
	if e.mem != nil {
		if err := e.capArrayBuilders(); err != nil {
			return fmt.Errorf("sandbox: capping array builders: %w", err)
		}
		if err := e.capBuffers(e.lim.MaxMemory); err != nil {
			return fmt.Errorf("sandbox: capping buffers: %w", err)
		}
	}

	g := e.vm.GlobalObject()
	for _, t := range []struct {
		name string
		fn   func(goja.FunctionCall) goja.Value
	}{
		{"setTimeout", func(c goja.FunctionCall) goja.Value { return e.setTimer(c, false) }},
		{"setInterval", func(c goja.FunctionCall) goja.Value { return e.setTimer(c, true) }},
		{"clearTimeout", e.clearTimer},
		{"clearInterval", e.clearTimer},
	} {
		if err := g.DefineDataProperty(t.name, e.vm.ToValue(t.fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return fmt.Errorf("sandbox: installing %s: %w", t.name, err)
		}
	}

	for name, v := range e.host.Globals {
		if lazy, ok := v.(Lazy); ok {
			if err := e.defineLazy(g, name, true, func() goja.Value {
				jv, err := e.hostValue(name, lazy(), false)
				if err != nil {
					panic(hostFault{err})
				}
				return jv
			}); err != nil {
				return fmt.Errorf("sandbox: installing global %s: %w", name, err)
			}
			continue
		}
		jv, err := e.hostValue(name, v, false)
		if err != nil {
			return err
		}
		if err := g.Set(name, jv); err != nil {
			return fmt.Errorf("sandbox: installing global %s: %w", name, err)
		}
	}
	return e.installPreludeGlobals()
}

// loop drives the event loop until the promise settles: AsyncFunc
// completions first (their work is already done), then due timers, then it
// sleeps until the next timer, a completion, or the end of the run.
//
// When nothing but parked calls can make progress (no completion queued, no
// AsyncFunc in flight, no timer due now), it returns errPaused: that is the
// moment every parked call of a Promise.all has been made, so the caller
// gets them as one batch. Timers due later do not hold a pause back: an
// interval that reports progress must not keep a run from asking its
// caller for what it awaits.
func (e *execution) loop(p *goja.Promise) error {
	var sleep *time.Timer
	defer func() {
		if sleep != nil {
			sleep.Stop()
		}
	}()
	for p.State() == goja.PromiseStatePending {
		// A callback that is a Go built-in never reaches an interrupt check,
		// so the loop checks for a kill itself on every turn.
		if e.isKilled() {
			return e.stopped()
		}
		select {
		case f := <-e.completions:
			if err := f(); err != nil {
				return err
			}
			continue
		default:
		}

		var wake <-chan time.Time
		if t := e.timers.next(); t != nil {
			d := time.Until(t.when)
			if d <= 0 {
				if err := e.fire(t); err != nil {
					return err
				}
				continue
			}
			if e.pending == 0 && len(e.parked) > 0 {
				return errPaused
			}
			if sleep == nil {
				sleep = time.NewTimer(d)
			} else {
				sleep.Reset(d)
			}
			wake = sleep.C
		} else if e.pending == 0 {
			if len(e.parked) > 0 {
				return errPaused
			}
			return &Error{Kind: KindRuntime, Message: "the function's promise never settles: it waits for something " +
				"that nothing can resolve any more (no timer is pending and no host call is in flight)"}
		}

		// Waiting allocates nothing: the memory watchdog must not charge
		// this run for what other goroutines allocate meanwhile.
		e.mem.setActive(false)
		select {
		case f := <-e.completions:
			e.mem.setActive(true)
			if err := f(); err != nil {
				return err
			}
		case <-wake:
			e.mem.setActive(true)
		case <-e.killed:
			e.mem.setActive(true)
			return e.stopped()
		}
	}
	return nil
}

// settle turns the settled promise into the run's result.
func (e *execution) settle(p *goja.Promise) (json.RawMessage, error) {
	if p.State() == goja.PromiseStateRejected {
		return nil, e.thrown(p.Result())
	}
	return e.result(p.Result())
}

// result is the JSON of what the code's function resolved with.
func (e *execution) result(v goja.Value) (json.RawMessage, error) {
	if e.strictResult {
		s, err := e.strictStringify(v)
		if err != nil {
			return nil, e.jsError(err)
		}
		if goja.IsUndefined(s) {
			return nil, nil
		}
		// A goja string is UTF-16 inside; its length bounds the UTF-8 size
		// from below, so a string already past the cap is refused before
		// converting.
		if str, ok := s.(goja.String); ok && str.Length() > e.lim.MaxResultBytes {
			return nil, resultTooLarge(str.Length(), e.lim.MaxResultBytes)
		}
		return e.sized(s.String())
	}
	var out string
	var ok bool
	err := e.guard(func() {
		var serr error
		if out, ok, serr = e.stringify(v); serr != nil {
			panic(serr)
		}
	})
	if err != nil {
		return nil, e.jsError(err)
	}
	if !ok { // undefined, a function or a symbol
		return json.RawMessage("null"), nil
	}
	return e.sized(out)
}

func (e *execution) sized(out string) (json.RawMessage, error) {
	if len(out) > e.lim.MaxResultBytes {
		return nil, resultTooLarge(len(out), e.lim.MaxResultBytes)
	}
	return json.RawMessage(out), nil
}

func resultTooLarge(n, limit int) *Error {
	return &Error{Kind: KindResultTooLarge, Message: fmt.Sprintf("the result is at least %d bytes of JSON, more than the limit of %d", n, limit)}
}

// stopped is the error of a run that was killed.
func (e *execution) stopped() *Error {
	cause := context.Canceled
	if e.isKilled() {
		cause = e.cause
	}
	var mem *memoryError
	var halt *haltError
	switch {
	case errors.Is(cause, errTimeLimit):
		return &Error{Kind: KindTimeout, Message: fmt.Sprintf("the code ran longer than its time limit of %s", e.lim.Timeout), cause: context.DeadlineExceeded}
	case errors.Is(cause, context.DeadlineExceeded):
		return &Error{Kind: KindTimeout, Message: "the code ran past the deadline of the call", cause: context.DeadlineExceeded}
	case errors.As(cause, &mem):
		return &Error{Kind: KindMemory, Message: mem.Error()}
	case errors.As(cause, &halt):
		return &Error{Kind: KindHalted, Message: truncate(halt.Error(), maxErrorMessageBytes), cause: halt.err}
	default:
		return &Error{Kind: KindCanceled, Message: "the run was canceled", cause: cause}
	}
}

// jsError maps an error returned by goja into the run's error.
func (e *execution) jsError(err error) error {
	var interrupted *goja.InterruptedError
	var overflow *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &interrupted):
		return e.stopped()
	case errors.As(err, &overflow):
		return &Error{Kind: KindRuntime, Class: "RangeError", Message: "RangeError: Maximum call stack size exceeded"}
	case errors.As(err, &ex):
		return e.thrown(ex.Value())
	default:
		return fmt.Errorf("sandbox: %w", err)
	}
}

// thrown is the KindRuntime error for a value the code threw or rejected with.
func (e *execution) thrown(v goja.Value) error {
	msg, err := e.describe(v)
	if err != nil { // only an interrupt or a stack overflow gets here
		return e.jsError(err)
	}
	class, err := e.classOf(v)
	if err != nil {
		return e.jsError(err)
	}
	return &Error{Kind: KindRuntime, Class: class, Message: truncate(msg, maxErrorMessageBytes)}
}

// hostError reports a bad value handed in by the caller (not the code).
func (e *execution) hostError(what string, err error) error {
	var serr *Error
	if errors.As(err, &serr) && (serr.Kind == KindTimeout || serr.Kind == KindCanceled) {
		return serr
	}
	return fmt.Errorf("sandbox: %s is not valid JSON: %v", what, err)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
