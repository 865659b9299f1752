package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// The contract of the methods ChatATP added: toolkit owners, compare-and-
// swap replaces, summaries, remote registrations and webhooks.

func remoteTool(name string) toolkit.Tool {
	return toolkit.Tool{
		Name: name, Description: "served by a process",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"description":"q"}}}`),
		Executor:    toolkit.Executor{Kind: toolkit.ExecutorRemote},
	}
}

func testToolkitOwner(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	tk := &toolkit.Toolkit{ID: "weather", Name: "weather", OwnerKeyID: "key_tk", Tools: []toolkit.Tool{remoteTool("now")}}
	must(t, s.CreateToolkit(ctx, tk))
	got, err := s.FindToolkitByID(ctx, "weather")
	must(t, err)
	diff(t, "owned toolkit", tk, got)

	// An admin replace says nothing of the owner; the owner stays.
	put := &toolkit.Toolkit{ID: "weather", Name: "Weather"}
	_, err = s.PutToolkit(ctx, put)
	must(t, err)
	if put.OwnerKeyID != "key_tk" {
		t.Errorf("PutToolkit gave back owner %q, want the stored key_tk", put.OwnerKeyID)
	}
	put.OwnerKeyID = "key_other"
	_, err = s.PutToolkit(ctx, put)
	must(t, err)
	got, err = s.FindToolkitByID(ctx, "weather")
	must(t, err)
	if got.OwnerKeyID != "key_tk" {
		t.Errorf("owner = %q after a replace naming another, want key_tk", got.OwnerKeyID)
	}

	// PutToolkit that creates sets it.
	created := &toolkit.Toolkit{ID: "news", Name: "news", OwnerKeyID: "key_news"}
	_, err = s.PutToolkit(ctx, created)
	must(t, err)
	got, err = s.FindToolkitByID(ctx, "news")
	must(t, err)
	if got.OwnerKeyID != "key_news" {
		t.Errorf("owner = %q after a creating put, want key_news", got.OwnerKeyID)
	}
}

func testReplaceToolkit(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	first := sampleToolkit("math")
	first.OwnerKeyID = "key_tk"
	must(t, s.CreateToolkit(ctx, first))

	next := sampleToolkit("math")
	next.Name, next.Instructions = "Maths", "new instructions"
	next.Tools = append(next.Tools[:1], remoteTool("extra"))
	must(t, s.ReplaceToolkit(ctx, next, 1))
	if next.Revision != 2 || !next.CreatedAt.Equal(first.CreatedAt) || next.OwnerKeyID != "key_tk" {
		t.Errorf("after replace: revision %d created %v owner %q, want 2, %v, key_tk",
			next.Revision, next.CreatedAt, next.OwnerKeyID, first.CreatedAt)
	}
	if next.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", first.UpdatedAt, next.UpdatedAt)
	}
	got, err := s.FindToolkitByID(ctx, "math")
	must(t, err)
	diff(t, "replaced toolkit", next, got)

	// A replace from a stale revision changes nothing.
	stale := &toolkit.Toolkit{ID: "math", Name: "Stale"}
	err = s.ReplaceToolkit(ctx, stale, 1)
	wantKind(t, err, toolkit.KindConflict, `"math"`, "revision 1")
	var te *toolkit.Error
	if errors.As(err, &te) && te.Code != "revision_mismatch" {
		t.Errorf("code = %q, want revision_mismatch", te.Code)
	}
	got, err = s.FindToolkitByID(ctx, "math")
	must(t, err)
	diff(t, "toolkit after a stale replace", next, got)

	wantKind(t, s.ReplaceToolkit(ctx, &toolkit.Toolkit{ID: "nope", Name: "x"}, 1), toolkit.KindNotFound, `"nope"`)

	leaky := sampleToolkit("math")
	leaky.Tools[1].Executor.Auth.Secret = "plaintext"
	wantKind(t, s.ReplaceToolkit(ctx, leaky, 2), toolkit.KindInternal, "plaintext")

	// A failed tool insert rolls the revision bump back.
	dup := &toolkit.Toolkit{ID: "math", Name: "Dup", Tools: []toolkit.Tool{remoteTool("x"), remoteTool("x")}}
	wantKind(t, s.ReplaceToolkit(ctx, dup, 2), toolkit.KindConflict, `"x"`)
	got, err = s.FindToolkitByID(ctx, "math")
	must(t, err)
	if got.Revision != 2 || len(got.Tools) != 2 {
		t.Errorf("after a failed replace: revision %d, %d tools; want 2 and 2", got.Revision, len(got.Tools))
	}
}

// testConcurrentReplaceToolkit: of several replaces from one revision,
// exactly one wins; the others get revision_mismatch.
func testConcurrentReplaceToolkit(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreateToolkit(ctx, &toolkit.Toolkit{ID: "race", Name: "race"}))
	const n = 8
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		errs      = make([]error, n)
		conflicts int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.ReplaceToolkit(ctx, &toolkit.Toolkit{
				ID: "race", Name: fmt.Sprintf("writer %d", i), Tools: []toolkit.Tool{remoteTool(fmt.Sprintf("t%d", i))},
			}, 1)
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both replaced revision 1", winner, i)
			}
			winner = i
		case toolkit.KindOf(err) == toolkit.KindConflict:
			conflicts++
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if winner < 0 || conflicts != n-1 {
		t.Fatalf("winner %d, %d conflicts; want one winner and %d conflicts", winner, conflicts, n-1)
	}
	got, err := s.FindToolkitByID(ctx, "race")
	must(t, err)
	if got.Revision != 2 || got.Name != fmt.Sprintf("writer %d", winner) || len(got.Tools) != 1 || got.Tools[0].Name != fmt.Sprintf("t%d", winner) {
		t.Errorf("stored %+v, want the winner's toolkit at revision 2", got)
	}
}

func testToolkitSummaries(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	all, err := s.ListToolkitSummaries(ctx)
	must(t, err)
	if all == nil || len(all) != 0 {
		t.Errorf("ListToolkitSummaries on an empty store = %#v, want an empty, non-nil slice", all)
	}
	math := sampleToolkit("math")
	empty := &toolkit.Toolkit{ID: "empty", Name: "Empty", Description: "nothing", OwnerKeyID: "key_x"}
	must(t, s.CreateToolkit(ctx, math))
	must(t, s.CreateToolkit(ctx, empty))
	summary := func(tk *toolkit.Toolkit) *toolkit.ToolkitSummary {
		return &toolkit.ToolkitSummary{
			ID: tk.ID, Name: tk.Name, Description: tk.Description, Instructions: tk.Instructions,
			ToolCount: len(tk.Tools), Revision: tk.Revision, OwnerKeyID: tk.OwnerKeyID,
			CreatedAt: tk.CreatedAt, UpdatedAt: tk.UpdatedAt,
		}
	}
	got, err := s.FindToolkitSummary(ctx, "math")
	must(t, err)
	diff(t, "summary", summary(math), got)
	if got.Version() != math.Version() {
		t.Errorf("summary version %v, toolkit version %v", got.Version(), math.Version())
	}
	all, err = s.ListToolkitSummaries(ctx)
	must(t, err)
	diff(t, "summaries", []*toolkit.ToolkitSummary{summary(empty), summary(math)}, all)
	_, err = s.FindToolkitSummary(ctx, "nope")
	wantKind(t, err, toolkit.KindNotFound, `toolkit "nope" not found`)

	// A delete and re-create repeats the revision, not the version.
	must(t, s.DeleteToolkit(ctx, "empty"))
	again := &toolkit.Toolkit{ID: "empty", Name: "Empty"}
	must(t, s.CreateToolkit(ctx, again))
	got, err = s.FindToolkitSummary(ctx, "empty")
	must(t, err)
	if got.Revision != 1 || got.Version() == summary(empty).Version() {
		t.Errorf("re-created toolkit has version %v, the deleted one had %v", got.Version(), summary(empty).Version())
	}
}

func testRemoteTools(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreateToolkit(ctx, &toolkit.Toolkit{ID: "weather", Name: "weather", Tools: []toolkit.Tool{remoteTool("now"), remoteTool("later")}}))
	list, err := s.ListRemoteTools(ctx, "weather")
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Errorf("ListRemoteTools before any = %#v, want an empty, non-nil slice", list)
	}
	now := &toolkit.RemoteTool{ToolkitID: "weather", Name: "now", KeyID: "key_a", CodeHash: "h1"}
	later := &toolkit.RemoteTool{ToolkitID: "weather", Name: "later", KeyID: "key_a", CodeHash: "h2"}
	must(t, s.PutRemoteTool(ctx, now))
	must(t, s.PutRemoteTool(ctx, later))
	checkStamp(t, "UpdatedAt", now.UpdatedAt)
	again := &toolkit.RemoteTool{ToolkitID: "weather", Name: "now", KeyID: "key_b", CodeHash: "h3"}
	must(t, s.PutRemoteTool(ctx, again))
	list, err = s.ListRemoteTools(ctx, "weather")
	must(t, err)
	diff(t, "remote tools", []*toolkit.RemoteTool{later, again}, list) // by name

	wantKind(t, s.PutRemoteTool(ctx, &toolkit.RemoteTool{ToolkitID: "nope", Name: "x", KeyID: "k"}), toolkit.KindNotFound, `"nope"`)

	must(t, s.DeleteToolkit(ctx, "weather"))
	must(t, s.CreateToolkit(ctx, &toolkit.Toolkit{ID: "weather", Name: "weather"}))
	list, err = s.ListRemoteTools(ctx, "weather")
	must(t, err)
	if len(list) != 0 {
		t.Errorf("remote tools survived their toolkit's deletion: %+v", list)
	}
}

func testRemoteRegistrations(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreateToolkit(ctx, &toolkit.Toolkit{ID: "weather", Name: "weather"}))
	_, err := s.FindRemoteRegistration(ctx, "weather", "key_a")
	wantKind(t, err, toolkit.KindNotFound, `"key_a"`, `"weather"`)

	r := &toolkit.RemoteRegistration{ToolkitID: "weather", KeyID: "key_a", ToolkitHash: "h1"}
	must(t, s.PutRemoteRegistration(ctx, r))
	checkStamp(t, "UpdatedAt", r.UpdatedAt)
	other := &toolkit.RemoteRegistration{ToolkitID: "weather", KeyID: "key_b", ToolkitHash: "hb"}
	must(t, s.PutRemoteRegistration(ctx, other))
	r2 := &toolkit.RemoteRegistration{ToolkitID: "weather", KeyID: "key_a", ToolkitHash: "h2"}
	must(t, s.PutRemoteRegistration(ctx, r2))
	got, err := s.FindRemoteRegistration(ctx, "weather", "key_a")
	must(t, err)
	diff(t, "registration", r2, got)
	got, err = s.FindRemoteRegistration(ctx, "weather", "key_b")
	must(t, err)
	diff(t, "other key's registration", other, got)

	wantKind(t, s.PutRemoteRegistration(ctx, &toolkit.RemoteRegistration{ToolkitID: "nope", KeyID: "k", ToolkitHash: "h"}), toolkit.KindNotFound)

	must(t, s.DeleteToolkit(ctx, "weather"))
	must(t, s.CreateToolkit(ctx, &toolkit.Toolkit{ID: "weather", Name: "weather"}))
	_, err = s.FindRemoteRegistration(ctx, "weather", "key_a")
	wantKind(t, err, toolkit.KindNotFound)
}

func testWebhooks(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	a, b := sampleKey("key_a", toolkit.KeyClient), sampleKey("key_b", toolkit.KeyClient)
	must(t, s.CreateAPIKey(ctx, a))
	must(t, s.CreateAPIKey(ctx, b))
	list, err := s.ListWebhooks(ctx, "key_a")
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Errorf("ListWebhooks before any = %#v, want an empty, non-nil slice", list)
	}

	first := &toolkit.Webhook{
		KeyID: "key_a", URL: "https://hooks.example.com/a", Events: []string{"connection_success", "connection_failed"},
		SealedSecret: "v1.sealed-whsec",
		CreatedAt:    time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", 7200)),
	}
	must(t, s.CreateWebhook(ctx, first))
	if first.ID == "" {
		t.Fatal("CreateWebhook left the id empty")
	}
	if want := time.Date(2025, 1, 2, 1, 4, 5, 678901000, time.UTC); !first.CreatedAt.Equal(want) || first.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt normalised to %v, want %v", first.CreatedAt, want)
	}
	second := &toolkit.Webhook{KeyID: "key_a", URL: "https://hooks.example.com/b", SealedSecret: "v1.s2"}
	must(t, s.CreateWebhook(ctx, second))
	checkStamp(t, "CreatedAt", second.CreatedAt)
	theirs := &toolkit.Webhook{ID: "wh_theirs", KeyID: "key_b", URL: "https://b.example.com", Events: []string{"connection_success"}, SealedSecret: "v1.s3"}
	must(t, s.CreateWebhook(ctx, theirs))

	list, err = s.ListWebhooks(ctx, "key_a")
	must(t, err)
	diff(t, "webhooks of key_a", []*toolkit.Webhook{first, second}, list)
	if list[1].Events != nil {
		t.Errorf("no events came back as %#v, want nil", list[1].Events)
	}

	wantKind(t, s.CreateWebhook(ctx, &toolkit.Webhook{ID: "wh_theirs", KeyID: "key_a", URL: "https://x", SealedSecret: "v1.x"}), toolkit.KindConflict, `"wh_theirs"`)
	wantKind(t, s.CreateWebhook(ctx, &toolkit.Webhook{KeyID: "key_nope", URL: "https://x", SealedSecret: "v1.x"}), toolkit.KindNotFound)

	// Another key's webhook is not found, and stays.
	wantKind(t, s.DeleteWebhook(ctx, "key_a", "wh_theirs"), toolkit.KindNotFound, `"wh_theirs"`)
	must(t, s.DeleteWebhook(ctx, "key_a", first.ID))
	wantKind(t, s.DeleteWebhook(ctx, "key_a", first.ID), toolkit.KindNotFound)
	list, err = s.ListWebhooks(ctx, "key_a")
	must(t, err)
	diff(t, "webhooks after delete", []*toolkit.Webhook{second}, list)
	list, err = s.ListWebhooks(ctx, "key_b")
	must(t, err)
	diff(t, "webhooks of key_b", []*toolkit.Webhook{theirs}, list)
}
