package sandbox

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
	// KindCanceled: the caller's context was canceled.
	KindCanceled
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
	cause   error // the caller's context error for KindTimeout/KindCanceled
}

func (e *Error) Error() string { return e.Message }

// Unwrap gives the context error behind a timeout or cancellation, so
// errors.Is(err, context.Canceled) works for callers.
func (e *Error) Unwrap() error { return e.cause }
