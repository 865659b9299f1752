package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// The contract of the OAuth flow's store methods: connections found by
// their natural key, the per-connection lock that serialises refreshes,
// single-use states, and re-sealing for key rotation.

func testFindConnection(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	c := sampleConnection("hubspot", "user@example.com", "key_a")
	must(t, s.UpsertConnection(ctx, c))
	got, err := s.FindConnection(ctx, "hubspot", "user@example.com", "key_a")
	must(t, err)
	diff(t, "connection", c, got)
	for _, k := range [][3]string{
		{"hubspot", "user@example.com", "key_b"}, // another client key
		{"hubspot", "other", "key_a"},
		{"google", "user@example.com", "key_a"},
		{"hubspot", "user@example.com", ""},
	} {
		_, err := s.FindConnection(ctx, k[0], k[1], k[2])
		wantKind(t, err, toolkit.KindNotFound, k[1])
	}
}

func testWithConnectionLock(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	c := sampleConnection("hubspot", "u1", "key_a")
	must(t, s.UpsertConnection(ctx, c))

	// nil from fn: nothing is written, the connection comes back as read.
	got, err := s.WithConnectionLock(ctx, c.ID, func(in *toolkit.Connection) (*toolkit.Connection, error) {
		diff(t, "connection under the lock", c, in)
		return nil, nil
	})
	must(t, err)
	diff(t, "unchanged connection", c, got)

	// A returned connection is written: its mutable fields, not its keys.
	issued := time.Now().Add(-time.Minute)
	exp := issued.Add(2 * time.Hour)
	got, err = s.WithConnectionLock(ctx, c.ID, func(in *toolkit.Connection) (*toolkit.Connection, error) {
		next := *in
		next.Status, next.Scope, next.ExternalUserEmail = toolkit.ConnNeedsReauth, "a b", "new@example.com"
		next.SealedAccessToken, next.SealedRefreshToken = "v1.access-2", "v1.refresh-2"
		next.ExpiresAt, next.TokenIssuedAt = &exp, &issued
		next.PlatformID, next.ExternalUserID, next.ClientKeyID = "other", "other", "other" // ignored
		return &next, nil
	})
	must(t, err)
	want := *c
	want.Status, want.Scope, want.ExternalUserEmail = toolkit.ConnNeedsReauth, "a b", "new@example.com"
	want.SealedAccessToken, want.SealedRefreshToken = "v1.access-2", "v1.refresh-2"
	e, i := exp.UTC().Truncate(time.Microsecond), issued.UTC().Truncate(time.Microsecond)
	want.ExpiresAt, want.TokenIssuedAt, want.UpdatedAt = &e, &i, got.UpdatedAt
	diff(t, "connection written under the lock", &want, got)
	if got.UpdatedAt.Before(c.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v → %v", c.UpdatedAt, got.UpdatedAt)
	}
	stored, err := s.FindConnectionByID(ctx, c.ID)
	must(t, err)
	diff(t, "stored connection", got, stored)

	// An error of fn comes back as it is; nothing is written.
	boom := errors.New("provider down")
	_, err = s.WithConnectionLock(ctx, c.ID, func(in *toolkit.Connection) (*toolkit.Connection, error) {
		next := *in
		next.SealedAccessToken = "v1.never"
		return &next, boom
	})
	if err != boom {
		t.Errorf("error of fn came back as %v, want it as it is", err)
	}
	stored, err = s.FindConnectionByID(ctx, c.ID)
	must(t, err)
	if stored.SealedAccessToken != "v1.access-2" {
		t.Errorf("a failed fn wrote %q", stored.SealedAccessToken)
	}

	_, err = s.WithConnectionLock(ctx, "conn_missing", func(*toolkit.Connection) (*toolkit.Connection, error) {
		t.Error("fn ran for a connection that does not exist")
		return nil, nil
	})
	wantKind(t, err, toolkit.KindNotFound, "conn_missing")
}

// testWithConnectionLockSerialises: concurrent read-modify-writes under
// the lock lose no update, and no two fns of one connection overlap.
// Another connection's lock is not held up.
func testWithConnectionLockSerialises(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	c := sampleConnection("hubspot", "u1", "key_a")
	c.Scope = "0"
	must(t, s.UpsertConnection(ctx, c))
	other := sampleConnection("hubspot", "u2", "key_a")
	must(t, s.UpsertConnection(ctx, other))

	const n = 20
	var inside, overlaps atomic.Int32
	release := make(chan struct{})
	entered := make(chan struct{}, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.WithConnectionLock(ctx, c.ID, func(in *toolkit.Connection) (*toolkit.Connection, error) {
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				defer inside.Add(-1)
				entered <- struct{}{}
				<-release
				v, err := strconv.Atoi(in.Scope)
				if err != nil {
					return nil, err
				}
				next := *in
				next.Scope = strconv.Itoa(v + 1)
				return &next, nil
			})
			if err != nil {
				t.Errorf("WithConnectionLock: %v", err)
			}
		})
	}
	<-entered // one holder is inside and waits for release
	// The other connection's lock is free meanwhile.
	if _, err := s.WithConnectionLock(ctx, other.ID, func(*toolkit.Connection) (*toolkit.Connection, error) { return nil, nil }); err != nil {
		t.Errorf("the lock of another connection: %v", err)
	}
	close(release)
	wg.Wait()
	got, err := s.FindConnectionByID(ctx, c.ID)
	must(t, err)
	if got.Scope != strconv.Itoa(n) {
		t.Errorf("after %d increments under the lock the counter is %s (lost updates)", n, got.Scope)
	}
	if overlaps.Load() != 0 {
		t.Errorf("%d functions ran while another held the lock of the same connection", overlaps.Load())
	}
}

func sampleState(platform, secret string, expires time.Time) *toolkit.OAuthState {
	h := sha256.Sum256([]byte(secret))
	return &toolkit.OAuthState{
		Hash: h[:], PlatformID: platform, ExternalUserID: "user+1@example.com", ClientKeyID: "key_a",
		RedirectURL: "https://app.example.com/done?x=1", SealedVerifier: "v1.sealed-verifier", ExpiresAt: expires,
	}
}

func testOAuthStates(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	now := time.Now()
	st := sampleState("hubspot", "state-1", now.Add(10*time.Minute))
	must(t, s.CreateOAuthState(ctx, st))
	checkStamp(t, "CreatedAt", st.CreatedAt)
	wantKind(t, s.CreateOAuthState(ctx, sampleState("hubspot", "state-1", now.Add(time.Minute))), toolkit.KindConflict)
	wantKind(t, s.CreateOAuthState(ctx, sampleState("missing", "state-2", now.Add(time.Minute))), toolkit.KindNotFound)

	got, err := s.TakeOAuthState(ctx, st.Hash)
	must(t, err)
	diff(t, "state", st, got)
	_, err = s.TakeOAuthState(ctx, st.Hash)
	wantKind(t, err, toolkit.KindNotFound) // single use
	h := sha256.Sum256([]byte("never issued"))
	_, err = s.TakeOAuthState(ctx, h[:])
	wantKind(t, err, toolkit.KindNotFound)

	// An expired state is still taken (the caller tells expired from
	// unknown), until the sweep removes it.
	old := sampleState("hubspot", "state-old", now.Add(-time.Second))
	must(t, s.CreateOAuthState(ctx, old))
	live := sampleState("hubspot", "state-live", now.Add(time.Hour))
	must(t, s.CreateOAuthState(ctx, live))
	n, err := s.DeleteExpiredOAuthStates(ctx, now)
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteExpiredOAuthStates removed %d, want 1", n)
	}
	_, err = s.TakeOAuthState(ctx, old.Hash)
	wantKind(t, err, toolkit.KindNotFound)
	expiring := sampleState("hubspot", "state-expiring", now.Add(-time.Minute))
	must(t, s.CreateOAuthState(ctx, expiring))
	got, err = s.TakeOAuthState(ctx, expiring.Hash)
	must(t, err)
	if !got.Expired(now) {
		t.Errorf("state expiring at %v is not expired at %v", got.ExpiresAt, now)
	}

	// States go with their platform.
	must(t, s.DeletePlatform(ctx, "hubspot"))
	_, err = s.TakeOAuthState(ctx, live.Hash)
	wantKind(t, err, toolkit.KindNotFound)
}

// testTakeOAuthStateOnce: of concurrent callbacks with one state, exactly
// one gets it.
func testTakeOAuthStateOnce(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	must(t, s.CreatePlatform(ctx, samplePlatform("hubspot")))
	st := sampleState("hubspot", "raced", time.Now().Add(time.Minute))
	must(t, s.CreateOAuthState(ctx, st))
	const n = 16
	var won, lost atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.TakeOAuthState(ctx, st.Hash)
			switch {
			case err == nil:
				won.Add(1)
			case toolkit.IsNotFound(err):
				lost.Add(1)
			default:
				t.Errorf("TakeOAuthState: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != n-1 {
		t.Errorf("%d callbacks took the state, %d found it gone; want 1 and %d", won.Load(), lost.Load(), n-1)
	}
}

// testResealSecrets: every kind of sealed value goes through the
// ResealFunc, changed ones are written back, a second run changes nothing,
// and the ResealFunc's error stops it.
func testResealSecrets(t *testing.T, s toolkit.Store) {
	ctx := t.Context()
	p := samplePlatform("hubspot")
	p.SealedClientSecret = "old.client"
	must(t, s.CreatePlatform(ctx, p))
	tk := sampleToolkit("math") // one tool with a sealed header secret
	tk.Tools[1].Executor.Auth.SealedSecret = "old.tool"
	must(t, s.CreateToolkit(ctx, tk))
	c := sampleConnection("hubspot", "u1", "key_a")
	c.SealedAccessToken, c.SealedRefreshToken = "old.access", "old.refresh"
	must(t, s.UpsertConnection(ctx, c))
	noRefresh := sampleConnection("hubspot", "u2", "key_a")
	noRefresh.SealedAccessToken, noRefresh.SealedRefreshToken = "new.access", ""
	must(t, s.UpsertConnection(ctx, noRefresh))
	key := &toolkit.APIKey{Name: "c", Kind: toolkit.KeyClient, Hash: []byte("reseal-key-hash")}
	must(t, s.CreateAPIKey(ctx, key))
	wh := &toolkit.Webhook{KeyID: key.ID, URL: "https://hooks.example.com/x", Events: []string{"connection_success"}, SealedSecret: "old.webhook"}
	must(t, s.CreateWebhook(ctx, wh))
	st := sampleState("hubspot", "reseal-state", time.Now().Add(time.Minute))
	st.SealedVerifier = "old.verifier"
	must(t, s.CreateOAuthState(ctx, st))

	reseal := func(v string) (string, bool, error) {
		if rest, ok := strings.CutPrefix(v, "old."); ok {
			return "new." + rest, true, nil
		}
		return v, false, nil
	}
	rep, err := s.ResealSecrets(ctx, reseal)
	must(t, err)
	diff(t, "report", toolkit.ResealReport{
		PlatformSecrets: 1, ToolSecrets: 1, ConnectionTokens: 2, WebhookSecrets: 1, StateVerifiers: 1,
		Checked: 1 + 1 + 3 + 1 + 1,
	}, rep)

	gotP, err := s.FindPlatformByID(ctx, "hubspot")
	must(t, err)
	gotTK, err := s.FindToolkitByID(ctx, "math")
	must(t, err)
	gotC, err := s.FindConnectionByID(ctx, c.ID)
	must(t, err)
	whs, err := s.ListWebhooks(ctx, key.ID)
	must(t, err)
	gotSt, err := s.TakeOAuthState(ctx, st.Hash)
	must(t, err)
	for what, got := range map[string]string{
		"client secret": gotP.SealedClientSecret,
		"tool secret":   gotTK.Tools[1].Executor.Auth.SealedSecret,
		"access token":  gotC.SealedAccessToken,
		"refresh token": gotC.SealedRefreshToken,
		"webhook":       whs[0].SealedSecret,
		"verifier":      gotSt.SealedVerifier,
	} {
		if !strings.HasPrefix(got, "new.") {
			t.Errorf("%s = %q after re-sealing, want new.…", what, got)
		}
	}
	// The rest of the tool is intact.
	tk.Tools[1].Executor.Auth.SealedSecret = "new.tool"
	diff(t, "tools after re-sealing", tk.Tools, gotTK.Tools)
	st.SealedVerifier = gotSt.SealedVerifier
	must(t, s.CreateOAuthState(ctx, st)) // put the taken state back for the runs below

	rep, err = s.ResealSecrets(ctx, reseal)
	must(t, err)
	if rep.Resealed() != 0 || rep.Checked != 7 {
		t.Errorf("second run: %+v, want nothing re-sealed of 7 checked", rep)
	}

	boom := errors.New("unknown key id")
	_, err = s.ResealSecrets(ctx, func(string) (string, bool, error) { return "", false, boom })
	if !errors.Is(err, boom) {
		t.Errorf("ResealSecrets with a failing ResealFunc = %v, want it to wrap %v", err, boom)
	}
	if err != nil && strings.Contains(fmt.Sprint(err), "new.") {
		t.Errorf("the error shows a sealed value: %v", err)
	}
}
