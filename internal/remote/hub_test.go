package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/remote"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// fakeWorker stands for a connected toolkit process: it records what it
// is sent, or refuses it like a broken socket.
type fakeWorker struct {
	reqs   chan *remote.Request
	broken bool
}

func newWorker() *fakeWorker { return &fakeWorker{reqs: make(chan *remote.Request, 100)} }

func (f *fakeWorker) Deliver(_ context.Context, req *remote.Request) error {
	if f.broken {
		return errors.New("broken pipe")
	}
	f.reqs <- req
	return nil
}

func (f *fakeWorker) next(t *testing.T) *remote.Request {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-t.Context().Done():
		t.Fatal("no request reached the worker")
		return nil
	}
}

var weather = &toolkit.Toolkit{ID: "weather", Name: "weather", Tools: []toolkit.Tool{{Name: "now", Executor: toolkit.Executor{Kind: toolkit.ExecutorRemote}}}}

func callOf(args string, token string) *toolkit.Call {
	return &toolkit.Call{Toolkit: weather, Tool: &weather.Tools[0], Arguments: json.RawMessage(args), AuthToken: token}
}

type result struct {
	out json.RawMessage
	err error
}

// run starts a call and returns where its result will arrive.
func run(ctx context.Context, h *remote.Hub, c *toolkit.Call) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := h.Run(ctx, c)
		ch <- result{out, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-t.Context().Done():
		t.Fatal("the call did not return")
		return result{}
	}
}

func wantToolError(t *testing.T, err error, code, fragment string) {
	t.Helper()
	var te *toolkit.ToolError
	if !errors.As(err, &te) || te.Code != code || !strings.Contains(te.Message, fragment) {
		t.Fatalf("got %v, want a %s tool error mentioning %q", err, code, fragment)
	}
}

func TestWorkerRoundTrip(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{})
	w := newWorker()
	detach := h.Attach("weather", w)
	defer detach()
	if h.Connected("weather") != 1 {
		t.Fatalf("Connected = %d", h.Connected("weather"))
	}

	ch := run(t.Context(), h, callOf(`{"city":"Paris"}`, "tok-1"))
	req := w.next(t)
	if req.ToolName != "now" || string(req.Params) != `{"city":"Paris"}` || req.AuthToken == nil || *req.AuthToken != "tok-1" || !strings.HasPrefix(req.ID, "req_") {
		t.Fatalf("request %+v", req)
	}
	b, _ := json.Marshal(req)
	if !strings.Contains(string(b), `"request_id":`) || !strings.Contains(string(b), `"tool_name":"now"`) || !strings.Contains(string(b), `"params":{"city":"Paris"}`) {
		t.Errorf("wire form %s", b)
	}
	if err := h.Resolve("weather", req.ID, json.RawMessage(`{"temp":21}`)); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, ch); r.err != nil || string(r.out) != `{"temp":21}` {
		t.Fatalf("result %s, %v", r.out, r.err)
	}
	// A second answer, and an answer for another toolkit, find nothing.
	if err := h.Resolve("weather", req.ID, nil); toolkit.KindOf(err) != toolkit.KindNotFound {
		t.Errorf("late Resolve = %v, want not found", err)
	}

	// Without a token the request says null.
	ch = run(t.Context(), h, callOf(`{}`, ""))
	req = w.next(t)
	if req.AuthToken != nil {
		t.Errorf("auth token %q, want none", *req.AuthToken)
	}
	b, _ = json.Marshal(req)
	if !strings.Contains(string(b), `"auth_token":null`) {
		t.Errorf("wire form %s, want auth_token null", b)
	}
	if err := h.Resolve("news", req.ID, nil); toolkit.KindOf(err) != toolkit.KindNotFound {
		t.Errorf("Resolve from another toolkit = %v, want not found", err)
	}
	if err := h.Resolve("weather", req.ID, nil); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, ch); r.err != nil || string(r.out) != "null" {
		t.Fatalf("result %s, %v", r.out, r.err)
	}
}

func TestErrorResult(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{})
	w := newWorker()
	defer h.Attach("weather", w)()
	for answer, wantErr := range map[string]string{
		`{"error": "TypeError: now() got an unexpected keyword argument 'x'"}`: "TypeError",
		`{"error": "boom", "detail": 1}`:                                       "", // more than the error: a result
		`{"error": 42}`:                                                        "",
		`"error"`:                                                              "",
	} {
		ch := run(t.Context(), h, callOf(`{}`, ""))
		if err := h.Resolve("weather", w.next(t).ID, json.RawMessage(answer)); err != nil {
			t.Fatal(err)
		}
		r := wait(t, ch)
		if wantErr == "" {
			if r.err != nil || string(r.out) != answer {
				t.Errorf("%s: got %s, %v; want it as the result", answer, r.out, r.err)
			}
			continue
		}
		wantToolError(t, r.err, toolkit.ToolErrExecution, wantErr)
	}
}

func TestInboxQueue(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{})
	// Nothing waiting: an inbox poll ends empty with its context.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if req, ok := h.Poll(ctx, "weather"); ok {
		t.Fatalf("idle poll returned %+v", req)
	}

	// A call with no process connected waits; the next poll takes it.
	ch := run(t.Context(), h, callOf(`{"a":1}`, ""))
	req, ok := h.Poll(t.Context(), "weather")
	if !ok || string(req.Params) != `{"a":1}` {
		t.Fatalf("poll = %+v, %v", req, ok)
	}
	if err := h.Resolve("weather", req.ID, json.RawMessage(`"done"`)); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, ch); r.err != nil || string(r.out) != `"done"` {
		t.Fatalf("result %s, %v", r.out, r.err)
	}

	// A poll already waiting gets the call directly; a poll whose request
	// went away puts it back for the next one.
	got := make(chan *remote.Request, 1)
	go func() {
		r, _ := h.Poll(t.Context(), "other")
		got <- r
	}()
	otherTk := &toolkit.Toolkit{ID: "other", Tools: []toolkit.Tool{{Name: "x"}}}
	ch = run(t.Context(), h, &toolkit.Call{Toolkit: otherTk, Tool: &otherTk.Tools[0]})
	first := <-got
	h.Requeue("other", first.ID)
	second, ok := h.Poll(t.Context(), "other")
	if !ok || second.ID != first.ID || string(second.Params) != "{}" {
		t.Fatalf("requeued call: %+v, %v", second, ok)
	}
	if err := h.Resolve("other", second.ID, nil); err != nil {
		t.Fatal(err)
	}
	wait(t, ch)
}

// Queued calls go to a WebSocket process as soon as one connects.
func TestQueuedGoToAttachingWorker(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{})
	ch := run(t.Context(), h, callOf(`{}`, ""))
	// The call is queued once a poll can see it; take it back out through
	// Requeue so that only the attaching worker can serve it.
	req, _ := h.Poll(t.Context(), "weather")
	h.Requeue("weather", req.ID)
	w := newWorker()
	defer h.Attach("weather", w)()
	if got := w.next(t); got.ID != req.ID {
		t.Fatalf("worker got %s, want %s", got.ID, req.ID)
	}
	if err := h.Resolve("weather", req.ID, json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, ch); string(r.out) != "1" {
		t.Fatalf("result %s, %v", r.out, r.err)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{Timeout: 30 * time.Millisecond})
	_, err := h.Run(t.Context(), callOf(`{}`, ""))
	wantToolError(t, err, toolkit.ToolErrTimeout, "none is connected")

	w := newWorker()
	defer h.Attach("weather", w)()
	_, err = h.Run(t.Context(), callOf(`{}`, ""))
	wantToolError(t, err, toolkit.ToolErrTimeout, "did not answer within 30ms")
	// The answer that comes too late is dropped.
	if err := h.Resolve("weather", w.next(t).ID, nil); toolkit.KindOf(err) != toolkit.KindNotFound {
		t.Errorf("late answer: %v, want not found", err)
	}

	// The caller's cancellation is not a timeout.
	ctx, cancel := context.WithCancel(t.Context())
	ch := run(ctx, h, callOf(`{}`, ""))
	w.next(t)
	cancel()
	if r := wait(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Errorf("canceled call: %v", r.err)
	}
}

// A process that disconnects mid-call fails its calls at once, long before
// the timeout; queued calls wait for another process.
func TestDetachFailsInFlight(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{Timeout: time.Hour, MaxInFlight: 1})
	w := newWorker()
	detach := h.Attach("weather", w)
	first := run(t.Context(), h, callOf(`{"n":1}`, ""))
	w.next(t)
	second := run(t.Context(), h, callOf(`{"n":2}`, "")) // queued: the worker is full
	// The second call sits in the queue once a poll can take it.
	req, ok := h.Poll(t.Context(), "weather")
	if !ok || string(req.Params) != `{"n":2}` {
		t.Fatalf("poll = %+v", req)
	}
	h.Requeue("weather", req.ID)
	detach()
	wantToolError(t, wait(t, first).err, toolkit.ToolErrUnavailable, "disconnected before answering")

	w2 := newWorker()
	defer h.Attach("weather", w2)()
	got := w2.next(t)
	if string(got.Params) != `{"n":2}` {
		t.Fatalf("the queued call went to %+v", got)
	}
	if err := h.Resolve("weather", got.ID, json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, second); string(r.out) != "2" {
		t.Fatalf("second: %s %v", r.out, r.err)
	}
}

// Calls spread over processes: idle ones first, then the least busy; a
// process whose socket broke is skipped.
func TestSharing(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{})
	a, b := newWorker(), newWorker()
	defer h.Attach("weather", a)()
	defer h.Attach("weather", b)()
	// receive returns the next call and which worker got it.
	receive := func() (*remote.Request, *fakeWorker) {
		select {
		case r := <-a.reqs:
			return r, a
		case r := <-b.reqs:
			return r, b
		case <-t.Context().Done():
			t.Fatal("no worker got the call")
			return nil, nil
		}
	}
	chA := run(t.Context(), h, callOf(`{}`, ""))
	first, firstWorker := receive()
	chB := run(t.Context(), h, callOf(`{}`, ""))
	second, secondWorker := receive()
	if firstWorker == secondWorker {
		t.Fatal("both calls went to one worker while the other was idle")
	}
	for _, r := range []*remote.Request{first, second} {
		if err := h.Resolve("weather", r.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, chA)
	wait(t, chB)

	broken := &fakeWorker{reqs: make(chan *remote.Request, 1), broken: true}
	h2 := remote.NewHub(remote.Options{})
	defer h2.Attach("weather", broken)()
	good := newWorker()
	defer h2.Attach("weather", good)()
	for i := range 3 {
		ch := run(t.Context(), h2, callOf(fmt.Sprintf(`{"i":%d}`, i), ""))
		if err := h2.Resolve("weather", good.next(t).ID, nil); err != nil {
			t.Fatal(err)
		}
		wait(t, ch)
	}
}

func TestLimitsAndClose(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{MaxQueued: 1})
	queued := run(t.Context(), h, callOf(`{}`, ""))
	req, _ := h.Poll(t.Context(), "weather")
	h.Requeue("weather", req.ID) // now certainly queued
	_, err := h.Run(t.Context(), callOf(`{}`, ""))
	wantToolError(t, err, toolkit.ToolErrUnavailable, "already waiting")

	polled := make(chan bool, 1)
	go func() {
		_, ok := h.Poll(context.Background(), "idle")
		polled <- ok
	}()
	h.Close()
	wantToolError(t, wait(t, queued).err, toolkit.ToolErrUnavailable, "shutting down")
	if ok := <-polled; ok {
		t.Error("a poll returned a call after Close")
	}
	_, err = h.Run(t.Context(), callOf(`{}`, ""))
	wantToolError(t, err, toolkit.ToolErrUnavailable, "shutting down")
	h.Close() // twice is fine
}

// TestCredentialTravelsAsAuthToken: the token the Service resolved for a
// remote tool with oauth2 auth (the end user's) reaches the process as
// auth_token, in preference to what the caller passed.
func TestCredentialTravelsAsAuthToken(t *testing.T) {
	t.Parallel()
	h := remote.NewHub(remote.Options{})
	w := newWorker()
	defer h.Attach("weather", w)()
	c := callOf(`{}`, "")
	c.Credential = "end-user-token"
	ch := run(t.Context(), h, c)
	req := w.next(t)
	if req.AuthToken == nil || *req.AuthToken != "end-user-token" {
		t.Fatalf("auth_token %v, want the resolved credential", req.AuthToken)
	}
	if err := h.Resolve("weather", req.ID, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
}
