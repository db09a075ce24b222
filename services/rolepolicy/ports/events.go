package ports

import (
	"context"
	"database/sql"

	"roster.dev/pkg/eventbus"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/rolepolicy/app"
)

// Consume registers the service's event handlers on bus. The bus runs each
// one inside the transaction that records the event in the inbox, so a
// redelivered event is applied once.
func Consume(bus *eventbus.Bus, a *app.App) {
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.AccountCreated) error {
		return a.SetUpAccount(ctx, tx, app.SetUpAccount{
			AccountID:         ev.GetMeta().GetAccountId(),
			Profile:           ev.GetProfile(),
			AdminTechnicianID: ev.GetAdminTechnicianId(),
		})
	})
}
