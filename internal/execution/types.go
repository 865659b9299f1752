package execution

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Status is the ExecutionStatus of the monday protocol (spec §5.1).
type Status string

// Statuses the engine produces.
const (
	StatusCompleted        Status = "completed"
	StatusFailed           Status = "failed"
	StatusTimeout          Status = "timeout"
	StatusCancelled        Status = "cancelled"
	StatusPaused           Status = "paused"
	StatusMemoryExceeded   Status = "memory_exceeded"
	StatusLLMCallsExceeded Status = "llm_calls_exceeded"
	StatusValidationFailed Status = "validation_failed"
	StatusRateLimited      Status = "rate_limited"
	StatusParseError       Status = "parse_error"
)

// Error codes the engine produces (ExecutionErrorCode, plus
// SERVICE_NOT_PROVIDED).
const (
	CodeExecutionFailed    = "EXECUTION_FAILED"
	CodeTimeout            = "TIMEOUT_ERROR"
	CodeMemoryLimit        = "MEMORY_LIMIT_EXCEEDED"
	CodeLLMCallLimit       = "LLM_CALL_LIMIT_EXCEEDED"
	CodeValidationFailed   = "VALIDATION_FAILED"
	CodeSyntaxError        = "SYNTAX_ERROR"
	CodeTypeError          = "TYPE_ERROR"
	CodeReferenceError     = "REFERENCE_ERROR"
	CodeConcurrentLimit    = "CONCURRENT_LIMIT_EXCEEDED"
	CodeServiceNotProvided = "SERVICE_NOT_PROVIDED"
)

// Callback types (spec §5.2).
const (
	callbackTypeLLM       = "llm"
	callbackTypeApproval  = "approval"
	callbackTypeEmbedding = "embedding"
	callbackTypeTool      = "tool"
)

// serviceNotProvidedMatch is what the client's message says when it lacks
// the provider a callback needs (spec §5.5), matched case-insensitively.
const serviceNotProvidedMatch = "service not provided"

// Result is an ExecutionResult (spec §5.1); its JSON is the wire shape.
// Every result has ExecutionID, Status and Stats; a paused one has
// NeedsCallback (one call pending) or NeedsCallbacks (several, with ids).
type Result struct {
	ExecutionID    string          `json:"executionId"`
	Status         Status          `json:"status"`
	Result         json.RawMessage `json:"result,omitempty"`
	Error          *ExecError      `json:"error,omitempty"`
	Stats          Stats           `json:"stats"`
	NeedsCallback  *Callback       `json:"needsCallback,omitempty"`
	NeedsCallbacks []Callback      `json:"needsCallbacks,omitempty"`
}

// ExecError is why an execution did not complete. Message is written for
// the code's author (a model): JavaScript's own error text or a sentence
// about a limit, never a Go error or host internals.
type ExecError struct {
	Message   string `json:"message"`
	Code      string `json:"code,omitempty"`
	Retryable bool   `json:"retryable"`
}

// Stats are counted over the whole execution, across pauses.
type Stats struct {
	// Duration is the time the execution was active (running or waiting
	// on server tools), in ms; time paused for the client is not counted.
	Duration int64 `json:"duration"`
	// MemoryUsed is the most heap the memory watchdog charged the
	// execution with, in bytes (an estimate; 0 when it never retained
	// anything measurable).
	MemoryUsed int64 `json:"memoryUsed"`
	// LLMCallsCount counts atp.llm.* calls.
	LLMCallsCount int `json:"llmCallsCount"`
	// ApprovalCallsCount counts explicit atp.approval.request calls, not
	// the approvals that tool metadata forces.
	ApprovalCallsCount int `json:"approvalCallsCount"`
}

// Callback is one call that waits for the client: in NeedsCallback (no ID)
// or NeedsCallbacks (with a unique ID). Payload is always an object, shaped
// as in spec §5.2 and carrying its sequenceNumber.
type Callback struct {
	ID        string          `json:"id,omitempty"`
	Type      string          `json:"type"`
	Operation string          `json:"operation"`
	Payload   json.RawMessage `json:"payload"`
}

// Answer is the client's answer to a callback: for a batch resume
// ({results:[{id,result}]}) ID names the callback (empty: matched by
// position); for a single resume ({result}) ID is empty.
type Answer struct {
	ID    string
	Value json.RawMessage
}

// ResumeRequest is a resume of a paused execution.
type ResumeRequest struct {
	// Owner is the calling client's id; it must be the id the execution
	// was started with.
	Owner       string
	ExecutionID string
	// Answers are the results: one for a single resume ({result}), one per
	// callback for a batch ({results}).
	Answers []Answer
	// Batch says the answers came as {results:[…]}: they are matched to
	// the pending callbacks by id, falling back to position for entries
	// without one. A single answer goes to the first pending callback.
	Batch bool
	// OnProgress and OnConsole, if set, replace the sinks given to Execute
	// for the rest of the execution (a resumed segment streams to its own
	// response).
	OnProgress func(message string, fraction float64)
	OnConsole  func(level, message string)
}

// Request is one execution to start.
type Request struct {
	// Owner is the client id of the session; it alone may resume the
	// execution. Empty is an anonymous caller, whose execution cannot
	// pause (Execute fails with KindInvalid if it tries).
	Owner string
	// RateKey groups executions for the per-key caps (running and paused
	// executions), e.g. the API key id; empty uses Owner.
	RateKey string
	Code    string
	Options Options
	// Tools runs the server tools of Groups. It is used for the whole
	// execution, across resumes, and must be safe for concurrent use.
	Tools       ToolCaller
	Groups      []Group
	ClientTools []ClientTool
	// OnProgress receives atp.progress.report calls (bounded per
	// execution); OnConsole console.* output, one line per call (bounded by
	// the sandbox). Both run on the execution's goroutine and must be quick.
	// Nil OnConsole logs the output at debug level.
	OnProgress func(message string, fraction float64)
	OnConsole  func(level, message string)
}

// ToolCaller runs one server tool for an execution (the HTTP layer
// implements it with toolkit.Service.Run). A *toolkit.ToolError is thrown in
// the code as an Error with its message; any other error is logged and
// thrown as a generic one. It is called on its own goroutine, concurrently
// for concurrent calls, with a context that ends with the execution.
type ToolCaller interface {
	CallTool(ctx context.Context, group, tool string, input json.RawMessage) (json.RawMessage, error)
}

// ToolCallerFunc adapts a function to ToolCaller.
type ToolCallerFunc func(ctx context.Context, group, tool string, input json.RawMessage) (json.RawMessage, error)

// CallTool calls f.
func (f ToolCallerFunc) CallTool(ctx context.Context, group, tool string, input json.RawMessage) (json.RawMessage, error) {
	return f(ctx, group, tool, input)
}

// Group is a server API group: api.<name>.<tool>. A name with "/" nests
// (github/readOnly → api.github.readOnly).
type Group struct {
	Name  string
	Tools []ServerTool
}

// ServerTool is what the engine needs of a server tool: its name, and its
// annotations, which may force an approval before each call (spec §7).
type ServerTool struct {
	Name        string
	Annotations *toolkit.Annotations
}

// GroupOf returns the API group of a toolkit (the group name is its id).
func GroupOf(tk *toolkit.Toolkit) Group {
	g := Group{Name: tk.ID, Tools: make([]ServerTool, len(tk.Tools))}
	for i, t := range tk.Tools {
		g.Tools[i] = ServerTool{Name: t.Name, Annotations: t.Annotations}
	}
	return g
}

// ClientTool is a tool the client declared at init and runs itself:
// calling it pauses the execution with a tool callback.
type ClientTool struct {
	Name        string          `json:"name"`
	Namespace   string          `json:"namespace,omitempty"` // default "client"
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
	// Metadata may force an approval before each call: requiresApproval,
	// operationType "destructive" or sensitivityLevel "sensitive".
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

func (t ClientTool) namespace() string {
	if t.Namespace == "" {
		return "client"
	}
	return t.Namespace
}

// toolMetadata is the part of tool metadata that decides approvals.
type toolMetadata struct {
	OperationType    string `json:"operationType,omitempty"`
	SensitivityLevel string `json:"sensitivityLevel,omitempty"`
	RequiresApproval bool   `json:"requiresApproval,omitempty"`
}

func (m toolMetadata) needsApproval() bool {
	return m.RequiresApproval || m.OperationType == "destructive" || m.SensitivityLevel == "sensitive"
}

// describe is the kind of operation named in the approval message.
func (m toolMetadata) describe() string {
	switch {
	case m.OperationType == "destructive":
		return "destructive operation"
	case m.SensitivityLevel == "sensitive":
		return "sensitive operation"
	default:
		return "operation"
	}
}

func metadataOf(a *toolkit.Annotations) toolMetadata {
	if a == nil {
		return toolMetadata{}
	}
	return toolMetadata{OperationType: a.OperationType, SensitivityLevel: a.Sensitivity, RequiresApproval: a.RequiresApproval}
}

// isServiceNotProvided reports whether an answer is the client's
// {__error:true, message:"… service not provided …"}.
func isServiceNotProvided(v json.RawMessage) (string, bool) {
	msg, ok := clientError(v)
	return msg, ok && strings.Contains(strings.ToLower(msg), serviceNotProvidedMatch)
}

// clientError reports whether an answer is the client's {__error: true,
// message} (spec §5.3) and returns the message.
func clientError(v json.RawMessage) (string, bool) {
	b := trimSpace(v)
	if len(b) == 0 || b[0] != '{' {
		return "", false
	}
	var e struct {
		Error   bool            `json:"__error"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(b, &e) != nil || !e.Error {
		return "", false
	}
	var msg string
	if json.Unmarshal(e.Message, &msg) != nil {
		msg = string(e.Message)
	}
	return msg, true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
