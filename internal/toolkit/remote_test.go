package toolkit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/store/storetest"
	"github.com/atp-server/atp-server/internal/toolkit"
)

func wantKind(t *testing.T, err error, kind toolkit.Kind, code string) {
	t.Helper()
	var te *toolkit.Error
	if !errors.As(err, &te) || te.Kind != kind || (code != "" && te.Code != code) {
		t.Fatalf("got %v, want a %v error with code %q", err, kind, code)
	}
}

func newKey(t *testing.T, svc *toolkit.Service, req toolkit.NewAPIKey) *toolkit.APIKey {
	t.Helper()
	if req.Name == "" {
		req.Name = "test"
	}
	k, _, err := svc.CreateAPIKey(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func registration(name string) toolkit.RemoteToolRegistration {
	return toolkit.RemoteToolRegistration{
		AppName: "weather", FunctionID: name, Description: "Weather now",
		Params: []string{"city"}, RequiredParams: []string{"city"},
		SourceCode: "def " + name + "(city: str):\n    \"\"\"Args:\n        city: the city\n    \"\"\"\n",
		CodeHash:   "hash-" + name, ToolkitHash: "tk-1",
	}
}

func TestRegisterRemoteTool(t *testing.T) {
	t.Parallel()
	svc := newService(t, storetest.OpenSQLite(t))
	ctx := t.Context()
	key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyToolkit, ToolkitID: "weather"})

	tk, err := svc.RegisterRemoteTool(ctx, key, registration("now"))
	if err != nil {
		t.Fatal(err)
	}
	if tk.OwnerKeyID != key.ID || tk.Name != "weather" || len(tk.Tools) != 1 || tk.Revision != 1 {
		t.Fatalf("created toolkit %+v", tk)
	}
	want := `{"type":"object","properties":{"city":{"type":"string","description":"the city"}},"required":["city"],"additionalProperties":false}`
	if got := string(tk.Tools[0].InputSchema); got != want || tk.Tools[0].Executor.Kind != toolkit.ExecutorRemote {
		t.Fatalf("tool %+v, schema %s", tk.Tools[0], got)
	}

	// Idempotent: the same registration changes nothing.
	again, err := svc.RegisterRemoteTool(ctx, key, registration("now"))
	if err != nil || again.Revision != 1 {
		t.Fatalf("re-registration: revision %d, %v; want 1", again.Revision, err)
	}

	// A second tool is appended, a changed one replaced in place.
	if _, err := svc.RegisterRemoteTool(ctx, key, registration("later")); err != nil {
		t.Fatal(err)
	}
	changed := registration("now")
	changed.Description = "Weather right now"
	tk, err = svc.RegisterRemoteTool(ctx, key, changed)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Revision != 3 || tk.Tools[0].Name != "now" || tk.Tools[0].Description != "Weather right now" || tk.Tools[1].Name != "later" {
		t.Fatalf("after change: %+v", tk)
	}
}

func TestRegisterRemoteToolRules(t *testing.T) {
	t.Parallel()
	svc := newService(t, storetest.OpenSQLite(t))
	ctx := t.Context()
	key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyToolkit, ToolkitID: "weather"})
	client := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})

	other := registration("now")
	other.AppName = "news"
	_, err := svc.RegisterRemoteTool(ctx, key, other)
	wantKind(t, err, toolkit.KindForbidden, "forbidden")
	_, err = svc.RegisterRemoteTool(ctx, client, registration("now"))
	wantKind(t, err, toolkit.KindForbidden, "forbidden")

	bad := registration("not a name")
	_, err = svc.RegisterRemoteTool(ctx, key, bad)
	wantKind(t, err, toolkit.KindInvalid, "invalid_registration")
	bad = registration("ok")
	bad.Params = []string{"a-b"}
	_, err = svc.RegisterRemoteTool(ctx, key, bad)
	wantKind(t, err, toolkit.KindInvalid, "invalid_registration")

	// Admin-defined tools are kept: a registration may not take their name,
	// and adding a remote tool leaves them alone.
	_, err = svc.CreateToolkit(ctx, &toolkit.Toolkit{ID: "weather", Name: "Weather", Tools: []toolkit.Tool{{
		Name: "now", InputSchema: json.RawMessage(`{"type":"object"}`),
		Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return 1"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.RegisterRemoteTool(ctx, key, registration("now"))
	wantKind(t, err, toolkit.KindConflict, "tool_exists")
	tk, err := svc.RegisterRemoteTool(ctx, key, registration("later"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.Tools) != 2 || tk.Tools[0].Executor.Kind != toolkit.ExecutorJS || tk.Tools[0].Executor.Code != "return 1" || tk.OwnerKeyID != "" {
		t.Fatalf("admin toolkit after registration: %+v", tk)
	}
}

// Concurrent registrations of different functions of one toolkit (several
// processes importing their modules at once) all land.
func TestRegisterRemoteToolConcurrent(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) toolkit.Store{
		"sqlite":   func(tb testing.TB) toolkit.Store { return storetest.OpenSQLite(tb) },
		"postgres": func(tb testing.TB) toolkit.Store { return storetest.OpenPostgres(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			svc := newService(t, open(t))
			key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyToolkit, ToolkitID: "weather"})
			const n = 6
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if _, err := svc.RegisterRemoteTool(t.Context(), key, registration(fmt.Sprintf("f%d", i))); err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			tk, err := svc.FindToolkit(t.Context(), "weather")
			if err != nil {
				t.Fatal(err)
			}
			if len(tk.Tools) != n {
				t.Fatalf("%d tools registered, want %d: %+v", len(tk.Tools), n, tk.Tools)
			}
		})
	}
}

func TestRemoteUpToDate(t *testing.T) {
	t.Parallel()
	svc := newService(t, storetest.OpenSQLite(t))
	ctx := t.Context()
	key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyToolkit, ToolkitID: "weather"})
	check := func(wantToolkit, wantTool bool) {
		t.Helper()
		got, err := svc.RemoteToolkitUpToDate(ctx, key, "weather", "tk-1")
		if err != nil || got != wantToolkit {
			t.Errorf("RemoteToolkitUpToDate = %v, %v; want %v", got, err, wantToolkit)
		}
		got, err = svc.RemoteToolUpToDate(ctx, key, "now", "hash-now")
		if err != nil || got != wantTool {
			t.Errorf("RemoteToolUpToDate = %v, %v; want %v", got, err, wantTool)
		}
	}
	check(false, false)
	if _, err := svc.RegisterRemoteTool(ctx, key, registration("now")); err != nil {
		t.Fatal(err)
	}
	check(true, true)
	if ok, _ := svc.RemoteToolkitUpToDate(ctx, key, "weather", "tk-2"); ok {
		t.Error("another toolkit hash is up to date")
	}
	if ok, _ := svc.RemoteToolUpToDate(ctx, key, "now", "other"); ok {
		t.Error("another code hash is up to date")
	}
	_, err := svc.RemoteToolkitUpToDate(ctx, key, "news", "tk-1")
	wantKind(t, err, toolkit.KindForbidden, "forbidden")

	// An admin PUT that drops the remote tool makes both stale, so the
	// process registers it again.
	if _, _, err := svc.PutToolkit(ctx, &toolkit.Toolkit{ID: "weather", Name: "Weather"}); err != nil {
		t.Fatal(err)
	}
	check(false, false)
	if _, err := svc.RegisterRemoteTool(ctx, key, registration("now")); err != nil {
		t.Fatal(err)
	}
	check(true, true)
	if err := svc.DeleteToolkit(ctx, "weather"); err != nil {
		t.Fatal(err)
	}
	check(false, false)
}

func TestLiveAPIKey(t *testing.T) {
	t.Parallel()
	svc := newService(t, storetest.OpenSQLite(t))
	ctx := t.Context()
	key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})
	if k, err := svc.LiveAPIKey(ctx, key.ID); err != nil || k.ID != key.ID {
		t.Fatalf("LiveAPIKey = %+v, %v", k, err)
	}
	if err := svc.RevokeAPIKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	_, err := svc.LiveAPIKey(ctx, key.ID)
	wantKind(t, err, toolkit.KindUnauthenticated, "unauthenticated")
	_, err = svc.LiveAPIKey(ctx, "key_nope")
	wantKind(t, err, toolkit.KindUnauthenticated, "unauthenticated")
}

func TestCatalogResolve(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	svc := newService(t, st)
	ctx := t.Context()
	for _, tk := range []*toolkit.Toolkit{
		{ID: "wx", Name: "Weather"},
		{ID: "news", Name: "News"},
		{ID: "dup_a", Name: "Twin"},
		{ID: "dup_b", Name: "twin"},
	} {
		if _, err := svc.CreateToolkit(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	all := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})
	scoped := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient, Toolkits: []string{"wx", "dup_a"}})
	cat := toolkit.NewCatalog(svc)

	for _, c := range []struct {
		key       *toolkit.APIKey
		ref, want string
		kind      toolkit.Kind
	}{
		{all, "wx", "wx", 0},
		{all, "weather", "wx", 0},
		{all, "NEWS", "news", 0},
		{all, "twin", "", toolkit.KindInvalid}, // two toolkits of that name
		{all, "nope", "", toolkit.KindNotFound},
		{scoped, "Weather", "wx", 0},
		{scoped, "twin", "dup_a", 0}, // the only usable one of that name
		{scoped, "news", "", toolkit.KindForbidden},
		{scoped, "nope", "", toolkit.KindForbidden}, // a scoped key cannot probe
		{nil, "news", "news", 0},
	} {
		tk, err := cat.Resolve(ctx, c.key, c.ref)
		switch {
		case c.kind != 0 && toolkit.KindOf(err) != c.kind:
			t.Errorf("Resolve(%q) = %v, want kind %v", c.ref, err, c.kind)
		case c.kind == 0 && (err != nil || tk.ID != c.want):
			t.Errorf("Resolve(%q) = %v, %v; want %s", c.ref, tk, err, c.want)
		}
	}

	// Cached by version: the same pointer until the toolkit changes, even
	// when it is deleted and created again at the same revision.
	first, _ := cat.Resolve(ctx, all, "news")
	second, _ := cat.Resolve(ctx, all, "news")
	if first != second {
		t.Error("an unchanged toolkit was loaded again")
	}
	if err := svc.DeleteToolkit(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateToolkit(ctx, &toolkit.Toolkit{ID: "news", Name: "News", Description: "fresh"}); err != nil {
		t.Fatal(err)
	}
	third, err := cat.Resolve(ctx, all, "news")
	if err != nil || third == first || third.Description != "fresh" {
		t.Errorf("after re-create: %+v, %v", third, err)
	}

	sums, err := cat.Summaries(ctx, scoped)
	if err != nil || len(sums) != 2 || sums[0].ID != "dup_a" || sums[1].ID != "wx" {
		t.Errorf("Summaries = %+v, %v", sums, err)
	}
}

func TestCaption(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200)
	for in, want := range map[string]string{
		"":                        "",
		"  One line.\nMore text.": "One line.",
		long:                      strings.Repeat("é", 139) + "…",
		"Short and sweet":         "Short and sweet",
		"\n\nafter blank\nsecond": "after blank",
	} {
		if got := toolkit.Caption(in); got != want {
			t.Errorf("Caption(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	svc := newService(t, storetest.OpenSQLite(t))
	ctx := t.Context()
	key := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})
	other := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyClient})
	tkKey := newKey(t, svc, toolkit.NewAPIKey{Kind: toolkit.KeyToolkit, ToolkitID: "x"})

	w, secret, err := svc.CreateWebhook(ctx, key, "https://hooks.example.com/atp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") || len(w.Events) != 1 || w.Events[0] != toolkit.EventConnectionSuccess {
		t.Fatalf("webhook %+v secret %q", w, secret)
	}
	opened, err := svc.WebhookSecret(w)
	if err != nil || string(opened) != secret {
		t.Fatalf("WebhookSecret = %q, %v", opened, err)
	}
	if w.SealedSecret == secret || strings.Contains(w.SealedSecret, secret) {
		t.Fatal("the secret is stored in clear")
	}
	_, _, err = svc.CreateWebhook(ctx, key, "https://hooks.example.com/b", []string{"connection_failed", "connection_failed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url    string
		events []string
	}{
		{"ftp://x", nil}, {"/relative", nil}, {"https://user:pw@x.example", nil}, {"https://x.example", []string{"nope"}},
	} {
		_, _, err := svc.CreateWebhook(ctx, key, c.url, c.events)
		wantKind(t, err, toolkit.KindInvalid, "invalid_webhook")
	}
	_, _, err = svc.CreateWebhook(ctx, tkKey, "https://x.example", nil)
	wantKind(t, err, toolkit.KindForbidden, "forbidden")

	list, err := svc.ListWebhooks(ctx, key)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	failed, err := svc.WebhooksFor(ctx, key.ID, toolkit.EventConnectionFailed)
	if err != nil || len(failed) != 1 || failed[0].URL != "https://hooks.example.com/b" || len(failed[0].Events) != 1 {
		t.Fatalf("WebhooksFor = %+v, %v", failed, err)
	}
	wantKind(t, svc.DeleteWebhook(ctx, other, w.ID), toolkit.KindNotFound, "")
	if err := svc.DeleteWebhook(ctx, key, w.ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, svc.DeleteWebhook(ctx, key, w.ID), toolkit.KindNotFound, "")
}

func TestSignWebhook(t *testing.T) {
	t.Parallel()
	// Reference value: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
	got := toolkit.SignWebhook([]byte("whsec_test"), time.Unix(1700000000, 0), []byte(`{"a":1}`))
	const want = "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
	if got != want {
		t.Errorf("SignWebhook = %s, want %s", got, want)
	}
}
