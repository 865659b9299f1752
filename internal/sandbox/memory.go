package sandbox

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
)

// MemoryWatchdog charges Go heap growth to the runs that cause it and stops
// a run charged with more than its Limits.MaxMemory (KindMemory). goja has
// no heap of its own and no allocation hook, so this is an estimate from
// the outside; the doc of NewMemoryWatchdog says how it works and where it
// is imprecise.
type MemoryWatchdog struct {
	interval  time.Duration
	heapLimit int64

	mu       sync.Mutex
	runs     map[*memRun]struct{}
	removals []removal // charges of runs that ended, until a GC has measured them gone

	// readHeap and collect are runtime/metrics and runtime.GC, replaced
	// in tests of the accounting.
	readHeap func() heapSample
	collect  func()

	// Only the watchdog goroutine touches these (under mu).
	lastAllocs uint64
	lastCycles uint64
	lastLive   uint64
	epochAlloc int64 // bytes allocated since the last GC, by anyone
	hot        []*memRun
	victims    []*memRun // runs stopped whose memory has not been measured gone yet
	forced     forcedGC

	active atomic.Int64 // runs marked active
	wake   chan struct{}
	quit   chan struct{}
	done   chan struct{}
	gcs    sync.WaitGroup
}

// removal is the charge of a run that ended, until its VM is collected.
// Its memory leaves the heap at the first GC that finds the VM unreachable,
// which may be well after the end (a GC already under way, a host call
// still holding a promise of it). Until then a shrink of the live heap is
// taken to be this memory leaving; once the VM's cleanup has run, what has
// not been seen leaving was masked by growth, which is then charged as
// growth. Taking it off the books any earlier would credit the shrink, and
// later charge the growth, to whoever happened to allocate meanwhile.
type removal struct {
	bytes  int64        // still expected to leave the heap
	gone   *atomic.Bool // set by the cleanup of the run's VM
	victim bool         // of a run the watchdog stopped
}

// bigRemoval is the charge of an ended run worth a forced GC to measure
// at once.
const bigRemoval = 64 << 20

// forcedGC is the state of the collections the watchdog asks for.
type forcedGC struct {
	mu       sync.Mutex
	running  bool
	end      time.Time     // of the last one
	duration time.Duration // of the last one
}

// MemoryWatchdogOptions configure NewMemoryWatchdog. Zero fields take
// defaults.
type MemoryWatchdogOptions struct {
	// Interval between two heap samples while a run is active (default 5 ms).
	Interval time.Duration
	// HeapLimit, if positive, is a process-wide guard: when the live heap
	// measured by a GC passes it, the run charged with the most memory is
	// stopped (KindMemory) even if it is under its own limit, one run at a
	// time. It does not make the Go runtime collect more often: set
	// GOMEMLIMIT (debug.SetMemoryLimit) a little above it for that. The
	// watchdog never sets the process memory limit itself.
	HeapLimit int64
}

// heapSample is what the watchdog reads of the Go runtime.
type heapSample struct {
	allocs  uint64 // cumulative bytes allocated
	cycles  uint64 // completed GC cycles
	live    uint64 // heap marked live by the last GC
	goal    uint64 // heap size at which the next GC starts
	objects uint64 // heap in use now, garbage included
}

// runtimeHeap returns a reader of heapSample from runtime/metrics.
func runtimeHeap() func() heapSample {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	return func() heapSample {
		metrics.Read(samples)
		v := func(i int) uint64 {
			if samples[i].Value.Kind() != metrics.KindUint64 {
				return 0 // unsupported by this runtime: the watchdog then charges nothing
			}
			return samples[i].Value.Uint64()
		}
		return heapSample{allocs: v(0), cycles: v(1), live: v(2), goal: v(3), objects: v(4)}
	}
}

// Between two collections the watchdog asks for, it waits four times as
// long as the last one took, so forced collections take at most about a
// fifth of the time, but at least minForcedGap and at most maxForcedGap: a
// slow collection (a huge heap) must not leave a runaway run unmeasured
// for long.
const (
	minForcedGap = 10 * time.Millisecond
	maxForcedGap = 250 * time.Millisecond
)

// NewMemoryWatchdog starts a watchdog goroutine; Close stops it. One
// watchdog serves any number of runs (Limits.Memory).
//
// How heap is charged to a run:
//
//   - Every Interval while any run is active (running JavaScript, or ready
//     to: not paused, not blocked on a host call or a timer), it reads the
//     process's cumulative allocation count and charges the bytes allocated
//     since the last sample to the runs active in that interval, split
//     equally. At most GOMAXPROCS goroutines run at once, so an interval
//     usually has one or two. Allocations while no run is active are the
//     server's.
//   - When a GC cycle completes, the change of the live heap since the
//     previous one is shared out in proportion to what each run allocated
//     in between (the server's share is dropped): growth is added to a
//     run's charge, shrinkage taken off it. Garbage therefore costs a run
//     nothing once collected, and a run that keeps what it allocates is
//     charged with it. A run that ends takes its charge with it.
//   - A run charged with more than its limit is interrupted with a memory
//     error. When a run has allocated more since the last GC than the room
//     left under its limit and the next GC is not near, the watchdog forces
//     a collection (runtime.GC, rate-limited) to measure it at once, so a
//     runaway allocation is caught within milliseconds of passing its limit
//     instead of when the heap next doubles.
//   - When several runs are over their limits, the one most over is
//     stopped first, weighted up by how much of its allocation was measured
//     while it ran alone. The runs that shared its intervals may carry part
//     of its blame: they are not judged until a GC has measured the heap
//     without the stopped run, and the shrink that GC measures is credited
//     to them first. One of them that alone allocates more than its limit
//     meanwhile is judged at once.
//
// Limits: the charge is an estimate. Runs active in the same interval share
// its allocations equally, so a busy run beside a runaway one is charged
// part of the runaway's growth until the runaway is stopped; two runs busy
// in exactly the same intervals from start to limit cannot be told apart,
// and either may be stopped first (the survivor is then judged by what it
// allocates alone). A run that allocates and releases quickly may be
// over-charged until the next GC. One native step (a single huge
// concatenation, a built-in walking a huge array) is not interruptible: the
// run stops when the step returns, after the allocation, so a doubling
// string overshoots its limit by up to its last doubling. The sandbox caps
// the cheapest such steps directly (String.prototype.repeat/padStart/padEnd,
// Array.prototype.fill/join, Array.from, typed arrays and ArrayBuffer up to
// MaxMemory).
//
// Use one watchdog per process: each sees the whole heap but knows only its
// own runs.
func NewMemoryWatchdog(opts MemoryWatchdogOptions) *MemoryWatchdog {
	w := newMemoryWatchdog(opts, runtimeHeap(), runtime.GC)
	go w.run()
	return w
}

// newMemoryWatchdog builds a watchdog without starting its goroutine.
func newMemoryWatchdog(opts MemoryWatchdogOptions, readHeap func() heapSample, collect func()) *MemoryWatchdog {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Millisecond
	}
	w := &MemoryWatchdog{
		interval:  opts.Interval,
		heapLimit: opts.HeapLimit,
		readHeap:  readHeap,
		collect:   collect,
		runs:      make(map[*memRun]struct{}),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	h := readHeap()
	w.lastAllocs, w.lastCycles, w.lastLive = h.allocs, h.cycles, h.live
	return w
}

// Close stops the watchdog and waits for it; runs it served are no longer
// accounted.
func (w *MemoryWatchdog) Close() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	w.gcs.Wait()
}

// memRun is one run's account.
type memRun struct {
	w       *MemoryWatchdog
	limit   int64
	onLimit func()

	active  atomic.Bool // running JavaScript now
	touched atomic.Bool // active at some point since the last sample
	charge  atomic.Int64
	peakVal atomic.Int64

	// gone is set by the cleanup of the run's VM once a GC has found it
	// unreachable (attachVM).
	gone *atomic.Bool

	// The watchdog goroutine only (under w.mu).
	alloc     int64 // bytes allocated in its intervals since the last GC
	prevAlloc int64 // the same, between the two GCs before
	solo      int64 // bytes allocated in intervals it had to itself, ever
	shared    int64 // its share of intervals it shared, ever
	gain      int64 // what the last GC added to its charge
	stopped   bool  // interrupted for memory
	gated     bool  // may hold blame of a stopped run: not judged until that is measured
	// sinceGated counts what it allocated alone since it was gated: past
	// its limit it is judged again at once, so a wrong victim cannot
	// shelter a runaway for long.
	sinceGated int64
	ended      bool
}

func (w *MemoryWatchdog) register(limit int64, onLimit func()) *memRun {
	r := &memRun{w: w, limit: limit, onLimit: onLimit, gone: new(atomic.Bool)}
	w.mu.Lock()
	w.runs[r] = struct{}{}
	w.mu.Unlock()
	return r
}

// attachVM makes the collection of vm mark the run's memory gone. The
// cleanup holds only the flag, never the VM or the run.
func (r *memRun) attachVM(vm *goja.Runtime) {
	runtime.AddCleanup(vm, func(gone *atomic.Bool) { gone.Store(true) }, r.gone)
}

// unregister ends the run's account. Its charge stays on the books (a
// removal) until its VM has been collected.
func (r *memRun) unregister() {
	r.setActive(false)
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.runs[r]; !ok {
		return
	}
	if r.touched.Load() {
		// What it allocated since the last sample is its own: once it is
		// gone, the next sample would split it among the runs left (a
		// watchdog starved by a busy machine may not have sampled for a
		// while, and a runaway's last allocation is its largest).
		w.sample(true)
	}
	delete(w.runs, r)
	// onLimit holds the run's VM: the watchdog must not keep it alive.
	r.ended, r.onLimit = true, nil
	if c := r.charge.Load(); c > 0 || r.stopped {
		w.removals = append(w.removals, removal{bytes: c, gone: r.gone, victim: r.stopped})
	}
}

// setActive marks the run as running JavaScript or not; nil-safe, so runs
// without accounting need no checks.
func (r *memRun) setActive(on bool) {
	if r == nil || !r.active.CompareAndSwap(!on, on) {
		return
	}
	if on {
		r.touched.Store(true)
		if r.w.active.Add(1) == 1 {
			select {
			case r.w.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	r.w.active.Add(-1)
}

// peak is the most the run has been charged with; nil-safe.
func (r *memRun) peak() int64 {
	if r == nil {
		return 0
	}
	return r.peakVal.Load()
}

func (w *MemoryWatchdog) run() {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		if w.active.Load() == 0 {
			tick.Stop()
			select {
			case <-w.wake:
			case <-w.quit:
				return
			}
			// What was allocated while no run was active is the server's.
			w.mu.Lock()
			w.sample(false)
			w.mu.Unlock()
			tick.Reset(w.interval)
		}
		select {
		case <-tick.C:
			w.mu.Lock()
			w.sample(true)
			w.mu.Unlock()
		case <-w.quit:
			return
		}
	}
}

// sample charges the allocations since the last sample (to the runs active
// in between if attribute, else to the server), reconciles charges with
// the live heap after a GC, and enforces the limits. Called with w.mu held.
func (w *MemoryWatchdog) sample(attribute bool) {
	h := w.readHeap()
	d := int64(h.allocs - w.lastAllocs)
	w.lastAllocs = h.allocs
	w.epochAlloc += d

	if attribute {
		hot := w.hot[:0]
		for r := range w.runs {
			// Active now or at some point since the last sample.
			if r.touched.Swap(r.active.Load()) {
				hot = append(hot, r)
			}
		}
		switch {
		case d <= 0 || len(hot) == 0:
		case len(hot) == 1:
			hot[0].alloc += d
			hot[0].solo += d
			hot[0].sinceGated += d
		default:
			share := d / int64(len(hot))
			for _, r := range hot {
				r.alloc += share
				r.shared += share
			}
		}
		clear(hot)
		w.hot = hot
	}

	if h.cycles != w.lastCycles {
		w.reconcile(int64(h.live) - int64(w.lastLive) + w.settleRemovals(int64(h.live)-int64(w.lastLive)))
		w.lastLive, w.lastCycles = h.live, h.cycles
	}
	w.enforce(h)
}

// settleRemovals books the removals against a change of the live heap
// and returns the correction to it: the rest of removals whose VM has been
// collected, plus the part of a shrink that is ended runs' memory leaving.
func (w *MemoryWatchdog) settleRemovals(delta int64) int64 {
	var correction int64
	keep := w.removals[:0]
	for _, rm := range w.removals {
		if rm.gone.Load() {
			correction += rm.bytes
			continue
		}
		keep = append(keep, rm)
	}
	clear(w.removals[len(keep):])
	w.removals = keep
	shrink := -(delta + correction)
	for i := range w.removals {
		if shrink <= 0 {
			break
		}
		x := min(shrink, w.removals[i].bytes)
		w.removals[i].bytes -= x
		shrink -= x
		correction += x
	}
	return correction
}

// reconcile shares a change of the live heap between the runs in
// proportion to their allocations since the previous GC. A shrink is first
// credited to runs gated by a stop: it is the stopped run's memory leaving
// the heap, and what of it they were charged with was never theirs.
func (w *MemoryWatchdog) reconcile(delta int64) {
	total := w.epochAlloc
	w.epochAlloc = 0
	if delta < 0 {
		var blamed int64
		for r := range w.runs {
			if r.gated {
				blamed += r.charge.Load()
			}
		}
		if blamed > 0 {
			credit := min(-delta, blamed)
			for r := range w.runs {
				if c := r.charge.Load(); r.gated && c > 0 {
					r.charge.Store(max(c-int64(float64(credit)*float64(c)/float64(blamed)), 0))
				}
			}
			delta += credit
		}
	}
	for r := range w.runs {
		r.gain = 0
		if r.alloc == 0 && r.prevAlloc == 0 {
			continue
		}
		if total > 0 {
			// A run cannot have kept more than it allocated since the GC
			// before last (what was allocated just before a GC may only show
			// as live at the next one). The cap matters when the heap grows
			// by what a run that has just ended allocated: its growth must
			// not fall on whoever allocated a little meanwhile.
			added := int64(float64(delta) * float64(r.alloc) / float64(total))
			added = min(added, r.alloc+r.prevAlloc)
			old := r.charge.Load()
			c := max(old+added, 0)
			r.charge.Store(c)
			r.gain = c - old
			if c > r.peakVal.Load() {
				r.peakVal.Store(c)
			}
		}
		r.prevAlloc, r.alloc = r.alloc, 0
	}
}

// enforce stops the run most over its limit, else (with a HeapLimit, when
// the live heap is past it) the one charged with the most. Runs that may
// carry blame of a run stopped earlier are not judged until a GC has
// measured the heap without it. Otherwise it forces a GC when a run's
// allocations since the last one could take it past its limit.
func (w *MemoryWatchdog) enforce(h heapSample) {
	if len(w.victims) > 0 && w.victimsMeasured() {
		clear(w.victims)
		w.victims = w.victims[:0]
		for r := range w.runs {
			r.gated = false
		}
	}

	var worst *memRun
	worstScore := 0.0
	for r := range w.runs {
		if r.gated && r.sinceGated > r.limit {
			r.gated = false
		}
		if r.stopped || r.gated || r.charge.Load() <= r.limit {
			continue
		}
		if score := r.score(); score > worstScore {
			worst, worstScore = r, score
		}
	}
	if worst == nil && len(w.victims) == 0 && w.heapLimit > 0 && int64(h.live) > w.heapLimit {
		var most int64
		for r := range w.runs {
			if c := r.charge.Load() + r.alloc; !r.stopped && c > most {
				worst, most = r, c
			}
		}
	}
	if worst != nil {
		w.stop(worst)
		return
	}

	for _, rm := range w.removals {
		if rm.bytes >= bigRemoval {
			w.forceGC()
			break
		}
	}

	// Measure now rather than when the heap next doubles, unless the next
	// GC is near anyway.
	for r := range w.runs {
		if r.stopped || r.charge.Load()+r.alloc <= r.limit {
			continue
		}
		if h.goal > h.objects && int64(h.goal-h.objects) < r.limit/4 {
			return
		}
		w.forceGC()
		return
	}
}

// score ranks runs over their limit: how far over, weighted up by how much
// of its allocation was measured while it ran alone. Two runs sharing
// every interval are charged alike; a runaway one usually had moments to
// itself that the other did not, and that breaks the tie its way.
func (r *memRun) score() float64 {
	ratio := float64(r.charge.Load()) / float64(r.limit)
	if total := r.solo + r.shared; total > 0 {
		return ratio * (1 + float64(r.solo)/float64(total))
	}
	return ratio
}

// stop interrupts v. The runs that allocated beside it since the last GC,
// or were charged beside it at that GC, may hold part of its blame: they
// wait until its memory is measured gone, when the blame flows back.
func (w *MemoryWatchdog) stop(v *memRun) {
	v.stopped = true
	for r := range w.runs {
		if r != v && !r.stopped && (r.alloc > 0 || r.gain > 0) {
			r.gated, r.sinceGated = true, 0
		}
	}
	w.victims = append(w.victims, v)
	v.onLimit()
}

// victimsMeasured reports whether the stopped runs have ended and their
// VMs been collected, so the heap no longer holds them; until then it asks
// for a GC.
func (w *MemoryWatchdog) victimsMeasured() bool {
	for _, v := range w.victims {
		if !v.ended {
			return false
		}
	}
	for _, rm := range w.removals {
		if rm.victim {
			w.forceGC() // a no-op while one runs or too soon after the last: retried at the next sample
			return false
		}
	}
	return true
}

// forceGC starts a collection on its own goroutine unless one is running
// or the last ended too recently.
func (w *MemoryWatchdog) forceGC() {
	f := &w.forced
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running || time.Since(f.end) < min(max(minForcedGap, 4*f.duration), maxForcedGap) {
		return
	}
	select {
	case <-w.quit:
		return
	default:
	}
	f.running = true
	start := time.Now()
	w.gcs.Add(1)
	go func() {
		defer w.gcs.Done()
		w.collect()
		end := time.Now()
		f.mu.Lock()
		f.end, f.duration, f.running = end, end.Sub(start), false
		f.mu.Unlock()
	}()
}
