package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// This file holds what both engines share: how domain values that have no
// column of their own become JSON, and the time rules.

// now is the store's clock for the timestamps it sets itself, truncated to
// what PostgreSQL keeps so that both engines give back what they were given.
func now() time.Time { return normTime(time.Now()) }

// normTime is t as it is stored: UTC, microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// normTimePtr is normTime for optional times.
func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

// executorRecord is how an Executor is kept. toolkit.HTTPAuth hides
// SealedSecret from JSON (json:"-") so that the API never shows it; the
// store needs it, and must never keep the write-only plaintext Secret, so
// it has its own shape. A field added to toolkit.Executor must be added
// here too (TestExecutorRecordCoversEveryField fails otherwise).
type executorRecord struct {
	Kind      string            `json:"kind"`
	Code      string            `json:"code,omitempty"`
	Method    string            `json:"method,omitempty"`
	URL       string            `json:"url,omitempty"`
	Query     []string          `json:"query,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      string            `json:"body,omitempty"`
	Auth      *authRecord       `json:"auth,omitempty"`
	TimeoutMS int               `json:"timeout_ms,omitempty"`
}

type authRecord struct {
	Type         string `json:"type"`
	Platform     string `json:"platform,omitempty"`
	Name         string `json:"name,omitempty"`
	SealedSecret string `json:"sealed_secret,omitempty"`
}

// encodeExecutor returns the stored JSON of e. A plaintext secret is an
// error: the Service seals secrets before they reach the store, so one
// here means a caller skipped that step, and storing it would put a
// credential on disk in clear.
func encodeExecutor(e toolkit.Executor) ([]byte, error) {
	r := executorRecord{
		Kind: e.Kind, Code: e.Code, Method: e.Method, URL: e.URL, Query: e.Query,
		Headers: e.Headers, Body: e.Body, TimeoutMS: e.TimeoutMS,
	}
	if a := e.Auth; a != nil {
		if a.Secret != "" {
			return nil, toolkit.Errorf(toolkit.KindInternal, "internal", "refusing to store a plaintext tool secret: seal it first")
		}
		r.Auth = &authRecord{Type: a.Type, Platform: a.Platform, Name: a.Name, SealedSecret: a.SealedSecret}
	}
	return json.Marshal(r)
}

func decodeExecutor(b []byte) (toolkit.Executor, error) {
	var r executorRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return toolkit.Executor{}, fmt.Errorf("decoding stored executor: %w", err)
	}
	e := toolkit.Executor{
		Kind: r.Kind, Code: r.Code, Method: r.Method, URL: r.URL, Query: r.Query,
		Headers: r.Headers, Body: r.Body, TimeoutMS: r.TimeoutMS,
	}
	if a := r.Auth; a != nil {
		e.Auth = &toolkit.HTTPAuth{Type: a.Type, Platform: a.Platform, Name: a.Name, SealedSecret: a.SealedSecret}
	}
	return e, nil
}

// encodeAnnotations returns nil (SQL NULL) for no annotations.
func encodeAnnotations(a *toolkit.Annotations) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	return json.Marshal(a)
}

func decodeAnnotations(b []byte) (*toolkit.Annotations, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var a toolkit.Annotations
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("decoding stored annotations: %w", err)
	}
	return &a, nil
}

// rawOrNil returns a schema as the driver should bind it: nil for none, so
// that it is stored as NULL rather than as an empty, invalid JSON text.
func rawOrNil(m json.RawMessage) []byte {
	if len(m) == 0 {
		return nil
	}
	return m
}

// rawFromDB copies b: drivers may reuse the buffers they scan into.
func rawFromDB(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

// encodeStrings stores a list as a JSON array, never null, so that SQL
// can query it the same way whether it is empty or not.
func encodeStrings(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // a []string always marshals
	return string(b)
}

func decodeStrings(b []byte) ([]string, error) {
	// Most stored lists are empty (a key limited to no toolkits, without
	// redirect URLs), and every authenticated request decodes two.
	if string(b) == "[]" || string(b) == "null" {
		return nil, nil
	}
	var s []string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding stored list: %w", err)
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

func encodeMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

func decodeMap(b []byte) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding stored map: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// checkPlatformSealed refuses a plaintext client secret, for the reason
// given at encodeExecutor.
func checkPlatformSealed(p *toolkit.Platform) error {
	if p.ClientSecret != "" {
		return toolkit.Errorf(toolkit.KindInternal, "internal", "refusing to store a plaintext client secret: seal it first")
	}
	return nil
}

// Subjects name a row in error messages: `toolkit "x" not found`.
func subject(kind, id string) string { return fmt.Sprintf("%s %q", kind, id) }

// Error constructors for translate, shared so that both engines say the
// same thing.
func conflictErr(subj string, cause error) error {
	return toolkit.Wrap(cause, toolkit.KindConflict, toolkit.KindConflict.String(), subj+" already exists")
}

func notFoundErr(subj string, cause error) error {
	return toolkit.Wrap(cause, toolkit.KindNotFound, toolkit.KindNotFound.String(), subj+" not found")
}

func missingRefErr(subj string, cause error) error {
	return toolkit.Wrap(cause, toolkit.KindNotFound, toolkit.KindNotFound.String(), subj+" refers to something that does not exist")
}

func invalidErr(subj string, cause error) error {
	return toolkit.Wrap(cause, toolkit.KindInvalid, toolkit.KindInvalid.String(), subj+": a value was rejected by the database")
}

func unavailableErr(cause error) error {
	return toolkit.Wrap(cause, toolkit.KindUnavailable, toolkit.KindUnavailable.String(), "the database is unavailable")
}

func timeoutErr(cause error) error {
	return toolkit.Wrap(cause, toolkit.KindTimeout, toolkit.KindTimeout.String(), "the database did not answer in time")
}

func internalErr(cause error) error {
	return toolkit.Wrap(cause, toolkit.KindInternal, toolkit.KindInternal.String(), "database error")
}

// mustAffect returns notFound when an UPDATE or DELETE touched no row.
func mustAffect(rowsAffected int64, notFound error) error {
	if rowsAffected == 0 {
		return notFound
	}
	return nil
}

func revokeNotFound(id string) error {
	return toolkit.Errorf(toolkit.KindNotFound, toolkit.KindNotFound.String(), "api key %q not found or already revoked", id)
}

func toolSubject(toolkitID, name string) string {
	return fmt.Sprintf("tool %q of toolkit %q", name, toolkitID)
}

func connectionSubject(c *toolkit.Connection) string {
	return fmt.Sprintf("connection of user %q to platform %q", c.ExternalUserID, c.PlatformID)
}

// prepareAPIKey fills what the caller may leave out (a new id, the
// creation time) and normalises times to what will be stored, so that k
// equals what a Find returns afterwards.
func prepareAPIKey(k *toolkit.APIKey) {
	if k.ID == "" {
		k.ID = toolkit.NewID("key_")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	k.CreatedAt = normTime(k.CreatedAt)
	k.LastUsedAt = normTimePtr(k.LastUsedAt)
	k.RevokedAt = normTimePtr(k.RevokedAt)
}

// toolRecord is a tool in its stored form.
type toolRecord struct {
	Name, Description         string
	InputSchema, OutputSchema []byte // NULL when empty
	Annotations               []byte // NULL when none
	Executor                  []byte
}

func encodeTools(tools []toolkit.Tool) ([]toolRecord, error) {
	recs := make([]toolRecord, len(tools))
	for i, t := range tools {
		exec, err := encodeExecutor(t.Executor)
		if err != nil {
			return nil, err
		}
		ann, err := encodeAnnotations(t.Annotations)
		if err != nil {
			return nil, toolkit.Wrap(err, toolkit.KindInternal, "internal", "encoding tool annotations")
		}
		recs[i] = toolRecord{
			Name: t.Name, Description: t.Description,
			InputSchema: rawOrNil(t.InputSchema), OutputSchema: rawOrNil(t.OutputSchema),
			Annotations: ann, Executor: exec,
		}
	}
	return recs, nil
}

func decodeTool(r toolRecord) (toolkit.Tool, error) {
	exec, err := decodeExecutor(r.Executor)
	if err != nil {
		return toolkit.Tool{}, err
	}
	ann, err := decodeAnnotations(r.Annotations)
	if err != nil {
		return toolkit.Tool{}, err
	}
	return toolkit.Tool{
		Name: r.Name, Description: r.Description,
		InputSchema: rawFromDB(r.InputSchema), OutputSchema: rawFromDB(r.OutputSchema),
		Annotations: ann, Executor: exec,
	}, nil
}
