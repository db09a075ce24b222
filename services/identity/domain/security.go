package domain

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"roster.dev/pkg/problem"
)

// SecurityPolicy is an account's login policy (api.md
// /security-policy; L-2, L-3, L-4). An account without a stored policy
// has DefaultSecurityPolicy.
type SecurityPolicy struct {
	// L-2: consecutive failures that lock a technician.
	LockoutThreshold int `json:"lockout_threshold"`
	// L-2: the first lock lasts LockoutBaseSeconds, each following one
	// twice the previous, capped at LockoutMaxSeconds.
	LockoutBaseSeconds int `json:"lockout_base_seconds"`
	LockoutMaxSeconds  int `json:"lockout_max_seconds"`
	// L-2: after this many temporary locks in a row (no successful login
	// between them), the next lock lasts until an admin unlocks (or a
	// password reset completes).
	LockoutAdminAfter int `json:"lockout_admin_after"`
	// L-3: none, admins or all.
	RequireSecondFactor string `json:"require_second_factor"`
	// L-4: live sessions per technician; 0 is no cap.
	MaxSessions int `json:"max_sessions"`
	// L-4: end_oldest or refuse, when a login would exceed MaxSessions.
	SessionOverflow string `json:"session_overflow"`
	// L-4: a session unused this long ends (idle expiry), and any session
	// ends this long after the login (absolute expiry).
	SessionIdleMinutes   int `json:"session_idle_minutes"`
	SessionAbsoluteHours int `json:"session_absolute_hours"`
	// Rate limits of the login, reset and token routes, per minute: per
	// source address within the account, and for the whole account.
	RatePerAddress int `json:"rate_limit_per_address"`
	RatePerAccount int `json:"rate_limit_per_account"`
}

// Second-factor requirements and session overflow modes.
const (
	SecondFactorNone   = "none"
	SecondFactorAdmins = "admins"
	SecondFactorAll    = "all"
	OverflowEndOldest  = "end_oldest"
	OverflowRefuse     = "refuse"
)

// DefaultSecurityPolicy is the policy of an account that never set one:
// 5 failures lock for 1 minute, doubling up to 15 minutes, and the 6th
// lock in a row waits for an admin; no second factor required; no session
// cap; sessions end after 1 hour unused or 12 hours after the login; 120
// login, reset and token requests a minute per address, 1200 per account.
func DefaultSecurityPolicy() SecurityPolicy {
	return SecurityPolicy{
		LockoutThreshold: 5, LockoutBaseSeconds: 60, LockoutMaxSeconds: 15 * 60, LockoutAdminAfter: 5,
		RequireSecondFactor: SecondFactorNone, MaxSessions: 0, SessionOverflow: OverflowEndOldest,
		SessionIdleMinutes: 60, SessionAbsoluteHours: int(SessionTTL / time.Hour),
		RatePerAddress: 120, RatePerAccount: 1200,
	}
}

// Validate names every field out of bounds (422).
func (p SecurityPolicy) Validate() *problem.Problem {
	var errs []problem.FieldError
	between := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, problem.FieldError{Field: field, Detail: fmt.Sprintf("must be between %d and %d", lo, hi)})
		}
	}
	between("lockout_threshold", p.LockoutThreshold, 1, 100)
	between("lockout_base_seconds", p.LockoutBaseSeconds, 1, 24*3600)
	between("lockout_max_seconds", p.LockoutMaxSeconds, p.LockoutBaseSeconds, 7*24*3600)
	between("lockout_admin_after", p.LockoutAdminAfter, 0, 100)
	between("max_sessions", p.MaxSessions, 0, 1000)
	between("session_idle_minutes", p.SessionIdleMinutes, 1, 30*24*60)
	between("session_absolute_hours", p.SessionAbsoluteHours, 1, 90*24)
	between("rate_limit_per_address", p.RatePerAddress, 1, 100000)
	between("rate_limit_per_account", p.RatePerAccount, 1, 1000000)
	switch p.RequireSecondFactor {
	case SecondFactorNone, SecondFactorAdmins, SecondFactorAll:
	default:
		errs = append(errs, problem.FieldError{Field: "require_second_factor", Detail: "must be none, admins or all"})
	}
	switch p.SessionOverflow {
	case OverflowEndOldest, OverflowRefuse:
	default:
		errs = append(errs, problem.FieldError{Field: "session_overflow", Detail: "must be end_oldest or refuse"})
	}
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// LockFor is how long the lock-th temporary lock in a row lasts (L-2):
// base, doubling, capped; ok is false when this lock waits for an admin
// instead (more than LockoutAdminAfter temporary locks in a row; 0 never
// does).
func (p SecurityPolicy) LockFor(lock int) (d time.Duration, ok bool) {
	if p.LockoutAdminAfter > 0 && lock > p.LockoutAdminAfter {
		return 0, false
	}
	d = time.Duration(p.LockoutBaseSeconds) * time.Second
	limit := time.Duration(p.LockoutMaxSeconds) * time.Second
	for i := 1; i < lock && d < limit; i++ {
		d *= 2
	}
	return min(d, limit), true
}

// SecondFactorRequired says whether the policy requires a second factor of
// a technician (L-3).
func (p SecurityPolicy) SecondFactorRequired(admin bool) bool {
	return p.RequireSecondFactor == SecondFactorAll || p.RequireSecondFactor == SecondFactorAdmins && admin
}

// Lockout factors: the password and the second factor are counted and
// locked separately (L-3).
const (
	FactorPassword = "password"
	FactorTOTP     = "totp"
)

// ErrLocked is the answer while a technician is locked out (api.md: 423
// account-locked with retry_after, whatever the password). retryAfter is
// zero when only an admin (or a password reset) unlocks.
func ErrLocked(retryAfter time.Duration) *problem.Problem {
	if retryAfter <= 0 {
		return problem.New(http.StatusLocked, "account-locked", "Account locked",
			"too many failed attempts: an admin must unlock this login, or reset the password by email").With("retry_after", nil)
	}
	secs := int((retryAfter + time.Second - 1) / time.Second)
	return problem.New(http.StatusLocked, "account-locked", "Account locked",
		"too many failed attempts: try again in "+strconv.Itoa(secs)+" seconds, or reset the password by email").
		With("retry_after", secs)
}
