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
