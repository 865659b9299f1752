package chatatp_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
)

// TestOAuthRoutes: initiate_oauth_connection answers both URL keys and the
// descriptive fields; the tokens route answers 404 until the end user
// connected (wait_for_connection polls on it), then the fields the SDK
// copies; another key gets 404; segments take @ . + as sent; both slash
// forms are served, under any base_url prefix.
func TestOAuthRoutes(t *testing.T) {
	t.Parallel()
	provider := oauthtest.New(t, oauthtest.Options{})
	e := newEnv(t, func(o *options) { o.provider = provider })
	const user = "user+1@example.com"
	tokens := e.srv.URL + "/api/v1/atp/llm-client/oauth/tokens/acme/" + user + "/"

	res, body := getSDK(t, tokens, e.client)
	if res.StatusCode != http.StatusNotFound || field(t, body, "code") != "not_connected" {
		t.Fatalf("tokens before connecting: %d %s", res.StatusCode, body)
	}

	res, body = postSDK(t, e.srv.URL+"/ws/v1/atp/llm-client/api/v1/atp/llm-client/oauth/confirmation/acme", e.client,
		`{"external_user_id":"`+user+`","developer_redirect_url":"https://app.example.com/cb","api_key":"`+e.client+`"}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("confirmation: %d %s", res.StatusCode, body)
	}
	authURL, _ := field(t, body, "authorization_url").(string)
	if authURL == "" || field(t, body, "auth_url") != authURL || field(t, body, "provider_name") != "Acme" ||
		field(t, body, "auth_mode") != "oauth2" {
		t.Errorf("confirmation answer %s", body)
	}

	// The provider consents; the callback's query goes to the Manager (the
	// callback route itself is the admin surface's).
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	mres, err := e.oauth.Callback(t.Context(), loc.Query())
	if err != nil || !mres.Connected {
		t.Fatalf("callback: %+v %v", mres, err)
	}

	res, body = getSDK(t, strings.TrimSuffix(tokens, "/"), e.client)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("tokens: %d %s", res.StatusCode, body)
	}
	for _, k := range []string{"integration_id", "external_user_id", "external_user_email", "access_token", "refresh_token", "expires_at", "scope"} {
		if !strings.Contains(string(body), `"`+k+`":`) {
			t.Errorf("tokens answer lacks %s: %s", k, body)
		}
	}
	if field(t, body, "external_user_id") != user || !provider.AccessTokenLive(field(t, body, "access_token").(string)) {
		t.Errorf("tokens %s", body)
	}
	if res, _ := getSDK(t, tokens, e.admin); res.StatusCode != http.StatusNotFound {
		t.Errorf("tokens with another key: %d, want 404", res.StatusCode)
	}
	if res, _ := getSDK(t, tokens, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("tokens without a key: %d, want 401", res.StatusCode)
	}
	if res, _ := postSDK(t, tokens, e.client, `{}`); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST tokens: %d, want 405", res.StatusCode)
	}
}
