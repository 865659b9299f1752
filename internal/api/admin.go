package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// ---- toolkits (admin-api.md §4) ----

// toolkitView is the admin answer for a toolkit. It is built from a copy
// with every write-only secret cleared, so no code path can send one even
// if a caller forgets to clear it (the Service does too).
func toolkitView(tk *toolkit.Toolkit) *toolkit.Toolkit {
	out := *tk
	out.Tools = make([]toolkit.Tool, len(tk.Tools))
	for i, t := range tk.Tools {
		if t.Executor.Auth != nil {
			a := *t.Executor.Auth
			a.Secret, a.SealedSecret = "", ""
			t.Executor.Auth = &a
		}
		out.Tools[i] = t
	}
	return &out
}

// decodeToolkit reads a toolkit body. revision, created_at and updated_at
// are read-only: they are accepted (so a toolkit fetched with GET can be
// sent back with PUT) and ignored.
func (s *server) decodeToolkit(r *http.Request) (*toolkit.Toolkit, error) {
	var tk toolkit.Toolkit
	if err := s.decode(r, &tk); err != nil {
		return nil, err
	}
	tk.Revision, tk.CreatedAt, tk.UpdatedAt = 0, time.Time{}, time.Time{}
	return &tk, nil
}

func (s *server) createToolkit(w http.ResponseWriter, r *http.Request) error {
	tk, err := s.decodeToolkit(r)
	if err != nil {
		return err
	}
	tk, err = s.svc.CreateToolkit(r.Context(), tk)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/toolkits/"+url.PathEscape(tk.ID))
	s.writeJSON(w, r, http.StatusCreated, toolkitView(tk))
	return nil
}

func (s *server) putToolkit(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	tk, err := s.decodeToolkit(r)
	if err != nil {
		return err
	}
	if tk.ID != "" && tk.ID != id {
		return invalidf("id: %q differs from the id in the path (%q); leave it out or make them equal", tk.ID, id)
	}
	tk.ID = id
	tk, created, err := s.svc.PutToolkit(r.Context(), tk)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/admin/v1/toolkits/"+url.PathEscape(tk.ID))
	}
	s.writeJSON(w, r, status, toolkitView(tk))
	return nil
}

func (s *server) listToolkits(w http.ResponseWriter, r *http.Request) error {
	tks, err := s.svc.ListToolkits(r.Context())
	if err != nil {
		return err
	}
	out := make([]*toolkit.Toolkit, len(tks))
	for i, tk := range tks {
		out[i] = toolkitView(tk)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"toolkits": out})
	return nil
}

func (s *server) getToolkit(w http.ResponseWriter, r *http.Request) error {
	tk, err := s.svc.FindToolkit(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, toolkitView(tk))
	return nil
}

func (s *server) deleteToolkit(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteToolkit(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- API keys (admin-api.md §5) ----

// apiKeyView is a key in listings: never its secret or hash. Absent values
// are null rather than missing, so every item has the same fields.
type apiKeyView struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Kind              string     `json:"kind"`
	Toolkits          []string   `json:"toolkits"`
	ToolkitID         *string    `json:"toolkit_id"`
	OAuthRedirectURLs []string   `json:"oauth_redirect_urls"`
	Prefix            string     `json:"prefix"`
	CreatedAt         time.Time  `json:"created_at"`
	LastUsedAt        *time.Time `json:"last_used_at"`
	RevokedAt         *time.Time `json:"revoked_at"`
}

// createdAPIKeyView is the answer to creating a key: the only time its
// secret (Key) is ever shown.
type createdAPIKeyView struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Kind              string    `json:"kind"`
	Toolkits          []string  `json:"toolkits"`
	ToolkitID         *string   `json:"toolkit_id"`
	OAuthRedirectURLs []string  `json:"oauth_redirect_urls"`
	Key               string    `json:"key"`
	Prefix            string    `json:"prefix"`
	CreatedAt         time.Time `json:"created_at"`
}

func newAPIKeyView(k *toolkit.APIKey) apiKeyView {
	return apiKeyView{
		ID:                k.ID,
		Name:              k.Name,
		Kind:              k.Kind,
		Toolkits:          nonNil(k.Toolkits),
		ToolkitID:         nullable(k.ToolkitID),
		OAuthRedirectURLs: nonNil(k.OAuthRedirectURLs),
		Prefix:            k.Prefix,
		CreatedAt:         k.CreatedAt,
		LastUsedAt:        k.LastUsedAt,
		RevokedAt:         k.RevokedAt,
	}
}

func (s *server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req toolkit.NewAPIKey
	if err := s.decode(r, &req); err != nil {
		return err
	}
	k, secret, err := s.svc.CreateAPIKey(r.Context(), req)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, createdAPIKeyView{
		ID:                k.ID,
		Name:              k.Name,
		Kind:              k.Kind,
		Toolkits:          nonNil(k.Toolkits),
		ToolkitID:         nullable(k.ToolkitID),
		OAuthRedirectURLs: nonNil(k.OAuthRedirectURLs),
		Key:               secret,
		Prefix:            k.Prefix,
		CreatedAt:         k.CreatedAt,
	})
	return nil
}

func (s *server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.svc.ListAPIKeys(r.Context())
	if err != nil {
		return err
	}
	out := make([]apiKeyView, len(keys))
	for i, k := range keys {
		out[i] = newAPIKeyView(k)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"api_keys": out})
	return nil
}

// deleteAPIKey revokes the key; from the next request on it authenticates
// nothing (Service.Authenticate reads the store every time).
func (s *server) deleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RevokeAPIKey(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- OAuth platforms (admin-api.md §6) ----

// platformView is a platform as the admin API shows it: every setting but
// the client secret, with defaults spelled out.
type platformView struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	AuthURL            string            `json:"auth_url"`
	TokenURL           string            `json:"token_url"`
	ClientID           string            `json:"client_id"`
	Scopes             []string          `json:"scopes"`
	AuthParams         map[string]string `json:"auth_params"`
	PKCE               bool              `json:"pkce"`
	TokenAuthStyle     string            `json:"token_auth_style"`
	UserinfoURL        *string           `json:"userinfo_url"`
	ExposeRefreshToken bool              `json:"expose_refresh_token"`
	CreatedAt          time.Time         `json:"created_at"`
	UpdatedAt          time.Time         `json:"updated_at"`
}

func newPlatformView(p *toolkit.Platform) platformView {
	params := p.AuthParams
	if params == nil {
		params = map[string]string{}
	}
	style := p.TokenAuthStyle
	if style == "" {
		style = "auto"
	}
	return platformView{
		ID:                 p.ID,
		Name:               p.Name,
		AuthURL:            p.AuthURL,
		TokenURL:           p.TokenURL,
		ClientID:           p.ClientID,
		Scopes:             nonNil(p.Scopes),
		AuthParams:         params,
		PKCE:               p.UsesPKCE(),
		TokenAuthStyle:     style,
		UserinfoURL:        nullable(p.UserinfoURL),
		ExposeRefreshToken: p.ExposeRefreshToken,
		CreatedAt:          p.CreatedAt,
		UpdatedAt:          p.UpdatedAt,
	}
}

// decodePlatform reads a platform body; created_at and updated_at are
// read-only, accepted and ignored as for toolkits.
func (s *server) decodePlatform(r *http.Request) (*toolkit.Platform, error) {
	var p toolkit.Platform
	if err := s.decode(r, &p); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = time.Time{}, time.Time{}
	return &p, nil
}

func (s *server) createPlatform(w http.ResponseWriter, r *http.Request) error {
	p, err := s.decodePlatform(r)
	if err != nil {
		return err
	}
	p, err = s.svc.CreatePlatform(r.Context(), p)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/platforms/"+url.PathEscape(p.ID))
	s.writeJSON(w, r, http.StatusCreated, newPlatformView(p))
	return nil
}

func (s *server) putPlatform(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	p, err := s.decodePlatform(r)
	if err != nil {
		return err
	}
	if p.ID != "" && p.ID != id {
		return invalidf("id: %q differs from the id in the path (%q); leave it out or make them equal", p.ID, id)
	}
	p.ID = id
	p, created, err := s.svc.PutPlatform(r.Context(), p)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/admin/v1/platforms/"+url.PathEscape(p.ID))
	}
	s.writeJSON(w, r, status, newPlatformView(p))
	return nil
}

func (s *server) listPlatforms(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.svc.ListPlatforms(r.Context())
	if err != nil {
		return err
	}
	out := make([]platformView, len(ps))
	for i, p := range ps {
		out[i] = newPlatformView(p)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"platforms": out})
	return nil
}

func (s *server) getPlatform(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.FindPlatform(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newPlatformView(p))
	return nil
}

func (s *server) deletePlatform(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeletePlatform(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- OAuth connections (admin-api.md §6) ----

// connectionView is a connection without its tokens; scopes is the granted
// space-separated scope split into a list.
type connectionView struct {
	ID                string     `json:"id"`
	Platform          string     `json:"platform"`
	ExternalUserID    string     `json:"external_user_id"`
	ExternalUserEmail *string    `json:"external_user_email"`
	ClientKeyID       *string    `json:"client_key_id"`
	Status            string     `json:"status"`
	Scopes            []string   `json:"scopes"`
	ExpiresAt         *time.Time `json:"expires_at"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func (s *server) listConnections(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	conns, err := s.svc.ListConnections(r.Context(), toolkit.ConnectionFilter{
		PlatformID:     q.Get("platform"),
		ExternalUserID: q.Get("external_user_id"),
		ClientKeyID:    q.Get("client_key_id"),
	})
	if err != nil {
		return err
	}
	out := make([]connectionView, len(conns))
	for i, c := range conns {
		out[i] = connectionView{
			ID:                c.ID,
			Platform:          c.PlatformID,
			ExternalUserID:    c.ExternalUserID,
			ExternalUserEmail: nullable(c.ExternalUserEmail),
			ClientKeyID:       nullable(c.ClientKeyID),
			Status:            c.Status,
			Scopes:            nonNil(strings.Fields(c.Scope)),
			ExpiresAt:         c.ExpiresAt,
			CreatedAt:         c.CreatedAt,
			UpdatedAt:         c.UpdatedAt,
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"connections": out})
	return nil
}

func (s *server) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteConnection(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// nonNil makes an absent list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// nullable makes an empty string encode as null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
