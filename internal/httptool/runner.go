package httptool

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Defaults for zero Options fields, and hard limits.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 5 << 20
	DefaultUserAgent        = "atp-server"

	maxTimeout      = 300 * time.Second // the largest timeout_ms a tool may set
	maxRedirects    = 5
	maxExcerptBytes = 512     // of an error answer's body, in the tool error
	maxErrorBody    = 4 << 10 // read from an error answer to build the excerpt
	// minRedactLength: shorter credentials are not searched for in answers,
	// where they would match ordinary text.
	minRedactLength = 8
)

// Options configure the http tool runner.
type Options struct {
	// AllowPrivate lets tools reach loopback, private, link-local and other
	// non-public addresses (ATP_HTTP_ALLOW_PRIVATE). Off by default: SSRF.
	AllowPrivate bool
	// Timeout is the time a tool without its own timeout_ms gets for the
	// whole exchange, redirects and body included.
	Timeout time.Duration
	// MaxResponseBytes caps the response body read (result_too_large).
	MaxResponseBytes int64
	// UserAgent is sent with every request.
	UserAgent string
}

// New returns the Runner of http tools.
//
// Failures the caller should read are *toolkit.ToolError: upstream_error
// (non-2xx answer, unreachable host, too many redirects), timeout,
// result_too_large, blocked_address (SSRF guard) and invalid_arguments (an
// argument the URL needs is missing). A canceled ctx comes back as ctx.Err().
func New(o Options) toolkit.Runner {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return &runner{opts: o, transport: NewTransport(o.AllowPrivate)}
}

type runner struct {
	opts      Options
	transport http.RoundTripper
}

var (
	errTimeout          = errors.New("http tool timeout")
	errTooManyRedirects = errors.New("too many redirects")
)

// placeholderPattern matches {name} in a URL template; toolkit validation
// uses the same syntax.
var placeholderPattern = regexp.MustCompile(`\{([^{}]*)\}`)

func (r *runner) Run(ctx context.Context, call *toolkit.Call) (json.RawMessage, error) {
	x := &call.Tool.Executor
	req, terr := r.buildRequest(call)
	if terr != nil {
		return nil, terr
	}
	host := req.URL.Host

	timeout := r.timeout(call.Tool)
	rctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	req = req.WithContext(rctx)

	client := &http.Client{Transport: r.transport, CheckRedirect: redirectPolicy(x.Auth)}
	resp, err := client.Do(req)
	if err != nil {
		return nil, r.transportError(ctx, rctx, err, host, timeout)
	}
	defer resp.Body.Close()

	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := r.opts.MaxResponseBytes
	if !ok {
		limit = maxErrorBody
	} else if resp.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(context.Cause(rctx), errTimeout) {
			return nil, timeoutError(timeout)
		}
		return nil, toolkit.NewToolError(toolkit.ToolErrUpstream, "reading the answer of %s failed", host)
	}
	if !ok {
		return nil, toolkit.NewToolError(toolkit.ToolErrUpstream, "upstream returned %d: %s",
			resp.StatusCode, excerpt(body, resp.StatusCode, call.Credential))
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
	}
	return redact(result(body, resp.Header.Get("Content-Type")), call.Credential), nil
}

func tooLarge(limit int64) *toolkit.ToolError {
	return toolkit.NewToolError(toolkit.ToolErrResultTooLarge, "the upstream answer is larger than the limit of %d bytes", limit)
}

func timeoutError(d time.Duration) *toolkit.ToolError {
	return toolkit.NewToolError(toolkit.ToolErrTimeout, "the upstream did not answer within %s", d)
}

// timeout is the tool's own timeout_ms, else the server default; at most
// maxTimeout.
func (r *runner) timeout(t *toolkit.Tool) time.Duration {
	d := r.opts.Timeout
	if t.Executor.TimeoutMS > 0 {
		d = time.Duration(t.Executor.TimeoutMS) * time.Millisecond
	}
	return min(d, maxTimeout)
}

// buildRequest fills the URL template, query and body from the arguments.
func (r *runner) buildRequest(call *toolkit.Call) (*http.Request, *toolkit.ToolError) {
	x := &call.Tool.Executor
	args := map[string]json.RawMessage{}
	if len(call.Arguments) > 0 {
		if err := json.Unmarshal(call.Arguments, &args); err != nil || args == nil {
			return nil, toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "invalid arguments: must be a JSON object")
		}
	}
	used := map[string]bool{}

	rawURL, terr := fillTemplate(x.URL, args, used)
	if terr != nil {
		return nil, terr
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, toolkit.NewToolError(toolkit.ToolErrExecution, "the tool's url is not a valid http(s) URL")
	}

	q := url.Values{}
	for _, name := range x.Query {
		used[name] = true
		raw, ok := args[name]
		if !ok {
			continue
		}
		if err := addQuery(q, name, raw); err != nil {
			return nil, toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "invalid arguments: %s: %v", name, err)
		}
	}
	if extra := q.Encode(); extra != "" {
		if u.RawQuery == "" {
			u.RawQuery = extra
		} else {
			u.RawQuery += "&" + extra
		}
	}

	var body io.Reader
	if x.Body == "input" {
		rest := make(map[string]json.RawMessage, len(args))
		for k, v := range args {
			if !used[k] {
				rest[k] = v
			}
		}
		b, err := json.Marshal(rest)
		if err != nil {
			return nil, toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "invalid arguments: cannot encode the body")
		}
		body = bytes.NewReader(b)
	}

	method := x.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		return nil, toolkit.NewToolError(toolkit.ToolErrExecution, "the tool's request cannot be built")
	}
	req.Header.Set("User-Agent", r.opts.UserAgent)
	req.Header.Set("Accept", "application/json, */*;q=0.5")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range x.Headers {
		req.Header.Set(k, v)
	}
	if a := x.Auth; a != nil {
		if call.Credential == "" {
			return nil, toolkit.NewToolError(toolkit.ToolErrExecution, "the tool's credential is missing")
		}
		switch a.Type {
		case toolkit.AuthBearer, toolkit.AuthOAuth2:
			req.Header.Set("Authorization", "Bearer "+call.Credential)
		case toolkit.AuthHeader:
			req.Header.Set(a.Name, call.Credential)
		default:
			return nil, toolkit.NewToolError(toolkit.ToolErrExecution, "unknown auth type %q", a.Type)
		}
	}
	return req, nil
}

// fillTemplate replaces each {name} with the escaped argument: path-escaped
// before the '?', query-escaped after it. Path values "." and ".." are
// encoded so an argument cannot walk up the path.
func fillTemplate(tmpl string, args map[string]json.RawMessage, used map[string]bool) (string, *toolkit.ToolError) {
	var terr *toolkit.ToolError
	queryStart := strings.IndexByte(tmpl, '?')
	var b strings.Builder
	last := 0
	for _, m := range placeholderPattern.FindAllStringSubmatchIndex(tmpl, -1) {
		name := tmpl[m[2]:m[3]]
		used[name] = true
		b.WriteString(tmpl[last:m[0]])
		last = m[1]
		raw, ok := args[name]
		s, scalar := scalarString(raw)
		switch {
		case !ok || isNull(raw):
			terr = toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "invalid arguments: %s: required, it fills {%s} in the URL", name, name)
		case !scalar:
			terr = toolkit.NewToolError(toolkit.ToolErrInvalidArguments, "invalid arguments: %s: must be a string, number or boolean, it fills {%s} in the URL", name, name)
		}
		if terr != nil {
			return "", terr
		}
		if queryStart >= 0 && m[0] > queryStart {
			b.WriteString(url.QueryEscape(s))
			continue
		}
		switch s {
		case ".":
			b.WriteString("%2E")
		case "..":
			b.WriteString("%2E%2E")
		default:
			b.WriteString(url.PathEscape(s))
		}
	}
	b.WriteString(tmpl[last:])
	return b.String(), nil
}

// addQuery adds one argument to the query: arrays repeat the name, null is
// left out, objects (and nested arrays) are sent as compact JSON.
func addQuery(q url.Values, name string, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	if s, ok := scalarString(raw); ok {
		q.Add(name, s)
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err == nil {
		for _, it := range items {
			if isNull(it) {
				continue
			}
			if s, ok := scalarString(it); ok {
				q.Add(name, s)
			} else {
				q.Add(name, compact(it))
			}
		}
		return nil
	}
	q.Add(name, compact(raw))
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// scalarString renders a JSON string, number or boolean as text: strings
// unquoted, numbers as written unless they have a fraction or exponent
// (1e3 → 1000, 2.50 → 2.5), booleans as true/false.
func scalarString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		return string(raw), string(raw) == "true" || string(raw) == "false"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		lit := string(raw)
		if !strings.ContainsAny(lit, ".eE") {
			return lit, true // an integer, kept exactly even past float64 precision
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return lit, true
		}
		return strconv.FormatFloat(f, 'f', -1, 64), true
	}
	return "", false
}

// redirectPolicy caps redirects and drops the credential when a redirect
// leaves the original host or downgrades to plain http: Go's client only
// strips Authorization, and not a custom auth header such as X-API-Key.
// Where the redirect may connect is the dialer's business (checkDial).
func redirectPolicy(auth *toolkit.HTTPAuth) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return errTooManyRedirects
		}
		first := via[0].URL
		if auth != nil && (req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https")) {
			req.Header.Del("Authorization")
			if auth.Type == toolkit.AuthHeader {
				req.Header.Del(auth.Name)
			}
		}
		return nil
	}
}

// transportError maps a failed exchange to a tool error that says what
// happened without the client's internals (no "dial tcp …" text).
func (r *runner) transportError(parent, rctx context.Context, err error, host string, timeout time.Duration) error {
	var blocked *BlockedAddressError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	switch {
	case errors.As(err, &blocked):
		return toolkit.NewToolError(toolkit.ToolErrBlockedAddress,
			"%s is (or resolves to, or redirects to) a private, loopback or link-local address: outbound calls to those "+
				"are blocked; the server's operator can allow them with ATP_HTTP_ALLOW_PRIVATE=true", hostName(host))
	case parent.Err() != nil:
		return parent.Err()
	case errors.Is(context.Cause(rctx), errTimeout):
		return timeoutError(timeout)
	case errors.Is(err, errTooManyRedirects):
		return toolkit.NewToolError(toolkit.ToolErrUpstream, "upstream redirected more than %d times", maxRedirects)
	case errors.As(err, &dnsErr):
		return toolkit.NewToolError(toolkit.ToolErrUpstream, "could not resolve the host %s", hostName(host))
	case errors.Is(err, syscall.ECONNREFUSED):
		return toolkit.NewToolError(toolkit.ToolErrUpstream, "%s refused the connection", host)
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr):
		return toolkit.NewToolError(toolkit.ToolErrUpstream, "the TLS certificate of %s is not trusted", hostName(host))
	default:
		return toolkit.NewToolError(toolkit.ToolErrUpstream, "could not reach %s", host)
	}
}

func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// result turns a 2xx body into the tool result: JSON as is, anything else
// as a JSON string of its text, an empty body as null.
func result(body []byte, contentType string) json.RawMessage {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return json.RawMessage("null")
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	// Some APIs answer JSON without saying so; an object or array is
	// unambiguous enough to take as JSON.
	looksJSON := contentType == "" && (trimmed[0] == '{' || trimmed[0] == '[')
	if (isJSON || looksJSON) && json.Valid(trimmed) {
		return json.RawMessage(trimmed)
	}
	s, _ := json.Marshal(strings.ToValidUTF8(string(body), "\uFFFD"))
	return s
}

// excerpt is a bounded, single-line piece of an error answer's body, with
// the credential redacted; the status text when the body is empty.
func excerpt(body []byte, status int, credential string) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	s = string(redact([]byte(s), credential))
	if s == "" {
		if t := http.StatusText(status); t != "" {
			return t
		}
		return "(empty body)"
	}
	if len(s) > maxExcerptBytes {
		cut := maxExcerptBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// redact removes the credential from what goes back to the caller, in case
// the upstream echoes it (an error page, a debugging endpoint): the caller
// of a tool with a static secret must never learn that secret.
func redact(b []byte, credential string) []byte {
	if len(credential) < minRedactLength || !bytes.Contains(b, []byte(credential)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(credential), []byte("[REDACTED]"))
}
