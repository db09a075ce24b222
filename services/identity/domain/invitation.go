package domain

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
)

// Invitation is a single-use set-password link (I-4): only the SHA-256 of
// its token is stored; the token itself exists in the mail alone.
type Invitation struct {
	ID           string
	AccountID    string
	TechnicianID string
	TokenHash    string
	ExpiresAt    time.Time
	UsedAt       *time.Time
	// RevokedAt: replaced by a newer invitation, or the technician was
	// disabled (I-7).
	RevokedAt *time.Time
	CreatedAt time.Time
}

// DefaultInvitationTTLDays applies when a profile does not say (I-4: links
// expire, default 7 days).
const DefaultInvitationTTLDays = 7

// InvitationExpiry is when an invitation issued at now expires under the
// profile (I-4).
func InvitationExpiry(p profile.Identity, now time.Time) time.Time {
	days := p.InvitationTTLDays
	if days <= 0 {
		days = DefaultInvitationTTLDays
	}
	return now.AddDate(0, 0, days)
}

// SessionTTL is how long a login session lasts.
const SessionTTL = 12 * time.Hour

// Problems of a set-password link. The detail says which, and nothing about
// the account or the technician the link was for.
var (
	ErrInvitationInvalid = func() *problem.Problem {
		return problem.New(http.StatusBadRequest, "invitation-invalid", "Invalid link",
			"this set-password link is not valid; check that it was copied whole, or ask an admin to send a new one")
	}
	ErrInvitationUsed = func() *problem.Problem {
		return problem.New(http.StatusGone, "invitation-used", "Link already used",
			"this set-password link was already used; log in with the password set then, or ask an admin to send a new link")
	}
	ErrInvitationExpired = func(at time.Time) *problem.Problem {
		return problem.New(http.StatusGone, "invitation-expired", "Link expired",
			"this set-password link expired on "+at.UTC().Format(time.RFC3339)+"; ask an admin to send a new one")
	}
	ErrInvitationRevoked = func() *problem.Problem {
		return problem.New(http.StatusGone, "invitation-revoked", "Link withdrawn",
			"this set-password link was replaced by a newer one or withdrawn; use the latest mail, or ask an admin")
	}
	// I-4: only an invited technician (who has not logged in yet) is sent
	// an invitation.
	ErrNotInvited = func(status string) *problem.Problem {
		return problem.New(http.StatusConflict, "not-invited", "Technician not invited",
			"only an invited technician, who has not logged in yet, can be sent an invitation; this one is "+status)
	}
	ErrTechnicianDisabled = func() *problem.Problem {
		return problem.New(http.StatusConflict, "technician-disabled", "Technician disabled",
			"a disabled technician cannot be given a password; enable the technician first")
	}
)

// Check says whether the link can be used at now (I-4: single use, expires).
func (i Invitation) Check(now time.Time) *problem.Problem {
	switch {
	case i.UsedAt != nil:
		return ErrInvitationUsed()
	case i.RevokedAt != nil:
		return ErrInvitationRevoked()
	case !now.Before(i.ExpiresAt):
		return ErrInvitationExpired(i.ExpiresAt)
	}
	return nil
}

// SetPasswordLink is the link of an invitation mail (api.md, "Mail": every
// link carries its token as token=).
func SetPasswordLink(publicURL, token string) string {
	return publicURL + "/set-password?" + url.Values{"token": {token}}.Encode()
}

// InvitationMail is the set-password mail of I-4: the link, never a
// password (L-1).
func InvitationMail(acc Account, t Technician, link string, expires time.Time) (subject, text string) {
	subject = "Set your password for " + acc.Name + " on Roster"
	text = fmt.Sprintf(`Hello %s,

You have been invited to %s on Roster as %s.
Set your password to accept the invitation:

%s

The link works once and expires on %s.
If you did not expect this mail, ignore it: nothing happens until the link is used.
`, t.FirstName, acc.Name, t.Email, link, expires.UTC().Format("2 January 2006 at 15:04 UTC"))
	return subject, text
}
