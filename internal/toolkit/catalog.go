package toolkit

import (
	"context"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxCachedToolkits bounds a Catalog's cache; past it an arbitrary entry is
// evicted (a miss costs one toolkit load).
const maxCachedToolkits = 256

// Catalog resolves the toolkits a key may use, by id or by name (Resolve)
// or all at once (Toolkits), and keeps the toolkits it loaded by Version,
// so that a call or a context costs one summary read (no tool schemas)
// instead of loading every tool. A change made through any instance
// sharing the database is seen at once: every Resolve and Toolkits
// compares the stored version.
//
// The toolkits a Catalog returns are shared by every caller: read them,
// never modify them. A Catalog is safe for concurrent use.
type Catalog struct {
	svc *Service

	mu      sync.Mutex
	entries map[string]*Toolkit
}

// NewCatalog returns a Catalog reading through svc.
func NewCatalog(svc *Service) *Catalog {
	return &Catalog{svc: svc, entries: make(map[string]*Toolkit)}
}

// MayUse reports whether key may see and call toolkit id: admin keys every
// toolkit, client keys those they are limited to (all when none). A nil
// key is the server itself.
func MayUse(key *APIKey, id string) bool {
	return key == nil || key.Kind == KeyAdmin || key.MayUseToolkit(id)
}

// Resolve returns the toolkit ref names for key. ref is a toolkit id, else
// the name of a toolkit (case-insensitive), as ChatATP clients send either.
//
// Errors: KindForbidden when the key may not use the toolkit, and for a
// key limited to some toolkits whatever ref is otherwise (so that such a
// key cannot probe which toolkits exist); KindNotFound when nothing
// matches; KindInvalid when several usable toolkits have that name.
func (c *Catalog) Resolve(ctx context.Context, key *APIKey, ref string) (*Toolkit, error) {
	sum, err := c.svc.store.FindToolkitSummary(ctx, ref)
	switch {
	case err == nil && MayUse(key, sum.ID):
		return c.load(ctx, sum)
	case err != nil && !IsNotFound(err):
		return nil, err
	}
	sums, err := c.svc.store.ListToolkitSummaries(ctx)
	if err != nil {
		return nil, err
	}
	var match *ToolkitSummary
	for _, s := range sums {
		if !strings.EqualFold(s.Name, ref) || !MayUse(key, s.ID) {
			continue
		}
		if match != nil {
			return nil, Errorf(KindInvalid, "ambiguous_toolkit", "several toolkits are named %q: use the toolkit id", ref)
		}
		match = s
	}
	if match != nil {
		return c.load(ctx, match)
	}
	if key != nil && key.Kind == KeyClient && len(key.Toolkits) > 0 || sum != nil {
		return nil, Errorf(KindForbidden, "forbidden", "this key may not use toolkit %q", ref)
	}
	return nil, Errorf(KindNotFound, "toolkit_not_found", "toolkit %q not found", ref)
}

// load returns the toolkit sum describes, from the cache when its version
// still matches.
func (c *Catalog) load(ctx context.Context, sum *ToolkitSummary) (*Toolkit, error) {
	c.mu.Lock()
	tk, ok := c.entries[sum.ID]
	c.mu.Unlock()
	if ok && tk.Version() == sum.Version() {
		return tk, nil
	}
	tk, err := c.svc.store.FindToolkitByID(ctx, sum.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Two loads may race; whichever is stored, the next Resolve compares
	// versions again.
	if _, ok := c.entries[tk.ID]; !ok && len(c.entries) >= maxCachedToolkits {
		for id := range c.entries {
			delete(c.entries, id)
			break
		}
	}
	c.entries[tk.ID] = tk
	return tk, nil
}

// Summaries lists the toolkits key may use, ordered by id.
func (c *Catalog) Summaries(ctx context.Context, key *APIKey) ([]*ToolkitSummary, error) {
	all, err := c.svc.store.ListToolkitSummaries(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, s := range all {
		if MayUse(key, s.ID) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Toolkits returns every toolkit key may use, ordered by id, from one
// summaries read (no tools): a toolkit whose stored version is the cached
// one costs nothing more, a new or changed one is loaded (one read each).
// So a change made through any instance is in the next answer, and an
// unchanged catalog costs one small query. A toolkit deleted between the
// two reads is left out. The toolkits are shared: read them only.
func (c *Catalog) Toolkits(ctx context.Context, key *APIKey) ([]*Toolkit, error) {
	sums, err := c.Summaries(ctx, key)
	if err != nil {
		return nil, err
	}
	out := make([]*Toolkit, 0, len(sums))
	for _, sum := range sums {
		tk, err := c.load(ctx, sum)
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tk)
	}
	return out, nil
}

// maxCaptionChars bounds a caption.
const maxCaptionChars = 140

// Caption is the short line shown for a toolkit in listings (ChatATP
// "caption"): the first line of its description, cut at maxCaptionChars
// characters with an ellipsis.
func Caption(description string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(description), "\n")
	line = strings.TrimSpace(line)
	if utf8.RuneCountInString(line) <= maxCaptionChars {
		return line
	}
	r := []rune(line)
	return strings.TrimSpace(string(r[:maxCaptionChars-1])) + "…"
}
