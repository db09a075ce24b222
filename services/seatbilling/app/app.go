// Package app holds seatbilling's use cases, one handler per command or
// query. Handlers load state through the small interfaces declared next to
// them, apply the domain, and write state and outgoing events in one
// transaction (the outbox).
package app

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/services/seatbilling/domain"
)

// Application is every use case of the service.
type Application struct {
	OpenSubscription OpenSubscriptionHandler
	GetSubscription  GetSubscriptionHandler
	ReserveSeat      ReserveSeatHandler
	ConfirmSeat      ConfirmSeatHandler
	ReleaseSeat      ReleaseSeatHandler
	QuoteSeats       QuoteSeatsHandler
	ListCharges      ListChargesHandler
	// ScheduleLicenceRemoval and CloseCycles: S-5, S-10.
	ScheduleLicenceRemoval ScheduleLicenceRemovalHandler
	CloseCycles            CloseCyclesHandler
	// SetAddOn and RemoveAddOn: S-9. Features: S-8. UnusedSeats and
	// RecordLogin: S-7.
	SetAddOn    SetAddOnHandler
	RemoveAddOn RemoveAddOnHandler
	Features    FeaturesHandler
	UnusedSeats UnusedSeatsHandler
	RecordLogin RecordLoginHandler
	// PreviewSeatRelease: the cost effect of a disable (O-3 preview).
	PreviewSeatRelease PreviewSeatReleaseHandler
	// RecordRole: S-2, the seats shown apart by role.
	RecordRole RecordRoleHandler
}

// Store is what the use cases need from storage.
type Store interface {
	SubscriptionWriter
	SubscriptionReader
	ReservationStore
	SeatConfirmer
	SeatReleaser
	ChargeReader
	LicenceRemovalStore
	CycleStore
	SubscriptionViewReader
	AddOnStore
	SeatHolderReader
	LoginRecorder
	SeatRoleStore
}

// Emitter writes events to the outbox within a transaction (eventbus.Bus).
type Emitter interface {
	Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...eventbus.Event) error
}

// Config tunes the use cases; zero values take the defaults.
type Config struct {
	// ReservationTTL is how long an unconfirmed reservation holds a seat
	// (default domain.DefaultReservationTTL).
	ReservationTTL time.Duration
}

// New wires the use cases. now is the clock (time.Now outside tests).
func New(store Store, events Emitter, log *slog.Logger, now func() time.Time, cfg Config) *Application {
	ttl := cfg.ReservationTTL
	if ttl <= 0 {
		ttl = domain.DefaultReservationTTL
	}
	return &Application{
		OpenSubscription: OpenSubscriptionHandler{store: store, events: events, log: log, now: now},
		GetSubscription:  GetSubscriptionHandler{store: store},
		ReserveSeat:      ReserveSeatHandler{store: store, events: events, log: log, now: now, ttl: ttl},
		ConfirmSeat:      ConfirmSeatHandler{store: store, events: events, log: log, now: now},
		ReleaseSeat:      ReleaseSeatHandler{store: store, events: events, log: log, now: now},
		QuoteSeats:       QuoteSeatsHandler{store: store, now: now},
		ListCharges:      ListChargesHandler{store: store},

		ScheduleLicenceRemoval: ScheduleLicenceRemovalHandler{store: store, events: events, log: log, now: now},
		CloseCycles:            CloseCyclesHandler{store: store, events: events, log: log, now: now},

		SetAddOn:    SetAddOnHandler{store: store, events: events, log: log, now: now},
		RemoveAddOn: RemoveAddOnHandler{store: store, events: events, log: log, now: now},
		Features:    FeaturesHandler{store: store},
		UnusedSeats: UnusedSeatsHandler{store: store, now: now},
		RecordLogin: RecordLoginHandler{store: store},

		PreviewSeatRelease: PreviewSeatReleaseHandler{store: store},
		RecordRole:         RecordRoleHandler{store: store},
	}
}
