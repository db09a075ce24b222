package app

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
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
	QueueMail(ctx context.Context, tx *sql.Tx, m OutboxMail) error
	DueMail(ctx context.Context, now time.Time, limit int) ([]OutboxMail, error)
	MailSent(ctx context.Context, id string) error
	MailFailed(ctx context.Context, id string, next time.Time, reason string) error
	SetPassword(ctx context.Context, tx *sql.Tx, technicianID, hash, method string, now time.Time) error
	LoginRecord(ctx context.Context, accountID, email string) (LoginRecord, error)
	TouchLogin(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) (bool, error)
	InsertFirstLogin(ctx context.Context, tx *sql.Tx, technicianID, method string, now time.Time) (bool, error)
	InsertSession(ctx context.Context, tx *sql.Tx, s Session) error
	LiveSession(ctx context.Context, hash string, now time.Time) (Session, error)
	RevokeSessions(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) error
}

// Credentials is the identity use cases of invitations, passwords and
// sessions (I-4, I-6, I-7, I-11, L-1). It plugs into App through App's
// hooks (OnTechnicianCreated, OnTechnicianDisabled, AuthenticateSession).
type Credentials struct {
	*App
	Creds CredentialStore
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
// of the rss_ token, which only the client holds.
type Session struct {
	ID           string
	AccountID    string
	TechnicianID string
	TokenHash    string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// Login is the request of POST /v1/auth/login.
type Login struct {
	AccountID string `json:"account_id"`
	Email     string `json:"email"`
	Password  string `json:"password"`
	// TOTP is the second factor (L-3), accepted and not checked yet.
	TOTP string `json:"totp"`
}

// LoggedIn is the answer of a login (api.md).
type LoggedIn struct {
	SessionToken string    `json:"session_token"`
	ExpiresAt    time.Time `json:"expires_at"`
	// FirstLogin is true for the one login that was the technician's first
	// authentication (I-6).
	FirstLogin   bool   `json:"first_login"`
	TechnicianID string `json:"technician_id"`
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
	rec, err := c.Creds.LoginRecord(ctx, req.AccountID, req.Email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return LoggedIn{}, err
	}
	hash := rec.PasswordHash
	if hash == "" {
		hash = dummyHash()
	}
	ok, err := withKDF(ctx, func() (bool, error) { return domain.VerifyPassword(hash, req.Password) })
	if err != nil {
		return LoggedIn{}, fmt.Errorf("verify password of %s: %w", rec.TechnicianID, err)
	}
	// L-2 (later): count the failure atomically here and answer 423 while
	// locked. L-3 (later): the second factor is checked here.
	if !ok || rec.PasswordHash == "" || rec.Status == domain.StatusDisabled {
		return LoggedIn{}, domain.ErrInvalidCredentials()
	}

	now := c.Now().UTC().Truncate(time.Microsecond)
	secret := newSecret("rss_")
	ses := Session{ID: NewID("ses"), AccountID: rec.AccountID, TechnicianID: rec.TechnicianID,
		TokenHash: hex.EncodeToString(httpx.HashToken(secret)), CreatedAt: now, ExpiresAt: now.Add(domain.SessionTTL)}
	ctx = asTechnician(ctx, rec.TechnicianID)
	var first bool
	err = c.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		first, err = c.authenticated(ctx, tx, rec.AccountID, rec.TechnicianID, "password", now)
		if errors.Is(err, errDisabled) { // disabled meanwhile (I-7)
			return domain.ErrInvalidCredentials()
		}
		if err != nil {
			return err
		}
		// L-4 (later): the account's cap on concurrent sessions applies here.
		return c.Creds.InsertSession(ctx, tx, ses)
	})
	if err != nil {
		return LoggedIn{}, err
	}
	return LoggedIn{SessionToken: secret, ExpiresAt: ses.ExpiresAt, FirstLogin: first, TechnicianID: rec.TechnicianID}, nil
}

// errDisabled: the technician was disabled while authenticating.
var errDisabled = errors.New("technician disabled")

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

// AuthenticateSession resolves a session token's SHA-256 (App's hook for
// rpc.Authenticate): live while neither expired, revoked nor its
// technician disabled (I-7). The session of a technician holding the
// built-in Admin role carries every account scope, looked up at each
// request so a demoted admin loses them at once (least privilege); every
// other session carries none yet (docs/api-notes.md, "Console").
func (c *Credentials) AuthenticateSession(ctx context.Context, hash []byte) (Principal, bool, error) {
	ses, err := c.Creds.LiveSession(ctx, hex.EncodeToString(hash), c.Now())
	if errors.Is(err, ErrNotFound) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, err
	}
	p := Principal{AccountID: ses.AccountID, TokenID: ses.ID, TechnicianID: ses.TechnicianID}
	t, err := c.Technicians.Technician(ctx, c.DB, ses.AccountID, ses.TechnicianID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Principal{}, false, err
	}
	if err == nil && t.IsAdmin && t.Status == domain.StatusActive {
		p.Scopes = domain.AccountScopes
	}
	return p, true, nil
}

// RevokeAccess ends, in the disabling transaction, every session of the
// technician and every link mailed to them (I-7; App's
// OnTechnicianDisabled hook). The password stays, for re-enabling.
func (c *Credentials) RevokeAccess(ctx context.Context, tx *sql.Tx, t domain.Technician) error {
	now := c.Now().UTC().Truncate(time.Microsecond)
	if err := c.Creds.RevokeSessions(ctx, tx, t.ID, now); err != nil {
		return err
	}
	return c.Creds.RevokeInvitations(ctx, tx, t.ID, now)
}
