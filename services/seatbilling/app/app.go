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
)

// Application is every use case of the service.
type Application struct {
	OpenSubscription OpenSubscriptionHandler
	GetSubscription  GetSubscriptionHandler
}

// Store is what the use cases need from storage.
type Store interface {
	SubscriptionWriter
	SubscriptionReader
}

// Emitter writes events to the outbox within a transaction (eventbus.Bus).
type Emitter interface {
	Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...eventbus.Event) error
}

// New wires the use cases. now is the clock (time.Now outside tests).
func New(store Store, events Emitter, log *slog.Logger, now func() time.Time) *Application {
	return &Application{
		OpenSubscription: OpenSubscriptionHandler{store: store, events: events, log: log, now: now},
		GetSubscription:  GetSubscriptionHandler{store: store},
	}
}
