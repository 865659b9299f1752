package chatatp_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/store/storetest"
)

// A revoked key's open sockets close with 1008 within a few seconds (here,
// one KeyCheckInterval), and a new upgrade with it gets 401.
func TestRevokedKeyClosesSockets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) { o.cfg.KeyCheckInterval = 20 * time.Millisecond })
	s := dialLLM(t, e.srv.URL, e.client)
	other := dialLLM(t, e.srv.URL, e.scoped)
	p := dialToolkit(t, e)

	if err := e.svc.RevokeAPIKey(t.Context(), e.keyIDs["client"]); err != nil {
		t.Fatal(err)
	}
	if code := s.closed(); code != websocket.StatusPolicyViolation {
		t.Fatalf("closed with %v, want 1008", code)
	}
	if _, resp, err := tryDialLLM(t, e.srv.URL, e.client); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("upgrade with a revoked key: %v %v, want 401", err, resp)
	}
	// Other keys' sockets are untouched.
	other.send(taskFrame(e.scoped, "math", "still", "add", pyObj{{"a", 1}, {"b", 1}}, nil))
	wantToolResult(t, other.wait(py("still")), "add")

	if err := e.svc.RevokeAPIKey(t.Context(), e.keyIDs["tk"]); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if code := websocket.CloseStatus(p.err); code != websocket.StatusPolicyViolation {
		t.Errorf("toolkit socket closed with %v, want 1008", code)
	}
	res, _ := getSDK(t, e.srv.URL+"/api/v1/toolkit/"+e.tkKey+"/inbox", "")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("inbox with a revoked key: %d", res.StatusCode)
	}
}

// Two instances share one PostgreSQL: a key revoked through one closes its
// sockets on the other.
func TestRevocationAcrossInstances(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	fast := func(o *options) { o.cfg.KeyCheckInterval = 20 * time.Millisecond }
	a := newEnv(t, fast, func(o *options) { o.store = storetest.OpenPostgresURL(t, url) })
	b := newEnv(t, fast, func(o *options) { o.store = storetest.OpenPostgresURL(t, url); o.peer = a })
	s := dialLLM(t, b.srv.URL, b.client)
	s.send(taskFrame(b.client, "math", "before", "add", pyObj{{"a", 1}, {"b", 1}}, nil))
	wantToolResult(t, s.wait(py("before")), "add")

	if err := a.svc.RevokeAPIKey(t.Context(), a.keyIDs["client"]); err != nil {
		t.Fatal(err)
	}
	if code := s.closed(); code != websocket.StatusPolicyViolation {
		t.Fatalf("socket on the other instance closed with %v, want 1008", code)
	}
}

// Shutdown lets a request in progress finish, then closes sockets with
// 1001; a new upgrade is refused.
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	p := dialToolkit(t, e)
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "inflight", "now", pyObj{{"city", "X"}}, nil))
	req := payloadOf(t, p.nextRequest())

	shut := make(chan error, 1)
	go func() { shut <- e.h.Shutdown(context.Background()) }()
	// The in-flight call is answered before the sockets go.
	p.respond(req.RequestID, "done")
	if res := wantToolResult(t, s.wait(py("inflight")), "now"); res != "done" {
		t.Errorf("in-flight result %v", res)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if code := s.closed(); code != websocket.StatusGoingAway {
		t.Errorf("closed with %v, want 1001", code)
	}
	if _, resp, err := tryDialLLM(t, e.srv.URL, e.client); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upgrade after shutdown: %v %v", err, resp)
	}
}

// A socket whose request slots are all busy is not read (backpressure);
// the pinger must not take the unread pongs for a dead peer. Time passes
// here by counting the toolkit's keepalives: 60 of them span three pong
// timeouts.
func TestBusySocketSurvivesPings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *options) {
		o.cfg.PingInterval = 5 * time.Millisecond
		o.cfg.PongTimeout = 100 * time.Millisecond
		o.cfg.KeepaliveInterval = 5 * time.Millisecond
		o.cfg.MaxInFlight = 1
	})
	registerSDKTool(t, e, "now", []string{"city"}, "def now(city):\n    return {}\n")
	p := dialToolkit(t, e)
	s := dialLLM(t, e.srv.URL, e.client)
	s.send(taskFrame(e.client, "weather", "held", "now", pyObj{{"city", "X"}}, nil))
	var req toolRequest
	keepalives := 0
	for keepalives < 60 || req.RequestID == "" {
		f := p.next()
		switch field(t, f, "message_type") {
		case "atp_tool_request":
			req = payloadOf(t, f)
			s.send(taskFrame(e.client, "math", "queued", "add", pyObj{{"a", 1}, {"b", 1}}, nil)) // waits for the slot
		case "atp_client_connected":
			keepalives++
		}
	}
	p.respond(req.RequestID, "ok")
	wantToolResult(t, s.wait(py("held")), "now")
	wantToolResult(t, s.wait(py("queued")), "add")
}
