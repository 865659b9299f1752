package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/httptool"
	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
	"github.com/atp-server/atp-server/internal/webhook"
)

// delivery is what the receiver saw of one request.
type delivery struct {
	body      []byte
	signature string
	event     string
	status    int
}

// receiver is a webhook endpoint. answer decides the status of the n-th
// request (from 1); it may block.
type receiver struct {
	*httptest.Server
	got   chan delivery
	calls atomic.Int64
}

func newReceiver(tb testing.TB, answer func(n int64) int) *receiver {
	tb.Helper()
	rc := &receiver{got: make(chan delivery, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rc.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		status := answer(n)
		rc.got <- delivery{body: b, signature: r.Header.Get(toolkit.WebhookSignatureHeader), event: r.Header.Get("X-ATP-Event"), status: status}
		w.WriteHeader(status)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) next(tb testing.TB) delivery {
	tb.Helper()
	select {
	case d := <-rc.got:
		return d
	case <-time.After(10 * time.Second):
		tb.Fatal("no delivery arrived")
		return delivery{}
	}
}

// setup makes a client key with a webhook at url for events, on a real
// store, and returns the Service (the Dispatcher's Hooks), the key and
// the webhook's signing secret.
func setup(tb testing.TB, url string, events ...string) (*toolkit.Service, *toolkit.APIKey, string) {
	tb.Helper()
	c, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		tb.Fatal(err)
	}
	svc := toolkit.NewService(toolkit.Config{Store: storetest.OpenSQLite(tb), Sealer: c})
	key, _, err := svc.CreateAPIKey(tb.Context(), toolkit.NewAPIKey{Name: "app", Kind: toolkit.KeyClient})
	if err != nil {
		tb.Fatal(err)
	}
	_, secret, err := svc.CreateWebhook(tb.Context(), key, url, events)
	if err != nil {
		tb.Fatal(err)
	}
	return svc, key, secret
}

func event(key *toolkit.APIKey, typ string) toolkit.Event {
	return toolkit.Event{
		ID: toolkit.NewID("evt_"), Type: typ, CreatedAt: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), KeyID: key.ID,
		PlatformID: "acme", ExternalUserID: "ada@example.com", IntegrationID: "conn_1",
	}
}

func closeDispatcher(tb testing.TB, d *webhook.Dispatcher) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
}

// TestDeliverySigned: the body has the contract's shape, the signature
// verifies with the webhook's secret, and only subscribed events go out.
func TestDeliverySigned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int64) int { return http.StatusNoContent })
	svc, key, secret := setup(t, rc.URL+"/hook", toolkit.EventConnectionSuccess, toolkit.EventConnectionExpired)
	now := time.Date(2026, 5, 1, 10, 0, 5, 0, time.UTC)
	d := webhook.New(webhook.Config{Hooks: svc, Now: func() time.Time { return now }})
	closeDispatcher(t, d)

	d.Publish(event(key, toolkit.EventConnectionFailed)) // not subscribed
	ev := event(key, toolkit.EventConnectionSuccess)
	d.Publish(ev)
	got := rc.next(t)
	if got.event != toolkit.EventConnectionSuccess {
		t.Fatalf("first delivery is %s, want only the subscribed event", got.event)
	}
	var body struct {
		ID        string    `json:"id"`
		Type      string    `json:"type"`
		CreatedAt time.Time `json:"created_at"`
		Data      struct {
			PlatformID     string  `json:"platform_id"`
			ExternalUserID string  `json:"external_user_id"`
			IntegrationID  *string `json:"integration_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != ev.ID || body.Type != ev.Type || !body.CreatedAt.Equal(ev.CreatedAt) || body.Data.PlatformID != "acme" ||
		body.Data.ExternalUserID != "ada@example.com" || body.Data.IntegrationID == nil || *body.Data.IntegrationID != "conn_1" {
		t.Errorf("body %s", got.body)
	}
	if want := toolkit.SignWebhook([]byte(secret), now, got.body); got.signature != want {
		t.Errorf("X-ATP-Signature %q, want %q", got.signature, want)
	}
	if !strings.HasPrefix(got.signature, "t="+strconv.FormatInt(now.Unix(), 10)+",v1=") {
		t.Errorf("signature %q, want t=<unix>,v1=<hex>", got.signature)
	}
	// An event of a key without webhooks, or of no key, goes nowhere.
	d.Publish(toolkit.Event{ID: "evt_x", Type: toolkit.EventConnectionSuccess, KeyID: "key_other"})
	d.Publish(toolkit.Event{ID: "evt_y", Type: toolkit.EventConnectionSuccess})
	d.Publish(event(key, toolkit.EventConnectionExpired))
	if got := rc.next(t); got.event != toolkit.EventConnectionExpired {
		t.Errorf("delivery %s, want connection_expired", got.event)
	}
}

// TestRetries: 503 and 429 are retried with backoff until a 2xx; a 400 is
// final.
func TestRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int64) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return http.StatusTooManyRequests
		case 3:
			return http.StatusOK
		}
		return http.StatusBadRequest
	})
	svc, key, _ := setup(t, rc.URL, toolkit.EventConnectionSuccess)
	d := webhook.New(webhook.Config{Hooks: svc, Backoff: 5 * time.Millisecond, MaxAttempts: 5})
	closeDispatcher(t, d)
	d.Publish(event(key, toolkit.EventConnectionSuccess))
	var statuses []int
	for range 3 {
		statuses = append(statuses, rc.next(t).status)
	}
	if statuses[2] != http.StatusOK {
		t.Errorf("statuses %v, want 503, 429, 200", statuses)
	}
	// A 400 is not retried: one request, then nothing (checked after a
	// second event that is delivered behind it).
	d.Publish(event(key, toolkit.EventConnectionSuccess))
	if got := rc.next(t); got.status != http.StatusBadRequest {
		t.Fatalf("status %d", got.status)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rc.calls.Load(); n != 4 {
		t.Errorf("%d requests, want 4 (a 400 is final)", n)
	}
}

// TestPublishNeverBlocks: with the only worker stuck on a slow webhook and
// the queue full, Publish still returns at once (the event is dropped).
func TestPublishNeverBlocks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(int64) int { <-release; return http.StatusOK })
	svc, key, _ := setup(t, rc.URL, toolkit.EventConnectionSuccess)
	d := webhook.New(webhook.Config{Hooks: svc, Workers: 1, QueueSize: 2})
	d.Publish(event(key, toolkit.EventConnectionSuccess))
	done := make(chan struct{})
	go func() {
		for range 100 {
			d.Publish(event(key, toolkit.EventConnectionSuccess))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked behind a slow webhook")
	}
	close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rc.calls.Load(); n < 1 || n > 3 {
		t.Errorf("%d deliveries, want the one in flight plus at most the 2 queued", n)
	}
}

// TestCloseDrains: a retry waiting for its (long) backoff gets one last
// attempt at Close, and Close returns once it is done.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int64) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	svc, key, _ := setup(t, rc.URL, toolkit.EventConnectionSuccess)
	d := webhook.New(webhook.Config{Hooks: svc, Backoff: time.Hour})
	d.Publish(event(key, toolkit.EventConnectionSuccess))
	if got := rc.next(t); got.status != http.StatusBadGateway {
		t.Fatalf("first attempt %d", got.status)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-rc.got:
		if got.status != http.StatusOK {
			t.Errorf("last attempt %d", got.status)
		}
	default:
		t.Error("Close returned without the retry's last attempt")
	}
	d.Publish(event(key, toolkit.EventConnectionSuccess)) // after Close: dropped, no panic
}

// TestSSRFGuard: through the guarded transport, a webhook on a loopback
// address is never called unless private addresses are allowed.
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		rc := newReceiver(t, func(int64) int { return http.StatusOK })
		svc, key, _ := setup(t, rc.URL, toolkit.EventConnectionSuccess)
		d := webhook.New(webhook.Config{Hooks: svc, MaxAttempts: 1,
			Client: &http.Client{Transport: httptool.NewTransport(allow)}})
		d.Publish(event(key, toolkit.EventConnectionSuccess))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if got := rc.calls.Load(); (got == 1) != allow {
			t.Errorf("ATP_HTTP_ALLOW_PRIVATE=%v: %d deliveries to loopback", allow, got)
		}
	}
}
