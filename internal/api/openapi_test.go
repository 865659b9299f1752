package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// loadOpenAPI parses and validates an OpenAPI document.
func loadOpenAPI(tb testing.TB, data []byte) *openapi3.T {
	tb.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		tb.Fatalf("loading openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		tb.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t, openAPISource)
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	for _, name := range []string{"adminKey", "clientBearer", "clientAPIKey"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s missing", name)
		}
	}
	// The error shape of the contract (admin-api.md §3).
	errSchema := doc.Components.Schemas["Error"].Value
	if got, want := slices.Sorted(slices.Values(errSchema.Required)), []string{"code", "error", "request_id"}; !slices.Equal(got, want) {
		t.Errorf("Error.required = %v, want %v", got, want)
	}
}

func TestOpenAPIWithPublicURL(t *testing.T) {
	t.Parallel()
	data, err := openAPIDocument("https://atp.example.com")
	if err != nil {
		t.Fatal(err)
	}
	doc := loadOpenAPI(t, data)
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "https://atp.example.com" {
		t.Errorf("servers = %+v, want the public URL", doc.Servers)
	}
}

// TestOpenAPICoversRoutes keeps routes.go and openapi.json in step: every
// route is documented with its method, and the document has nothing the
// router does not serve.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	h := NewHandler(Config{Service: toolkit.NewService(toolkit.Config{})})
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewHandler returned %T, not a chi router", h)
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	doc := loadOpenAPI(t, openAPISource)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	if diff := cmp.Diff(documented, served); diff != "" {
		t.Errorf("documented (-) vs served (+) routes differ:\n%s", diff)
	}
}

// TestOpenAPIOperationsDocumentErrors checks every operation documents the
// answers every route can give: a request id header on success, and the
// error shape for 500; authenticated ones 401 and 403.
func TestOpenAPIOperationsDocumentErrors(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t, openAPISource)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			}
			if op.Security == nil {
				t.Errorf("%s: security not stated (use [] for none)", name)
			}
			if len(*op.Security) > 0 {
				for _, code := range []string{"401", "403"} {
					if op.Responses.Value(code) == nil {
						t.Errorf("%s: needs a key but does not document %s", name, code)
					}
				}
			}
			if op.RequestBody != nil {
				for _, code := range []string{"400", "413", "415"} {
					if op.Responses.Value(code) == nil {
						t.Errorf("%s: takes a body but does not document %s", name, code)
					}
				}
			}
			if strings.HasPrefix(path, "/admin/") || strings.HasPrefix(path, "/v1/") {
				if op.Responses.Value("500") == nil {
					t.Errorf("%s: does not document 500", name)
				}
			}
		}
	}
}

// TestOpenAPIServed checks the handler serves the document it embeds.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv := newBareServer(t, Config{})
	res, body := do(t, srv.Server, http.MethodGet, "/openapi.json", nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", v["openapi"])
	}
}
