package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// What both engines share for the OAuth flow: the per-connection process
// lock, and which columns hold sealed values (ResealSecrets).

// keyedLocks is a set of mutexes by key, made on demand and dropped when
// nobody holds or waits for them. The zero value is ready to use.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	held chan struct{} // a token in it = locked
	refs int           // holders and waiters
}

// lock takes the lock of key, waiting at most as long as ctx lives; the
// returned func releases it.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.held <- struct{}{}:
		return func() {
			<-l.held
			k.release(key, l)
		}, nil
	case <-ctx.Done():
		k.release(key, l)
		return nil, timeoutOrCanceled(ctx.Err())
	}
}

func (k *keyedLocks) release(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}

// timeoutOrCanceled keeps a cancelled context recognisable (errors.Is
// context.Canceled) and gives a passed deadline its kind.
func timeoutOrCanceled(err error) error {
	if err == context.DeadlineExceeded {
		return timeoutErr(err)
	}
	return err
}

// sealedTable names the columns of a table that hold sealed values, with
// the columns of its primary key. Tools are not here: their secret sits
// inside the executor JSON.
type sealedTable struct {
	table string
	keys  []string
	cols  []string
	count func(r *toolkit.ResealReport, n int)
}

var sealedTables = []sealedTable{
	{"oauth_platforms", []string{"id"}, []string{"sealed_client_secret"},
		func(r *toolkit.ResealReport, n int) { r.PlatformSecrets += n }},
	{"oauth_connections", []string{"id"}, []string{"sealed_access_token", "sealed_refresh_token"},
		func(r *toolkit.ResealReport, n int) { r.ConnectionTokens += n }},
	{"webhooks", []string{"id"}, []string{"sealed_secret"},
		func(r *toolkit.ResealReport, n int) { r.WebhookSecrets += n }},
	{"oauth_states", []string{"state_hash"}, []string{"sealed_verifier"},
		func(r *toolkit.ResealReport, n int) { r.StateVerifiers += n }},
}

// resealValues passes each non-empty value through reseal, in place, and
// reports how many it changed and looked at.
func resealValues(reseal toolkit.ResealFunc, table string, vals []string) (changed, checked int, err error) {
	for i, v := range vals {
		if v == "" {
			continue
		}
		checked++
		out, ch, err := reseal(v)
		if err != nil {
			return changed, checked, &resealError{table: table, err: err}
		}
		if ch {
			vals[i] = out
			changed++
		}
	}
	return changed, checked, nil
}

// resealError is a failure of the caller's ResealFunc: it is returned as
// it is (naming the table), not translated as a database error.
type resealError struct {
	table string
	err   error
}

func (e *resealError) Error() string {
	return fmt.Sprintf("re-sealing a value of %s: %v", e.table, e.err)
}
func (e *resealError) Unwrap() error { return e.err }

// resealExecutor re-seals the secret inside a stored executor; the
// returned JSON is nil when nothing changed.
func resealExecutor(reseal toolkit.ResealFunc, raw []byte) (out []byte, changed, checked int, err error) {
	x, err := decodeExecutor(raw)
	if err != nil {
		return nil, 0, 0, err
	}
	if x.Auth == nil || x.Auth.SealedSecret == "" {
		return nil, 0, 0, nil
	}
	vals := []string{x.Auth.SealedSecret}
	changed, checked, err = resealValues(reseal, "tools", vals)
	if err != nil || changed == 0 {
		return nil, changed, checked, err
	}
	x.Auth.SealedSecret = vals[0]
	out, err = encodeExecutor(x)
	return out, changed, checked, err
}

// stateSubject names a state in messages without showing its hash.
const stateSubject = "oauth state"

// prepareState normalises the times of st to what will be stored.
func prepareState(st *toolkit.OAuthState) {
	if st.CreatedAt.IsZero() {
		st.CreatedAt = now()
	}
	st.CreatedAt, st.ExpiresAt = normTime(st.CreatedAt), normTime(st.ExpiresAt)
}
