package toolkit

import (
	"errors"
	"fmt"
)

// Kind is the closed set of error categories. Each surface maps a Kind to its
// own status code in one table (see internal/api).
type Kind int

const (
	KindInternal Kind = iota
	KindInvalid
	KindNotFound
	KindConflict
	KindUnauthenticated
	KindForbidden
	KindTimeout
	KindTooLarge
	KindRateLimited
	KindUnavailable
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindUnauthenticated:
		return "unauthenticated"
	case KindForbidden:
		return "forbidden"
	case KindTimeout:
		return "timeout"
	case KindTooLarge:
		return "too_large"
	case KindRateLimited:
		return "rate_limited"
	case KindUnavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// Error is the one error type of the domain. Message is safe to show to a
// client; Err is the cause, for logs only.
type Error struct {
	Kind    Kind
	Code    string // machine code, e.g. "invalid_toolkit"; defaults to Kind.String()
	Message string // shown to clients; never holds a secret or a driver error text
	Err     error  // the cause, logged, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of kind with a client-safe message.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error of kind whose cause is err; the cause is not shown to clients.
func Wrap(err error, kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: err}
}

// KindOf reports the Kind of err: the kind of the first *Error in its chain,
// KindInternal for anything else.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsNotFound reports whether err is a KindNotFound error.
func IsNotFound(err error) bool { return err != nil && KindOf(err) == KindNotFound }

// ToolError is a failure of a tool call that the caller (often a model) should
// read, as opposed to a protocol fault. Surfaces carry it in their success shape.
type ToolError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *ToolError) Error() string { return e.Message }

// Tool error codes.
const (
	ToolErrInvalidArguments = "invalid_arguments"
	ToolErrExecution        = "execution_error"
	ToolErrTimeout          = "timeout"
	ToolErrResultTooLarge   = "result_too_large"
	ToolErrUpstream         = "upstream_error"
	ToolErrBlockedAddress   = "blocked_address"
	ToolErrNotConnected     = "not_connected"
	ToolErrNeedsReauth      = "needs_reauth"
	ToolErrUnavailable      = "unavailable"
)

// NewToolError returns a *ToolError.
func NewToolError(code, format string, args ...any) *ToolError {
	return &ToolError{Code: code, Message: fmt.Sprintf(format, args...)}
}
