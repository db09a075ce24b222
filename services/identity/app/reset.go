package app

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// ResetStore keeps password-reset requests and links (L-5).
type ResetStore interface {
	InsertResetRequest(ctx context.Context, tx *sql.Tx, r ResetRequest) error
	DueResetRequests(ctx context.Context, limit int) ([]ResetRequest, error)
	TakeResetRequest(ctx context.Context, tx *sql.Tx, id string) (bool, error)
	InsertReset(ctx context.Context, tx *sql.Tx, r domain.PasswordReset) error
	ResetByHash(ctx context.Context, q Querier, hash string) (domain.PasswordReset, error)
	UseReset(ctx context.Context, tx *sql.Tx, id string, now time.Time) (bool, error)
	RetireResets(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) error
}

// ResetRequest is a POST /v1/auth/password-reset waiting for the mailer.
type ResetRequest struct {
	ID, AccountID, EmailKey, SourceAddress string
	CreatedAt                              time.Time
}

// ResetAccepted is the one answer to a reset request (L-5).
type ResetAccepted struct {
	Detail string `json:"detail"`
}

// RequestPasswordReset accepts a reset request (L-5). Whether or not the
// email belongs to a technician, the request does the same work — one
// insert into the queue the mailer drains — and gets the same 202: neither
// the answer nor its timing tells who has an account. The mailer decides
// later, out of the request's sight, whether a link is mailed.
func (c *Credentials) RequestPasswordReset(ctx context.Context, accountID, email, addr, idemKey string, body []byte) (idempotency.Result, error) {
	var errs []problem.FieldError
	if strings.TrimSpace(accountID) == "" {
		errs = append(errs, problem.FieldError{Field: "account_id", Detail: "is required"})
	}
	if strings.TrimSpace(email) == "" || len(email) > 320 {
		errs = append(errs, problem.FieldError{Field: "email", Detail: "is required (at most 320 characters)"})
	}
	if len(errs) > 0 {
		return idempotency.Result{}, problem.Invalid(errs...)
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	return idempotency.Do(ctx, c.DB, idempotency.Request{Scope: idemScope(accountID, "POST /v1/auth/password-reset"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			err := c.Resets.InsertResetRequest(ctx, tx, ResetRequest{ID: NewID("rrq"), AccountID: accountID,
				EmailKey: domain.EmailKey(email), SourceAddress: addr, CreatedAt: now})
			if err != nil {
				return 0, nil, err
			}
			return http.StatusAccepted, ResetAccepted{Detail: "if this email belongs to a technician of the account, a reset link is on its way"}, nil
		})
}

// ProcessResetRequests turns waiting reset requests into mailed links
// (L-5): a technician who has a password and is not disabled gets a
// single-use link valid for domain.ResetTTL (older links stop working),
// and PasswordResetRequested; a request for anybody else is dropped
// without a trace.
func (c *Credentials) ProcessResetRequests(ctx context.Context) error {
	due, err := c.Resets.DueResetRequests(ctx, mailBatch)
	if err != nil {
		return err
	}
	for _, r := range due {
		if err := c.processReset(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (c *Credentials) processReset(ctx context.Context, r ResetRequest) error {
	rec, err := c.Creds.LoginRecord(ctx, r.AccountID, r.EmailKey)
	known := err == nil && rec.PasswordHash != "" && rec.Status != domain.StatusDisabled
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	// L-6: under enforced single sign-on there is no password to reset.
	if enforced, err := c.ssoEnforced(ctx, r.AccountID); err != nil {
		return err
	} else if enforced {
		known = false
	}
	var acc domain.Account
	var t domain.Technician
	if known {
		if acc, err = c.Store.Account(ctx, r.AccountID); err != nil {
			return err
		}
		if t, err = c.Technicians.Technician(ctx, c.DB, r.AccountID, rec.TechnicianID); err != nil {
			return err
		}
	}
	ctx = eventbus.WithActor(ctx, &commonv1.Actor{SourceAddress: r.SourceAddress})
	return c.DB.InTx(ctx, func(tx *sql.Tx) error {
		if ok, err := c.Resets.TakeResetRequest(ctx, tx, r.ID); err != nil || !ok || !known {
			return err
		}
		now := c.Now().UTC().Truncate(time.Microsecond)
		if err := c.Resets.RetireResets(ctx, tx, t.ID, now); err != nil {
			return err
		}
		token := newSecret("rsr_")
		reset := domain.PasswordReset{ID: NewID("rst"), AccountID: acc.ID, TechnicianID: t.ID,
			TokenHash: hex.EncodeToString(httpx.HashToken(token)), ExpiresAt: now.Add(domain.ResetTTL), CreatedAt: now}
		if err := c.Resets.InsertReset(ctx, tx, reset); err != nil {
			return err
		}
		subject, text := domain.ResetMail(acc, t, domain.ResetLink(c.PublicURL, token), reset.ExpiresAt)
		if err := c.Creds.QueueMail(ctx, tx, OutboxMail{ID: reset.ID, AccountID: acc.ID, To: t.Email, Subject: subject, Body: text, CreatedAt: now}); err != nil {
			return err
		}
		return c.Bus.Emit(ctx, tx, acc.ID, &identityv1.PasswordResetRequested{
			Meta:         &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
			TechnicianId: t.ID, ResetId: reset.ID, ExpiresAt: timestamppb.New(reset.ExpiresAt),
		})
	})
}

// ConfirmPasswordReset sets a new password through a mailed reset link
// (L-5): single use, within the hour; it ends every session (L-4), lifts
// every lock (L-2) and retires the technician's other reset links.
func (c *Credentials) ConfirmPasswordReset(ctx context.Context, token, password string) error {
	if !strings.HasPrefix(token, "rsr_") {
		return domain.ErrResetInvalid()
	}
	reset, err := c.Resets.ResetByHash(ctx, c.DB, hex.EncodeToString(httpx.HashToken(token)))
	if errors.Is(err, ErrNotFound) {
		return domain.ErrResetInvalid()
	}
	if err != nil {
		return err
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	if p := reset.Check(now); p != nil {
		return p
	}
	t, err := c.Technicians.Technician(ctx, c.DB, reset.AccountID, reset.TechnicianID)
	if err != nil {
		return err
	}
	if p := domain.CheckPassword(password, t.Email); p != nil {
		return p
	}
	hash, err := hashPassword(ctx, password, domain.NewSalt())
	if err != nil {
		return err
	}
	ctx = asTechnician(ctx, t.ID)
	return c.DB.InTx(ctx, func(tx *sql.Tx) error {
		t, err := c.Technicians.Technician(ctx, tx, reset.AccountID, reset.TechnicianID)
		if err != nil {
			return err
		}
		if t.Status == domain.StatusDisabled {
			return domain.ErrTechnicianDisabled()
		}
		if ok, err := c.Resets.UseReset(ctx, tx, reset.ID, now); err != nil {
			return err
		} else if !ok {
			return domain.PasswordReset{UsedAt: &now}.Check(now)
		}
		if err := c.Resets.RetireResets(ctx, tx, t.ID, now); err != nil {
			return err
		}
		if err := c.Creds.SetPassword(ctx, tx, t.ID, hash, "reset", now); err != nil {
			return err
		}
		if err := c.revokeSessions(ctx, tx, t.AccountID, t.ID, nil, "", now, "password_reset"); err != nil {
			return err
		}
		if _, err := c.unlock(ctx, tx, t.AccountID, t.ID, "password_reset"); err != nil {
			return err
		}
		return c.Bus.Emit(ctx, tx, t.AccountID, &identityv1.PasswordSet{TechnicianId: t.ID, Method: "reset"})
	})
}
