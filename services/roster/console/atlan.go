package console

import (
	"cmp"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// The pages of accounts with the layered role model (R-9, issue 9's atlan
// profile): users with their base role and last activity, pending
// invitations (invite several emails at once, resend, revoke), and the
// persona and purpose editors. The console does not read profiles: it asks
// the API whether the account has personas (GET …/personas answers 409
// personas-unavailable when it has not) and remembers the answer in a
// cookie for the session (layered, below).

const cookieModel = "roster_model"

func (c *Console) atlanRoutes(r chi.Router) {
	r.Get("/users", c.usersPage)
	r.Post("/invitations", c.invite)
	r.Post("/invitations/{id}/resend", c.resendInvitation)
	r.Post("/invitations/{id}/revoke", c.revokeInvitation)
	r.Get("/personas", func(w http.ResponseWriter, r *http.Request) { c.personasPage(w, r, nil) })
	r.Post("/personas", c.savePersona)
	r.Get("/personas/{id}", c.personaEditor)
	r.Post("/personas/{id}", c.savePersona)
	r.Post("/personas/{id}/delete", c.deleteItem("personas", "Persona deleted", c.personasPage))
	r.Get("/purposes", func(w http.ResponseWriter, r *http.Request) { c.purposesPage(w, r, nil) })
	r.Post("/purposes", c.savePurpose)
	r.Get("/purposes/new", c.newPurpose)
	r.Get("/purposes/{id}", c.purposeEditor)
	r.Post("/purposes/{id}", c.savePurpose)
	r.Post("/purposes/{id}/delete", c.deleteItem("purposes", "Purpose deleted", c.purposesPage))
}

// layered reports (and remembers for the session) whether the signed-in
// account has the layered role model: base roles, personas, purposes.
func (c *Console) layered(w http.ResponseWriter, r *http.Request, s Session) bool {
	if m, err := r.Cookie(cookieModel); err == nil && m.Value != "" {
		return m.Value == "layers"
	}
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/personas", nil)
	switch {
	case a.OK():
		setCookie(w, r, cookieModel, "layers", 0)
		return true
	case a.Problem.Is("personas-unavailable"):
		setCookie(w, r, cookieModel, "permissions", 0)
	}
	return false
}

// Invitation is a live invitation of GET …/invitations.
type Invitation struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	Status       string    `json:"status"`
	TechnicianID string    `json:"technician_id"`
	BaseRole     string    `json:"base_role"`
	SentAt       time.Time `json:"sent_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Grant is a persona's grant on asset types of one connection.
type Grant struct {
	Connection string   `json:"connection"`
	AssetTypes []string `json:"asset_types"`
	Actions    []string `json:"actions"`
}

// Persona is the API's persona.
type Persona struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Grants  []Grant  `json:"grants"`
	UI      []string `json:"ui"`
	Version int64    `json:"version"`
}

// DataPolicy is a purpose's data policy.
type DataPolicy struct {
	Action    string   `json:"action"`
	Except    []string `json:"except"`
	RowFilter string   `json:"row_filter,omitempty"`
}

// Purpose is the API's purpose.
type Purpose struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Classifications []string    `json:"classifications"`
	Members         []string    `json:"members"`
	Actions         []string    `json:"actions"`
	DataPolicy      *DataPolicy `json:"data_policy"`
	Version         int64       `json:"version"`
}

type usersView struct {
	Users       []Technician
	Next        string
	Invitations []Invitation
	InvNext     string
	Roles       []Role
	Personas    []Persona
	// Form is the invite form as last submitted (kept on a refusal).
	Form struct {
		Emails, BaseRole string
		Personas         []string
	}
	FormProblem *Problem
}

func (c *Console) accountPath(r *http.Request, rest string) string {
	return "/v1/accounts/" + url.PathEscape(SessionFrom(r).AccountID) + rest
}

// getList reads one page of a list route into out; cursor is the page.
func getList[T any](c *Console, r *http.Request, path, cursor string) ([]T, string, Answer) {
	p := url.Values{"limit": {"50"}}
	if cursor != "" {
		p.Set("cursor", cursor)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	a := c.API(r.Context(), SessionFrom(r), "GET", c.accountPath(r, path)+sep+p.Encode(), nil)
	if !a.OK() {
		return nil, "", a
	}
	var l list[T]
	if err := a.Decode(&l); err != nil {
		return nil, "", failed(err)
	}
	next := ""
	if l.NextCursor != nil {
		next = *l.NextCursor
	}
	return l.Data, next, a
}

func (c *Console) loadUsers(r *http.Request) (usersView, Answer) {
	var v usersView
	q := r.URL.Query()
	users, next, a := getList[Technician](c, r, "/technicians", q.Get("cursor"))
	if !a.OK() {
		return v, a
	}
	v.Users, v.Next = users, next
	invs, invNext, ia := getList[Invitation](c, r, "/invitations", q.Get("inv_cursor"))
	if !ia.OK() {
		return v, ia
	}
	v.Invitations, v.InvNext = invs, invNext
	v.Roles, _ = c.roles(r)
	v.Personas, _, _ = getList[Persona](c, r, "/personas", "")
	v.Form.BaseRole = "Member"
	return v, a
}

// usersPage: the users with their base role, status and last activity;
// the pending invitations with resend and revoke; the invite form.
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request) {
	v, a := c.loadUsers(r)
	c.Render(w, r, status(a), "users", View{Title: "Users", Active: "/users", Problem: a.Problem, Data: v})
}

// splitList splits a form field on commas, spaces and new lines.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == ';' })
}

// invite: POST …/invitations with every email of the text area (I-5).
func (c *Console) invite(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	personas := r.PostForm["personas"]
	if personas == nil {
		personas = []string{}
	}
	emails := nonNil(splitList(r.PostFormValue("emails")))
	a := c.API(r.Context(), SessionFrom(r), "POST", c.accountPath(r, "/invitations"),
		map[string]any{"emails": emails, "base_role": r.PostFormValue("base_role"), "personas": personas},
		"Idempotency-Key", r.PostFormValue("idempotency_key"))
	if a.OK() {
		var out list[Invitation]
		_ = a.Decode(&out)
		redirect(w, r, "/users", strconv.Itoa(len(out.Data))+" invitation(s) sent")
		return
	}
	v, _ := c.loadUsers(r)
	v.Form.Emails, v.Form.BaseRole, v.Form.Personas = r.PostFormValue("emails"), r.PostFormValue("base_role"), personas
	v.FormProblem = a.Problem
	c.Render(w, r, status(a), "users", View{Title: "Users", Active: "/users", Problem: a.Problem, Data: v})
}

func (c *Console) resendInvitation(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	a := c.API(r.Context(), SessionFrom(r), "POST", c.accountPath(r, "/invitations/"+url.PathEscape(chi.URLParam(r, "id"))+"/resend"),
		map[string]any{}, "Idempotency-Key", r.PostFormValue("idempotency_key"))
	c.afterAction(w, r, a, "/users", "Invitation sent again; the old link no longer works")
}

func (c *Console) revokeInvitation(w http.ResponseWriter, r *http.Request) {
	a := c.API(r.Context(), SessionFrom(r), "DELETE", c.accountPath(r, "/invitations/"+url.PathEscape(chi.URLParam(r, "id"))), nil)
	c.afterAction(w, r, a, "/users", "Invitation revoked")
}

// afterAction redirects with flash on success, or shows the users page
// with the API's refusal.
func (c *Console) afterAction(w http.ResponseWriter, r *http.Request, a Answer, to, flash string) {
	if a.OK() {
		redirect(w, r, to, flash)
		return
	}
	v, _ := c.loadUsers(r)
	c.Render(w, r, status(a), "users", View{Title: "Users", Active: "/users", Problem: a.Problem, Data: v})
}

// catalog is the account's actions (the permission catalog of its
// profile).
func (c *Console) catalog(r *http.Request) []Permission {
	s := SessionFrom(r)
	var acc struct {
		Profile string `json:"profile"`
	}
	if aa := c.API(r.Context(), s, "GET", c.accountPath(r, ""), nil); aa.OK() {
		_ = aa.Decode(&acc)
	}
	path := "/v1/permissions"
	if acc.Profile != "" {
		path += "?profile=" + url.QueryEscape(acc.Profile)
	}
	var l list[Permission]
	if pa := c.API(r.Context(), s, "GET", path, nil); pa.OK() {
		_ = pa.Decode(&l)
	}
	return l.Data
}

type personaView struct {
	Personas []Persona
	Persona  Persona
	// Rows are the grant rows of the editor: the persona's, and one blank.
	Rows    []Grant
	Catalog []Permission
}

// personasPage lists the personas, with the form of a new one (a name:
// its editor opens next); refused is a refusal to show.
func (c *Console) personasPage(w http.ResponseWriter, r *http.Request, refused *Problem) {
	ps, _, a := getList[Persona](c, r, "/personas", "")
	code := status(a)
	if refused != nil {
		code = refused.Status
	}
	c.Render(w, r, code, "personas", View{Title: "Personas", Active: "/personas", Problem: cmp.Or(refused, a.Problem), Data: personaView{Personas: ps}})
}

func (c *Console) personaEditor(w http.ResponseWriter, r *http.Request) {
	var v personaView
	a := c.API(r.Context(), SessionFrom(r), "GET", c.accountPath(r, "/personas/"+url.PathEscape(chi.URLParam(r, "id"))), nil)
	if !a.OK() {
		c.personasPage(w, r, a.Problem)
		return
	}
	_ = a.Decode(&v.Persona)
	v.Rows = append(append([]Grant{}, v.Persona.Grants...), Grant{})
	v.Catalog = c.catalog(r)
	c.Render(w, r, status(a), "persona", View{Title: "Persona " + v.Persona.Name, Active: "/personas", Problem: a.Problem, Data: v})
}

// personaForm reads the editor: grant rows g0…gN (a row without a
// connection is dropped), UI areas separated by commas.
func personaForm(r *http.Request) Persona {
	p := Persona{Name: r.PostFormValue("name"), Grants: []Grant{}, UI: nonNil(splitList(r.PostFormValue("ui")))}
	n, _ := strconv.Atoi(r.PostFormValue("rows"))
	for i := range min(n, 100) {
		k := "g" + strconv.Itoa(i) + "."
		g := Grant{Connection: strings.TrimSpace(r.PostFormValue(k + "connection")), AssetTypes: splitList(r.PostFormValue(k + "asset_types")), Actions: r.PostForm[k+"actions"]}
		if g.Connection == "" && len(g.AssetTypes) == 0 && len(g.Actions) == 0 {
			continue
		}
		g.AssetTypes, g.Actions = nonNil(g.AssetTypes), nonNil(g.Actions)
		p.Grants = append(p.Grants, g)
	}
	return p
}

// savePersona: POST …/personas (a new one, from the list page's form) or
// PUT …/personas/{id} (the editor, whole).
func (c *Console) savePersona(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	id := chi.URLParam(r, "id")
	p := personaForm(r)
	method, path := "POST", "/personas"
	if id != "" {
		method, path = "PUT", "/personas/"+url.PathEscape(id)
	}
	a := c.API(r.Context(), SessionFrom(r), method, c.accountPath(r, path), map[string]any{"name": p.Name, "grants": p.Grants, "ui": p.UI},
		"Idempotency-Key", r.PostFormValue("idempotency_key"))
	if a.OK() {
		var saved Persona
		_ = a.Decode(&saved)
		redirect(w, r, "/personas/"+url.PathEscape(saved.ID), "Persona saved")
		return
	}
	if id == "" {
		c.personasPage(w, r, a.Problem)
		return
	}
	p.ID = id
	v := personaView{Persona: p, Rows: append(append([]Grant{}, p.Grants...), Grant{}), Catalog: c.catalog(r)}
	c.Render(w, r, status(a), "persona", View{Title: "Persona " + p.Name, Active: "/personas", Problem: a.Problem, Data: v})
}

// deleteItem: DELETE …/{kind}/{id}, back to the list; a refusal shows on
// the list.
func (c *Console) deleteItem(kind, flash string, list func(http.ResponseWriter, *http.Request, *Problem)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		a := c.API(r.Context(), SessionFrom(r), "DELETE", c.accountPath(r, "/"+kind+"/"+url.PathEscape(id)), nil)
		if a.OK() {
			redirect(w, r, "/"+kind, flash)
			return
		}
		list(w, r, a.Problem)
	}
}

type purposeView struct {
	Purposes []Purpose
	Purpose  Purpose
	Catalog  []Permission
	Users    []Technician
	Names    map[string]string
}

// purposesPage lists the purposes; refused is a refusal to show.
func (c *Console) purposesPage(w http.ResponseWriter, r *http.Request, refused *Problem) {
	ps, _, a := getList[Purpose](c, r, "/purposes", "")
	code := status(a)
	if refused != nil {
		code = refused.Status
	}
	c.Render(w, r, code, "purposes", View{Title: "Purposes", Active: "/purposes", Problem: cmp.Or(refused, a.Problem),
		Data: purposeView{Purposes: ps, Names: c.technicianNames(r)}})
}

// newPurpose: the editor of a purpose not saved yet.
func (c *Console) newPurpose(w http.ResponseWriter, r *http.Request) {
	c.Render(w, r, http.StatusOK, "purpose", View{Title: "New purpose", Active: "/purposes", Data: c.purposeView(r, Purpose{})})
}

func (c *Console) purposeView(r *http.Request, p Purpose) purposeView {
	v := purposeView{Purpose: p, Catalog: c.catalog(r)}
	v.Users, _, _ = getList[Technician](c, r, "/technicians?hide_disabled=true", "")
	return v
}

func (c *Console) purposeEditor(w http.ResponseWriter, r *http.Request) {
	var p Purpose
	a := c.API(r.Context(), SessionFrom(r), "GET", c.accountPath(r, "/purposes/"+url.PathEscape(chi.URLParam(r, "id"))), nil)
	if !a.OK() {
		c.purposesPage(w, r, a.Problem)
		return
	}
	_ = a.Decode(&p)
	c.Render(w, r, status(a), "purpose", View{Title: "Purpose " + p.Name, Active: "/purposes", Problem: a.Problem, Data: c.purposeView(r, p)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// purposeForm reads the editor: classifications separated by commas,
// members and exceptions ticked, the data policy (none, mask, deny or a
// row filter).
func purposeForm(r *http.Request) Purpose {
	p := Purpose{Name: r.PostFormValue("name"), Classifications: nonNil(splitList(r.PostFormValue("classifications"))),
		Members: nonNil(r.PostForm["members"]), Actions: nonNil(r.PostForm["actions"])}
	if act := r.PostFormValue("policy"); act != "" {
		p.DataPolicy = &DataPolicy{Action: act, Except: nonNil(r.PostForm["except"]), RowFilter: strings.TrimSpace(r.PostFormValue("row_filter"))}
	}
	return p
}

// savePurpose: POST …/purposes or PUT …/purposes/{id} (whole).
func (c *Console) savePurpose(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	id := chi.URLParam(r, "id")
	p := purposeForm(r)
	method, path := "POST", "/purposes"
	if id != "" {
		method, path = "PUT", "/purposes/"+url.PathEscape(id)
	}
	body := map[string]any{"name": p.Name, "classifications": p.Classifications, "members": p.Members, "actions": p.Actions, "data_policy": p.DataPolicy}
	a := c.API(r.Context(), SessionFrom(r), method, c.accountPath(r, path), body, "Idempotency-Key", r.PostFormValue("idempotency_key"))
	if a.OK() {
		var saved Purpose
		_ = a.Decode(&saved)
		redirect(w, r, "/purposes/"+url.PathEscape(saved.ID), "Purpose saved")
		return
	}
	p.ID = id
	c.Render(w, r, status(a), "purpose", View{Title: "Purpose", Active: "/purposes", Problem: a.Problem, Data: c.purposeView(r, p)})
}

// EffectiveAccess is a user's access on a layered account: the base
// role, the personas held, the purposes that apply.
type EffectiveAccess struct {
	Status   string `json:"status"`
	Denied   bool   `json:"denied"`
	BaseRole struct {
		Name         string   `json:"name"`
		Actions      []string `json:"actions"`
		LayerCeiling []string `json:"layer_ceiling"`
	} `json:"base_role"`
	Personas []Persona `json:"personas"`
	Purposes []struct {
		ID              string   `json:"id"`
		Name            string   `json:"name"`
		Classifications []string `json:"classifications"`
		Member          bool     `json:"member"`
		Actions         []string `json:"actions"`
		DataPolicy      *string  `json:"data_policy"`
	} `json:"purposes"`
}

// Held reports whether the user holds the persona id.
func (e *EffectiveAccess) Held(id string) bool {
	if e == nil {
		return false
	}
	for _, p := range e.Personas {
		if p.ID == id {
			return true
		}
	}
	return false
}

// loadAccess adds the technician's layers and the account's personas to
// the technician page.
func (c *Console) loadAccess(r *http.Request, v *technicianView) {
	v.Layered = true
	a := c.API(r.Context(), SessionFrom(r), "GET", c.accountPath(r, "/technicians/"+url.PathEscape(v.T.ID)+"/effective-access"), nil)
	if a.OK() {
		v.Access = &EffectiveAccess{}
		if err := a.Decode(v.Access); err != nil {
			v.Access = nil
		}
	}
	v.Personas, _, _ = getList[Persona](c, r, "/personas", "")
}

// assignPersonas: PUT …/technicians/{id}/personas with the ticked ones
// (none ticked takes every persona away).
func (c *Console) assignPersonas(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	id := chi.URLParam(r, "id")
	a := c.API(r.Context(), SessionFrom(r), "PUT", c.accountPath(r, "/technicians/"+url.PathEscape(id)+"/personas"),
		map[string]any{"persona_ids": nonNil(r.PostForm["persona_ids"])})
	if a.OK() {
		redirect(w, r, "/technicians/"+url.PathEscape(id), "Personas saved")
		return
	}
	v, _ := c.loadTechnician(r)
	c.Render(w, r, status(a), "technician", View{Title: "Technician", Active: "/technicians", Problem: a.Problem, Data: v})
}
