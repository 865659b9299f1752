package chatatp

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// sseKeepalive is how often a running call's event stream gets a comment
// line, so that proxies do not cut an idle stream (the SDK ignores lines
// that do not start with "data: ").
const sseKeepalive = 15 * time.Second

// headerKey reads the key of an "Authorization: ApiKey <key>" header (the
// SDK since 0.2.2) or "Bearer <key>" (0.1.8–0.2.1). present is false
// without the header.
func headerKey(r *http.Request) (key string, present bool, err error) {
	v := r.Header.Get("Authorization")
	if v == "" {
		return "", false, nil
	}
	scheme, key, _ := strings.Cut(strings.TrimSpace(v), " ")
	key = strings.TrimSpace(key)
	if (!strings.EqualFold(scheme, "ApiKey") && !strings.EqualFold(scheme, "Bearer")) || key == "" {
		return "", true, toolkit.Errorf(toolkit.KindUnauthenticated, "unauthenticated",
			`Authorization: expected "ApiKey <key>" or "Bearer <key>"`)
	}
	return key, true, nil
}

// requestKey authenticates an HTTP request by its Authorization header
// and/or the api_key of its body; two different keys are refused (acting
// with the wrong one could use the wrong authority).
func (h *Handler) requestKey(r *http.Request, bodyKey json.RawMessage) (*toolkit.APIKey, error) {
	secret, present, err := headerKey(r)
	if err != nil {
		return nil, err
	}
	if !isNull(bodyKey) {
		s, ok := str(bodyKey)
		if !ok {
			return nil, invalidf("api_key: must be a string")
		}
		if present && s != secret {
			return nil, toolkit.Errorf(toolkit.KindUnauthenticated, "unauthenticated",
				"the Authorization header and the body's api_key carry different keys; send one")
		}
		secret = s
	}
	return h.svc.Authenticate(r.Context(), secret)
}

// llmKey authenticates an LLM client request.
func (h *Handler) llmKey(r *http.Request, bodyKey json.RawMessage) (*toolkit.APIKey, error) {
	key, err := h.requestKey(r, bodyKey)
	if err != nil {
		return nil, err
	}
	return key, checkLLMKey(key)
}

// wantsEventStream reports whether the request asks for server-sent events.
func wantsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// process serves POST …/llm-client/process/: get_toolkit_context and
// task_request, as JSON or, when the request accepts text/event-stream, as
// server-sent events (one complete JSON object per "data:" line, no
// terminator line).
func (h *Handler) process(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	req, err := decodeLLMRequest(body)
	if err != nil {
		return err
	}
	ctx := r.Context()
	key, err := h.llmKey(r, req.APIKey)
	if err != nil {
		h.writeReply(w, h.faultReply(ctx, req, err))
		return nil
	}
	sse := wantsEventStream(r)
	typ, _ := str(req.Type)
	if typ != typeTask {
		rep := h.serveLLM(ctx, key, req)
		if sse && rep.status == http.StatusOK {
			h.streamReply(w, r, func(context.Context) llmReply { return rep })
			return nil
		}
		h.writeReply(w, rep)
		return nil
	}
	job, fault := h.prepareTask(ctx, key, req)
	switch {
	case job == nil && (!sse || fault.status != http.StatusOK):
		h.writeReply(w, fault)
	case job == nil:
		h.streamReply(w, r, func(context.Context) llmReply { return fault })
	case sse:
		h.streamReply(w, r, job.run)
	default:
		h.writeReply(w, job.run(ctx))
	}
	return nil
}

func (h *Handler) writeReply(w http.ResponseWriter, rep llmReply) {
	if rep.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	}
	h.writeRaw(w, rep.status, rep.body)
}

// streamReply answers as an event stream: comment lines while run works,
// then its reply as one data line.
func (h *Handler) streamReply(w http.ResponseWriter, r *http.Request, run func(context.Context) llmReply) {
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	flush()

	done := make(chan llmReply, 1)
	go func() { done <- run(r.Context()) }()
	t := time.NewTicker(sseKeepalive)
	defer t.Stop()
	for {
		select {
		case rep := <-done:
			_, _ = w.Write([]byte("data: "))
			_, _ = w.Write(rep.body)
			_, _ = w.Write([]byte("\n\n"))
			flush()
			return
		case <-t.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err == nil {
				flush()
			}
		}
	}
}
