package app

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// Site groups end users and devices (rules.md, Concepts).
type Site struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Folder is a group of devices inside a site.
type Folder struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	SiteID    string    `json:"site_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// SiteStore is what the site and token use cases need.
type SiteStore interface {
	InsertSite(ctx context.Context, tx *sql.Tx, s Site) error
	Sites(ctx context.Context, accountID string) ([]Site, error)
	InsertFolder(ctx context.Context, tx *sql.Tx, f Folder) error
	TokenByHash(ctx context.Context, hash []byte, now time.Time) (Token, error)
}

func validName(name string) (string, *problem.Problem) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", problem.Invalid(problem.FieldError{Field: "name", Detail: "is required, at most 200 characters"})
	}
	return name, nil
}

// CreateSite adds a site; names are unique per account, case-insensitively.
func (a *App) CreateSite(ctx context.Context, accountID, name, idemKey string, body []byte) (idempotency.Result, error) {
	name, p := validName(name)
	if p != nil {
		return idempotency.Result{}, p
	}
	if _, err := a.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: idemScope(accountID, "POST /sites"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			s := Site{ID: NewID("site"), AccountID: accountID, Name: name, CreatedAt: a.Now().UTC().Truncate(time.Microsecond)}
			if err := a.Sites.InsertSite(ctx, tx, s); errors.Is(err, ErrConflict) {
				return 0, nil, problem.New(http.StatusConflict, "site-name-taken", "Site name taken", "the account already has a site named "+name)
			} else if err != nil {
				return 0, nil, err
			}
			if err := a.Bus.Emit(ctx, tx, accountID, &identityv1.SiteCreated{SiteId: s.ID, Name: s.Name}); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, s, nil
		})
}

// ListSites lists the account's sites.
func (a *App) ListSites(ctx context.Context, accountID string) ([]Site, error) {
	if _, err := a.Account(ctx, accountID); err != nil {
		return nil, err
	}
	return a.Sites.Sites(ctx, accountID)
}

// CreateFolder adds a device folder to a site.
func (a *App) CreateFolder(ctx context.Context, accountID, siteID, name, idemKey string, body []byte) (idempotency.Result, error) {
	name, p := validName(name)
	if p != nil {
		return idempotency.Result{}, p
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: idemScope(accountID, "POST /sites/"+siteID+"/folders"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			f := Folder{ID: NewID("fld"), AccountID: accountID, SiteID: siteID, Name: name, CreatedAt: a.Now().UTC().Truncate(time.Microsecond)}
			if err := a.Sites.InsertFolder(ctx, tx, f); errors.Is(err, ErrNotFound) {
				return 0, nil, problem.NotFound("site " + siteID)
			} else if err != nil {
				return 0, nil, err
			}
			if err := a.Bus.Emit(ctx, tx, accountID, &identityv1.FolderCreated{FolderId: f.ID, SiteId: f.SiteID, Name: f.Name}); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, f, nil
		})
}

// NewToken is a request to mint an account API token.
type NewToken struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
	// TechnicianID, optional, makes the token act for that technician of
	// the account: it stops working when they are deactivated.
	TechnicianID string `json:"technician_id"`
}

// MintedToken is a new token; Token is shown once.
type MintedToken struct {
	Token
	Secret string `json:"token"`
}

// MintToken creates an account API token with the given scopes (least
// privilege: only the scopes asked for, each one known, and none the caller
// does not hold itself — callerCan reports the caller's scopes).
func (a *App) MintToken(ctx context.Context, accountID string, req NewToken, callerCan func(scope string) bool, idemKey string, body []byte) (idempotency.Result, error) {
	var errs []problem.FieldError
	name := strings.TrimSpace(req.Name)
	if name == "" {
		errs = append(errs, problem.FieldError{Field: "name", Detail: "is required"})
	}
	if len(req.Scopes) == 0 {
		errs = append(errs, problem.FieldError{Field: "scopes", Detail: "name at least one of " + strings.Join(domain.AccountScopes, ", ")})
	}
	for _, s := range req.Scopes {
		if !slices.Contains(domain.AccountScopes, s) {
			errs = append(errs, problem.FieldError{Field: "scopes", Detail: "unknown scope " + s})
		} else if !callerCan(s) {
			errs = append(errs, problem.FieldError{Field: "scopes", Detail: "your token does not hold " + s + ", so it cannot grant it"})
		}
	}
	now := a.Now().UTC().Truncate(time.Microsecond)
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		errs = append(errs, problem.FieldError{Field: "expires_at", Detail: "must be in the future"})
	}
	if owner := strings.TrimSpace(req.TechnicianID); owner != "" {
		if t, err := a.Technicians.Technician(ctx, a.DB, accountID, owner); errors.Is(err, ErrNotFound) {
			errs = append(errs, problem.FieldError{Field: "technician_id", Detail: "names no technician of the account"})
		} else if err != nil {
			return idempotency.Result{}, err
		} else if t.Status == domain.StatusDisabled {
			errs = append(errs, problem.FieldError{Field: "technician_id", Detail: "the technician is deactivated"})
		}
	}
	if len(errs) > 0 {
		return idempotency.Result{}, problem.Invalid(errs...)
	}
	if _, err := a.Account(ctx, accountID); err != nil {
		return idempotency.Result{}, err
	}
	return idempotency.Do(ctx, a.DB, idempotency.Request{Scope: idemScope(accountID, "POST /tokens"), Key: idemKey, Body: body},
		func(tx *sql.Tx) (int, any, error) {
			secret := newSecret("rst_")
			t := Token{ID: NewID("tok"), AccountID: accountID, Name: name, Hash: hex.EncodeToString(httpx.HashToken(secret)),
				Scopes: slices.Compact(slices.Sorted(slices.Values(req.Scopes))), CreatedAt: now, ExpiresAt: req.ExpiresAt,
				TechnicianID: strings.TrimSpace(req.TechnicianID)}
			if err := a.Store.InsertToken(ctx, tx, t); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, MintedToken{Token: t, Secret: secret}, nil
		})
}

// Principal is who a token belongs to (answer of rpc.Authenticate).
type Principal struct {
	AccountID    string
	TokenID      string
	TechnicianID string
	Scopes       []string
	// EnrollmentOnly: a session serving second-factor enrolment only (L-3).
	EnrollmentOnly bool
	// CacheUntil is until when this answer holds unless an identity event
	// (ApiTokenRevoked, SessionsRevoked, …) says otherwise: the earliest of
	// the expiry (absolute and idle) and the next use identity records
	// (last use + a minute), so that a caching caller still brings that use
	// here. Zero: do not cache.
	CacheUntil time.Time
}

// earliest is the earliest of the non-zero times.
func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

// Authenticate resolves a token's SHA-256 to its principal; ok is false for
// an unknown, expired or revoked token.
func (a *App) Authenticate(ctx context.Context, hash []byte) (Principal, bool, error) {
	t, err := a.Sites.TokenByHash(ctx, hash, a.Now())
	if errors.Is(err, ErrNotFound) {
		if a.AuthenticateSession != nil {
			return a.AuthenticateSession(ctx, hash)
		}
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, err
	}
	now := a.Now().UTC().Truncate(time.Microsecond)
	if a.TokenUsed != nil {
		if err := a.TokenUsed(ctx, t, now); err != nil {
			return Principal{}, false, err
		}
	}
	// The next use to record is a minute after the last recorded one.
	used := now
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < tokenTouchEvery {
		used = *t.LastUsedAt
	}
	var expires time.Time
	if t.ExpiresAt != nil {
		expires = *t.ExpiresAt
	}
	return Principal{AccountID: t.AccountID, TokenID: t.ID, Scopes: t.Scopes,
		CacheUntil: earliest(expires, used.Add(tokenTouchEvery))}, true, nil
}
