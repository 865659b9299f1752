package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/atp-server/atp-server/internal/toolkit"
)

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantKind toolkit.Kind // 0 (KindInternal) = no error expected
		wantMsg  string       // substring of the client message
	}{
		{"valid", `{"id":"math","tools":[]}`, 0, ""},
		{"read-only fields accepted", `{"id":"math","revision":3,"created_at":"2024-01-01T00:00:00Z"}`, 0, ""},
		{"whitespace around", " \n{\"id\":\"m\"}\n\t ", 0, ""},
		{"empty", ``, toolkit.KindInvalid, "request body: required"},
		{"only whitespace", "  \n", toolkit.KindInvalid, "request body: required"},
		{"array", `[1,2]`, toolkit.KindInvalid, "must be a JSON object"},
		{"null", `null`, toolkit.KindInvalid, "must be a JSON object"},
		{"unknown top-level field", `{"id":"m","color":"red"}`, toolkit.KindInvalid, "color: unknown field"},
		{"unknown nested field", `{"id":"m","tools":[{"name":"a"},{"name":"b","executor":{"kind":"js","cmd":"x"}}]}`, toolkit.KindInvalid, "tools[1].executor.cmd: unknown field"},
		{"write-only sealed secret is not a field", `{"tools":[{"executor":{"auth":{"type":"bearer","SealedSecret":"x"}}}]}`, toolkit.KindInvalid, "tools[0].executor.auth.SealedSecret: unknown field"},
		{"wrong type", `{"id":"m","tools":[{"name":"a"},{"name":7}]}`, toolkit.KindInvalid, "tools[1].name: expected a string, got 7"},
		{"object for string", `{"name":{"a":1}}`, toolkit.KindInvalid, "name: expected a string, got an object"},
		{"float for integer", `{"tools":[{"executor":{"timeout_ms":1.5}}]}`, toolkit.KindInvalid, "tools[0].executor.timeout_ms: expected an integer"},
		{"string for array", `{"tools":"x"}`, toolkit.KindInvalid, "tools: expected an array, got a string"},
		{"bad time", `{"created_at":"yesterday"}`, toolkit.KindInvalid, "created_at"},
		{"syntax error", `{"id":"m",}`, toolkit.KindInvalid, "invalid JSON at offset 11"},
		{"truncated", `{"id":"m"`, toolkit.KindInvalid, "ends early"},
		{"trailing data", `{"id":"m"} {"id":"n"}`, toolkit.KindInvalid, "unexpected data after the JSON object"},
		{"trailing garbage", `{"id":"m"}x`, toolkit.KindInvalid, "unexpected data after the JSON object"},
		{"input_schema takes any JSON", `{"tools":[{"input_schema":{"type":"object","x-anything":[1,{"b":null}]}}]}`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tk toolkit.Toolkit
			err := decodeJSON([]byte(tt.body), &tk)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("decodeJSON(%s) = %v, want nil", tt.body, err)
				}
				return
			}
			var te *toolkit.Error
			if !errors.As(err, &te) {
				t.Fatalf("decodeJSON(%s) = %v (%T), want a *toolkit.Error", tt.body, err, err)
			}
			if te.Kind != tt.wantKind || !strings.Contains(te.Message, tt.wantMsg) {
				t.Errorf("decodeJSON(%s) = %v %q, want %v containing %q", tt.body, te.Kind, te.Message, tt.wantKind, tt.wantMsg)
			}
		})
	}
}

func TestRequireJSON(t *testing.T) {
	t.Parallel()
	for ct, ok := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"Application/JSON":                  true,
		"application/merge-patch+json":      true,
		"":                                  false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"application/jsonx":                 false,
		"not a media type;;":                false,
	} {
		err := requireJSON(ct)
		if (err == nil) != ok {
			t.Errorf("requireJSON(%q) = %v, want ok=%v", ct, err, ok)
		}
		if err != nil {
			if status, code, _ := classify(err); status != http.StatusUnsupportedMediaType || code != "unsupported_media_type" {
				t.Errorf("requireJSON(%q) classifies as %d %s", ct, status, code)
			}
		}
	}
}

func TestSaneRequestID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"abc-123_X.y":           true,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"":                      false,
		"has space":             false,
		"new\nline":             false,
		"quote\"":               false,
		"ünïcode":               false,
	} {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{toolkit.Errorf(toolkit.KindInvalid, "invalid_toolkit", "tools[2].input_schema: bad"), 400, "invalid_toolkit", "tools[2].input_schema: bad"},
		{toolkit.Errorf(toolkit.KindUnauthenticated, "", "no key"), 401, "unauthenticated", "no key"},
		{toolkit.Errorf(toolkit.KindForbidden, "forbidden", "no"), 403, "forbidden", "no"},
		{toolkit.Errorf(toolkit.KindNotFound, "", "gone"), 404, "not_found", "gone"},
		{toolkit.Errorf(toolkit.KindConflict, "conflict", "exists"), 409, "conflict", "exists"},
		{toolkit.Errorf(toolkit.KindTooLarge, "body_too_large", "big"), 413, "body_too_large", "big"},
		{toolkit.Errorf(toolkit.KindRateLimited, "", "slow down"), 429, "rate_limited", "slow down"},
		{toolkit.Errorf(toolkit.KindTimeout, "", "late"), 504, "timeout", "late"},
		{toolkit.Errorf(toolkit.KindUnavailable, "not_ready", "not ready"), 503, "not_ready", "not ready"},
		// Internal errors never show their message or cause.
		{toolkit.Wrap(errors.New("pq: relation \"keys\" does not exist"), toolkit.KindInternal, "db", "database error"), 500, "internal", "internal error"},
		{errors.New("some driver text"), 500, "internal", "internal error"},
		{&httpError{status: 405, code: "method_not_allowed", message: "m"}, 405, "method_not_allowed", "m"},
	}
	for _, tt := range tests {
		status, code, msg := classify(tt.err)
		if status != tt.wantStatus || code != tt.wantCode || msg != tt.wantMsg {
			t.Errorf("classify(%v) = %d %q %q, want %d %q %q", tt.err, status, code, msg, tt.wantStatus, tt.wantCode, tt.wantMsg)
		}
	}
}

// FuzzDecodeJSON checks decodeJSON never panics, and that whatever it
// accepts is a JSON object encoding/json also accepts.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":"math","tools":[{"name":"add","input_schema":{"type":"object"},"executor":{"kind":"js","code":"return 1"}}]}`,
		`{"tools":[{"executor":{"auth":{"type":"bearer","secret":"s"}}}]}`,
		`{"x":1}`, `{"tools":[{"name":7}]}`, `{"id":"m",}`, `{"id":"m"}x`, `[]`, ``, `{"created_at":"2024-01-01T00:00:00Z"}`,
		`{"tools":[{"input_schema":{"a":[{"b":[]}]}}]}`, `{"tools":[{"executor":{"headers":{"a":1}}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var tk toolkit.Toolkit
		err := decodeJSON(body, &tk)
		if err == nil {
			var v map[string]any
			if json.Unmarshal(body, &v) != nil {
				t.Errorf("decodeJSON accepted %q, which is not a JSON object", body)
			}
			return
		}
		if status, _, msg := classify(err); status != http.StatusBadRequest || msg == "" {
			t.Errorf("decodeJSON(%q) = %v, classified %d %q; want a 400 with a message", body, err, status, msg)
		}
	})
}
