package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// readyTimeout bounds one readiness check, so a hung database makes /readyz
// answer 503 before the orchestrator's probe times out on its own.
const readyTimeout = 3 * time.Second

// healthz answers while the process serves; it checks nothing else, so a
// slow database never gets a live process restarted.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 when Config.Ready says the server may take traffic,
// else 503 code not_ready; the cause is logged, never shown.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			return toolkit.Wrap(err, toolkit.KindUnavailable, "not_ready", "not ready")
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		// Registry makes promhttp count its own scrape errors on it.
		Registry: s.registry,
		// A collector failing (a DB pool closed mid-shutdown) should not
		// cost the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
	})
}

//go:embed openapi.json
var openAPISource []byte

// openAPIDocument prepares the served document: the embedded one with its
// servers set to publicURL when one is configured.
func openAPIDocument(publicURL string) ([]byte, error) {
	if publicURL == "" {
		return openAPISource, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(openAPISource, &doc); err != nil {
		return nil, fmt.Errorf("embedded openapi.json: %w", err)
	}
	servers, err := json.Marshal([]map[string]string{{"url": publicURL}})
	if err != nil {
		return nil, err
	}
	doc["servers"] = servers
	return json.MarshalIndent(doc, "", "  ")
}

func (s *server) openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(s.openapi)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openapi)
	return nil
}
