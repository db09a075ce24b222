package domain

import (
	"encoding/json"
	"errors"
	"testing"
)

func userDoc() map[string]any {
	var doc map[string]any
	_ = json.Unmarshal([]byte(`{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
		"id": "tech_1", "externalId": "Ext-1", "userName": "Ada@Acme.test", "active": true,
		"name": {"givenName": "Ada", "familyName": "Lovelace"},
		"emails": [{"value": "Ada@Acme.test", "type": "work", "primary": true}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "IT", "employeeNumber": "7"}
	}`), &doc)
	return doc
}

func TestFilters(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		{`userName eq "ada@acme.test"`, true},
		{`UserName EQ "ADA@ACME.TEST"`, true},
		{`externalId eq "ext-1"`, false}, // caseExact
		{`externalId eq "Ext-1"`, true},
		{`externalId eq Ext-1`, true}, // unquoted, as Entra ID sends it
		{`emails[type eq "work"].value eq "ada@acme.test"`, true},
		{`emails[type eq "home"].value eq "ada@acme.test"`, false},
		{`emails.value eq "ada@acme.test"`, true},
		{`emails eq "ada@acme.test"`, true},
		{`userName eq "ada@acme.test" and active eq true`, true},
		{`userName eq "x" or name.familyName sw "love"`, true},
		{`not (active eq true)`, false},
		{`active eq "True"`, true},
		{`department eq "it"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"`, true},
		{`title pr`, false},
		{`name.givenName co "d"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			exp, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckFilter(exp, UserFilterable); err != nil {
				t.Fatal(err)
			}
			if got := Match(userDoc(), exp); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`nickName eq "x"`, `userName eq`, `userName zz "x"`, `(`, `emails[nickName eq "x"]`} {
		exp, err := ParseFilter(bad)
		if err == nil {
			err = CheckFilter(exp, UserFilterable)
		}
		var se *ScimError
		if !errors.As(err, &se) || se.Status != 400 || se.ScimType != "invalidFilter" {
			t.Errorf("%s: %v, want 400 invalidFilter", bad, err)
		}
	}
}

func TestApplyPatch(t *testing.T) {
	doc := userDoc()
	ops, err := ParsePatch([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","value":{"name.givenName":"Augusta","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Ops","Active":"False"}},
		{"op":"Add","path":"phoneNumbers[type eq \"work\"].value","value":"+1 555"},
		{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"},
		{"op":"replace","path":"emails[type eq \"work\"].value","value":"aug@acme.test"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyPatch(doc, ops); err != nil {
		t.Fatal(err)
	}
	ent := GetObject(doc, SchemaEnterprise)
	if GetString(GetObject(doc, "name"), "givenName") != "Augusta" || ent["department"] != "Ops" || ent["employeeNumber"] != nil {
		t.Fatalf("doc: %v", doc)
	}
	if active, _ := Bool(mustGetAny(doc, "active")); active {
		t.Fatalf("active: %v", doc)
	}
	if phones := doc["phoneNumbers"].([]any); phones[0].(map[string]any)["value"] != "+1 555" {
		t.Fatalf("phones: %v", phones)
	}
	if emails := doc["emails"].([]any); len(emails) != 1 || emails[0].(map[string]any)["value"] != "aug@acme.test" {
		t.Fatalf("emails: %v", emails)
	}

	group := map[string]any{"displayName": "G", "members": []any{map[string]any{"value": "a"}, map[string]any{"value": "b"}, map[string]any{"value": "c"}}}
	ops, _ = ParsePatch([]byte(`{"Operations":[{"op":"Remove","path":"members","value":[{"value":"a"},{"value":"c"}]},{"op":"add","path":"members","value":[{"value":"d"},{"value":"b"}]},{"op":"remove","path":"members[value eq \"d\"]"}]}`))
	if err := ApplyPatch(group, ops); err != nil {
		t.Fatal(err)
	}
	if m := group["members"].([]any); len(m) != 1 || m[0].(map[string]any)["value"] != "b" {
		t.Fatalf("members: %v", m)
	}
	for _, bad := range []string{`{}`, `{"Operations":[{"op":"move","path":"x"}]}`, `{"Operations":[{"op":"remove"}]}`, `[]`} {
		if _, err := ParsePatch([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	ops, _ = ParsePatch([]byte(`{"Operations":[{"op":"replace","path":"urn:example:other:attr","value":1}]}`))
	if err := ApplyPatch(userDoc(), ops); err == nil {
		t.Error("unknown schema path accepted")
	}
}

func mustGetAny(doc map[string]any, k string) any { v, _ := Get(doc, k); return v }

func TestProject(t *testing.T) {
	got := Project(userDoc(), "userName,name.familyName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "")
	if got["id"] != "tech_1" || got["userName"] == nil || got["active"] != nil || GetObject(got, "name")["givenName"] != nil ||
		GetObject(got, SchemaEnterprise)["department"] != "IT" || GetObject(got, SchemaEnterprise)["employeeNumber"] != nil {
		t.Fatalf("attributes: %v", got)
	}
	got = Project(userDoc(), "", "emails,id,name.givenName")
	if got["emails"] != nil || got["id"] == nil || GetObject(got, "name")["givenName"] != nil || GetObject(got, "name")["familyName"] == nil {
		t.Fatalf("excludedAttributes: %v", got)
	}
}

// FuzzFilter: any filter string parses or is refused with 400
// invalidFilter; a checked one evaluates without panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `emails[type eq "work"].value eq "x"`, `externalId eq abc`, `not (active eq true) or title pr`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`, `members[value eq "1"]`, `a[b[c eq 1]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, err := ParseFilter(s)
		if err != nil {
			var se *ScimError
			if !errors.As(err, &se) || se.ScimType != "invalidFilter" {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if CheckFilter(exp, UserFilterable) == nil {
			Match(userDoc(), exp)
		}
		if CheckFilter(exp, GroupFilterable) == nil {
			Match(map[string]any{"id": "g", "displayName": "G", "members": []any{map[string]any{"value": "a"}}}, exp)
		}
	})
}

// FuzzPatch: any PatchOp body is applied or refused with a SCIM error;
// never a panic.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"Operations":[{"op":"Replace","value":{"name.givenName":"X","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"D"}}]}`))
	f.Add([]byte(`{"Operations":[{"op":"remove","path":"members[value eq \"a\"]"},{"op":"add","path":"emails[type eq \"work\"].value","value":"x"}]}`))
	f.Add([]byte(`{"Operations":[{"op":"remove","path":"members","value":[{"value":"a"}]},{"op":"replace","path":"active","value":"False"}]}`))
	f.Add([]byte(`{"operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"manager":{"value":"m"}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := ParsePatch(body)
		if err != nil {
			var se *ScimError
			if !errors.As(err, &se) {
				t.Fatalf("not a SCIM error: %v", err)
			}
			return
		}
		if err := ApplyPatch(userDoc(), ops); err != nil {
			var se *ScimError
			if !errors.As(err, &se) || se.Status != 400 {
				t.Fatalf("not a 400 SCIM error: %v", err)
			}
		}
	})
}
