package execution

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// TestMemoryExceeded runs allocation loops (with a 64 MiB limit) beside a
// healthy execution (with the default 128 MiB) that computes, pauses and
// resumes meanwhile: the loops end as memory_exceeded, the healthy one
// completes. (With equal limits, two executions busy in exactly the same
// intervals all along cannot be told apart; see the package doc.) Not
// parallel: the watchdog sees the whole heap, so other tests' allocations
// would be charged to these executions (Go runs non-parallel top-level
// tests alone, before the parallel ones).
func TestMemoryExceeded(t *testing.T) {
	e := newEngine(t, Config{})
	tests := []struct{ name, code string }{
		{"array of strings", `const a = []; while (true) a.push('x'.repeat(1000) + Math.random())`},
		{"doubling string", `let s = 'x'; while (true) s += s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := ParseOptions(json.RawMessage(`{"memoryLimit": 67108864, "timeout": 30000}`))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var healthy *Result
			var healthyErr error
			wg.Go(func() {
				req := request(`let acc = 0; for (let i = 0; i < 100000; i++) acc += i % 3;
					const label = await atp.llm.call("label " + acc);
					const sum = await api.math.add({a: acc, b: 1});
					return {label, sum: sum.sum}`, &fakeTools{})
				req.Owner = "healthy"
				res, err := e.Execute(t.Context(), req)
				if err != nil || res.Status != StatusPaused {
					healthy, healthyErr = res, err
					return
				}
				healthy, healthyErr = e.Resume(t.Context(), ResumeRequest{Owner: "healthy", ExecutionID: res.ExecutionID,
					Answers: []Answer{{Value: json.RawMessage(`"ok"`)}}})
			})
			began := time.Now()
			req := request(tt.code, &fakeTools{})
			req.Options = opts
			res := execute(t, e, req)
			wg.Wait()
			wantFailed(t, res, StatusMemoryExceeded, CodeMemoryLimit, "its limit of 67108864 bytes")
			if res.Stats.MemoryUsed <= 64<<20 {
				t.Errorf("memoryUsed = %d, want past the limit", res.Stats.MemoryUsed)
			}
			t.Logf("stopped after %v, memoryUsed %d MiB", time.Since(began).Round(time.Millisecond), res.Stats.MemoryUsed>>20)
			if healthyErr != nil {
				t.Fatalf("healthy execution: %v", healthyErr)
			}
			wantCompleted(t, healthy, `{"label":"ok","sum":100000}`)
		})
	}
	// The engine keeps serving.
	wantCompleted(t, execute(t, e, request(`return "still here"`, &fakeTools{})), `"still here"`)
}
