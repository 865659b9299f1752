package toolkit

import (
	"encoding/json"
	"time"
)

// Toolkit is a named set of tools. Its ID is the ChatATP toolkit id and the
// monday API group name (api.<id>.<tool>).
//
// OwnerKeyID is the toolkit key whose first ChatATP registration created the
// toolkit; it is empty for toolkits an admin created. The store sets it on
// create only: a replace keeps the stored owner whatever tk says.
type Toolkit struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Instructions string    `json:"instructions,omitempty"`
	Tools        []Tool    `json:"tools"`
	Revision     int64     `json:"revision"`
	OwnerKeyID   string    `json:"owner_key_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ToolkitSummary is a toolkit without its tools: what listings and
// revision checks need, read without loading every tool schema.
type ToolkitSummary struct {
	ID           string
	Name         string
	Description  string
	Instructions string
	ToolCount    int
	Revision     int64
	OwnerKeyID   string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Version identifies one state of a toolkit: Revision alone repeats when a
// toolkit is deleted and created again, UpdatedAt does not.
type Version struct {
	Revision  int64
	UpdatedAt time.Time
}

// Version returns the version of tk.
func (tk *Toolkit) Version() Version { return Version{Revision: tk.Revision, UpdatedAt: tk.UpdatedAt} }

// Version returns the version of the summarised toolkit.
func (s *ToolkitSummary) Version() Version {
	return Version{Revision: s.Revision, UpdatedAt: s.UpdatedAt}
}

// RemoteTool records who registered a remote tool and with which code: the
// ChatATP ToolKitClient sends a hash of each function's source, and
// verify_tool_hash compares against it.
type RemoteTool struct {
	ToolkitID string
	Name      string
	KeyID     string // the toolkit key that registered it last
	CodeHash  string
	UpdatedAt time.Time
}

// RemoteRegistration is the last toolkit hash a toolkit key registered for
// a toolkit (ChatATP verify_hash compares against it).
type RemoteRegistration struct {
	ToolkitID   string
	KeyID       string
	ToolkitHash string
	UpdatedAt   time.Time
}

// Webhook is an endpoint a client key registered to be told about events
// (ChatATP connection_success, connection_failed). The signing secret is
// sealed: the server must read it back to sign deliveries.
type Webhook struct {
	ID           string    `json:"id"`
	KeyID        string    `json:"-"`
	URL          string    `json:"url"`
	Events       []string  `json:"events"`
	SealedSecret string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Tool finds a tool by name.
func (tk *Toolkit) Tool(name string) (*Tool, bool) {
	for i := range tk.Tools {
		if tk.Tools[i].Name == name {
			return &tk.Tools[i], true
		}
	}
	return nil, false
}

// Tool is one callable function with a JSON Schema for its arguments.
type Tool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Annotations  *Annotations    `json:"annotations,omitempty"`
	Executor     Executor        `json:"executor"`
}

// Annotations describe a tool's risk; the monday sandbox asks for approval
// before it runs a destructive, sensitive or requires-approval tool.
type Annotations struct {
	OperationType    string `json:"operation_type,omitempty"` // read|write|destructive
	Sensitivity      string `json:"sensitivity,omitempty"`    // public|internal|sensitive
	RequiresApproval bool   `json:"requires_approval,omitempty"`
}

// NeedsApproval reports whether a call from sandbox code must be approved first.
func (a *Annotations) NeedsApproval() bool {
	return a != nil && (a.RequiresApproval || a.OperationType == "destructive" || a.Sensitivity == "sensitive")
}

// Executor kinds.
const (
	ExecutorJS     = "js"
	ExecutorHTTP   = "http"
	ExecutorRemote = "remote"
)

// Executor says how a tool runs. Which fields apply depends on Kind.
type Executor struct {
	Kind string `json:"kind"`

	// js
	Code string `json:"code,omitempty"`

	// http
	Method    string            `json:"method,omitempty"`
	URL       string            `json:"url,omitempty"`
	Query     []string          `json:"query,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      string            `json:"body,omitempty"` // "input" or empty
	Auth      *HTTPAuth         `json:"auth,omitempty"`
	TimeoutMS int               `json:"timeout_ms,omitempty"` // js and http; 0 = the server default
}

// HTTP auth types.
const (
	AuthOAuth2 = "oauth2"
	AuthBearer = "bearer"
	AuthHeader = "header"
)

// HTTPAuth is the credential an http tool sends.
//
// Secret is write-only: it arrives in admin requests, is sealed (encrypted) by
// the Service before it reaches the store, and is never returned. SealedSecret
// is what the store keeps.
type HTTPAuth struct {
	Type         string `json:"type"`
	Platform     string `json:"platform,omitempty"` // oauth2
	Name         string `json:"name,omitempty"`     // header
	Secret       string `json:"secret,omitempty"`   // bearer, header; input only
	SealedSecret string `json:"-"`
}

// Key kinds.
const (
	KeyAdmin   = "admin"
	KeyClient  = "client"
	KeyToolkit = "toolkit"
)

// APIKey is a credential. Only the SHA-256 hash of the secret is stored.
type APIKey struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Kind              string     `json:"kind"`
	Toolkits          []string   `json:"toolkits,omitempty"`   // client: allowed toolkits, empty = all
	ToolkitID         string     `json:"toolkit_id,omitempty"` // toolkit: the toolkit it serves
	OAuthRedirectURLs []string   `json:"oauth_redirect_urls,omitempty"`
	Prefix            string     `json:"prefix"` // first characters of the secret, to recognise it
	Hash              []byte     `json:"-"`
	CreatedAt         time.Time  `json:"created_at"`
	LastUsedAt        *time.Time `json:"last_used_at,omitempty"`
	RevokedAt         *time.Time `json:"revoked_at,omitempty"`
}

// MayUseToolkit reports whether a client key may use the toolkit id.
func (k *APIKey) MayUseToolkit(id string) bool {
	switch k.Kind {
	case KeyClient:
		if len(k.Toolkits) == 0 {
			return true
		}
		for _, t := range k.Toolkits {
			if t == id {
				return true
			}
		}
		return false
	case KeyToolkit:
		return k.ToolkitID == id
	default:
		return false
	}
}

// Platform is an OAuth2 provider configuration.
type Platform struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	AuthURL            string            `json:"auth_url"`
	TokenURL           string            `json:"token_url"`
	ClientID           string            `json:"client_id"`
	ClientSecret       string            `json:"client_secret,omitempty"` // input only
	SealedClientSecret string            `json:"-"`
	Scopes             []string          `json:"scopes"`
	AuthParams         map[string]string `json:"auth_params,omitempty"`
	PKCE               *bool             `json:"pkce,omitempty"` // nil = true
	TokenAuthStyle     string            `json:"token_auth_style"`
	UserinfoURL        string            `json:"userinfo_url,omitempty"`
	ExposeRefreshToken bool              `json:"expose_refresh_token"`
	CreatedAt          time.Time         `json:"created_at"`
	UpdatedAt          time.Time         `json:"updated_at"`
}

// UsesPKCE reports whether the platform uses PKCE (the default).
func (p *Platform) UsesPKCE() bool { return p.PKCE == nil || *p.PKCE }

// Connection statuses.
const (
	ConnActive      = "active"
	ConnExpired     = "expired"
	ConnRevoked     = "revoked"
	ConnNeedsReauth = "needs_reauth"
)

// Connection is one end user's OAuth grant on one platform, started by one
// client key. Tokens are sealed; they never leave the server through the admin API.
type Connection struct {
	ID                 string     `json:"id"`
	PlatformID         string     `json:"platform"`
	ExternalUserID     string     `json:"external_user_id"`
	ExternalUserEmail  string     `json:"external_user_email,omitempty"`
	ClientKeyID        string     `json:"client_key_id,omitempty"`
	Status             string     `json:"status"`
	Scope              string     `json:"scope"`
	ExpiresAt          *time.Time `json:"expires_at,omitempty"`
	SealedAccessToken  string     `json:"-"`
	SealedRefreshToken string     `json:"-"`
	// TokenIssuedAt is when the access token was obtained: with ExpiresAt
	// it gives the token's whole lifetime, which the refresh margin needs.
	TokenIssuedAt *time.Time `json:"-"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// OAuthState is an authorization in progress: what the callback needs to
// finish it. Only the SHA-256 of the random state travels to the store;
// the PKCE verifier is sealed.
type OAuthState struct {
	Hash           []byte
	PlatformID     string
	ExternalUserID string
	ClientKeyID    string // the key that started it; "" = anonymous
	RedirectURL    string // the developer's URL; "" = show the "connected" page
	SealedVerifier string // "" when the platform does not use PKCE
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// Expired reports whether the state has expired at now.
func (s *OAuthState) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// ResealFunc re-encrypts one sealed value under the current key; changed
// is false when it already was (it is then returned as it is).
type ResealFunc func(sealed string) (resealed string, changed bool, err error)

// ResealReport counts the sealed values a Store.ResealSecrets re-encrypted,
// by kind, and how many it looked at in all.
type ResealReport struct {
	PlatformSecrets  int
	ToolSecrets      int
	ConnectionTokens int
	WebhookSecrets   int
	StateVerifiers   int
	Checked          int
}

// Resealed is the number of values re-encrypted.
func (r ResealReport) Resealed() int {
	return r.PlatformSecrets + r.ToolSecrets + r.ConnectionTokens + r.WebhookSecrets + r.StateVerifiers
}

// ConnectionFilter narrows ListConnections; empty fields match everything.
type ConnectionFilter struct {
	PlatformID     string
	ExternalUserID string
	ClientKeyID    string
}
