package chatatp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func thousandTools() *toolkit.Toolkit {
	tk := &toolkit.Toolkit{ID: "big", Name: "Big", Description: "A thousand tools", Revision: 1, UpdatedAt: time.Now()}
	for i := range 1000 {
		tk.Tools = append(tk.Tools, toolkit.Tool{
			Name: fmt.Sprintf("tool_%04d", i), Description: "Tool number " + strconv.Itoa(i) + ", which does one thing well.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"What to look for"},` +
				`"limit":{"type":"integer","minimum":1,"maximum":100},"tags":{"type":"array","items":{"type":"string"}}},"required":["query"]}`),
			Executor: toolkit.Executor{Kind: toolkit.ExecutorRemote},
		})
	}
	return tk
}

// BenchmarkRenderContext measures the server's rendering of a 1000-tool
// toolkit's context: "cold" renders the tools (a new toolkit version),
// "cached" is every later request for that version (the frame is built
// around the cached rendering).
func BenchmarkRenderContext(b *testing.B) {
	tk := thousandTools()
	req := &llmRequest{RequestID: json.RawMessage(`"context_big_0b8e1c5e-4a8f-4c39-9a55-2bd1f3e0b7a1"`), UserPrompt: json.RawMessage(`"hello"`)}
	for _, p := range []string{providerOpenAI, providerAnthropic, providerMistral, providerGemini} {
		b.Run("cold/"+p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = renderTools(tk, p)
			}
		})
		b.Run("cached/"+p, func(b *testing.B) {
			c := newRenderCache()
			c.get(tk, p)
			b.ReportAllocs()
			for b.Loop() {
				r := c.get(tk, p)
				frame := make([]byte, 0, len(r.head)+len(r.tools)+256)
				frame = append(frame, `{"type":"toolkit_context","request_id":`...)
				frame = append(frame, req.RequestID...)
				frame = append(frame, `,"payload":`...)
				frame = append(frame, r.head...)
				frame = append(frame, `,"user_prompt":`...)
				frame = append(frame, req.UserPrompt...)
				frame = append(frame, `,"tools":`...)
				frame = append(frame, r.tools...)
				_ = append(frame, `}}`...)
			}
		})
	}
}
