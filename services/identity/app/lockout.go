package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// SecurityStore keeps the account security policies and the lockout
// counters (L-2, L-3, L-4).
type SecurityStore interface {
	Policy(ctx context.Context, q Querier, accountID string) (domain.SecurityPolicy, error)
	PutPolicy(ctx context.Context, tx *sql.Tx, accountID string, p domain.SecurityPolicy, now time.Time) error
	LockedUntil(ctx context.Context, q Querier, technicianID, factor string, now time.Time) (string, error)
	CountFailure(ctx context.Context, tx *sql.Tx, technicianID, factor string, now time.Time) (failures, locks int, counted bool, err error)
	Lock(ctx context.Context, tx *sql.Tx, technicianID, factor, until string) error
	Succeeded(ctx context.Context, tx *sql.Tx, technicianID, factor string, now time.Time) (bool, error)
	Unlock(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) (bool, error)
}

// lockedForAdmin is the stored end of a lock only an admin lifts.
const lockedForAdmin = "admin"

// retryAfter turns a stored lock end into the wait left at now (0: only an
// admin unlocks).
func retryAfter(until string, now time.Time) time.Duration {
	if until == lockedForAdmin {
		return 0
	}
	t, err := store.ParseTime(until)
	if err != nil {
		return 0
	}
	return max(t.Sub(now), time.Second)
}

// failure is one failed authentication, to count and audit.
type failure struct {
	accountID, technicianID, email string
	// reason is LoginFailed's reason.
	reason string
	// factor is counted towards a lock (L-2, L-3); "" counts nothing.
	factor string
}

// fail records a failed authentication (L-2, L-3): LoginFailed with the
// request's source address, always; on a counted factor one more failure,
// atomically, and the lock once the account's threshold is reached —
// escalating, until an admin must unlock. It returns the answer: 423 when
// the technician is (now) locked, else def.
func (c *Credentials) fail(ctx context.Context, f failure, def *problem.Problem) error {
	now := c.Now().UTC().Truncate(time.Microsecond)
	if f.technicianID == "" {
		// An unknown email: audited in an account that exists only.
		if _, err := c.Store.Account(ctx, f.accountID); errors.Is(err, ErrNotFound) {
			return def
		} else if err != nil {
			return err
		}
	}
	answer := def
	err := c.DB.InTx(ctx, func(tx *sql.Tx) error {
		answer = def
		ev := &identityv1.LoginFailed{Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
			TechnicianId: f.technicianID, Email: strings.TrimSpace(f.email), Reason: f.reason}
		if f.factor != "" {
			failures, locks, counted, err := c.Security.CountFailure(ctx, tx, f.technicianID, f.factor, now)
			if err != nil {
				return err
			}
			if !counted { // locked by a parallel attempt meanwhile
				until, err := c.Security.LockedUntil(ctx, tx, f.technicianID, f.factor, now)
				if err != nil {
					return err
				}
				ev.Reason, answer = "locked", domain.ErrLocked(retryAfter(until, now))
			}
			ev.Failures = int32(failures)
			pol, err := c.Security.Policy(ctx, tx, f.accountID)
			if err != nil {
				return err
			}
			if counted && failures >= pol.LockoutThreshold {
				p, err := c.lock(ctx, tx, f, pol, locks+1, now)
				if err != nil {
					return err
				}
				answer = p
			}
		}
		return c.Bus.Emit(ctx, tx, f.accountID, ev)
	})
	if err != nil {
		return err
	}
	return answer
}

// lock locks the technician's factor for the lock-th time in a row (L-2)
// and emits TechnicianLocked; the answer is the 423.
func (c *Credentials) lock(ctx context.Context, tx *sql.Tx, f failure, pol domain.SecurityPolicy, lock int, now time.Time) (*problem.Problem, error) {
	ev := &identityv1.TechnicianLocked{Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
		TechnicianId: f.technicianID, Factor: f.factor, Locks: int32(lock)}
	until, wait := lockedForAdmin, time.Duration(0)
	if d, ok := pol.LockFor(lock); ok {
		until, wait = store.Time(now.Add(d)), d
		ev.LockedUntil = timestamppb.New(now.Add(d))
	} else {
		ev.AdminUnlockRequired = true
	}
	if err := c.Security.Lock(ctx, tx, f.technicianID, f.factor, until); err != nil {
		return nil, err
	}
	return domain.ErrLocked(wait), c.Bus.Emit(ctx, tx, f.accountID, ev)
}

// lockedOut answers 423 (and audits the refused attempt) when the
// technician's factor is locked at now; nil otherwise.
func (c *Credentials) lockedOut(ctx context.Context, accountID, technicianID, email, factor string) error {
	now := c.Now().UTC()
	until, err := c.Security.LockedUntil(ctx, c.DB, technicianID, factor, now)
	if err != nil || until == "" {
		return err
	}
	locked := domain.ErrLocked(retryAfter(until, now))
	return c.fail(ctx, failure{accountID: accountID, technicianID: technicianID, email: email, reason: "locked"}, locked)
}

// Unlocked is the answer of an admin unlock.
type Unlocked struct {
	TechnicianID string `json:"technician_id"`
	// WasLocked: a lock was in force and is lifted now.
	WasLocked bool `json:"was_locked"`
}

// UnlockTechnician is an admin's unlock (L-2): every lock of the
// technician is lifted and the counts restart; TechnicianUnlocked when a
// lock was in force. Idempotent by key, and harmless without one.
func (c *Credentials) UnlockTechnician(ctx context.Context, accountID, id, idemKey string, body []byte) (idempotency.Result, error) {
	if _, err := c.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, c.DB, idempotency.Request{Scope: idemScope(accountID, "POST /technicians/"+id+"/unlock"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			t, err := c.Technicians.Technician(ctx, tx, accountID, id)
			if errors.Is(err, ErrNotFound) {
				return 0, nil, problem.NotFound("technician " + id)
			}
			if err != nil {
				return 0, nil, err
			}
			was, err := c.unlock(ctx, tx, accountID, t.ID, "admin")
			if err != nil {
				return 0, nil, err
			}
			return http.StatusOK, Unlocked{TechnicianID: t.ID, WasLocked: was}, nil
		})
}

// unlock lifts the technician's locks in tx, emitting TechnicianUnlocked
// with reason when one was in force.
func (c *Credentials) unlock(ctx context.Context, tx *sql.Tx, accountID, technicianID, reason string) (bool, error) {
	now := c.Now().UTC().Truncate(time.Microsecond)
	was, err := c.Security.Unlock(ctx, tx, technicianID, now)
	if err != nil || !was {
		return was, err
	}
	return true, c.Bus.Emit(ctx, tx, accountID, &identityv1.TechnicianUnlocked{
		Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}, TechnicianId: technicianID, Reason: reason})
}

// SecurityPolicy returns the account's policy (api.md /security-policy).
func (c *Credentials) SecurityPolicy(ctx context.Context, accountID string) (domain.SecurityPolicy, error) {
	if _, err := c.Account(ctx, accountID); err != nil {
		return domain.SecurityPolicy{}, err
	}
	return c.Security.Policy(ctx, c.DB, accountID)
}

// PutSecurityPolicy replaces the fields the body names, keeps the others,
// checks the result whole (422 naming each bad field) and emits
// SecurityPolicyUpdated. Unknown fields are refused (httpx.Decode's rule).
func (c *Credentials) PutSecurityPolicy(ctx context.Context, accountID string, body []byte) (domain.SecurityPolicy, error) {
	if _, err := c.Account(ctx, accountID); err != nil {
		return domain.SecurityPolicy{}, err
	}
	var out domain.SecurityPolicy
	err := c.DB.InTx(ctx, func(tx *sql.Tx) error {
		p, err := c.Security.Policy(ctx, tx, accountID)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body is not a security policy: "+err.Error())
		}
		if pr := p.Validate(); pr != nil {
			return pr
		}
		now := c.Now().UTC().Truncate(time.Microsecond)
		if err := c.Security.PutPolicy(ctx, tx, accountID, p, now); err != nil {
			return err
		}
		out = p
		return c.Bus.Emit(ctx, tx, accountID, &identityv1.SecurityPolicyUpdated{
			Meta:             &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
			LockoutThreshold: int32(p.LockoutThreshold), LockoutBaseSeconds: int32(p.LockoutBaseSeconds),
			LockoutMaxSeconds: int32(p.LockoutMaxSeconds), LockoutAdminAfter: int32(p.LockoutAdminAfter),
			RequireSecondFactor: p.RequireSecondFactor, MaxSessions: int32(p.MaxSessions), SessionOverflow: p.SessionOverflow,
			SessionIdleMinutes: int32(p.SessionIdleMinutes), SessionAbsoluteHours: int32(p.SessionAbsoluteHours),
			RateLimitPerAddress: int32(p.RatePerAddress), RateLimitPerAccount: int32(p.RatePerAccount),
		})
	})
	return out, err
}
