package chatatp

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/remote"
)

// toolkitFrame is what a toolkit process sends: {"type":"tool_response",
// "request_id", "result"} (and app_response, which this server does not
// ask for).
type toolkitFrame struct {
	Type      string          `json:"type"`
	RequestID string          `json:"request_id"`
	Result    json.RawMessage `json:"result"`
}

// connectedFrame is an atp_client_connected frame with message.
func connectedFrame(message string) []byte {
	b, _ := json.Marshal(map[string]any{ // a map of strings always marshals
		"message_type": "atp_client_connected",
		"payload":      map[string]string{"message": message},
	})
	return b
}

// toolkitWorker delivers calls to one toolkit socket.
type toolkitWorker struct{ conn *wsConn }

// Deliver sends {"message_type":"atp_tool_request","payload":req}.
func (t toolkitWorker) Deliver(_ context.Context, req *remote.Request) error {
	b, err := json.Marshal(struct {
		MessageType string          `json:"message_type"`
		Payload     *remote.Request `json:"payload"`
	}{"atp_tool_request", req})
	if err != nil {
		return err
	}
	return t.conn.write(b)
}

// serveToolkitSocket serves GET …/ws/v1/atp/toolkit-client/{api_key}/: the
// process is attached to the Hub for its key's toolkit, receives
// atp_tool_request frames and answers with tool_response frames. It gets
// atp_client_connected on connect and every KeepaliveInterval.
func (h *Handler) serveToolkitSocket(w http.ResponseWriter, r *http.Request, secret string) error {
	key, err := h.pathKey(r, secret)
	if err != nil {
		return err
	}
	conn, ok := h.accept(w, r, key)
	if !ok {
		return nil
	}
	defer conn.done()
	tkID := key.ToolkitID
	if err := conn.write(connectedFrame("Connected to atp-server: this process serves toolkit " + quote(tkID) + ".")); err != nil {
		return nil
	}
	detach := h.hub.Attach(tkID, toolkitWorker{conn})
	defer detach()
	go h.keepalive(conn)

	for {
		typ, data, err := conn.read()
		if err != nil {
			if !closedNormally(err) && conn.ctx.Err() == nil {
				h.logger.Debug("toolkit socket ended", "toolkit", tkID, "err", err)
			}
			return nil
		}
		if typ != websocket.MessageText {
			continue
		}
		var f toolkitFrame
		if err := json.Unmarshal(data, &f); err != nil {
			h.logger.Debug("toolkit sent a frame that is not a JSON object", "toolkit", tkID)
			continue
		}
		switch f.Type {
		case "tool_response":
			if err := h.hub.Resolve(tkID, f.RequestID, f.Result); err != nil {
				h.logger.Debug("toolkit answered no waiting call", "toolkit", tkID, "err", err)
			}
		default:
			h.logger.Debug("toolkit sent a frame of an unknown type", "toolkit", tkID, "type", f.Type)
		}
	}
}

// keepalive sends atp_client_connected every KeepaliveInterval: the SDK
// counts only application frames as activity.
func (h *Handler) keepalive(conn *wsConn) {
	t := time.NewTicker(h.cfg.KeepaliveInterval)
	defer t.Stop()
	frame := connectedFrame("keepalive")
	for {
		select {
		case <-conn.ctx.Done():
			return
		case <-t.C:
			if err := conn.write(frame); err != nil {
				return
			}
		}
	}
}
