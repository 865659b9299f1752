package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// defaultCode calls one server tool, as workload (a) of the side-by-side
// benchmark (bench/monday/bench.mjs) does.
const defaultCode = "const r = await api.math.add({ a: 1, b: 2 });\nreturn r.sum;"

type options struct {
	base    string
	keys    []string
	workers int
	dur     time.Duration
	warmup  time.Duration
	max     int64
	code    string
	want    json.RawMessage
	timeout time.Duration
	asJSON  bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var keys, want string
	fs.StringVar(&o.base, "url", "", "base URL of the monday surface, on loopback (e.g. http://127.0.0.1:3333)")
	fs.StringVar(&keys, "key", "", "client API key(s), comma-separated; workers are spread over them (16 running executions per key at most)")
	fs.IntVar(&o.workers, "c", 32, "concurrent workers, each with its own session and one request in flight")
	fs.DurationVar(&o.dur, "d", 10*time.Second, "how long to measure (1s..10m)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long to run before measuring (0..1m)")
	fs.Int64Var(&o.max, "n", 1_000_000, "stop measuring after this many executions (1..10,000,000)")
	fs.StringVar(&o.code, "code", defaultCode, "the JavaScript each execution runs")
	fs.StringVar(&want, "want", "3", "the JSON result every execution must return")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of one request")
	fs.BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	u, err := url.Parse(o.base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://<loopback address>:<port>", o.base)
	}
	if !loopback(u.Hostname()) {
		return nil, fmt.Errorf("-url %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", o.base)
	}
	o.base = strings.TrimRight(o.base, "/")
	for k := range strings.SplitSeq(keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			o.keys = append(o.keys, k)
		}
	}
	if len(o.keys) == 0 {
		return nil, errors.New("-key is required")
	}
	switch {
	case o.workers < 1 || o.workers > 1024:
		return nil, fmt.Errorf("-c %d: want 1..1024", o.workers)
	case o.dur < time.Second || o.dur > 10*time.Minute:
		return nil, fmt.Errorf("-d %s: want 1s..10m", o.dur)
	case o.warmup < 0 || o.warmup > time.Minute:
		return nil, fmt.Errorf("-warmup %s: want 0..1m", o.warmup)
	case o.max < 1 || o.max > 10_000_000:
		return nil, fmt.Errorf("-n %d: want 1..10000000", o.max)
	case o.timeout <= 0:
		return nil, fmt.Errorf("-timeout %s: want > 0", o.timeout)
	}
	if !json.Valid([]byte(want)) {
		return nil, fmt.Errorf("-want %q: not JSON", want)
	}
	o.want = compact([]byte(want))
	return o, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	transport := &http.Transport{
		Proxy:               nil, // loopback only: never through HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        o.workers * 2,
		MaxIdleConnsPerHost: o.workers * 2,
		IdleConnTimeout:     time.Minute,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: o.timeout}

	body, err := json.Marshal(map[string]any{
		"code": o.code,
		// What the npm client sends when it has no providers.
		"config": map[string]any{"clientServices": map[string]bool{
			"hasLLM": false, "hasApproval": false, "hasEmbedding": false, "hasTools": false,
		}},
	})
	if err != nil {
		return err
	}

	workers := make([]*worker, o.workers)
	for i := range workers {
		w := &worker{o: o, client: client, body: body, key: o.keys[i%len(o.keys)]}
		if err := w.init(ctx); err != nil {
			return fmt.Errorf("worker %d: %w", i, err)
		}
		workers[i] = w
	}

	// One clock for all: phase 0 warm-up, 1 measuring, 2 done.
	var phase atomic.Int32
	var measured atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, &phase, &measured, o.max)
		}()
	}
	if o.warmup > 0 {
		select {
		case <-time.After(o.warmup):
		case <-ctx.Done():
		}
	}
	start := time.Now()
	phase.Store(1)
	timer := time.NewTimer(o.dur)
	tick := time.NewTicker(10 * time.Millisecond)
	for done := false; !done; {
		select {
		case <-timer.C:
			done = true
		case <-ctx.Done():
			done = true
		case <-tick.C:
			if measured.Load() >= o.max {
				done = true
			}
		}
	}
	tick.Stop()
	phase.Store(2)
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return report(stdout, o, workers, elapsed)
}

type worker struct {
	o      *options
	client *http.Client
	body   []byte
	key    string

	clientID, token string

	lat    []time.Duration // measured, successful or not
	ok     int64
	errs   map[string]int64
	sample string // the first error, for the report
}

func (w *worker) init(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.base+"/api/init",
		strings.NewReader(`{"clientInfo":{"name":"loadgen"},"tools":[],"services":{"hasLLM":false,"hasApproval":false,"hasEmbedding":false,"hasTools":false}}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", w.key)
	res, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST /api/init: %w", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /api/init: %s: %s", res.Status, b)
	}
	var s struct {
		ClientID string `json:"clientId"`
		Token    string `json:"token"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.ClientID == "" || s.Token == "" {
		return fmt.Errorf("POST /api/init: unexpected answer %s", b)
	}
	w.clientID, w.token = s.ClientID, s.Token
	w.errs = map[string]int64{}
	return nil
}

// loop runs executions until the phase is 2. An execution counts when it
// started while measuring, even if it ends after the measuring time: run
// waits for it, so that the rate's time covers every counted execution and
// no late error is hidden.
func (w *worker) loop(ctx context.Context, phase *atomic.Int32, measured *atomic.Int64, max int64) {
	for {
		p := phase.Load()
		if p == 2 || ctx.Err() != nil {
			return
		}
		if p == 1 && measured.Add(1) > max {
			return
		}
		t0 := time.Now()
		kind, detail := w.execute(ctx)
		if p == 1 {
			w.record(time.Since(t0), kind, detail)
		}
	}
}

func (w *worker) record(d time.Duration, kind, detail string) {
	w.lat = append(w.lat, d)
	if kind == "" {
		w.ok++
		return
	}
	w.errs[kind]++
	if w.sample == "" {
		w.sample = kind + ": " + detail
	}
}

// execute runs one POST /api/execute and classifies the answer: "" is a
// completed execution with the wanted result.
func (w *worker) execute(ctx context.Context) (kind, detail string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.base+"/api/execute", bytes.NewReader(w.body))
	if err != nil {
		return "request", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", w.key)
	req.Header.Set("X-Client-ID", w.clientID)
	req.Header.Set("Authorization", "Bearer "+w.token)
	res, err := w.client.Do(req)
	if err != nil {
		return "transport", err.Error()
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	res.Body.Close()
	if err != nil {
		return "transport", err.Error()
	}
	if t := res.Header.Get("X-ATP-Token"); t != "" {
		w.token = t // as the npm client does
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("http %d", res.StatusCode), string(truncate(b))
	}
	var r struct {
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "bad json", string(truncate(b))
	}
	if r.Status != "completed" {
		return "status " + r.Status, string(truncate(b))
	}
	if !bytes.Equal(compact(r.Result), w.o.want) {
		return "wrong result", string(truncate(b))
	}
	return "", ""
}

func truncate(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "…"...)
	}
	return b
}

type result struct {
	URL          string           `json:"url"`
	Workers      int              `json:"workers"`
	Keys         int              `json:"keys"`
	Seconds      float64          `json:"seconds"`
	Executions   int64            `json:"executions"`
	OK           int64            `json:"ok"`
	PerSecond    float64          `json:"executions_per_second"`
	P50ms        float64          `json:"p50_ms"`
	P90ms        float64          `json:"p90_ms"`
	P99ms        float64          `json:"p99_ms"`
	MaxMs        float64          `json:"max_ms"`
	Errors       map[string]int64 `json:"errors"`
	FirstError   string           `json:"first_error,omitempty"`
	WarmupSecond float64          `json:"warmup_seconds"`
}

func report(stdout io.Writer, o *options, workers []*worker, elapsed time.Duration) error {
	r := result{URL: o.base, Workers: o.workers, Keys: len(o.keys), Seconds: elapsed.Seconds(),
		Errors: map[string]int64{}, WarmupSecond: o.warmup.Seconds()}
	var lat []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
		r.OK += w.ok
		for k, n := range w.errs {
			r.Errors[k] += n
		}
		if r.FirstError == "" {
			r.FirstError = w.sample
		}
	}
	slices.Sort(lat)
	r.Executions = int64(len(lat))
	r.PerSecond = float64(r.OK) / elapsed.Seconds()
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := min(len(lat)-1, max(0, int(float64(len(lat))*p+0.999999)-1))
		return float64(lat[i].Microseconds()) / 1000
	}
	r.P50ms, r.P90ms, r.P99ms, r.MaxMs = q(0.50), q(0.90), q(0.99), q(1)
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "loadgen: %s, %d workers over %d keys, %.1fs (after %.1fs warm-up)\n",
		r.URL, r.Workers, r.Keys, r.Seconds, r.WarmupSecond)
	fmt.Fprintf(stdout, "  executions  %d (%d ok)\n", r.Executions, r.OK)
	fmt.Fprintf(stdout, "  rate        %.0f executions/s\n", r.PerSecond)
	fmt.Fprintf(stdout, "  latency     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	if len(r.Errors) == 0 {
		fmt.Fprintln(stdout, "  errors      0")
	} else {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(stdout, "  errors      %d %s\n", r.Errors[k], k)
		}
		fmt.Fprintf(stdout, "  first error %s\n", r.FirstError)
	}
	return nil
}
