package store

import (
	"fmt"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// Helpers both engines share for the ChatATP tables.

// revisionMismatch is the conflict of a ReplaceToolkit that lost the race.
func revisionMismatch(id string, ifRevision int64) error {
	return toolkit.Errorf(toolkit.KindConflict, "revision_mismatch",
		"toolkit %q changed: it is no longer at revision %d", id, ifRevision)
}

func registrationSubject(toolkitID, keyID string) string {
	return fmt.Sprintf("registration of key %q in toolkit %q", keyID, toolkitID)
}

// prepareWebhook fills what the caller may leave out (a new id, the
// creation time) and normalises the time to what will be stored.
func prepareWebhook(w *toolkit.Webhook) {
	if w.ID == "" {
		w.ID = toolkit.NewID("wh_")
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now()
	}
	w.CreatedAt = normTime(w.CreatedAt)
}
