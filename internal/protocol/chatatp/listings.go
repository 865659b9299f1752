package chatatp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// headerOnlyKey authenticates an LLM client GET, which has no body: the
// key is in the Authorization header only.
func (h *Handler) headerOnlyKey(r *http.Request) (*toolkit.APIKey, error) {
	return h.llmKey(r, nil)
}

// ---- webhooks (admin-api.md §7) ----

type webhookView struct {
	ID        string    `json:"id"`
	WebhookID string    `json:"webhook_id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func newWebhookView(w *toolkit.Webhook, secret string) webhookView {
	events := w.Events
	if events == nil {
		events = []string{}
	}
	return webhookView{ID: w.ID, WebhookID: w.ID, URL: w.URL, Events: events, Secret: secret, CreatedAt: w.CreatedAt}
}

// registerWebhook serves POST …/webhooks/register/ {"url","events"}.
func (h *Handler) registerWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		URL    string          `json:"url"`
		Events []string        `json:"events"`
		APIKey json.RawMessage `json:"api_key"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	key, err := h.llmKey(r, req.APIKey)
	if err != nil {
		return err
	}
	wh, secret, err := h.svc.CreateWebhook(r.Context(), key, req.URL, req.Events)
	if err != nil {
		return err
	}
	h.writeJSON(w, r, http.StatusCreated, newWebhookView(wh, secret))
	return nil
}

// listWebhooks serves GET …/webhooks/: a JSON array, secrets left out.
func (h *Handler) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	key, err := h.headerOnlyKey(r)
	if err != nil {
		return err
	}
	whs, err := h.svc.ListWebhooks(r.Context(), key)
	if err != nil {
		return err
	}
	out := make([]webhookView, len(whs))
	for i, wh := range whs {
		out[i] = newWebhookView(wh, "")
	}
	h.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// deleteWebhook serves GET (as the SDK sends it) or DELETE
// …/webhooks/{id}/delete/.
func (h *Handler) deleteWebhook(w http.ResponseWriter, r *http.Request, id string) error {
	key, err := h.headerOnlyKey(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteWebhook(r.Context(), key, id); err != nil {
		return err
	}
	h.writeRaw(w, http.StatusOK, []byte(`{"status":"deleted"}`))
	return nil
}

// ---- store listings (admin-api.md §7) ----

type storeToolkit struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Caption     string `json:"caption"`
	ToolCount   int    `json:"tool_count"`
}

func newStoreToolkit(s *toolkit.ToolkitSummary) storeToolkit {
	return storeToolkit{ID: s.ID, Name: s.Name, Description: s.Description, Caption: toolkit.Caption(s.Description), ToolCount: s.ToolCount}
}

// maxPageSize bounds page_size.
const maxPageSize = 1000

// listStoreToolkits serves GET …/store/toolkits/list/ and
// …/developers/toolkits/: {"count","results"}, every toolkit the key may
// use, or one page of them when page and page_size are given.
func (h *Handler) listStoreToolkits(w http.ResponseWriter, r *http.Request) error {
	key, err := h.headerOnlyKey(r)
	if err != nil {
		return err
	}
	sums, err := h.catalog.Summaries(r.Context(), key)
	if err != nil {
		return err
	}
	count := len(sums)
	page, size, err := pageParams(r)
	if err != nil {
		return err
	}
	if size > 0 {
		from := min((page-1)*size, len(sums))
		sums = sums[from:min(from+size, len(sums))]
	}
	results := make([]storeToolkit, len(sums))
	for i, s := range sums {
		results[i] = newStoreToolkit(s)
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"count": count, "results": results})
	return nil
}

// pageParams reads page (from 1) and page_size; size 0 means no paging.
func pageParams(r *http.Request) (page, size int, err error) {
	q := r.URL.Query()
	page, size = 1, 0
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxPageSize {
			return 0, 0, invalidf("page_size: an integer from 1 to %d", maxPageSize)
		}
	}
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			return 0, 0, invalidf("page: an integer from 1")
		}
		if size == 0 {
			size = 20
		}
	}
	return page, size, nil
}

type storeTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// getStoreToolkit serves GET …/store/toolkits/{id}/: one toolkit with its
// tools (what a model needs to call them, nothing about how they run).
func (h *Handler) getStoreToolkit(w http.ResponseWriter, r *http.Request, ref string) error {
	key, err := h.headerOnlyKey(r)
	if err != nil {
		return err
	}
	tk, err := h.catalog.Resolve(r.Context(), key, ref)
	if err != nil {
		return err
	}
	tools := make([]storeTool, len(tk.Tools))
	for i, t := range tk.Tools {
		schema := t.InputSchema
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		tools[i] = storeTool{Name: t.Name, Description: t.Description, InputSchema: schema}
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		storeToolkit
		Instructions string      `json:"instructions"`
		Revision     int64       `json:"revision"`
		Tools        []storeTool `json:"tools"`
	}{
		storeToolkit: storeToolkit{ID: tk.ID, Name: tk.Name, Description: tk.Description, Caption: toolkit.Caption(tk.Description), ToolCount: len(tk.Tools)},
		Instructions: tk.Instructions, Revision: tk.Revision, Tools: tools,
	})
	return nil
}

// getDeveloper serves GET …/store/developers/{name}/: a self-hosted server
// is one developer, whatever the name, with every toolkit the key may use.
func (h *Handler) getDeveloper(w http.ResponseWriter, r *http.Request, name string) error {
	key, err := h.headerOnlyKey(r)
	if err != nil {
		return err
	}
	sums, err := h.catalog.Summaries(r.Context(), key)
	if err != nil {
		return err
	}
	out := make([]storeToolkit, len(sums))
	for i, s := range sums {
		out[i] = newStoreToolkit(s)
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"display_name": name, "toolkits": out})
	return nil
}
