// Package oauth holds everything atp-server does for OAuth 2.0 on behalf
// of end users: the flow against the platforms an admin configured, and
// the encryption of tokens and secrets at rest. golang.org/x/oauth2 is
// used inside it and never leaks out.
//
// Manager runs the lifecycle. Authorize hands out an authorization URL
// whose state is random, single-use (the store keeps only its SHA-256 and
// deletes it atomically when the callback takes it) and expiring, bound
// to the platform, the end user, the client key and the developer's
// redirect URL (checked against ATP_OAUTH_REDIRECT_ALLOWLIST and the
// key's own list), with a PKCE S256 challenge when the platform uses
// PKCE (the verifier is stored sealed). Callback exchanges the code with
// the verifier, learns the user's email (userinfo_url, else the id_token),
// stores the connection with its tokens sealed, and fires the
// connection_success (or connection_failed) event. Tokens and AccessToken
// (the toolkit.TokenSource of tools) hand out the access token, refreshed
// first when RefreshDue says so (admin-api.md §7): the refresh runs under
// Store.WithConnectionLock, so that of concurrent callers on any instance
// one refreshes and the others read its result, and the rotated refresh
// token is stored before anyone gets the new access token. A refresh the
// provider rejects marks the connection needs_reauth and fires
// connection_expired. Nothing here logs a token, a code, a verifier or a
// secret: provider errors are described by status and error code only.
//
// Cipher implements toolkit.Sealer: AES-256-GCM with key ids, so that
// values sealed under a previous key (ATP_ENCRYPTION_KEY_OLD) can still be
// opened, and re-sealed under the current one (Reseal, used by
// `atp-server keys rotate`).
//
// The package depends on internal/toolkit (domain types, the Store
// contract, errors). It must not import internal/api, internal/protocol
// or internal/store: the transports call it, and the domain defines what
// it needs from persistence.
package oauth
