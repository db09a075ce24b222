package domain

import (
	"net/http"
	"slices"
	"strings"

	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
)

// Technician statuses (rules.md, Concepts).
const (
	StatusInvited  = "invited"
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Problems of the technician lifecycle, with their stable types.
var (
	// I-3: an email once used in the account stays reserved.
	ErrEmailReserved = func(email string) *problem.Problem {
		return problem.New(http.StatusConflict, "email-reserved", "Email reserved",
			email+" belongs to a disabled technician of this account; change that technician's email to free it")
	}
	ErrEmailInUse = func(email string) *problem.Problem {
		return problem.New(http.StatusConflict, "email-in-use", "Email in use", email+" is already a technician of this account")
	}
	// I-9.
	ErrLastAdmin = func() *problem.Problem {
		return problem.New(http.StatusConflict, "last-admin", "Last admin",
			"this technician is the account's last active admin; make another technician Admin first")
	}
	// I-3: the email of an active or invited technician is its username.
	ErrEmailChangeNeedsDisabled = func() *problem.Problem {
		return problem.New(http.StatusConflict, "email-change-requires-disabled", "Email cannot change",
			"only a disabled technician's email can change (to free the old one); disable the technician first")
	}
	ErrNotDisabled = func() *problem.Problem {
		return problem.New(http.StatusConflict, "not-disabled", "Technician is not disabled", "only a disabled technician can be enabled")
	}
)

// NewTechnician is a request to add a technician (api.md).
type NewTechnician struct {
	Email               string   `json:"email"`
	FirstName           string   `json:"first_name"`
	LastName            string   `json:"last_name"`
	Phone               string   `json:"phone"`
	Role                string   `json:"role"`
	SiteIDs             []string `json:"site_ids"`
	ConfirmSeatPurchase bool     `json:"confirm_seat_purchase"`
	// BaseRole is role by the layered model's name (atlan, R-9); Personas
	// are persona ids, assigned by rolepolicy (PersonasRequested).
	BaseRole string   `json:"base_role"`
	Personas []string `json:"personas"`
}

// Validate applies I-1 (required fields per profile) and I-2 (email).
func (n *NewTechnician) Validate(p profile.Identity) *problem.Problem {
	n.Email = strings.TrimSpace(n.Email)
	n.FirstName = strings.TrimSpace(n.FirstName)
	n.LastName = strings.TrimSpace(n.LastName)
	n.Phone = strings.TrimSpace(n.Phone)
	n.Role = strings.TrimSpace(n.Role)
	var errs []problem.FieldError
	switch b := strings.TrimSpace(n.BaseRole); {
	case b == "":
	case n.Role == "":
		n.Role = b
	case !strings.EqualFold(b, n.Role):
		errs = append(errs, problem.FieldError{Field: "base_role", Detail: "differs from role: give one of them"})
	}
	n.BaseRole = ""
	slices.Sort(n.Personas)
	n.Personas = slices.Compact(n.Personas)
	values := map[string]string{"email": n.Email, "first_name": n.FirstName, "last_name": n.LastName, "role": n.Role}
	for _, f := range p.RequiredFields {
		if values[f] == "" {
			errs = append(errs, problem.FieldError{Field: f, Detail: "is required"})
		}
	}
	if n.Email != "" && !ValidEmail(n.Email) {
		errs = append(errs, problem.FieldError{Field: "email", Detail: "must be an email address"})
	}
	for _, f := range []struct{ name, v string }{{"first_name", n.FirstName}, {"last_name", n.LastName}, {"phone", n.Phone}, {"role", n.Role}} {
		if len(f.v) > 200 {
			errs = append(errs, problem.FieldError{Field: f.name, Detail: "is longer than 200 characters"})
		}
	}
	if n.SiteIDs == nil {
		n.SiteIDs = []string{}
	}
	slices.Sort(n.SiteIDs)
	n.SiteIDs = slices.Compact(n.SiteIDs)
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

// EmailConflict is the problem for adding email when holder already has it
// (I-3): a disabled holder keeps it reserved, an invited or active one uses it.
func EmailConflict(email, holderStatus string) *problem.Problem {
	if holderStatus == StatusDisabled {
		return ErrEmailReserved(email)
	}
	return ErrEmailInUse(email)
}

// Patch is a change of a technician's fields (PATCH, I-3).
type Patch struct {
	Email     *string `json:"email"`
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
	Phone     *string `json:"phone"`
}

// Change is one changed field, before and after.
type Change struct{ Field, Before, After string }

// Apply changes t and returns what changed; the email changes only while
// the technician is disabled (I-3).
func (p Patch) Apply(t *Technician) ([]Change, *problem.Problem) {
	var errs []problem.FieldError
	var changes []Change
	set := func(field string, v *string, dst *string, required bool) {
		if v == nil {
			return
		}
		nv := strings.TrimSpace(*v)
		switch {
		case required && nv == "":
			errs = append(errs, problem.FieldError{Field: field, Detail: "must not be empty"})
		case len(nv) > 200:
			errs = append(errs, problem.FieldError{Field: field, Detail: "is longer than 200 characters"})
		case nv != *dst:
			changes = append(changes, Change{field, *dst, nv})
			*dst = nv
		}
	}
	if p.Email != nil && EmailKey(*p.Email) != EmailKey(t.Email) {
		if t.Status != StatusDisabled {
			return nil, ErrEmailChangeNeedsDisabled()
		}
		if !ValidEmail(strings.TrimSpace(*p.Email)) {
			errs = append(errs, problem.FieldError{Field: "email", Detail: "must be an email address"})
		} else {
			set("email", p.Email, &t.Email, true)
		}
	}
	set("first_name", p.FirstName, &t.FirstName, true)
	set("last_name", p.LastName, &t.LastName, true)
	set("phone", p.Phone, &t.Phone, false)
	if len(errs) > 0 {
		return nil, problem.Invalid(errs...)
	}
	return changes, nil
}

// StatusAfterEnable is the status a re-enabled technician returns to: active
// when they had logged in before, else invited.
func StatusAfterEnable(t Technician) string {
	if t.LastLoginAt != nil {
		return StatusActive
	}
	return StatusInvited
}
