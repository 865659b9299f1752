package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// RunContract checks that a toolkit.Store keeps the contract documented on
// toolkit.Store and in package store. open must return an empty store of
// its own, closed when the test ends; subtests run in parallel.
func RunContract(t *testing.T, open func(testing.TB) toolkit.Store) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, toolkit.Store)
	}{
		{"ToolkitRoundTrip", testToolkitRoundTrip},
		{"ToolkitWithoutTools", testToolkitWithoutTools},
		{"CreateToolkitConflict", testCreateToolkitConflict},
		{"PutToolkit", testPutToolkit},
		{"ToolkitNotFound", testToolkitNotFound},
		{"ListToolkits", testListToolkits},
		{"DeleteToolkit", testDeleteToolkit},
		{"ToolkitPlaintextSecretRefused", testToolkitPlaintextSecret},
		{"APIKeys", testAPIKeys},
		{"APIKeyConflicts", testAPIKeyConflicts},
		{"RevokeAPIKey", testRevokeAPIKey},
		{"TouchAPIKey", testTouchAPIKey},
		{"CountActiveAPIKeys", testCountActiveAPIKeys},
		{"PutAPIKey", testPutAPIKey},
		{"Platforms", testPlatforms},
		{"PutPlatform", testPutPlatform},
		{"PlatformErrors", testPlatformErrors},
		{"Connections", testConnections},
		{"ListConnectionsFilter", testListConnectionsFilter},
		{"ConnectionErrors", testConnectionErrors},
		{"Settings", testSettings},
		{"Ping", testPing},
		{"ConcurrentPutToolkit", testConcurrentPutToolkit},
		{"ConcurrentCreateAPIKey", testConcurrentCreateAPIKey},
		{"ConcurrentUpsertConnection", testConcurrentUpsertConnection},
		{"ToolkitOwner", testToolkitOwner},
		{"ReplaceToolkit", testReplaceToolkit},
		{"ConcurrentReplaceToolkit", testConcurrentReplaceToolkit},
		{"ToolkitSummaries", testToolkitSummaries},
		{"RemoteTools", testRemoteTools},
		{"RemoteRegistrations", testRemoteRegistrations},
		{"Webhooks", testWebhooks},
		{"FindConnection", testFindConnection},
		{"WithConnectionLock", testWithConnectionLock},
		{"WithConnectionLockSerialises", testWithConnectionLockSerialises},
		{"OAuthStates", testOAuthStates},
		{"TakeOAuthStateOnce", testTakeOAuthStateOnce},
		{"ResealSecrets", testResealSecrets},
		{"FindSessionWithKey", testFindSessionWithKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open(t))
		})
	}
}

// equateEmpty: the store gives back empty slices and maps as nil.
var equateEmpty = cmpopts.EquateEmpty()

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, equateEmpty); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// wantKind checks that err is a *toolkit.Error of kind whose message
// contains each of the fragments.
func wantKind(t *testing.T, err error, kind toolkit.Kind, fragments ...string) {
	t.Helper()
	var te *toolkit.Error
	if !errors.As(err, &te) {
		t.Fatalf("got error %v (%T), want a *toolkit.Error of kind %v", err, err, kind)
	}
	if te.Kind != kind {
		t.Fatalf("got kind %v (%v), want %v", te.Kind, err, kind)
	}
	for _, f := range fragments {
		if !strings.Contains(te.Message, f) {
			t.Errorf("message %q does not mention %q", te.Message, f)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkStamp checks a time the store set: recent, in UTC, to the
// microsecond (what both engines keep).
func checkStamp(t *testing.T, what string, ts time.Time) {
	t.Helper()
	if ts.IsZero() || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
		t.Errorf("%s = %v, want about now", what, ts)
	}
	if ts.Location() != time.UTC {
		t.Errorf("%s = %v, want UTC", what, ts)
	}
	if ts.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v, want microsecond precision", what, ts)
	}
}

func sampleToolkit(id string) *toolkit.Toolkit {
	return &toolkit.Toolkit{
		ID: id, Name: "Math", Description: "Arithmetic helpers", Instructions: "Prefer add for sums.",
		Tools: []toolkit.Tool{
			{
				Name: "add", Description: "Add two numbers",
				// Deliberately not canonical: spacing, a newline and
				// properties out of alphabetical order must all survive,
				// because the property order is the parameter order.
				InputSchema:  json.RawMessage("{\"type\": \"object\",\n  \"properties\": {\"b\": {\"type\": \"number\"}, \"a\": {\"type\": \"number\"}},\n  \"required\": [\"b\", \"a\"]}"),
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"sum":{"type":"number"}}}`),
				Annotations:  &toolkit.Annotations{OperationType: "read", Sensitivity: "public"},
				Executor:     toolkit.Executor{Kind: toolkit.ExecutorJS, Code: "return {sum: input.a + input.b};", TimeoutMS: 1500},
			},
			{
				Name: "delete_item", Description: "Delete an item",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"},"limit":{"type":"integer"}},"required":["id"]}`),
				Annotations: &toolkit.Annotations{OperationType: "destructive", Sensitivity: "sensitive", RequiresApproval: true},
				Executor: toolkit.Executor{
					Kind: toolkit.ExecutorHTTP, Method: "DELETE", URL: "https://api.example.com/v1/items/{id}",
					Query: []string{"limit"}, Headers: map[string]string{"Accept": "application/json", "X-Trace": "on"},
					Body: "input", TimeoutMS: 2500,
					Auth: &toolkit.HTTPAuth{Type: toolkit.AuthHeader, Name: "X-API-Key", SealedSecret: "v1.sealed-header-secret"},
				},
			},
			{
				Name: "me", Description: "The calling user",
				InputSchema: json.RawMessage(`{"type":"object"}`),
				Executor: toolkit.Executor{
					Kind: toolkit.ExecutorHTTP, Method: "GET", URL: "https://api.example.com/me",
					Auth: &toolkit.HTTPAuth{Type: toolkit.AuthOAuth2, Platform: "hubspot"},
				},
			},
			{
				Name: "Remote_Tool", Description: "Served by a toolkit process",
				InputSchema: json.RawMessage(`{"properties":{"q":{"description":"anything"}}}`),
				Executor:    toolkit.Executor{Kind: toolkit.ExecutorRemote},
			},
		},
	}
}

func testToolkitRoundTrip(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	tk := sampleToolkit("math")
	must(t, s.CreateToolkit(ctx, tk))
	if tk.Revision != 1 {
		t.Errorf("Revision = %d after create, want 1", tk.Revision)
	}
	checkStamp(t, "CreatedAt", tk.CreatedAt)
	if !tk.UpdatedAt.Equal(tk.CreatedAt) {
		t.Errorf("UpdatedAt = %v, want CreatedAt %v", tk.UpdatedAt, tk.CreatedAt)
	}
	got, err := s.FindToolkitByID(ctx, "math")
	must(t, err)
	diff(t, "toolkit", tk, got)
	for i := range tk.Tools {
		w, g := tk.Tools[i], got.Tools[i]
		if !bytes.Equal(w.InputSchema, g.InputSchema) || !bytes.Equal(w.OutputSchema, g.OutputSchema) {
			t.Errorf("tool %s: schemas changed in storage:\n got %s %s\nwant %s %s",
				w.Name, g.InputSchema, g.OutputSchema, w.InputSchema, w.OutputSchema)
		}
	}
	if a := got.Tools[1].Executor.Auth; a == nil || a.SealedSecret != "v1.sealed-header-secret" || a.Secret != "" {
		t.Errorf("auth = %+v, want the sealed secret back and no plaintext", a)
	}
}

func testToolkitWithoutTools(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	tk := &toolkit.Toolkit{ID: "empty", Name: "Empty"}
	must(t, s.CreateToolkit(ctx, tk))
	got, err := s.FindToolkitByID(ctx, "empty")
	must(t, err)
	diff(t, "toolkit", tk, got)
	if len(got.Tools) != 0 {
		t.Errorf("got %d tools, want none", len(got.Tools))
	}
}

func testCreateToolkitConflict(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreateToolkit(ctx, sampleToolkit("math")))
	again := &toolkit.Toolkit{ID: "math", Name: "Other"}
	wantKind(t, s.CreateToolkit(ctx, again), toolkit.KindConflict, `"math"`)
	if again.Revision != 0 || !again.CreatedAt.IsZero() {
		t.Errorf("a failed create changed its argument: %+v", again)
	}
	got, err := s.FindToolkitByID(ctx, "math")
	must(t, err)
	if got.Name != "Math" || len(got.Tools) != 4 {
		t.Errorf("the failed create changed the stored toolkit: %+v", got)
	}

	// Two tools of one name: the toolkit must not be half created.
	dup := &toolkit.Toolkit{ID: "dup", Name: "Dup", Tools: []toolkit.Tool{
		{Name: "x", InputSchema: json.RawMessage(`{"type":"object"}`), Executor: toolkit.Executor{Kind: toolkit.ExecutorRemote}},
		{Name: "x", InputSchema: json.RawMessage(`{"type":"object"}`), Executor: toolkit.Executor{Kind: toolkit.ExecutorRemote}},
	}}
	wantKind(t, s.CreateToolkit(ctx, dup), toolkit.KindConflict, `"x"`)
	_, err = s.FindToolkitByID(ctx, "dup")
	wantKind(t, err, toolkit.KindNotFound)
}

func testPutToolkit(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	first := sampleToolkit("math")
	created, err := s.PutToolkit(ctx, first)
	must(t, err)
	if !created || first.Revision != 1 {
		t.Fatalf("first put: created=%v revision=%d, want true 1", created, first.Revision)
	}
	checkStamp(t, "CreatedAt", first.CreatedAt)

	// Replace: fewer tools, in another order, other fields changed.
	second := sampleToolkit("math")
	second.Name, second.Description, second.Instructions = "Maths", "Changed", ""
	second.Tools = []toolkit.Tool{second.Tools[3], second.Tools[0]}
	second.Tools[1].Annotations = nil
	created, err = s.PutToolkit(ctx, second)
	must(t, err)
	if created || second.Revision != 2 {
		t.Errorf("replace: created=%v revision=%d, want false 2", created, second.Revision)
	}
	if !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("replace changed CreatedAt from %v to %v", first.CreatedAt, second.CreatedAt)
	}
	if second.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", first.UpdatedAt, second.UpdatedAt)
	}
	got, err := s.FindToolkitByID(ctx, "math")
	must(t, err)
	diff(t, "replaced toolkit", second, got)

	third := &toolkit.Toolkit{ID: "math", Name: "Maths"}
	_, err = s.PutToolkit(ctx, third)
	must(t, err)
	if third.Revision != 3 {
		t.Errorf("revision = %d after the third put, want 3", third.Revision)
	}
	got, err = s.FindToolkitByID(ctx, "math")
	must(t, err)
	diff(t, "emptied toolkit", third, got)
}

func testToolkitNotFound(t *testing.T, s toolkit.Store) {
	_, err := s.FindToolkitByID(t.Context(), "nope")
	wantKind(t, err, toolkit.KindNotFound, `toolkit "nope" not found`)
	wantKind(t, s.DeleteToolkit(t.Context(), "nope"), toolkit.KindNotFound, `"nope"`)
}

func testListToolkits(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	got, err := s.ListToolkits(ctx)
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Errorf("ListToolkits on an empty store = %#v, want an empty, non-nil slice", got)
	}
	var want []*toolkit.Toolkit
	for _, id := range []string{"zeta", "alpha", "mid"} {
		tk := sampleToolkit(id)
		if id == "mid" {
			tk.Tools = nil
		}
		must(t, s.CreateToolkit(ctx, tk))
		want = append(want, tk)
	}
	want[0], want[1], want[2] = want[1], want[2], want[0] // by id
	got, err = s.ListToolkits(ctx)
	must(t, err)
	diff(t, "toolkits", want, got)
}

func testDeleteToolkit(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreateToolkit(ctx, sampleToolkit("math")))
	must(t, s.DeleteToolkit(ctx, "math"))
	_, err := s.FindToolkitByID(ctx, "math")
	wantKind(t, err, toolkit.KindNotFound)
	wantKind(t, s.DeleteToolkit(ctx, "math"), toolkit.KindNotFound)

	// The tools went with it: the id starts afresh.
	again := &toolkit.Toolkit{ID: "math", Name: "New"}
	created, err := s.PutToolkit(ctx, again)
	must(t, err)
	got, err := s.FindToolkitByID(ctx, "math")
	must(t, err)
	if !created || got.Revision != 1 || len(got.Tools) != 0 {
		t.Errorf("recreated toolkit: created=%v revision=%d tools=%d, want true 1 0", created, got.Revision, len(got.Tools))
	}
}

func testToolkitPlaintextSecret(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	tk := sampleToolkit("leaky")
	tk.Tools[1].Executor.Auth.Secret = "plaintext"
	err := s.CreateToolkit(ctx, tk)
	wantKind(t, err, toolkit.KindInternal, "plaintext")
	_, err = s.PutToolkit(ctx, tk)
	wantKind(t, err, toolkit.KindInternal, "plaintext")
	_, err = s.FindToolkitByID(ctx, "leaky")
	wantKind(t, err, toolkit.KindNotFound)
}

// ---- API keys ----

func sampleKey(id, kind string) *toolkit.APIKey {
	secret := toolkit.NewKeySecret(kind)
	return &toolkit.APIKey{
		ID: id, Name: "key " + id, Kind: kind, Prefix: secret[:12], Hash: toolkit.HashKey(secret),
		// Nanoseconds on purpose: the store keeps microseconds and says so
		// by normalising the argument.
		CreatedAt: time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600)),
	}
}

func testAPIKeys(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	client := sampleKey("key_client", toolkit.KeyClient)
	client.Toolkits = []string{"math", "weather"}
	client.OAuthRedirectURLs = []string{"https://app.example.com/done"}
	client.CreatedAt = client.CreatedAt.Add(time.Second) // listed after the others
	tk := sampleKey("key_toolkit", toolkit.KeyToolkit)
	tk.ToolkitID = "weather"
	admin := sampleKey("key_admin", toolkit.KeyAdmin)
	for _, k := range []*toolkit.APIKey{client, tk, admin} {
		must(t, s.CreateAPIKey(ctx, k))
	}
	wantCreated := time.Date(2025, 3, 4, 4, 6, 8, 123456000, time.UTC)
	if !client.CreatedAt.Equal(wantCreated) || client.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt normalised to %v, want %v", client.CreatedAt, wantCreated)
	}

	got, err := s.FindAPIKeyByHash(ctx, client.Hash)
	must(t, err)
	diff(t, "key by hash", client, got)
	got, err = s.FindAPIKeyByID(ctx, "key_toolkit")
	must(t, err)
	diff(t, "key by id", tk, got)

	all, err := s.ListAPIKeys(ctx)
	must(t, err)
	diff(t, "keys", []*toolkit.APIKey{admin, tk, client}, all) // by created_at, then id

	_, err = s.FindAPIKeyByHash(ctx, toolkit.HashKey("unknown"))
	wantKind(t, err, toolkit.KindNotFound)
	_, err = s.FindAPIKeyByID(ctx, "key_nope")
	wantKind(t, err, toolkit.KindNotFound, `"key_nope"`)

	// An id left empty is given one.
	anon := sampleKey("", toolkit.KeyClient)
	must(t, s.CreateAPIKey(ctx, anon))
	if anon.ID == "" {
		t.Error("CreateAPIKey left the id empty")
	}
	if _, err := s.FindAPIKeyByID(ctx, anon.ID); err != nil {
		t.Error(err)
	}
}

func testAPIKeyConflicts(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	k := sampleKey("key_a", toolkit.KeyClient)
	must(t, s.CreateAPIKey(ctx, k))
	wantKind(t, s.CreateAPIKey(ctx, sampleKey("key_a", toolkit.KeyClient)), toolkit.KindConflict, `"key_a"`)
	sameHash := sampleKey("key_b", toolkit.KeyClient)
	sameHash.Hash = k.Hash
	wantKind(t, s.CreateAPIKey(ctx, sameHash), toolkit.KindConflict)
	putSameHash := sampleKey("key_c", toolkit.KeyAdmin)
	putSameHash.Hash = k.Hash
	wantKind(t, s.PutAPIKey(ctx, putSameHash), toolkit.KindConflict)
}

func testRevokeAPIKey(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	k := sampleKey("key_a", toolkit.KeyClient)
	must(t, s.CreateAPIKey(ctx, k))
	at := time.Now().Add(-time.Minute)
	must(t, s.RevokeAPIKey(ctx, "key_a", at))
	got, err := s.FindAPIKeyByHash(ctx, k.Hash) // revoked keys are found too
	must(t, err)
	if got.RevokedAt == nil || !got.RevokedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at)
	}
	wantKind(t, s.RevokeAPIKey(ctx, "key_a", time.Now()), toolkit.KindNotFound, `"key_a"`)
	wantKind(t, s.RevokeAPIKey(ctx, "key_nope", time.Now()), toolkit.KindNotFound, `"key_nope"`)
	got, err = s.FindAPIKeyByID(ctx, "key_a")
	must(t, err)
	if !got.RevokedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("a second revoke moved RevokedAt to %v", got.RevokedAt)
	}
}

func testTouchAPIKey(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreateAPIKey(ctx, sampleKey("key_a", toolkit.KeyClient)))
	later := time.Now()
	earlier := later.Add(-time.Hour)
	must(t, s.TouchAPIKey(ctx, "key_a", later))
	must(t, s.TouchAPIKey(ctx, "key_a", earlier)) // late arrival: must not go back
	got, err := s.FindAPIKeyByID(ctx, "key_a")
	must(t, err)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(later.Truncate(time.Microsecond)) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, later)
	}
	wantKind(t, s.TouchAPIKey(ctx, "key_nope", later), toolkit.KindNotFound, `"key_nope"`)
}

func testCountActiveAPIKeys(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	count := func(kind string) int {
		t.Helper()
		n, err := s.CountActiveAPIKeys(ctx, kind)
		must(t, err)
		return n
	}
	if n := count(toolkit.KeyAdmin); n != 0 {
		t.Errorf("admin keys in an empty store = %d", n)
	}
	for i, kind := range []string{toolkit.KeyAdmin, toolkit.KeyAdmin, toolkit.KeyClient} {
		must(t, s.CreateAPIKey(ctx, sampleKey(fmt.Sprintf("key_%d", i), kind)))
	}
	must(t, s.RevokeAPIKey(ctx, "key_0", time.Now()))
	if n := count(toolkit.KeyAdmin); n != 1 {
		t.Errorf("active admin keys = %d, want 1", n)
	}
	if n := count(toolkit.KeyClient); n != 1 {
		t.Errorf("active client keys = %d, want 1", n)
	}
	if n := count(""); n != 2 {
		t.Errorf("active keys of any kind = %d, want 2", n)
	}
}

func testPutAPIKey(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	old := sampleKey(toolkit.BootstrapAdminKeyID, toolkit.KeyAdmin)
	must(t, s.PutAPIKey(ctx, old))
	must(t, s.RevokeAPIKey(ctx, old.ID, time.Now()))

	// Replacing (ATP_ADMIN_KEY changed): the new secret works, the old does
	// not, and the key is live again.
	replaced := sampleKey(toolkit.BootstrapAdminKeyID, toolkit.KeyAdmin)
	replaced.Name = "rotated"
	must(t, s.PutAPIKey(ctx, replaced))
	got, err := s.FindAPIKeyByHash(ctx, replaced.Hash)
	must(t, err)
	diff(t, "replaced key", replaced, got)
	_, err = s.FindAPIKeyByHash(ctx, old.Hash)
	wantKind(t, err, toolkit.KindNotFound)
	all, err := s.ListAPIKeys(ctx)
	must(t, err)
	if len(all) != 1 {
		t.Errorf("%d keys after a replace, want 1", len(all))
	}
}

// ---- platforms ----

func samplePlatform(id string) *toolkit.Platform {
	pkce := false
	return &toolkit.Platform{
		ID: id, Name: "HubSpot", AuthURL: "https://app.hubspot.com/oauth/authorize",
		TokenURL: "https://api.hubapi.com/oauth/v1/token", ClientID: "client-" + id,
		SealedClientSecret: "v1.sealed-client-secret",
		Scopes:             []string{"crm.objects.contacts.read", "oauth"},
		AuthParams:         map[string]string{"access_type": "offline", "prompt": "consent"},
		PKCE:               &pkce, TokenAuthStyle: "basic",
		UserinfoURL:        "https://api.hubapi.com/oauth/v1/access-tokens/{access_token}",
		ExposeRefreshToken: true,
	}
}

func testPlatforms(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	pkceOff := samplePlatform("hubspot")
	pkceDefault := &toolkit.Platform{ID: "github", Name: "GitHub", AuthURL: "https://github.com/login/oauth/authorize",
		TokenURL: "https://github.com/login/oauth/access_token", ClientID: "gh", TokenAuthStyle: "auto"}
	on := true
	pkceOn := samplePlatform("google")
	pkceOn.PKCE = &on
	for _, p := range []*toolkit.Platform{pkceOff, pkceDefault, pkceOn} {
		must(t, s.CreatePlatform(ctx, p))
		checkStamp(t, "CreatedAt", p.CreatedAt)
	}
	for _, want := range []*toolkit.Platform{pkceOff, pkceDefault, pkceOn} {
		got, err := s.FindPlatformByID(ctx, want.ID)
		must(t, err)
		diff(t, "platform "+want.ID, want, got)
		if (got.PKCE == nil) != (want.PKCE == nil) || (got.PKCE != nil && *got.PKCE != *want.PKCE) {
			t.Errorf("platform %s: PKCE = %v, want %v (nil, false and true are distinct)", want.ID, got.PKCE, want.PKCE)
		}
	}
	all, err := s.ListPlatforms(ctx)
	must(t, err)
	diff(t, "platforms", []*toolkit.Platform{pkceDefault, pkceOn, pkceOff}, all)

	must(t, s.DeletePlatform(ctx, "github"))
	_, err = s.FindPlatformByID(ctx, "github")
	wantKind(t, err, toolkit.KindNotFound, `platform "github" not found`)
	wantKind(t, s.DeletePlatform(ctx, "github"), toolkit.KindNotFound)
}

func testPutPlatform(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	p := samplePlatform("hubspot")
	created, err := s.PutPlatform(ctx, p)
	must(t, err)
	if !created {
		t.Error("first put: created = false")
	}
	q := samplePlatform("hubspot")
	q.PKCE, q.Scopes, q.AuthParams, q.SealedClientSecret = nil, nil, nil, "v1.rotated"
	created, err = s.PutPlatform(ctx, q)
	must(t, err)
	if created {
		t.Error("replace: created = true")
	}
	if !q.CreatedAt.Equal(p.CreatedAt) || q.UpdatedAt.Before(p.UpdatedAt) {
		t.Errorf("replace: CreatedAt %v → %v, UpdatedAt %v → %v; want CreatedAt kept and UpdatedAt not earlier",
			p.CreatedAt, q.CreatedAt, p.UpdatedAt, q.UpdatedAt)
	}
	got, err := s.FindPlatformByID(ctx, "hubspot")
	must(t, err)
	diff(t, "replaced platform", q, got)
}

func testPlatformErrors(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	wantKind(t, s.CreatePlatform(ctx, samplePlatform("hubspot")), toolkit.KindConflict, `"hubspot"`)
	leaky := samplePlatform("leaky")
	leaky.ClientSecret = "plaintext"
	wantKind(t, s.CreatePlatform(ctx, leaky), toolkit.KindInternal, "plaintext")
	_, err := s.PutPlatform(ctx, leaky)
	wantKind(t, err, toolkit.KindInternal, "plaintext")
	_, err = s.FindPlatformByID(ctx, "leaky")
	wantKind(t, err, toolkit.KindNotFound)
}

// ---- connections ----

func sampleConnection(platform, user, clientKey string) *toolkit.Connection {
	issued := time.Now()
	exp := issued.Add(time.Hour)
	return &toolkit.Connection{
		PlatformID: platform, ExternalUserID: user, ExternalUserEmail: user + "@example.com", ClientKeyID: clientKey,
		Status: toolkit.ConnActive, Scope: "crm.objects.contacts.read oauth", ExpiresAt: &exp, TokenIssuedAt: &issued,
		SealedAccessToken: "v1.sealed-access", SealedRefreshToken: "v1.sealed-refresh",
	}
}

func testConnections(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	c := sampleConnection("hubspot", "u1", "key_a")
	must(t, s.UpsertConnection(ctx, c))
	if c.ID == "" {
		t.Fatal("UpsertConnection left the id empty")
	}
	checkStamp(t, "CreatedAt", c.CreatedAt)
	got, err := s.FindConnectionByID(ctx, c.ID)
	must(t, err)
	diff(t, "connection", c, got)

	// Same (platform, user, client key): the row is updated in place and
	// keeps its id, whatever id the caller brought.
	again := sampleConnection("hubspot", "u1", "key_a")
	again.ID = "conn_other"
	again.Status, again.Scope, again.ExpiresAt = toolkit.ConnNeedsReauth, "oauth", nil
	again.SealedAccessToken, again.SealedRefreshToken, again.ExternalUserEmail = "v1.new-access", "", ""
	must(t, s.UpsertConnection(ctx, again))
	if again.ID != c.ID {
		t.Errorf("upsert changed the id from %s to %s", c.ID, again.ID)
	}
	if !again.CreatedAt.Equal(c.CreatedAt) || again.UpdatedAt.Before(c.UpdatedAt) {
		t.Errorf("upsert: CreatedAt %v → %v, UpdatedAt %v → %v", c.CreatedAt, again.CreatedAt, c.UpdatedAt, again.UpdatedAt)
	}
	got, err = s.FindConnectionByID(ctx, c.ID)
	must(t, err)
	diff(t, "updated connection", again, got)
	if _, err := s.FindConnectionByID(ctx, "conn_other"); !toolkit.IsNotFound(err) {
		t.Errorf("FindConnectionByID(conn_other) = %v, want not found", err)
	}

	// Another client key is another connection.
	other := sampleConnection("hubspot", "u1", "key_b")
	must(t, s.UpsertConnection(ctx, other))
	if other.ID == c.ID {
		t.Error("a connection of another client key got the same id")
	}

	must(t, s.DeleteConnection(ctx, c.ID))
	_, err = s.FindConnectionByID(ctx, c.ID)
	wantKind(t, err, toolkit.KindNotFound, c.ID)
	wantKind(t, s.DeleteConnection(ctx, c.ID), toolkit.KindNotFound)

	// Connections go with their platform.
	must(t, s.DeletePlatform(ctx, "hubspot"))
	_, err = s.FindConnectionByID(ctx, other.ID)
	wantKind(t, err, toolkit.KindNotFound)
}

func testListConnectionsFilter(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	must(t, s.CreatePlatform(ctx, samplePlatform("google")))
	var all []*toolkit.Connection
	for _, c := range [][3]string{
		{"hubspot", "u1", "key_a"}, {"hubspot", "u1", "key_b"}, {"hubspot", "u2", "key_a"},
		{"google", "u1", "key_a"}, {"google", "u2", ""},
	} {
		conn := sampleConnection(c[0], c[1], c[2])
		must(t, s.UpsertConnection(ctx, conn))
		all = append(all, conn)
	}
	for _, tc := range []struct {
		f    toolkit.ConnectionFilter
		want []int
	}{
		{toolkit.ConnectionFilter{}, []int{0, 1, 2, 3, 4}},
		{toolkit.ConnectionFilter{PlatformID: "hubspot"}, []int{0, 1, 2}},
		{toolkit.ConnectionFilter{ExternalUserID: "u1"}, []int{0, 1, 3}},
		{toolkit.ConnectionFilter{ClientKeyID: "key_a"}, []int{0, 2, 3}},
		{toolkit.ConnectionFilter{PlatformID: "hubspot", ExternalUserID: "u1", ClientKeyID: "key_b"}, []int{1}},
		{toolkit.ConnectionFilter{PlatformID: "google", ExternalUserID: "u2"}, []int{4}},
		{toolkit.ConnectionFilter{PlatformID: "nope"}, nil},
	} {
		got, err := s.ListConnections(ctx, tc.f)
		must(t, err)
		if got == nil {
			t.Errorf("ListConnections(%+v) = nil, want a non-nil slice", tc.f)
		}
		want := []*toolkit.Connection{}
		for _, i := range tc.want {
			want = append(want, all[i])
		}
		diff(t, fmt.Sprintf("connections for %+v", tc.f), want, got)
	}
}

func testConnectionErrors(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	_, err := s.FindConnectionByID(ctx, "conn_nope")
	wantKind(t, err, toolkit.KindNotFound, `connection "conn_nope" not found`)
	wantKind(t, s.UpsertConnection(ctx, sampleConnection("nope", "u1", "")), toolkit.KindNotFound, `"nope"`)

	// An id already used by another connection is a conflict, not a takeover.
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	first := sampleConnection("hubspot", "u1", "")
	must(t, s.UpsertConnection(ctx, first))
	thief := sampleConnection("hubspot", "u2", "")
	thief.ID = first.ID
	wantKind(t, s.UpsertConnection(ctx, thief), toolkit.KindConflict)
}

// ---- settings, ping ----

func testSettings(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	_, err := s.GetSetting(ctx, "admin_key_generated")
	wantKind(t, err, toolkit.KindNotFound, `setting "admin_key_generated" not found`)
	must(t, s.SetSetting(ctx, "admin_key_generated", "true"))
	must(t, s.SetSetting(ctx, "other", ""))
	must(t, s.SetSetting(ctx, "admin_key_generated", "2025-01-01"))
	for key, want := range map[string]string{"admin_key_generated": "2025-01-01", "other": ""} {
		got, err := s.GetSetting(ctx, key)
		must(t, err)
		if got != want {
			t.Errorf("GetSetting(%q) = %q, want %q", key, got, want)
		}
	}
}

func testPing(t *testing.T, s toolkit.Store) {
	must(t, s.Ping(t.Context()))
}

// ---- concurrency ----

// testConcurrentPutToolkit: puts of one toolkit must take turns. Each sees
// the revision of the one before (no lost update), and no reader ever sees
// a mix of two puts.
func testConcurrentPutToolkit(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	variant := func(i int) *toolkit.Toolkit {
		return &toolkit.Toolkit{ID: "race", Name: fmt.Sprintf("v%d", i), Tools: []toolkit.Tool{
			{Name: fmt.Sprintf("t%d", i), InputSchema: json.RawMessage(`{"type":"object"}`), Executor: toolkit.Executor{Kind: toolkit.ExecutorRemote}},
			{Name: "common", InputSchema: json.RawMessage(`{"type":"object"}`), Executor: toolkit.Executor{Kind: toolkit.ExecutorJS, Code: fmt.Sprint(i)}},
		}}
	}
	must(t, s.CreateToolkit(ctx, variant(0)))

	const writers = 20
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			tk, err := s.FindToolkitByID(ctx, "race")
			if err != nil {
				readerErr <- err
				return
			}
			i := strings.TrimPrefix(tk.Name, "v")
			if len(tk.Tools) != 2 || tk.Tools[0].Name != "t"+i || tk.Tools[1].Executor.Code != i {
				readerErr <- fmt.Errorf("read a mix of puts: %s with tools %+v", tk.Name, tk.Tools)
				return
			}
		}
	}()

	revs := make(chan int64, writers)
	var wg sync.WaitGroup
	for i := 1; i <= writers; i++ {
		wg.Go(func() {
			tk := variant(i)
			created, err := s.PutToolkit(ctx, tk)
			if err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			if created {
				t.Errorf("put %d: created = true for an existing toolkit", i)
			}
			revs <- tk.Revision
		})
	}
	wg.Wait()
	close(done)
	close(revs)
	if err := <-readerErr; err != nil {
		t.Error(err)
	}
	seen := map[int64]bool{}
	for r := range revs {
		if seen[r] || r < 2 || r > writers+1 {
			t.Errorf("revision %d returned twice or out of range", r)
		}
		seen[r] = true
	}
	got, err := s.FindToolkitByID(ctx, "race")
	must(t, err)
	if got.Revision != writers+1 {
		t.Errorf("final revision = %d, want %d: a put was lost", got.Revision, writers+1)
	}
}

func testConcurrentCreateAPIKey(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.CreateAPIKey(ctx, sampleKey(fmt.Sprintf("key_%02d", i), toolkit.KeyClient)); err != nil {
				t.Errorf("create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	count, err := s.CountActiveAPIKeys(ctx, toolkit.KeyClient)
	must(t, err)
	keys, err := s.ListAPIKeys(ctx)
	must(t, err)
	if count != n || len(keys) != n {
		t.Errorf("after %d concurrent creates: count %d, listed %d", n, count, len(keys))
	}
}

// testConcurrentUpsertConnection: racing first logins of one user make one
// connection, not a unique violation.
func testConcurrentUpsertConnection(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	const n = 10
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := sampleConnection("hubspot", "u1", "key_a")
			c.SealedAccessToken = fmt.Sprintf("v1.access-%d", i)
			if err := s.UpsertConnection(ctx, c); err != nil {
				t.Errorf("upsert %d: %v", i, err)
				return
			}
			ids <- c.ID
		})
	}
	wg.Wait()
	close(ids)
	all, err := s.ListConnections(ctx, toolkit.ConnectionFilter{})
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("%d connections after concurrent upserts of one user, want 1", len(all))
	}
	for id := range ids {
		if id != all[0].ID {
			t.Errorf("an upsert reported id %s, the row has %s", id, all[0].ID)
		}
	}
}
