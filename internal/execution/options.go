package execution

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Options are the per-execution settings a client may ask for (the
// `config` of POST /api/execute). Zero fields take the engine's defaults;
// the engine clamps the others to its maxima (Config).
type Options struct {
	Timeout  time.Duration
	Memory   int64 // bytes
	LLMCalls int
	// ClientServices are the client's providers; nil when the config had
	// none. See ClientServices.pauses.
	ClientServices *ClientServices
}

// ClientServices says which callback types the client can answer.
type ClientServices struct {
	HasLLM       bool `json:"hasLLM"`
	HasApproval  bool `json:"hasApproval"`
	HasEmbedding bool `json:"hasEmbedding"`
	HasTools     bool `json:"hasTools"`
}

// pauses reports whether approvals and embeddings pause for the client
// (spec §5.7 "pause mode"): when any service is claimed, or when the
// caller sent no clientServices at all (a raw HTTP caller that resumes by
// hand). LLM calls and client tools always pause.
func (c *ClientServices) pauses() bool {
	return c == nil || c.HasLLM || c.HasApproval || c.HasEmbedding || c.HasTools
}

// ParseOptions reads an execute config: timeout (ms), memoryLimit | memory
// | maxMemory (bytes, first non-zero wins), llmCalls | maxLLMCalls, and
// clientServices. Unknown fields are ignored (the client sends more, e.g.
// provenanceHints); null, absent or 0 means the default. A field of the
// wrong type or a negative number is a KindInvalid *toolkit.Error.
func ParseOptions(config json.RawMessage) (Options, error) {
	var o Options
	config = bytes.TrimSpace(config)
	if len(config) == 0 || string(config) == "null" {
		return o, nil
	}
	var raw struct {
		Timeout        *float64        `json:"timeout"`
		MemoryLimit    *float64        `json:"memoryLimit"`
		Memory         *float64        `json:"memory"`
		MaxMemory      *float64        `json:"maxMemory"`
		LLMCalls       *float64        `json:"llmCalls"`
		MaxLLMCalls    *float64        `json:"maxLLMCalls"`
		ClientServices *ClientServices `json:"clientServices"`
	}
	if err := json.Unmarshal(config, &raw); err != nil {
		return o, toolkit.Errorf(toolkit.KindInvalid, "invalid_config", "config%s", jsonProblem(err))
	}
	timeout, err := number("timeout", raw.Timeout)
	if err != nil {
		return o, err
	}
	o.Timeout = time.Duration(timeout * float64(time.Millisecond))
	for _, f := range []struct {
		name string
		v    *float64
	}{{"memoryLimit", raw.MemoryLimit}, {"memory", raw.Memory}, {"maxMemory", raw.MaxMemory}} {
		n, err := number(f.name, f.v)
		if err != nil {
			return o, err
		}
		if o.Memory == 0 {
			o.Memory = int64(n)
		}
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"llmCalls", raw.LLMCalls}, {"maxLLMCalls", raw.MaxLLMCalls}} {
		n, err := number(f.name, f.v)
		if err != nil {
			return o, err
		}
		if o.LLMCalls == 0 {
			o.LLMCalls = int(min(n, math.MaxInt32)) // fits an int everywhere
		}
	}
	o.ClientServices = raw.ClientServices
	return o, nil
}

// maxNumber bounds the numbers of a config before they are converted, so
// that no conversion overflows (a timeout of 1e300 ms must become the
// maximum, not a negative duration); every engine maximum is far below it.
const maxNumber = 1e12

// number checks an optional non-negative number.
func number(name string, v *float64) (float64, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 || math.IsNaN(*v) {
		return 0, toolkit.Errorf(toolkit.KindInvalid, "invalid_config", "config.%s: must be a non-negative number", name)
	}
	return min(*v, maxNumber), nil
}

// jsonProblem describes a config decoding error without echoing values.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		want := "a number"
		switch {
		case te.Field == "clientServices":
			want = "an object"
		case strings.HasPrefix(te.Field, "clientServices."):
			want = "a boolean"
		}
		return "." + te.Field + ": must be " + want
	}
	return ": must be a JSON object"
}
