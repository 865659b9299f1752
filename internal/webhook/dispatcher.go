package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Defaults of zero Config fields.
const (
	DefaultQueueSize   = 1024
	DefaultWorkers     = 4
	DefaultMaxAttempts = 6
	DefaultBackoff     = 2 * time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultTimeout     = 10 * time.Second
)

// Hooks finds the webhooks an event goes to and opens their signing
// secrets; *toolkit.Service implements it.
type Hooks interface {
	WebhooksFor(ctx context.Context, keyID, event string) ([]*toolkit.Webhook, error)
	WebhookSecret(w *toolkit.Webhook) ([]byte, error)
}

// Config wires a Dispatcher. Hooks is required.
type Config struct {
	Hooks Hooks
	// Client sends the deliveries; cmd gives it httptool.NewTransport so
	// that the SSRF rule applies. Nil → a client without the guard (tests).
	Client *http.Client
	Logger *slog.Logger // nil discards
	// UserAgent of deliveries.
	UserAgent string

	QueueSize   int           // events and retries waiting for a worker
	Workers     int           // deliveries in parallel
	MaxAttempts int           // attempts per webhook and event, the first included
	Backoff     time.Duration // wait before the second attempt; doubles after each
	MaxBackoff  time.Duration // longest wait between attempts
	Timeout     time.Duration // one attempt, answer included
	Now         func() time.Time
}

// Dispatcher delivers events to webhooks in the background. It
// implements toolkit.EventPublisher. Safe for concurrent use.
type Dispatcher struct {
	cfg    Config
	hooks  Hooks
	client *http.Client
	logger *slog.Logger
	jobs   chan job

	// ctx bounds deliveries: cancelled when Close's context ends.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers

	mu      sync.Mutex
	closed  bool
	timers  map[*time.Timer]job // retries waiting for their time
	pending sync.WaitGroup      // retry timers not yet stopped or fired
	final   []job               // retries due when closing: one last attempt
}

var _ toolkit.EventPublisher = (*Dispatcher)(nil)

// job is one event, for every subscribed webhook of its key (hook nil),
// or for one webhook at its attempt-th attempt.
type job struct {
	ev      toolkit.Event
	hook    *toolkit.Webhook
	attempt int
}

// New starts a Dispatcher with its workers; Close stops them.
func New(cfg Config) *Dispatcher {
	if cfg.Hooks == nil {
		panic("webhook.New: Config.Hooks is required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "atp-server"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setInt(&cfg.QueueSize, DefaultQueueSize)
	setInt(&cfg.Workers, DefaultWorkers)
	setInt(&cfg.MaxAttempts, DefaultMaxAttempts)
	setDur(&cfg.Backoff, DefaultBackoff)
	setDur(&cfg.MaxBackoff, DefaultMaxBackoff)
	setDur(&cfg.Timeout, DefaultTimeout)
	// Deliveries must not follow redirects: a webhook URL is what the key
	// registered, and a redirect would carry the signed body elsewhere.
	client := *cfg.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg: cfg, hooks: cfg.Hooks, client: &client, logger: cfg.Logger,
		jobs: make(chan job, cfg.QueueSize), ctx: ctx, cancel: cancel,
		timers: map[*time.Timer]job{},
	}
	for range cfg.Workers {
		d.wg.Go(d.work)
	}
	return d
}

// Publish queues ev for the webhooks of its key. It never blocks: when
// the queue is full, or the Dispatcher is closed, the event is dropped
// and logged.
func (d *Dispatcher) Publish(ev toolkit.Event) {
	if ev.KeyID == "" {
		return
	}
	if !d.enqueue(job{ev: ev}) {
		d.logger.Warn("webhook event dropped: the delivery queue is full or closed", "event", ev.Type, "event_id", ev.ID)
	}
}

// enqueue puts j on the queue without waiting; false if it could not.
func (d *Dispatcher) enqueue(j job) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	select {
	case d.jobs <- j:
		return true
	default:
		return false
	}
}

func (d *Dispatcher) work() {
	for j := range d.jobs {
		d.run(j)
	}
}

// run delivers j: it first expands an event to its webhooks.
func (d *Dispatcher) run(j job) {
	if j.hook != nil {
		d.attempt(j)
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	hooks, err := d.hooks.WebhooksFor(ctx, j.ev.KeyID, j.ev.Type)
	cancel()
	if err != nil {
		d.logger.Error("finding the webhooks of an event", "event", j.ev.Type, "event_id", j.ev.ID, "err", err)
		return
	}
	for _, h := range hooks {
		d.attempt(job{ev: j.ev, hook: h, attempt: 1})
	}
}

// attempt makes one delivery attempt and schedules the next if it failed
// for a reason worth retrying.
func (d *Dispatcher) attempt(j job) {
	err := d.deliver(j)
	if err == nil {
		d.logger.Debug("webhook delivered", "event", j.ev.Type, "event_id", j.ev.ID, "webhook_id", j.hook.ID, "attempt", j.attempt)
		return
	}
	var perm *permanentError
	if errors.As(err, &perm) || j.attempt >= d.cfg.MaxAttempts {
		d.logger.Warn("webhook delivery failed for good", "event", j.ev.Type, "event_id", j.ev.ID,
			"webhook_id", j.hook.ID, "attempt", j.attempt, "err", err)
		return
	}
	d.logger.Info("webhook delivery failed; will retry", "event", j.ev.Type, "event_id", j.ev.ID,
		"webhook_id", j.hook.ID, "attempt", j.attempt, "err", err)
	next := job{ev: j.ev, hook: j.hook, attempt: j.attempt + 1}
	d.retryAfter(d.backoff(j.attempt), next)
}

// backoff is the wait after the attempt-th attempt: Backoff, doubling,
// at most MaxBackoff.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.cfg.Backoff
	for i := 1; i < attempt && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.MaxBackoff)
}

func (d *Dispatcher) retryAfter(wait time.Duration, j job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.final = append(d.final, j)
		return
	}
	d.pending.Add(1)
	var t *time.Timer
	t = time.AfterFunc(wait, func() {
		defer d.pending.Done()
		d.mu.Lock()
		delete(d.timers, t)
		if d.closed {
			d.final = append(d.final, j)
			d.mu.Unlock()
			return
		}
		select {
		case d.jobs <- j:
		default:
			d.logger.Warn("webhook retry dropped: the delivery queue is full", "event_id", j.ev.ID, "webhook_id", j.hook.ID)
		}
		d.mu.Unlock()
	})
	d.timers[t] = j
}

// permanentError is a delivery failure that retrying will not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// payload is the body of a delivery (admin-api.md §7).
type payload struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      data      `json:"data"`
}

type data struct {
	PlatformID     string  `json:"platform_id"`
	ExternalUserID string  `json:"external_user_id"`
	IntegrationID  *string `json:"integration_id"`
	Error          string  `json:"error,omitempty"`
}

// Body returns the JSON body of ev's delivery.
func Body(ev toolkit.Event) ([]byte, error) {
	p := payload{ID: ev.ID, Type: ev.Type, CreatedAt: ev.CreatedAt.UTC(), Data: data{
		PlatformID: ev.PlatformID, ExternalUserID: ev.ExternalUserID, Error: ev.Error,
	}}
	if ev.IntegrationID != "" {
		id := ev.IntegrationID
		p.Data.IntegrationID = &id
	}
	return json.Marshal(p)
}

// deliver POSTs j's event to its webhook once.
func (d *Dispatcher) deliver(j job) error {
	body, err := Body(j.ev)
	if err != nil {
		return &permanentError{err}
	}
	secret, err := d.hooks.WebhookSecret(j.hook)
	if err != nil {
		return &permanentError{err}
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.hook.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentError{errors.New("the webhook URL does not make a request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set(toolkit.WebhookSignatureHeader, toolkit.SignWebhook(secret, d.cfg.Now(), body))
	req.Header.Set("X-ATP-Event", j.ev.Type)
	req.Header.Set("X-ATP-Delivery", j.ev.ID)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("the webhook answered %d", s)
	default:
		return &permanentError{fmt.Errorf("the webhook answered %d", s)}
	}
}

// Close stops taking events, then delivers what is queued and gives every
// retry still waiting one last attempt, until ctx ends (in-flight
// deliveries are then cancelled). It returns ctx.Err() if ctx ended first.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for t, j := range d.timers {
		if t.Stop() {
			d.final = append(d.final, j)
			d.pending.Done()
		}
		delete(d.timers, t)
	}
	close(d.jobs)
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, d.cancel)
	defer stop()
	defer d.cancel()

	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		d.pending.Wait()
		d.mu.Lock()
		final := d.final
		d.final = nil
		d.mu.Unlock()
		for _, j := range final {
			if d.ctx.Err() != nil {
				break
			}
			if err := d.deliver(j); err != nil {
				d.logger.Warn("webhook delivery failed at shutdown", "event", j.ev.Type, "event_id", j.ev.ID,
					"webhook_id", j.hook.ID, "attempt", j.attempt, "err", err)
			}
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
