package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/oauth/oauthtest"
)

// chromium finds Debian's Chromium. Without it the test skips, unless CI
// is set: then a missing browser is a failure (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is required when CI is set: apt-get install chromium")
	}
	t.Skip("Chromium not found (apt-get install chromium); skipping the browser test")
	return ""
}

// TestConsentInChromium drives the consent redirect chain in headless
// Chromium: the authorization URL the native API hands out, the
// provider's consent page (a form that submits itself), the provider's
// redirect to /oauth/callback, the callback's redirect to the developer's
// URL, which records the final query.
func TestConsentInChromium(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	addr := freeAddr(t)
	s := startServer(t, map[string]string{
		"ATP_DATA_DIR": t.TempDir(), "ATP_ADDR": addr, "ATP_PUBLIC_URL": "http://" + addr,
		"ATP_HTTP_ALLOW_PRIVATE": "true", "ATP_ADMIN_KEY": "admin-key-for-the-browser-test-0123456789",
	})
	w := setupOAuth(t, s, "admin-key-for-the-browser-test-0123456789",
		oauthtest.New(t, oauthtest.Options{ConsentPage: true, Email: "ada@example.com"}))

	code, out := call(t, "POST", s.URL+"/v1/oauth/acme/connect", w.clientKey,
		map[string]any{"external_user_id": "ada@example.com", "developer_redirect_url": w.dev.URL + "/done?app=1"})
	mustStatus(t, http.StatusOK, code, out, "native connect")
	authURL := out["authorization_url"].(string)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, browser,
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--no-proxy-server", "--user-data-dir="+t.TempDir(),
		// Virtual time lets the consent page's script submit the form
		// and the redirects complete before the DOM is dumped.
		"--virtual-time-budget=15000", "--dump-dom", authURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	t.Logf("Chromium ran the consent chain in %v", time.Since(start).Round(time.Millisecond))

	q := w.dev.next(t)
	if q.Get("status") != "success" || q.Get("platform") != "acme" || q.Get("external_user_id") != "ada@example.com" ||
		q.Get("app") != "1" || q.Get("integration_id") == "" {
		t.Errorf("the browser arrived at the developer's URL with %v", q)
	}
	if !strings.Contains(stdout.String(), `id="status"`) {
		t.Errorf("the final page Chromium shows is not the developer's:\n%.500s", stdout.String())
	}
	if ev := w.hooks.next(t); ev["type"] != "connection_success" {
		t.Errorf("webhook %v", ev)
	}
	code, out = call(t, "GET", s.URL+"/v1/oauth/acme/connections/ada@example.com/tokens", w.clientKey, nil)
	mustStatus(t, http.StatusOK, code, out, "tokens after the browser flow")
}
