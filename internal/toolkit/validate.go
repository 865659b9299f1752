package toolkit

import "encoding/json"

// PLACEHOLDER: replaced by the validation work (JSON Schema 2020-12 checks).

func validateToolkit(tk *Toolkit) error { return nil }

func validatePlatform(p *Platform) error { return nil }

type schemaCache struct{}

func newSchemaCache() *schemaCache { return &schemaCache{} }

func (c *schemaCache) validate(tk *Toolkit, tool *Tool, args json.RawMessage) *ToolError {
	return nil
}
