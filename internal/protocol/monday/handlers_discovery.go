package monday

import (
	"context"
	"net/http"
	"strconv"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// protocolVersion is the version the reference reports in /api/info and
// /api/definitions.
const protocolVersion = "1.0.0"

// groupsFor lists the API groups key may use (nil key: every toolkit).
func (h *Handler) groupsFor(ctx context.Context, key *toolkit.APIKey) ([]*group, error) {
	tks, err := h.toolkitsFor(ctx, key)
	if err != nil {
		return nil, err
	}
	return groupsOf(tks), nil
}

// toolkitsFor returns the toolkits key may use (nil key: every toolkit),
// ordered by id, through the catalog: one summaries query, plus one load
// per toolkit changed since this instance last loaded it. A change made
// through any instance is in the answer; the toolkits are shared, read only.
func (h *Handler) toolkitsFor(ctx context.Context, key *toolkit.APIKey) ([]*toolkit.Toolkit, error) {
	return h.catalog.Toolkits(ctx, key)
}

type definitionsResponse struct {
	TypeScript string   `json:"typescript"`
	APIGroups  []string `json:"apiGroups"`
	Version    string   `json:"version"`
	Guidance   string   `json:"guidance,omitempty"`
}

// definitions answers GET /api/definitions[?apiGroups=a,b] (§3.2) with the
// groups the caller's key may use, narrowed to apiGroups when given.
func (h *Handler) definitions(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sc, err := h.scopeOf(ctx, r)
	if err != nil {
		return err
	}
	groups, err := h.groupsFor(ctx, sc.key)
	if err != nil {
		return err
	}
	groups = filterGroups(groups, splitList(r.URL.Query().Get("apiGroups")))
	resp := definitionsResponse{TypeScript: definitionsText(groups), APIGroups: []string{}, Version: protocolVersion}
	for _, g := range groups {
		resp.APIGroups = append(resp.APIGroups, g.name)
	}
	if sc.caller != nil {
		resp.Guidance = sc.caller.data.Guidance
	}
	h.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// runtime answers GET /api/runtime[?apis=llm,cache] (§3.3) in text/plain.
// It is open; a caller that names its session (X-Client-ID) must verify,
// and then its services select the APIs.
func (h *Handler) runtime(w http.ResponseWriter, r *http.Request) error {
	var svc *services
	if r.Header.Get(headerClientID) != "" {
		c, err := h.verify(r.Context(), r, sessionAuth)
		if err != nil {
			return err
		}
		svc = &c.data.Services
	}
	text := runtimeText(splitList(r.URL.Query().Get("apis")), svc)
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(text)))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(text))
	return nil
}

type infoResponse struct {
	Version      string          `json:"version"`
	Capabilities map[string]bool `json:"capabilities"`
	Limits       infoLimits      `json:"limits"`
	Defaults     infoDefaults    `json:"defaults"`
}

// infoLimits are the server's clamps (§14 #3): a request may ask for up
// to these.
type infoLimits struct {
	MaxTimeout  int64 `json:"maxTimeout"` // ms
	MaxMemory   int64 `json:"maxMemory"`  // bytes
	MaxLLMCalls int   `json:"maxLLMCalls"`
}

// infoDefaults are what an execution gets when its config names no limit.
type infoDefaults struct {
	Timeout  int64 `json:"timeout"` // ms
	Memory   int64 `json:"memory"`  // bytes
	LLMCalls int   `json:"llmCalls"`
}

// info answers GET /api/info (§3.4). It is always open: harnesses poll it
// for readiness.
func (h *Handler) info(w http.ResponseWriter, r *http.Request) error {
	h.writeJSON(w, r, http.StatusOK, infoResponse{
		Version: protocolVersion,
		Capabilities: map[string]bool{
			"execution": true, "search": true, "streaming": true, "llmCalls": true,
		},
		Limits:   h.limits,
		Defaults: h.defaults,
	})
	return nil
}

// searchRequest is SearchOptions (§3.5); useEmbeddings and embeddingModel
// are accepted and ignored (there is no embedding search).
type searchRequest struct {
	Query      string     `json:"query"`
	APIGroups  []string   `json:"apiGroups"`
	MaxResults int        `json:"maxResults"`
	ToolRules  *toolRules `json:"toolRules"`
}

type searchResponse struct {
	Results []searchResult `json:"results"`
}

// search answers POST /api/search.
func (h *Handler) search(w http.ResponseWriter, r *http.Request) error {
	var req searchRequest
	if err := h.decode(w, r, &req, true); err != nil {
		return err
	}
	return h.answerSearch(w, r, &req)
}

// searchQuery answers GET /api/search?query=…(or keyword=…)&apiGroups=a,b&maxResults=n.
func (h *Handler) searchQuery(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := searchRequest{Query: q.Get("query"), APIGroups: splitList(q.Get("apiGroups"))}
	if req.Query == "" {
		req.Query = q.Get("keyword")
	}
	if s := q.Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return errInvalid("maxResults: want a non-negative integer")
		}
		req.MaxResults = n
	}
	return h.answerSearch(w, r, &req)
}

func (h *Handler) answerSearch(w http.ResponseWriter, r *http.Request, req *searchRequest) error {
	if req.Query == "" {
		return errInvalid("query is required")
	}
	ctx := r.Context()
	sc, err := h.scopeOf(ctx, r)
	if err != nil {
		return err
	}
	groups, err := h.groupsFor(ctx, sc.key)
	if err != nil {
		return err
	}
	groups = req.ToolRules.apply(filterGroups(groups, req.APIGroups))
	h.writeJSON(w, r, http.StatusOK, searchResponse{Results: search(groups, req.Query, req.MaxResults)})
	return nil
}

type exploreRequest struct {
	Path      string     `json:"path"`
	ToolRules *toolRules `json:"toolRules"`
}

// explore answers POST /api/explore (§3.6); an unknown path is 404.
func (h *Handler) explore(w http.ResponseWriter, r *http.Request) error {
	var req exploreRequest
	if err := h.decode(w, r, &req, false); err != nil {
		return err
	}
	ctx := r.Context()
	sc, err := h.scopeOf(ctx, r)
	if err != nil {
		return err
	}
	groups, err := h.groupsFor(ctx, sc.key)
	if err != nil {
		return err
	}
	if req.Path == "" {
		req.Path = "/"
	}
	res, ok := explore(req.ToolRules.apply(groups), req.Path)
	if !ok {
		clean, _ := cleanPath(req.Path)
		return errNotFound("Path not found: " + clean)
	}
	h.writeJSON(w, r, http.StatusOK, res)
	return nil
}
