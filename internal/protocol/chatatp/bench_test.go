package chatatp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// The benchmarks below report latency percentiles (p50-µs, p99-µs) of one
// request/answer round trip over a loopback WebSocket, at 1 and 32 requests
// in flight (one socket per client, as one LLMClient per conversation).
// BenchmarkWSEcho is the transport alone: the same client against a server
// that echoes every frame, so the server's added latency is the
// difference. BenchmarkRunJS is the js tool's own run time through
// toolkit.Service.Run (sandbox, argument validation), without any
// transport.

var concurrencies = []int{1, 32}

// rawClient is a bare WebSocket client: send a frame, read the next one.
type rawClient struct {
	c *websocket.Conn
}

func dialRaw(b *testing.B, url string) *rawClient {
	b.Helper()
	c, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	b.Cleanup(func() { _ = c.CloseNow() })
	return &rawClient{c: c}
}

func (r *rawClient) roundTrip(frame []byte) ([]byte, error) {
	ctx := context.Background()
	if err := r.c.Write(ctx, websocket.MessageText, frame); err != nil {
		return nil, err
	}
	_, data, err := r.c.Read(ctx)
	return data, err
}

// measure runs b.N round trips spread over c clients and reports the
// percentiles of their latencies.
func measure(b *testing.B, clients []*rawClient, frame func(i int) []byte, check func([]byte) error) {
	b.Helper()
	c := len(clients)
	lat := make([][]time.Duration, c)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += c {
				f := frame(i)
				start := time.Now()
				out, err := clients[w].roundTrip(f)
				lat[w] = append(lat[w], time.Since(start))
				if err == nil {
					err = check(out)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

func llmClients(b *testing.B, e *env, n int) []*rawClient {
	out := make([]*rawClient, n)
	for i := range out {
		out[i] = dialRaw(b, wsURL(e.srv.URL)+"/ws/v1/atp/llm-client/"+e.client+"/")
		if _, err := out[i].roundTrip([]byte(py(pyObj{{"type", "auth"}, {"api_key", e.client}}))); err != nil {
			b.Fatal(err)
		}
		// Two auth_responses: one on connect, one for the auth frame.
		if _, _, err := out[i].c.Read(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

func quiet(o *options) { o.cfg.KeyCheckInterval = time.Minute }

// BenchmarkTaskJS: task_request → task_response for the js tool add.
func BenchmarkTaskJS(b *testing.B) {
	for _, c := range concurrencies {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) {
			e := newEnv(b, quiet)
			want := []byte(`"result":{"sum":5}`)
			measure(b, llmClients(b, e, c), func(i int) []byte {
				return []byte(taskFrame(e.client, "math", "task_math_0_"+strconv.Itoa(i), "add", pyObj{{"a", 2}, {"b", 3}}, nil))
			}, func(out []byte) error {
				if !bytes.Contains(out, want) {
					return fmt.Errorf("answer %s", out)
				}
				return nil
			})
		})
	}
}

// BenchmarkTaskRemote: task_request → atp_tool_request to a connected
// toolkit process (which answers at once) → tool_response → task_response.
func BenchmarkTaskRemote(b *testing.B) {
	for _, c := range concurrencies {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) {
			e := newEnv(b, quiet)
			registerSDKTool(b, e, "echo", []string{"n"}, "def echo(n: int):\n    return n\n")
			proc := dialRaw(b, wsURL(e.srv.URL)+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/")
			if _, _, err := proc.c.Read(context.Background()); err != nil { // atp_client_connected
				b.Fatal(err)
			}
			go func() {
				for {
					_, data, err := proc.c.Read(context.Background())
					if err != nil {
						return
					}
					var f struct {
						Payload struct {
							RequestID string          `json:"request_id"`
							Params    json.RawMessage `json:"params"`
						} `json:"payload"`
					}
					if json.Unmarshal(data, &f) != nil || f.Payload.RequestID == "" {
						continue
					}
					out := `{"type": "tool_response", "request_id": "` + f.Payload.RequestID + `", "result": ` + string(f.Payload.Params) + `}`
					if proc.c.Write(context.Background(), websocket.MessageText, []byte(out)) != nil {
						return
					}
				}
			}()
			measure(b, llmClients(b, e, c), func(i int) []byte {
				return []byte(taskFrame(e.client, "weather", "task_weather_0_"+strconv.Itoa(i), "echo", pyObj{{"n", i}}, nil))
			}, func(out []byte) error {
				if !bytes.Contains(out, []byte(`"status":"success","result":{"tool":{"name":"echo","result":{"n":`)) {
					return fmt.Errorf("answer %s", out)
				}
				return nil
			})
		})
	}
}

// BenchmarkWSEcho is the transport baseline: the same client and library
// against a server that writes back every frame it reads.
func BenchmarkWSEcho(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, data) != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	frame := []byte(taskFrame("atp_cli_x", "math", "task_math_0_x", "add", pyObj{{"a", 2}, {"b", 3}}, nil))
	for _, c := range concurrencies {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) {
			clients := make([]*rawClient, c)
			for i := range clients {
				clients[i] = dialRaw(b, wsURL(srv.URL))
			}
			measure(b, clients, func(int) []byte { return frame }, func([]byte) error { return nil })
		})
	}
}

// BenchmarkRunJS is the js tool's own cost: Service.Run with the toolkit
// already loaded (validation, sandbox, result).
func BenchmarkRunJS(b *testing.B) {
	e := newEnv(b, quiet)
	tk, err := e.svc.FindToolkit(context.Background(), "math")
	if err != nil {
		b.Fatal(err)
	}
	tool, _ := tk.Tool("add")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, err := e.svc.Run(context.Background(), &toolkit.Call{Toolkit: tk, Tool: tool, Arguments: json.RawMessage(`{"a":2,"b":3}`)})
		if err != nil || string(out) != `{"sum":5}` {
			b.Fatalf("%s %v", out, err)
		}
	}
}

// BenchmarkContext1000Tools: get_toolkit_context of a 1000-tool toolkit
// over WebSocket, cached after the first (per toolkit version and
// provider). See also BenchmarkRenderContext in the package's own tests.
func BenchmarkContext1000Tools(b *testing.B) {
	e := newEnv(b, quiet)
	tk := bigToolkit(1000)
	if _, err := e.svc.CreateToolkit(context.Background(), tk); err != nil {
		b.Fatal(err)
	}
	for _, provider := range []string{"openai", "anthropic", "gemini"} {
		b.Run(provider, func(b *testing.B) {
			clients := llmClients(b, e, 1)
			measure(b, clients, func(i int) []byte {
				return []byte(contextFrame(e.client, "big", "context_big_"+strconv.Itoa(i), provider, "hi"))
			}, func(out []byte) error {
				if len(out) < 100_000 {
					return fmt.Errorf("short answer %.200s", out)
				}
				return nil
			})
		})
	}
}

func bigToolkit(n int) *toolkit.Toolkit {
	tk := &toolkit.Toolkit{ID: "big", Name: "Big", Description: "A thousand tools"}
	for i := range n {
		tk.Tools = append(tk.Tools, toolkit.Tool{
			Name: fmt.Sprintf("tool_%04d", i), Description: "Tool number " + strconv.Itoa(i) + ", which does one thing well.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"What to look for"},` +
				`"limit":{"type":"integer","minimum":1,"maximum":100},"tags":{"type":"array","items":{"type":"string"}}},"required":["query"]}`),
			Executor: toolkit.Executor{Kind: toolkit.ExecutorRemote},
		})
	}
	return tk
}
