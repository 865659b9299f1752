// Package oauth holds everything atp-server does for OAuth 2.0: the platforms
// (provider configurations), the end-user flow with state and PKCE, the code
// exchange, token refresh, and the encryption of tokens and client secrets at
// rest. golang.org/x/oauth2 is used inside it and never leaks out.
//
// For now it holds the at-rest cipher (Cipher), which implements
// toolkit.Sealer: AES-256-GCM with key ids, so that values sealed under a
// previous key (ATP_ENCRYPTION_KEY_OLD) can still be opened and found for
// re-encryption.
//
// It must not import internal/api or internal/store: the transports call it
// and the domain (internal/toolkit) defines what it needs from it.
package oauth
