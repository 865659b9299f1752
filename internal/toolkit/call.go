package toolkit

import (
	"context"
	"encoding/json"
)

// Call is one validated tool invocation handed to a Runner.
type Call struct {
	Toolkit   *Toolkit
	Tool      *Tool
	Arguments json.RawMessage // a JSON object that passed the tool's input_schema
	Key       *APIKey         // the calling key; nil for internal calls

	ExternalUserID string // the end user the call acts for, if any
	AuthToken      string // a token the caller supplied (ChatATP auth_token)

	// Credential is the secret a tool sends: the opened static secret for
	// bearer/header auth, or the end user's access token for oauth2 (a
	// remote tool hands it to its process as auth_token). The Service
	// resolves it; runners never see sealed values.
	Credential string
}

// Runner executes tools of one executor kind. A failure the caller should
// read (bad upstream answer, thrown error, timeout) is a *ToolError; any
// other error is treated as an internal fault and hidden behind a generic
// tool error by the Service.
type Runner interface {
	Run(ctx context.Context, call *Call) (json.RawMessage, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, call *Call) (json.RawMessage, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, call *Call) (json.RawMessage, error) {
	return f(ctx, call)
}

// Sealer encrypts secrets at rest (internal/oauth implements it with AES-256-GCM).
type Sealer interface {
	Seal(plaintext []byte) (string, error)
	Open(sealed string) ([]byte, error)
}

// TokenSource gives the fresh access token of an end user's connection to a
// platform. The OAuth issue implements it; without one, oauth2 tools answer
// with a not_connected tool error.
type TokenSource interface {
	AccessToken(ctx context.Context, key *APIKey, platformID, externalUserID string) (string, error)
}
