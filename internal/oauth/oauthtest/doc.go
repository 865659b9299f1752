// Package oauthtest is a local OAuth 2.0 provider for tests: an
// httptest.Server with an authorization endpoint (consent given at once,
// or through an HTML page that submits itself, for browsers), a token
// endpoint (authorization_code with the PKCE S256 check, refresh_token
// with rotation), revocation, a userinfo endpoint and a small API that
// checks bearer tokens. It counts what it was asked, so that tests can
// say how many refreshes happened.
//
// It is for tests only: production code must not import it. It imports
// the standard library only.
package oauthtest
