package toolkit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/atp-server/atp-server/internal/sandbox"
)

// maxToolTimeout caps any tool's run time, whatever the tool or the server
// default asks for.
const maxToolTimeout = maxTimeoutMS * time.Millisecond

// Bounds of the js runner's compiled-program cache: past either, the cache
// is emptied (a miss costs one compile, well under a millisecond for
// ordinary tools).
const (
	maxCachedPrograms    = 512
	maxCachedProgramCode = 32 << 20
)

// JSOptions configure the runner of js tools. Zero fields take the
// sandbox defaults (30 s, 1 MiB).
type JSOptions struct {
	// Timeout is the run time of a tool without its own timeout_ms.
	Timeout time.Duration
	// MaxResultBytes caps the JSON a tool may return (result_too_large).
	MaxResultBytes int
	// Logger, if set, receives the tools' console output at debug level.
	Logger *slog.Logger
}

// NewJSRunner returns the Runner of js tools: Executor.Code runs in the
// sandbox as the body of `async function (input, ctx)`, with input = the
// call's arguments and ctx = {toolkit, tool, external_user_id}. Failures of
// the code are *ToolError (execution_error, timeout, result_too_large); a
// canceled ctx comes back as ctx.Err().
func NewJSRunner(o JSOptions) Runner {
	return &jsRunner{opts: o, programs: sandbox.NewProgramCache(sandbox.Compile, maxCachedPrograms, maxCachedProgramCode)}
}

type jsRunner struct {
	opts     JSOptions
	programs *sandbox.ProgramCache // by code: the same code compiles to the same program
}

// jsContext is the ctx argument a js tool sees.
type jsContext struct {
	Toolkit        string  `json:"toolkit"`
	Tool           string  `json:"tool"`
	ExternalUserID *string `json:"external_user_id"`
}

func (r *jsRunner) Run(ctx context.Context, call *Call) (json.RawMessage, error) {
	prog, err := r.programs.Program(call.Tool.Executor.Code)
	if err != nil {
		return nil, r.toolError(ctx, err)
	}
	jctx := jsContext{Toolkit: call.Toolkit.ID, Tool: call.Tool.Name}
	if call.ExternalUserID != "" {
		jctx.ExternalUserID = &call.ExternalUserID
	}
	lim := sandbox.Limits{
		Timeout:        r.timeout(call.Tool),
		MaxResultBytes: r.opts.MaxResultBytes,
		MaxCodeBytes:   maxCodeBytes,
	}
	out, err := prog.Run(ctx, call.Arguments, jctx, lim, sandbox.Host{Console: r.console(ctx, call)})
	if err != nil {
		return nil, r.toolError(ctx, err)
	}
	return out, nil
}

// timeout is the tool's own timeout_ms, else the server default, else the
// sandbox default; never more than maxToolTimeout.
func (r *jsRunner) timeout(t *Tool) time.Duration {
	d := sandbox.DefaultTimeout
	switch {
	case t.Executor.TimeoutMS > 0:
		d = time.Duration(t.Executor.TimeoutMS) * time.Millisecond
	case r.opts.Timeout > 0:
		d = r.opts.Timeout
	}
	return min(d, maxToolTimeout)
}

// toolError maps a sandbox failure to what the caller reads.
func (r *jsRunner) toolError(ctx context.Context, err error) error {
	var serr *sandbox.Error
	if !errors.As(err, &serr) {
		return err // a fault of the server, hidden by the Service
	}
	switch serr.Kind {
	case sandbox.KindTimeout:
		return NewToolError(ToolErrTimeout, "%s", serr.Message)
	case sandbox.KindResultTooLarge:
		return NewToolError(ToolErrResultTooLarge, "%s", serr.Message)
	case sandbox.KindCanceled:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return serr
	default: // syntax, code too large, runtime
		return NewToolError(ToolErrExecution, "%s", serr.Message)
	}
}

func (r *jsRunner) console(ctx context.Context, call *Call) func(level, msg string) {
	if r.opts.Logger == nil {
		return nil
	}
	return func(level, msg string) {
		r.opts.Logger.DebugContext(ctx, "js tool console",
			"toolkit", call.Toolkit.ID, "tool", call.Tool.Name, "console_level", level, "output", msg)
	}
}
