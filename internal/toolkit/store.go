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
	ListConnections(ctx context.Context, f ConnectionFilter) ([]*Connection, error)
	DeleteConnection(ctx context.Context, id string) error

	// Settings is a small key/value table for server state such as
	// whether the first admin key was generated.
	GetSetting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}
