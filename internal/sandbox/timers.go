package sandbox

import (
	"container/heap"
	"fmt"
	"math"
	"time"

	"github.com/dop251/goja"
)

const (
	// maxTimers bounds pending timers per run: each holds its callback and
	// arguments alive, and a loop scheduling them is a cheap way to grow memory.
	maxTimers = 10_000
	// maxTimerDelay is the largest delay browsers and Node accept (2^31-1 ms).
	maxTimerDelay = math.MaxInt32 * time.Millisecond
)

// timer is one setTimeout/setInterval. Timers fire in order of due time, and
// timers due at the same time in the order they were scheduled.
type timer struct {
	id       int64
	when     time.Time
	seq      uint64
	fn       goja.Callable
	args     []goja.Value
	interval time.Duration // > 0 for setInterval
	index    int           // position in the heap
}

// timers is a min-heap of pending timers plus an index by id for clearTimeout.
type timers struct {
	heap   timerHeap
	byID   map[int64]*timer
	nextID int64
	seq    uint64
}

func newTimers() timers { return timers{byID: make(map[int64]*timer)} }

func (ts *timers) next() *timer {
	if len(ts.heap) == 0 {
		return nil
	}
	return ts.heap[0]
}

func (ts *timers) schedule(t *timer, d time.Duration) {
	ts.seq++
	t.seq = ts.seq
	t.when = time.Now().Add(d)
	heap.Push(&ts.heap, t)
	ts.byID[t.id] = t
}

// shift moves every pending timer d later: a live run's timers measure the
// time it is active, so a pause for the caller does not make them all due
// at once when it resumes. Equal shifts keep the heap ordered.
func (ts *timers) shift(d time.Duration) {
	for _, t := range ts.heap {
		t.when = t.when.Add(d)
	}
}

func (ts *timers) remove(t *timer) {
	if _, ok := ts.byID[t.id]; !ok {
		return
	}
	heap.Remove(&ts.heap, t.index)
	delete(ts.byID, t.id)
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// setTimer implements setTimeout(fn, delay, ...args) and setInterval.
func (e *execution) setTimer(call goja.FunctionCall, repeat bool) goja.Value {
	name := "setTimeout"
	if repeat {
		name = "setInterval"
	}
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		panic(e.vm.NewTypeError(name + ": the callback must be a function"))
	}
	if len(e.timers.byID) >= maxTimers {
		e.throw(rangeError, fmt.Sprintf("%s: more than %d timers are pending", name, maxTimers))
	}
	d := timerDelay(call.Argument(1))
	if repeat && d < time.Millisecond {
		// As in Node: an interval of 0 would otherwise starve everything else.
		d = time.Millisecond
	}
	var args []goja.Value
	if len(call.Arguments) > 2 {
		args = append(args, call.Arguments[2:]...)
	}
	e.timers.nextID++
	t := &timer{id: e.timers.nextID, fn: fn, args: args}
	if repeat {
		t.interval = d
	}
	e.timers.schedule(t, d)
	return e.vm.ToValue(t.id)
}

// clearTimer implements clearTimeout and clearInterval; unknown ids are ignored.
func (e *execution) clearTimer(call goja.FunctionCall) goja.Value {
	id := call.Argument(0).ToInteger()
	if t, ok := e.timers.byID[id]; ok {
		e.timers.remove(t)
	}
	return goja.Undefined()
}

// fire runs a due timer. An exception it throws ends the run, as an uncaught
// exception ends a Node process.
func (e *execution) fire(t *timer) error {
	e.timers.remove(t)
	if t.interval > 0 {
		e.timers.schedule(t, t.interval)
	}
	if e.host.OnEvent != nil {
		e.host.OnEvent(Event{Kind: EventTimer, Seq: uint64(t.id)})
	}
	if _, err := t.fn(goja.Undefined(), t.args...); err != nil {
		return e.jsError(err)
	}
	return nil
}

func timerDelay(v goja.Value) time.Duration {
	if v == nil || goja.IsUndefined(v) {
		return 0
	}
	ms := v.ToFloat()
	if math.IsNaN(ms) || ms <= 0 {
		return 0
	}
	d := time.Duration(ms * float64(time.Millisecond))
	if ms >= float64(maxTimerDelay/time.Millisecond) {
		d = maxTimerDelay
	}
	return d
}
