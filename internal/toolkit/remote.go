package toolkit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"unicode/utf8"
)

// Rules for tools that toolkit processes register (ChatATP ToolKitClient):
// a toolkit key registers into the toolkit of its toolkit_id only; a
// registration is an idempotent upsert of one remote tool, keyed by the
// toolkit and the function name; tools an admin defined (js, http) are
// never replaced by one; a toolkit that does not exist yet is created,
// owned by the registering key.

// Limits of one registration, beyond those of any tool.
const (
	maxRegisteredParams = 100
	maxHashChars        = 128
	maxParamNameChars   = 64
)

// maxRegisterAttempts bounds the compare-and-swap retries of a
// registration racing with other writes to its toolkit.
const maxRegisterAttempts = 8

// RemoteToolRegistration is what a toolkit process registers for one
// function (ChatATP POST /api/v1/register_tool).
type RemoteToolRegistration struct {
	AppName        string   // must equal the key's toolkit_id
	FunctionID     string   // the tool name
	Description    string   // the tool description
	Params         []string // parameter names, in order
	RequiredParams []string
	SourceCode     string // the function's source: types and descriptions are read from it
	CodeHash       string // sha256 of SourceCode, kept for verify_tool_hash
	ToolkitHash    string // hash of the tools registered so far, kept for verify_hash
	// AuthProvider and AuthType come from the decorator (e.g. "hubspot",
	// "OAuth2"). An OAuth2 tool whose provider names a platform id gets
	// oauth2 auth on that platform: calls that name an end user hand the
	// user's token to the process as auth_token.
	AuthProvider string
	AuthType     string
}

// registeredAuth is the auth of a registered tool: oauth2 on the platform
// AuthProvider names when AuthType says OAuth 2 and the provider is a
// valid platform id (case-folded); none otherwise (API keys and the like
// travel in the call's auth_token as the caller gives it).
func registeredAuth(reg *RemoteToolRegistration) *HTTPAuth {
	t := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "", ".", "").Replace(reg.AuthType))
	if t != "oauth2" && t != "oauth" {
		return nil
	}
	p := strings.ToLower(strings.TrimSpace(reg.AuthProvider))
	if !toolkitIDPattern.MatchString(p) {
		return nil
	}
	return &HTTPAuth{Type: AuthOAuth2, Platform: p}
}

func invalidRegistration(format string, args ...any) *Error {
	return Errorf(KindInvalid, "invalid_registration", format, args...)
}

// checkToolkitKey checks that key is a live toolkit key for appName.
func checkToolkitKey(key *APIKey, appName string) error {
	if key == nil || key.Kind != KeyToolkit {
		return Errorf(KindForbidden, "forbidden", "registering tools needs a toolkit key")
	}
	if appName != key.ToolkitID {
		return Errorf(KindForbidden, "forbidden", "this key serves toolkit %q: app_name %q must equal it", key.ToolkitID, appName)
	}
	return nil
}

// RegisterRemoteTool upserts the remote tool reg describes into the
// toolkit of key and returns the toolkit as stored. Registering the same
// function again with the same metadata changes nothing (the revision
// stays). Errors: KindForbidden (not a toolkit key, or app_name is not its
// toolkit), KindInvalid (a field, naming it), KindConflict (the toolkit has
// a tool of that name an admin defined, code tool_exists).
func (s *Service) RegisterRemoteTool(ctx context.Context, key *APIKey, reg RemoteToolRegistration) (*Toolkit, error) {
	if err := checkToolkitKey(key, reg.AppName); err != nil {
		return nil, err
	}
	tool, err := registeredTool(&reg)
	if err != nil {
		return nil, err
	}
	var tk *Toolkit
	for attempt := 0; ; attempt++ {
		if attempt == maxRegisterAttempts {
			return nil, Errorf(KindConflict, "conflict", "toolkit %q is changing too fast: register again", reg.AppName)
		}
		var retry bool
		tk, retry, err = s.upsertRemoteTool(ctx, key, reg.AppName, tool)
		if err != nil {
			return nil, err
		}
		if !retry {
			break
		}
	}
	if err := s.store.PutRemoteTool(ctx, &RemoteTool{ToolkitID: tk.ID, Name: tool.Name, KeyID: key.ID, CodeHash: reg.CodeHash}); err != nil {
		return nil, err
	}
	if reg.ToolkitHash != "" {
		if err := s.store.PutRemoteRegistration(ctx, &RemoteRegistration{ToolkitID: tk.ID, KeyID: key.ID, ToolkitHash: reg.ToolkitHash}); err != nil {
			return nil, err
		}
	}
	return tk, nil
}

// upsertRemoteTool makes one attempt; retry reports a lost race.
func (s *Service) upsertRemoteTool(ctx context.Context, key *APIKey, id string, tool Tool) (tk *Toolkit, retry bool, err error) {
	tk, err = s.store.FindToolkitByID(ctx, id)
	if IsNotFound(err) {
		tk = &Toolkit{ID: id, Name: id, Tools: []Tool{tool}, OwnerKeyID: key.ID}
		if err := validateToolkit(tk); err != nil {
			return nil, false, err
		}
		err = s.store.CreateToolkit(ctx, tk)
		if KindOf(err) == KindConflict {
			return nil, true, nil // created meanwhile by another registration
		}
		return tk, false, err
	}
	if err != nil {
		return nil, false, err
	}
	existing, ok := tk.Tool(tool.Name)
	switch {
	case ok && existing.Executor.Kind != ExecutorRemote:
		return nil, false, Errorf(KindConflict, "tool_exists",
			"toolkit %q already has a %s tool named %q, defined by an admin: rename the function", id, existing.Executor.Kind, tool.Name)
	case ok && sameRemoteTool(existing, &tool):
		return tk, false, nil
	case ok:
		next := *tk
		next.Tools = append([]Tool(nil), tk.Tools...)
		for i := range next.Tools {
			if next.Tools[i].Name == tool.Name {
				next.Tools[i] = tool
			}
		}
		tk = &next
	default:
		if len(tk.Tools) >= maxTools {
			return nil, false, invalidRegistration("toolkit %q has %d tools, at most %d", id, len(tk.Tools), maxTools)
		}
		next := *tk
		next.Tools = append(append([]Tool(nil), tk.Tools...), tool)
		tk = &next
	}
	rev := tk.Revision
	// The stored tools passed validation when written; checking them again
	// also fills the defaults validateToolkit owns.
	if err := validateToolkit(tk); err != nil {
		return nil, false, err
	}
	err = s.store.ReplaceToolkit(ctx, tk, rev)
	if e := (*Error)(nil); errors.As(err, &e) && e.Code == "revision_mismatch" {
		return nil, true, nil
	}
	return tk, false, err
}

func sameRemoteTool(a, b *Tool) bool {
	return a.Name == b.Name && a.Description == b.Description && a.Executor.Kind == ExecutorRemote &&
		bytes.Equal(a.InputSchema, b.InputSchema) && len(a.OutputSchema) == 0 && a.Annotations == nil &&
		sameAuth(a.Executor.Auth, b.Executor.Auth)
}

func sameAuth(a, b *HTTPAuth) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && a.Platform == b.Platform
}

// registeredTool validates reg and builds the remote tool it describes.
func registeredTool(reg *RemoteToolRegistration) (Tool, error) {
	if !toolNamePattern.MatchString(reg.FunctionID) {
		return Tool{}, invalidRegistration("function_id: %q does not match %s", reg.FunctionID, toolNamePattern)
	}
	if n := utf8.RuneCountInString(reg.Description); n > maxDescriptionChars {
		return Tool{}, invalidRegistration("metadata.description: %d characters, at most %d", n, maxDescriptionChars)
	}
	if len(reg.Params) > maxRegisteredParams || len(reg.RequiredParams) > maxRegisteredParams {
		return Tool{}, invalidRegistration("metadata.params: at most %d parameters", maxRegisteredParams)
	}
	for field, names := range map[string][]string{"metadata.params": reg.Params, "metadata.required_params": reg.RequiredParams} {
		for i, n := range names {
			if !pyIdentifier.MatchString(n) || len(n) > maxParamNameChars {
				return Tool{}, invalidRegistration("%s[%d]: %q is not a parameter name", field, i, n)
			}
		}
	}
	if len(reg.SourceCode) > maxCodeBytes {
		return Tool{}, invalidRegistration("metadata.source_code: %d bytes, at most %d", len(reg.SourceCode), maxCodeBytes)
	}
	if len(reg.CodeHash) > maxHashChars || len(reg.ToolkitHash) > maxHashChars {
		return Tool{}, invalidRegistration("code_hash, toolkit_hash: at most %d characters", maxHashChars)
	}
	tool := Tool{
		Name:        reg.FunctionID,
		Description: reg.Description,
		InputSchema: InferPythonSchema(reg.Params, reg.RequiredParams, reg.SourceCode),
		Executor:    Executor{Kind: ExecutorRemote, Auth: registeredAuth(reg)},
	}
	if err := validateTool(&tool, "tool"); err != nil {
		return Tool{}, err
	}
	return tool, nil
}

// RemoteToolkitUpToDate reports whether key's last registration in its
// toolkit had toolkitHash and every tool it registered is still there as a
// remote tool (an admin may have dropped one, or the toolkit). Only
// KindForbidden and store failures are errors.
func (s *Service) RemoteToolkitUpToDate(ctx context.Context, key *APIKey, appName, toolkitHash string) (bool, error) {
	if err := checkToolkitKey(key, appName); err != nil {
		return false, err
	}
	reg, err := s.store.FindRemoteRegistration(ctx, appName, key.ID)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil || toolkitHash == "" || reg.ToolkitHash != toolkitHash {
		return false, err
	}
	tk, err := s.store.FindToolkitByID(ctx, appName)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rts, err := s.store.ListRemoteTools(ctx, appName)
	if err != nil {
		return false, err
	}
	mine := 0
	for _, rt := range rts {
		if rt.KeyID != key.ID {
			continue
		}
		mine++
		if t, ok := tk.Tool(rt.Name); !ok || t.Executor.Kind != ExecutorRemote {
			return false, nil
		}
	}
	return mine > 0, nil
}

// RemoteToolUpToDate reports whether the remote tool toolName of key's
// toolkit is registered with code hash toolHash and still present.
func (s *Service) RemoteToolUpToDate(ctx context.Context, key *APIKey, toolName, toolHash string) (bool, error) {
	if key == nil || key.Kind != KeyToolkit {
		return false, Errorf(KindForbidden, "forbidden", "verifying tools needs a toolkit key")
	}
	if toolHash == "" {
		return false, nil
	}
	rts, err := s.store.ListRemoteTools(ctx, key.ToolkitID)
	if err != nil {
		return false, err
	}
	for _, rt := range rts {
		if rt.Name != toolName {
			continue
		}
		if rt.CodeHash != toolHash {
			return false, nil
		}
		tk, err := s.store.FindToolkitByID(ctx, key.ToolkitID)
		if IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		t, ok := tk.Tool(toolName)
		return ok && t.Executor.Kind == ExecutorRemote, nil
	}
	return false, nil
}

// LiveAPIKey returns the key with id if it exists and is not revoked, else
// KindUnauthenticated. Surfaces holding long-lived connections call it
// periodically, so that a key revoked through any instance sharing the
// database stops working on all of them. It records no use.
func (s *Service) LiveAPIKey(ctx context.Context, id string) (*APIKey, error) {
	k, err := s.store.FindAPIKeyByID(ctx, id)
	if IsNotFound(err) || err == nil && k.RevokedAt != nil {
		return nil, Errorf(KindUnauthenticated, "unauthenticated", "the API key was revoked")
	}
	return k, err
}
