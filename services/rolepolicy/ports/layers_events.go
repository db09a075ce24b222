package ports

import (
	"context"
	"database/sql"

	"roster.dev/pkg/eventbus"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/rolepolicy/app"
)

// ConsumeLayers registers the layered model's event handlers:
// personas chosen when identity invited the user.
func ConsumeLayers(bus *eventbus.Bus, l *app.Layers) {
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.PersonasRequested) error {
		return l.ApplyRequestedPersonas(ctx, tx, ev.GetMeta().GetAccountId(), ev.GetTechnicianId(), ev.GetPersonaIds())
	})
}
