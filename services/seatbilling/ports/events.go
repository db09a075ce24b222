// Package ports translates what comes into seatbilling — events from the
// bus, HTTP requests — into app commands and queries, and app results and
// errors back. No rule lives here.
package ports

import (
	"context"
	"database/sql"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// RegisterConsumers subscribes the app to the events it reacts to. Each
// handler runs in the transaction that records the event in the inbox, so
// its writes and emitted events commit with it, once per event. The events
// that set a technician's seat state (created, accepted, enabled,
// disabled) are applied in identity's order: one older than one applied is
// ignored (eventbus.OnLatest), so a disable and an enable reordered by a
// crash leave the seat as identity left the technician.
func RegisterConsumers(bus *eventbus.Bus, a *app.Application) {
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.AccountCreated) error {
		return a.OpenSubscription.Handle(ctx, tx, openSubscription(ev))
	})
	// S-2, S-3: the technician identity created or enabled takes the seat
	// its reservation held, or buys the one it reserved.
	eventbus.OnLatest(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
		return a.ConfirmSeat.Handle(ctx, tx, app.ConfirmSeat{
			AccountID: ev.GetMeta().GetAccountId(), TechnicianID: ev.GetTechnicianId(), ReservationID: ev.GetReservationId(),
			OnCreation: true,
		})
	})
	// S-2 (atlan): the accepted invitation takes the seat reserved for it.
	eventbus.OnLatest(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.InvitationAccepted) error {
		return a.ConfirmSeat.Handle(ctx, tx, app.ConfirmSeat{
			AccountID: ev.GetMeta().GetAccountId(), TechnicianID: ev.GetTechnicianId(), ReservationID: ev.GetReservationId(),
		})
	})
	eventbus.OnLatest(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianEnabled) error {
		return a.ConfirmSeat.Handle(ctx, tx, app.ConfirmSeat{
			AccountID: ev.GetMeta().GetAccountId(), TechnicianID: ev.GetTechnicianId(), ReservationID: ev.GetReservationId(),
		})
	})
	// S-4: a disabled technician's seat is free for reuse.
	eventbus.OnLatest(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianDisabled) error {
		return a.ReleaseSeat.Handle(ctx, tx, app.ReleaseSeat{AccountID: ev.GetMeta().GetAccountId(), TechnicianID: ev.GetTechnicianId()})
	})
	// S-2 (atlan): the role each technician holds, for the seats shown
	// apart by role (Guest).
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *rolepolicyv1.RoleAssigned) error {
		cmd := app.RecordRole{AccountID: ev.GetMeta().GetAccountId(), TechnicianID: ev.GetTechnicianId(), RoleName: ev.GetRoleName()}
		if at := ev.GetMeta().GetOccurredAt(); at != nil {
			cmd.At = at.AsTime()
		}
		return a.RecordRole.Handle(ctx, tx, cmd)
	})
	// I-11, S-7: login times for the unused-seat report. FirstLogin alone
	// is enough for a technician who logged in once before
	// TechnicianLoggedIn existed.
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.FirstLogin) error {
		return a.RecordLogin.Handle(ctx, tx, recordLogin(ev.GetMeta(), ev.GetTechnicianId(), ev.GetLoggedInAt(), true))
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianLoggedIn) error {
		return a.RecordLogin.Handle(ctx, tx, recordLogin(ev.GetMeta(), ev.GetTechnicianId(), ev.GetLoggedInAt(), false))
	})
}

// recordLogin takes the login's time from the event (identity's clock),
// or from when the event occurred.
func recordLogin(meta *commonv1.EventMeta, technicianID string, at *timestamppb.Timestamp, first bool) app.RecordLogin {
	cmd := app.RecordLogin{AccountID: meta.GetAccountId(), TechnicianID: technicianID, First: first}
	switch {
	case at != nil:
		cmd.At = at.AsTime()
	case meta.GetOccurredAt() != nil:
		cmd.At = meta.GetOccurredAt().AsTime()
	}
	return cmd
}

func openSubscription(ev *identityv1.AccountCreated) app.OpenSubscription {
	cmd := app.OpenSubscription{
		AccountID:         ev.GetMeta().GetAccountId(),
		Profile:           ev.GetProfile(),
		Plan:              ev.GetPlan(),
		BillingPeriod:     ev.GetBillingPeriod(),
		Seats:             int(ev.GetSeats()),
		BillingAnchor:     ev.GetBillingAnchor(),
		AdminTechnicianID: ev.GetAdminTechnicianId(),
	}
	if p := ev.GetPricePerSeat(); p != nil {
		cmd.PricePerSeat = domain.Money{Amount: p.GetAmount(), Currency: p.GetCurrency()}
	}
	// The event's time, not the delivery's: a late or repeated delivery
	// opens the same cycle.
	if at := ev.GetMeta().GetOccurredAt(); at != nil {
		cmd.CreatedAt = at.AsTime()
	}
	return cmd
}
