package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Defaults of zero Options fields.
const (
	// DefaultTimeout is below the 120 s a ChatATP LLMClient waits for a
	// tool call, leaving room for the answer to travel back.
	DefaultTimeout     = 100 * time.Second
	DefaultMaxInFlight = 32
	DefaultMaxQueued   = 1000
)

// Options configure a Hub.
type Options struct {
	// Timeout bounds a call from dispatch to answer (queueing included).
	Timeout time.Duration
	// MaxInFlight is how many calls one WebSocket process holds at once;
	// more wait in the queue. The ChatATP SDK runs calls one at a time, so
	// a small number spreads calls over processes sooner.
	MaxInFlight int
	// MaxQueued bounds the calls waiting for a process, per toolkit; past
	// it, calls fail at once (unavailable).
	MaxQueued int
	// Logger, if set, receives debug lines about dispatch.
	Logger *slog.Logger
}

// Request is a call as a toolkit process receives it (the payload of a
// ChatATP atp_tool_request frame, or an inbox answer).
type Request struct {
	ID        string          `json:"request_id"`
	ToolName  string          `json:"tool_name"`
	Params    json.RawMessage `json:"params"`
	AuthToken *string         `json:"auth_token"`
}

// Worker is one connected toolkit process that takes calls pushed to it
// (a WebSocket). Deliver sends req to the process; it must return within
// a bounded time (a write deadline) and be safe for concurrent use. An
// error means req did not reach the process: the Hub gives the call to
// another process and stops choosing this one.
type Worker interface {
	Deliver(ctx context.Context, req *Request) error
}

// Hub dispatches remote tool calls to toolkit processes. It implements
// toolkit.Runner. Safe for concurrent use.
type Hub struct {
	opts Options

	mu     sync.Mutex
	lines  map[string]*line // by toolkit id
	calls  map[string]*call // by request id, until answered or given up
	closed bool
	done   chan struct{} // closed by Close
}

var _ toolkit.Runner = (*Hub)(nil)

// line is the state of one toolkit: its processes and waiting calls.
type line struct {
	workers []*worker
	queue   []*call   // not yet delivered, oldest first
	pollers []*poller // inbox requests waiting for a call, oldest first
	next    int       // round robin among equally busy workers
}

type worker struct {
	w        Worker
	line     *line
	inflight map[string]*call
	gone     bool
}

type poller struct {
	ch chan *call // buffered: a call is handed over under the Hub's lock
}

type callState int

const (
	stateQueued callState = iota
	stateWorker           // delivered to a WebSocket process
	stateInbox            // handed to an inbox poll
)

type call struct {
	req       *Request
	toolkitID string
	state     callState
	worker    *worker
	done      chan outcome // buffered; written once
}

type outcome struct {
	result json.RawMessage
	err    error
}

// NewHub returns a Hub.
func NewHub(o Options) *Hub {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{opts: o, lines: map[string]*line{}, calls: map[string]*call{}, done: make(chan struct{})}
}

// Timeout is the longest a call waits for its answer.
func (h *Hub) Timeout() time.Duration { return h.opts.Timeout }

// Run sends c to a process of its toolkit and waits for the answer. The
// process's result is the tool's result, except a result that is only
// {"error": "<text>"} (what the ChatATP SDK sends when the function
// raised), which becomes an execution_error tool error. No answer within
// the Hub's timeout is a timeout tool error; a process leaving, a full
// queue or a closed Hub is an unavailable tool error; a canceled ctx comes
// back as ctx.Err().
func (h *Hub) Run(ctx context.Context, c *toolkit.Call) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	req := &Request{ID: toolkit.NewID("req_"), ToolName: c.Tool.Name, Params: c.Arguments}
	if len(req.Params) == 0 {
		req.Params = json.RawMessage("{}")
	}
	// The token the Service resolved for an oauth2 tool (the end user's,
	// or the caller's auth_token), else whatever token the caller gave.
	if tok := c.Credential; tok != "" {
		req.AuthToken = &tok
	} else if tok := c.AuthToken; tok != "" {
		req.AuthToken = &tok
	}
	cl := &call{req: req, toolkitID: c.Toolkit.ID, done: make(chan outcome, 1)}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, toolkit.NewToolError(toolkit.ToolErrUnavailable, "the server is shutting down")
	}
	h.calls[req.ID] = cl
	w, err := h.dispatchLocked(h.lineLocked(cl.toolkitID), cl)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if w != nil {
		h.deliver(w, cl)
	}

	select {
	case o := <-cl.done:
		return h.outcome(o)
	case <-ctx.Done():
	}
	h.mu.Lock()
	if _, pending := h.calls[req.ID]; !pending {
		// Answered (or failed) just as the wait ended: take that.
		h.mu.Unlock()
		return h.outcome(<-cl.done)
	}
	state := cl.state
	var next []*call
	w = h.removeLocked(cl)
	if w != nil {
		next = h.fillLocked(w)
	}
	h.mu.Unlock()
	for _, n := range next {
		h.deliver(w, n)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if state == stateQueued {
			return nil, toolkit.NewToolError(toolkit.ToolErrTimeout,
				"no process of toolkit %q took the call within %s: none is connected, or all are busy", cl.toolkitID, h.opts.Timeout)
		}
		return nil, toolkit.NewToolError(toolkit.ToolErrTimeout, "the toolkit process did not answer within %s", h.opts.Timeout)
	}
	return nil, ctx.Err()
}

// outcome turns an answer into what Run returns.
func (h *Hub) outcome(o outcome) (json.RawMessage, error) {
	if o.err != nil {
		return nil, o.err
	}
	if msg, ok := errorResult(o.result); ok {
		return nil, toolkit.NewToolError(toolkit.ToolErrExecution, "%s", msg)
	}
	return o.result, nil
}

// errorResult reports whether result is exactly {"error": "<text>"}.
func errorResult(result json.RawMessage) (string, bool) {
	r := bytes.TrimSpace(result)
	if len(r) == 0 || r[0] != '{' || !bytes.Contains(r, []byte(`"error"`)) {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(r, &m) != nil || len(m) != 1 {
		return "", false
	}
	var msg string
	if raw, ok := m["error"]; !ok || json.Unmarshal(raw, &msg) != nil {
		return "", false
	}
	return msg, true
}

func (h *Hub) lineLocked(toolkitID string) *line {
	ln := h.lines[toolkitID]
	if ln == nil {
		ln = &line{}
		h.lines[toolkitID] = ln
	}
	return ln
}

// dropLineLocked forgets an idle toolkit.
func (h *Hub) dropLineLocked(toolkitID string, ln *line) {
	if len(ln.workers) == 0 && len(ln.queue) == 0 && len(ln.pollers) == 0 && h.lines[toolkitID] == ln {
		delete(h.lines, toolkitID)
	}
}

// dispatchLocked gives cl to a process: an idle WebSocket process, else a
// waiting inbox poll, else the least busy WebSocket process with room, else
// the queue. It returns the worker to deliver to (outside the lock), if
// any; a full queue is an error and forgets cl.
func (h *Hub) dispatchLocked(ln *line, cl *call) (*worker, error) {
	if w := ln.pick(0); w != nil {
		assignLocked(w, cl)
		return w, nil
	}
	if len(ln.pollers) > 0 {
		p := ln.pollers[0]
		ln.pollers = ln.pollers[1:]
		cl.state = stateInbox
		p.ch <- cl
		return nil, nil
	}
	if w := ln.pick(h.opts.MaxInFlight - 1); w != nil {
		assignLocked(w, cl)
		return w, nil
	}
	if len(ln.queue) >= h.opts.MaxQueued {
		delete(h.calls, cl.req.ID)
		return nil, toolkit.NewToolError(toolkit.ToolErrUnavailable,
			"%d calls are already waiting for a process of toolkit %q: try again later", len(ln.queue), cl.toolkitID)
	}
	cl.state = stateQueued
	ln.queue = append(ln.queue, cl)
	return nil, nil
}

func assignLocked(w *worker, cl *call) {
	cl.state, cl.worker = stateWorker, w
	w.inflight[cl.req.ID] = cl
}

// pick returns the least busy live worker holding at most maxBusy calls,
// rotating among equals; nil if none.
func (ln *line) pick(maxBusy int) *worker {
	var best *worker
	n := len(ln.workers)
	for i := range n {
		w := ln.workers[(ln.next+i)%n]
		if w.gone || len(w.inflight) > maxBusy {
			continue
		}
		if best == nil || len(w.inflight) < len(best.inflight) {
			best = w
		}
	}
	if best != nil {
		ln.next++
	}
	return best
}

// deliver sends cl to w. If that fails, w is no longer chosen and cl goes
// to another process (or the queue); if cl was meanwhile answered or given
// up, nothing more happens. The caller's cancellation does not reach the
// Worker: a write cut short would look like a broken process, so the
// Worker's own write deadline bounds it.
func (h *Hub) deliver(w *worker, cl *call) {
	for w != nil {
		err := w.w.Deliver(context.Background(), cl.req)
		if err == nil {
			return
		}
		h.opts.Logger.Debug("delivering a remote call failed", "toolkit", cl.toolkitID, "err", err)
		h.mu.Lock()
		w.gone = true
		if cl.worker != w || h.calls[cl.req.ID] != cl {
			h.mu.Unlock()
			return
		}
		delete(w.inflight, cl.req.ID)
		cl.worker = nil
		var derr error
		w, derr = h.dispatchLocked(w.line, cl)
		h.mu.Unlock()
		if derr != nil {
			cl.done <- outcome{err: derr}
			return
		}
	}
}

// removeLocked forgets a call that is given up, wherever it waits, and
// returns the worker that held it, if any.
func (h *Hub) removeLocked(cl *call) *worker {
	delete(h.calls, cl.req.ID)
	ln := h.lines[cl.toolkitID]
	switch cl.state {
	case stateQueued:
		if ln != nil {
			if i := slices.Index(ln.queue, cl); i >= 0 {
				ln.queue = slices.Delete(ln.queue, i, i+1)
			}
			h.dropLineLocked(cl.toolkitID, ln)
		}
	case stateWorker:
		if w := cl.worker; w != nil {
			delete(w.inflight, cl.req.ID)
			return w
		}
	}
	return nil
}

// fillLocked moves queued calls to w while it has room, returning them
// for delivery outside the lock.
func (h *Hub) fillLocked(w *worker) []*call {
	if w.gone {
		return nil
	}
	ln := w.line
	var out []*call
	for len(ln.queue) > 0 && len(w.inflight) < h.opts.MaxInFlight {
		cl := ln.queue[0]
		ln.queue = ln.queue[1:]
		assignLocked(w, cl)
		out = append(out, cl)
	}
	return out
}

// Attach adds a connected process serving toolkitID. Queued calls go to it
// at once. The returned detach must be called when the process leaves: the
// calls it had received and not answered then fail at once.
func (h *Hub) Attach(toolkitID string, w Worker) (detach func()) {
	h.mu.Lock()
	ln := h.lineLocked(toolkitID)
	wk := &worker{w: w, line: ln, inflight: map[string]*call{}}
	if h.closed {
		wk.gone = true
	}
	ln.workers = append(ln.workers, wk)
	queued := h.fillLocked(wk)
	h.mu.Unlock()
	for _, cl := range queued {
		h.deliver(wk, cl)
	}
	var once sync.Once
	return func() { once.Do(func() { h.detach(toolkitID, wk) }) }
}

func (h *Hub) detach(toolkitID string, wk *worker) {
	h.mu.Lock()
	wk.gone = true
	ln := wk.line
	if i := slices.Index(ln.workers, wk); i >= 0 {
		ln.workers = slices.Delete(ln.workers, i, i+1)
	}
	failed := make([]*call, 0, len(wk.inflight))
	for id, cl := range wk.inflight {
		delete(h.calls, id)
		failed = append(failed, cl)
	}
	clear(wk.inflight)
	h.dropLineLocked(toolkitID, ln)
	h.mu.Unlock()
	for _, cl := range failed {
		cl.done <- outcome{err: toolkit.NewToolError(toolkit.ToolErrUnavailable,
			"the process of toolkit %q that had this call disconnected before answering: the call may or may not have run", toolkitID)}
	}
}

// Poll waits until a call of toolkitID is ready for an inbox process, ctx
// is done or the Hub closes. ok is false when there is none.
func (h *Hub) Poll(ctx context.Context, toolkitID string) (req *Request, ok bool) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, false
	}
	ln := h.lineLocked(toolkitID)
	if len(ln.queue) > 0 {
		cl := ln.queue[0]
		ln.queue = ln.queue[1:]
		cl.state = stateInbox
		h.mu.Unlock()
		return cl.req, true
	}
	p := &poller{ch: make(chan *call, 1)}
	ln.pollers = append(ln.pollers, p)
	h.mu.Unlock()

	select {
	case cl := <-p.ch:
		return cl.req, true
	case <-ctx.Done():
	case <-h.done:
	}
	h.mu.Lock()
	if i := slices.Index(ln.pollers, p); i >= 0 {
		ln.pollers = slices.Delete(ln.pollers, i, i+1)
	}
	h.dropLineLocked(toolkitID, ln)
	h.mu.Unlock()
	select {
	case cl := <-p.ch: // handed over just as the wait ended
		return cl.req, true
	default:
		return nil, false
	}
}

// Requeue puts back a call that Poll returned but that could not be handed
// to the process (its request went away first). It goes to the front.
func (h *Hub) Requeue(toolkitID, requestID string) {
	h.mu.Lock()
	cl := h.calls[requestID]
	if cl == nil || cl.toolkitID != toolkitID || cl.state != stateInbox {
		h.mu.Unlock()
		return
	}
	ln := h.lineLocked(toolkitID)
	if w := ln.pick(h.opts.MaxInFlight - 1); w != nil {
		assignLocked(w, cl)
		h.mu.Unlock()
		h.deliver(w, cl)
		return
	}
	if len(ln.pollers) > 0 {
		p := ln.pollers[0]
		ln.pollers = ln.pollers[1:]
		p.ch <- cl
	} else {
		cl.state = stateQueued
		ln.queue = slices.Insert(ln.queue, 0, cl)
	}
	h.mu.Unlock()
}

// Resolve delivers a process's answer to the call requestID of toolkitID.
// It is KindNotFound when there is no such call waiting (it timed out, was
// answered already, or belongs to another toolkit).
func (h *Hub) Resolve(toolkitID, requestID string, result json.RawMessage) error {
	h.mu.Lock()
	cl := h.calls[requestID]
	if cl == nil || cl.toolkitID != toolkitID {
		h.mu.Unlock()
		return toolkit.Errorf(toolkit.KindNotFound, "not_found",
			"no call with this request_id is waiting for an answer: it timed out, was answered already, or is not for this toolkit")
	}
	delete(h.calls, requestID)
	var (
		w    = cl.worker
		next []*call
	)
	if w != nil {
		delete(w.inflight, requestID)
		next = h.fillLocked(w)
	}
	h.mu.Unlock()
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	cl.done <- outcome{result: result}
	for _, n := range next {
		h.deliver(w, n)
	}
	return nil
}

// Connected reports how many WebSocket processes serve toolkitID.
func (h *Hub) Connected(toolkitID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ln := h.lines[toolkitID]; ln != nil {
		return len(ln.workers)
	}
	return 0
}

// Close fails every waiting call (unavailable), ends every Poll and makes
// later calls fail at once. Processes stay attached until their transport
// detaches them.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	pending := make([]*call, 0, len(h.calls))
	for id, cl := range h.calls {
		delete(h.calls, id)
		pending = append(pending, cl)
	}
	for _, ln := range h.lines {
		ln.queue = nil
		for _, w := range ln.workers {
			w.gone = true
			clear(w.inflight)
		}
	}
	h.mu.Unlock()
	for _, cl := range pending {
		cl.done <- outcome{err: toolkit.NewToolError(toolkit.ToolErrUnavailable, "the server is shutting down")}
	}
}
