package api

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// ---- the end-user OAuth flow: the provider's callback (HTML) ----

// callbackPage is the small page the callback shows when there is no
// developer URL to go back to, or when the link was bad. Everything in it
// is escaped by html/template; it carries no token, code or state.
var callbackPage = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Code}}<p><small>Error code: <code>{{.Code}}</code></small></p>{{end}}</body></html>
`))

type pageData struct {
	Title, Message, Code string
}

// oauthCallback serves GET /oauth/callback, where providers send the end
// user back. A bad state is a 400 page; otherwise the browser goes to the
// developer's URL with status=success|error, or sees a page.
func (s *server) oauthCallback(w http.ResponseWriter, r *http.Request) error {
	if s.oauth == nil {
		s.writePage(w, http.StatusServiceUnavailable, pageData{Title: "OAuth is not set up", Message: "This server does not run the OAuth flow."})
		return nil
	}
	res, err := s.oauth.Callback(r.Context(), r.URL.Query())
	if err != nil {
		status, code, message := classify(err)
		s.logger.Log(r.Context(), levelFor(status), "oauth callback failed", "request_id", RequestID(r.Context()),
			"status", status, "code", code, "err", err)
		if status >= 500 {
			message = "Something went wrong on the server while connecting your account. Please try again."
		}
		s.writePage(w, status, pageData{Title: "This link cannot be used", Message: message})
		return nil
	}
	if res.RedirectURL != "" {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, res.RedirectURL, http.StatusFound)
		return nil
	}
	if res.Connected {
		s.writePage(w, http.StatusOK, pageData{Title: "Connected",
			Message: "Your " + res.PlatformName + " account is connected. You can close this window."})
		return nil
	}
	s.writePage(w, http.StatusBadRequest, pageData{Title: "Not connected",
		Message: "Your " + res.PlatformName + " account was not connected. You can close this window and try again.",
		Code:    res.ErrorCode})
	return nil
}

func (s *server) writePage(w http.ResponseWriter, status int, d pageData) {
	var b bytes.Buffer
	if err := callbackPage.Execute(&b, d); err != nil {
		s.logger.Error("rendering the callback page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// ---- the native OAuth API (/v1/oauth/…) ----

// errNoOAuth answers the OAuth routes of a server built without a Manager.
var errNoOAuth = toolkit.Errorf(toolkit.KindUnavailable, "oauth_unavailable", "this server does not run the OAuth flow")

// pathParam returns a path parameter, percent-decoded: chi matches on the
// raw path when it has escapes (a user id may hold "/" as %2F), and then
// hands the raw segment.
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}

type connectRequest struct {
	ExternalUserID       string `json:"external_user_id"`
	DeveloperRedirectURL string `json:"developer_redirect_url"`
}

// oauthConnect serves POST /v1/oauth/{platform_id}/connect: the
// authorization URL to send the end user to.
func (s *server) oauthConnect(w http.ResponseWriter, r *http.Request) error {
	if s.oauth == nil {
		return errNoOAuth
	}
	var req connectRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	a, err := s.oauth.Authorize(r.Context(), keyFrom(r.Context()), pathParam(r, "platform"), req.ExternalUserID, req.DeveloperRedirectURL)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, a)
	return nil
}

// connectionStatus is a connection as the native API shows it: no tokens.
type connectionStatus struct {
	IntegrationID     string     `json:"integration_id"`
	PlatformID        string     `json:"platform_id"`
	ExternalUserID    string     `json:"external_user_id"`
	ExternalUserEmail *string    `json:"external_user_email"`
	Status            string     `json:"status"`
	Scope             string     `json:"scope"`
	ExpiresAt         *time.Time `json:"expires_at"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func (s *server) oauthStatus(w http.ResponseWriter, r *http.Request) error {
	if s.oauth == nil {
		return errNoOAuth
	}
	c, err := s.oauth.Status(r.Context(), keyFrom(r.Context()), pathParam(r, "platform"), pathParam(r, "user"))
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, connectionStatus{
		IntegrationID: c.ID, PlatformID: c.PlatformID, ExternalUserID: c.ExternalUserID,
		ExternalUserEmail: nullable(c.ExternalUserEmail), Status: c.Status, Scope: c.Scope,
		ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	})
	return nil
}

func (s *server) oauthTokens(w http.ResponseWriter, r *http.Request) error {
	if s.oauth == nil {
		return errNoOAuth
	}
	t, err := s.oauth.Tokens(r.Context(), keyFrom(r.Context()), pathParam(r, "platform"), pathParam(r, "user"))
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, t)
	return nil
}

func (s *server) oauthDisconnect(w http.ResponseWriter, r *http.Request) error {
	if s.oauth == nil {
		return errNoOAuth
	}
	if err := s.oauth.Disconnect(r.Context(), keyFrom(r.Context()), pathParam(r, "platform"), pathParam(r, "user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
