// Package sandbox runs untrusted JavaScript (js tools, and later monday
// execute code) in a goja VM with limits and host capabilities injected as
// plain Go functions.
//
// It knows no HTTP, SQL or OAuth, and must import only goja and the standard
// library: everything the code may reach is handed in through Host, so what a
// script can do is decided by the caller, in one place.
//
// # Model
//
// One run owns one fresh goja.Runtime, used by one goroutine (the caller's).
// The code is the body of `async function (input, ctx) { … }`, so top-level
// await and return work; the returned promise is driven to completion by a
// small event loop:
//
//   - microtasks (promise reactions) are drained by goja itself each time
//     control returns from JavaScript to Go;
//   - macrotasks are timers (setTimeout/setInterval) and completions of
//     AsyncFunc host calls, which run on their own goroutines and post their
//     result back to the loop through a channel, so the VM is only ever
//     touched by the loop goroutine.
//
// When the promise is still pending and nothing can settle it (no timer, no
// host call in flight), the run fails at once rather than hanging until the
// timeout. This loop is where the monday runtime will park an execution: an
// AsyncFunc that waits for the client keeps the loop waiting (design A of
// the monday spec, §5.6), and the same VM resumes when the answer is posted.
// Before that lands, Limits.Timeout has to become "time spent running"
// rather than wall-clock time, or a parked execution would time out while a
// human decides.
//
// # Limits and isolation
//
//   - Time: the run's context (deadline = Limits.Timeout) interrupts the VM
//     through context.AfterFunc and vm.Interrupt. Built-ins implemented in Go
//     (e.g. Array.prototype.join on a huge array) are not interruptible
//     mid-call; the interrupt lands when they return.
//   - Code and result size are capped (Limits.MaxCodeBytes,
//     Limits.MaxResultBytes). The call stack is capped (a RangeError).
//   - Memory: goja has no heap limit. For now the sandbox only caps the
//     cheapest ways to allocate a lot at once (String.prototype.repeat,
//     padStart, padEnd, and the number of pending timers). A later issue adds
//     memory accounting (a watchdog sampling the heap per run, or running
//     executions in a child process under an address-space rlimit); until
//     then the wall-clock timeout is what bounds a runaway allocation.
//   - No host access: goja ships no require, process, fs, network or
//     console; the goja-specific GoError constructor is removed. eval and
//     Function work but only ever see the sandbox's own global. Source maps
//     are disabled for the code and for eval: goja would otherwise read the
//     path of a `//# sourceMappingURL=` comment from disk. Every run
//     gets a fresh VM, so one run cannot leave traps (patched prototypes)
//     for the next.
//
// Errors are *Error with a closed set of kinds; messages are JavaScript's own
// ("TypeError: x is not a function"), never a Go stack.
package sandbox
