package app

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// SessionStore keeps the login sessions (L-4).
type SessionStore interface {
	InsertSession(ctx context.Context, tx *sql.Tx, s Session) error
	// LiveSession: by token hash, neither expired (absolute or idle) nor
	// revoked at now, its technician not disabled.
	LiveSession(ctx context.Context, hash string, now time.Time) (Session, error)
	// TouchSession records a use at now unless one was recorded after
	// since, moving the idle expiry to idleUntil.
	TouchSession(ctx context.Context, id string, now, since, idleUntil time.Time) error
	// LiveSessions: the technician's live sessions at now, oldest first.
	LiveSessions(ctx context.Context, q Querier, technicianID string, now time.Time) ([]Session, error)
	// RevokeSessions ends the technician's live sessions with the ids
	// given (every one when ids is nil) but except, and returns the ids it
	// ended.
	RevokeSessions(ctx context.Context, tx *sql.Tx, technicianID string, ids []string, except string, now time.Time, reason string) ([]string, error)
}

// sessionTouchEvery bounds the writes of session use: the last use and the
// idle expiry move on at most once a minute per session.
const sessionTouchEvery = time.Minute

// Opened is a new session and its secret (shown once).
type Opened struct {
	Session Session
	Secret  string
}

// ErrSessionLimit is a login refused by the account's session cap (L-4,
// session_overflow refuse).
func ErrSessionLimit(max int) *problem.Problem {
	return problem.New(http.StatusConflict, "session-limit", "Too many sessions",
		"this technician already has the account's maximum of live sessions; log out of one (or ask an admin to end one) and log in again").
		With("max_sessions", max)
}

// openSession opens a session for the technician in tx under the account's
// policy (L-4): absolute and idle expiry; at the cap, either the oldest
// sessions end (SessionsRevoked) or the login is refused (409).
func (c *Credentials) openSession(ctx context.Context, tx *sql.Tx, accountID, technicianID, label, addr string, enrollmentOnly bool, now time.Time) (Opened, error) {
	pol, err := c.Security.Policy(ctx, tx, accountID)
	if err != nil {
		return Opened{}, err
	}
	if pol.MaxSessions > 0 {
		live, err := c.Sessions.LiveSessions(ctx, tx, technicianID, now)
		if err != nil {
			return Opened{}, err
		}
		if over := len(live) - pol.MaxSessions + 1; over > 0 {
			if pol.SessionOverflow == domain.OverflowRefuse {
				return Opened{}, ErrSessionLimit(pol.MaxSessions)
			}
			var oldest []string
			for _, s := range live[:over] {
				oldest = append(oldest, s.ID)
			}
			if err := c.revokeSessions(ctx, tx, accountID, technicianID, oldest, "", now, "session_cap"); err != nil {
				return Opened{}, err
			}
		}
	}
	if len(label) > 200 {
		label = label[:200]
	}
	secret := newSecret("rss_")
	idle := time.Duration(pol.SessionIdleMinutes) * time.Minute
	ses := Session{ID: NewID("ses"), AccountID: accountID, TechnicianID: technicianID,
		TokenHash: hex.EncodeToString(httpx.HashToken(secret)), DeviceLabel: label, SourceAddress: addr,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Duration(pol.SessionAbsoluteHours) * time.Hour), Idle: idle,
		EnrollmentOnly: enrollmentOnly}
	ses.IdleExpiresAt = minTime(now.Add(idle), ses.ExpiresAt)
	return Opened{Session: ses, Secret: secret}, c.Sessions.InsertSession(ctx, tx, ses)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// revokeSessions ends sessions of the technician in tx (ids nil: all but
// except) and emits SessionsRevoked when any ended.
func (c *Credentials) revokeSessions(ctx context.Context, tx *sql.Tx, accountID, technicianID string, ids []string, except string, now time.Time, reason string) error {
	ended, err := c.Sessions.RevokeSessions(ctx, tx, technicianID, ids, except, now, reason)
	if err != nil || len(ended) == 0 {
		return err
	}
	return c.Bus.Emit(ctx, tx, accountID, &identityv1.SessionsRevoked{
		Meta:         &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
		TechnicianId: technicianID, SessionIds: ended, Reason: reason,
	})
}

// AuthenticateSession resolves a session token's SHA-256 (App's hook for
// rpc.Authenticate): live while neither expired (absolute or idle),
// revoked nor its technician disabled (I-7, L-4). A use moves the idle
// expiry on. The session of an active technician holding the built-in
// Admin role carries every account scope, looked up at each request so a
// demoted or disabled admin loses them at once (least privilege); every
// other session carries none yet (docs/api-notes.md, "Console").
func (c *Credentials) AuthenticateSession(ctx context.Context, hash []byte) (Principal, bool, error) {
	now := c.Now().UTC().Truncate(time.Microsecond)
	ses, err := c.Sessions.LiveSession(ctx, hex.EncodeToString(hash), now)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, err
	}
	p := Principal{AccountID: ses.AccountID, TokenID: ses.ID, TechnicianID: ses.TechnicianID, EnrollmentOnly: ses.EnrollmentOnly,
		CacheUntil: earliest(ses.ExpiresAt, ses.IdleExpiresAt)}
	if ses.Idle > 0 {
		if now.Sub(ses.LastUsedAt) >= sessionTouchEvery {
			idleUntil := minTime(now.Add(ses.Idle), ses.ExpiresAt)
			if err := c.Sessions.TouchSession(ctx, ses.ID, now, now.Add(-sessionTouchEvery), idleUntil); err != nil {
				return Principal{}, false, err
			}
			ses.LastUsedAt = now
			p.CacheUntil = idleUntil
		}
		// The next use to record (and move the idle expiry on) is a minute
		// after the last recorded one.
		p.CacheUntil = earliest(p.CacheUntil, ses.LastUsedAt.Add(sessionTouchEvery))
	}
	if !ses.EnrollmentOnly {
		t, err := c.Technicians.Technician(ctx, c.DB, ses.AccountID, ses.TechnicianID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Principal{}, false, err
		}
		if err == nil && t.IsAdmin && t.Status == domain.StatusActive {
			p.Scopes = domain.AccountScopes
		}
	}
	return p, true, nil
}

// RevokeAccess ends, in the disabling transaction, every session of the
// technician, every link mailed to them and every API token acting for
// them (I-7; App's OnTechnicianDisabled hook). The password stays, for
// re-enabling.
func (c *Credentials) RevokeAccess(ctx context.Context, tx *sql.Tx, t domain.Technician) error {
	now := c.Now().UTC().Truncate(time.Microsecond)
	if err := c.revokeSessions(ctx, tx, t.AccountID, t.ID, nil, "", now, "disabled"); err != nil {
		return err
	}
	if err := c.Creds.RevokeInvitations(ctx, tx, t.ID, now); err != nil {
		return err
	}
	ids, err := c.Creds.RevokeOwnedTokens(ctx, tx, t.ID, now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := c.Bus.Emit(ctx, tx, t.AccountID, &identityv1.ApiTokenRevoked{
			Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}, TokenId: id}); err != nil {
			return err
		}
	}
	return nil
}

// Sessions lists the technician's live sessions (L-4), newest first; the
// caller's own is marked current.
func (c *Credentials) ListSessions(ctx context.Context, accountID, technicianID, currentID string) ([]Session, error) {
	if _, err := c.Technicians.Technician(ctx, c.DB, accountID, technicianID); errors.Is(err, ErrNotFound) {
		return nil, problem.NotFound("technician " + technicianID)
	} else if err != nil {
		return nil, err
	}
	live, err := c.Sessions.LiveSessions(ctx, c.DB, technicianID, c.Now().UTC())
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(live))
	for i := len(live) - 1; i >= 0; i-- {
		s := live[i]
		s.Current = s.ID == currentID
		out = append(out, s)
	}
	return out, nil
}

// RevokeSession ends one live session of the technician (L-4: by the
// technician or an admin), or all of them when sessionID is "" (an admin);
// 404 for a session that is not the technician's or not live.
func (c *Credentials) RevokeSession(ctx context.Context, accountID, technicianID, sessionID, reason string) error {
	if _, err := c.Technicians.Technician(ctx, c.DB, accountID, technicianID); errors.Is(err, ErrNotFound) {
		return problem.NotFound("technician " + technicianID)
	} else if err != nil {
		return err
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	return c.DB.InTx(ctx, func(tx *sql.Tx) error {
		var ids []string
		if sessionID != "" {
			ids = []string{sessionID}
		}
		ended, err := c.Sessions.RevokeSessions(ctx, tx, technicianID, ids, "", now, reason)
		if err != nil {
			return err
		}
		if sessionID != "" && len(ended) == 0 {
			return problem.NotFound("session " + sessionID)
		}
		if len(ended) == 0 {
			return nil
		}
		return c.Bus.Emit(ctx, tx, accountID, &identityv1.SessionsRevoked{
			Meta:         &commonv1.EventMeta{OccurredAt: timestamppb.New(now)},
			TechnicianId: technicianID, SessionIds: ended, Reason: reason,
		})
	})
}
