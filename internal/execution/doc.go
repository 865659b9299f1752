// Package execution is the pausable execution engine of the monday Agent
// Tool Protocol (shared/spec/monday-atp.md §5 and §7), without HTTP: it runs
// model-written JavaScript with the atp.* runtime and the api.<group>.<tool>
// functions, pauses when the code needs the client (an LLM call, an
// approval, an embedding, a client tool), and resumes the same VM with the
// client's answers.
//
// It imports internal/sandbox (the goja VM, its limits and its event loop)
// and internal/toolkit (tool annotations, tool errors, the domain error
// type). It must not import net/http, internal/api or internal/store: the
// HTTP layer translates requests into Execute and Resume calls and wires
// server tools in through the ToolCaller interface.
//
// # Design: a live VM, batched pauses, no replay
//
// Each execution runs in one goja VM on its own goroutine with an event
// loop (design A of spec §5.6). A call that needs the client parks a
// promise and returns it to the code; when the loop has no runnable work
// left (no promise job, no server tool in flight, no timer due) and calls
// are parked, the engine answers `paused` with `needsCallback` (one call)
// or `needsCallbacks` (several, with unique ids). Every Promise.all — over
// `.map(async …)` too — is thus one batch, without a compiler. Resume
// settles the promises and the same VM goes on: nothing is re-run, server
// tools run exactly once, and a pending call the code ignored or caught
// cannot corrupt anything (it is simply dropped when the code finishes).
//
// Server tools (api.<group>.<tool>) run on their own goroutine through the
// ToolCaller; the code awaits them as promises and they never pause.
// Client tools (declared at init, namespace "client" by default, merged
// into a server group of the same name) pause with a tool callback. Tool
// metadata can force an approval callback first (§7).
//
// # Journal
//
// Everything an execution receives from outside its code goes through one
// ordered Journal: the seed of Math.random (a ChaCha8 stream, which also
// draws embedding ids), every clock reading of Date.now() and new Date(),
// every server tool result, timer firing and cache answer in the order the
// code saw them, and every client answer. Replaying the code against its
// journal reproduces the execution, which is what a later version needs to
// restore executions on another instance; the journal is in memory for now.
//
// # Limits
//
//   - Time: the timeout option (default 30 s, clamped to 300 s) bounds the
//     time an execution is active — running JavaScript or waiting on server
//     tools and timers. Time paused waiting for the client does not count,
//     so a human may take an hour to approve; timers are shifted by pauses.
//   - Pauses: a paused execution is dropped after PauseTTL (default 1 h);
//     paused executions are capped per rate key and in total, and running
//     ones per rate key (status rate_limited past a cap).
//   - LLM calls: llmCalls/maxLLMCalls (default 10, at most 1000); the call
//     past the cap ends the execution, uncatchably, as llm_calls_exceeded
//     ("Exceeded max LLM calls: N").
//   - Code (1,000,000 bytes) and result (5 MiB of JSON) sizes; a result
//     holding a function fails ("could not be cloned").
//   - Memory: memoryLimit/memory/maxMemory bytes (default 128 MiB, clamped
//     to 1 MiB..512 MiB), status memory_exceeded.
//
// # Memory
//
// goja allocates on the Go heap and has no memory limit, so the engine runs
// one watchdog (sandbox.MemoryWatchdog) that reads the Go runtime's counters
// (runtime/metrics) every 5 ms while any execution is running JavaScript:
//
//   - The bytes allocated in each interval are split between the executions
//     that ran in it (at most GOMAXPROCS at once; an execution paused for the
//     client or waiting on a server tool is not running). When a GC
//     completes, the change of the live heap since the previous GC is shared
//     out in proportion to those allocations, capped by what each allocated.
//     An execution's charge thus grows with what it keeps, not with the
//     garbage it makes; stats.memoryUsed is its highest charge.
//   - An execution charged past its limit is interrupted (vm.Interrupt) with
//     a memory error: status memory_exceeded, code MEMORY_LIMIT_EXCEEDED.
//     Its VM is dropped and the GC reclaims it; the server and the other
//     executions go on. An execution that has allocated more since the last
//     GC than its limit leaves room for gets a forced GC (rate-limited) to be
//     measured at once, so an allocation loop is stopped within tens of
//     milliseconds of passing its limit, not when the heap next doubles.
//   - When several are over their limits, the one most over goes first,
//     weighted by how much of its allocation was measured while it ran
//     alone. Executions that shared its intervals may carry part of its
//     blame: they are judged again only once its VM has been collected (a
//     cleanup on the VM says so), and the shrink of the heap is credited to
//     them first.
//   - Config.HeapLimit is a process-wide guard: past it, the execution
//     charged with the most is stopped. The engine never sets the Go memory
//     limit; cmd may set GOMEMLIMIT (debug.SetMemoryLimit) a little above
//     HeapLimit so that the GC works harder before the guard has to act.
//
// Limits of that mechanism: the charge is an estimate. Executions running in
// the same interval share its allocations equally, so a CPU-bound execution
// beside a runaway one is charged part of the runaway's growth until the
// runaway is stopped; two executions busy in exactly the same intervals
// from start to limit cannot be told apart, and with equal limits either may
// be stopped first (the survivor is then judged by what it allocates alone).
// A single native step cannot be interrupted: one huge string concatenation
// or a built-in walking a huge array completes before the interrupt lands,
// so a doubling string overshoots its limit by up to its last doubling. The
// sandbox therefore refuses the cheapest such steps outright:
// String.prototype.repeat/padStart/padEnd beyond 16 M characters,
// Array.prototype.fill/join and Array.from beyond 4 M elements, and
// ArrayBuffer or typed-array allocations larger than the memory limit (one
// of those past the machine's memory would abort the process).
//
// # Errors
//
// A failure of the code is never a Go error: Execute and Resume return a
// *Result whose status says what happened (spec §5.8, classified from typed
// errors). Go errors are *toolkit.Error of kinds NotFound (no such paused
// execution: unknown, finished, expired), Forbidden (another client's),
// Invalid (answers that do not fit; an anonymous execution that pauses),
// Unavailable (after Close) and Internal.
package execution
