package domain

import (
	"fmt"
	"testing"

	"roster.dev/pkg/profile"
)

// every combination of the three layers — base role × persona ×
// purpose — for a data action (read) on a PII table of snowflake-prod,
// with the effect and the layer that decided; deny wins.
func TestDecideEveryLayerCombination(t *testing.T) {
	const user = "tech_u"
	asset := Asset{Connection: "snowflake-prod", Type: "table", Classifications: []string{"pii"}}
	bases := map[string]Role{
		"Admin":  {Name: "Admin", Permissions: []string{"read", "search", "update_metadata", "users.manage"}},
		"Member": {Name: "Member", Permissions: []string{"read", "search", "annotate"}},
		"Guest":  {Name: "Guest"},
	}
	personas := map[string][]Persona{
		"none":   nil,
		"shares": {{PersonaSpec: PersonaSpec{Name: "analysts", Grants: []Grant{{Connection: "snowflake-prod", AssetTypes: []string{"table", "view"}, Actions: []string{"read", "update_metadata"}}}}}},
		"other":  {{PersonaSpec: PersonaSpec{Name: "lake", Grants: []Grant{{Connection: "databricks", AssetTypes: []string{"table"}, Actions: []string{"read"}}}}}},
	}
	purposes := map[string][]Purpose{
		"none":       nil,
		"shares":     {{PurposeSpec: PurposeSpec{Name: "pii-readers", Classifications: []string{"PII"}, Members: []string{user}, Actions: []string{"read"}}}},
		"masks":      {{PurposeSpec: PurposeSpec{Name: "pii", Classifications: []string{"PII"}, Members: []string{"tech_other"}, DataPolicy: &DataPolicy{Action: EffectMask}}}},
		"exempts":    {{PurposeSpec: PurposeSpec{Name: "pii", Classifications: []string{"PII"}, Members: []string{user}, Actions: []string{"read"}, DataPolicy: &DataPolicy{Action: EffectMask}}}},
		"excepts":    {{PurposeSpec: PurposeSpec{Name: "pii", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectMask, Except: []string{user}}}}},
		"denies":     {{PurposeSpec: PurposeSpec{Name: "pii-locked", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectDeny}}}},
		"mask+deny":  {{PurposeSpec: PurposeSpec{Name: "a", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectMask}}}, {PurposeSpec: PurposeSpec{Name: "b", Classifications: []string{"pii"}, DataPolicy: &DataPolicy{Action: EffectDeny}}}},
		"other-tags": {{PurposeSpec: PurposeSpec{Name: "finance", Classifications: []string{"Finance"}, DataPolicy: &DataPolicy{Action: EffectDeny}}}},
		"filters":    {{PurposeSpec: PurposeSpec{Name: "eu-rows", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectFilter, RowFilter: "region = 'EU'"}}}},
	}
	// want[base][persona][purpose] = "effect/layer".
	granted := func(layer string) map[string]string {
		return map[string]string{"none": "allow/" + layer, "shares": "allow/" + layer, "masks": "mask/purpose", "exempts": "allow/" + layer,
			"excepts": "allow/" + layer, "denies": "deny/purpose", "mask+deny": "deny/purpose", "other-tags": "allow/" + layer, "filters": "allow/purpose"}
	}
	guestAlone := map[string]string{"none": "deny/base_role", "shares": "allow/purpose", "masks": "deny/base_role", "exempts": "allow/purpose",
		"excepts": "deny/base_role", "denies": "deny/base_role", "mask+deny": "deny/base_role", "other-tags": "deny/base_role", "filters": "deny/base_role"}
	want := map[string]map[string]map[string]string{
		"Admin":  {"none": granted("base_role"), "shares": granted("base_role"), "other": granted("base_role")},
		"Member": {"none": granted("base_role"), "shares": granted("base_role"), "other": granted("base_role")},
		"Guest":  {"none": guestAlone, "shares": granted("persona"), "other": guestAlone},
	}
	// A Guest with a persona that shares and a purpose that shares: the
	// persona is evaluated first.
	n := 0
	for b, role := range bases {
		for pe, ps := range personas {
			for pu, us := range purposes {
				s := Subject{TechnicianID: user, Status: StatusActive, BaseRole: role, Personas: ps, Purposes: us}
				v := Decide(s, "read", asset, []string{"read", "query"})
				got := v.Effect + "/" + v.Layer
				if w := want[b][pe][pu]; got != w {
					t.Errorf("%s base role, persona %s, purpose %s: %s (%s), want %s", b, pe, pu, got, v.Reason, w)
				}
				if v.Allowed != (v.Effect != EffectDeny) || v.Reason == "" {
					t.Errorf("%s/%s/%s: inconsistent %+v", b, pe, pu, v)
				}
				if filtered := pu == "filters" && v.Allowed; filtered != (len(v.RowFilters) == 1) {
					t.Errorf("%s/%s/%s: row filters %v", b, pe, pu, v.RowFilters)
				}
				n++
			}
		}
	}
	if n != 3*3*9 {
		t.Fatalf("%d combinations", n)
	}
}

// data policies govern data actions only; a persona grants what the
// base role lacks on its connection's asset types alone; pending and
// deactivated users are denied whatever their layers.
func TestDecideBeyondData(t *testing.T) {
	member := Role{Name: "Member", Permissions: []string{"read"}}
	steward := []Persona{{PersonaSpec: PersonaSpec{Name: "stewards", Grants: []Grant{{Connection: "snowflake-prod", AssetTypes: []string{"table"}, Actions: []string{"update_metadata"}}}}}}
	masks := []Purpose{{PurposeSpec: PurposeSpec{Name: "pii", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectDeny}}}}
	pii := Asset{Connection: "snowflake-prod", Type: "table", Classifications: []string{"PII"}}
	cases := []struct {
		name   string
		s      Subject
		action string
		asset  Asset
		want   string
	}{
		{"metadata not governed by a data policy", Subject{Status: StatusActive, BaseRole: member, Personas: steward, Purposes: masks}, "update_metadata", pii, "allow/persona"},
		{"persona on another asset type", Subject{Status: StatusActive, BaseRole: member, Personas: steward}, "update_metadata", Asset{Connection: "snowflake-prod", Type: "view"}, "deny/base_role"},
		{"persona on another connection", Subject{Status: StatusActive, BaseRole: member, Personas: steward}, "update_metadata", Asset{Connection: "snowflake-dev", Type: "table"}, "deny/base_role"},
		{"mask and row filter", Subject{Status: StatusActive, BaseRole: member, Purposes: []Purpose{
			{PurposeSpec: PurposeSpec{Name: "eu", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectFilter, RowFilter: "region = 'EU'"}}},
			{PurposeSpec: PurposeSpec{Name: "pii", Classifications: []string{"PII"}, DataPolicy: &DataPolicy{Action: EffectMask}}},
		}}, "read", pii, "mask/purpose"},
		{"a read-only guest's persona grants no edit", Subject{Status: StatusActive, BaseRole: Role{Name: "Guest"}, Ceiling: []string{"read", "search", "query"}, Personas: steward}, "update_metadata", pii, "deny/base_role"},
		{"a read-only guest's persona grants reads", Subject{Status: StatusActive, BaseRole: Role{Name: "Guest"}, Ceiling: []string{"read", "search", "query"},
			Personas: []Persona{{PersonaSpec: PersonaSpec{Name: "r", Grants: []Grant{{Connection: "snowflake-prod", AssetTypes: []string{"table"}, Actions: []string{"read"}}}}}}}, "read", pii, "allow/persona"},
		{"pending", Subject{Status: StatusInvited, BaseRole: member}, "read", pii, "deny/base_role"},
		{"deactivated admin", Subject{Status: StatusDisabled, BaseRole: Role{Name: "Admin", Permissions: []string{"read"}}}, "read", pii, "deny/base_role"},
	}
	for _, c := range cases {
		v := Decide(c.s, c.action, c.asset, []string{"read", "query"})
		if got := v.Effect + "/" + v.Layer; got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, v.Reason, c.want)
		}
		if c.name == "mask and row filter" && fmt.Sprint(v.RowFilters) != "[region = 'EU']" {
			t.Errorf("%s: row filters %v", c.name, v.RowFilters)
		}
	}
}

// personas and purposes are checked against the profile's catalog and
// UI areas, every bad field at once.
func TestCheckPersonaAndPurpose(t *testing.T) {
	p, err := profile.Get("atlan")
	if err != nil {
		t.Fatal(err)
	}
	_, err = CheckPersona(p.RolePolicy, PersonaSpec{Name: " ", Grants: []Grant{{Actions: []string{"fly"}}}, UI: []string{"casino"}})
	inv, ok := err.(*InvalidError)
	if !ok || len(inv.Fields) != 5 {
		t.Fatalf("bad persona: %v", err)
	}
	s, err := CheckPersona(p.RolePolicy, PersonaSpec{Name: " snowflake readers ", Grants: []Grant{{Connection: "snowflake-prod", AssetTypes: []string{"view", "table", "table"}, Actions: []string{"read"}}}, UI: []string{"glossary"}})
	if err != nil || s.Name != "snowflake readers" || fmt.Sprint(s.Grants[0].AssetTypes) != "[table view]" {
		t.Fatalf("good persona: %+v %v", s, err)
	}
	_, err = CheckPurpose(p.RolePolicy, PurposeSpec{Name: "pii", DataPolicy: &DataPolicy{Action: "hide"}})
	if inv, ok := err.(*InvalidError); !ok || len(inv.Fields) != 2 {
		t.Fatalf("bad purpose: %v", err)
	}
	if _, err := CheckPurpose(p.RolePolicy, PurposeSpec{Name: "pii", Classifications: []string{"PII"}}); err == nil {
		t.Fatal("a purpose with neither actions nor a data policy")
	}
}

// BenchmarkDecide: one R-9 decision for a Guest holding 5 personas in an
// account of 20 purposes, on a PII table one persona shares (the data
// policy pass runs): the in-process cost of POST …/access/check on an
// atlan account, beside the database reads that load the subject.
func BenchmarkDecide(b *testing.B) {
	var personas []Persona
	for i := range 5 {
		personas = append(personas, Persona{PersonaSpec: PersonaSpec{Name: fmt.Sprint("p", i), Grants: []Grant{
			{Connection: fmt.Sprint("conn-", i), AssetTypes: []string{"table", "view"}, Actions: []string{"read", "update_metadata"}},
			{Connection: fmt.Sprint("conn-", i), AssetTypes: []string{"dashboard"}, Actions: []string{"read"}},
		}}})
	}
	var purposes []Purpose
	for i := range 20 {
		purposes = append(purposes, Purpose{PurposeSpec: PurposeSpec{Name: fmt.Sprint("u", i), Classifications: []string{fmt.Sprint("tag-", i)},
			Members: []string{"tech_other"}, DataPolicy: &DataPolicy{Action: EffectMask}}})
	}
	s := Subject{TechnicianID: "tech_u", Status: StatusActive, BaseRole: Role{Name: "Guest"}, Personas: personas, Purposes: purposes}
	asset := Asset{Connection: "conn-4", Type: "table", Classifications: []string{"tag-19", "PII"}}
	b.ReportAllocs()
	for b.Loop() {
		if v := Decide(s, "read", asset, []string{"read", "query"}); v.Effect != EffectMask {
			b.Fatal(v)
		}
	}
}
