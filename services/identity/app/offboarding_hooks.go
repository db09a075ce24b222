package app

import (
	"context"
	"database/sql"

	"roster.dev/services/identity/domain"
)

// OffboardingHooks are what the technician use cases call of the
// offboarding (O-1…O-4), within their transactions.
type OffboardingHooks interface {
	Offboard(ctx context.Context, tx *sql.Tx, t domain.Technician, successorID string) error
	RestoreArchived(ctx context.Context, tx *sql.Tx, t domain.Technician) error
	LatestView(ctx context.Context, q Querier, accountID, technicianID string) (*View, error)
}

var _ OffboardingHooks = (*Offboardings)(nil)

// DisabledTechnician is the disable answer: the technician and the
// offboarding it started (api.md).
type DisabledTechnician struct {
	domain.Technician
	Offboarding *View `json:"offboarding"`
}

// disabledAnswer is the disable answer for t within tx; the technician
// alone when there is no offboarding.
func (a *App) disabledAnswer(ctx context.Context, tx *sql.Tx, t domain.Technician) (int, any, error) {
	if a.Offboarding == nil {
		return 200, t, nil
	}
	v, err := a.Offboarding.LatestView(ctx, tx, t.AccountID, t.ID)
	if err != nil {
		return 0, nil, err
	}
	return 200, DisabledTechnician{Technician: t, Offboarding: v}, nil
}
