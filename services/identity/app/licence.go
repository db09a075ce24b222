package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	"roster.dev/services/identity/domain"
)

// ReasonLicenceRemoved is TechnicianDisabled's reason when a licence
// removal applied at cycle end (S-5).
const ReasonLicenceRemoved = "licence_removed"

// LicenceOutcome is seatbilling's answer to a licence removal.
type LicenceOutcome int

const (
	// LicenceRemovalScheduled: the seat goes at the end of the cycle, now
	// or from an earlier request (seatbilling's SCHEDULED and
	// ALREADY_SCHEDULED).
	LicenceRemovalScheduled LicenceOutcome = iota + 1
	// LicenceNotOccupying: seatbilling knows no occupied seat of the
	// technician (yet).
	LicenceNotOccupying
)

// ErrSeatNotReady: seatbilling has not seated the technician yet (their
// TechnicianCreated or TechnicianEnabled is milliseconds behind).
var ErrSeatNotReady = errors.New("seat not ready")

// LicenceScheduler asks seatbilling to remove a technician's seat at the
// end of the cycle (flows.md: identity ⇄ seatbilling). removalDate is the
// cycle's last day, YYYY-MM-DD. An account seatbilling does not know yet is
// ErrSubscriptionNotReady.
type LicenceScheduler interface {
	ScheduleLicenceRemoval(ctx context.Context, accountID, technicianID string) (outcome LicenceOutcome, removalDate string, err error)
}

// LicenceStore keeps identity's side of licence removals.
type LicenceStore interface {
	// SetLicenceRemoval stores the technician's pending removal date; nil
	// clears it.
	SetLicenceRemoval(ctx context.Context, tx *sql.Tx, accountID, technicianID string, date *string) error
	// AdminsStaying counts the technicians not disabled, holding Admin,
	// and with no licence removal pending: those still admins after the
	// cycle ends (I-9).
	AdminsStaying(ctx context.Context, tx *sql.Tx, accountID string) (int, error)
}

// ErrNotOccupyingSeat: a disabled technician has no seat to remove (S-4
// freed it; S-5: plain disabling never reduces the licence count).
func ErrNotOccupyingSeat() *problem.Problem {
	return problem.New(http.StatusConflict, "not-occupying-seat", "Technician occupies no seat",
		"a disabled technician holds no seat, so there is no seat of theirs to remove; enable them first, or reduce the licence count through a technician who holds a seat")
}

// ScheduleLicenceRemoval reduces the licence count by this technician's
// seat at the end of the current cycle (S-5): seatbilling marks the seat,
// the technician keeps access until then and is disabled automatically
// when the cycle ends (ExpireLicence). The answer is the technician with
// licence_removal_date. Asking again answers the same date and changes
// nothing; a disabled technician is 409 not-occupying-seat; the account's
// last admin who would stay after the cycle is 409 last-admin (I-9).
func (a *App) ScheduleLicenceRemoval(ctx context.Context, accountID, id, idemKey string, body []byte) (idempotency.Result, error) {
	req := idempotency.Request{Scope: idemScope(accountID, "POST /technicians/"+id+"/licence-removal"), Key: idemKey, Body: body}
	if res, ok, err := idempotency.Replay(ctx, a.DB, req); err != nil || ok {
		return res, err
	}
	t, err := a.Technician(ctx, accountID, id)
	if err != nil {
		return idempotency.Result{}, err
	}
	if t.Status == domain.StatusDisabled {
		return idempotency.Result{}, ErrNotOccupyingSeat()
	}
	// I-9, checked here so that the account is never left to lose its
	// last admin at cycle end; ExpireLicence checks again then, since
	// admins may change meanwhile. A removal already pending was checked
	// when it was asked for.
	if t.IsAdmin && t.LicenceRemovalDate == nil {
		err := a.DB.InTx(ctx, func(tx *sql.Tx) error {
			if err := a.Technicians.LockAccount(ctx, tx, accountID); err != nil {
				return err
			}
			n, err := a.LicenceStore.AdminsStaying(ctx, tx, accountID)
			if err != nil {
				return err
			}
			if n <= 1 {
				return domain.ErrLastAdmin()
			}
			return nil
		})
		if err != nil {
			return idempotency.Result{}, err
		}
	}
	date, err := a.scheduleLicenceRemoval(ctx, accountID, id)
	if err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, a.DB, req, func(tx *sql.Tx) (int, any, error) {
		t, err := a.Technicians.Technician(ctx, tx, accountID, id)
		if err != nil {
			return 0, nil, err
		}
		// seatbilling holds the removal now: record it even if the
		// technician was disabled meanwhile (the count still drops at
		// cycle end).
		if t.LicenceRemovalDate == nil || *t.LicenceRemovalDate != date {
			if err := a.LicenceStore.SetLicenceRemoval(ctx, tx, accountID, id, &date); err != nil {
				return 0, nil, err
			}
			t.LicenceRemovalDate = &date
		}
		return http.StatusOK, t, nil
	})
}

// scheduleLicenceRemoval asks seatbilling and returns the removal date. A
// brand-new account or technician may not be known to seatbilling for a
// few milliseconds (AccountCreated, TechnicianCreated on the way): it asks
// again for up to about 3 s, then answers 503 with retry_after.
func (a *App) scheduleLicenceRemoval(ctx context.Context, accountID, id string) (string, error) {
	var date string
	ask := func() error {
		outcome, d, err := a.Licences.ScheduleLicenceRemoval(ctx, accountID, id)
		if err != nil || outcome != LicenceNotOccupying {
			date = d
			return err
		}
		// A technician who is not disabled occupies a seat (S-2), so
		// seatbilling has not applied it yet; unless they were disabled
		// meanwhile.
		t, err := a.Technicians.Technician(ctx, a.DB, accountID, id)
		if err != nil {
			return err
		}
		if t.Status == domain.StatusDisabled {
			return ErrNotOccupyingSeat()
		}
		return ErrSeatNotReady
	}
	err := ask()
	for wait := 25 * time.Millisecond; (errors.Is(err, ErrSubscriptionNotReady) || errors.Is(err, ErrSeatNotReady)) && wait < 2*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		err = ask()
	}
	switch {
	case errors.Is(err, ErrSubscriptionNotReady):
		return "", problem.New(http.StatusServiceUnavailable, "account-not-ready", "Account not ready",
			"the account was created moments ago and its subscription is still being opened; retry in a second").With("retry_after", 1)
	case errors.Is(err, ErrSeatNotReady):
		return "", problem.New(http.StatusServiceUnavailable, "seat-not-ready", "Seat not ready",
			"the technician was added or enabled moments ago and their seat is still being assigned; retry in a second").With("retry_after", 1)
	case err != nil:
		return "", fmt.Errorf("schedule the licence removal of %s: %w", id, err)
	}
	return date, nil
}

// ExpireLicence applies seatbilling's LicenceExpired within the consumer's
// transaction: the cycle ended and the technician's seat is gone (S-5), so
// the technician is disabled as DisableTechnician does — sessions and
// tokens revoked (I-7), TechnicianDisabled with reason licence_removed —
// by the system actor. The pending date is cleared.
//
// I-9 wins over S-5: when the technician is the account's last active
// admin (admins changed after the removal was scheduled), they stay
// enabled, nothing is emitted and an error is logged. seatbilling has
// dropped the seat all the same, so the account shows one seat used fewer
// than its active technicians until someone buys a seat (or makes another
// admin and disables this one).
//
// A technician already disabled, or unknown, changes nothing.
func (a *App) ExpireLicence(ctx context.Context, tx *sql.Tx, accountID, technicianID string) error {
	ctx = eventbus.WithActor(ctx, &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_SYSTEM})
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("account_id", accountID, "technician_id", technicianID)
	if err := a.Technicians.LockAccount(ctx, tx, accountID); err != nil {
		if errors.Is(err, ErrNotFound) {
			log.ErrorContext(ctx, "licence expired for an unknown account; ignored")
			return nil
		}
		return err
	}
	t, err := a.Technicians.Technician(ctx, tx, accountID, technicianID)
	if errors.Is(err, ErrNotFound) {
		log.ErrorContext(ctx, "licence expired for an unknown technician; ignored")
		return nil
	}
	if err != nil {
		return err
	}
	if t.LicenceRemovalDate != nil {
		if err := a.LicenceStore.SetLicenceRemoval(ctx, tx, accountID, technicianID, nil); err != nil {
			return err
		}
		t.LicenceRemovalDate = nil
	}
	if t.Status == domain.StatusDisabled {
		return nil
	}
	if t.IsAdmin {
		n, err := a.Technicians.ActiveAdmins(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if n <= 1 {
			log.ErrorContext(ctx, "licence expired for the account's last active admin: kept enabled (I-9) although seatbilling removed the seat; buy a seat or make another admin and disable this one")
			return nil
		}
	}
	return a.disable(ctx, tx, &t, ReasonLicenceRemoved, "")
}
