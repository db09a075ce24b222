package adapters

import (
	"context"
	"database/sql"
	"fmt"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/identity/app"
)

var (
	_ app.LicenceScheduler = Seats{}
	_ app.LicenceStore     = Store{}
)

// ScheduleLicenceRemoval asks seatbilling to remove the technician's seat
// at the end of the cycle (rpc.ScheduleLicenceRemoval), passing on who asks
// and the request's correlation id for seatbilling's event.
func (s Seats) ScheduleLicenceRemoval(ctx context.Context, accountID, technicianID string) (app.LicenceOutcome, string, error) {
	var rep seatbillingv1.ScheduleLicenceRemovalReply
	err := rpc.Call(ctx, s.NC, rpc.ScheduleLicenceRemoval, &seatbillingv1.ScheduleLicenceRemovalRequest{
		AccountId: accountID, TechnicianId: technicianID,
		CorrelationId: eventbus.CorrelationID(ctx), Actor: eventbus.ActorFrom(ctx),
	}, &rep)
	if err != nil {
		return 0, "", err
	}
	switch rep.GetOutcome() {
	case seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_SCHEDULED, seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_ALREADY_SCHEDULED:
		return app.LicenceRemovalScheduled, rep.GetRemovalDate(), nil
	case seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_NOT_OCCUPYING:
		return app.LicenceNotOccupying, "", nil
	case seatbillingv1.ScheduleLicenceRemovalReply_OUTCOME_NO_SUBSCRIPTION:
		return 0, "", app.ErrSubscriptionNotReady
	default:
		return 0, "", fmt.Errorf("seatbilling: %s", rep.GetError())
	}
}

// SetLicenceRemoval stores, within tx, the technician's pending licence
// removal date (YYYY-MM-DD); nil clears it.
func (s Store) SetLicenceRemoval(ctx context.Context, tx *sql.Tx, accountID, technicianID string, date *string) error {
	var v any
	if date != nil {
		v = *date
	}
	_, err := tx.ExecContext(ctx, `UPDATE technicians SET licence_removal_date = $1 WHERE account_id = $2 AND id = $3`, v, accountID, technicianID)
	if err != nil {
		return fmt.Errorf("licence removal of %s: %w", technicianID, err)
	}
	return nil
}

// AdminsStaying counts the technicians not disabled holding the Admin role
// with no licence removal pending (I-9 after the cycle ends).
func (s Store) AdminsStaying(ctx context.Context, tx *sql.Tx, accountID string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM technicians
		WHERE account_id = $1 AND is_admin = 1 AND status <> 'disabled' AND licence_removal_date IS NULL`, accountID).Scan(&n)
	return n, err
}
