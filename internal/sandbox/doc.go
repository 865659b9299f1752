// Package sandbox runs untrusted JavaScript (js tools, and monday execute
// code through internal/execution) in a goja VM with limits and host capabilities injected as
// plain Go functions.
//
// It knows no HTTP, SQL or OAuth, and must import only goja and the standard
// library: everything the code may reach is handed in through Host, so what a
// script can do is decided by the caller, in one place.
//
// # Model
//
// One run owns one fresh goja.Runtime, used by one goroutine at a time. The
// code is the body of `async function (input, ctx) { … }` (Compile) or of
// `async function () { … }` (CompileCode, for code that gets no input and
// must be free to name its own variables input and ctx), so top-level await
// and return work. (A body that cannot await, nor observe the function it
// runs in, is run as a plain function with the same outcome: an async call
// materialises goja's promise machinery, which is most of the cost of a
// small run. See Program.) The returned promise is driven to completion by
// a small event loop:
//
//   - microtasks (promise reactions) are drained by goja itself each time
//     control returns from JavaScript to Go;
//   - macrotasks are timers (setTimeout/setInterval) and completions of
//     AsyncFunc host calls, which run on their own goroutines and post their
//     result back to the loop through a channel, so the VM is only ever
//     touched by the loop goroutine.
//
// Program.Run runs on the caller's goroutine to the end. Program.Start runs
// a live run on its own goroutine that can pause for its caller (design A
// of the monday spec, §5.6): a ParkFunc call parks a promise; when nothing
// else can make progress (no completion queued, no host call in flight, no
// timer due) and calls are parked, the run pauses and reports all of them
// at once, so a Promise.all of parked calls is one batch; Live.Resume
// settles them and the same VM goes on. A pause stops the clock of the time
// limit and shifts pending timers, so Limits.Timeout counts active time
// only. When the promise is pending and nothing can settle it, the run
// fails at once rather than hanging until the timeout.
//
// A Prelude (trusted JavaScript, given host functions that stay in its
// closure) builds globals with a runtime API on top of plain host
// functions. Host.Now and Host.Random replace the clock of Date and the
// source of Math.random, and Host.OnEvent reports every macrotask in order:
// with the answers to parked calls, that is everything a run depends on, so
// a host that records them can replay a run.
//
// # Cost: pay for what the code touches
//
// Setting a VM up is most of the cost of a small run, so little is done
// before the code runs: goja materialises each built-in only when
// something touches it, and the sandbox touches few. The console, the
// prelude's globals and the host values marked Lazy are built on first use
// (an accessor that turns into the data property it stands for, as if it
// had been there from the start); JSON crosses between host and code
// through goja's own implementation called from Go, not through the
// code's JSON; the few constructors the host throws or tells errors apart
// by are captured before the code runs, or raised by the engine itself.
// What the code may have replaced by the time something is built lazily
// cannot affect it: the sandbox builds from Go, and a prelude uses only
// the helpers it is given (see Prelude).
//
// # Limits and isolation
//
//   - Time: Limits.Timeout interrupts the VM (vm.Interrupt, from a timer or
//     context.AfterFunc). Built-ins implemented in Go (e.g.
//     Array.prototype.join on a huge array) are not interruptible mid-call;
//     the interrupt lands when they return.
//   - Code and result size are capped (Limits.MaxCodeBytes,
//     Limits.MaxResultBytes). The call stack is capped (a RangeError).
//   - Memory: goja has no heap limit. A MemoryWatchdog (Limits.Memory and
//     Limits.MaxMemory) charges Go heap growth to the runs that cause it and
//     stops a run past its limit (KindMemory); NewMemoryWatchdog documents
//     how and how precisely. The cheapest ways to allocate a lot in one
//     uninterruptible step are capped directly: String.prototype.repeat,
//     padStart and padEnd (16 M characters) and the number of pending
//     timers always; for runs with a memory limit also Array.prototype.fill
//     and join and Array.from of an array or an array-like (4 M elements),
//     and ArrayBuffer and typed array allocations larger than the limit,
//     from a length, an array-like, an iterable or another typed array (one
//     such allocation past the machine's memory would abort the whole
//     process). Those materialise built-ins in every VM (the twelve buffer
//     constructors alone cost more than the rest of a small run, and goja
//     materialises a global as soon as anything is defined over it, so
//     they cannot be wrapped lazily), so runs without a memory limit (js
//     tools, written by admins) do without them.
//   - No host access: goja ships no require, process, fs, network or
//     console. Its GoError constructor is left: a plain Error subclass
//     whose instances carry Go errors only for Go values the sandbox never
//     hands to the code (see setup). eval and Function work but only ever
//     see the sandbox's own global. Source maps are disabled for the code
//     and for eval: goja would otherwise read the path of a
//     `//# sourceMappingURL=` comment from disk. Every run gets a fresh
//     VM, so one run cannot leave traps (patched prototypes) for the next.
//
// Errors are *Error with a closed set of kinds and the built-in class of
// what the code threw; messages are JavaScript's own ("TypeError: x is not
// a function"), never a Go stack.
package sandbox
