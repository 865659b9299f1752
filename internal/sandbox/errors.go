package sandbox

import "fmt"

// ErrorKind is the closed set of ways a run can fail.
type ErrorKind int

const (
	// KindSyntax: the code does not parse as the body of an async function.
	KindSyntax ErrorKind = iota + 1
	// KindCodeTooLarge: the code is longer than Limits.MaxCodeBytes.
	KindCodeTooLarge
	// KindRuntime: the code threw, its promise rejected, it overflowed the
	// call stack, or its promise can never settle.
	KindRuntime
	// KindTimeout: the run passed Limits.Timeout or the caller's deadline.
	KindTimeout
	// KindResultTooLarge: the JSON result is longer than Limits.MaxResultBytes.
	KindResultTooLarge
	// KindCanceled: the caller's context was canceled, or the run was
	// stopped (Live.Stop).
	KindCanceled
	// KindMemory: the memory watchdog charged the run with more heap than
	// Limits.MaxMemory (see MemoryWatchdog).
	KindMemory
	// KindHalted: a host function ended the run by returning Halt(err);
	// errors.Is/As on the *Error reach err.
	KindHalted
)

func (k ErrorKind) String() string {
	switch k {
	case KindSyntax:
		return "syntax"
	case KindCodeTooLarge:
		return "code_too_large"
	case KindRuntime:
		return "runtime"
	case KindTimeout:
		return "timeout"
	case KindResultTooLarge:
		return "result_too_large"
	case KindCanceled:
		return "canceled"
	case KindMemory:
		return "memory"
	case KindHalted:
		return "halted"
	default:
		return "unknown"
	}
}

// Error is how a run fails. Message is safe to show to whoever wrote the
// code: it is JavaScript's own error text or a sentence about a limit, never
// a Go stack or host internals.
type Error struct {
	Kind    ErrorKind
	Message string
	// Class is the built-in error class of what the code threw or rejected
	// with ("TypeError", "ReferenceError", "SyntaxError", "RangeError" or,
	// for any other Error, "Error"), found from its prototype chain, so a
	// subclass of TypeError is a TypeError. It is "SyntaxError" for
	// KindSyntax and empty when the run failed for another reason or the
	// code threw something that is not an Error.
	Class string
	cause error // the context error for KindTimeout/KindCanceled, the halting error for KindHalted
}

func (e *Error) Error() string { return e.Message }

// Unwrap gives the context error behind a timeout or cancellation, or the
// error a host function halted the run with, so errors.Is(err,
// context.Canceled) works for callers.
func (e *Error) Unwrap() error { return e.cause }

// Halt wraps err so that a host function (Func, AsyncFunc, ParkFunc or a
// Park's Settle) returning it ends the run at once: the code cannot catch
// it, and the run fails with a KindHalted *Error whose message is
// err.Error() and which unwraps to err. A host uses it for limits the code
// must not be able to swallow (e.g. a cap on calls of some kind).
func Halt(err error) error { return &haltError{err: err} }

type haltError struct{ err error }

func (h *haltError) Error() string { return h.err.Error() }
func (h *haltError) Unwrap() error { return h.err }

// memoryError is the cause of a run stopped by the memory watchdog.
type memoryError struct{ limit int64 }

func (m *memoryError) Error() string {
	return fmt.Sprintf("the code used more memory than its limit of %d bytes (%.0f MiB)", m.limit, float64(m.limit)/(1<<20))
}
