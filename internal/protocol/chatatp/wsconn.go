package chatatp

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// wsConn is one accepted WebSocket: its key, its context (a child of the
// Handler's, cancelled when the socket ends) and its serialised writer.
type wsConn struct {
	h   *Handler
	c   *websocket.Conn
	key *toolkit.APIKey

	ctx    context.Context
	cancel context.CancelFunc

	writeMu   sync.Mutex // one writer at a time, so frames never interleave
	closeOnce sync.Once
	// stalled is set while the read loop waits for a free request slot:
	// nothing reads the pong then, so the pinger must not judge the peer.
	stalled atomic.Bool
}

// accept upgrades r for key and tracks the socket. On failure it has
// answered already (the upgrade's own error, or 503 while shutting down).
func (h *Handler) accept(w http.ResponseWriter, r *http.Request, key *toolkit.APIKey) (*wsConn, bool) {
	h.mu.Lock()
	draining := h.draining
	h.mu.Unlock()
	if draining {
		h.writeError(w, r, toolkit.Errorf(toolkit.KindUnavailable, "unavailable", "the server is shutting down"))
		return nil, false
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The SDK (websocket-client) sends its default Origin, which need
		// not match Host; keys, not cookies, authenticate, so any Origin
		// is safe to accept.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		h.logger.DebugContext(r.Context(), "websocket upgrade failed", "err", err)
		return nil, false
	}
	c.SetReadLimit(h.cfg.MaxMessageBytes)
	ctx, cancel := context.WithCancel(h.ctx)
	conn := &wsConn{h: h, c: c, key: key, ctx: ctx, cancel: cancel}
	if !h.track(conn) {
		cancel()
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
		return nil, false
	}
	go conn.pinger()
	return conn, true
}

// done ends the socket's life: untracked, context cancelled, closed
// (normally, unless closeWith chose another status first).
func (c *wsConn) done() {
	c.h.untrack(c)
	c.cancel()
	c.closeWith(websocket.StatusNormalClosure, "")
}

// closeWith closes the socket once with code; the close handshake runs in
// the background (it may wait seconds for the peer), and the read loop
// then ends.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		go func() { _ = c.c.Close(code, reason) }()
	})
}

// write sends one text frame within WriteTimeout. A write that times out
// closes the socket (the library does), as a stuck peer must not hold the
// writer.
func (c *wsConn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.h.cfg.WriteTimeout)
	defer cancel()
	return c.c.Write(ctx, websocket.MessageText, b)
}

// read returns the next message. Its context is not the socket's: a
// cancelled read context makes the library drop the connection without a
// close frame, while closeWith sends one and then ends the read.
func (c *wsConn) read() (websocket.MessageType, []byte, error) {
	return c.c.Read(context.WithoutCancel(c.ctx))
}

// pinger pings the peer every PingInterval and closes a socket whose peer
// does not answer within PongTimeout (a dead TCP connection is otherwise
// seen only when a write fails). Pongs are read by the read loop.
func (c *wsConn) pinger() {
	t := time.NewTicker(c.h.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.stalled.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.h.cfg.PongTimeout)
		err := c.c.Ping(ctx)
		cancel()
		if err != nil && c.ctx.Err() == nil && !c.stalled.Load() {
			c.h.logger.Debug("websocket peer did not answer a ping", "key_id", c.key.ID, "err", err)
			c.closeWith(websocket.StatusGoingAway, "ping timeout")
			return
		}
	}
}

// closedNormally reports whether a read error is the end of the socket
// rather than a fault worth logging.
func closedNormally(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return true
	}
	return errors.Is(err, context.Canceled)
}
