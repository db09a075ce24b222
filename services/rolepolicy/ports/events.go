package ports

import (
	"context"
	"database/sql"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
)

// Consume registers the service's event handlers on bus. The bus runs each
// one inside the transaction that records the event in the inbox, so a
// redelivered event is applied once. A technician's disables and enables
// are applied in identity's order (eventbus.OnLatest: an older one
// delivered late is ignored), not by their times, which two changes in
// one instant share.
func Consume(bus *eventbus.Bus, a *app.App) {
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.AccountCreated) error {
		return a.SetUpAccount(ctx, tx, app.SetUpAccount{
			AccountID:         ev.GetMeta().GetAccountId(),
			Profile:           ev.GetProfile(),
			AdminTechnicianID: ev.GetAdminTechnicianId(),
		})
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
		return a.AddTechnician(ctx, tx, app.AddTechnician{
			AccountID:     ev.GetMeta().GetAccountId(),
			TechnicianID:  ev.GetTechnicianId(),
			RequestedRole: ev.GetRequestedRole(),
			At:            timeOf(ev.GetMeta().GetOccurredAt()),
		})
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.FirstLogin) error {
		at := timeOf(ev.GetLoggedInAt())
		if at.IsZero() {
			at = timeOf(ev.GetMeta().GetOccurredAt())
		}
		return a.ApplyRequestedRoleOnFirstLogin(ctx, tx, app.RecordFirstLogin{
			AccountID:    ev.GetMeta().GetAccountId(),
			TechnicianID: ev.GetTechnicianId(),
			At:           at,
		})
	})
	eventbus.OnLatest(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianDisabled) error {
		return a.DisableTechnician(ctx, tx, app.ChangeStatus{
			AccountID:    ev.GetMeta().GetAccountId(),
			TechnicianID: ev.GetTechnicianId(),
			At:           timeOf(ev.GetMeta().GetOccurredAt()),
		})
	})
	eventbus.OnLatest(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianEnabled) error {
		return a.EnableTechnician(ctx, tx, app.ChangeStatus{
			AccountID:    ev.GetMeta().GetAccountId(),
			TechnicianID: ev.GetTechnicianId(),
			At:           timeOf(ev.GetMeta().GetOccurredAt()),
		})
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianRoleRequested) error {
		return a.RequestRole(ctx, tx, app.RequestRole{
			AccountID:    ev.GetMeta().GetAccountId(),
			TechnicianID: ev.GetTechnicianId(),
			Role:         ev.GetRole(),
			At:           timeOf(ev.GetMeta().GetOccurredAt()),
		})
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.SiteCreated) error {
		return a.RecordSite(ctx, tx, domain.Site{
			AccountID: ev.GetMeta().GetAccountId(),
			ID:        ev.GetSiteId(),
			Name:      ev.GetName(),
			CreatedAt: timeOf(ev.GetMeta().GetOccurredAt()),
		})
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.FolderCreated) error {
		return a.RecordFolder(ctx, tx, domain.Folder{
			AccountID: ev.GetMeta().GetAccountId(),
			ID:        ev.GetFolderId(),
			SiteID:    ev.GetSiteId(),
			Name:      ev.GetName(),
			CreatedAt: timeOf(ev.GetMeta().GetOccurredAt()),
		})
	})
}

// timeOf is ts, or the zero time when the event carries none (AsTime would
// say 1970).
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
