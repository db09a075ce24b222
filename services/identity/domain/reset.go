package domain

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"roster.dev/pkg/problem"
)

// ResetTTL is how long a password-reset link works (L-5): short, as it
// replaces a password.
const ResetTTL = time.Hour

// PasswordReset is a single-use reset link (L-5); only the SHA-256 of its
// token is stored.
type PasswordReset struct {
	ID           string
	AccountID    string
	TechnicianID string
	TokenHash    string
	ExpiresAt    time.Time
	UsedAt       *time.Time
	CreatedAt    time.Time
}

// Check says whether the link can be used at now.
func (r PasswordReset) Check(now time.Time) *problem.Problem {
	switch {
	case r.UsedAt != nil:
		return problem.New(http.StatusGone, "reset-used", "Link already used",
			"this password-reset link was already used or replaced by a newer one; ask for a new one")
	case !now.Before(r.ExpiresAt):
		return problem.New(http.StatusGone, "reset-expired", "Link expired",
			"this password-reset link expired on "+r.ExpiresAt.UTC().Format(time.RFC3339)+"; ask for a new one")
	}
	return nil
}

// ErrResetInvalid is an unknown reset token.
func ErrResetInvalid() *problem.Problem {
	return problem.New(http.StatusBadRequest, "reset-invalid", "Invalid link",
		"this password-reset link is not valid; check that it was copied whole, or ask for a new one")
}

// ResetLink is the link of a reset mail (api.md "Mail": token=).
func ResetLink(publicURL, token string) string {
	return publicURL + "/reset-password?" + url.Values{"token": {token}}.Encode()
}

// ResetMail is the password-reset mail (L-5): the link, never a password.
func ResetMail(acc Account, t Technician, link string, expires time.Time) (subject, text string) {
	subject = "Reset your password for " + acc.Name + " on Roster"
	text = fmt.Sprintf(`Hello %s,

Someone asked to reset the password of %s on %s.
Choose a new password here:

%s

The link works once and expires on %s. Using it logs you out everywhere.
If you did not ask for this, ignore this mail: your password stays as it is.
`, t.FirstName, t.Email, acc.Name, link, expires.UTC().Format("2 January 2006 at 15:04 UTC"))
	return subject, text
}
