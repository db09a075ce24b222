package app

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// EndUserStore is what the end-user use cases need.
type EndUserStore interface {
	InsertEndUser(ctx context.Context, tx *sql.Tx, u domain.EndUser) error
	EndUser(ctx context.Context, q Querier, accountID, id string) (domain.EndUser, error)
	SetEndUserStatus(ctx context.Context, tx *sql.Tx, accountID, id, status string, now time.Time) error
	EndUsers(ctx context.Context, accountID, siteID, status, after string, limit int) ([]domain.EndUser, error)
}

// CreateEndUser adds an end user to a site of the account (I-10): no seat,
// no role.
func (a *App) CreateEndUser(ctx context.Context, accountID string, req domain.NewEndUser, idemKey string, body []byte) (idempotency.Result, error) {
	if p := req.Validate(); p != nil {
		return idempotency.Result{}, p
	}
	if _, err := a.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	if missing, err := a.Technicians.MissingSites(ctx, a.DB, accountID, []string{req.SiteID}); err != nil {
		return idempotency.Result{}, err
	} else if len(missing) > 0 {
		return idempotency.Result{}, problem.Invalid(problem.FieldError{Field: "site_id", Detail: "unknown site " + req.SiteID})
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: idemScope(accountID, "POST /end-users"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			u := domain.EndUser{ID: NewID("eu"), AccountID: accountID, SiteID: req.SiteID, Email: req.Email, Name: req.Name,
				Status: domain.EndUserActive, CreatedAt: a.Now().UTC().Truncate(time.Microsecond)}
			if err := a.EndUsers.InsertEndUser(ctx, tx, u); errors.Is(err, ErrConflict) {
				return 0, nil, domain.ErrEndUserEmailInUse(req.Email)
			} else if err != nil {
				return 0, nil, err
			}
			ev := &identityv1.EndUserCreated{EndUserId: u.ID, Email: u.Email, Name: u.Name, SiteId: u.SiteID}
			if err := a.Bus.Emit(ctx, tx, accountID, ev); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, u, nil
		})
}

// EndUser returns one end user.
func (a *App) EndUser(ctx context.Context, accountID, id string) (domain.EndUser, error) {
	u, err := a.EndUsers.EndUser(ctx, a.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return u, problem.NotFound("end user " + id)
	}
	return u, err
}

// ListEndUsers lists a page of end users.
func (a *App) ListEndUsers(ctx context.Context, accountID, siteID, status, after string, limit int) ([]domain.EndUser, error) {
	if _, err := a.Account(ctx, accountID); err != nil {
		return nil, err
	}
	return a.EndUsers.EndUsers(ctx, accountID, siteID, status, after, limit)
}

// SetEndUserActive deactivates or reactivates an end user (I-10); doing it
// twice changes nothing the second time.
func (a *App) SetEndUserActive(ctx context.Context, accountID, id string, active bool) (domain.EndUser, error) {
	var out domain.EndUser
	err := a.DB.InTx(ctx, func(tx *sql.Tx) error {
		u, err := a.EndUsers.EndUser(ctx, tx, accountID, id)
		if errors.Is(err, ErrNotFound) {
			return problem.NotFound("end user " + id)
		}
		if err != nil {
			return err
		}
		status := domain.EndUserDeactivated
		if active {
			status = domain.EndUserActive
		}
		out = u
		if u.Status == status {
			return nil
		}
		if err := a.EndUsers.SetEndUserStatus(ctx, tx, accountID, id, status, a.Now()); err != nil {
			return err
		}
		out.Status = status
		if active {
			return a.Bus.Emit(ctx, tx, accountID, &identityv1.EndUserReactivated{EndUserId: id})
		}
		return a.Bus.Emit(ctx, tx, accountID, &identityv1.EndUserDeactivated{EndUserId: id})
	})
	return out, err
}
