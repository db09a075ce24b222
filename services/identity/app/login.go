package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// CredentialStore is what the credential use cases need: invitations,
// passwords, sessions, first logins and the mail outbox.
type CredentialStore interface {
	InsertInvitation(ctx context.Context, tx *sql.Tx, inv domain.Invitation) error
	InvitationByHash(ctx context.Context, q Querier, hash string) (domain.Invitation, error)
	UseInvitation(ctx context.Context, tx *sql.Tx, id string, now time.Time) (bool, error)
	RevokeInvitations(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) error
	// RevokeOwnedTokens revokes the API tokens acting for the technician.
	RevokeOwnedTokens(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) ([]string, error)
	QueueMail(ctx context.Context, tx *sql.Tx, m OutboxMail) error
	// DueMail claims the due mails until until (no other mailer gets
	// them before).
	DueMail(ctx context.Context, now, until time.Time, limit int) ([]OutboxMail, error)
	MailSent(ctx context.Context, id string) error
	MailFailed(ctx context.Context, id string, next time.Time, reason string) error
	SetPassword(ctx context.Context, tx *sql.Tx, technicianID, hash, method string, now time.Time) error
	LoginRecord(ctx context.Context, accountID, email string) (LoginRecord, error)
	TouchLogin(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) (bool, error)
	InsertFirstLogin(ctx context.Context, tx *sql.Tx, technicianID, method string, now time.Time) (bool, error)
}

// Credentials is the identity use cases of invitations, passwords and
// sessions (I-4, I-6, I-7, I-11, L-1). It plugs into App through App's
// hooks (OnTechnicianCreated, OnTechnicianDisabled, AuthenticateSession).
type Credentials struct {
	*App
	Creds CredentialStore
	// Security keeps the account policies and lockout counters (L-2 …
	// L-4; app/lockout.go).
	Security SecurityStore
	// Sessions keeps the login sessions (L-4; app/sessions.go).
	Sessions SessionStore
	// Resets keeps password-reset requests and links (L-5; app/reset.go).
	Resets ResetStore
	// TOTP keeps second factors and recovery codes (L-3; app/totp.go).
	TOTP TOTPStore
	// SSOConfigs tells whether an account enforces single sign-on (L-6;
	// app/sso.go); nil: none does.
	SSOConfigs SSOStore
	// Acceptances knows which invitees take their seat on acceptance
	// (S-2, atlan; app/invite.go); nil: none does.
	Acceptances AcceptanceStore
	// Limits rate-limits the login, reset and token routes; nil limits
	// nothing (app/ratelimit.go).
	Limits *RateLimiter
	// Mail delivers the queued mails; nil leaves them queued.
	Mail MailTransport
	// PublicURL is the base of the links in mails (api.md: --public-url).
	PublicURL string
	Log       *slog.Logger
}

// LoginRecord is who logs in with an email, and their password hash.
type LoginRecord struct {
	TechnicianID string
	AccountID    string
	Email        string
	Status       string
	// PasswordHash is "" until a password is set.
	PasswordHash string
}

// Session is a technician's login session; TokenHash is the hex SHA-256
// of the rss_ token, which only the client holds. L-4: it ends at
// ExpiresAt (absolute) or IdleExpiresAt (unused for Idle), whichever
// comes first.
type Session struct {
	ID            string        `json:"id"`
	AccountID     string        `json:"-"`
	TechnicianID  string        `json:"technician_id"`
	TokenHash     string        `json:"-"`
	DeviceLabel   string        `json:"device_label"`
	SourceAddress string        `json:"source_address"`
	CreatedAt     time.Time     `json:"created_at"`
	LastUsedAt    time.Time     `json:"last_used_at"`
	ExpiresAt     time.Time     `json:"expires_at"`
	IdleExpiresAt time.Time     `json:"idle_expires_at"`
	Idle          time.Duration `json:"-"`
	// EnrollmentOnly: the session serves the second-factor enrolment
	// only, until a factor is confirmed (L-3).
	EnrollmentOnly bool `json:"enrollment_only"`
	// Current marks the session of the request that lists them.
	Current bool `json:"current"`
}

// Login is the request of POST /v1/auth/login.
type Login struct {
	AccountID string `json:"account_id"`
	Email     string `json:"email"`
	Password  string `json:"password"`
	// TOTP is the second factor (L-3): a TOTP code or a recovery code.
	TOTP string `json:"totp"`
	// DeviceLabel names the session in lists (L-4); the port fills it
	// from the User-Agent when empty.
	DeviceLabel string `json:"device_label"`
	// SourceAddress is the client's address, from the port.
	SourceAddress string `json:"-"`
}

// LoggedIn is the answer of a login (api.md).
type LoggedIn struct {
	SessionToken string    `json:"session_token"`
	ExpiresAt    time.Time `json:"expires_at"`
	// FirstLogin is true for the one login that was the technician's first
	// authentication (I-6).
	FirstLogin   bool   `json:"first_login"`
	TechnicianID string `json:"technician_id"`
	// SecondFactorEnrollmentRequired: the account requires a second
	// factor this technician has not enrolled; the session serves
	// /v1/auth/totp/* only until it is confirmed (L-3).
	SecondFactorEnrollmentRequired bool `json:"second_factor_enrollment_required"`
}

// Password hashing is memory-hard (19 MiB each): at most this many run at
// once, so that a burst of logins queues instead of exhausting memory.
var kdfSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

func withKDF[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	select {
	case kdfSlots <- struct{}{}:
		defer func() { <-kdfSlots }()
		return fn()
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func hashPassword(ctx context.Context, password string, salt []byte) (string, error) {
	return withKDF(ctx, func() (string, error) { return domain.HashPassword(password, salt), nil })
}

// dummyHash is verified when there is no password to check (unknown email,
// no password set yet), so that every failed login costs the same time.
var dummyHash = sync.OnceValue(func() string { return domain.HashPassword(newSecret(""), domain.NewSalt()) })

// Login checks an email and password (I-7, I-11, I-6) and opens a session.
// Every failure is the same 401 invalid-credentials, answered after the
// same work: an unknown email, a technician without a password yet, a
// wrong password and a disabled technician cannot be told apart.
func (c *Credentials) Login(ctx context.Context, req Login) (LoggedIn, error) {
	var errs []problem.FieldError
	for _, f := range []struct{ name, v string }{{"account_id", req.AccountID}, {"email", req.Email}, {"password", req.Password}} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, problem.FieldError{Field: f.name, Detail: "is required"})
		}
	}
	if len(errs) > 0 {
		return LoggedIn{}, problem.Invalid(errs...)
	}
	if len(req.Password) > 4*domain.MaxPasswordLength {
		return LoggedIn{}, domain.ErrInvalidCredentials()
	}
	// L-6: an account enforcing single sign-on has no password login, for
	// any email alike.
	if enforced, err := c.ssoEnforced(ctx, req.AccountID); err != nil {
		return LoggedIn{}, err
	} else if enforced {
		return LoggedIn{}, c.fail(ctx, failure{accountID: req.AccountID, email: req.Email, reason: "sso_enforced"}, domain.ErrSSOEnforced())
	}
	rec, err := c.Creds.LoginRecord(ctx, req.AccountID, req.Email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return LoggedIn{}, err
	}
	known := err == nil
	counted := known && rec.PasswordHash != "" && rec.Status != domain.StatusDisabled
	if counted {
		// L-2: while locked, 423 whatever the password, before any hashing.
		if err := c.lockedOut(ctx, rec.AccountID, rec.TechnicianID, req.Email, domain.FactorPassword); err != nil {
			return LoggedIn{}, err
		}
	}
	hash := rec.PasswordHash
	if hash == "" {
		hash = dummyHash()
	}
	ok, err := withKDF(ctx, func() (bool, error) { return domain.VerifyPassword(hash, req.Password) })
	if err != nil {
		return LoggedIn{}, fmt.Errorf("verify password of %s: %w", rec.TechnicianID, err)
	}
	if !ok || !counted {
		// L-2: every failure is audited; a wrong password of a technician
		// who could log in counts towards the lock.
		f := failure{accountID: req.AccountID, technicianID: rec.TechnicianID, email: req.Email}
		switch {
		case !known:
			f.reason = "unknown_email"
		case rec.Status == domain.StatusDisabled:
			f.reason = "disabled"
		case rec.PasswordHash == "":
			f.reason = "no_password"
		default:
			f.reason, f.factor = "password", domain.FactorPassword
		}
		return LoggedIn{}, c.fail(ctx, f, domain.ErrInvalidCredentials())
	}
	// L-3: the second factor, when the technician has one.
	checked, err := c.checkSecondFactor(ctx, rec, req.Email, req.TOTP)
	if err != nil {
		return LoggedIn{}, err
	}

	now := c.Now().UTC().Truncate(time.Microsecond)
	ctx = asTechnician(ctx, rec.TechnicianID)
	var first bool
	var opened Opened
	err = c.DB.InTx(ctx, func(tx *sql.Tx) error {
		// L-2: the right password clears the count — unless a parallel
		// failure locked the technician meanwhile, which holds.
		ok, err := c.Security.Succeeded(ctx, tx, rec.TechnicianID, domain.FactorPassword, now)
		if err != nil {
			return err
		}
		if !ok {
			return errLocked
		}
		if checked {
			if ok, err := c.Security.Succeeded(ctx, tx, rec.TechnicianID, domain.FactorTOTP, now); err != nil {
				return err
			} else if !ok {
				return errLocked
			}
		}
		first, err = c.authenticated(ctx, tx, rec.AccountID, rec.TechnicianID, "password", now)
		if errors.Is(err, errDisabled) { // disabled meanwhile (I-7)
			return domain.ErrInvalidCredentials()
		}
		if err != nil {
			return err
		}
		// L-4: the account's cap on concurrent sessions applies here.
		// L-3: without the second factor the policy requires, the session
		// serves the enrolment only.
		pending, err := c.enrollmentPending(ctx, tx, rec.AccountID, rec.TechnicianID)
		if err != nil {
			return err
		}
		opened, err = c.openSession(ctx, tx, rec.AccountID, rec.TechnicianID, req.DeviceLabel, req.SourceAddress, pending, now)
		return err
	})
	if errors.Is(err, errLocked) {
		if err := c.lockedOut(ctx, rec.AccountID, rec.TechnicianID, req.Email, domain.FactorPassword); err != nil {
			return LoggedIn{}, err
		}
		return LoggedIn{}, domain.ErrLocked(time.Second)
	}
	if err != nil {
		return LoggedIn{}, err
	}
	return LoggedIn{SessionToken: opened.Secret, ExpiresAt: opened.Session.ExpiresAt, FirstLogin: first, TechnicianID: rec.TechnicianID,
		SecondFactorEnrollmentRequired: opened.Session.EnrollmentOnly}, nil
}

// errDisabled: the technician was disabled while authenticating.
var errDisabled = errors.New("technician disabled")

// errLocked: the technician was locked while authenticating (L-2).
var errLocked = errors.New("technician locked")

// authenticated records a successful authentication of the technician in
// tx: the last login time (I-11), and — only for the very first one, which
// the first_logins primary key decides under any concurrency — activation
// and FirstLogin (I-6). Every one emits TechnicianLoggedIn, which feeds
// seatbilling's unused-seat report (S-7). It reports whether this was the
// first login, and fails with errDisabled for a disabled technician (I-7).
func (c *Credentials) authenticated(ctx context.Context, tx *sql.Tx, accountID, technicianID, method string, now time.Time) (bool, error) {
	ok, err := c.Creds.TouchLogin(ctx, tx, technicianID, now)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, errDisabled
	}
	first, err := c.Creds.InsertFirstLogin(ctx, tx, technicianID, method, now)
	if err != nil {
		return false, err
	}
	if first {
		err := c.Bus.Emit(ctx, tx, accountID, &identityv1.FirstLogin{
			TechnicianId: technicianID, Method: method, LoggedInAt: timestamppb.New(now),
		})
		if err != nil {
			return false, err
		}
	}
	return first, c.Bus.Emit(ctx, tx, accountID, &identityv1.TechnicianLoggedIn{
		Meta:         &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
		TechnicianId: technicianID, Method: method, LoggedInAt: timestamppb.New(now),
	})
}

// asTechnician makes the technician the actor of the events that follow
// keeping the request's source address.
func asTechnician(ctx context.Context, technicianID string) context.Context {
	return eventbus.WithActor(ctx, &commonv1.Actor{
		Type: commonv1.ActorType_ACTOR_TYPE_TECHNICIAN, Id: technicianID,
		SourceAddress: eventbus.ActorFrom(ctx).GetSourceAddress(),
	})
}
