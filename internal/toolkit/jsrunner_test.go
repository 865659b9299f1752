package toolkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func jsCall(code string, args string) *Call {
	return &Call{
		Toolkit: &Toolkit{ID: "math", Revision: 1},
		Tool: &Tool{
			Name:        "add",
			InputSchema: json.RawMessage(`{"type":"object"}`),
			Executor:    Executor{Kind: ExecutorJS, Code: code},
		},
		Arguments: json.RawMessage(args),
	}
}

func TestJSRunner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      JSOptions
		code      string
		args      string
		timeoutMS int
		user      string
		want      string     // the JSON result, when err is nil
		wantErr   *ToolError // the tool error
	}{
		{name: "result", code: "return {sum: input.a + input.b};", args: `{"a":1,"b":2}`, want: `{"sum":3}`},
		{name: "await", code: "await new Promise(r => setTimeout(r, 1)); return input.x", args: `{"x":"y"}`, want: `"y"`},
		{name: "ctx without user", code: "return ctx", args: `{}`, want: `{"toolkit":"math","tool":"add","external_user_id":null}`},
		{name: "ctx with user", code: "return ctx.external_user_id", args: `{}`, user: "u-1", want: `"u-1"`},
		{name: "no return", code: "input.x", args: `{}`, want: `null`},
		{name: "thrown", code: `throw new TypeError("bad input")`, args: `{}`,
			wantErr: &ToolError{Code: ToolErrExecution, Message: "TypeError: bad input"}},
		{name: "syntax", code: `return {{`, args: `{}`,
			wantErr: &ToolError{Code: ToolErrExecution, Message: "SyntaxError: Unexpected token { (at the end of the code)"}},
		{name: "tool timeout", code: `while (true) {}`, args: `{}`, timeoutMS: 50,
			wantErr: &ToolError{Code: ToolErrTimeout, Message: "the code ran longer than its time limit of 50ms"}},
		{name: "server timeout", opts: JSOptions{Timeout: 40 * time.Millisecond}, code: `while (true) {}`, args: `{}`,
			wantErr: &ToolError{Code: ToolErrTimeout, Message: "the code ran longer than its time limit of 40ms"}},
		{name: "tool timeout wins", opts: JSOptions{Timeout: time.Hour}, code: `while (true) {}`, args: `{}`, timeoutMS: 30,
			wantErr: &ToolError{Code: ToolErrTimeout, Message: "the code ran longer than its time limit of 30ms"}},
		{name: "result too large", opts: JSOptions{MaxResultBytes: 10}, code: `return "0123456789abc"`, args: `{}`,
			wantErr: &ToolError{Code: ToolErrResultTooLarge, Message: "the result is at least 15 bytes of JSON, more than the limit of 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			call := jsCall(tt.code, tt.args)
			call.Tool.Executor.TimeoutMS = tt.timeoutMS
			call.ExternalUserID = tt.user
			got, err := NewJSRunner(tt.opts).Run(t.Context(), call)
			if tt.wantErr != nil {
				var terr *ToolError
				if !errors.As(err, &terr) {
					t.Fatalf("got (%s, %v), want tool error %v", got, err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, terr); diff != "" {
					t.Errorf("tool error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSRunnerCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := NewJSRunner(JSOptions{}).Run(ctx, jsCall(`while (true) {}`, `{}`))
	var terr *ToolError
	if !errors.Is(err, context.Canceled) || errors.As(err, &terr) {
		t.Errorf("err = %v, want context.Canceled and no tool error", err)
	}
}

func TestJSRunnerTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      time.Duration
		timeoutMS int
		want      time.Duration
	}{
		{"sandbox default", 0, 0, 30 * time.Second},
		{"server default", 5 * time.Second, 0, 5 * time.Second},
		{"tool overrides", 5 * time.Second, 1500, 1500 * time.Millisecond},
		{"server default clamped", time.Hour, 0, 300 * time.Second},
		{"tool clamped", 0, 999_999, 300 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewJSRunner(JSOptions{Timeout: tt.opts}).(*jsRunner)
			got := r.timeout(&Tool{Executor: Executor{TimeoutMS: tt.timeoutMS}})
			if got != tt.want {
				t.Errorf("timeout = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJSRunnerCachesPrograms(t *testing.T) {
	t.Parallel()
	r := NewJSRunner(JSOptions{}).(*jsRunner)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			got, err := r.Run(t.Context(), jsCall("return input.n + 1", `{"n":1}`))
			if err != nil || string(got) != "2" {
				t.Errorf("got (%s, %v)", got, err)
			}
		})
	}
	wg.Wait()
	if _, err := r.Run(t.Context(), jsCall("return 2", `{}`)); err != nil {
		t.Fatal(err)
	}
	if n := r.programs.Len(); n != 2 {
		t.Errorf("cache holds %d programs, want 2", n)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestJSRunnerConsole(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, err := NewJSRunner(JSOptions{Logger: logger}).Run(t.Context(), jsCall(`console.warn("careful", 1); return 1`, `{}`)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"js tool console", "toolkit=math", "tool=add", "console_level=warn", `output="careful 1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

func BenchmarkJSRunnerAdd(b *testing.B) {
	r := NewJSRunner(JSOptions{})
	call := jsCall("return {sum: input.a + input.b};", `{"a":1,"b":2}`)
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Run(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}
