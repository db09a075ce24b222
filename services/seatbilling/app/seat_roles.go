package app

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/profile"
	"roster.dev/services/seatbilling/domain"
)

// RecordRole notes the role a technician now holds (rolepolicy's
// RoleAssigned), for the seats the subscription shows apart by role (S-2).
type RecordRole struct {
	AccountID, TechnicianID, RoleName string
	// At is when the role was assigned: the latest assignment wins.
	At time.Time
}

// SeatRoleStore keeps technicians' roles and counts occupied seats by role.
type SeatRoleStore interface {
	RecordRole(ctx context.Context, tx *sql.Tx, accountID, technicianID, roleName string, at time.Time) error
	// OccupiedByRole counts the account's occupied seats by their holder's
	// role name.
	OccupiedByRole(ctx context.Context, accountID string) (map[string]int, error)
}

// RecordRoleHandler handles RecordRole.
type RecordRoleHandler struct {
	store SeatRoleStore
}

// Handle keeps the latest role heard, within tx; it needs no subscription
// or seat (the assignment may come first).
func (h RecordRoleHandler) Handle(ctx context.Context, tx *sql.Tx, cmd RecordRole) error {
	if cmd.AccountID == "" || cmd.TechnicianID == "" || cmd.RoleName == "" || cmd.At.IsZero() {
		return fmt.Errorf("record role: %w: account id, technician id, role name and time are required", domain.ErrMissingField)
	}
	return h.store.RecordRole(ctx, tx, cmd.AccountID, cmd.TechnicianID, cmd.RoleName, cmd.At.UTC().Truncate(time.Microsecond))
}

// separateSeats counts the occupied seats of each of the profile's
// separate seat roles (S-2, atlan: Guest); nil when it has none.
func separateSeats(ctx context.Context, st SeatRoleStore, sub domain.Subscription) (map[string]int, error) {
	prof, err := profile.Get(sub.Profile)
	if err != nil {
		return nil, fmt.Errorf("subscription of %s: %w", sub.AccountID, err)
	}
	roles := prof.SeatBilling.SeparateSeatRoles
	if len(roles) == 0 {
		return nil, nil
	}
	counts, err := st.OccupiedByRole(ctx, sub.AccountID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(roles))
	for _, r := range roles {
		out[r] = 0
		for name, n := range counts {
			if strings.EqualFold(name, r) {
				out[r] += n
			}
		}
	}
	return out, nil
}
