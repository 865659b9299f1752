package chatatp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/remote"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// Defaults of zero Config fields.
const (
	DefaultMaxBodyBytes      = 10 << 20
	DefaultMaxMessageBytes   = 4 << 20
	DefaultCallTimeout       = 100 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultKeyCheckInterval  = 2 * time.Second
	DefaultKeepaliveInterval = 3 * time.Minute
	DefaultPingInterval      = 45 * time.Second
	DefaultPongTimeout       = 30 * time.Second
	DefaultInboxWait         = 25 * time.Second
	DefaultMaxInFlight       = 32
)

// Config wires a Handler. Service and Hub are required.
type Config struct {
	Service *toolkit.Service
	// Hub runs remote tools: the same Hub must be the Service's Runner for
	// executor kind "remote", so that calls reach the processes that
	// connect here.
	Hub *remote.Hub
	// OAuth serves the OAuth routes (oauth/confirmation, oauth/tokens);
	// nil → they answer 503.
	OAuth *oauth.Manager

	Logger *slog.Logger // nil discards

	// MaxBodyBytes caps HTTP request bodies (ATP_MAX_BODY_BYTES).
	MaxBodyBytes int64
	// MaxMessageBytes caps one WebSocket message; a larger one closes the
	// socket with 1009.
	MaxMessageBytes int64
	// CallTimeout bounds one task_request, whatever its tool's own
	// timeout: it must stay below the SDK's 120 s.
	CallTimeout time.Duration
	// WriteTimeout bounds each WebSocket write.
	WriteTimeout time.Duration
	// KeyCheckInterval is how often the keys of open sockets are checked
	// again (revocation closes them with 1008).
	KeyCheckInterval time.Duration
	// KeepaliveInterval is how often toolkit sockets get an
	// atp_client_connected frame (the SDK's idle watcher wants one within
	// 5 minutes).
	KeepaliveInterval time.Duration
	// PingInterval is how often the server pings a socket, to find peers
	// that are gone without a close (a dead TCP connection).
	PingInterval time.Duration
	// PongTimeout is how long a ping waits for its pong before the socket
	// is closed (1001).
	PongTimeout time.Duration
	// InboxWait is how long GET …/inbox holds an idle poll (below the SDK's
	// 30 s request timeout).
	InboxWait time.Duration
	// MaxInFlight bounds the requests one LLM socket has in progress; the
	// socket is not read further until one finishes.
	MaxInFlight int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&c.CallTimeout, DefaultCallTimeout)
	set(&c.WriteTimeout, DefaultWriteTimeout)
	set(&c.KeyCheckInterval, DefaultKeyCheckInterval)
	set(&c.KeepaliveInterval, DefaultKeepaliveInterval)
	set(&c.PingInterval, DefaultPingInterval)
	set(&c.PongTimeout, DefaultPongTimeout)
	set(&c.InboxWait, DefaultInboxWait)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

// Handler serves the ChatATP surface. It is an http.Handler; Shutdown (or
// Close) ends its WebSockets, which http.Server.Shutdown does not wait for.
type Handler struct {
	cfg     Config
	svc     *toolkit.Service
	hub     *remote.Hub
	oauth   *oauth.Manager
	catalog *toolkit.Catalog
	renders *renderCache
	logger  *slog.Logger

	// ctx is the parent of every connection's context; cancel ends them.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	conns    map[*wsConn]struct{}
	draining bool
	conning  sync.WaitGroup // connection goroutines (ServeHTTP of a WebSocket)
	working  sync.WaitGroup // requests in progress on sockets
	checker  chan struct{}  // closed when the key checker has stopped
}

// NewHandler returns the ChatATP handler. It starts the goroutine that
// checks the keys of open sockets; Shutdown or Close stops it. It panics
// if cfg.Service or cfg.Hub is nil (a wiring mistake the first test run
// finds).
func NewHandler(cfg Config) *Handler {
	if cfg.Service == nil || cfg.Hub == nil {
		panic("chatatp.NewHandler: Config.Service and Config.Hub are required")
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{
		cfg:     cfg,
		svc:     cfg.Service,
		hub:     cfg.Hub,
		oauth:   cfg.OAuth,
		catalog: cfg.Service.Catalog(),
		renders: newRenderCache(),
		logger:  cfg.Logger,
		ctx:     ctx,
		cancel:  cancel,
		conns:   map[*wsConn]struct{}{},
		checker: make(chan struct{}),
	}
	go h.checkKeys()
	return h
}

// Shutdown stops taking requests on open sockets, waits for those in
// progress (or ctx), then closes every socket with 1001 (going away), ends
// inbox long polls and waits for the sockets' goroutines (or ctx). It
// returns ctx.Err() if ctx ended first; the sockets are closed either way.
// Call it when the http.Server shuts down: Server.Shutdown does not wait
// for hijacked connections.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.stopTaking()
	err := waitFor(ctx, &h.working)
	if serr := h.stop(ctx); err == nil {
		err = serr
	}
	return err
}

// closeWait bounds how long Close waits for socket goroutines after it
// closed their sockets (a close handshake waits at most 5 s for the peer).
const closeWait = 10 * time.Second

// Close is Shutdown without waiting for requests in progress: their
// sockets close at once and their calls are cancelled.
func (h *Handler) Close() error {
	h.stopTaking()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	return h.stop(ctx)
}

func (h *Handler) stopTaking() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
}

func (h *Handler) stop(ctx context.Context) error {
	h.closeAll(websocket.StatusGoingAway, "server shutting down")
	h.cancel()
	<-h.checker
	return waitFor(ctx, &h.conning)
}

func waitFor(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track registers a connection; false when the Handler is shutting down.
// The count it adds (conning) is released by untrack.
func (h *Handler) track(c *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining || h.ctx.Err() != nil {
		return false
	}
	h.conns[c] = struct{}{}
	h.conning.Add(1)
	return true
}

func (h *Handler) untrack(c *wsConn) {
	h.mu.Lock()
	_, ok := h.conns[c]
	delete(h.conns, c)
	h.mu.Unlock()
	if ok {
		h.conning.Done()
	}
}

// startWork counts a request in progress on a socket; false once the
// Handler drains.
func (h *Handler) startWork() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return false
	}
	h.working.Add(1)
	return true
}

func (h *Handler) closeAll(code websocket.StatusCode, reason string) {
	h.mu.Lock()
	conns := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeWith(code, reason)
	}
}

// checkKeys closes the sockets of keys that stopped being live, every
// KeyCheckInterval, until the Handler shuts down. It asks the database, so
// a key revoked through any instance sharing it is seen.
func (h *Handler) checkKeys() {
	defer close(h.checker)
	t := time.NewTicker(h.cfg.KeyCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		byKey := map[string][]*wsConn{}
		h.mu.Lock()
		for c := range h.conns {
			byKey[c.key.ID] = append(byKey[c.key.ID], c)
		}
		h.mu.Unlock()
		for id, conns := range byKey {
			ctx, cancel := context.WithTimeout(h.ctx, h.cfg.KeyCheckInterval)
			_, err := h.svc.LiveAPIKey(ctx, id)
			cancel()
			switch {
			case toolkit.KindOf(err) == toolkit.KindUnauthenticated:
				h.logger.Info("closing the sockets of a revoked key", "key_id", id, "sockets", len(conns))
				for _, c := range conns {
					c.closeWith(websocket.StatusPolicyViolation, "API key revoked")
				}
			case err != nil && h.ctx.Err() == nil:
				h.logger.Warn("checking the key of open sockets", "key_id", id, "err", err)
			}
		}
	}
}
