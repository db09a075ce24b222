package domain

import (
	"net/http"
	"slices"
	"strings"

	"roster.dev/pkg/problem"
)

// MaxInviteEmails bounds one invitation request (I-5: several emails at once
// is one request).
const MaxInviteEmails = 100

// Invite is one invitation request (I-1 atlan: email and base role
// required, personas optional; I-5).
type Invite struct {
	Emails   []string `json:"emails"`
	BaseRole string   `json:"base_role"`
	Personas []string `json:"personas"`
}

// Validate trims and checks the request; roles are the base roles the
// profile offers (compared case-insensitively, answered in their spelling).
// Every bad field is named at once; the same email twice is one invitation.
func (in *Invite) Validate(roles []string) *problem.Problem {
	var errs []problem.FieldError
	switch {
	case len(in.Emails) == 0:
		errs = append(errs, problem.FieldError{Field: "emails", Detail: "is required: one or more email addresses"})
	case len(in.Emails) > MaxInviteEmails:
		errs = append(errs, problem.FieldError{Field: "emails", Detail: "holds more than 100 addresses; split the request"})
	}
	seen := map[string]bool{}
	emails := make([]string, 0, len(in.Emails))
	for _, e := range in.Emails {
		e = strings.TrimSpace(e)
		if !ValidEmail(e) {
			errs = append(errs, problem.FieldError{Field: "emails", Detail: "\"" + e + "\" is not an email address"})
			continue
		}
		if k := strings.ToLower(e); !seen[k] {
			seen[k] = true
			emails = append(emails, e)
		}
	}
	in.Emails = emails
	in.BaseRole = strings.TrimSpace(in.BaseRole)
	if i := slices.IndexFunc(roles, func(r string) bool { return strings.EqualFold(r, in.BaseRole) }); i >= 0 {
		in.BaseRole = roles[i]
	} else {
		errs = append(errs, problem.FieldError{Field: "base_role", Detail: "must be one of " + strings.Join(roles, ", ")})
	}
	slices.Sort(in.Personas)
	in.Personas = slices.Compact(in.Personas)
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// SeatAwaitsAcceptance is the seat reservation recorded for an invitee who
// takes their seat on acceptance (S-2): none yet.
const SeatAwaitsAcceptance = "on_acceptance"

// Problems of the invitation flow (I-5, S-2).
var (
	ErrInvitationsUnavailable = func() *problem.Problem {
		return problem.New(http.StatusConflict, "invitations-unavailable", "Invitations unavailable",
			"this account's profile adds technicians with POST /technicians, not with invitations")
	}
	// ErrAcceptanceHeld: no seat is free; the invitation stays valid and
	// the admins are told (S-2: never over-allocated).
	ErrAcceptanceHeld = func() *problem.Problem {
		return problem.New(http.StatusConflict, "acceptance-held", "Acceptance held: no free seat",
			"every seat of the account is taken; your administrators have been told, and this link keeps working once a seat is free")
	}
)
