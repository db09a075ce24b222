package domain

import (
	"net/http"
	"strings"
	"time"

	"roster.dev/pkg/problem"
)

// End-user statuses (I-10).
const (
	EndUserActive      = "active"
	EndUserDeactivated = "deactivated"
)

// EndUser submits tickets; never a seat, never a role (I-10).
type EndUser struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	SiteID    string    `json:"site_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// NewEndUser is a request to create an end user.
type NewEndUser struct {
	Email  string `json:"email"`
	Name   string `json:"name"`
	SiteID string `json:"site_id"`
}

// Validate checks the fields of a new end user.
func (n *NewEndUser) Validate() *problem.Problem {
	n.Email, n.Name, n.SiteID = strings.TrimSpace(n.Email), strings.TrimSpace(n.Name), strings.TrimSpace(n.SiteID)
	var errs []problem.FieldError
	if !ValidEmail(n.Email) {
		errs = append(errs, problem.FieldError{Field: "email", Detail: "must be an email address"})
	}
	if n.Name == "" || len(n.Name) > 200 {
		errs = append(errs, problem.FieldError{Field: "name", Detail: "is required, at most 200 characters"})
	}
	if n.SiteID == "" {
		errs = append(errs, problem.FieldError{Field: "site_id", Detail: "is required: an end user belongs to a site"})
	}
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// ErrEndUserEmailInUse: end-user emails are unique per account.
func ErrEndUserEmailInUse(email string) *problem.Problem {
	return problem.New(http.StatusConflict, "email-in-use", "Email in use", email+" is already an end user of this account")
}

// CanSubmitTickets is I-10's rule: a deactivated end user cannot open new
// tickets; their existing tickets are not touched.
func (u EndUser) CanSubmitTickets() (bool, string) {
	if u.Status == EndUserDeactivated {
		return false, "the end user is deactivated"
	}
	return true, "the end user is active"
}
