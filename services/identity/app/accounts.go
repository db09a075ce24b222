// Package app holds the identity service's use cases: each loads state
// through a small store interface, applies the domain rules and commits the
// state change with its events (the outbox) in one transaction.
package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// ErrNotFound is returned for an unknown id.
var ErrNotFound = errors.New("not found")

// Token is an API token row; Hash is the hex SHA-256 of the secret.
type Token struct {
	ID        string     `json:"id"`
	AccountID string     `json:"account_id"`
	Name      string     `json:"name"`
	Hash      string     `json:"-"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	// LastUsedAt is the last authenticated request, to the minute.
	LastUsedAt *time.Time `json:"last_used_at"`
	// TechnicianID is the technician the token acts for, if any: it is
	// revoked when they are deactivated.
	TechnicianID string `json:"technician_id,omitempty"`
}

// Store is what the use cases need from the database.
type Store interface {
	InsertAccount(ctx context.Context, tx *sql.Tx, a domain.Account) error
	InsertTechnician(ctx context.Context, tx *sql.Tx, t domain.Technician) error
	InsertToken(ctx context.Context, tx *sql.Tx, t Token) error
	Account(ctx context.Context, id string) (domain.Account, error)
	AccountIn(ctx context.Context, q Querier, id string) (domain.Account, error)
}

// Emitter writes events to the outbox within a transaction.
type Emitter interface {
	Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...eventbus.Event) error
}

// App is the identity service's use cases.
type App struct {
	DB          *store.DB
	Store       Store
	Technicians TechnicianStore
	Sites       SiteStore
	EndUsers    EndUserStore
	Seats       SeatReserver
	Bus         Emitter
	Now         func() time.Time
	// Licences asks seatbilling for licence removals, and LicenceStore
	// keeps identity's side of them (S-5, app/licence.go).
	Licences     LicenceScheduler
	LicenceStore LicenceStore
	// Log reports what no caller sees (an I-9 refusal at cycle end); nil
	// logs to slog.Default().
	Log *slog.Logger

	// OnTechnicianCreated runs in the creating transaction (the invitation
	// is issued there, I-4).
	OnTechnicianCreated func(ctx context.Context, tx *sql.Tx, acc domain.Account, t domain.Technician) error
	// OnTechnicianDisabled runs in the disabling transaction (sessions and
	// tokens end there, I-7).
	OnTechnicianDisabled func(ctx context.Context, tx *sql.Tx, t domain.Technician) error
	// AuthenticateSession resolves a technician session token (login).
	AuthenticateSession func(ctx context.Context, hash []byte) (Principal, bool, error)
	// TokenUsed records an API token's use (app/tokens.go).
	TokenUsed func(ctx context.Context, t Token, now time.Time) error
	// Offboarding plans and applies O-1…O-4 on disable, and restores
	// archived reports on enable (app/offboarding_hooks.go); nil: none.
	Offboarding OffboardingHooks
}

// NewID returns an opaque id with a type prefix (api.md): acc_…, tech_….
func NewID(prefix string) string {
	return prefix + "_" + strings.ReplaceAll(eventbus.NewID(), "-", "")
}

// newSecret returns a token secret: 256 random bits.
func newSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// AccountCreated is the answer to POST /v1/accounts.
type AccountCreated struct {
	Account  domain.Account    `json:"account"`
	Admin    domain.Technician `json:"admin"`
	APIToken string            `json:"api_token"`
}

// CreateAccount creates the account, its first admin (invited, Admin role)
// and an account API token holding every account scope, and emits
// AccountCreated; seatbilling opens the subscription from it and rolepolicy
// creates the built-in roles. Retried with the same Idempotency-Key it
// returns the first answer — including the same token — and creates nothing.
func (a *App) CreateAccount(ctx context.Context, req domain.NewAccount, idemKey string, body []byte) (idempotency.Result, error) {
	now := a.Now().UTC().Truncate(time.Microsecond)
	if p := req.Validate(now); p != nil {
		return idempotency.Result{}, p
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: "operator:POST /v1/accounts", Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			acc := domain.Account{
				ID: NewID("acc"), Name: req.Name, Profile: req.Profile, Plan: req.Plan,
				BillingPeriod: req.BillingPeriod, Seats: req.Seats, BillingAnchor: req.BillingAnchor, CreatedAt: now,
			}
			if req.PricePerSeat != nil {
				acc.PricePerSeat = &domain.Money{Amount: *req.PricePerSeat, Currency: "usd"}
			}
			adminRole := "Admin" // api.md: the first admin is created holding Admin
			admin := domain.Technician{
				ID: NewID("tech"), AccountID: acc.ID, Email: req.Admin.Email,
				FirstName: strings.TrimSpace(req.Admin.FirstName), LastName: strings.TrimSpace(req.Admin.LastName),
				Status: domain.StatusInvited, Role: &adminRole, SiteIDs: []string{}, CreatedAt: now,
				IsAdmin: true, // I-9 holds from the first instant, before RoleAssigned arrives
			}
			secret := newSecret("rst_")
			tok := Token{ID: NewID("tok"), AccountID: acc.ID, Name: "initial", Hash: hex.EncodeToString(httpx.HashToken(secret)),
				Scopes: domain.AccountScopes, CreatedAt: now}
			if err := a.Store.InsertAccount(ctx, tx, acc); err != nil {
				return 0, nil, err
			}
			if err := a.Store.InsertTechnician(ctx, tx, admin); err != nil {
				return 0, nil, err
			}
			if err := a.Store.InsertToken(ctx, tx, tok); err != nil {
				return 0, nil, err
			}
			ev := &identityv1.AccountCreated{
				// The account's clock, not the bus's: seatbilling opens the
				// cycle holding this instant and closes it by the same clock.
				Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
				Name: acc.Name, Profile: acc.Profile, Plan: acc.Plan, BillingPeriod: acc.BillingPeriod,
				Seats: int32(acc.Seats), BillingAnchor: acc.BillingAnchor,
				AdminTechnicianId: admin.ID, AdminEmail: admin.Email,
			}
			if acc.PricePerSeat != nil {
				ev.PricePerSeat = &commonv1.Money{Amount: acc.PricePerSeat.Amount, Currency: acc.PricePerSeat.Currency}
			}
			if err := a.Bus.Emit(ctx, tx, acc.ID, ev); err != nil {
				return 0, nil, err
			}
			if a.OnTechnicianCreated != nil {
				if err := a.OnTechnicianCreated(ctx, tx, acc, admin); err != nil {
					return 0, nil, err
				}
			}
			return http.StatusCreated, AccountCreated{Account: acc, Admin: admin, APIToken: secret}, nil
		})
}

// Account returns one account.
func (a *App) Account(ctx context.Context, id string) (domain.Account, error) {
	acc, err := a.Store.Account(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return acc, problem.NotFound("account " + id)
	}
	return acc, err
}
