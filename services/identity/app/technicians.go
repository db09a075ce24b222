package app

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
	"roster.dev/pkg/store"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// ErrConflict is a uniqueness conflict the caller names.
var ErrConflict = errors.New("conflict")

// Querier is a *sql.DB or a *sql.Tx.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// TechnicianStore is what the technician use cases need.
type TechnicianStore interface {
	Technician(ctx context.Context, q Querier, accountID, id string) (domain.Technician, error)
	TechnicianByEmail(ctx context.Context, q Querier, accountID, email string) (domain.Technician, error)
	AddTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, reservationID string) error
	UpdateTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, now time.Time) error
	LockAccount(ctx context.Context, tx *sql.Tx, accountID string) error
	ActiveAdmins(ctx context.Context, tx *sql.Tx, accountID string) (int, error)
	ListTechnicians(ctx context.Context, f TechnicianFilter) ([]domain.Technician, error)
	MissingSites(ctx context.Context, q Querier, accountID string, ids []string) ([]string, error)
	ApplyRoleAssigned(ctx context.Context, tx *sql.Tx, accountID, technicianID, roleID, roleName, requested string, admin bool) error
	EraseTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician, now time.Time) error
}

// Seat outcomes of a reservation (seatbilling's ReserveSeat).
type SeatOutcome int

const (
	SeatReserved SeatOutcome = iota + 1
	SeatPurchaseReserved
	SeatQuote
)

// Quote is the price of one more seat now (S-3), as api.md shows it.
type Quote struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	DaysLeft  int    `json:"days_left"`
	CycleDays int    `json:"cycle_days"`
	CycleEnd  string `json:"cycle_end"`
}

// SeatReserver asks seatbilling for a seat before a technician exists
// (flows.md: identity ⇄ seatbilling ReserveSeat).
type SeatReserver interface {
	ReserveSeat(ctx context.Context, accountID, reservationID string, confirmPurchase bool) (SeatOutcome, *Quote, error)
}

// ErrSeatPurchaseRequired is the 402 of S-3 with the quote.
func ErrSeatPurchaseRequired(q *Quote) *problem.Problem {
	return problem.New(http.StatusPaymentRequired, "seat-purchase-required", "Seat purchase required",
		"every seat is taken; repeat the request with \"confirm_seat_purchase\": true to buy one at the quoted prorated price").
		With("quote", q)
}

func (a *App) account(ctx context.Context, id string) (domain.Account, *profile.Profile, error) {
	acc, err := a.Account(ctx, id)
	if err != nil {
		return acc, nil, err
	}
	prof, err := profile.Get(acc.Profile)
	return acc, prof, err
}

// ErrSubscriptionNotReady: seatbilling has not opened the account's
// subscription yet (AccountCreated is milliseconds behind).
var ErrSubscriptionNotReady = errors.New("subscription not ready")

// reservationID names the seat reservation of a request. With an
// Idempotency-Key it is derived from the key and the body, so a client's
// retry of a request cut short between the reservation and the commit (a
// crash, a timeout) asks for the same reservation and reuses its hold,
// instead of leaving it to block a seat until it expires (found by the
// crash-consistency harness, issue 11). The key's record, kept 24 hours,
// answers any retry that comes after the commit.
func reservationID(scope, idemKey string, body []byte) string {
	if idemKey == "" {
		return NewID("res")
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(scope), []byte(idemKey), body} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return "res_k" + hex.EncodeToString(h.Sum(nil))[:32]
}

// reserveSeat asks for a seat and turns "no seat" into the 402.
func (a *App) reserveSeat(ctx context.Context, accountID, reservation string, confirm bool) (string, error) {
	outcome, quote, err := a.Seats.ReserveSeat(ctx, accountID, reservation, confirm)
	// A brand-new account: seatbilling opens the subscription from
	// AccountCreated milliseconds later. Wait a little for it (at most ~3 s)
	// rather than failing the client's first request.
	for wait := 25 * time.Millisecond; errors.Is(err, ErrSubscriptionNotReady) && wait < 2*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		outcome, quote, err = a.Seats.ReserveSeat(ctx, accountID, reservation, confirm)
	}
	if errors.Is(err, ErrSubscriptionNotReady) {
		return "", problem.New(http.StatusServiceUnavailable, "account-not-ready", "Account not ready",
			"the account was created moments ago and its subscription is still being opened; retry in a second").With("retry_after", 1)
	}
	if err != nil {
		return "", fmt.Errorf("reserve a seat: %w", err)
	}
	if outcome == SeatQuote {
		return "", ErrSeatPurchaseRequired(quote)
	}
	return reservation, nil
}

// idemScope scopes an Idempotency-Key to the account and route (api.md).
func idemScope(accountID, route string) string { return accountID + ":" + route }

// AddTechnician adds a technician (I-1, I-2, I-3): the email must be free in
// the account, then seatbilling reserves a seat (or quotes one, S-3), then
// the technician is created invited with the requested role recorded, and
// TechnicianCreated carries the reservation that seatbilling confirms. A
// crash between the reservation and the commit leaves an unconfirmed
// reservation that expires (S-6).
func (a *App) AddTechnician(ctx context.Context, accountID string, req domain.NewTechnician, idemKey string, body []byte) (idempotency.Result, error) {
	acc, prof, err := a.account(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	if p := req.Validate(prof.Identity); p != nil {
		return idempotency.Result{}, p
	}
	scope := idemScope(acc.ID, "POST /technicians")
	if res, ok, err := idempotency.Replay(ctx, a.DB, idempotency.Request{Scope: scope, Key: idemKey, Body: body}); err != nil || ok {
		return res, err
	}
	if missing, err := a.Technicians.MissingSites(ctx, a.DB, acc.ID, req.SiteIDs); err != nil {
		return idempotency.Result{}, err
	} else if len(missing) > 0 {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "site_ids", Detail: "unknown sites: " + strings.Join(missing, ", ")})
	}
	if holder, err := a.Technicians.TechnicianByEmail(ctx, a.DB, acc.ID, req.Email); err == nil {
		return idempotency.Result{}, domain.EmailConflict(req.Email, holder.Status)
	} else if !errors.Is(err, ErrNotFound) {
		return idempotency.Result{}, err
	}
	// S-2: where seats are taken on acceptance (atlan), none is reserved now.
	reservation, stored := "", domain.SeatAwaitsAcceptance
	if !prof.Identity.SeatOnAcceptance() {
		if reservation, err = a.reserveSeat(ctx, acc.ID, reservationID(scope, idemKey, body), req.ConfirmSeatPurchase); err != nil {
			return idempotency.Result{}, err
		}
		stored = reservation
	}
	now := a.Now().UTC().Truncate(time.Microsecond)
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: scope, Key: idemKey, Body: body}, func(tx *sql.Tx) (int, any, error) {
		t := domain.Technician{
			ID: NewID("tech"), AccountID: acc.ID, Email: req.Email, FirstName: req.FirstName, LastName: req.LastName,
			Phone: req.Phone, Status: prof.Identity.InitialStatus, SiteIDs: req.SiteIDs, CreatedAt: now,
		}
		if req.Role != "" {
			t.RequestedRole = &req.Role
		}
		if err := a.Technicians.AddTechnician(ctx, tx, t, stored); err != nil {
			if store.IsUniqueViolation(err) { // the same email added concurrently
				return 0, nil, domain.ErrEmailInUse(req.Email)
			}
			return 0, nil, err
		}
		ev := &identityv1.TechnicianCreated{
			TechnicianId: t.ID, Email: t.Email, FirstName: t.FirstName, LastName: t.LastName,
			Status: t.Status, RequestedRole: req.Role, SiteIds: t.SiteIDs, ReservationId: reservation,
		}
		if err := a.Bus.Emit(ctx, tx, acc.ID, ev); err != nil {
			return 0, nil, err
		}
		if len(req.Personas) > 0 { // rolepolicy assigns them
			if err := a.Bus.Emit(ctx, tx, acc.ID, &identityv1.PersonasRequested{TechnicianId: t.ID, PersonaIds: req.Personas}); err != nil {
				return 0, nil, err
			}
		}
		if a.OnTechnicianCreated != nil {
			if err := a.OnTechnicianCreated(ctx, tx, acc, t); err != nil {
				return 0, nil, err
			}
		}
		return http.StatusCreated, t, nil
	})
}

// TechnicianFilter selects technicians to list (I-8).
type TechnicianFilter struct {
	AccountID    string
	Status       string
	Role         string
	SiteID       string
	Email        string
	Query        string
	HideDisabled bool
	// InactiveSince keeps those not active since then (never active
	// included); ActiveSince those active since then (last_active_at).
	InactiveSince, ActiveSince *time.Time
	After                      string
	Limit                      int
}

// ListTechnicians lists a page of technicians (I-8: disabled ones stay,
// hide_disabled filters them out).
func (a *App) ListTechnicians(ctx context.Context, f TechnicianFilter) ([]domain.Technician, error) {
	if _, err := a.Account(ctx, f.AccountID); err != nil {
		return nil, err
	}
	return a.Technicians.ListTechnicians(ctx, f)
}

// Technician returns one technician.
func (a *App) Technician(ctx context.Context, accountID, id string) (domain.Technician, error) {
	t, err := a.Technicians.Technician(ctx, a.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return t, problem.NotFound("technician " + id)
	}
	return t, err
}

// PatchTechnician changes names and phone, and the email of a disabled
// technician (I-3: renaming frees the old email; audited with before and
// after through TechnicianUpdated).
func (a *App) PatchTechnician(ctx context.Context, accountID, id string, p domain.Patch) (domain.Technician, error) {
	var out domain.Technician
	err := a.DB.InTx(ctx, func(tx *sql.Tx) error {
		t, err := a.Technicians.Technician(ctx, tx, accountID, id)
		if errors.Is(err, ErrNotFound) {
			return problem.NotFound("technician " + id)
		}
		if err != nil {
			return err
		}
		changes, perr := p.Apply(&t)
		if perr != nil {
			return perr
		}
		out = t
		if len(changes) == 0 {
			return nil
		}
		if err := a.Technicians.UpdateTechnician(ctx, tx, t, a.Now()); err != nil {
			if store.IsUniqueViolation(err) {
				holder, _ := a.Technicians.TechnicianByEmail(ctx, tx, accountID, t.Email)
				return domain.EmailConflict(t.Email, holder.Status)
			}
			return err
		}
		ev := &identityv1.TechnicianUpdated{TechnicianId: t.ID}
		for _, c := range changes {
			ev.Changes = append(ev.Changes, &identityv1.FieldChange{Field: c.Field, Before: c.Before, After: c.After})
		}
		return a.Bus.Emit(ctx, tx, accountID, ev)
	})
	return out, err
}

// DisableTechnician disables a technician (I-7, I-9, S-4): refused for the
// account's last active admin; the technician's sessions end at once;
// TechnicianDisabled lets seatbilling free the seat and rolepolicy deny
// every check. Disabling a disabled technician changes nothing.
func (a *App) DisableTechnician(ctx context.Context, accountID, id, successorID, idemKey string, body []byte) (idempotency.Result, error) {
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: idemScope(accountID, "POST /technicians/"+id+"/disable"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			// Serialise with other admin-affecting changes of the account.
			if err := a.Technicians.LockAccount(ctx, tx, accountID); err != nil {
				if errors.Is(err, ErrNotFound) {
					return 0, nil, problem.NotFound("account " + accountID)
				}
				return 0, nil, err
			}
			t, err := a.Technicians.Technician(ctx, tx, accountID, id)
			if errors.Is(err, ErrNotFound) {
				return 0, nil, problem.NotFound("technician " + id)
			}
			if err != nil {
				return 0, nil, err
			}
			if t.Status == domain.StatusDisabled { // O-*: the plan stands, nothing changes
				return a.disabledAnswer(ctx, tx, t)
			}
			if successorID != "" {
				s, err := a.Technicians.Technician(ctx, tx, accountID, successorID)
				if err != nil || s.Status == domain.StatusDisabled || s.ID == t.ID {
					return 0, nil, problem.Invalid(problem.FieldError{Field: "successor_id", Detail: "must be another technician of the account who is not disabled"})
				}
			}
			if t.IsAdmin {
				n, err := a.Technicians.ActiveAdmins(ctx, tx, accountID)
				if err != nil {
					return 0, nil, err
				}
				if n <= 1 {
					return 0, nil, domain.ErrLastAdmin()
				}
			}
			if err := a.disable(ctx, tx, &t, "disabled", successorID); err != nil {
				return 0, nil, err
			}
			return a.disabledAnswer(ctx, tx, t)
		})
}

// disable disables t within tx, once the caller checked I-9 under the
// account's lock: its sessions and tokens end (I-7) and TechnicianDisabled
// carries reason, so that seatbilling frees the seat (S-4) and rolepolicy
// denies every check.
func (a *App) disable(ctx context.Context, tx *sql.Tx, t *domain.Technician, reason, successorID string) error {
	now := a.Now().UTC().Truncate(time.Microsecond)
	t.Status, t.DisabledAt = domain.StatusDisabled, &now
	if err := a.Technicians.UpdateTechnician(ctx, tx, *t, now); err != nil {
		return err
	}
	if a.OnTechnicianDisabled != nil { // I-7: sessions and tokens end now
		if err := a.OnTechnicianDisabled(ctx, tx, *t); err != nil {
			return err
		}
	}
	// TechnicianDisabled goes into the outbox before the offboarding's
	// instructions (one per owned item, maybe thousands): the relay sends
	// rows in order, and the services that free the seat and deny access —
	// which the disabling request waits for (read-your-writes) — get it
	// first.
	if err := a.Bus.Emit(ctx, tx, t.AccountID, &identityv1.TechnicianDisabled{
		// The time by identity's clock, as FirstLogin's: rolepolicy orders
		// status events by it.
		Meta:         &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
		TechnicianId: t.ID, Reason: reason, SuccessorId: successorID,
	}); err != nil {
		return err
	}
	if a.Offboarding != nil { // O-1…O-4: the plan and its instructions
		return a.Offboarding.Offboard(ctx, tx, *t, successorID)
	}
	return nil
}

// EnableTechnician re-enables a disabled technician: a seat is needed, under
// the same rules as adding (S-3).
func (a *App) EnableTechnician(ctx context.Context, accountID, id string, confirmPurchase bool, idemKey string, body []byte) (idempotency.Result, error) {
	scope := idemScope(accountID, "POST /technicians/"+id+"/enable")
	if res, ok, err := idempotency.Replay(ctx, a.DB, idempotency.Request{Scope: scope, Key: idemKey, Body: body}); err != nil || ok {
		return res, err
	}
	t, err := a.Technician(ctx, accountID, id)
	if err != nil {
		return idempotency.Result{}, err
	}
	if t.Status != domain.StatusDisabled {
		return idempotency.Result{}, domain.ErrNotDisabled()
	}
	if t.Erased {
		return idempotency.Result{}, problem.New(http.StatusConflict, "technician-erased", "Technician erased",
			"an erased technician's personal data is gone; add a new technician instead")
	}
	reservation, err := a.reserveSeat(ctx, accountID, reservationID(scope, idemKey, body), confirmPurchase)
	if err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: scope, Key: idemKey, Body: body}, func(tx *sql.Tx) (int, any, error) {
		t, err := a.Technicians.Technician(ctx, tx, accountID, id)
		if err != nil {
			return 0, nil, err
		}
		if t.Status != domain.StatusDisabled { // enabled concurrently; our reservation expires
			return 0, nil, domain.ErrNotDisabled()
		}
		t.Status, t.DisabledAt = domain.StatusAfterEnable(t), nil
		if err := a.Technicians.UpdateTechnician(ctx, tx, t, a.Now()); err != nil {
			return 0, nil, err
		}
		if a.Offboarding != nil { // O-3: archived reports come back
			if err := a.Offboarding.RestoreArchived(ctx, tx, t); err != nil {
				return 0, nil, err
			}
		}
		if err := a.Bus.Emit(ctx, tx, accountID, &identityv1.TechnicianEnabled{TechnicianId: t.ID, ReservationId: reservation}); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, t, nil
	})
}

// ApplyRoleAssigned keeps identity's view of roles (shown on technicians,
// and the admins of I-9) in step with rolepolicy. A technician who starts
// or stops holding Admin gets TechnicianAdminChanged: their sessions'
// scopes changed, and the HTTP token caches drop them (pkg/auth).
func (a *App) ApplyRoleAssigned(ctx context.Context, tx *sql.Tx, accountID, technicianID, roleID, roleName, requested string, admin bool) error {
	before, err := a.Technicians.Technician(ctx, tx, accountID, technicianID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := a.Technicians.ApplyRoleAssigned(ctx, tx, accountID, technicianID, roleID, roleName, requested, admin); err != nil {
		return err
	}
	if err != nil || before.IsAdmin == admin {
		return nil
	}
	return a.Bus.Emit(ctx, tx, accountID, &identityv1.TechnicianAdminChanged{TechnicianId: technicianID, Admin: admin})
}
