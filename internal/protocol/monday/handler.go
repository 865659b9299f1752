package monday

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/atp-server/atp-server/internal/execution"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 10 << 20 // the reference's 10 MB
	DefaultTokenTTL       = time.Hour
	DefaultSessionIdleTTL = time.Hour
	DefaultSessionMaxAge  = 24 * time.Hour
	// MinJWTSecretBytes is the shortest ATP_JWT_SECRET accepted (HS256
	// wants a key of at least its output size).
	MinJWTSecretBytes = 32
)

// Config wires the monday surface. Service, Sessions, Engine and
// JWTSecret are required; the rest has defaults.
type Config struct {
	Service  *toolkit.Service     // keys, toolkits, tool calls
	Sessions toolkit.SessionStore // where sessions live (*store.DB)
	Engine   *execution.Engine    // runs the code; the caller closes it

	// JWTSecret (ATP_JWT_SECRET, at least MinJWTSecretBytes) signs the
	// client tokens; every instance sharing a database needs the same one.
	JWTSecret []byte
	// AllowAnonymous (ATP_ALLOW_ANONYMOUS) lets clients init, discover and
	// execute without an API key; such a client sees every toolkit.
	AllowAnonymous bool

	// Prefix is the path the surface is mounted at: "" serves /api/init…,
	// "/atp" serves /atp/api/init… (the client's baseUrl then ends in
	// /atp). It must start with "/" and not end with one.
	Prefix string
	// Next serves requests outside the surface (another surface, such as
	// ChatATP's). Nil answers them with the JSON 404.
	Next http.Handler

	Logger       *slog.Logger // nil discards
	MaxBodyBytes int64        // not positive → DefaultMaxBodyBytes

	TokenTTL       time.Duration // lifetime of a client token; DefaultTokenTTL
	SessionIdleTTL time.Duration // a session unused this long expires; DefaultSessionIdleTTL
	SessionMaxAge  time.Duration // a session never outlives this; DefaultSessionMaxAge

	Now func() time.Time // nil: time.Now
}

// Handler serves the monday ATP surface (see routes.go). It is safe for
// concurrent use.
type Handler struct {
	svc            *toolkit.Service
	catalog        *toolkit.Catalog // the toolkits of a key, cached by version
	sessions       toolkit.SessionStore
	engine         *execution.Engine
	tokens         *tokenCodec // signs and checks client tokens
	allowAnonymous bool
	prefix         string
	next           http.Handler
	logger         *slog.Logger
	maxBody        int64
	tokenTTL       time.Duration
	sessionIdle    time.Duration
	sessionMaxAge  time.Duration
	now            func() time.Time
	limits         infoLimits
	defaults       infoDefaults
	table          []route

	sweepMu   sync.Mutex
	lastSweep time.Time
}

// NewHandler returns the monday surface. It fails on a configuration that
// cannot work: a missing dependency, a short JWT secret, a bad prefix.
func NewHandler(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Service == nil {
		errs = append(errs, errors.New("monday: Config.Service is required"))
	}
	if cfg.Sessions == nil {
		errs = append(errs, errors.New("monday: Config.Sessions is required"))
	}
	if cfg.Engine == nil {
		errs = append(errs, errors.New("monday: Config.Engine is required"))
	}
	if len(cfg.JWTSecret) < MinJWTSecretBytes {
		errs = append(errs, errors.New("monday: the JWT secret must be at least 32 bytes"))
	}
	if p := cfg.Prefix; p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#")) {
		errs = append(errs, errors.New(`monday: Config.Prefix must be empty or like "/atp"`))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	h := &Handler{
		svc:            cfg.Service,
		sessions:       cfg.Sessions,
		engine:         cfg.Engine,
		allowAnonymous: cfg.AllowAnonymous,
		prefix:         cfg.Prefix,
		next:           cfg.Next,
		logger:         cfg.Logger,
		maxBody:        cfg.MaxBodyBytes,
		tokenTTL:       positive(cfg.TokenTTL, DefaultTokenTTL),
		sessionIdle:    positive(cfg.SessionIdleTTL, DefaultSessionIdleTTL),
		sessionMaxAge:  positive(cfg.SessionMaxAge, DefaultSessionMaxAge),
		now:            cfg.Now,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.sessionMaxAge = max(h.sessionMaxAge, h.sessionIdle)
	h.catalog = h.svc.Catalog()
	h.tokens = newTokenCodec(append([]byte(nil), cfg.JWTSecret...), h.now)
	lim := cfg.Engine.Limits()
	h.limits = infoLimits{MaxTimeout: lim.MaxTimeout.Milliseconds(), MaxMemory: lim.MaxMemory, MaxLLMCalls: lim.MaxLLMCalls}
	h.defaults = infoDefaults{Timeout: lim.DefaultTimeout.Milliseconds(), Memory: lim.DefaultMemory, LLMCalls: lim.DefaultLLMCalls}
	h.table = h.routes()
	return h, nil
}

func positive(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
