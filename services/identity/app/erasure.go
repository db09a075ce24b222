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

// EraseTechnician removes a long-disabled technician's personal data (I-3,
// where the profile offers it: roster, after 30 days): the row and id stay,
// so audit attribution (by id) is kept under a pseudonym, and the email is
// free again. Erasing twice answers the erased technician.
func (a *App) EraseTechnician(ctx context.Context, accountID, id, idemKey string, body []byte) (idempotency.Result, error) {
	_, prof, err := a.account(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: idemScope(accountID, "POST /technicians/"+id+"/erase"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			t, err := a.Technicians.Technician(ctx, tx, accountID, id)
			if errors.Is(err, ErrNotFound) {
				return 0, nil, problem.NotFound("technician " + id)
			}
			if err != nil {
				return 0, nil, err
			}
			if t.Erased {
				return http.StatusOK, t, nil
			}
			now := a.Now().UTC().Truncate(time.Microsecond)
			if p := domain.Erase(&t, prof.Identity.EraseDisabledAfterDays, now); p != nil {
				return 0, nil, p
			}
			if err := a.Technicians.EraseTechnician(ctx, tx, t, now); err != nil {
				return 0, nil, err
			}
			ev := &identityv1.TechnicianErased{TechnicianId: t.ID, Pseudonym: domain.Pseudonym(t.ID)}
			if err := a.Bus.Emit(ctx, tx, accountID, ev); err != nil {
				return 0, nil, err
			}
			return http.StatusOK, t, nil
		})
}
