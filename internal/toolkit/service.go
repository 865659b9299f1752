package toolkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Service holds the rules of the domain: validation on write, sealing of
// secrets, key authentication, and tool calls. Transports call it; it calls
// the Store and the Runners.
type Service struct {
	store       Store
	sealer      Sealer
	runners     map[string]Runner
	tokens      TokenSource
	logger      *slog.Logger
	now         func() time.Time
	schemas     *schemaCache
	catalog     *Catalog
	touchedMu   sync.Mutex
	lastTouched map[string]time.Time
}

// Config wires a Service. Store, Sealer and Logger are required.
type Config struct {
	Store   Store
	Sealer  Sealer
	Runners map[string]Runner // by executor kind
	Tokens  TokenSource       // optional: OAuth access tokens for oauth2 tools
	Logger  *slog.Logger
	Now     func() time.Time // optional, for tests
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	runners := make(map[string]Runner, len(cfg.Runners))
	for k, r := range cfg.Runners {
		runners[k] = r
	}
	s := &Service{
		store:       cfg.Store,
		sealer:      cfg.Sealer,
		runners:     runners,
		tokens:      cfg.Tokens,
		logger:      cfg.Logger,
		now:         now,
		schemas:     newSchemaCache(),
		lastTouched: make(map[string]time.Time),
	}
	s.catalog = NewCatalog(s)
	return s
}

// Catalog is the Service's catalog of toolkits: every surface resolves
// toolkits through the same one, so a toolkit version is loaded and kept
// once per process, not once per surface.
func (s *Service) Catalog() *Catalog { return s.catalog }

var (
	toolkitIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	toolNamePattern  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)
)

// ---- toolkits ----

// CreateToolkit validates and stores a new toolkit; KindConflict if the id exists.
func (s *Service) CreateToolkit(ctx context.Context, tk *Toolkit) (*Toolkit, error) {
	if err := s.prepareToolkit(tk); err != nil {
		return nil, err
	}
	if err := s.store.CreateToolkit(ctx, tk); err != nil {
		return nil, err
	}
	return tk, nil
}

// PutToolkit validates and creates or replaces a toolkit.
func (s *Service) PutToolkit(ctx context.Context, tk *Toolkit) (*Toolkit, bool, error) {
	if err := s.prepareToolkit(tk); err != nil {
		return nil, false, err
	}
	created, err := s.store.PutToolkit(ctx, tk)
	if err != nil {
		return nil, false, err
	}
	return tk, created, nil
}

// prepareToolkit validates tk and seals its static secrets.
func (s *Service) prepareToolkit(tk *Toolkit) error {
	if err := validateToolkit(tk); err != nil {
		return err
	}
	for i := range tk.Tools {
		a := tk.Tools[i].Executor.Auth
		if a == nil || a.Secret == "" {
			continue
		}
		sealed, err := s.sealer.Seal([]byte(a.Secret))
		if err != nil {
			return Wrap(err, KindInternal, "internal", "could not encrypt the tool secret")
		}
		a.SealedSecret, a.Secret = sealed, ""
	}
	return nil
}

// FindToolkit returns a toolkit; KindNotFound if it does not exist.
func (s *Service) FindToolkit(ctx context.Context, id string) (*Toolkit, error) {
	return s.store.FindToolkitByID(ctx, id)
}

// ListToolkits returns every toolkit, ordered by id.
func (s *Service) ListToolkits(ctx context.Context) ([]*Toolkit, error) {
	return s.store.ListToolkits(ctx)
}

// DeleteToolkit removes a toolkit; KindNotFound if it does not exist.
func (s *Service) DeleteToolkit(ctx context.Context, id string) error {
	return s.store.DeleteToolkit(ctx, id)
}

// ---- API keys ----

// NewAPIKey is a request to create a key.
type NewAPIKey struct {
	Name              string   `json:"name"`
	Kind              string   `json:"kind"`
	Toolkits          []string `json:"toolkits,omitempty"`
	ToolkitID         string   `json:"toolkit_id,omitempty"`
	OAuthRedirectURLs []string `json:"oauth_redirect_urls,omitempty"`
}

// CreateAPIKey creates a key and returns it with its secret, which is not kept.
func (s *Service) CreateAPIKey(ctx context.Context, req NewAPIKey) (*APIKey, string, error) {
	if err := validateNewAPIKey(&req); err != nil {
		return nil, "", err
	}
	secret := NewKeySecret(req.Kind)
	k := &APIKey{
		ID:                NewID("key_"),
		Name:              req.Name,
		Kind:              req.Kind,
		Toolkits:          req.Toolkits,
		ToolkitID:         req.ToolkitID,
		OAuthRedirectURLs: req.OAuthRedirectURLs,
		Prefix:            keyPrefix(secret),
		Hash:              HashKey(secret),
		CreatedAt:         s.now().UTC(),
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

func validateNewAPIKey(req *NewAPIKey) error {
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 200 {
		return Errorf(KindInvalid, "invalid_api_key", "name: required, at most 200 characters")
	}
	switch req.Kind {
	case KeyAdmin:
		if len(req.Toolkits) > 0 || req.ToolkitID != "" {
			return Errorf(KindInvalid, "invalid_api_key", "toolkits, toolkit_id: not allowed for an admin key")
		}
	case KeyClient:
		if req.ToolkitID != "" {
			return Errorf(KindInvalid, "invalid_api_key", "toolkit_id: only for kind toolkit; a client key takes toolkits")
		}
		for i, id := range req.Toolkits {
			if !toolkitIDPattern.MatchString(id) {
				return Errorf(KindInvalid, "invalid_api_key", "toolkits[%d]: %q does not match %s", i, id, toolkitIDPattern)
			}
		}
		for i, u := range req.OAuthRedirectURLs {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				return Errorf(KindInvalid, "invalid_api_key", "oauth_redirect_urls[%d]: must start with http:// or https://", i)
			}
		}
	case KeyToolkit:
		if !toolkitIDPattern.MatchString(req.ToolkitID) {
			return Errorf(KindInvalid, "invalid_api_key", "toolkit_id: required for kind toolkit, and must match %s", toolkitIDPattern)
		}
		if len(req.Toolkits) > 0 {
			return Errorf(KindInvalid, "invalid_api_key", "toolkits: only for kind client; a toolkit key takes toolkit_id")
		}
	default:
		return Errorf(KindInvalid, "invalid_api_key", "kind: must be one of admin, client, toolkit")
	}
	if req.Kind != KeyClient && len(req.OAuthRedirectURLs) > 0 {
		return Errorf(KindInvalid, "invalid_api_key", "oauth_redirect_urls: only for kind client")
	}
	return nil
}

// ListAPIKeys returns every key, revoked ones included, without secrets.
func (s *Service) ListAPIKeys(ctx context.Context) ([]*APIKey, error) {
	return s.store.ListAPIKeys(ctx)
}

// RevokeAPIKey revokes a key at once; KindNotFound if unknown or already revoked.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) error {
	return s.store.RevokeAPIKey(ctx, id, s.now().UTC())
}

// Authenticate returns the live key whose secret this is. An empty, unknown
// or revoked secret is KindUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, secret string) (*APIKey, error) {
	if secret == "" {
		return nil, Errorf(KindUnauthenticated, "unauthenticated", "missing API key")
	}
	if len(secret) > 256 {
		return nil, Errorf(KindUnauthenticated, "unauthenticated", "invalid API key")
	}
	k, err := s.store.FindAPIKeyByHash(ctx, HashKey(secret))
	if IsNotFound(err) {
		return nil, Errorf(KindUnauthenticated, "unauthenticated", "invalid API key")
	}
	if err != nil {
		return nil, err
	}
	if k.RevokedAt != nil {
		return nil, Errorf(KindUnauthenticated, "unauthenticated", "invalid API key")
	}
	s.touch(ctx, k)
	return k, nil
}

// touch records last use at most once a minute per key, so that
// authentication does not cost a write on every request.
func (s *Service) touch(ctx context.Context, k *APIKey) {
	now := s.now().UTC()
	s.touchedMu.Lock()
	last, ok := s.lastTouched[k.ID]
	if ok && now.Sub(last) < time.Minute {
		s.touchedMu.Unlock()
		return
	}
	s.lastTouched[k.ID] = now
	s.touchedMu.Unlock()
	if err := s.store.TouchAPIKey(ctx, k.ID, now); err != nil && s.logger != nil {
		s.logger.WarnContext(ctx, "recording key use", "key_id", k.ID, "err", err)
	}
}

// BootstrapAdminKeyID is the id of the admin key given by ATP_ADMIN_KEY or
// generated on first start.
const BootstrapAdminKeyID = "key_bootstrap_admin"

// EnsureAdminKey makes sure an admin can log in. With configured set (from
// ATP_ADMIN_KEY) that secret becomes the bootstrap admin key. Otherwise, if
// no live admin key exists, one is generated and its secret returned (to be
// shown once); else generated is empty.
func (s *Service) EnsureAdminKey(ctx context.Context, configured string) (generated string, err error) {
	now := s.now().UTC()
	if configured != "" {
		return "", s.store.PutAPIKey(ctx, &APIKey{
			ID: BootstrapAdminKeyID, Name: "bootstrap admin (ATP_ADMIN_KEY)", Kind: KeyAdmin,
			Prefix: keyPrefix(configured), Hash: HashKey(configured), CreatedAt: now,
		})
	}
	n, err := s.store.CountActiveAPIKeys(ctx, KeyAdmin)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	secret := NewKeySecret(KeyAdmin)
	k := &APIKey{
		ID: BootstrapAdminKeyID, Name: "bootstrap admin (generated)", Kind: KeyAdmin,
		Prefix: keyPrefix(secret), Hash: HashKey(secret), CreatedAt: now,
	}
	// Create, not Put: when several instances start together on an empty
	// database, exactly one insert wins and the others must not overwrite the
	// key it printed.
	err = s.store.CreateAPIKey(ctx, k)
	if KindOf(err) == KindConflict {
		// Either another instance just made it, or an old bootstrap key was
		// revoked and no admin is left: only then replace it.
		n, cerr := s.store.CountActiveAPIKeys(ctx, KeyAdmin)
		if cerr != nil || n > 0 {
			return "", cerr
		}
		err = s.store.PutAPIKey(ctx, k)
	}
	if err != nil {
		return "", err
	}
	return secret, nil
}

// ---- OAuth platforms and connections ----

// CreatePlatform validates, seals the client secret and stores a platform.
func (s *Service) CreatePlatform(ctx context.Context, p *Platform) (*Platform, error) {
	if err := s.preparePlatform(p); err != nil {
		return nil, err
	}
	if err := s.store.CreatePlatform(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PutPlatform validates and creates or replaces a platform.
func (s *Service) PutPlatform(ctx context.Context, p *Platform) (*Platform, bool, error) {
	if err := s.preparePlatform(p); err != nil {
		return nil, false, err
	}
	created, err := s.store.PutPlatform(ctx, p)
	if err != nil {
		return nil, false, err
	}
	return p, created, nil
}

func (s *Service) preparePlatform(p *Platform) error {
	if err := validatePlatform(p); err != nil {
		return err
	}
	sealed, err := s.sealer.Seal([]byte(p.ClientSecret))
	if err != nil {
		return Wrap(err, KindInternal, "internal", "could not encrypt the client secret")
	}
	p.SealedClientSecret, p.ClientSecret = sealed, ""
	return nil
}

// FindPlatform returns a platform; KindNotFound if unknown.
func (s *Service) FindPlatform(ctx context.Context, id string) (*Platform, error) {
	return s.store.FindPlatformByID(ctx, id)
}

// ListPlatforms returns every platform ordered by id.
func (s *Service) ListPlatforms(ctx context.Context) ([]*Platform, error) {
	return s.store.ListPlatforms(ctx)
}

// DeletePlatform removes a platform; KindNotFound if unknown.
func (s *Service) DeletePlatform(ctx context.Context, id string) error {
	return s.store.DeletePlatform(ctx, id)
}

// ListConnections lists connections matching f.
func (s *Service) ListConnections(ctx context.Context, f ConnectionFilter) ([]*Connection, error) {
	return s.store.ListConnections(ctx, f)
}

// DeleteConnection removes a connection; KindNotFound if unknown.
func (s *Service) DeleteConnection(ctx context.Context, id string) error {
	return s.store.DeleteConnection(ctx, id)
}

// ---- calling tools ----

// CallOptions are the per-call facts a surface knows.
type CallOptions struct {
	ExternalUserID string
	AuthToken      string
}

// CallTool runs one tool for key, reading the toolkit as it is stored now.
// Protocol faults (key out of scope, unknown toolkit or tool) are *Error;
// anything the tool itself reports, including invalid arguments, is a
// *ToolError.
func (s *Service) CallTool(ctx context.Context, key *APIKey, toolkitID, toolName string, args json.RawMessage, opts CallOptions) (json.RawMessage, error) {
	if err := mayCall(key, toolkitID); err != nil {
		return nil, err
	}
	tk, err := s.store.FindToolkitByID(ctx, toolkitID)
	if err != nil {
		return nil, err
	}
	return s.callTool(ctx, key, tk, toolName, args, opts)
}

// CallToolkitTool is CallTool on a toolkit the caller has already loaded,
// such as one a Catalog returned or a snapshot an execution keeps: the
// tool runs as tk describes it, whatever the store holds now, and the
// toolkit is not read again. It checks key and runs the tool exactly as
// CallTool does after its read (argument validation, credential, runner),
// with the same errors. tk is only read, never modified.
func (s *Service) CallToolkitTool(ctx context.Context, key *APIKey, tk *Toolkit, toolName string, args json.RawMessage, opts CallOptions) (json.RawMessage, error) {
	if err := mayCall(key, tk.ID); err != nil {
		return nil, err
	}
	return s.callTool(ctx, key, tk, toolName, args, opts)
}

// mayCall is KindForbidden unless key may use toolkit id. It is checked
// before anything is read, so that a key cannot probe which toolkits exist.
func mayCall(key *APIKey, toolkitID string) error {
	if !MayUse(key, toolkitID) {
		return Errorf(KindForbidden, "forbidden", "this key may not use toolkit %q", toolkitID)
	}
	return nil
}

// callTool is what CallTool and CallToolkitTool share once the toolkit is
// in hand and key has been checked.
func (s *Service) callTool(ctx context.Context, key *APIKey, tk *Toolkit, toolName string, args json.RawMessage, opts CallOptions) (json.RawMessage, error) {
	tool, ok := tk.Tool(toolName)
	if !ok {
		return nil, Errorf(KindNotFound, "tool_not_found", "toolkit %q has no tool %q", tk.ID, toolName)
	}
	return s.Run(ctx, &Call{
		Toolkit: tk, Tool: tool, Arguments: args, Key: key,
		ExternalUserID: opts.ExternalUserID, AuthToken: opts.AuthToken,
	})
}

// Run validates call.Arguments against the tool's input schema, resolves its
// credential and runs it. Every failure comes back as a *ToolError, except a
// cancelled ctx, which comes back as ctx.Err().
func (s *Service) Run(ctx context.Context, call *Call) (json.RawMessage, error) {
	if len(call.Arguments) == 0 || string(call.Arguments) == "null" {
		call.Arguments = json.RawMessage("{}")
	}
	if terr := s.schemas.validate(call.Toolkit, call.Tool, call.Arguments); terr != nil {
		return nil, terr
	}
	if terr := s.resolveCredential(ctx, call); terr != nil {
		return nil, terr
	}
	r, ok := s.runners[call.Tool.Executor.Kind]
	if !ok {
		return nil, NewToolError(ToolErrUnavailable, "tools of executor kind %q cannot run on this server", call.Tool.Executor.Kind)
	}
	out, err := r.Run(ctx, call)
	if err == nil {
		return out, nil
	}
	var terr *ToolError
	if errors.As(err, &terr) {
		return nil, terr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if s.logger != nil {
		s.logger.ErrorContext(ctx, "tool runner failed", "toolkit", call.Toolkit.ID, "tool", call.Tool.Name, "err", err)
	}
	return nil, NewToolError(ToolErrExecution, "the tool failed with an internal error")
}

func (s *Service) resolveCredential(ctx context.Context, call *Call) *ToolError {
	a := call.Tool.Executor.Auth
	if a == nil {
		return nil
	}
	switch a.Type {
	case AuthBearer, AuthHeader:
		plain, err := s.sealer.Open(a.SealedSecret)
		if err != nil {
			if s.logger != nil {
				s.logger.ErrorContext(ctx, "opening tool secret", "toolkit", call.Toolkit.ID, "tool", call.Tool.Name, "err", err)
			}
			return NewToolError(ToolErrExecution, "the tool's credential cannot be read on this server")
		}
		call.Credential = string(plain)
	case AuthOAuth2:
		if call.AuthToken != "" {
			call.Credential = call.AuthToken
			return nil
		}
		if call.ExternalUserID == "" {
			return NewToolError(ToolErrNotConnected, "this tool acts for an end user on platform %q: name the user (external_user_id or X-User-ID) or pass an auth_token", a.Platform)
		}
		if s.tokens == nil {
			return NewToolError(ToolErrNotConnected, "user %q has not connected platform %q: the user must connect it first", call.ExternalUserID, a.Platform)
		}
		tok, err := s.tokens.AccessToken(ctx, call.Key, a.Platform, call.ExternalUserID)
		if err != nil {
			var terr *ToolError
			if errors.As(err, &terr) {
				return terr
			}
			if IsNotFound(err) {
				return NewToolError(ToolErrNotConnected, "user %q has not connected platform %q: the user must connect it first", call.ExternalUserID, a.Platform)
			}
			if s.logger != nil {
				s.logger.ErrorContext(ctx, "getting access token", "platform", a.Platform, "err", err)
			}
			return NewToolError(ToolErrExecution, "could not get an access token for platform %q", a.Platform)
		}
		call.Credential = tok
	default:
		return NewToolError(ToolErrExecution, "unknown auth type %q", a.Type)
	}
	return nil
}

// String helps in logs: never prints a secret.
func (c *Call) String() string {
	return fmt.Sprintf("%s.%s", c.Toolkit.ID, c.Tool.Name)
}
