package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/atp-server/atp-server/internal/oauth"
	"github.com/atp-server/atp-server/internal/store"
)

// rotateKeys runs `atp-server keys rotate`: every sealed value (platform
// client secrets, tool secrets, connection tokens, webhook secrets, PKCE
// verifiers of pending authorizations) that is not under the current
// ATP_ENCRYPTION_KEY is opened with the key it names (one of
// ATP_ENCRYPTION_KEY_OLD) and sealed again under the current key. It is
// idempotent: a second run re-seals nothing. Afterwards the old keys can
// be dropped from the configuration. It may run while servers serve:
// each row is locked while it is re-sealed.
func rotateKeys(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	if cfg.embedded() {
		if err := loadDevSecrets(cfg, logger); err != nil {
			return err
		}
	}
	if err := cfg.validateSecrets(); err != nil {
		return err
	}
	cipher, err := oauth.NewCipher(cfg.encryptionKey, cfg.oldKeys...)
	if err != nil {
		return fmt.Errorf("ATP_ENCRYPTION_KEY: %w", err)
	}
	db, err := store.Open(ctx, storeOptions(cfg, logger, cfg.Migrate))
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer db.Close()
	if err := db.CheckSchema(ctx); err != nil {
		return fmt.Errorf("keys rotate: %w: run atp-server migrate up first", err)
	}
	rep, err := db.ResealSecrets(ctx, cipher.Reseal)
	if err != nil {
		return fmt.Errorf("keys rotate: %w (put the key it names in ATP_ENCRYPTION_KEY_OLD and run it again; it is idempotent)", err)
	}
	logger.Info("keys rotated", "key_id", cipher.KeyID(), "resealed", rep.Resealed(), "checked", rep.Checked)
	if rep.Resealed() == 0 {
		fmt.Fprintf(stdout, "nothing to re-seal: all %d sealed values are under the current key %s\n", rep.Checked, cipher.KeyID())
		return nil
	}
	fmt.Fprintf(stdout, "re-sealed %d of %d sealed values under the current key %s:\n", rep.Resealed(), rep.Checked, cipher.KeyID())
	for _, l := range []struct {
		n    int
		what string
	}{
		{rep.PlatformSecrets, "platform client secrets"},
		{rep.ToolSecrets, "tool secrets"},
		{rep.ConnectionTokens, "connection tokens"},
		{rep.WebhookSecrets, "webhook secrets"},
		{rep.StateVerifiers, "PKCE verifiers of pending authorizations"},
	} {
		fmt.Fprintf(stdout, "  %6d %s\n", l.n, l.what)
	}
	fmt.Fprintln(stdout, "The old keys are no longer needed: remove them from ATP_ENCRYPTION_KEY_OLD.")
	return nil
}
