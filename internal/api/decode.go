package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// errEmptyBody is what decode reports for a body with no JSON in it;
// decodeOptional turns it into "use the zero value".
var errEmptyBody = invalidf("request body: required, a JSON object")

// decode reads r's body as one JSON object into v (a pointer to a struct).
// Every failure is a client error that names what is wrong: 413 over the
// cap (code body_too_large), 415 when the body is not declared JSON, 400
// for an empty body, bad syntax (with the offset), a field of the wrong type
// or not in v's type (with its path, e.g. tools[0].executor.cmd), or data
// after the object.
func (s *server) decode(r *http.Request, v any) error {
	if r.ContentLength > s.maxBody {
		// Refuse before reading a byte of it.
		return tooLarge(s.maxBody)
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return errEmptyBody
	}
	if err := requireJSON(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit)
		}
		return toolkit.Wrap(err, toolkit.KindInvalid, "invalid_request", "request body: could not be read")
	}
	return decodeJSON(body, v)
}

// decodeOptional is decode for routes whose body may be left out entirely:
// an empty body leaves v as it is.
func (s *server) decodeOptional(r *http.Request, v any) error {
	if err := s.decode(r, v); err != errEmptyBody {
		return err
	}
	return nil
}

func tooLarge(limit int64) error {
	return toolkit.Errorf(toolkit.KindTooLarge, "body_too_large",
		"request body: larger than the limit of %d bytes", limit)
}

// requireJSON accepts application/json and the application/*+json family.
func requireJSON(contentType string) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	msg := "Content-Type: must be application/json"
	if contentType != "" {
		msg += fmt.Sprintf(", not %q", contentType)
	}
	return &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", message: msg}
}

// decodeJSON is the pure part of decode, fuzzed by FuzzDecodeJSON.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errEmptyBody
	}
	if trimmed[0] != '{' {
		return invalidf("request body: must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(body, reflect.TypeOf(v), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("request body: unexpected data after the JSON object at offset %d", dec.InputOffset())
	}
	return nil
}

// decodeError words a json.Decoder failure for the client, naming the field.
func decodeError(body []byte, t reflect.Type, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return invalidf("request body: invalid JSON at offset %d: %s", syn.Offset, syn.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return invalidf("request body: the JSON ends early")
	}
	// An unknown field, a value of the wrong kind, or a value a type
	// rejected (a malformed time). encoding/json says where only for the
	// second, without array indices, so find the path ourselves.
	if p := findFieldProblem(body, t); p != "" {
		return invalidf("%s", p)
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		return invalidf("%s: expected %s, got %s", ute.Field, jsonKindOf(ute.Type), ute.Value)
	}
	return toolkit.Wrap(err, toolkit.KindInvalid, "invalid_request", "request body: not valid for this route")
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// findFieldProblem walks body alongside t in document order and describes
// the first key t has no field for, or the first value whose JSON kind t
// cannot hold, as "path: problem". "" when it finds neither (the body is
// valid for t as far as kinds go).
func findFieldProblem(body []byte, t reflect.Type) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	problem, _ := walkValue(dec, t, "")
	return problem
}

// walkValue consumes one JSON value from dec, checked against t.
func walkValue(dec *json.Decoder, t reflect.Type, path string) (string, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := path
	if name == "" {
		name = "request body"
	}
	if t == nil || t.Kind() == reflect.Interface {
		var skip json.RawMessage
		return "", dec.Decode(&skip)
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		// A type that decodes itself (time.Time, json.RawMessage): try it
		// on this value alone, so its complaint gets a path.
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", err
		}
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			if t == reflect.TypeFor[time.Time]() {
				return name + ": expected an RFC 3339 time such as \"2024-01-02T15:04:05Z\"", nil
			}
			return name + ": " + strings.TrimPrefix(err.Error(), "json: "), nil
		}
		return "", nil
	}
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	if tok == nil { // null fits everything
		return "", nil
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch {
		case tok == '{' && t.Kind() == reflect.Struct:
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return "", err
				}
				k, _ := key.(string)
				f, ok := structField(t, k)
				if !ok {
					return joinPath(path, k) + ": unknown field", nil
				}
				if p, err := walkValue(dec, f.Type, joinPath(path, k)); p != "" || err != nil {
					return p, err
				}
			}
		case tok == '{' && t.Kind() == reflect.Map:
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return "", err
				}
				k, _ := key.(string)
				if p, err := walkValue(dec, t.Elem(), joinPath(path, k)); p != "" || err != nil {
					return p, err
				}
			}
		case tok == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			for i := 0; dec.More(); i++ {
				if p, err := walkValue(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); p != "" || err != nil {
					return p, err
				}
			}
		default:
			what := "an object"
			if tok == '[' {
				what = "an array"
			}
			return fmt.Sprintf("%s: expected %s, got %s", name, jsonKindOf(t), what), nil
		}
		_, err := dec.Token() // the closing delimiter
		return "", err
	case string:
		if t.Kind() != reflect.String && !reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return fmt.Sprintf("%s: expected %s, got a string", name, jsonKindOf(t)), nil
		}
	case bool:
		if t.Kind() != reflect.Bool {
			return fmt.Sprintf("%s: expected %s, got a boolean", name, jsonKindOf(t)), nil
		}
	case json.Number:
		if msg := numberFits(tok, t); msg != "" {
			return name + ": " + msg, nil
		}
	}
	return "", nil
}

// numberFits says why n does not fit t ("" when it does).
func numberFits(n json.Number, t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return fmt.Sprintf("expected an integer that fits %d bits, got %s", t.Bits(), n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return fmt.Sprintf("expected a non-negative integer that fits %d bits, got %s", t.Bits(), n)
		}
	case reflect.Float32, reflect.Float64:
	default:
		return fmt.Sprintf("expected %s, got %s", jsonKindOf(t), n)
	}
	return ""
}

// structField finds the field encoding/json would fill for key: exact tag
// or name first, then case-insensitively, through embedded structs.
func structField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold reflect.StructField
	found := false
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || (f.Anonymous && f.Type.Kind() == reflect.Struct) {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			tagName, _, _ := strings.Cut(tag, ",")
			if tagName == "-" {
				continue
			}
			if tagName != "" {
				name = tagName
			}
		}
		if name == key {
			return f, true
		}
		if !found && strings.EqualFold(name, key) {
			fold, found = f, true
		}
	}
	return fold, found
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonKindOf names the JSON a Go type takes, for messages.
func jsonKindOf(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a value"
}
