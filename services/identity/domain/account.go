// Package domain holds the identity service's rules: pure Go, no I/O.
package domain

import (
	"net/mail"
	"strings"
	"time"

	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
)

// Account is one tenant.
type Account struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Profile       string    `json:"profile"`
	Plan          string    `json:"plan"`
	BillingPeriod string    `json:"billing_period"`
	Seats         int       `json:"seats"`
	PricePerSeat  *Money    `json:"price_per_seat,omitempty"`
	BillingAnchor string    `json:"billing_anchor"`
	CreatedAt     time.Time `json:"created_at"`
}

// Money is minor units with a currency (api.md).
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Technician is a seat-holding console user.
type Technician struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Phone     string `json:"phone"`
	Status    string `json:"status"`
	// Role and RoleID come from rolepolicy's RoleAssigned events; null until
	// the first one arrives (milliseconds after creation).
	Role          *string    `json:"role"`
	RoleID        *string    `json:"role_id"`
	RequestedRole *string    `json:"requested_role"`
	SiteIDs       []string   `json:"site_ids"`
	LastLoginAt   *time.Time `json:"last_login_at"`
	// LastActiveAt is the latest login or session use (a session's use is
	// noted at most once a minute); null while never active.
	LastActiveAt *time.Time `json:"last_active_at"`
	DisabledAt   *time.Time `json:"disabled_at,omitempty"`
	// LicenceRemovalDate is the last day (YYYY-MM-DD) of the cycle at whose
	// end the technician's seat is removed and they are disabled (S-5);
	// null when no removal is pending.
	LicenceRemovalDate *string `json:"licence_removal_date"`
	// IsAdmin: holds the built-in Admin role (I-9); internal.
	IsAdmin bool `json:"-"`
	// Erased: personal data removed under a pseudonym (I-3, roster).
	Erased    bool      `json:"erased,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Person names the first admin of a new account.
type Person struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// NewAccount is the operator's request (api.md, POST /v1/accounts).
type NewAccount struct {
	Name          string `json:"name"`
	Profile       string `json:"profile"`
	Plan          string `json:"plan"`
	BillingPeriod string `json:"billing_period"`
	Seats         int    `json:"seats"`
	PricePerSeat  *int64 `json:"price_per_seat"`
	BillingAnchor string `json:"billing_anchor"`
	Admin         Person `json:"admin"`
}

// EmailKey is how emails are compared (I-2): trimmed, case-insensitive.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ValidEmail reports a plain address (no display name).
func ValidEmail(email string) bool {
	a, err := mail.ParseAddress(email)
	return err == nil && a.Address == email && strings.Contains(email, "@")
}

// Validate checks a new account against the profile data and returns every
// bad field at once; today fills in the default anchor.
func (n *NewAccount) Validate(today time.Time) *problem.Problem {
	var errs []problem.FieldError
	bad := func(field, detail string) { errs = append(errs, problem.FieldError{Field: field, Detail: detail}) }
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" {
		bad("name", "is required")
	}
	if n.Profile == "" {
		n.Profile = "roster" // the default profile (rules.md)
	}
	prof, err := profile.Get(n.Profile)
	if err != nil {
		bad("profile", err.Error())
	} else {
		plan, ok := prof.SeatBilling.Plans[n.Plan]
		switch {
		case n.Plan == "":
			bad("plan", "is required; one of "+strings.Join(prof.PlanIDs(), ", "))
		case !ok:
			bad("plan", "profile "+n.Profile+" has no plan "+n.Plan+"; one of "+strings.Join(prof.PlanIDs(), ", "))
		case plan.Custom && (n.PricePerSeat == nil || *n.PricePerSeat <= 0):
			bad("price_per_seat", "is required for the custom plan "+n.Plan+" (minor units per seat per month)")
		case !plan.Custom && n.PricePerSeat != nil:
			bad("price_per_seat", "is only set for custom plans; "+n.Plan+" has a list price")
		}
	}
	if n.BillingPeriod != "monthly" && n.BillingPeriod != "annual" {
		bad("billing_period", "must be monthly or annual")
	}
	if n.Seats < 1 || n.Seats > 100000 {
		bad("seats", "must be between 1 and 100000")
	}
	if n.BillingAnchor == "" {
		n.BillingAnchor = today.UTC().Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, n.BillingAnchor); err != nil {
		bad("billing_anchor", "must be a date YYYY-MM-DD")
	}
	n.Admin.Email = strings.TrimSpace(n.Admin.Email)
	if !ValidEmail(n.Admin.Email) {
		bad("admin.email", "must be an email address")
	}
	if strings.TrimSpace(n.Admin.FirstName) == "" {
		bad("admin.first_name", "is required")
	}
	if strings.TrimSpace(n.Admin.LastName) == "" {
		bad("admin.last_name", "is required")
	}
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// AccountScopes are every account scope (api.md); the token minted with a
// new account holds them all.
var AccountScopes = []string{
	"technicians:read", "technicians:write", "roles:read", "roles:write",
	"billing:read", "billing:write", "audit:read", "scim", "hris:admin",
	"ownership:write", // O-4: systems that own work register it and acknowledge instructions
}
