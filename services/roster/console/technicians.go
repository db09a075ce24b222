package console

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

func (c *Console) technicianRoutes(r chi.Router) {
	r.Get("/technicians", c.technicians)
	r.Post("/technicians", c.addTechnician)
	r.Get("/technicians/{id}", c.technician)
	r.Get("/technicians/{id}/disable", c.disablePreview)
	r.Post("/technicians/{id}/disable", c.techAction("disable", "Technician disabled"))
	r.Post("/technicians/{id}/enable", c.techAction("enable", "Technician enabled"))
	r.Post("/technicians/{id}/invitation", c.techAction("invitation", "Invitation sent again"))
	r.Post("/technicians/{id}/licence-removal", c.techAction("licence-removal", "The licence will be removed at the end of the cycle"))
	r.Post("/technicians/{id}/role", c.changeRole)
	r.Post("/technicians/{id}/password-reset", c.sendReset)
	r.Post("/technicians/{id}/personas", c.assignPersonas)
}

// Technician is the API's technician (api.md, "Shapes").
type Technician struct {
	ID                 string     `json:"id"`
	Email              string     `json:"email"`
	FirstName          string     `json:"first_name"`
	LastName           string     `json:"last_name"`
	Phone              string     `json:"phone"`
	Status             string     `json:"status"`
	Role               *string    `json:"role"`
	RequestedRole      *string    `json:"requested_role"`
	SiteIDs            []string   `json:"site_ids"`
	LastLoginAt        *time.Time `json:"last_login_at"`
	LastActiveAt       *time.Time `json:"last_active_at"`
	LicenceRemovalDate *string    `json:"licence_removal_date"`
	CreatedAt          time.Time  `json:"created_at"`
}

// Name is the technician's full name.
func (t Technician) Name() string { return strings.TrimSpace(t.FirstName + " " + t.LastName) }

type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

type techForm struct {
	Email, FirstName, LastName, Phone, Role string
	SiteIDs                                 []string
}

type techniciansView struct {
	Q, Sort, Dir string
	Hide         bool
	Items        []Technician
	Next, Cursor string
	Roles        []Role
	Sites        []Site
	Form         techForm
	// FormProblem is the add form's refusal (field errors, 409).
	FormProblem *Problem
	// Quote: no seat was free; the add waits for the purchase confirmation.
	Quote *Quote
}

// Site is the API's site.
type Site struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// technicians: the list, searchable (q), with "Hide disabled technicians",
// sorted by a column of the page (the API pages by id; sorting is the
// page's), a page at a time.
func (c *Console) technicians(w http.ResponseWriter, r *http.Request) {
	v, a := c.technicianList(r)
	if !a.OK() {
		c.Render(w, r, status(a), "technicians", View{Title: "Technicians", Active: "/technicians", Problem: a.Problem, Data: v})
		return
	}
	c.Render(w, r, http.StatusOK, "technicians", View{Title: "Technicians", Active: "/technicians", Data: v})
}

func (c *Console) technicianList(r *http.Request) (techniciansView, Answer) {
	s := SessionFrom(r)
	q := r.URL.Query()
	v := techniciansView{Q: q.Get("q"), Sort: q.Get("sort"), Dir: q.Get("dir"), Hide: q.Get("hide_disabled") != "", Cursor: q.Get("cursor")}
	p := url.Values{"limit": {"50"}}
	if v.Q != "" {
		p.Set("q", v.Q)
	}
	if v.Hide {
		p.Set("hide_disabled", "true")
	}
	if v.Cursor != "" {
		p.Set("cursor", v.Cursor)
	}
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians?"+p.Encode(), nil)
	if !a.OK() {
		return v, a
	}
	var l list[Technician]
	if err := a.Decode(&l); err != nil {
		return v, failed(err)
	}
	v.Items = l.Data
	if l.NextCursor != nil {
		v.Next = *l.NextCursor
	}
	sortTechnicians(v.Items, v.Sort, v.Dir == "desc")
	v.Roles, _ = c.roles(r)
	v.Sites = c.sites(r)
	return v, a
}

func sortTechnicians(ts []Technician, by string, desc bool) {
	key := func(t Technician) string {
		switch by {
		case "email":
			return strings.ToLower(t.Email)
		case "status":
			return t.Status
		case "role":
			if t.Role != nil {
				return strings.ToLower(*t.Role)
			}
			return ""
		case "last_login":
			if t.LastLoginAt != nil {
				return t.LastLoginAt.UTC().Format(time.RFC3339Nano)
			}
			return ""
		}
		return strings.ToLower(t.Name())
	}
	slices.SortStableFunc(ts, func(a, b Technician) int {
		if desc {
			return cmp.Compare(key(b), key(a))
		}
		return cmp.Compare(key(a), key(b))
	})
}

func (c *Console) sites(r *http.Request) []Site {
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/sites", nil)
	var l list[Site]
	if a.OK() {
		_ = a.Decode(&l)
	}
	return l.Data
}

// addTechnician: POST …/technicians. A 402 seat-purchase-required shows
// the "Add seat to subscription" confirmation with the prorated quote; the
// confirmation posts the same form again with confirm_seat_purchase (S-2).
func (c *Console) addTechnician(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	s := SessionFrom(r)
	f := techForm{Email: r.PostFormValue("email"), FirstName: r.PostFormValue("first_name"), LastName: r.PostFormValue("last_name"),
		Phone: r.PostFormValue("phone"), Role: r.PostFormValue("role"), SiteIDs: r.PostForm["site_ids"]}
	body := map[string]any{"email": f.Email, "first_name": f.FirstName, "last_name": f.LastName, "phone": f.Phone,
		"role": f.Role, "site_ids": f.SiteIDs, "confirm_seat_purchase": r.PostFormValue("confirm_seat_purchase") == "true"}
	a := c.API(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians", body,
		"Idempotency-Key", r.PostFormValue("idempotency_key"))
	if a.OK() {
		flash := "Technician " + f.Email + " added; the set-password link is on its way"
		if body["confirm_seat_purchase"] == true {
			flash = "Seat purchased and technician " + f.Email + " added; the set-password link is on its way"
		}
		redirect(w, r, "/technicians", flash)
		return
	}
	v, _ := c.technicianList(r)
	v.Form, v.FormProblem = f, a.Problem
	if a.Problem.Is("seat-purchase-required") && a.Problem.Quote != nil {
		v.Quote, v.FormProblem = a.Problem.Quote, nil
		c.Render(w, r, http.StatusPaymentRequired, "seat-confirm", View{Title: "Add seat to subscription", Active: "/technicians", Data: v})
		return
	}
	c.Render(w, r, status(a), "technicians", View{Title: "Technicians", Active: "/technicians", Data: v})
}

type technicianView struct {
	T     Technician
	Roles []Role
	// Preview is the disable dry run's answer (O-3), or its problem.
	Preview        *DisablePreview
	PreviewProblem *Problem
	Subscription   *Subscription
	// Successors are the technicians who may take over what this one
	// owns; Successor is the one chosen for the preview ("" for the
	// account's rules).
	Successors []Technician
	Successor  string
	// SuccessorNames shows technicians by name in the preview.
	SuccessorNames map[string]string
	// Layered accounts: the three layers of the technician's access,
	// and the account's personas to assign (atlan.go).
	Layered  bool
	Access   *EffectiveAccess
	Personas []Persona
}

// DisablePreview is the disable's dry run (O-3, api.md "Offboarding"):
// what happens to what the technician owns, and the seat's cost effect.
type DisablePreview struct {
	AlreadyDisabled bool `json:"already_disabled"`
	SessionsRevoked int  `json:"sessions_revoked"`
	TokensRevoked   int  `json:"tokens_revoked"`
	Cost            *struct {
		SeatFreed       bool   `json:"seat_freed"`
		ChargeNow       int64  `json:"charge_now"`
		Refund          int64  `json:"refund"`
		Currency        string `json:"currency"`
		AvailableBefore int    `json:"seats_available_before"`
		AvailableAfter  int    `json:"seats_available_after"`
		NextRenewal     int64  `json:"next_renewal_amount"`
		NextRenewalDate string `json:"next_renewal_date"`
		Note            string `json:"note"`
	} `json:"cost"`
	Offboarding *struct {
		Policy          string `json:"policy"`
		SuccessorID     string `json:"successor_id"`
		SuccessorSource string `json:"successor_source"`
		Total           int    `json:"actions_total"`
		Unassigned      int    `json:"unassigned"`
		Actions         []struct {
			Kind   string `json:"kind"`
			ID     string `json:"id"`
			Action string `json:"action"`
			To     string `json:"to"`
		} `json:"actions"`
	} `json:"offboarding"`
}

func (c *Console) loadTechnician(r *http.Request) (technicianView, Answer) {
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians/"+url.PathEscape(chi.URLParam(r, "id")), nil)
	var v technicianView
	if !a.OK() {
		return v, a
	}
	if err := a.Decode(&v.T); err != nil {
		return v, failed(err)
	}
	v.Roles, _ = c.roles(r)
	if SessionFrom(r).Layered {
		c.loadAccess(r, &v)
	}
	return v, a
}

// technician: one technician with its actions: disable (through the
// preview), enable, resend invitation, licence removal, change role.
func (c *Console) technician(w http.ResponseWriter, r *http.Request) {
	v, a := c.loadTechnician(r)
	c.Render(w, r, status(a), "technician", View{Title: "Technician", Active: "/technicians", Problem: a.Problem, Data: v})
}

// disablePreview asks the API for the dry run of the disable (O-3: what
// happens to what the technician owns, and the seat's cost effect) before
// the admin confirms; a successor chosen on the page previews the
// hand-over to them. When the API cannot preview (an older server: 501),
// the page says so and still offers the disable, with the subscription's
// seat figures.
func (c *Console) disablePreview(w http.ResponseWriter, r *http.Request) {
	v, a := c.loadTechnician(r)
	if !a.OK() {
		c.Render(w, r, status(a), "technician", View{Title: "Technician", Active: "/technicians", Problem: a.Problem, Data: v})
		return
	}
	s := SessionFrom(r)
	v.Successor = r.URL.Query().Get("successor_id")
	body := map[string]any{}
	if v.Successor != "" {
		body["successor_id"] = v.Successor
	}
	p := c.API(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians/"+url.PathEscape(v.T.ID)+"/disable?dry_run=true", body)
	if p.OK() {
		v.Preview = &DisablePreview{}
		if err := p.Decode(v.Preview); err != nil {
			v.Preview, v.PreviewProblem = nil, failed(err).Problem
		}
	} else {
		v.PreviewProblem = p.Problem
	}
	v.SuccessorNames = map[string]string{}
	if ts, _, a := getList[Technician](c, r, "/technicians?status=active", ""); a.OK() {
		for _, t := range ts {
			v.SuccessorNames[t.ID] = cmp.Or(t.Name(), t.Email)
			if t.ID != v.T.ID {
				v.Successors = append(v.Successors, t)
			}
		}
	}
	if sub, a := c.subscription(r); a.OK() {
		v.Subscription = &sub
	}
	c.Render(w, r, http.StatusOK, "disable", View{Title: "Disable technician", Active: "/technicians", Data: v})
}

// techAction posts one of the technician's actions; a refusal (409
// last-admin, 402 no seat to re-enable, …) shows the technician page with
// the API's problem.
func (c *Console) techAction(action, done string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
		s := SessionFrom(r)
		id := chi.URLParam(r, "id")
		body := map[string]any{}
		if action == "enable" && r.PostFormValue("confirm_seat_purchase") == "true" {
			body["confirm_seat_purchase"] = true
		}
		if succ := r.PostFormValue("successor_id"); action == "disable" && succ != "" {
			body["successor_id"] = succ
		}
		a := c.API(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians/"+url.PathEscape(id)+"/"+action, body,
			"Idempotency-Key", r.PostFormValue("idempotency_key"))
		if a.OK() {
			redirect(w, r, "/technicians/"+url.PathEscape(id), done)
			return
		}
		v, _ := c.loadTechnician(r)
		c.Render(w, r, status(a), "technician", View{Title: "Technician", Active: "/technicians", Problem: a.Problem, Data: v})
	}
}

// changeRole: PUT …/technicians/{id}/role. Before the first login the
// answer may be 409 first-login-required (atera, R-6); the page explains.
func (c *Console) changeRole(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	s := SessionFrom(r)
	id := chi.URLParam(r, "id")
	a := c.API(r.Context(), s, "PUT", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians/"+url.PathEscape(id)+"/role",
		map[string]any{"role": r.PostFormValue("role")}, "Idempotency-Key", r.PostFormValue("idempotency_key"))
	if a.OK() {
		redirect(w, r, "/technicians/"+url.PathEscape(id), "Role changed to "+r.PostFormValue("role"))
		return
	}
	v, _ := c.loadTechnician(r)
	c.Render(w, r, status(a), "technician", View{Title: "Technician", Active: "/technicians", Problem: a.Problem, Data: v})
}

// technicianNames maps the account's technicians' ids to "Name <email>",
// for pages that show ids (charges, unused seats, audit actors); an id not
// in the first 500 stays an id.
func (c *Console) technicianNames(r *http.Request) map[string]string {
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/technicians?limit=500", nil)
	names := map[string]string{}
	var l list[Technician]
	if a.OK() && a.Decode(&l) == nil {
		for _, t := range l.Data {
			names[t.ID] = t.Name() + " <" + t.Email + ">"
		}
	}
	return names
}

// sendReset mails the technician a password-reset link (L-5) through the
// public reset route, as the technician would ask for it themselves.
func (c *Console) sendReset(w http.ResponseWriter, r *http.Request) {
	v, a := c.loadTechnician(r)
	if a.OK() {
		a = c.API(r.Context(), Session{}, "POST", "/v1/auth/password-reset", map[string]any{"account_id": SessionFrom(r).AccountID, "email": v.T.Email})
	}
	if a.OK() {
		redirect(w, r, "/technicians/"+url.PathEscape(chi.URLParam(r, "id")), "A password reset link is on its way to "+v.T.Email)
		return
	}
	c.Render(w, r, status(a), "technician", View{Title: "Technician", Active: "/technicians", Problem: a.Problem, Data: v})
}
