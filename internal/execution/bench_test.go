package execution

import (
	"context"
	"encoding/json"
	"testing"
)

// benchEngine allows as many concurrent executions as a benchmark makes.
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	return newEngine(b, Config{MaxRunningPerKey: 1 << 20, MaxPausedPerKey: 1 << 20, MaxPausedTotal: 1 << 20})
}

func BenchmarkExecuteReturn1(b *testing.B) {
	e := benchEngine(b)
	req := Request{Owner: "c1", Code: `return 1`}
	ctx := context.Background()
	for b.Loop() {
		res, err := e.Execute(ctx, req)
		if err != nil || res.Status != StatusCompleted {
			b.Fatalf("%v %s", err, dump(res))
		}
	}
}

func BenchmarkExecuteOneServerTool(b *testing.B) {
	e := benchEngine(b)
	tools := ToolCallerFunc(func(context.Context, string, string, json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"sum":3}`), nil
	})
	req := Request{Owner: "c1", Code: `return (await api.math.add({a: 1, b: 2})).sum`, Tools: tools, Groups: testGroups}
	ctx := context.Background()
	for b.Loop() {
		res, err := e.Execute(ctx, req)
		if err != nil || string(res.Result) != "3" {
			b.Fatalf("%v %s", err, dump(res))
		}
	}
}

// BenchmarkPauseResumeLLM is one execution that pauses ten times in a row
// for an LLM call and is resumed each time.
func BenchmarkPauseResumeLLM(b *testing.B) {
	e := benchEngine(b)
	req := Request{Owner: "c1", Code: `let out = "";
		for (let i = 0; i < 10; i++) out += await atp.llm.call("step " + i);
		return out`, Options: Options{LLMCalls: 10}}
	answer := []Answer{{Value: json.RawMessage(`"x"`)}}
	ctx := context.Background()
	for b.Loop() {
		res, err := e.Execute(ctx, req)
		for err == nil && res.Status == StatusPaused {
			res, err = e.Resume(ctx, ResumeRequest{Owner: "c1", ExecutionID: res.ExecutionID, Answers: answer})
		}
		if err != nil || string(res.Result) != `"xxxxxxxxxx"` {
			b.Fatalf("%v %s", err, dump(res))
		}
	}
}
