package httptool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// seen is what a test server received.
type seen struct {
	Method, RawPath, RawQuery, Body string
	Header                          http.Header
}

// upstream starts a loopback server that records requests and answers with
// handler (or 200 {"ok":true}).
func upstream(t testing.TB, handler http.HandlerFunc) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{Method: r.Method, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Body: string(b), Header: r.Header.Clone()})
		mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func httpCall(x toolkit.Executor, args string) *toolkit.Call {
	x.Kind = toolkit.ExecutorHTTP
	return &toolkit.Call{
		Toolkit:   &toolkit.Toolkit{ID: "items"},
		Tool:      &toolkit.Tool{Name: "get", InputSchema: json.RawMessage(`{"type":"object"}`), Executor: x},
		Arguments: json.RawMessage(args),
	}
}

func allowPrivate() toolkit.Runner { return New(Options{AllowPrivate: true, Timeout: 5 * time.Second}) }

func wantToolError(t testing.TB, err error, code, contains string) *toolkit.ToolError {
	t.Helper()
	var terr *toolkit.ToolError
	if !errors.As(err, &terr) {
		t.Fatalf("err = %v, want a %s tool error", err, code)
	}
	if terr.Code != code || !strings.Contains(terr.Message, contains) {
		t.Errorf("tool error = %s %q, want %s containing %q", terr.Code, terr.Message, code, contains)
	}
	return terr
}

func TestRequestBuilding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		x    toolkit.Executor
		args string
		cred string
		want seen // Header holds only the headers to check
	}{
		{
			name: "path placeholder is escaped",
			x:    toolkit.Executor{Method: "GET", URL: "/v1/items/{id}"},
			args: `{"id": "a/b c?d"}`,
			want: seen{Method: "GET", RawPath: "/v1/items/a%2Fb%20c%3Fd"},
		},
		{
			name: "dot segments cannot walk up",
			x:    toolkit.Executor{Method: "GET", URL: "/v1/items/{id}/x"},
			args: `{"id": ".."}`,
			want: seen{Method: "GET", RawPath: "/v1/items/%2E%2E/x"},
		},
		{
			name: "numbers and booleans in the path",
			x:    toolkit.Executor{Method: "GET", URL: "/v1/{n}/{f}/{b}/{big}"},
			args: `{"n": 42, "f": 2.50, "b": true, "big": 12345678901234567890123}`,
			want: seen{Method: "GET", RawPath: "/v1/42/2.5/true/12345678901234567890123"},
		},
		{
			name: "query: static part kept, arrays repeated, null left out",
			x:    toolkit.Executor{Method: "GET", URL: "/search?v=1", Query: []string{"q", "tags", "limit", "exact", "skip", "missing", "filter"}},
			args: `{"q": "a b&c", "tags": ["x", 2, null, {"k": 1}], "limit": 1e2, "exact": false, "skip": null, "filter": {"a": [1]}}`,
			want: seen{Method: "GET", RawPath: "/search", RawQuery: "v=1&exact=false&filter=%7B%22a%22%3A%5B1%5D%7D&limit=100&q=a+b%26c&tags=x&tags=2&tags=%7B%22k%22%3A1%7D"},
		},
		{
			name: "placeholder in the query part",
			x:    toolkit.Executor{Method: "GET", URL: "/search?term={term}"},
			args: `{"term": "a&b=c"}`,
			want: seen{Method: "GET", RawPath: "/search", RawQuery: "term=a%26b%3Dc"},
		},
		{
			name: "body input carries the remaining arguments",
			x:    toolkit.Executor{Method: "POST", URL: "/v1/items/{id}", Query: []string{"dry"}, Body: "input"},
			args: `{"id": "7", "dry": true, "name": "n", "tags": ["a"]}`,
			want: seen{Method: "POST", RawPath: "/v1/items/7", RawQuery: "dry=true", Body: `{"name":"n","tags":["a"]}`,
				Header: http.Header{"Content-Type": {"application/json"}}},
		},
		{
			name: "empty body input is an empty object",
			x:    toolkit.Executor{Method: "DELETE", URL: "/v1/items/{id}", Body: "input"},
			args: `{"id": "7"}`,
			want: seen{Method: "DELETE", RawPath: "/v1/items/7", Body: `{}`},
		},
		{
			name: "no body without body input",
			x:    toolkit.Executor{Method: "PUT", URL: "/v1/x"},
			args: `{"a": 1}`,
			want: seen{Method: "PUT", RawPath: "/v1/x"},
		},
		{
			name: "static headers, user agent and accept",
			x:    toolkit.Executor{Method: "GET", URL: "/h", Headers: map[string]string{"X-Static": "1", "Accept": "text/csv"}},
			args: `{}`,
			want: seen{Method: "GET", RawPath: "/h", Header: http.Header{"X-Static": {"1"}, "Accept": {"text/csv"}, "User-Agent": {"atp-test/1"}}},
		},
		{
			name: "bearer",
			x:    toolkit.Executor{Method: "GET", URL: "/a", Auth: &toolkit.HTTPAuth{Type: toolkit.AuthBearer}},
			args: `{}`, cred: "tok-123",
			want: seen{Method: "GET", RawPath: "/a", Header: http.Header{"Authorization": {"Bearer tok-123"}}},
		},
		{
			name: "oauth2 sends the user's token as bearer",
			x:    toolkit.Executor{Method: "GET", URL: "/a", Auth: &toolkit.HTTPAuth{Type: toolkit.AuthOAuth2, Platform: "p"}},
			args: `{}`, cred: "user-token",
			want: seen{Method: "GET", RawPath: "/a", Header: http.Header{"Authorization": {"Bearer user-token"}}},
		},
		{
			name: "header auth",
			x:    toolkit.Executor{Method: "GET", URL: "/a", Auth: &toolkit.HTTPAuth{Type: toolkit.AuthHeader, Name: "X-API-Key"}},
			args: `{}`, cred: "key-9",
			want: seen{Method: "GET", RawPath: "/a", Header: http.Header{"X-Api-Key": {"key-9"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := upstream(t, nil)
			x := tt.x
			x.URL = srv.URL + x.URL
			call := httpCall(x, tt.args)
			call.Credential = tt.cred
			r := New(Options{AllowPrivate: true, Timeout: 5 * time.Second, UserAgent: "atp-test/1"})
			out, err := r.Run(t.Context(), call)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != `{"ok":true}` {
				t.Errorf("result = %s", out)
			}
			reqs := got()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			g := reqs[0]
			for k := range tt.want.Header {
				if diff := cmp.Diff(tt.want.Header.Values(k), g.Header.Values(k)); diff != "" {
					t.Errorf("header %s (-want +got):\n%s", k, diff)
				}
			}
			g.Header, tt.want.Header = nil, nil
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArgumentErrors(t *testing.T) {
	t.Parallel()
	srv, got := upstream(t, nil)
	tests := []struct {
		name, url, args, contains string
	}{
		{"missing placeholder", "/v1/items/{id}", `{}`, "id: required, it fills {id} in the URL"},
		{"null placeholder", "/v1/items/{id}", `{"id": null}`, "id: required"},
		{"object placeholder", "/v1/items/{id}", `{"id": {"a": 1}}`, "id: must be a string, number or boolean"},
		{"arguments not an object", "/v1/items", `[1]`, "must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := allowPrivate().Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: srv.URL + tt.url}, tt.args))
			wantToolError(t, err, toolkit.ToolErrInvalidArguments, tt.contains)
		})
	}
	if n := len(got()); n != 0 {
		t.Errorf("%d requests were sent for invalid arguments", n)
	}
}

func TestResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		status      int
		body        string
		want        string
	}{
		{"json", "application/json; charset=utf-8", 200, `{"a": [1, 2]}`, `{"a": [1, 2]}`},
		{"problem+json", "application/problem+json", 200, `{"a":1}`, `{"a":1}`},
		{"json scalar", "application/json", 200, `42`, `42`},
		{"text", "text/plain", 200, "hello\nworld", `"hello\nworld"`},
		{"html", "text/html", 200, "<p>hi</p>", `"\u003cp\u003ehi\u003c/p\u003e"`},
		{"untyped object", "", 200, `{"a":1}`, `{"a":1}`},
		{"untyped scalar stays text", "", 200, `42`, `"42"`},
		{"invalid json as text", "application/json", 200, `{"a":`, `"{\"a\":"`},
		{"invalid utf-8", "text/plain", 200, "a\xffb", "\"a\uFFFDb\""},
		{"empty", "", 204, "", `null`},
		{"created", "application/json", 201, `{"id":1}`, `{"id":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				} else {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			out, err := allowPrivate().Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: srv.URL}, `{}`))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"401 with body", 401, `{"error": "invalid token"}`, `upstream returned 401: {"error": "invalid token"}`},
		{"multi-line body on one line", 500, "line one\n\n  line\ttwo\r\n", "upstream returned 500: line one line two"},
		{"empty body", 404, "", "upstream returned 404: Not Found"},
		{"bounded excerpt", 502, long, "upstream returned 502: " + long[:maxExcerptBytes] + "…"},
		{"credential redacted", 403, "token super-secret-token-1 is not allowed", "upstream returned 403: token [REDACTED] is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			call := httpCall(toolkit.Executor{Method: "GET", URL: srv.URL, Auth: &toolkit.HTTPAuth{Type: toolkit.AuthBearer}}, `{}`)
			call.Credential = "super-secret-token-1"
			_, err := allowPrivate().Run(t.Context(), call)
			terr := wantToolError(t, err, toolkit.ToolErrUpstream, "")
			if diff := cmp.Diff(tt.want, terr.Message); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCredentialRedactedFromResult(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		// An echo endpoint hands the caller the server's secret.
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"you_sent": r.Header.Get("X-API-Key")})
	})
	call := httpCall(toolkit.Executor{Method: "GET", URL: srv.URL, Auth: &toolkit.HTTPAuth{Type: toolkit.AuthHeader, Name: "X-API-Key"}}, `{}`)
	call.Credential = "static-secret-42"
	out, err := allowPrivate().Run(t.Context(), call)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"you_sent":"[REDACTED]"}`, string(out)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%t", chunked), func(t *testing.T) {
			t.Parallel()
			srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
				body := `"` + strings.Repeat("x", 2000) + `"`
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, body[:1000])
				w.(http.Flusher).Flush()
				io.WriteString(w, body[1000:])
			})
			r := New(Options{AllowPrivate: true, MaxResponseBytes: 1024})
			_, err := r.Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: srv.URL}, `{}`))
			wantToolError(t, err, toolkit.ToolErrResultTooLarge, "larger than the limit of 1024 bytes")
		})
	}
	t.Run("exactly at the limit", func(t *testing.T) {
		t.Parallel()
		srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `"`+strings.Repeat("x", 1022)+`"`)
		})
		r := New(Options{AllowPrivate: true, MaxResponseBytes: 1024})
		if _, err := r.Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: srv.URL}, `{}`)); err != nil {
			t.Fatal(err)
		}
	})
}

// stall answers only when the client gives up, so timeouts are exercised
// without sleeping.
func stall(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t, stall)
	t.Run("tool timeout", func(t *testing.T) {
		t.Parallel()
		x := toolkit.Executor{Method: "GET", URL: srv.URL, TimeoutMS: 50}
		_, err := New(Options{AllowPrivate: true, Timeout: time.Hour}).Run(t.Context(), httpCall(x, `{}`))
		wantToolError(t, err, toolkit.ToolErrTimeout, "the upstream did not answer within 50ms")
	})
	t.Run("server default", func(t *testing.T) {
		t.Parallel()
		_, err := New(Options{AllowPrivate: true, Timeout: 40 * time.Millisecond}).Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: srv.URL}, `{}`))
		wantToolError(t, err, toolkit.ToolErrTimeout, "within 40ms")
	})
	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		slow, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `["start`)
			w.(http.Flusher).Flush()
			stall(w, r)
		})
		_, err := New(Options{AllowPrivate: true, Timeout: 50 * time.Millisecond}).Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: slow.URL}, `{}`))
		wantToolError(t, err, toolkit.ToolErrTimeout, "within 50ms")
	})
	t.Run("caller cancels", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := allowPrivate().Run(ctx, httpCall(toolkit.Executor{Method: "GET", URL: srv.URL}, `{}`))
		var terr *toolkit.ToolError
		if !errors.Is(err, context.Canceled) || errors.As(err, &terr) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("clamped", func(t *testing.T) {
		t.Parallel()
		r := New(Options{Timeout: time.Hour}).(*runner)
		for _, ms := range []int{0, 999_999} {
			if got := r.timeout(&toolkit.Tool{Executor: toolkit.Executor{TimeoutMS: ms}}); got != 300*time.Second {
				t.Errorf("timeout_ms %d: timeout %v, want 300s", ms, got)
			}
		}
	})
}

func TestConnectionFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	_, err = allowPrivate().Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: "http://" + addr + "/x"}, `{}`))
	terr := wantToolError(t, err, toolkit.ToolErrUpstream, "refused the connection")
	if strings.Contains(terr.Message, "dial") || strings.Contains(terr.Message, "tcp") {
		t.Errorf("message leaks client internals: %q", terr.Message)
	}
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	t.Run("followed", func(t *testing.T) {
		t.Parallel()
		srv, got := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/old" {
				http.Redirect(w, r, "/new", http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `"moved"`)
		})
		call := httpCall(toolkit.Executor{Method: "GET", URL: srv.URL + "/old", Auth: &toolkit.HTTPAuth{Type: toolkit.AuthHeader, Name: "X-Key"}}, `{}`)
		call.Credential = "same-host-key"
		out, err := allowPrivate().Run(t.Context(), call)
		if err != nil || string(out) != `"moved"` {
			t.Fatalf("got (%s, %v)", out, err)
		}
		if reqs := got(); len(reqs) != 2 || reqs[1].Header.Get("X-Key") != "same-host-key" {
			t.Errorf("a same-host redirect should keep the credential: %+v", reqs)
		}
	})
	t.Run("capped", func(t *testing.T) {
		t.Parallel()
		var hops int
		var mu sync.Mutex
		srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hops++
			mu.Unlock()
			http.Redirect(w, r, "/loop", http.StatusFound)
		})
		_, err := allowPrivate().Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: srv.URL + "/loop"}, `{}`))
		wantToolError(t, err, toolkit.ToolErrUpstream, "upstream redirected more than 5 times")
		mu.Lock()
		defer mu.Unlock()
		if hops != maxRedirects+1 {
			t.Errorf("%d requests, want %d", hops, maxRedirects+1)
		}
	})
	t.Run("credential dropped on another host", func(t *testing.T) {
		t.Parallel()
		other, got := upstream(t, nil)
		otherURL, _ := url.Parse(other.URL)
		// 127.0.0.1 and localhost are the same machine but different hosts.
		target := "http://localhost:" + otherURL.Port() + "/landing"
		first, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusTemporaryRedirect)
		})
		for _, auth := range []*toolkit.HTTPAuth{
			{Type: toolkit.AuthHeader, Name: "X-Key"},
			{Type: toolkit.AuthBearer},
		} {
			call := httpCall(toolkit.Executor{Method: "GET", URL: first.URL, Auth: auth}, `{}`)
			call.Credential = "do-not-forward"
			if _, err := allowPrivate().Run(t.Context(), call); err != nil {
				t.Fatal(err)
			}
		}
		for _, req := range got() {
			if req.Header.Get("X-Key") != "" || req.Header.Get("Authorization") != "" {
				t.Errorf("credential forwarded to another host: %v", req.Header)
			}
		}
	})
}

func TestPrivateAddressesBlocked(t *testing.T) {
	t.Parallel()
	srv, got := upstream(t, nil)
	u, _ := url.Parse(srv.URL)
	r := New(Options{AllowPrivate: false, Timeout: 5 * time.Second})
	for _, target := range []string{
		srv.URL,                                   // 127.0.0.1
		"http://localhost:" + u.Port() + "/a",     // a name that resolves to loopback
		"http://[::1]:" + u.Port() + "/a",         // IPv6 loopback
		"http://169.254.169.254/latest/meta-data", // metadata: refused before any packet is sent
	} {
		_, err := r.Run(t.Context(), httpCall(toolkit.Executor{Method: "GET", URL: target}, `{}`))
		terr := wantToolError(t, err, toolkit.ToolErrBlockedAddress, "ATP_HTTP_ALLOW_PRIVATE=true")
		if !strings.Contains(terr.Message, "blocked") {
			t.Errorf("%s: message %q does not say the call is blocked", target, terr.Message)
		}
	}
	if n := len(got()); n != 0 {
		t.Errorf("%d requests reached the private server", n)
	}
}

func TestScalarString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"a b"`, "a b", true},
		{`""`, "", true},
		{`0`, "0", true},
		{`-12`, "-12", true},
		{`12345678901234567890123`, "12345678901234567890123", true},
		{`2.50`, "2.5", true},
		{`1e3`, "1000", true},
		{`-1.5E-2`, "-0.015", true},
		{`true`, "true", true},
		{`false`, "false", true},
		{`null`, "", false},
		{`[1]`, "", false},
		{`{"a":1}`, "", false},
	}
	for _, tt := range tests {
		got, ok := scalarString(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.ok {
			t.Errorf("scalarString(%s) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}
