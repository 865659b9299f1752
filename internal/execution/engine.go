package execution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/atp-server/atp-server/internal/sandbox"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// Config configures an Engine. Zero fields take the defaults named.
type Config struct {
	DefaultTimeout time.Duration // 30 s: active time of an execution without a timeout option
	MaxTimeout     time.Duration // 300 s: the timeout option is clamped to it
	PauseTTL       time.Duration // 1 h: a paused execution not resumed by then is dropped

	MaxPausedPerKey  int // 100 paused executions per rate key
	MaxPausedTotal   int // 1000 paused executions in all
	MaxRunningPerKey int // 16 executions running at once per rate key

	DefaultMemory int64 // 128 MiB
	MaxMemory     int64 // 512 MiB: the memory option is clamped to 1 MiB..MaxMemory

	DefaultLLMCalls int // 10
	MaxLLMCalls     int // 1000

	MaxCodeBytes   int // 1,000,000
	MaxResultBytes int // 5 MiB of JSON

	// HeapLimit, if positive, is the process-wide guard of the memory
	// watchdog (sandbox.MemoryWatchdogOptions.HeapLimit). The engine never
	// sets the Go memory limit; cmd may set GOMEMLIMIT a little above it.
	HeapLimit int64
	// MemorySampleInterval is the watchdog's sampling interval (5 ms).
	MemorySampleInterval time.Duration

	Cache      Cache                            // NewMemoryCache with its defaults
	NewJournal func(executionID string) Journal // NewMemoryJournal
	Logger     *slog.Logger                     // discards if nil
	Now        func() time.Time                 // time.Now; the clock of pause expiry and of Date.now()
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt64 := func(d *int64, v int64) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DefaultTimeout, 30*time.Second)
	def(&c.MaxTimeout, 300*time.Second)
	def(&c.PauseTTL, time.Hour)
	defInt(&c.MaxPausedPerKey, 100)
	defInt(&c.MaxPausedTotal, 1000)
	defInt(&c.MaxRunningPerKey, 16)
	defInt64(&c.DefaultMemory, 128<<20)
	defInt64(&c.MaxMemory, 512<<20)
	defInt(&c.DefaultLLMCalls, 10)
	defInt(&c.MaxLLMCalls, 1000)
	defInt(&c.MaxCodeBytes, 1_000_000)
	defInt(&c.MaxResultBytes, 5<<20)
	def(&c.MemorySampleInterval, 5*time.Millisecond)
	c.DefaultTimeout = min(c.DefaultTimeout, c.MaxTimeout)
	c.DefaultMemory = min(max(c.DefaultMemory, minMemory), c.MaxMemory)
	c.DefaultLLMCalls = min(c.DefaultLLMCalls, c.MaxLLMCalls)
	if c.Cache == nil {
		c.Cache = NewMemoryCache(MemoryCacheOptions{})
	}
	if c.NewJournal == nil {
		c.NewJournal = NewMemoryJournal
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// minMemory is the smallest memory limit an execution gets: the runtime
// itself needs some, and a client sending megabytes where bytes are meant
// should get a working execution rather than an instant failure.
const minMemory = 1 << 20

// Limits are an engine's effective defaults and maxima, for /api/info.
type Limits struct {
	DefaultTimeout, MaxTimeout   time.Duration
	DefaultMemory, MaxMemory     int64
	DefaultLLMCalls, MaxLLMCalls int
	MaxCodeBytes                 int
}

// Bounds of the engine's cache of compiled code (sandbox.ProgramCache):
// past either it starts over.
const (
	maxCachedPrograms    = 1024
	maxCachedProgramCode = 16 << 20
)

// Engine runs monday executions: pausable JavaScript with the atp and api
// runtime (see the package doc). It is safe for concurrent use.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	cache    Cache
	prelude  *sandbox.Prelude
	programs *sandbox.ProgramCache // the executions' code, compiled
	watchdog *sandbox.MemoryWatchdog
	now      func() time.Time

	mu          sync.Mutex
	execs       map[string]*execution
	running     map[string]int // by rate key
	paused      map[string]int // by rate key
	pausedTotal int
	closed      bool

	quit chan struct{}
	done chan struct{}
}

// execution is the engine's record of one execution.
type execution struct {
	id, owner, key string
	live           *sandbox.Live
	rt             *atpRuntime
	cancel         context.CancelFunc // ends rt.ctx

	// Guarded by Engine.mu.
	state   state
	pending []Callback // the callbacks of the current pause, in order
	expires time.Time
}

type state int

const (
	stateRunning state = iota
	statePaused
	stateDone
)

// Causes an execution is canceled with; they end as status cancelled.
var (
	errExpired            = errors.New("the paused execution expired")
	errEngineClosed       = errors.New("the server is shutting down")
	errServiceNotProvided = errors.New("the client lacks a service the execution needs")
	errCallerGone         = errors.New("the caller went away")
	errCannotPause        = errors.New("the execution cannot pause")
)

// NewEngine starts an engine: its memory watchdog and the reaper of
// expired paused executions. Close stops them.
func NewEngine(cfg Config) *Engine {
	cfg = cfg.withDefaults()
	prelude, err := sandbox.CompilePrelude("runtime.js", runtimeSource)
	if err != nil {
		// runtime.js is part of the binary: every test would fail first.
		panic("execution: the embedded runtime.js does not compile: " + err.Error())
	}
	e := &Engine{
		cfg:     cfg,
		log:     logger(cfg.Logger),
		cache:   cfg.Cache,
		prelude: prelude,
		// An agent may send the same script again (a retry, a loop of
		// the same query): compiling it is a good part of a small run.
		programs: sandbox.NewProgramCache(sandbox.CompileCode, maxCachedPrograms, maxCachedProgramCode),
		watchdog: sandbox.NewMemoryWatchdog(sandbox.MemoryWatchdogOptions{
			Interval: cfg.MemorySampleInterval, HeapLimit: cfg.HeapLimit,
		}),
		now:     cfg.Now,
		execs:   make(map[string]*execution),
		running: make(map[string]int),
		paused:  make(map[string]int),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go e.reaper()
	return e
}

// Limits returns the engine's effective defaults and maxima.
func (e *Engine) Limits() Limits {
	c := e.cfg
	return Limits{
		DefaultTimeout: c.DefaultTimeout, MaxTimeout: c.MaxTimeout,
		DefaultMemory: c.DefaultMemory, MaxMemory: c.MaxMemory,
		DefaultLLMCalls: c.DefaultLLMCalls, MaxLLMCalls: c.MaxLLMCalls,
		MaxCodeBytes: c.MaxCodeBytes,
	}
}

// Counts returns how many executions are running and paused now.
func (e *Engine) Counts() (running, paused int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.running {
		running += n
	}
	return running, e.pausedTotal
}

// Close ends every execution (running ones as cancelled; paused ones are
// dropped), waits for their goroutines, and stops the engine's own. Execute
// and Resume fail with KindUnavailable afterwards.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	xs := make([]*execution, 0, len(e.execs))
	for _, x := range e.execs {
		xs = append(xs, x)
	}
	e.mu.Unlock()

	close(e.quit)
	<-e.done
	for _, x := range xs {
		x.live.Cancel(errEngineClosed)
	}
	for _, x := range xs {
		<-x.live.Done()
		e.end(x)
	}
	e.watchdog.Close()
}

// effective are an execution's limits after defaults and clamps.
type effective struct {
	timeout  time.Duration
	memory   int64
	llmCalls int
	services *ClientServices
}

func (e *Engine) effective(o Options) effective {
	c := e.cfg
	x := effective{timeout: c.DefaultTimeout, memory: c.DefaultMemory, llmCalls: c.DefaultLLMCalls, services: o.ClientServices}
	if o.Timeout > 0 {
		x.timeout = min(o.Timeout, c.MaxTimeout)
	}
	if o.Memory > 0 {
		x.memory = min(max(o.Memory, minMemory), c.MaxMemory)
	}
	if o.LLMCalls > 0 {
		x.llmCalls = min(o.LLMCalls, c.MaxLLMCalls)
	}
	return x
}

// Execute starts an execution and returns when it completes, fails or
// pauses. Whatever the code does, the outcome is a *Result (failures
// included, as statuses); an error means no result: KindUnavailable after
// Close, KindInvalid when an anonymous caller's execution tries to pause
// ("Client ID required for paused executions"), ctx's error when ctx ended
// first (the execution is then canceled), KindInternal for a fault of the
// server.
func (e *Engine) Execute(ctx context.Context, req Request) (*Result, error) {
	id := toolkit.NewID("exec_")
	key := req.RateKey
	if key == "" {
		key = req.Owner
	}
	if len(req.Code) > e.cfg.MaxCodeBytes {
		return failure(id, StatusValidationFailed, CodeValidationFailed,
			fmt.Sprintf("the code is %d bytes, more than the limit of %d", len(req.Code), e.cfg.MaxCodeBytes), false, Stats{}), nil
	}
	if res, err := e.reserve(id, key); res != nil || err != nil {
		return res, err
	}
	prg, err := e.programs.Program(req.Code)
	if err != nil {
		e.unreserve(key)
		return e.failed(id, err, Stats{}), nil
	}

	opts := e.effective(req.Options)
	ctxRun, cancel := context.WithCancel(context.Background())
	rt := &atpRuntime{
		eng: e, id: id, owner: req.Owner, ctx: ctxRun, opts: opts, tools: req.Tools,
		rec: &recorder{j: e.cfg.NewJournal(id)}, now: e.now,
		client: req.ClientTools, onProgress: req.OnProgress, onConsole: req.OnConsole,
	}
	if rt.tools == nil {
		rt.tools = noTools{}
	}
	for _, g := range req.Groups {
		for _, t := range g.Tools {
			rt.server = append(rt.server, serverEntry{group: g.Name, tool: t})
		}
	}
	live, err := prg.Start(nil, nil, sandbox.Limits{
		Timeout:        opts.timeout,
		MaxResultBytes: e.cfg.MaxResultBytes,
		MaxCodeBytes:   e.cfg.MaxCodeBytes,
		MaxMemory:      opts.memory,
		Memory:         e.watchdog,
	}, rt.host())
	if err != nil {
		cancel()
		e.unreserve(key)
		var serr *sandbox.Error
		if errors.As(err, &serr) {
			return e.failed(id, err, Stats{}), nil
		}
		e.log.ErrorContext(ctx, "starting an execution", "execution_id", id, "err", err)
		return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "could not start the execution")
	}
	x := &execution{id: id, owner: req.Owner, key: key, live: live, rt: rt, cancel: cancel}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		live.Cancel(errEngineClosed)
		cancel()
		e.unreserve(key)
		return nil, toolkit.Errorf(toolkit.KindUnavailable, "unavailable", "the server is shutting down")
	}
	e.execs[id] = x
	e.mu.Unlock()
	return e.await(ctx, x)
}

// noTools is the ToolCaller of a request without one.
type noTools struct{}

func (noTools) CallTool(context.Context, string, string, json.RawMessage) (json.RawMessage, error) {
	return nil, toolkit.NewToolError(toolkit.ToolErrUnavailable, "server tools are not available to this execution")
}

// reserve takes a running slot for key; past the cap it returns a
// rate_limited result.
func (e *Engine) reserve(id, key string) (*Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, toolkit.Errorf(toolkit.KindUnavailable, "unavailable", "the server is shutting down")
	}
	if e.running[key] >= e.cfg.MaxRunningPerKey {
		return failure(id, StatusRateLimited, CodeConcurrentLimit, fmt.Sprintf(
			"too many executions running at once for this client (at most %d): retry when one has finished",
			e.cfg.MaxRunningPerKey), true, Stats{}), nil
	}
	e.running[key]++
	return nil, nil
}

func (e *Engine) unreserve(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.decrement(e.running, key)
}

func (e *Engine) decrement(m map[string]int, key string) {
	if m[key] <= 1 {
		delete(m, key)
		return
	}
	m[key]--
}

// await waits for the execution's next stop and turns it into a result.
func (e *Engine) await(ctx context.Context, x *execution) (*Result, error) {
	step, err := x.live.Next(ctx)
	if err != nil {
		x.live.Cancel(errCallerGone)
		e.end(x)
		return nil, err
	}
	x.rt.rec.flush()
	stats := Stats{
		Duration:           step.Active.Milliseconds(),
		MemoryUsed:         step.Memory,
		LLMCallsCount:      x.rt.llmCalls,
		ApprovalCallsCount: x.rt.approvalCalls,
	}
	if !step.Paused() {
		e.end(x)
		if step.Err != nil {
			return e.failed(x.id, step.Err, stats), nil
		}
		return &Result{ExecutionID: x.id, Status: StatusCompleted, Result: step.Result, Stats: stats}, nil
	}
	return e.pause(x, step, stats)
}

// pause records a paused execution, within the caps.
func (e *Engine) pause(x *execution, step sandbox.Step, stats Stats) (*Result, error) {
	cbs := make([]Callback, len(step.Parked))
	for i, p := range step.Parked {
		cbs[i] = p.Request.(*pending).cb
	}
	e.mu.Lock()
	var res *Result
	var err error
	switch {
	case x.state == stateDone: // closed meanwhile
		res = failure(x.id, StatusCancelled, CodeExecutionFailed, "the execution was canceled: "+errEngineClosed.Error(), true, stats)
	case x.owner == "":
		e.endLocked(x)
		err = toolkit.Errorf(toolkit.KindInvalid, "client_id_required", "Client ID required for paused executions")
	case e.paused[x.key] >= e.cfg.MaxPausedPerKey || e.pausedTotal >= e.cfg.MaxPausedTotal:
		e.endLocked(x)
		res = failure(x.id, StatusRateLimited, CodeConcurrentLimit, fmt.Sprintf(
			"too many paused executions (at most %d per client and %d in all): resume or finish paused executions first",
			e.cfg.MaxPausedPerKey, e.cfg.MaxPausedTotal), true, stats)
	default:
		x.state, x.pending, x.expires = statePaused, cbs, e.now().Add(e.cfg.PauseTTL)
		e.decrement(e.running, x.key)
		e.paused[x.key]++
		e.pausedTotal++
	}
	e.mu.Unlock()
	if res != nil || err != nil {
		x.live.Cancel(errCannotPause)
		return res, err
	}
	res = &Result{ExecutionID: x.id, Status: StatusPaused, Stats: stats}
	if len(cbs) == 1 {
		cb := cbs[0]
		cb.ID = ""
		res.NeedsCallback = &cb
	} else {
		res.NeedsCallbacks = cbs
	}
	return res, nil
}

// end forgets an execution and frees its slot.
func (e *Engine) end(x *execution) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endLocked(x)
}

func (e *Engine) endLocked(x *execution) {
	switch x.state {
	case stateDone:
		return
	case stateRunning:
		e.decrement(e.running, x.key)
	case statePaused:
		e.decrement(e.paused, x.key)
		e.pausedTotal--
	}
	x.state, x.pending = stateDone, nil
	delete(e.execs, x.id)
	x.cancel()
}

// Resume answers the callbacks of a paused execution; the same VM goes on
// and Resume returns at its next pause or its end, as Execute does. An
// {__error} answer whose message says "service not provided" ends the
// execution as failed with SERVICE_NOT_PROVIDED and zero stats (spec
// §3.8). Errors: KindNotFound when no execution of that id is paused (it
// never existed, has finished, has expired, or is running a resume right
// now), KindForbidden when it belongs to another client, KindInvalid for
// answers that do not fit the pending callbacks, KindUnavailable after
// Close, ctx's error when ctx ended first.
func (e *Engine) Resume(ctx context.Context, req ResumeRequest) (*Result, error) {
	notFound := toolkit.Errorf(toolkit.KindNotFound, "not_found", "Not found")
	e.mu.Lock()
	x := e.execs[req.ExecutionID]
	switch {
	case e.closed:
		e.mu.Unlock()
		return nil, toolkit.Errorf(toolkit.KindUnavailable, "unavailable", "the server is shutting down")
	case x == nil:
		e.mu.Unlock()
		return nil, notFound
	case x.owner != req.Owner:
		e.mu.Unlock()
		return nil, toolkit.Errorf(toolkit.KindForbidden, "forbidden", "Unauthorized: execution belongs to different client")
	case x.state != statePaused:
		e.mu.Unlock()
		return nil, notFound
	case !e.now().Before(x.expires):
		e.endLocked(x)
		e.mu.Unlock()
		x.live.Cancel(errExpired)
		return nil, notFound
	}
	answers, err := match(x.pending, req.Answers, req.Batch)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	x.state, x.pending = stateRunning, nil
	e.decrement(e.paused, x.key)
	e.pausedTotal--
	e.running[x.key]++
	e.mu.Unlock()

	for _, a := range answers {
		x.rt.rec.append(Entry{Kind: EntryAnswer, Ref: a.ID, Value: a.Value})
	}
	for _, a := range answers {
		if msg, ok := isServiceNotProvided(a.Value); ok {
			x.live.Cancel(errServiceNotProvided)
			e.end(x)
			x.rt.rec.flush()
			return failure(x.id, StatusFailed, CodeServiceNotProvided, msg, false, Stats{}), nil
		}
	}
	x.rt.setSinks(req.OnProgress, req.OnConsole)
	if err := x.live.Resume(answers); err != nil {
		// Canceled while paused (Close, or a racing expiry): nothing runs.
		e.end(x)
		return nil, notFound
	}
	return e.await(ctx, x)
}

// match pairs the given answers with the pending callbacks: a single
// answer goes to the first; batch answers by id, or by position when an
// entry has no id. Unknown or repeated ids are KindInvalid.
func match(pending []Callback, given []Answer, batch bool) ([]sandbox.Answer, error) {
	invalid := func(format string, args ...any) error {
		return toolkit.Errorf(toolkit.KindInvalid, "invalid_resume", format, args...)
	}
	value := func(v json.RawMessage) json.RawMessage {
		if len(v) == 0 {
			return json.RawMessage("null")
		}
		return v
	}
	if len(given) == 0 {
		return nil, invalid("no result given")
	}
	if !batch {
		if len(given) != 1 {
			return nil, invalid("a single resume takes one result")
		}
		return []sandbox.Answer{{ID: pending[0].ID, Value: value(given[0].Value)}}, nil
	}
	isPending := make(map[string]bool, len(pending))
	for _, cb := range pending {
		isPending[cb.ID] = true
	}
	used := make(map[string]bool, len(given))
	out := make([]sandbox.Answer, 0, len(given))
	for i, a := range given {
		id := a.ID
		switch {
		case id == "" && i < len(pending):
			id = pending[i].ID
		case id == "":
			return nil, invalid("results[%d] has no id and there is no callback at that position", i)
		case !isPending[id]:
			return nil, invalid("results[%d].id %q is not a pending callback of this execution", i, id)
		}
		if used[id] {
			return nil, invalid("results[%d] answers %q a second time", i, id)
		}
		used[id] = true
		out = append(out, sandbox.Answer{ID: id, Value: value(a.Value)})
	}
	return out, nil
}

// reaper drops paused executions whose PauseTTL has passed.
func (e *Engine) reaper() {
	defer close(e.done)
	every := min(max(e.cfg.PauseTTL/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.reap()
		case <-e.quit:
			return
		}
	}
}

func (e *Engine) reap() {
	now := e.now()
	var expired []*execution
	e.mu.Lock()
	for _, x := range e.execs {
		if x.state == statePaused && !now.Before(x.expires) {
			e.endLocked(x)
			expired = append(expired, x)
		}
	}
	e.mu.Unlock()
	for _, x := range expired {
		x.live.Cancel(errExpired)
	}
}

// failure builds a result that did not complete.
func failure(id string, status Status, code, msg string, retryable bool, stats Stats) *Result {
	return &Result{ExecutionID: id, Status: status, Stats: stats, Error: &ExecError{Message: msg, Code: code, Retryable: retryable}}
}

// failed classifies a run's error (spec §5.8) from its type, not its text.
func (e *Engine) failed(id string, err error, stats Stats) *Result {
	var serr *sandbox.Error
	if !errors.As(err, &serr) {
		e.log.Error("execution failed in the server", "execution_id", id, "err", err)
		return failure(id, StatusFailed, CodeExecutionFailed, "the execution failed with an internal error", false, stats)
	}
	var capErr *llmCapError
	switch serr.Kind {
	case sandbox.KindTimeout:
		return failure(id, StatusTimeout, CodeTimeout, "Execution timed out: "+serr.Message, true, stats)
	case sandbox.KindMemory:
		return failure(id, StatusMemoryExceeded, CodeMemoryLimit, "Memory limit exceeded: "+serr.Message, false, stats)
	case sandbox.KindHalted:
		if errors.As(err, &capErr) {
			return failure(id, StatusLLMCallsExceeded, CodeLLMCallLimit, capErr.Error(), false, stats)
		}
	case sandbox.KindSyntax:
		return failure(id, StatusParseError, CodeSyntaxError, serr.Message, false, stats)
	case sandbox.KindCodeTooLarge:
		return failure(id, StatusValidationFailed, CodeValidationFailed, serr.Message, false, stats)
	case sandbox.KindCanceled:
		return failure(id, StatusCancelled, CodeExecutionFailed, "the execution was canceled: "+cancelReason(err), true, stats)
	case sandbox.KindRuntime:
		switch serr.Class {
		case "TypeError":
			return failure(id, StatusFailed, CodeTypeError, serr.Message, false, stats)
		case "ReferenceError":
			return failure(id, StatusFailed, CodeReferenceError, serr.Message, false, stats)
		case "SyntaxError":
			return failure(id, StatusParseError, CodeSyntaxError, serr.Message, false, stats)
		}
	}
	return failure(id, StatusFailed, CodeExecutionFailed, serr.Message, false, stats)
}

// cancelReason says why an execution was canceled, in the words of the
// engine's own causes.
func cancelReason(err error) string {
	for _, cause := range []error{errEngineClosed, errExpired, errServiceNotProvided, errCallerGone, errCannotPause} {
		if errors.Is(err, cause) {
			return cause.Error()
		}
	}
	return "it was stopped"
}
