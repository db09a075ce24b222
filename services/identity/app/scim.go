package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// H-2: SCIM 2.0 over the technician and directory use cases. A SCIM user
// is a technician (id = the technician's id); creating one is AddTechnician
// (seat reservation, role through events), deactivating one — PATCH or PUT
// active=false, or DELETE — is DisableTechnician (I-3: never a deletion,
// I-7). A SCIM group's displayName names the role its members are given
// (TechnicianRoleRequested); a member leaving its last group is given
// Beginner back.

// ScimGroup is a SCIM group.
type ScimGroup struct {
	ID          string
	AccountID   string
	DisplayName string
	Members     []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ScimStore is what the SCIM use cases need beyond the directory store.
type ScimStore interface {
	ExternalIDs(ctx context.Context, q Querier, accountID string) (map[string]string, error)
	SaveExternalID(ctx context.Context, tx *sql.Tx, accountID, resourceID, externalID string) error
	DirectoryEntries(ctx context.Context, accountID string) (map[string]DirectoryEntry, error)
	InsertGroup(ctx context.Context, tx *sql.Tx, g ScimGroup) error
	UpdateGroup(ctx context.Context, tx *sql.Tx, g ScimGroup) error
	DeleteGroup(ctx context.Context, tx *sql.Tx, accountID, id string) error
	Groups(ctx context.Context, q Querier, accountID string) ([]ScimGroup, error)
}

// defaultRole is given back to a technician who leaves their last group:
// the built-in role every new technician holds.
const defaultRole = "Beginner"

// ScimBase is the base URL of the account's SCIM endpoint, for meta.location.
type ScimBase string

func (b ScimBase) location(kind, id string) string { return string(b) + "/" + kind + "/" + id }

// scimErr turns a use case's problem into a SCIM error.
func scimErr(err error) error {
	var p *problem.Problem
	if !errors.As(err, &p) {
		return err
	}
	e := &domain.ScimError{Status: p.Status, Detail: p.Detail}
	switch {
	case p.Type == problem.Base+"email-in-use" || p.Type == problem.Base+"email-reserved":
		e.ScimType = "uniqueness"
	case p.Type == problem.Base+"email-change-requires-disabled":
		e.Status, e.ScimType = 400, "mutability"
	case p.Status == http.StatusUnprocessableEntity:
		e.Status, e.ScimType = 400, "invalidValue"
		var parts []string
		for _, f := range p.Errors {
			parts = append(parts, f.Field+": "+f.Detail)
		}
		if len(parts) > 0 {
			e.Detail = strings.Join(parts, "; ")
		}
	case p.Status == http.StatusPaymentRequired:
		e.Detail = "every seat of the account is taken and SCIM cannot confirm a purchase: buy seats (POST …/subscription or add a technician with confirm_seat_purchase) and retry"
	}
	if e.Detail == "" {
		e.Detail = p.Title
	}
	return e
}

func notFound(kind, id string) error {
	return &domain.ScimError{Status: 404, Detail: kind + " " + id + " not found"}
}

// allTechnicians lists every technician of the account, in id order.
func (x *Directory) allTechnicians(ctx context.Context, accountID string) ([]domain.Technician, error) {
	var out []domain.Technician
	after := ""
	for {
		page, err := x.Technicians.ListTechnicians(ctx, TechnicianFilter{AccountID: accountID, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// scimView is what a user document is rendered from.
type scimView struct {
	dir    map[string]DirectoryEntry
	ext    map[string]string
	groups []ScimGroup
	base   ScimBase
}

func (x *Directory) view(ctx context.Context, accountID string, base ScimBase) (scimView, error) {
	v := scimView{base: base}
	var err error
	if v.dir, err = x.Scim.DirectoryEntries(ctx, accountID); err != nil {
		return v, err
	}
	if v.ext, err = x.Scim.ExternalIDs(ctx, x.DB, accountID); err != nil {
		return v, err
	}
	v.groups, err = x.Scim.Groups(ctx, x.DB, accountID)
	return v, err
}

func scimTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// userDoc renders a technician as a SCIM user.
func (v scimView) userDoc(t domain.Technician) map[string]any {
	d := v.dir[t.ID]
	doc := map[string]any{
		"schemas":     []any{domain.SchemaUser, domain.SchemaEnterprise},
		"id":          t.ID,
		"userName":    t.Email,
		"name":        map[string]any{"givenName": t.FirstName, "familyName": t.LastName, "formatted": strings.TrimSpace(t.FirstName + " " + t.LastName)},
		"displayName": strings.TrimSpace(t.FirstName + " " + t.LastName),
		"emails":      []any{map[string]any{"value": t.Email, "type": "work", "primary": true}},
		"active":      t.Status != domain.StatusDisabled,
		"meta": map[string]any{"resourceType": "User", "created": scimTime(t.CreatedAt), "lastModified": scimTime(t.CreatedAt),
			"location": v.base.location("Users", t.ID)},
	}
	if ext := v.ext[t.ID]; ext != "" {
		doc["externalId"] = ext
	}
	if t.Phone != "" {
		doc["phoneNumbers"] = []any{map[string]any{"value": t.Phone, "type": "work"}}
	}
	if d.JobTitle != "" {
		doc["title"] = d.JobTitle
	}
	ent := map[string]any{}
	if d.EmployeeNumber != "" {
		ent["employeeNumber"] = d.EmployeeNumber
	}
	if d.Department != "" {
		ent["department"] = d.Department
	}
	if d.Manager != "" {
		ent["manager"] = map[string]any{"value": d.Manager}
	}
	doc[domain.SchemaEnterprise] = ent
	var groups []any
	for _, g := range v.groups {
		if slices.Contains(g.Members, t.ID) {
			groups = append(groups, map[string]any{"value": g.ID, "display": g.DisplayName, "$ref": v.base.location("Groups", g.ID)})
		}
	}
	if groups != nil {
		doc["groups"] = groups
	}
	return doc
}

func (v scimView) groupDoc(g ScimGroup) map[string]any {
	members := []any{}
	for _, m := range g.Members {
		members = append(members, map[string]any{"value": m, "$ref": v.base.location("Users", m)})
	}
	doc := map[string]any{
		"schemas":     []any{domain.SchemaGroup},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"members":     members,
		"meta": map[string]any{"resourceType": "Group", "created": scimTime(g.CreatedAt), "lastModified": scimTime(g.UpdatedAt),
			"location": v.base.location("Groups", g.ID)},
	}
	if ext := v.ext[g.ID]; ext != "" {
		doc["externalId"] = ext
	}
	return doc
}

// ScimQuery is a list or search request (RFC 7644 §3.4.2).
type ScimQuery struct {
	// Filterable, when set, replaces the resource type's filterable
	// attributes (root search: every type's).
	Filterable         domain.Filterable
	Filter             string
	StartIndex, Count  int
	Attributes         string
	ExcludedAttributes string
}

// ScimList is a ListResponse.
type ScimList struct {
	Schemas      []string         `json:"schemas"`
	TotalResults int              `json:"totalResults"`
	StartIndex   int              `json:"startIndex"`
	ItemsPerPage int              `json:"itemsPerPage"`
	Resources    []map[string]any `json:"Resources"`
}

// MaxScimCount caps count (ServiceProviderConfig filter.maxResults).
const MaxScimCount = 500

func page(docs []map[string]any, q ScimQuery) ScimList {
	start := max(q.StartIndex, 1)
	count := q.Count
	if count < 0 {
		count = 0
	}
	out := ScimList{Schemas: []string{domain.SchemaList}, TotalResults: len(docs), StartIndex: start, Resources: []map[string]any{}}
	for i := start - 1; i < len(docs) && len(out.Resources) < count; i++ {
		out.Resources = append(out.Resources, domain.Project(docs[i], q.Attributes, q.ExcludedAttributes))
	}
	out.ItemsPerPage = len(out.Resources)
	return out
}

func matching(docs []map[string]any, q ScimQuery, allowed domain.Filterable) ([]map[string]any, error) {
	if strings.TrimSpace(q.Filter) == "" {
		return docs, nil
	}
	exp, err := domain.ParseFilter(q.Filter)
	if err != nil {
		return nil, err
	}
	if q.Filterable != nil {
		allowed = q.Filterable
	}
	if err := domain.CheckFilter(exp, allowed); err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, d := range docs {
		if domain.Match(d, exp) {
			out = append(out, d)
		}
	}
	return out, nil
}

// ListUsers answers GET /Users and POST /Users/.search: the account's
// technicians in id order (stable across pages), filtered, one page.
func (x *Directory) ListUsers(ctx context.Context, accountID string, base ScimBase, q ScimQuery) (ScimList, error) {
	ts, err := x.allTechnicians(ctx, accountID)
	if err != nil {
		return ScimList{}, err
	}
	v, err := x.view(ctx, accountID, base)
	if err != nil {
		return ScimList{}, err
	}
	docs := make([]map[string]any, len(ts))
	for i, t := range ts {
		docs[i] = v.userDoc(t)
	}
	docs, err = matching(docs, q, domain.UserFilterable)
	if err != nil {
		return ScimList{}, err
	}
	return page(docs, q), nil
}

// User answers GET /Users/{id}.
func (x *Directory) User(ctx context.Context, accountID, id string, base ScimBase) (map[string]any, error) {
	t, err := x.Technicians.Technician(ctx, x.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("User", id)
	}
	if err != nil {
		return nil, err
	}
	v, err := x.view(ctx, accountID, base)
	if err != nil {
		return nil, err
	}
	return v.userDoc(t), nil
}

// desiredUser is what a user document asks for.
type desiredUser struct {
	email, given, family, phone, externalID string
	active                                  bool
	dir                                     DirectoryEntry
}

func readUser(doc map[string]any) (desiredUser, error) {
	u := desiredUser{active: true}
	u.email = strings.TrimSpace(domain.GetString(doc, "userName"))
	if u.email == "" {
		for _, e := range listOf(doc, "emails") {
			if v := domain.GetString(e, "value"); v != "" && (u.email == "" || truthy(e["primary"])) {
				u.email = v
			}
		}
	}
	if name := domain.GetObject(doc, "name"); name != nil {
		u.given, u.family = domain.GetString(name, "givenName"), domain.GetString(name, "familyName")
	}
	if u.given == "" && u.family == "" {
		dn := strings.TrimSpace(domain.GetString(doc, "displayName"))
		u.given, u.family, _ = strings.Cut(dn, " ")
	}
	for _, p := range listOf(doc, "phoneNumbers") {
		if v := domain.GetString(p, "value"); v != "" && (u.phone == "" || truthy(p["primary"]) || strings.EqualFold(domain.GetString(p, "type"), "work")) {
			u.phone = v
		}
	}
	u.externalID = domain.GetString(doc, "externalId")
	if v, ok := domain.Get(doc, "active"); ok && v != nil {
		b, ok := domain.Bool(v)
		if !ok {
			return u, domain.ErrInvalidValue("active must be true or false")
		}
		u.active = b
	}
	u.dir.JobTitle = domain.GetString(doc, "title")
	if ent := domain.GetObject(doc, domain.SchemaEnterprise); ent != nil {
		u.dir.EmployeeNumber = domain.GetString(ent, "employeeNumber")
		u.dir.Department = domain.GetString(ent, "department")
		switch m := mustGet(ent, "manager").(type) {
		case string:
			u.dir.Manager = m
		case map[string]any:
			u.dir.Manager = domain.GetString(m, "value")
		}
	}
	return u, nil
}

func mustGet(doc map[string]any, key string) any { v, _ := domain.Get(doc, key); return v }

func truthy(v any) bool { b, _ := domain.Bool(v); return b }

func listOf(doc map[string]any, key string) []map[string]any {
	v, _ := domain.Get(doc, key)
	l, _ := v.([]any)
	var out []map[string]any
	for _, el := range l {
		if m, ok := el.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// CreateUser answers POST /Users: AddTechnician with the user's fields
// (no seat purchase: SCIM cannot confirm one), then its directory
// attributes and externalId; "active": false disables it at once.
func (x *Directory) CreateUser(ctx context.Context, accountID string, base ScimBase, doc map[string]any) (map[string]any, error) {
	u, err := readUser(doc)
	if err != nil {
		return nil, err
	}
	req := domain.NewTechnician{Email: u.email, FirstName: u.given, LastName: u.family, Phone: u.phone}
	res, err := x.AddTechnician(ctx, accountID, req, "", nil)
	if err != nil {
		return nil, scimErr(err)
	}
	var t domain.Technician
	if err := json.Unmarshal(res.Body, &t); err != nil {
		return nil, err
	}
	if err := x.applyUser(ctx, accountID, t, u); err != nil {
		return nil, err
	}
	return x.User(ctx, accountID, t.ID, base)
}

// applyUser brings technician t to what u asks: names, phone, email (only
// while disabled, I-3), directory attributes, externalId, active.
func (x *Directory) applyUser(ctx context.Context, accountID string, t domain.Technician, u desiredUser) error {
	p := domain.Patch{}
	changed := false
	if u.given != "" && u.given != t.FirstName {
		p.FirstName, changed = &u.given, true
	}
	if u.family != "" && u.family != t.LastName {
		p.LastName, changed = &u.family, true
	}
	if u.phone != t.Phone {
		p.Phone, changed = &u.phone, true
	}
	emailChange := u.email != "" && domain.EmailKey(u.email) != domain.EmailKey(t.Email)
	if emailChange && !u.active && t.Status != domain.StatusDisabled {
		// Deactivate first, then rename (I-3 allows it while disabled).
		if _, err := x.DisableTechnician(ctx, accountID, t.ID, "", "", nil); err != nil {
			return scimErr(err)
		}
		t.Status = domain.StatusDisabled
	}
	if emailChange {
		p.Email, changed = &u.email, true
	}
	if changed {
		if _, err := x.PatchTechnician(ctx, accountID, t.ID, p); err != nil {
			return scimErr(err)
		}
	}
	dir := u.dir
	dir.AccountID, dir.TechnicianID = accountID, t.ID
	prev, err := x.Store.DirectoryEntry(ctx, x.DB, accountID, t.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	dir.Location = prev.Location
	exts, err := x.Scim.ExternalIDs(ctx, x.DB, accountID)
	if err != nil {
		return err
	}
	if err := x.DB.InTx(ctx, func(tx *sql.Tx) error {
		if exts[t.ID] != u.externalID {
			if err := x.Scim.SaveExternalID(ctx, tx, accountID, t.ID, u.externalID); err != nil {
				return err
			}
		}
		return x.saveDirectory(ctx, tx, dir)
	}); err != nil {
		return err
	}
	switch {
	case !u.active && t.Status != domain.StatusDisabled:
		// I-3, I-7: deactivation is a disable, never a deletion.
		if _, err := x.DisableTechnician(ctx, accountID, t.ID, "", "", nil); err != nil {
			return scimErr(err)
		}
	case u.active && t.Status == domain.StatusDisabled:
		if _, err := x.EnableTechnician(ctx, accountID, t.ID, false, "", nil); err != nil {
			return scimErr(err)
		}
	}
	return nil
}

// ReplaceUser answers PUT /Users/{id}.
func (x *Directory) ReplaceUser(ctx context.Context, accountID, id string, base ScimBase, doc map[string]any) (map[string]any, error) {
	t, err := x.Technicians.Technician(ctx, x.DB, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("User", id)
	}
	if err != nil {
		return nil, err
	}
	u, err := readUser(doc)
	if err != nil {
		return nil, err
	}
	if err := x.applyUser(ctx, accountID, t, u); err != nil {
		return nil, err
	}
	return x.User(ctx, accountID, id, base)
}

// PatchUser answers PATCH /Users/{id}: the operations apply to the user's
// document, and the result is applied as PUT would.
func (x *Directory) PatchUser(ctx context.Context, accountID, id string, base ScimBase, ops []domain.PatchOp) (map[string]any, error) {
	doc, err := x.User(ctx, accountID, id, base)
	if err != nil {
		return nil, err
	}
	if err := domain.ApplyPatch(doc, ops); err != nil {
		return nil, err
	}
	return x.ReplaceUser(ctx, accountID, id, base, doc)
}

// DeleteUser answers DELETE /Users/{id}: a disable (I-3: technicians are
// never deleted; I-7).
func (x *Directory) DeleteUser(ctx context.Context, accountID, id string) error {
	if _, err := x.Technicians.Technician(ctx, x.DB, accountID, id); errors.Is(err, ErrNotFound) {
		return notFound("User", id)
	}
	if _, err := x.DisableTechnician(ctx, accountID, id, "", "", nil); err != nil {
		return scimErr(err)
	}
	return nil
}

// ListGroups answers GET /Groups and POST /Groups/.search.
func (x *Directory) ListGroups(ctx context.Context, accountID string, base ScimBase, q ScimQuery) (ScimList, error) {
	v, err := x.view(ctx, accountID, base)
	if err != nil {
		return ScimList{}, err
	}
	docs := make([]map[string]any, len(v.groups))
	for i, g := range v.groups {
		docs[i] = v.groupDoc(g)
	}
	docs, err = matching(docs, q, domain.GroupFilterable)
	if err != nil {
		return ScimList{}, err
	}
	return page(docs, q), nil
}

func (x *Directory) group(ctx context.Context, accountID, id string) (ScimGroup, error) {
	gs, err := x.Scim.Groups(ctx, x.DB, accountID)
	if err != nil {
		return ScimGroup{}, err
	}
	for _, g := range gs {
		if g.ID == id {
			return g, nil
		}
	}
	return ScimGroup{}, notFound("Group", id)
}

// Group answers GET /Groups/{id}.
func (x *Directory) Group(ctx context.Context, accountID, id string, base ScimBase) (map[string]any, error) {
	g, err := x.group(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	v, err := x.view(ctx, accountID, base)
	if err != nil {
		return nil, err
	}
	return v.groupDoc(g), nil
}

// readGroup reads displayName, externalId and the member ids.
func readGroup(doc map[string]any) (name, externalID string, members []string, err error) {
	name = strings.TrimSpace(domain.GetString(doc, "displayName"))
	if name == "" || len(name) > 200 {
		return "", "", nil, domain.ErrInvalidValue("displayName is required, at most 200 characters")
	}
	for _, m := range listOf(doc, "members") {
		id := domain.GetString(m, "value")
		if id == "" {
			return "", "", nil, domain.ErrInvalidValue("every member needs a value (a User id)")
		}
		if !slices.Contains(members, id) {
			members = append(members, id)
		}
	}
	return name, domain.GetString(doc, "externalId"), members, nil
}

// CreateGroup answers POST /Groups.
func (x *Directory) CreateGroup(ctx context.Context, accountID string, base ScimBase, doc map[string]any) (map[string]any, error) {
	name, ext, members, err := readGroup(doc)
	if err != nil {
		return nil, err
	}
	now := x.Now().UTC().Truncate(time.Microsecond)
	g := ScimGroup{ID: NewID("grp"), AccountID: accountID, DisplayName: name, Members: members, CreatedAt: now, UpdatedAt: now}
	err = x.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := x.checkMembers(ctx, tx, accountID, members); err != nil {
			return err
		}
		if err := x.Scim.InsertGroup(ctx, tx, g); err != nil {
			if store.IsUniqueViolation(err) || errors.Is(err, ErrConflict) {
				return &domain.ScimError{Status: 409, ScimType: "uniqueness", Detail: "a group named " + name + " exists"}
			}
			return err
		}
		if ext != "" {
			if err := x.Scim.SaveExternalID(ctx, tx, accountID, g.ID, ext); err != nil {
				return err
			}
		}
		return x.groupChanged(ctx, tx, accountID, g, "created", members, nil, nil)
	})
	if err != nil {
		return nil, err
	}
	return x.Group(ctx, accountID, g.ID, base)
}

func (x *Directory) checkMembers(ctx context.Context, q Querier, accountID string, ids []string) error {
	for _, id := range ids {
		if _, err := x.Technicians.Technician(ctx, q, accountID, id); errors.Is(err, ErrNotFound) {
			return domain.ErrInvalidValue("member " + id + " is no User of this account")
		} else if err != nil {
			return err
		}
	}
	return nil
}

// groupChanged emits SCIMGroupChanged and the role requests: added members
// get the group's role; removed ones that are in no other group get
// Beginner back.
func (x *Directory) groupChanged(ctx context.Context, tx *sql.Tx, accountID string, g ScimGroup, change string, added, removed []string, others []ScimGroup) error {
	ev := &identityv1.SCIMGroupChanged{GroupId: g.ID, DisplayName: g.DisplayName, Change: change, AddedMembers: added, RemovedMembers: removed}
	if err := x.Bus.Emit(ctx, tx, accountID, ev); err != nil {
		return err
	}
	for _, id := range added {
		if err := x.Bus.Emit(ctx, tx, accountID, &identityv1.TechnicianRoleRequested{TechnicianId: id, Role: g.DisplayName}); err != nil {
			return err
		}
	}
	for _, id := range removed {
		inOther := false
		for _, o := range others {
			inOther = inOther || (o.ID != g.ID && slices.Contains(o.Members, id))
		}
		if inOther {
			continue
		}
		if err := x.Bus.Emit(ctx, tx, accountID, &identityv1.TechnicianRoleRequested{TechnicianId: id, Role: defaultRole}); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceGroup answers PUT /Groups/{id}, and PATCH through PatchGroup.
func (x *Directory) ReplaceGroup(ctx context.Context, accountID, id string, base ScimBase, doc map[string]any) (map[string]any, error) {
	if err := x.replaceGroup(ctx, accountID, id, doc); err != nil {
		return nil, err
	}
	return x.Group(ctx, accountID, id, base)
}

func (x *Directory) replaceGroup(ctx context.Context, accountID, id string, doc map[string]any) error {
	name, ext, members, err := readGroup(doc)
	if err != nil {
		return err
	}
	return x.DB.InTx(ctx, func(tx *sql.Tx) error {
		all, err := x.Scim.Groups(ctx, tx, accountID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(g ScimGroup) bool { return g.ID == id })
		if i < 0 {
			return notFound("Group", id)
		}
		prev := all[i]
		if err := x.checkMembers(ctx, tx, accountID, members); err != nil {
			return err
		}
		var added, removed []string
		for _, m := range members {
			if !slices.Contains(prev.Members, m) || !strings.EqualFold(prev.DisplayName, name) {
				added = append(added, m) // a renamed group maps to another role
			}
		}
		for _, m := range prev.Members {
			if !slices.Contains(members, m) {
				removed = append(removed, m)
			}
		}
		g := prev
		g.DisplayName, g.Members, g.UpdatedAt = name, members, x.Now().UTC().Truncate(time.Microsecond)
		if err := x.Scim.UpdateGroup(ctx, tx, g); err != nil {
			if store.IsUniqueViolation(err) {
				return &domain.ScimError{Status: 409, ScimType: "uniqueness", Detail: "a group named " + name + " exists"}
			}
			return err
		}
		exts, err := x.Scim.ExternalIDs(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if exts[id] != ext {
			if err := x.Scim.SaveExternalID(ctx, tx, accountID, id, ext); err != nil {
				return err
			}
		}
		all[i] = g
		if len(added) == 0 && len(removed) == 0 && prev.DisplayName == name {
			return nil
		}
		return x.groupChanged(ctx, tx, accountID, g, "updated", added, removed, all)
	})
}

// PatchGroup answers PATCH /Groups/{id} (204: the client reads the group
// when it wants it).
func (x *Directory) PatchGroup(ctx context.Context, accountID, id string, base ScimBase, ops []domain.PatchOp) error {
	doc, err := x.Group(ctx, accountID, id, base)
	if err != nil {
		return err
	}
	if err := domain.ApplyPatch(doc, ops); err != nil {
		return err
	}
	return x.replaceGroup(ctx, accountID, id, doc)
}

// DeleteGroup answers DELETE /Groups/{id}: the group goes, its roles are
// not its to keep: members in no other group get Beginner back.
func (x *Directory) DeleteGroup(ctx context.Context, accountID, id string) error {
	return x.DB.InTx(ctx, func(tx *sql.Tx) error {
		all, err := x.Scim.Groups(ctx, tx, accountID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(g ScimGroup) bool { return g.ID == id })
		if i < 0 {
			return notFound("Group", id)
		}
		if err := x.Scim.DeleteGroup(ctx, tx, accountID, id); err != nil {
			return err
		}
		return x.groupChanged(ctx, tx, accountID, all[i], "deleted", nil, all[i].Members, all)
	})
}

// ScimGate is S-8 for SCIM: nil when the account's plan offers SCIM for
// technicians (roster: every plan; atera: never).
func (x *Directory) ScimGate(ctx context.Context, accountID string) error {
	_, prof, err := x.account(ctx, accountID)
	if err != nil {
		return err
	}
	ok, reason, err := x.gate(ctx, accountID, "scim_technicians")
	if err != nil {
		return err
	}
	if !ok {
		return ErrPlanGate(fmt.Sprintf("SCIM provisioning of technicians is not offered on this plan (S-8): %s", reason))
	}
	// atlan: and only with SSO configured (S-8, H-2).
	if prof.Identity.ScimRequiresSSO && x.SSOConfigs != nil {
		if _, err := x.SSOConfigs.SSOConfig(ctx, x.DB, accountID); errors.Is(err, ErrNotFound) {
			return ErrPlanGate("SCIM provisioning needs single sign-on configured first (S-8): PUT /v1/accounts/" + accountID + "/sso")
		} else if err != nil {
			return err
		}
	}
	return nil
}
