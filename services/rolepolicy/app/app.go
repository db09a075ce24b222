// Package app holds the rolepolicy use cases, one method per command or
// query. A command loads state through Store, applies the domain, and
// writes state and outgoing events in one transaction (the outbox).
package app

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/services/rolepolicy/domain"
)

// Store is the storage the use cases need. Writes take the caller's
// transaction so that state, inbox and outbox commit together.
type Store interface {
	// AddAccount records acc and reports false when it was recorded before.
	AddAccount(ctx context.Context, tx *sql.Tx, acc domain.Account) (bool, error)
	AddRole(ctx context.Context, tx *sql.Tx, r domain.Role) error
	// Assign gives a technician a role, replacing the one they held.
	Assign(ctx context.Context, tx *sql.Tx, a domain.Assignment) error

	// Account fails with domain.ErrAccountNotFound.
	Account(ctx context.Context, accountID string) (domain.Account, error)
	// Roles lists an account's roles by name key, from after (exclusive).
	Roles(ctx context.Context, accountID, after string, limit int) ([]domain.Role, error)
	// Role fails with domain.ErrRoleNotFound.
	Role(ctx context.Context, accountID, roleID string) (domain.Role, error)
}

// Events writes outgoing events to the outbox within tx (eventbus.Bus).
type Events interface {
	Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...eventbus.Event) error
}

// App runs the use cases.
type App struct {
	store  Store
	events Events
	log    *slog.Logger
	now    func() time.Time
}

// New returns the use cases over store and events.
func New(store Store, events Events, log *slog.Logger) *App {
	if log == nil {
		log = slog.Default()
	}
	return &App{store: store, events: events, log: log, now: time.Now}
}
