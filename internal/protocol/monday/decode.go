package monday

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// decode reads r's body as one JSON object into v. Unknown fields are
// ignored: the client adds fields across versions, and the spec requires
// unknown config fields to be tolerated (§3.7). The Content-Type is not
// checked: the client always sends application/json, and raw callers that
// forget it lose nothing. Failures: 413 past the body cap, 400 for a
// missing (when required) or malformed body, instead of the reference's
// 500s (§14 #13).
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any, required bool) error {
	if r.ContentLength > h.maxBody {
		return tooLarge()
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge()
			}
			return toolkit.Wrap(err, toolkit.KindInvalid, "invalid_request", "Request body could not be read")
		}
	}
	return decodeJSON(body, v, required)
}

// decodeJSON is the pure part of decode, fuzzed by FuzzDecodeJSON.
func decodeJSON(body []byte, v any, required bool) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		if required {
			return errInvalid("Request body is required: a JSON object")
		}
		return nil
	}
	if body[0] != '{' {
		return errInvalid("Invalid JSON: the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errInvalid("Invalid request: %s has the wrong type", te.Field)
		}
		return errInvalid("Invalid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errInvalid("Invalid JSON: data after the object")
	}
	return nil
}

func tooLarge() error {
	return toolkit.Errorf(toolkit.KindTooLarge, "body_too_large", "Request body too large")
}
