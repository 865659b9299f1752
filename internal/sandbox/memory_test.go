package sandbox

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The memory tests are not parallel: a watchdog sees the whole process's
// heap, so allocation-heavy tests running beside them would be charged to
// their runs. Go runs non-parallel top-level tests before the parallel ones,
// one at a time.

func TestMemoryWatchdogStopsRunawayRuns(t *testing.T) {
	w := NewMemoryWatchdog(MemoryWatchdogOptions{})
	t.Cleanup(w.Close)
	const limit = 64 << 20
	tests := []struct{ name, body string }{
		{"array of strings", `const a = []; while (true) a.push("x".repeat(1000) + Math.random())`},
		{"doubling string", `let s = "x"; while (true) s += s`},
		{"object graph", `let o = {}; for (let i = 0; ; i++) o = {next: o, pad: [i, i + 1, i + 2, String(i)]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			var healthy Step
			began := time.Now()
			l := start(t, tt.body, Limits{Timeout: 30 * time.Second, MaxMemory: limit, Memory: w}, Host{})
			// A normal run beside the runaway one, with twice its limit (as
			// a default beside a lowered limit), must be unaffected. (Runs
			// that compute in exactly the same intervals from start to limit
			// cannot be told apart when their limits are equal; see
			// NewMemoryWatchdog and TestMemoryAccounting.)
			h := start(t, `let sum = 0;
				for (let round = 0; round < 10; round++) {
					for (let i = 0; i < 20000; i++) sum += i % 7;
					await new Promise(r => setTimeout(r, 2));
				}
				return sum`,
				Limits{Timeout: 30 * time.Second, MaxMemory: 2 * limit, Memory: w}, Host{})
			var healthyErr error
			wg.Go(func() { healthy, healthyErr = h.Next(t.Context()) })
			s := next(t, l)
			wg.Wait()
			var serr *Error
			if !errors.As(s.Err, &serr) || serr.Kind != KindMemory {
				t.Fatalf("runaway run ended with (%s, %v), want KindMemory", s.Result, s.Err)
			}
			if s.Memory <= limit {
				t.Errorf("charged %d bytes at the end, want more than the limit %d (%s)", s.Memory, limit, serr.Message)
			}
			t.Logf("stopped after %v, charged %d MiB", time.Since(began).Round(time.Millisecond), s.Memory>>20)
			if healthyErr != nil || healthy.Err != nil || string(healthy.Result) != "599970" {
				t.Errorf("healthy run ended with (%s, %v, %v)", healthy.Result, healthy.Err, healthyErr)
			}
		})
	}
}

func TestMemoryWatchdogSparesGarbage(t *testing.T) {
	w := NewMemoryWatchdog(MemoryWatchdogOptions{})
	t.Cleanup(w.Close)
	// Allocates far more than its limit in total, but keeps almost nothing.
	l := start(t, `const end = Date.now() + 300; let n = 0;
		while (Date.now() < end) { n += ("y".repeat(4096) + n).length % 3 }
		return n > 0`, Limits{Timeout: 30 * time.Second, MaxMemory: 16 << 20, Memory: w}, Host{})
	if s := next(t, l); s.Err != nil || string(s.Result) != "true" {
		t.Fatalf("end = (%s, %v), want the run to complete", s.Result, s.Err)
	}
}

func TestMemoryWatchdogRun(t *testing.T) {
	w := NewMemoryWatchdog(MemoryWatchdogOptions{})
	t.Cleanup(w.Close)
	_, err := run(t, `const a = []; while (true) a.push(new Array(1000).fill(1))`, "",
		Limits{Timeout: 30 * time.Second, MaxMemory: 32 << 20, Memory: w}, Host{})
	var serr *Error
	if !errors.As(err, &serr) || serr.Kind != KindMemory {
		t.Fatalf("err = %v, want KindMemory", err)
	}
}

func TestMemoryWatchdogHeapLimit(t *testing.T) {
	// A process-wide guard far below the per-run limit stops the run that
	// holds the most.
	w := NewMemoryWatchdog(MemoryWatchdogOptions{HeapLimit: 1})
	t.Cleanup(w.Close)
	l := start(t, `const a = []; while (true) a.push("z".repeat(1000) + a.length)`,
		Limits{Timeout: 30 * time.Second, MaxMemory: 1 << 40, Memory: w}, Host{})
	var serr *Error
	if s := next(t, l); !errors.As(s.Err, &serr) || serr.Kind != KindMemory {
		t.Fatalf("end = (%s, %v), want KindMemory", s.Result, s.Err)
	}
}

// fakeHeap drives the accounting deterministically.
type fakeHeap struct {
	h      heapSample
	forced atomic.Int32 // collect runs on the watchdog's GC goroutine
}

func (f *fakeHeap) read() heapSample { return f.h }
func (f *fakeHeap) collect()         { f.forced.Add(1) }

// alloc records n bytes allocated; gc completes a cycle that finds live
// bytes live.
func (f *fakeHeap) alloc(n uint64) { f.h.allocs += n; f.h.objects += n }
func (f *fakeHeap) gc(live uint64) {
	f.h.cycles++
	f.h.live = live
	f.h.objects = live
	f.h.goal = 2*live + 4<<20
}

type fakeRun struct {
	*memRun
	stopped *bool
}

func newAccounting(t *testing.T, opts MemoryWatchdogOptions) (*MemoryWatchdog, *fakeHeap, func(limit int64) fakeRun) {
	t.Helper()
	f := &fakeHeap{h: heapSample{live: 10 << 20, goal: 24 << 20}}
	w := newMemoryWatchdog(opts, f.read, f.collect)
	add := func(limit int64) fakeRun {
		stopped := new(bool)
		return fakeRun{w.register(limit, func() { *stopped = true }), stopped}
	}
	return w, f, add
}

// tick takes one sample as the watchdog goroutine does, and waits for a
// collection it forced.
func tick(w *MemoryWatchdog) {
	w.mu.Lock()
	w.sample(true)
	w.mu.Unlock()
	w.gcs.Wait()
}

func TestMemoryAccounting(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	t.Run("what a run keeps is charged, garbage is not", func(t *testing.T) {
		t.Parallel()
		w, f, add := newAccounting(t, MemoryWatchdogOptions{})
		r := add(100 * mib)
		r.setActive(true)
		f.alloc(500 * mib) // allocated a lot …
		tick(w)
		if n := f.forced.Load(); n != 1 {
			t.Errorf("forced GCs = %d: allocations past the limit must be measured at once", n)
		}
		f.gc(20 * mib) // … and kept 10 MiB of it
		tick(w)
		if c := r.charge.Load(); c != 10*mib || *r.stopped {
			t.Fatalf("charge %d MiB, stopped %v", c/mib, *r.stopped)
		}
		f.alloc(200 * mib)
		tick(w)
		f.gc(120 * mib) // kept 100 MiB more: past the limit
		tick(w)
		if !*r.stopped || r.peak() != 110*mib {
			t.Fatalf("stopped %v, peak %d MiB", *r.stopped, r.peak()/mib)
		}
	})
	t.Run("idle runs and the server are not charged", func(t *testing.T) {
		t.Parallel()
		w, f, add := newAccounting(t, MemoryWatchdogOptions{})
		busy, idle := add(100*mib), add(100*mib)
		f.alloc(50 * mib) // the server, before any run is active
		w.mu.Lock()
		w.sample(false)
		w.mu.Unlock()
		busy.setActive(true)
		f.alloc(50 * mib)
		tick(w)
		busy.setActive(false)
		tick(w) // active during part of the interval: still charged for it
		f.alloc(50 * mib)
		tick(w)        // nobody active: the server's
		f.gc(40 * mib) // 30 MiB kept, by a run that did a third of the allocating
		tick(w)
		if c := busy.charge.Load(); c != 10*mib || idle.charge.Load() != 0 {
			t.Errorf("busy %d MiB, idle %d MiB", c/mib, idle.charge.Load()/mib)
		}
	})
	t.Run("shared blame: the run seen alone goes first, the blame flows back", func(t *testing.T) {
		t.Parallel()
		w, f, add := newAccounting(t, MemoryWatchdogOptions{})
		runaway, busy := add(100*mib), add(100*mib)
		runaway.setActive(true)
		f.alloc(20 * mib) // alone for one interval
		tick(w)
		busy.setActive(true)
		f.alloc(220 * mib) // then both, sharing every interval
		tick(w)
		f.gc(10*mib + 240*mib) // everything kept (by the runaway, in truth)
		tick(w)
		if !*runaway.stopped || *busy.stopped || !busy.gated {
			t.Fatalf("runaway stopped %v, busy stopped %v gated %v", *runaway.stopped, *busy.stopped, busy.gated)
		}
		busy.setActive(false)
		runaway.unregister() // its VM is dropped …
		tick(w)
		f.gc(12 * mib) // … the heap shrinks by all it held …
		tick(w)
		if !busy.gated {
			t.Fatal("busy was ungated before the runaway's VM was collected")
		}
		runaway.gone.Store(true) // … and its VM's cleanup runs
		f.gc(12 * mib)
		tick(w)
		if c := busy.charge.Load(); c > 2*mib || *busy.stopped || busy.gated {
			t.Errorf("busy: charge %d MiB, stopped %v, gated %v; want the runaway's blame gone", c/mib, *busy.stopped, busy.gated)
		}
	})
	t.Run("a gated run that allocates alone past its limit is judged", func(t *testing.T) {
		t.Parallel()
		w, f, add := newAccounting(t, MemoryWatchdogOptions{})
		a, b := add(100*mib), add(100*mib)
		a.setActive(true)
		b.setActive(true)
		f.alloc(300 * mib)
		tick(w)
		f.gc(10*mib + 300*mib)
		tick(w) // indistinguishable: one is stopped, the other gated
		first, second := a, b
		if *b.stopped {
			first, second = b, a
		}
		if !*first.stopped || *second.stopped || !second.gated {
			t.Fatalf("a stopped %v gated %v; b stopped %v gated %v", *a.stopped, a.gated, *b.stopped, b.gated)
		}
		first.setActive(false) // stuck ending, while the survivor goes on alone
		tick(w)
		f.alloc(150 * mib)
		tick(w)
		if !*second.stopped {
			t.Errorf("the survivor allocated %d MiB alone and was not stopped", 150)
		}
	})
	t.Run("what a run allocated before it ended stays its own", func(t *testing.T) {
		t.Parallel()
		w, f, add := newAccounting(t, MemoryWatchdogOptions{})
		ending, staying := add(100*mib), add(100*mib)
		ending.setActive(true)
		staying.setActive(true)
		tick(w)
		f.alloc(200 * mib) // the ending run's last allocation, before any sample
		ending.unregister()
		f.alloc(mib)
		tick(w)
		if staying.solo != mib || staying.alloc != 100*mib+mib {
			t.Errorf("staying run: solo %d MiB, alloc %d MiB; want the ended run's allocation shared, not left to it",
				staying.solo/mib, staying.alloc/mib)
		}
	})
	t.Run("heap limit", func(t *testing.T) {
		t.Parallel()
		w, f, add := newAccounting(t, MemoryWatchdogOptions{HeapLimit: 100 * mib})
		small, big := add(1<<40), add(1<<40)
		small.setActive(true)
		f.alloc(20 * mib)
		tick(w)
		small.setActive(false)
		tick(w) // small was active at the start of this interval
		big.setActive(true)
		f.alloc(90 * mib)
		tick(w)
		f.gc(10*mib + 110*mib)
		tick(w)
		if !*big.stopped || *small.stopped {
			t.Errorf("big stopped %v, small stopped %v", *big.stopped, *small.stopped)
		}
	})
}

func TestMemoryAccountingIsOptional(t *testing.T) {
	t.Parallel()
	var r *memRun
	r.setActive(true) // nil-safe: runs without a watchdog
	if r.peak() != 0 {
		t.Error("nil run has a peak")
	}
	w := NewMemoryWatchdog(MemoryWatchdogOptions{Interval: time.Millisecond})
	w.Close()
	w.Close() // idempotent
}
