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
	"roster.dev/pkg/store"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// Store is the storage the use cases need. Writes take the caller's
// transaction so that state, inbox and outbox commit together.
type Store interface {
	// AddAccount records acc and reports false when it was recorded before.
	AddAccount(ctx context.Context, tx *sql.Tx, acc domain.Account) (bool, error)
	AddRole(ctx context.Context, tx *sql.Tx, r domain.Role) error
	// NextCustomRole counts a custom role created in the account and
	// returns its number (1 for the first), within tx.
	NextCustomRole(ctx context.Context, tx *sql.Tx, accountID string) (int64, error)
	// Assign gives a technician a role, replacing the one they held.
	Assign(ctx context.Context, tx *sql.Tx, a domain.Assignment) error

	// Account fails with domain.ErrAccountNotFound.
	Account(ctx context.Context, accountID string) (domain.Account, error)
	// Roles lists an account's roles by name key, from after (exclusive).
	Roles(ctx context.Context, accountID, after string, limit int) ([]domain.Role, error)
	// Role fails with domain.ErrRoleNotFound.
	Role(ctx context.Context, accountID, roleID string) (domain.Role, error)

	// LockAccount returns the account and holds it until tx ends: commands
	// that change an account's technicians run one at a time per account.
	// It fails with domain.ErrAccountNotFound.
	LockAccount(ctx context.Context, tx *sql.Tx, accountID string) (domain.Account, error)
	// AddTechnician records a new technician and reports false when it was
	// recorded before.
	AddTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician) (bool, error)
	// SaveTechnician stores a technician's states (not its role: Assign).
	SaveTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician) error

	// Reads below run in tx, or outside any transaction when tx is nil.

	// AccountRoles returns every role of an account.
	AccountRoles(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.Role, error)
	// Technician fails with domain.ErrTechnicianNotFound.
	Technician(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (domain.Technician, error)
	// Holders returns the technicians that hold a role, whatever their
	// status.
	Holders(ctx context.Context, tx *sql.Tx, accountID, roleID string) ([]domain.Technician, error)

	// SaveRole replaces a role whole if it is still at version prev, else
	// domain.ErrStaleVersion; a name taken is domain.ErrDuplicateRoleName.
	SaveRole(ctx context.Context, tx *sql.Tx, r domain.Role, prev int64) error
	// DeleteRole fails with domain.ErrRoleNotFound.
	DeleteRole(ctx context.Context, tx *sql.Tx, accountID, roleID string) error
	// RoleUse counts the technicians holding a role and those who have not
	// logged in yet whose requested or pre-assigned role it is.
	RoleUse(ctx context.Context, tx *sql.Tx, accountID, roleID string) (assigned, pending int, err error)
	// AddSite and AddFolder record identity's sites and folders and report
	// false when recorded before; a folder of an unknown site is
	// domain.ErrSiteNotFound.
	AddSite(ctx context.Context, tx *sql.Tx, s domain.Site) (bool, error)
	AddFolder(ctx context.Context, tx *sql.Tx, f domain.Folder) (bool, error)
	// MissingSites and MissingFolders return the ids that name no site
	// (folder) of the account.
	MissingSites(ctx context.Context, tx *sql.Tx, accountID string, ids []string) ([]string, error)
	MissingFolders(ctx context.Context, tx *sql.Tx, accountID string, ids []string) ([]string, error)
	// IndexStates reads one account's state for the access index, or every
	// account's when accountID is "".
	IndexStates(ctx context.Context, tx *sql.Tx, accountID string) ([]access.State, error)
	// BumpIndexVersion adds one to the account's index version within tx
	// and returns it; IndexVersions reads the versions of every account, or
	// of one (app/replicas.go).
	BumpIndexVersion(ctx context.Context, tx *sql.Tx, accountID string) (int64, error)
	IndexVersions(ctx context.Context, tx *sql.Tx, accountID string) (map[string]int64, error)
}

// Events writes outgoing events to the outbox within tx (eventbus.Bus).
type Events interface {
	Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...eventbus.Event) error
}

// App runs the use cases.
type App struct {
	db     *store.DB
	store  Store
	events Events
	log    *slog.Logger
	now    func() time.Time
	// index answers access checks from memory (R-7; see index.go).
	index *access.Index
	// versions are the index versions this replica's index was built
	// from (replicas.go).
	versions versions
}

// New returns the use cases over the service's database (for the
// transactions of HTTP commands and their Idempotency-Key), its store and
// events. now is the clock; nil is time.Now.
func New(db *store.DB, st Store, events Events, log *slog.Logger, now func() time.Time) *App {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &App{db: db, store: st, events: events, log: log, now: now, index: access.New(), versions: versions{known: map[string]int64{}}}
}

// Index is the access index the checks read. It is empty until LoadIndex.
func (a *App) Index() *access.Index { return a.index }

// clock is now as stored: UTC, to the microsecond (store.Time).
func (a *App) clock() time.Time { return a.now().UTC().Truncate(time.Microsecond) }
