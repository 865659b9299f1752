package toolkit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Webhook events (ChatATP names the first two; admin-api.md §7 fixes the
// delivery). connection_expired says that a connection needs the end user
// to connect again (its refresh was rejected).
const (
	EventConnectionSuccess = "connection_success"
	EventConnectionFailed  = "connection_failed"
	EventConnectionExpired = "connection_expired"
)

// WebhookEvents are the events a webhook may subscribe to.
var WebhookEvents = []string{EventConnectionSuccess, EventConnectionFailed, EventConnectionExpired}

// Event is something that happened to an end user's connection, for the
// webhooks of the client key that started it (KeyID).
type Event struct {
	ID             string
	Type           string // one of WebhookEvents
	CreatedAt      time.Time
	KeyID          string // whose webhooks hear of it; "" = nobody's
	PlatformID     string
	ExternalUserID string
	IntegrationID  string // the connection id; "" when none was made
	Error          string // connection_failed: the error code
}

// EventPublisher takes events for delivery. Publish must not block: the
// request that caused an event never waits for its webhooks.
type EventPublisher interface {
	Publish(ev Event)
}

// maxWebhooksPerKey bounds how many webhooks one key may register. The
// check is not atomic with the insert: concurrent registrations of one key
// may pass it by a few, which is harmless.
const maxWebhooksPerKey = 20

// WebhookSignatureHeader carries a delivery's signature.
const WebhookSignatureHeader = "X-ATP-Signature"

func invalidWebhook(format string, args ...any) *Error {
	return Errorf(KindInvalid, "invalid_webhook", format, args...)
}

// checkWebhookKey allows client keys (whose end users' connections the
// events are about) and admin keys.
func checkWebhookKey(key *APIKey) error {
	if key == nil || (key.Kind != KeyClient && key.Kind != KeyAdmin) {
		return Errorf(KindForbidden, "forbidden", "webhooks belong to client keys")
	}
	return nil
}

// CreateWebhook registers rawURL for events (none = connection_success, the
// SDK's default) on key and returns the webhook with its signing secret,
// which is shown once and kept sealed. Errors: KindForbidden for a toolkit
// key; KindInvalid for a URL that is not absolute http(s), an unknown
// event, or too many webhooks.
func (s *Service) CreateWebhook(ctx context.Context, key *APIKey, rawURL string, events []string) (*Webhook, string, error) {
	if err := checkWebhookKey(key); err != nil {
		return nil, "", err
	}
	if err := checkHTTPURL(rawURL); err != nil {
		return nil, "", invalidWebhook("url: %v", err)
	}
	if u, _ := url.Parse(rawURL); u.User != nil {
		return nil, "", invalidWebhook("url: credentials in the URL are not allowed")
	}
	if len(events) == 0 {
		events = []string{EventConnectionSuccess}
	}
	var evs []string
	for i, e := range events {
		if !slices.Contains(WebhookEvents, e) {
			return nil, "", invalidWebhook("events[%d]: %q is not one of %v", i, e, WebhookEvents)
		}
		if !slices.Contains(evs, e) {
			evs = append(evs, e)
		}
	}
	existing, err := s.store.ListWebhooks(ctx, key.ID)
	if err != nil {
		return nil, "", err
	}
	if len(existing) >= maxWebhooksPerKey {
		return nil, "", invalidWebhook("this key has %d webhooks, at most %d: delete one first", len(existing), maxWebhooksPerKey)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	secret := "whsec_" + base64.RawURLEncoding.EncodeToString(b)
	sealed, err := s.sealer.Seal([]byte(secret))
	if err != nil {
		return nil, "", Wrap(err, KindInternal, "internal", "could not encrypt the webhook secret")
	}
	w := &Webhook{ID: NewID("wh_"), KeyID: key.ID, URL: rawURL, Events: evs, SealedSecret: sealed, CreatedAt: s.now().UTC()}
	if err := s.store.CreateWebhook(ctx, w); err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

// ListWebhooks returns key's webhooks in creation order.
func (s *Service) ListWebhooks(ctx context.Context, key *APIKey) ([]*Webhook, error) {
	if err := checkWebhookKey(key); err != nil {
		return nil, err
	}
	return s.store.ListWebhooks(ctx, key.ID)
}

// DeleteWebhook removes key's webhook id; KindNotFound if key has none
// with that id.
func (s *Service) DeleteWebhook(ctx context.Context, key *APIKey, id string) error {
	if err := checkWebhookKey(key); err != nil {
		return err
	}
	return s.store.DeleteWebhook(ctx, key.ID, id)
}

// WebhooksFor returns the webhooks of keyID that subscribe to event, for
// the code that delivers events.
func (s *Service) WebhooksFor(ctx context.Context, keyID, event string) ([]*Webhook, error) {
	all, err := s.store.ListWebhooks(ctx, keyID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, w := range all {
		if slices.Contains(w.Events, event) {
			out = append(out, w)
		}
	}
	return out, nil
}

// WebhookSecret opens w's signing secret.
func (s *Service) WebhookSecret(w *Webhook) ([]byte, error) {
	b, err := s.sealer.Open(w.SealedSecret)
	if err != nil {
		return nil, Wrap(err, KindInternal, "internal", "could not read the webhook secret")
	}
	return b, nil
}

// SignWebhook returns the X-ATP-Signature value of a delivery of body at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}
