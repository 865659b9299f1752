package chatatp

import (
	"context"
	"net/http"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Frames the server sends on an LLM socket besides answers.
var (
	frameAuthOK       = []byte(`{"type":"auth_response","success":true}`)
	frameAuthMismatch = []byte(`{"type":"auth_response","success":false,"error":"api_key differs from the key in the URL"}`)
	frameBinary       = []byte(`{"type":"error","request_id":null,"error":"binary frames are not supported: send JSON text frames","code":"invalid_request"}`)
)

// authenticate checks the key of a socket before the upgrade, so that a
// wrong or revoked key gets 401 (the SDK then backs off) rather than a
// socket that closes at once and is reopened in a tight loop.
func (h *Handler) authenticate(ctx context.Context, secret string) (*toolkit.APIKey, error) {
	return h.svc.Authenticate(ctx, secret)
}

// serveLLMSocket serves GET …/ws/v1/atp/llm-client/{api_key}/: it sends
// auth_response at once (and again for each auth frame), then answers
// get_toolkit_context and task_request frames, several at a time, each
// with its request_id; replies may come in any order.
func (h *Handler) serveLLMSocket(w http.ResponseWriter, r *http.Request, secret string) error {
	key, err := h.authenticate(r.Context(), secret)
	if err != nil {
		return err
	}
	if err := checkLLMKey(key); err != nil {
		return err
	}
	conn, ok := h.accept(w, r, key)
	if !ok {
		return nil
	}
	defer conn.done()
	// Sent before the client asks: the SDK waits 10 s for it after its auth
	// frame, and reads it whenever it comes.
	if err := conn.write(frameAuthOK); err != nil {
		return nil
	}
	slots := make(chan struct{}, h.cfg.MaxInFlight)
	for {
		typ, data, err := conn.read()
		if err != nil {
			if !closedNormally(err) && conn.ctx.Err() == nil {
				h.logger.Debug("llm socket ended", "key_id", key.ID, "err", err)
			}
			return nil
		}
		if typ != websocket.MessageText {
			_ = conn.write(frameBinary)
			continue
		}
		req, err := decodeLLMRequest(data)
		if err != nil {
			rep := h.faultReply(conn.ctx, &llmRequest{}, err)
			_ = conn.write(rep.body)
			continue
		}
		t, _ := str(req.Type)
		if t == typeAuth {
			if checkFrameKey(key, req.APIKey) != nil {
				_ = conn.write(frameAuthMismatch)
				conn.closeWith(websocket.StatusPolicyViolation, "api_key mismatch")
				continue
			}
			_ = conn.write(frameAuthOK)
			continue
		}
		if err := checkFrameKey(key, req.APIKey); err != nil {
			_ = conn.write(h.faultReply(conn.ctx, req, err).body)
			continue
		}
		if !h.startWork() {
			err := toolkit.Errorf(toolkit.KindUnavailable, "unavailable", "the server is shutting down: reconnect and send the request again")
			_ = conn.write(h.faultReply(conn.ctx, req, err).body)
			continue
		}
		// A full set of slots stops the reading: the client waits rather
		// than the server queueing without bound.
		select {
		case slots <- struct{}{}:
		default:
			conn.stalled.Store(true)
			slots <- struct{}{}
			conn.stalled.Store(false)
		}
		go func() {
			defer h.working.Done()
			defer func() { <-slots }()
			rep := h.serveLLM(conn.ctx, key, req)
			if err := conn.write(rep.body); err != nil {
				h.logger.Debug("writing an llm answer failed", "key_id", key.ID, "err", err)
			}
		}()
	}
}
