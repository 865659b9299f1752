package api

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// BenchmarkNativeCallJS measures one POST /v1/toolkits/{id}/tools/{name}/call
// of a js tool over loopback HTTP: key lookup, toolkit load, argument
// validation, the sandbox run and the JSON answer, on each engine.
func BenchmarkNativeCallJS(b *testing.B) {
	for _, eng := range engines {
		b.Run(eng.name, func(b *testing.B) {
			srv, key := benchServer(b, eng.open)
			body := []byte(`{"arguments":{"a":2,"b":3}}`)
			url := srv.URL + "/v1/toolkits/math/tools/add/call"
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					res, err := srv.Client().Do(req)
					if err != nil {
						b.Fatal(err)
					}
					out, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`{"result":{"sum":5}}`)) {
						b.Fatalf("%d %s", res.StatusCode, out)
					}
				}
			})
		})
	}
}

func benchServer(b *testing.B, open func(testing.TB) *store.DB) (*httptest.Server, string) {
	db := open(b)
	sealer, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	svc := toolkit.NewService(toolkit.Config{
		Store:   db,
		Sealer:  sealer,
		Runners: map[string]toolkit.Runner{toolkit.ExecutorJS: toolkit.NewJSRunner(toolkit.JSOptions{Timeout: 10 * time.Second})},
		Logger:  logger,
	})
	ctx := b.Context()
	_, err = svc.CreateToolkit(ctx, &toolkit.Toolkit{
		ID: "math", Name: "Math",
		Tools: []toolkit.Tool{{
			Name: "add", Description: "Add two numbers",
			InputSchema: []byte(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`),
			Executor:    toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return {sum: input.a + input.b};"},
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	_, key, err := svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "bench", Kind: toolkit.KeyClient})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(Config{Service: svc, Logger: logger, Registry: prometheus.NewRegistry()}))
	b.Cleanup(srv.Close)
	return srv, key
}
