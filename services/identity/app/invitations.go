package app

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// InvitationView is the answer to a resend.
type InvitationView struct {
	ID           string    `json:"id"`
	TechnicianID string    `json:"technician_id"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// IssueInvitation is App's OnTechnicianCreated hook: in the creating
// transaction, a new technician gets a single-use set-password link (I-4)
// whose mail is queued in the same transaction, and InvitationSent.
func (c *Credentials) IssueInvitation(ctx context.Context, tx *sql.Tx, acc domain.Account, t domain.Technician) error {
	_, err := c.issue(ctx, tx, acc, t, c.Now().UTC().Truncate(time.Microsecond))
	return err
}

// issue creates an invitation for t, queues its mail and emits
// InvitationSent. The token (rsi_, 256 random bits) goes into the mail
// only; the invitation keeps its SHA-256.
func (c *Credentials) issue(ctx context.Context, tx *sql.Tx, acc domain.Account, t domain.Technician, now time.Time) (domain.Invitation, error) {
	prof, err := profile.Get(acc.Profile)
	if err != nil {
		return domain.Invitation{}, err
	}
	token := newSecret("rsi_")
	inv := domain.Invitation{
		ID: NewID("inv"), AccountID: acc.ID, TechnicianID: t.ID, TokenHash: hex.EncodeToString(httpx.HashToken(token)),
		ExpiresAt: domain.InvitationExpiry(prof.Identity, now), CreatedAt: now,
	}
	if err := c.Creds.InsertInvitation(ctx, tx, inv); err != nil {
		return inv, err
	}
	subject, text := domain.InvitationMail(acc, t, domain.SetPasswordLink(c.PublicURL, token), inv.ExpiresAt)
	// The mail's id is the invitation's: a mail sent twice (a crash between
	// sending and forgetting it) is the same message.
	if err := c.Creds.QueueMail(ctx, tx, OutboxMail{ID: inv.ID, AccountID: acc.ID, To: t.Email, Subject: subject, Body: text, CreatedAt: now}); err != nil {
		return inv, err
	}
	return inv, c.Bus.Emit(ctx, tx, acc.ID, &identityv1.InvitationSent{
		TechnicianId: t.ID, InvitationId: inv.ID, ExpiresAt: timestamppb.New(inv.ExpiresAt),
	})
}

// ResendInvitation sends an invited technician a new link (I-4); the
// previous links stop working and their unsent mails are dropped. Only an
// invited technician gets one (409 not-invited).
func (c *Credentials) ResendInvitation(ctx context.Context, accountID, id, idemKey string, body []byte) (idempotency.Result, error) {
	acc, err := c.Account(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, c.DB, idempotency.Request{Scope: idemScope(accountID, "POST /technicians/"+id+"/invitation"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			t, err := c.Technicians.Technician(ctx, tx, accountID, id)
			if errors.Is(err, ErrNotFound) {
				return 0, nil, problem.NotFound("technician " + id)
			}
			if err != nil {
				return 0, nil, err
			}
			if t.Status != domain.StatusInvited {
				return 0, nil, domain.ErrNotInvited(t.Status)
			}
			now := c.Now().UTC().Truncate(time.Microsecond)
			if err := c.Creds.RevokeInvitations(ctx, tx, t.ID, now); err != nil {
				return 0, nil, err
			}
			inv, err := c.issue(ctx, tx, acc, t, now)
			if err != nil {
				return 0, nil, err
			}
			return http.StatusAccepted, InvitationView{ID: inv.ID, TechnicianID: t.ID, Status: "pending", ExpiresAt: inv.ExpiresAt}, nil
		})
}

// AcceptInvitation sets the password through a mailed link (POST
// /v1/auth/password; I-4, L-1). The link must be known, unused, not
// withdrawn and not expired — the answer says which, and nothing else.
// Accepting is the technician's first successful authentication when none
// came before (I-6): active, last login now (I-11), FirstLogin — all in one
// transaction with the link marked used, so the link works exactly once.
func (c *Credentials) AcceptInvitation(ctx context.Context, token, password string) error {
	if !strings.HasPrefix(token, "rsi_") {
		return domain.ErrInvitationInvalid()
	}
	inv, err := c.Creds.InvitationByHash(ctx, c.DB, hex.EncodeToString(httpx.HashToken(token)))
	if errors.Is(err, ErrNotFound) {
		return domain.ErrInvitationInvalid()
	}
	if err != nil {
		return err
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	if p := inv.Check(now); p != nil {
		return p
	}
	t, err := c.Technicians.Technician(ctx, c.DB, inv.AccountID, inv.TechnicianID)
	if err != nil {
		return err
	}
	if p := domain.CheckPassword(password, t.Email); p != nil {
		return p
	}
	// S-2 (atlan): the seat is taken on acceptance, or the acceptance held.
	reservation, err := c.seatOnAcceptance(ctx, inv, t)
	if err != nil {
		return err
	}
	// Hashed before the transaction: the write lock is not held for it.
	hash, err := hashPassword(ctx, password, domain.NewSalt())
	if err != nil {
		return err
	}
	ctx = asTechnician(ctx, t.ID)
	return c.DB.InTx(ctx, func(tx *sql.Tx) error {
		// The technician's row first, as disabling takes it first too.
		if _, err := c.authenticated(ctx, tx, inv.AccountID, t.ID, "invitation", now); errors.Is(err, errDisabled) {
			return domain.ErrInvitationRevoked()
		} else if err != nil {
			return err
		}
		if ok, err := c.Creds.UseInvitation(ctx, tx, inv.ID, now); err != nil {
			return err
		} else if !ok { // used, withdrawn or expired since it was read
			again, err := c.Creds.InvitationByHash(ctx, tx, inv.TokenHash)
			if err != nil {
				return err
			}
			if p := again.Check(now); p != nil {
				return p
			}
			return domain.ErrInvitationUsed()
		}
		if err := c.Creds.SetPassword(ctx, tx, t.ID, hash, "invitation", now); err != nil {
			return err
		}
		if err := c.accepted(ctx, tx, inv, reservation, "password"); err != nil {
			return err
		}
		return c.Bus.Emit(ctx, tx, inv.AccountID, &identityv1.PasswordSet{TechnicianId: t.ID, Method: "invitation"})
	})
}

// SetTemporaryPassword is an admin setting a technician's password by hand
// (I-4: the workaround for welcome mails lost to spam filters); the
// technician logs in with it. Refused for a disabled technician.
//
// The Idempotency-Key compares request bodies by a hash stored for 48 h;
// a plain SHA-256 of a body holding a password would be a fast offline
// guess target. So with a key, the argon2id salt is derived from the key:
// the same key and password give the same PHC string, which is what the
// key compares.
func (c *Credentials) SetTemporaryPassword(ctx context.Context, accountID, id, password, idemKey string) (idempotency.Result, error) {
	t, err := c.Technician(ctx, accountID, id)
	if err != nil {
		return idempotency.Result{}, err
	}
	if p := domain.CheckPassword(password, t.Email); p != nil {
		return idempotency.Result{}, p
	}
	scope := idemScope(accountID, "POST /technicians/"+id+"/password")
	salt := domain.NewSalt()
	if idemKey != "" {
		sum := sha256.Sum256([]byte("roster temporary password\x00" + scope + "\x00" + idemKey))
		salt = sum[:domain.SaltLen]
	}
	hash, err := hashPassword(ctx, password, salt)
	if err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, c.DB, idempotency.Request{Scope: scope, Key: idemKey, Body: []byte(hash)}, func(tx *sql.Tx) (int, any, error) {
		t, err := c.Technicians.Technician(ctx, tx, accountID, id)
		if err != nil {
			return 0, nil, err
		}
		if t.Status == domain.StatusDisabled {
			return 0, nil, domain.ErrTechnicianDisabled()
		}
		now := c.Now().UTC().Truncate(time.Microsecond)
		if err := c.Creds.SetPassword(ctx, tx, t.ID, hash, "temporary", now); err != nil {
			return 0, nil, err
		}
		// L-4: a password change ends every session.
		if err := c.revokeSessions(ctx, tx, accountID, t.ID, nil, "", now, "password_changed"); err != nil {
			return 0, nil, err
		}
		if err := c.Bus.Emit(ctx, tx, accountID, &identityv1.PasswordSet{TechnicianId: t.ID, Method: "temporary"}); err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, nil
	})
}
