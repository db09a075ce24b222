package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// RecordLogin notes a technician's successful login (identity's FirstLogin
// and TechnicianLoggedIn; I-11) for the unused-seat report (S-7).
type RecordLogin struct {
	AccountID, TechnicianID string
	// At is the login's time by identity's clock.
	At time.Time
	// First marks the technician's first login (FirstLogin).
	First bool
}

// LoginRecorder keeps login times within the consumer's transaction.
type LoginRecorder interface {
	RecordLogin(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time, first bool) error
}

// RecordLoginHandler handles RecordLogin.
type RecordLoginHandler struct {
	store LoginRecorder
}

// Handle keeps the earliest and the latest login heard, within tx: logins
// applied late, out of order or twice change nothing more. It needs no
// subscription: a login may be applied before the events that seat the
// technician.
func (h RecordLoginHandler) Handle(ctx context.Context, tx *sql.Tx, cmd RecordLogin) error {
	if cmd.AccountID == "" || cmd.TechnicianID == "" || cmd.At.IsZero() {
		return fmt.Errorf("record login: %w: account id, technician id and time are required", domain.ErrMissingField)
	}
	return h.store.RecordLogin(ctx, tx, cmd.AccountID, cmd.TechnicianID, cmd.At.UTC().Truncate(time.Microsecond), cmd.First)
}
