package toolkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

// tokens is a TokenSource with one connected user.
type tokens struct{}

func (tokens) AccessToken(_ context.Context, _ *toolkit.APIKey, platform, user string) (string, error) {
	if platform == "acme" && user == "ada" {
		return "ada-token", nil
	}
	return "", toolkit.Errorf(toolkit.KindNotFound, "not_connected", "no connection")
}

// TestOAuthCredentialResolution: which credential an oauth2 tool gets
// (admin-api.md §7): the caller's auth_token first, then the connection
// of the end user the call names; no user or no connection is a tool
// error naming the platform. Remote tools with oauth2 auth (registered
// with an OAuth2 auth_provider) resolve the same way.
func TestOAuthCredentialResolution(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := oauth.NewCipher(oauth.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	var got string
	capture := toolkit.RunnerFunc(func(_ context.Context, call *toolkit.Call) (json.RawMessage, error) {
		got = call.Credential
		return json.RawMessage(`{}`), nil
	})
	svc := toolkit.NewService(toolkit.Config{
		Store: storetest.OpenSQLite(t), Sealer: c, Tokens: tokens{},
		Runners: map[string]toolkit.Runner{toolkit.ExecutorHTTP: capture, toolkit.ExecutorRemote: capture},
	})
	tkKey, _, err := svc.CreateAPIKey(ctx, toolkit.NewAPIKey{Name: "worker", Kind: toolkit.KeyToolkit, ToolkitID: "crm"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterRemoteTool(ctx, tkKey, toolkit.RemoteToolRegistration{
		AppName: "crm", FunctionID: "contacts", Params: []string{}, AuthProvider: "ACME", AuthType: "OAuth2",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterRemoteTool(ctx, tkKey, toolkit.RemoteToolRegistration{
		AppName: "crm", FunctionID: "search", Params: []string{}, AuthProvider: "tavily", AuthType: "api_key",
	}); err != nil {
		t.Fatal(err)
	}
	tk, err := svc.FindToolkit(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	if a := tk.Tools[0].Executor.Auth; a == nil || a.Type != toolkit.AuthOAuth2 || a.Platform != "acme" {
		t.Fatalf("an OAuth2 registration got auth %+v, want oauth2 on acme", a)
	}
	if tk.Tools[1].Executor.Auth != nil {
		t.Fatalf("an api_key registration got auth %+v, want none", tk.Tools[1].Executor.Auth)
	}

	for _, tc := range []struct {
		name, tool, user, token, want, errCode string
	}{
		{"end user's connection", "contacts", "ada", "", "ada-token", ""},
		{"the caller's token wins", "contacts", "ada", "given", "given", ""},
		{"no user named", "contacts", "", "", "", toolkit.ToolErrNotConnected},
		{"user not connected", "contacts", "bob", "", "", toolkit.ToolErrNotConnected},
		{"no oauth2: nothing resolved", "search", "ada", "", "", ""},
	} {
		got = ""
		_, err := svc.Run(ctx, &toolkit.Call{Toolkit: tk, Tool: &tk.Tools[map[string]int{"contacts": 0, "search": 1}[tc.tool]],
			ExternalUserID: tc.user, AuthToken: tc.token})
		var terr *toolkit.ToolError
		switch {
		case tc.errCode != "":
			if !errors.As(err, &terr) || terr.Code != tc.errCode || !containsQuoted(terr.Message, "acme") {
				t.Errorf("%s: %v, want a %s tool error naming acme", tc.name, err, tc.errCode)
			}
		case err != nil || got != tc.want:
			t.Errorf("%s: credential %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func containsQuoted(s, word string) bool {
	b, _ := json.Marshal(word)
	return strings.Contains(s, string(b))
}
