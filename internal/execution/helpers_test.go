package execution

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
	"github.com/google/go-cmp/cmp"
)

// newEngine returns an engine closed at the end of the test.
func newEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	e := NewEngine(cfg)
	tb.Cleanup(e.Close)
	return e
}

// journals collects the journal of every execution of an engine.
type journals struct {
	mu sync.Mutex
	by map[string]*MemoryJournal
}

func (j *journals) new(id string) Journal {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.by == nil {
		j.by = make(map[string]*MemoryJournal)
	}
	mj := &MemoryJournal{}
	j.by[id] = mj
	return mj
}

func (j *journals) of(id string) []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.by[id].Entries()
}

// fakeTools is a ToolCaller over a few tools of groups math and admin.
type fakeTools struct {
	mu    sync.Mutex
	calls []string
	block chan struct{} // if set, math.slow waits for it
}

func (f *fakeTools) CallTool(ctx context.Context, group, tool string, input json.RawMessage) (json.RawMessage, error) {
	f.mu.Lock()
	f.calls = append(f.calls, group+"."+tool+" "+string(input))
	f.mu.Unlock()
	switch group + "." + tool {
	case "math.add":
		var in struct{ A, B float64 }
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "add: %v", err)
		}
		return json.Marshal(map[string]float64{"sum": in.A + in.B})
	case "math.fail":
		return nil, toolkit.NewToolError(toolkit.ToolErrUpstream, "upstream said no")
	case "math.broken":
		return nil, fmt.Errorf("database is down")
	case "math.slow":
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return json.RawMessage(`"slow done"`), nil
	case "admin.drop", "admin.peek", "admin.touch", "github/readOnly.getUser":
		return json.Marshal(map[string]string{"did": tool})
	}
	return nil, toolkit.NewToolError(toolkit.ToolErrUnavailable, "no tool %s.%s", group, tool)
}

func (f *fakeTools) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var testGroups = []Group{
	{Name: "math", Tools: []ServerTool{{Name: "add"}, {Name: "fail"}, {Name: "broken"}, {Name: "slow"}}},
	{Name: "admin", Tools: []ServerTool{
		{Name: "drop", Annotations: &toolkit.Annotations{OperationType: "destructive"}},
		{Name: "peek", Annotations: &toolkit.Annotations{Sensitivity: "sensitive"}},
		{Name: "touch", Annotations: &toolkit.Annotations{RequiresApproval: true}},
	}},
	{Name: "github/readOnly", Tools: []ServerTool{{Name: "getUser"}}},
}

var testClientTools = []ClientTool{
	{Name: "getLocation", Namespace: "client", Description: "where", InputSchema: json.RawMessage(`{"type":"object"}`)},
	{Name: "wipe", Description: "wipe", InputSchema: json.RawMessage(`{}`), Metadata: json.RawMessage(`{"requiresApproval":true}`)},
	{Name: "helper", Namespace: "math", Description: "a client tool in a server group", InputSchema: json.RawMessage(`{}`)},
}

// request is a request of owner c1 with the test tools.
func request(code string, tools *fakeTools) Request {
	return Request{Owner: "c1", Code: code, Tools: tools, Groups: testGroups, ClientTools: testClientTools}
}

func execute(tb testing.TB, e *Engine, req Request) *Result {
	tb.Helper()
	res, err := e.Execute(tb.Context(), req)
	if err != nil {
		tb.Fatalf("Execute: %v", err)
	}
	return res
}

// resume answers a paused result: one value for needsCallback, or one per
// needsCallbacks entry (by id, in order).
func resume(tb testing.TB, e *Engine, owner string, res *Result, values ...string) *Result {
	tb.Helper()
	req := ResumeRequest{Owner: owner, ExecutionID: res.ExecutionID}
	switch {
	case res.NeedsCallback != nil:
		if len(values) != 1 {
			tb.Fatalf("single callback, %d values", len(values))
		}
		req.Answers = []Answer{{Value: json.RawMessage(values[0])}}
	case len(res.NeedsCallbacks) > 0:
		if len(values) != len(res.NeedsCallbacks) {
			tb.Fatalf("%d callbacks, %d values", len(res.NeedsCallbacks), len(values))
		}
		req.Batch = true
		for i, cb := range res.NeedsCallbacks {
			req.Answers = append(req.Answers, Answer{ID: cb.ID, Value: json.RawMessage(values[i])})
		}
	default:
		tb.Fatalf("not paused: %s", dump(res))
	}
	next, err := e.Resume(tb.Context(), req)
	if err != nil {
		tb.Fatalf("Resume: %v", err)
	}
	return next
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// canon re-encodes JSON so that key order and spacing do not matter.
func canon(tb testing.TB, s string) string {
	tb.Helper()
	if s == "" {
		return ""
	}
	var v any
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		tb.Fatalf("not JSON: %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func wantCompleted(tb testing.TB, res *Result, want string) {
	tb.Helper()
	if res.Status != StatusCompleted {
		tb.Fatalf("status %s, want completed: %s", res.Status, dump(res))
	}
	if diff := cmp.Diff(canon(tb, want), canon(tb, string(res.Result))); diff != "" {
		tb.Fatalf("result (-want +got):\n%s", diff)
	}
}

func wantFailed(tb testing.TB, res *Result, status Status, code, contains string) {
	tb.Helper()
	if res.Status != status || res.Error == nil || res.Error.Code != code || !bytes.Contains([]byte(res.Error.Message), []byte(contains)) {
		tb.Fatalf("got %s, want status %s, code %s, message containing %q", dump(res), status, code, contains)
	}
}

func wantKind(tb testing.TB, err error, kind toolkit.Kind) {
	tb.Helper()
	if err == nil || toolkit.KindOf(err) != kind {
		tb.Fatalf("err = %v, want kind %v", err, kind)
	}
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
