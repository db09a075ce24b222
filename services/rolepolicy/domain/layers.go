package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"roster.dev/pkg/profile"
)

// LayeredRoleModel is the profile role model of three layers (R-9, atlan):
// base roles, personas, purposes. No custom roles.
const LayeredRoleModel = "base_roles"

// Errors of personas and purposes.
var (
	ErrPersonaNotFound = errors.New("persona not found")
	ErrPurposeNotFound = errors.New("purpose not found")
	ErrDuplicateName   = errors.New("name taken")
	// ErrLayersUnavailable: the account's role model has no personas or
	// purposes (every profile but the layered one).
	ErrLayersUnavailable = errors.New("personas and purposes unavailable")
)

// Grant is one persona grant: actions on asset types of one connection.
type Grant struct {
	Connection string   `json:"connection"`
	AssetTypes []string `json:"asset_types"`
	Actions    []string `json:"actions"`
}

// PersonaSpec is a persona as a request gives it.
type PersonaSpec struct {
	Name   string   `json:"name"`
	Grants []Grant  `json:"grants"`
	UI     []string `json:"ui"`
}

// Persona is a named set of grants on asset types per connection and UI
// areas.
type Persona struct {
	ID, AccountID string
	PersonaSpec
	Version              int64
	CreatedAt, UpdatedAt time.Time
}

// Data policy effects.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
	EffectMask  = "mask"
	// EffectFilter is a data policy that limits the rows returned
	// (DataPolicy.RowFilter) for everyone it does not exempt.
	EffectFilter = "filter"
)

// DataPolicy masks, denies or filters the rows of data of a purpose's
// classifications for everyone but the purpose's members and Except.
type DataPolicy struct {
	Action string   `json:"action"`
	Except []string `json:"except"`
	// RowFilter is the filter action's row condition, handed to the
	// querying system as given (e.g. region = 'EU').
	RowFilter string `json:"row_filter,omitempty"`
}

// PurposeSpec is a purpose as a request gives it.
type PurposeSpec struct {
	Name            string      `json:"name"`
	Classifications []string    `json:"classifications"`
	Members         []string    `json:"members"`
	Actions         []string    `json:"actions"`
	DataPolicy      *DataPolicy `json:"data_policy"`
}

// Purpose is a data policy tied to classifications.
type Purpose struct {
	ID, AccountID string
	PurposeSpec
	Version              int64
	CreatedAt, UpdatedAt time.Time
}

func clean(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func catalogIDs(p profile.RolePolicy) []string {
	ids := make([]string, 0, len(p.Catalog))
	for _, c := range p.Catalog {
		ids = append(ids, c.ID)
	}
	return ids
}

func unknownActions(field string, actions, catalog []string) []FieldProblem {
	var bad []FieldProblem
	if len(actions) == 0 {
		bad = append(bad, FieldProblem{Field: field, Detail: "is required: one or more of " + strings.Join(catalog, ", ")})
	}
	for _, a := range actions {
		if !slices.Contains(catalog, a) {
			bad = append(bad, FieldProblem{Field: field, Detail: fmt.Sprintf("%q is not an action; one of %s", a, strings.Join(catalog, ", "))})
		}
	}
	return bad
}

func checkName(name string) []FieldProblem {
	switch n := strings.TrimSpace(name); {
	case n == "":
		return []FieldProblem{{Field: "name", Detail: "is required"}}
	case len(n) > 200:
		return []FieldProblem{{Field: "name", Detail: "is longer than 200 characters"}}
	}
	return nil
}

// CheckPersona trims and checks a persona against the profile: actions of
// the catalog, UI areas it names; every bad field at once.
func CheckPersona(p profile.RolePolicy, s PersonaSpec) (PersonaSpec, error) {
	s.Name = strings.TrimSpace(s.Name)
	bad := checkName(s.Name)
	catalog := catalogIDs(p)
	for i := range s.Grants {
		g := &s.Grants[i]
		g.Connection = strings.TrimSpace(g.Connection)
		g.AssetTypes, g.Actions = clean(g.AssetTypes), clean(g.Actions)
		f := fmt.Sprintf("grants[%d]", i)
		if g.Connection == "" {
			bad = append(bad, FieldProblem{Field: f + ".connection", Detail: "is required"})
		}
		if len(g.AssetTypes) == 0 {
			bad = append(bad, FieldProblem{Field: f + ".asset_types", Detail: "is required: one or more asset types (table, view, …)"})
		}
		bad = append(bad, unknownActions(f+".actions", g.Actions, catalog)...)
	}
	if s.Grants == nil {
		s.Grants = []Grant{}
	}
	s.UI = clean(s.UI)
	for _, u := range s.UI {
		if !slices.Contains(p.UIAreas, u) {
			bad = append(bad, FieldProblem{Field: "ui", Detail: fmt.Sprintf("%q is not a UI area; one of %s", u, strings.Join(p.UIAreas, ", "))})
		}
	}
	if len(bad) > 0 {
		return s, &InvalidError{Fields: bad}
	}
	return s, nil
}

// CheckPurpose trims and checks a purpose against the profile; the
// members' and exceptions' ids are the caller's to check.
func CheckPurpose(p profile.RolePolicy, s PurposeSpec) (PurposeSpec, error) {
	s.Name = strings.TrimSpace(s.Name)
	bad := checkName(s.Name)
	s.Classifications, s.Members, s.Actions = clean(s.Classifications), clean(s.Members), clean(s.Actions)
	if len(s.Classifications) == 0 {
		bad = append(bad, FieldProblem{Field: "classifications", Detail: "is required: one or more classification tags (PII, …)"})
	}
	if len(s.Actions) > 0 {
		bad = append(bad, unknownActions("actions", s.Actions, catalogIDs(p))...)
	}
	if s.DataPolicy != nil {
		s.DataPolicy.Except = clean(s.DataPolicy.Except)
		s.DataPolicy.RowFilter = strings.TrimSpace(s.DataPolicy.RowFilter)
		switch a, f := s.DataPolicy.Action, s.DataPolicy.RowFilter; {
		case a != EffectMask && a != EffectDeny && a != EffectFilter:
			bad = append(bad, FieldProblem{Field: "data_policy.action", Detail: "must be mask, deny or filter"})
		case a == EffectFilter && f == "":
			bad = append(bad, FieldProblem{Field: "data_policy.row_filter", Detail: "is required with the filter action: the rows others may see (region = 'EU')"})
		case a != EffectFilter && f != "":
			bad = append(bad, FieldProblem{Field: "data_policy.row_filter", Detail: "goes with the filter action only"})
		case len(f) > 1000:
			bad = append(bad, FieldProblem{Field: "data_policy.row_filter", Detail: "is longer than 1000 characters"})
		}
	}
	if len(s.Actions) == 0 && s.DataPolicy == nil {
		bad = append(bad, FieldProblem{Field: "actions", Detail: "a purpose grants actions to its members, holds a data_policy, or both"})
	}
	if len(bad) > 0 {
		return s, &InvalidError{Fields: bad}
	}
	return s, nil
}

// Asset is what an access check is about.
type Asset struct {
	Connection      string   `json:"connection"`
	Type            string   `json:"type"`
	Classifications []string `json:"classifications"`
}

// Layers: which one decided.
const (
	LayerBaseRole = "base_role"
	LayerPersona  = "persona"
	LayerPurpose  = "purpose"
)

// Subject is a technician with their three layers.
type Subject struct {
	TechnicianID string
	Status       Status
	BaseRole     Role
	// Ceiling is the most personas and purposes may grant this base role
	// (the profile's layer_ceiling: a Guest is read-only); nil: no ceiling.
	Ceiling  []string
	Personas []Persona
	// Purposes are every purpose of the account: data policies apply to
	// everyone who is not exempt.
	Purposes []Purpose
}

// Verdict is an access check's answer.
type Verdict struct {
	Allowed bool   `json:"allowed"`
	Effect  string `json:"effect"`
	Layer   string `json:"layer"`
	// Source names the role, persona or purpose that decided.
	Source string `json:"source,omitempty"`
	Reason string `json:"reason"`
	// RowFilters are the row conditions of the filtering purposes that
	// apply (all of them hold), on an allowed or masked data action.
	RowFilters []string `json:"row_filters,omitempty"`
}

func (p Purpose) member(id string) bool { return slices.Contains(p.Members, id) }

func (p Purpose) covers(a Asset) bool {
	return slices.ContainsFunc(a.Classifications, func(c string) bool {
		return slices.ContainsFunc(p.Classifications, func(pc string) bool { return strings.EqualFold(pc, c) })
	})
}

// exempt: the purpose's data policy does not reach id (its members and
// the listed exceptions).
func (p Purpose) exempt(id string) bool {
	return p.member(id) || (p.DataPolicy != nil && slices.Contains(p.DataPolicy.Except, id))
}

func (g Grant) allows(action string, a Asset) bool {
	return g.Connection == a.Connection && slices.Contains(g.AssetTypes, a.Type) && slices.Contains(g.Actions, action)
}

// Decide is R-9's effective access for one action on one asset, layer by
// layer. A deactivated or pending user is denied. Access is granted by the
// first layer that grants the action — the base role (on every asset), a
// persona (on its connection's asset types), a purpose the user is a
// member of (on assets of its classifications) — and denied when none
// does: a Guest gets only what a persona or purpose shares. Then, for the
// data actions (dataActions: read, query), every purpose whose
// classifications the asset carries applies its data policy to everyone
// it does not exempt: deny wins over mask, and both win over any grant;
// row filters add their conditions to an allowed or masked answer.
func Decide(s Subject, action string, a Asset, dataActions []string) Verdict {
	switch s.Status {
	case StatusDisabled:
		return Verdict{Effect: EffectDeny, Layer: LayerBaseRole, Reason: "the user is deactivated: every action is denied"}
	case StatusInvited:
		return Verdict{Effect: EffectDeny, Layer: LayerBaseRole, Reason: "the user has not accepted the invitation: every action is denied until then"}
	}
	v := Verdict{Effect: EffectDeny, Layer: LayerBaseRole, Source: s.BaseRole.Name,
		Reason: fmt.Sprintf("the %s base role does not include %s, and no persona or purpose of the user shares it on this asset", s.BaseRole.Name, action)}
	capped := s.Ceiling != nil && !slices.Contains(s.Ceiling, action)
	switch {
	case slices.Contains(s.BaseRole.Permissions, action):
		v = Verdict{Allowed: true, Effect: EffectAllow, Layer: LayerBaseRole, Source: s.BaseRole.Name,
			Reason: fmt.Sprintf("the %s base role includes %s", s.BaseRole.Name, action)}
	case capped:
		v.Reason = fmt.Sprintf("the %s base role is limited to %s: no persona or purpose grants it %s",
			s.BaseRole.Name, strings.Join(s.Ceiling, ", "), action)
	default:
		for _, p := range s.Personas {
			if i := slices.IndexFunc(p.Grants, func(g Grant) bool { return g.allows(action, a) }); i >= 0 {
				v = Verdict{Allowed: true, Effect: EffectAllow, Layer: LayerPersona, Source: p.Name,
					Reason: fmt.Sprintf("persona %q grants %s on %s assets of connection %s", p.Name, action, a.Type, a.Connection)}
				break
			}
		}
		if !v.Allowed {
			for _, p := range s.Purposes {
				if p.member(s.TechnicianID) && p.covers(a) && slices.Contains(p.Actions, action) {
					v = Verdict{Allowed: true, Effect: EffectAllow, Layer: LayerPurpose, Source: p.Name,
						Reason: fmt.Sprintf("purpose %q grants its members %s on assets classified %s", p.Name, action, strings.Join(p.Classifications, ", "))}
					break
				}
			}
		}
	}
	if !v.Allowed || !slices.Contains(dataActions, action) {
		return v
	}
	var mask, filter *Purpose
	var filters []string
	for i, p := range s.Purposes {
		if p.DataPolicy == nil || !p.covers(a) || p.exempt(s.TechnicianID) {
			continue
		}
		if p.DataPolicy.Action == EffectFilter {
			if filter == nil {
				filter = &s.Purposes[i]
			}
			filters = append(filters, p.DataPolicy.RowFilter)
			continue
		}
		if p.DataPolicy.Action == EffectDeny {
			return Verdict{Effect: EffectDeny, Layer: LayerPurpose, Source: p.Name,
				Reason: fmt.Sprintf("purpose %q denies %s of data classified %s to everyone but its members and exceptions (deny wins over the %s layer's grant)",
					p.Name, action, strings.Join(p.Classifications, ", "), v.Layer)}
		}
		if mask == nil {
			mask = &s.Purposes[i]
		}
	}
	if mask != nil {
		return Verdict{Allowed: true, Effect: EffectMask, Layer: LayerPurpose, Source: mask.Name, RowFilters: filters,
			Reason: fmt.Sprintf("the %s layer grants %s, but purpose %q masks data classified %s for everyone but its members and exceptions",
				v.Layer, action, mask.Name, strings.Join(mask.Classifications, ", "))}
	}
	if filter != nil {
		return Verdict{Allowed: true, Effect: EffectAllow, Layer: LayerPurpose, Source: filter.Name, RowFilters: filters,
			Reason: fmt.Sprintf("the %s layer grants %s; purpose %q limits the rows of data classified %s to those where %s",
				v.Layer, action, filter.Name, strings.Join(filter.Classifications, ", "), strings.Join(filters, " AND "))}
	}
	return v
}
