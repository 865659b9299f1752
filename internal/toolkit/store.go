package toolkit

import (
	"context"
	"time"
)

// Store is the persistence contract. Two engines implement it (internal/store:
// PostgreSQL and embedded SQLite) and one contract test suite checks both.
//
// Every method returns *Error kinds for expected outcomes: KindNotFound when a
// row does not exist, KindConflict on a duplicate id. Other failures are
// KindInternal with the driver error as the (never shown) cause. Methods own
// their transactions.
type Store interface {
	// Toolkits. CreateToolkit sets Revision to 1 and the timestamps on tk.
	// PutToolkit replaces or creates: it bumps Revision on every replace and
	// reports whether it created the toolkit. Both store the tools in order.
	CreateToolkit(ctx context.Context, tk *Toolkit) error
	PutToolkit(ctx context.Context, tk *Toolkit) (created bool, err error)
	FindToolkitByID(ctx context.Context, id string) (*Toolkit, error)
	ListToolkits(ctx context.Context) ([]*Toolkit, error)
	DeleteToolkit(ctx context.Context, id string) error
	// ReplaceToolkit is PutToolkit for an existing toolkit whose stored
	// revision is still ifRevision (compare and swap): KindConflict with
	// code "revision_mismatch" if another write came first, KindNotFound if
	// the toolkit does not exist. It bumps Revision and keeps CreatedAt and
	// OwnerKeyID.
	ReplaceToolkit(ctx context.Context, tk *Toolkit, ifRevision int64) error
	// Summaries read toolkits without their tools (ToolCount counts them).
	FindToolkitSummary(ctx context.Context, id string) (*ToolkitSummary, error)
	ListToolkitSummaries(ctx context.Context) ([]*ToolkitSummary, error)

	// Remote registrations (ChatATP ToolKitClient). PutRemoteTool upserts on
	// (toolkit, name); the toolkit must exist (KindNotFound otherwise).
	// Deleting a toolkit deletes its records. PutRemoteRegistration upserts
	// on (toolkit, key); FindRemoteRegistration is KindNotFound when the key
	// never registered there.
	PutRemoteTool(ctx context.Context, rt *RemoteTool) error
	ListRemoteTools(ctx context.Context, toolkitID string) ([]*RemoteTool, error)
	PutRemoteRegistration(ctx context.Context, r *RemoteRegistration) error
	FindRemoteRegistration(ctx context.Context, toolkitID, keyID string) (*RemoteRegistration, error)

	// Webhooks of client keys (the secret arrives sealed). ListWebhooks
	// orders by creation; DeleteWebhook is KindNotFound unless the webhook
	// exists and belongs to keyID.
	CreateWebhook(ctx context.Context, w *Webhook) error
	ListWebhooks(ctx context.Context, keyID string) ([]*Webhook, error)
	DeleteWebhook(ctx context.Context, keyID, id string) error

	// API keys. FindAPIKeyByHash returns revoked keys too (the caller decides);
	// PutAPIKey creates or replaces the key with k.ID (used for the bootstrap
	// admin key). RevokeAPIKey sets RevokedAt; NotFound if unknown or already revoked.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	PutAPIKey(ctx context.Context, k *APIKey) error
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	FindAPIKeyByID(ctx context.Context, id string) (*APIKey, error)
	ListAPIKeys(ctx context.Context) ([]*APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
	CountActiveAPIKeys(ctx context.Context, kind string) (int, error)

	// OAuth platforms (the client secret arrives sealed).
	CreatePlatform(ctx context.Context, p *Platform) error
	PutPlatform(ctx context.Context, p *Platform) (created bool, err error)
	FindPlatformByID(ctx context.Context, id string) (*Platform, error)
	ListPlatforms(ctx context.Context) ([]*Platform, error)
	DeletePlatform(ctx context.Context, id string) error

	// OAuth connections (tokens arrive sealed). UpsertConnection keys on
	// (platform, external user, client key) and keeps the id of an existing row.
	UpsertConnection(ctx context.Context, c *Connection) error
	FindConnectionByID(ctx context.Context, id string) (*Connection, error)
	// FindConnection returns the connection of an end user to a platform
	// started by a client key ("" for none); KindNotFound if there is none.
	FindConnection(ctx context.Context, platformID, externalUserID, clientKeyID string) (*Connection, error)
	// WithConnectionLock runs fn on connection id as stored, while holding
	// a lock that serialises every other WithConnectionLock of that id:
	// within the process, and across processes sharing a PostgreSQL
	// database (a row lock held until commit). fn sees what the previous
	// holder wrote. If fn returns a connection, its status, email, scope,
	// expiry, issue time and sealed tokens are written before the lock is
	// released and the stored connection is returned; if fn returns nil,
	// nothing is written and the connection as read is returned. An error
	// of fn is returned as it is and nothing is written. KindNotFound if
	// the connection does not exist. fn may take time (a provider call):
	// only calls for the same id wait for it.
	WithConnectionLock(ctx context.Context, id string, fn func(c *Connection) (*Connection, error)) (*Connection, error)
	ListConnections(ctx context.Context, f ConnectionFilter) ([]*Connection, error)
	DeleteConnection(ctx context.Context, id string) error

	// OAuth states (authorizations in progress). CreateOAuthState stores
	// st (KindConflict if its hash exists, KindNotFound if its platform
	// does not). TakeOAuthState deletes the state with hash and returns it,
	// expired or not, in one atomic step, so that a state is used at most
	// once even by concurrent callbacks; KindNotFound if there is none (never
	// issued, already used, or swept). DeleteExpiredOAuthStates removes the
	// states expired at now and reports how many.
	CreateOAuthState(ctx context.Context, st *OAuthState) error
	TakeOAuthState(ctx context.Context, hash []byte) (*OAuthState, error)
	DeleteExpiredOAuthStates(ctx context.Context, now time.Time) (int64, error)

	// ResealSecrets passes every sealed value the store holds (platform
	// client secrets, tool secrets, connection tokens, webhook secrets,
	// PKCE verifiers) through reseal and writes back those it changed,
	// locking each row while it does so. It is what `atp-server keys
	// rotate` runs; running it again changes nothing. An error of reseal
	// stops it (rows done so far stay done) and is returned wrapped.
	ResealSecrets(ctx context.Context, reseal ResealFunc) (ResealReport, error)

	// Settings is a small key/value table for server state such as
	// whether the first admin key was generated.
	GetSetting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}
