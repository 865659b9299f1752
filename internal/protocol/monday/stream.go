package monday

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// POST /api/execute/stream (§3.9): the execute of §3.7 answered as
// server-sent events. Each atp.progress.report becomes an event
// `progress` {message, fraction}; the ExecutionResult ends the stream as
// `result`; a failure after the stream started is `error` {message}. A
// paused result is returned as it is (the client does not auto-resume a
// stream). Request faults found before the first byte (auth, body,
// config) are ordinary JSON errors.

const (
	// sseQueue bounds progress events waiting for a slow reader; past it
	// they are dropped (the result is never dropped).
	sseQueue = 256
	// sseWriteTimeout bounds each write, so a reader that stops reading
	// cannot hold the handler.
	sseWriteTimeout = 30 * time.Second
	// sseKeepAlive is how often a comment line goes out while nothing
	// happens, so that proxies do not time the stream out.
	sseKeepAlive = 15 * time.Second
)

type sseEvent struct {
	name string
	data any
}

type progressData struct {
	Message  string  `json:"message"`
	Fraction float64 `json:"fraction"`
}

type errorData struct {
	Message string `json:"message"`
}

// sseStream writes events in order from one goroutine; progress events
// are queued by the execution's goroutine, which must never block.
type sseStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu     sync.Mutex
	closed bool
	queue  chan sseEvent
	done   chan struct{}
	failed error // the first write error; later writes are skipped
}

func newSSEStream(w http.ResponseWriter) *sseStream {
	s := &sseStream{w: w, rc: http.NewResponseController(w), queue: make(chan sseEvent, sseQueue), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *sseStream) run() {
	defer close(s.done)
	tick := time.NewTicker(sseKeepAlive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-s.queue:
			if !ok {
				return
			}
			s.write(ev)
		case <-tick.C:
			s.writeRaw([]byte(": keep-alive\n\n"))
		}
	}
}

// progress queues a progress event; it is dropped when the queue is full
// or the stream has ended (a later resume may still report).
func (s *sseStream) progress(message string, fraction float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.queue <- sseEvent{name: "progress", data: progressData{Message: message, Fraction: fraction}}:
	default:
	}
}

// finish writes the last event after every queued one and ends the stream.
func (s *sseStream) finish(last sseEvent) error {
	s.mu.Lock()
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	<-s.done
	s.write(last)
	return s.failed
}

func (s *sseStream) write(ev sseEvent) {
	b, err := json.Marshal(ev.data)
	if err != nil {
		b, _ = json.Marshal(errorData{Message: "Internal server error"})
		ev.name = "error"
	}
	// The client reads an event line and its data line from one chunk, so
	// they go out in one write.
	s.writeRaw([]byte(fmt.Sprintf("event: %s\ndata: %s\n\n", ev.name, b)))
}

func (s *sseStream) writeRaw(b []byte) {
	if s.failed != nil {
		return
	}
	if err := s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.failed = err
		return
	}
	if _, err := s.w.Write(b); err != nil {
		s.failed = err
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.failed = err
	}
}

// executeStream answers POST /api/execute/stream.
func (h *Handler) executeStream(w http.ResponseWriter, r *http.Request) error {
	p, err := h.prepare(w, r)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := newSSEStream(w)
	p.req.OnProgress = s.progress

	ctx := r.Context()
	res, err := h.engine.Execute(ctx, p.req)
	last := sseEvent{name: "result", data: res}
	switch {
	case err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The client went away; the engine canceled the execution.
		last = sseEvent{name: "error", data: errorData{Message: "the request was canceled"}}
	case err != nil:
		status, message := classify(err)
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelError
		}
		h.logger.Log(ctx, level, "monday stream failed", "request_id", requestID(w), "status", status, "err", err)
		last = sseEvent{name: "error", data: errorData{Message: message}}
	}
	if werr := s.finish(last); werr != nil {
		h.logger.DebugContext(ctx, "monday stream: the client stopped reading", "request_id", requestID(w), "err", werr)
	}
	return nil
}
