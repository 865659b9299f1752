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

// ParkFunc is a host capability that waits for the caller of a live run
// (for a monday execution: the client). Calling it from JS returns a
// promise and parks the call; when the run has nothing left to do but wait
// for parked calls, it pauses and reports all of them at once (Live.Next),
// and Live.Resume settles them. An error throws in JS as an Error, or
// stops the run if it is a Halt. It runs on the run's goroutine and must
// be quick.
//
// In a one-shot run (Program.Run) nobody can answer: a run that waits for
// a parked call fails as a promise that never settles.
type ParkFunc func(args []json.RawMessage) (*Park, error)

// Park describes one parked call.
type Park struct {
	// ID names the call to the caller; it must be unique within the run.
	ID string
	// Request is reported with the pause (Parked.Request); the sandbox
	// does not read it.
	Request any
	// Settle, if set, turns the caller's answer into the promise's outcome
	// on the run's goroutine: a result (JSON; empty is undefined) resolves
	// it, an error rejects it with an Error of that message (a Halt stops
	// the run). Without Settle the promise resolves with the answer as is.
	Settle func(answer json.RawMessage) (json.RawMessage, error)
}

// Parked is a call the run waits for, as reported by a pause.
type Parked struct {
	ID      string
	Request any
}

// Answer settles the parked call ID with Value (JSON).
type Answer struct {
	ID    string
	Value json.RawMessage
}

// Step is where a live run stopped: paused (Parked is non-empty) or ended
// (with Result, or with Err: a *Error for failures of the code, another
// error for faults of the host).
type Step struct {
	Parked []Parked
	Result json.RawMessage // nil when the code returned undefined
	Err    error

	// Active is the time the run has been active so far (running or
	// waiting on AsyncFuncs), which is what Limits.Timeout bounds; Memory
	// the most heap the watchdog charged it with (0 without one).
	Active time.Duration
	Memory int64
}

// Paused reports whether the run waits for answers.
func (s Step) Paused() bool { return len(s.Parked) > 0 }

// Errors of Live.Resume.
var (
	ErrNotPaused   = errors.New("sandbox: the run is not paused")
	ErrUnknownCall = errors.New("sandbox: no parked call has this id")
)

// Live is a run that can pause for its caller (design A of the monday
// spec, §5.6): the code runs in one VM on the run's own goroutine, a
// ParkFunc call parks a promise, and when the event loop is idle with calls
// parked the run pauses; Resume settles them and the same VM goes on, with
// nothing re-run.
//
// Limits.Timeout bounds the time the run is active, not the time it is
// paused: the clock stops at each pause and restarts at Resume, and pending
// timers are shifted by the pause. A paused run holds its VM and its
// goroutine until it is resumed or canceled; the caller decides how long.
//
// A result that holds a function or a symbol fails the run ("could not be
// cloned"), and undefined is a nil Result, where Run would give JSON null
// for both.
type Live struct {
	stops   chan Step     // pauses and the end, in order; buffered so the run never blocks on them
	answers chan []Answer // Resume → the run
	done    chan struct{} // closed when the run's goroutine has ended

	mu      sync.Mutex
	x       *execution      // nil once the run has ended, so the VM can be collected
	waiting map[string]bool // ids reported by the current pause; nil unless paused

	// The clock of Limits.Timeout; the run's goroutine only.
	used       time.Duration
	active     bool
	activeFrom time.Time
	pausedAt   time.Time
	deadline   *time.Timer
}

// Start sets up a fresh VM for the program (globals, prelude) on the
// calling goroutine and runs the code on a new one; it returns at once.
// input and ctxObj are as for Run. Call Next after Start and after each
// successful Resume: each pause must be read before the run is resumed. An
// error means the run did not start: the code is too large (a *Error), or
// the host is at fault (a Global or the prelude failed).
func (p *Program) Start(input json.RawMessage, ctxObj any, lim Limits, host Host) (l *Live, err error) {
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
	ctx, cancel := context.WithCancel(context.Background())
	x := newExecution(ctx, lim, host)
	x.strictResult = true
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sandbox: panic while starting a run: %v", r)
		}
		if err != nil {
			cancel()
			x.release()
		}
	}()
	c, err := x.prepare(p, input, ctxJSON)
	if err != nil {
		return nil, err
	}
	l = &Live{
		stops:   make(chan Step, 2),
		answers: make(chan []Answer),
		done:    make(chan struct{}),
		x:       x,
	}
	go l.main(x, cancel, c)
	return l, nil
}

// Next returns the next step of the run: its next pause or its end. It
// blocks until there is one or ctx is done (the run goes on regardless).
// After the end, Next blocks until ctx is done.
func (l *Live) Next(ctx context.Context) (Step, error) {
	select {
	case s := <-l.stops:
		return s, nil
	case <-ctx.Done():
		return Step{}, ctx.Err()
	}
}

// Resume answers parked calls of the current pause and lets the run go on;
// call Next for where it stops again. Answers may cover some of the parked
// calls: the others stay parked and are reported again by the next pause.
// It fails with ErrNotPaused if the run is not paused (it is running, has
// ended, or was resumed already), and with ErrUnknownCall for an id that is
// not parked or is answered twice; the run is then still paused.
func (l *Live) Resume(answers []Answer) error {
	l.mu.Lock()
	if l.waiting == nil {
		l.mu.Unlock()
		return ErrNotPaused
	}
	seen := make(map[string]bool, len(answers))
	for _, a := range answers {
		if !l.waiting[a.ID] || seen[a.ID] {
			l.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrUnknownCall, a.ID)
		}
		seen[a.ID] = true
	}
	l.waiting = nil
	l.mu.Unlock()
	select {
	case l.answers <- answers:
		return nil
	case <-l.done:
		return ErrNotPaused // canceled while paused: Next reports the end
	}
}

// Cancel stops the run with cause (context.Canceled if nil), whether it is
// running or paused; the code cannot catch it. Next then reports the end
// with a *Error of KindCanceled (or KindTimeout if cause wraps
// context.DeadlineExceeded). It may be called from any goroutine, any
// number of times; after the end it does nothing.
func (l *Live) Cancel(cause error) {
	l.mu.Lock()
	x := l.x
	l.mu.Unlock()
	if x != nil {
		x.kill(cause)
	}
}

// Done is closed once the run has ended and its last Step is ready.
func (l *Live) Done() <-chan struct{} { return l.done }

// main is the run's goroutine: the only one that touches the VM after Start.
func (l *Live) main(x *execution, cancel context.CancelFunc, c *codeCall) {
	var final Step
	defer func() {
		if r := recover(); r != nil {
			// A host function or goja itself panicked. The VM is thrown away;
			// the process must not die for one run.
			final = Step{Err: fmt.Errorf("sandbox: panic during run: %v", r)}
		}
		l.stopClock(x)
		cancel() // ends AsyncFuncs still in flight
		final.Active, final.Memory = l.used, x.mem.peak()
		x.kill(errRunEnded) // later kills are no-ops and never touch the VM
		// Nothing the caller may keep (the Live) may reach the VM any more:
		// the memory watchdog measures the run gone once a GC finds it so.
		l.deadline = nil
		l.mu.Lock()
		l.x, l.waiting = nil, nil
		l.mu.Unlock()
		x.release()
		l.stops <- final
		close(l.done)
	}()

	l.startClock(x)
	out, err := x.call(c)
	if err != nil {
		final.Err = err
		return
	}
	if out.promise == nil {
		final.Result, final.Err = x.result(out.value)
		return
	}
	promise := out.promise
	for {
		err := x.loop(promise)
		if !errors.Is(err, errPaused) {
			if err != nil {
				final.Err = err
				return
			}
			break
		}
		answers, err := l.pause(x)
		if err != nil {
			final.Err = err
			return
		}
		if err := x.answer(answers); err != nil {
			final.Err = err
			return
		}
	}
	final.Result, final.Err = x.settle(promise)
}

// errRunEnded is the kill cause recorded once a run is over.
var errRunEnded = errors.New("sandbox: the run has ended")

// pause reports the parked calls and waits for answers or a kill.
func (l *Live) pause(x *execution) ([]Answer, error) {
	l.stopClock(x)
	parked := x.parkedList()
	waiting := make(map[string]bool, len(parked))
	for _, p := range parked {
		waiting[p.ID] = true
	}
	l.mu.Lock()
	l.waiting = waiting
	l.mu.Unlock()
	l.stops <- Step{Parked: parked, Active: l.used, Memory: x.mem.peak()}
	select {
	case answers := <-l.answers:
		l.startClock(x)
		return answers, nil
	case <-x.killed:
		return nil, x.stopped()
	}
}

// startClock (re)starts the time limit with what is left of it, and shifts
// the timers by the time the run was paused.
func (l *Live) startClock(x *execution) {
	now := time.Now()
	if !l.pausedAt.IsZero() {
		x.timers.shift(now.Sub(l.pausedAt))
		l.pausedAt = time.Time{}
	}
	l.active, l.activeFrom = true, now
	x.mem.setActive(true)
	left := x.lim.Timeout - l.used
	if left <= 0 {
		x.kill(errTimeLimit)
		return
	}
	l.deadline = time.AfterFunc(left, func() { x.kill(errTimeLimit) })
}

// stopClock stops the time limit and adds the active time to l.used.
func (l *Live) stopClock(x *execution) {
	if !l.active {
		return
	}
	if l.deadline != nil {
		l.deadline.Stop()
	}
	now := time.Now()
	l.used += now.Sub(l.activeFrom)
	l.active, l.pausedAt = false, now
	x.mem.setActive(false)
}

// parkedList returns the calls still parked, in the order they were made.
func (e *execution) parkedList() []Parked {
	out := make([]Parked, 0, len(e.parked))
	keep := e.parkOrder[:0]
	for _, id := range e.parkOrder {
		if pc, ok := e.parked[id]; ok {
			out = append(out, Parked{ID: id, Request: pc.request})
			keep = append(keep, id)
		}
	}
	clear(e.parkOrder[len(keep):])
	e.parkOrder = keep
	return out
}

// answer settles parked calls in the order given. Each settlement runs the
// code that awaited it (goja drains the microtasks), which may park more
// calls or finish the run.
func (e *execution) answer(answers []Answer) error {
	for _, a := range answers {
		pc, ok := e.parked[a.ID]
		if !ok {
			continue // Resume checked the ids; a late duplicate is ignored
		}
		delete(e.parked, a.ID)
		value, err := a.Value, error(nil)
		if pc.settle != nil {
			value, err = pc.settle(a.Value)
		}
		var halt *haltError
		if errors.As(err, &halt) {
			e.kill(halt)
			return e.stopped()
		}
		if err != nil {
			ev, jerr := e.newError(plainError, err.Error())
			if jerr != nil {
				return e.jsError(jerr)
			}
			if err := pc.reject(ev); err != nil {
				return e.jsError(err)
			}
			continue
		}
		var v goja.Value = goja.Undefined()
		if len(value) > 0 {
			pv, perr := e.parseJSON(value)
			if perr != nil {
				if e.isKilled() {
					return e.stopped()
				}
				return fmt.Errorf("sandbox: the answer to %s is not valid JSON: %w", a.ID, perr)
			}
			v = pv
		}
		if err := pc.resolve(v); err != nil {
			return e.jsError(err)
		}
	}
	if e.isKilled() {
		return e.stopped()
	}
	return nil
}
