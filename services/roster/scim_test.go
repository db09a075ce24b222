package roster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"roster.dev/pkg/svc/svctest"
)

// scimClient speaks SCIM with exact bodies, as Entra ID and Okta send them.
type scimClient struct {
	t     *testing.T
	base  string
	token string
}

func (s scimClient) do(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
	}
	if len(raw) > 0 && res.StatusCode != 401 && res.Header.Get("Content-Type") != "application/scim+json" {
		s.t.Errorf("%s %s: Content-Type %q", method, path, res.Header.Get("Content-Type"))
	}
	return res.StatusCode, out
}

func filterQuery(f string) string { return "?filter=" + url.QueryEscape(f) }

func scimAccount(t *testing.T, c client, profile, plan string, seats int) (account, scimClient) {
	t.Helper()
	acc := createAccount(t, c, profile, plan, seats)
	code, tok := c.do("POST", "/v1/accounts/"+acc.id+"/tokens", acc.token, map[string]any{"name": "idp", "scopes": []string{"scim"}})
	if code != 201 {
		t.Fatalf("token: %d %v", code, tok)
	}
	return acc, scimClient{t: t, base: c.base + "/scim/v2/" + acc.id, token: tok["token"].(string)}
}

func resources(body map[string]any) []any {
	r, _ := body["Resources"].([]any)
	return r
}

func wantSCIMError(t *testing.T, what string, code int, body map[string]any, status int, scimType string) {
	t.Helper()
	if code != status || body["status"] != fmt.Sprint(status) || (scimType != "" && body["scimType"] != scimType) ||
		fmt.Sprint(body["schemas"]) != "[urn:ietf:params:scim:api:messages:2.0:Error]" {
		t.Fatalf("%s: %d %v, want %d %s", what, code, body, status, scimType)
	}
}

// H-2 with the requests Entra ID's provisioning service sends (its SCIM
// validator's sequence): lookup by userName before create, create,
// lookups by userName in another case and by externalId unquoted, PATCH
// with "Replace" and filtered paths, a path-less replace with dotted and
// full-URN keys, "active": "False", duplicate, unknown id, groups with
// membership add and remove, DELETE as a disable.
func TestSCIMEntraSequence(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		h, _ := startHostAt(t, t.TempDir(), db, fixedClock)
		c := client{t, h.URL()}
		acc, s := scimAccount(t, c, "roster", "growth", 10)

		code, body := s.do("GET", "/Users"+filterQuery(`userName eq "Test_User_ab6490ee@contoso.test"`), "")
		if code != 200 || body["totalResults"] != 0.0 || resources(body) == nil || len(resources(body)) != 0 {
			t.Fatalf("empty lookup: %d %v", code, body)
		}
		create := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.test","active":true,
			"emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.test"}],"meta":{"resourceType":"User"},
			"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},"roles":[],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"IT Support","manager":{"value":"boss-1"}}}`
		code, user := s.do("POST", "/Users", create)
		if code != 201 || user["id"] == nil || user["userName"] != "Test_User_ab6490ee@contoso.test" || user["active"] != true {
			t.Fatalf("create: %d %v", code, user)
		}
		id := user["id"].(string)
		if user["meta"].(map[string]any)["location"] != s.base+"/Users/"+id {
			t.Fatalf("location: %v", user["meta"])
		}
		if ent := user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any); ent["department"] != "IT Support" || ent["employeeNumber"] != "701984" {
			t.Fatalf("enterprise: %v", ent)
		}
		// The technician exists, through the same use case as the API.
		if _, tech := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+id, acc.token, nil); tech["status"] != "invited" || tech["first_name"] != "givenName" {
			t.Fatalf("technician: %v", tech)
		}
		for _, f := range []string{`userName eq "test_user_AB6490EE@contoso.test"`, `externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
			`externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`, `emails[type eq "work"].value eq "Test_User_ab6490ee@contoso.test"`,
			`USERNAME Eq "Test_User_ab6490ee@contoso.test" and active eq true`} {
			code, body := s.do("GET", "/Users"+filterQuery(f), "")
			if code != 200 || body["totalResults"] != 1.0 || resources(body)[0].(map[string]any)["id"] != id {
				t.Fatalf("filter %s: %d %v", f, code, body)
			}
		}
		code, body = s.do("GET", "/Users"+filterQuery(`nickName eq "x"`), "")
		wantSCIMError(t, "unsupported filter", code, body, 400, "invalidFilter")
		code, body = s.do("GET", "/Users"+filterQuery(`userName eq`), "")
		wantSCIMError(t, "malformed filter", code, body, 400, "invalidFilter")

		code, body = s.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"},
			{"op":"Add","path":"phoneNumbers[type eq \"work\"].value","value":"+1 555 0199"}]}`)
		if code != 200 || body["name"].(map[string]any)["familyName"] != "updatedFamilyName" {
			t.Fatalf("patch: %d %v", code, body)
		}
		code, body = s.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{
			"name.givenName":"Changed","displayName":"Changed updatedFamilyName",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"E-42",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Ops"}}]}`)
		ent, _ := body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
		if code != 200 || body["name"].(map[string]any)["givenName"] != "Changed" || ent["employeeNumber"] != "E-42" || ent["department"] != "Ops" {
			t.Fatalf("path-less patch: %d %v", code, body)
		}
		if _, tech := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+id, acc.token, nil); tech["phone"] != "+1 555 0199" || tech["first_name"] != "Changed" {
			t.Fatalf("technician after patches: %v", tech)
		}

		// Duplicate userName; unknown id.
		code, body = s.do("POST", "/Users", create)
		wantSCIMError(t, "duplicate", code, body, 409, "uniqueness")
		code, body = s.do("GET", "/Users/tech_nobody", "")
		wantSCIMError(t, "unknown user", code, body, 404, "")
		code, body = s.do("PATCH", "/Users/tech_nobody", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
		wantSCIMError(t, "patch unknown user", code, body, 404, "")

		// Groups: create, look up without members, add and remove members.
		code, grp := s.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Billing","members":[]}`)
		if code != 201 || grp["id"] == nil {
			t.Fatalf("group: %d %v", code, grp)
		}
		gid := grp["id"].(string)
		code, body = s.do("GET", "/Groups"+filterQuery(`displayName eq "billing"`)+"&excludedAttributes=members", "")
		if code != 200 || body["totalResults"] != 1.0 || resources(body)[0].(map[string]any)["members"] != nil {
			t.Fatalf("group lookup: %d %v", code, body)
		}
		_, second := s.do("POST", "/Users", strings.ReplaceAll(strings.ReplaceAll(create, "Test_User_ab6490ee", "Second_User"), "0a21f0f2", "1b21f0f2"))
		id2 := second["id"].(string)
		code, _ = s.do("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"%s"},{"value":"%s"}]}]}`, id, id2))
		if code != 204 {
			t.Fatalf("add members: %d", code)
		}
		code, _ = s.do("PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"%s"}]}]}`, id2))
		if code != 204 {
			t.Fatalf("remove a listed member: %d", code)
		}
		_, g := s.do("GET", "/Groups/"+gid, "")
		if m := g["members"].([]any); len(m) != 1 || m[0].(map[string]any)["value"] != id {
			t.Fatalf("members after removing one: %v", g)
		}
		// The group's name is the role: pre-assigned before the first login.
		svctest.Eventually(t, "the role requested", func() bool {
			_, r := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+id+"/role", acc.token, nil)
			return r["requested_role"] == "Billing"
		})

		// Deactivation: "False" as a string; the technician is disabled.
		code, body = s.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
		if code != 200 || body["active"] != false {
			t.Fatalf("deactivate: %d %v", code, body)
		}
		if _, tech := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+id, acc.token, nil); tech["status"] != "disabled" {
			t.Fatalf("not disabled: %v", tech)
		}
		// DELETE disables (I-3): the user stays, inactive.
		if code, _ := s.do("DELETE", "/Users/"+id2, ""); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if code, body := s.do("GET", "/Users/"+id2, ""); code != 200 || body["active"] != false {
			t.Fatalf("after delete: %d %v", code, body)
		}
		svctest.Eventually(t, "SCIM as the actor", func() bool {
			_, a := c.do("GET", "/v1/accounts/"+acc.id+"/audit?action=technician.disabled&target="+id2, acc.token, nil)
			d, _ := a["data"].([]any)
			return len(d) == 1 && d[0].(map[string]any)["actor"].(map[string]any)["type"] == "scim"
		})
	})
}

// H-2 with the requests Okta sends (its SCIM 2.0 test suite): lookup with
// startIndex and count, create with a password (never returned), GET,
// PUT, deactivation by a path-less replace, groups with add, filtered
// remove and rename, and paging in a stable order.
func TestSCIMOktaSequence(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	acc, s := scimAccount(t, c, "roster", "growth", 10)

	code, body := s.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "okta.user@acme.test"`)+"&startIndex=1&count=100", "")
	if code != 200 || body["totalResults"] != 0.0 || body["startIndex"] != 1.0 || body["itemsPerPage"] != 0.0 {
		t.Fatalf("lookup: %d %v", code, body)
	}
	code, user := s.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"okta.user@acme.test",
		"name":{"givenName":"Okta","familyName":"User"},"emails":[{"primary":true,"value":"okta.user@acme.test","type":"work"}],
		"displayName":"Okta User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}`)
	if code != 201 || user["password"] != nil || user["externalId"] != "00ujl29u0le5T6Aj10h7" {
		t.Fatalf("create: %d %v", code, user)
	}
	id := user["id"].(string)
	code, got := s.do("GET", "/Users/"+id+"?attributes=userName,name.givenName", "")
	if code != 200 || got["userName"] != "okta.user@acme.test" || got["active"] != nil || got["id"] != id ||
		got["name"].(map[string]any)["givenName"] != "Okta" || got["name"].(map[string]any)["familyName"] != nil {
		t.Fatalf("attributes: %d %v", code, got)
	}
	code, body = s.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"`+id+`","userName":"okta.user@acme.test",
		"name":{"givenName":"Another","familyName":"User"},"emails":[{"primary":true,"value":"okta.user@acme.test","type":"work"}],
		"displayName":"Another User","externalId":"00ujl29u0le5T6Aj10h7","active":true,"password":"t1meMa$heen"}`)
	if code != 200 || body["name"].(map[string]any)["givenName"] != "Another" || body["password"] != nil {
		t.Fatalf("put: %d %v", code, body)
	}

	// Groups.
	code, grp := s.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Test SCIMv2","members":[]}`)
	if code != 201 {
		t.Fatalf("group: %d %v", code, grp)
	}
	gid := grp["id"].(string)
	if code, _ := s.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+id+`","display":"okta.user@acme.test"}]}]}`); code != 204 {
		t.Fatalf("add member: %d", code)
	}
	if code, _ := s.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"`+gid+`","displayName":"Test SCIMv2 renamed"}}]}`); code != 204 {
		t.Fatalf("rename: %d", code)
	}
	if code, _ := s.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+id+`\"]"}]}`); code != 204 {
		t.Fatalf("remove member: %d", code)
	}
	_, g := s.do("GET", "/Groups/"+gid, "")
	if g["displayName"] != "Test SCIMv2 renamed" || len(g["members"].([]any)) != 0 {
		t.Fatalf("group: %v", g)
	}
	code, body = s.do("GET", "/Groups/grp_nobody", "")
	wantSCIMError(t, "unknown group", code, body, 404, "")

	// Deactivation by a path-less replace.
	code, body = s.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	if code != 200 || body["active"] != false {
		t.Fatalf("deactivate: %d %v", code, body)
	}

	// Deactivation by PUT with active false.
	_, other := s.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"put.user@acme.test","name":{"givenName":"Put","familyName":"User"},"active":true}`)
	code, body = s.do("PUT", "/Users/"+other["id"].(string), `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"put.user@acme.test","name":{"givenName":"Put","familyName":"User"},"active":false}`)
	if code != 200 || body["active"] != false {
		t.Fatalf("PUT deactivate: %d %v", code, body)
	}
	if _, tech := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+other["id"].(string), acc.token, nil); tech["status"] != "disabled" {
		t.Fatalf("PUT active false did not disable: %v", tech)
	}

	// Paging: numbers, 1-based, stable order, no overlap.
	for i := range 4 {
		s.do("POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"p%d@acme.test","name":{"givenName":"P","familyName":"%d"},"active":true}`, i, i))
	}
	var seen []string
	for start := 1; ; start += 2 {
		code, page := s.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=2", start), "")
		if code != 200 || page["totalResults"] != 7.0 || page["startIndex"] != float64(start) {
			t.Fatalf("page %d: %d %v", start, code, page)
		}
		for _, r := range resources(page) {
			seen = append(seen, r.(map[string]any)["id"].(string))
		}
		if len(resources(page)) < 2 {
			break
		}
	}
	if len(seen) != 7 {
		t.Fatalf("paged ids: %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("order not stable: %v", seen)
		}
	}
	code, body = s.do("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"p\" and not (userName sw \"put\")","startIndex":1,"count":10,"attributes":["userName"]}`)
	if code != 200 || body["totalResults"] != 4.0 || resources(body)[0].(map[string]any)["name"] != nil {
		t.Fatalf(".search: %d %v", code, body)
	}

	// Root search: users then groups.
	code, body = s.do("POST", "/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"displayName sw \"Test SCIMv2\" or userName eq \"p0@acme.test\"","count":10}`)
	if code != 200 || body["totalResults"] != 2.0 || resources(body)[1].(map[string]any)["id"] != gid {
		t.Fatalf("root .search: %d %v", code, body)
	}

	// The discovery documents carry no empty URI.
	for _, p := range []string{"/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/ResourceTypes/User", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"} {
		code, body := s.do("GET", p, "")
		raw, _ := json.Marshal(body)
		if code != 200 || strings.Contains(string(raw), `"location":""`) || strings.Contains(string(raw), `Uri":""`) || strings.Contains(string(raw), "{scim-base}") {
			t.Fatalf("%s: %d %s", p, code, raw)
		}
	}
	// A token without the scim scope is refused.
	if code, _ := c.do("GET", "/scim/v2/"+acc.id+"/Users", acc.token, nil); code != 200 {
		t.Fatalf("the account token holds every scope: %d", code)
	}
	_, ro := c.do("POST", "/v1/accounts/"+acc.id+"/tokens", acc.token, map[string]any{"name": "ro", "scopes": []string{"technicians:read"}})
	if code, _ := c.do("GET", "/scim/v2/"+acc.id+"/Users", ro["token"].(string), nil); code != 403 {
		t.Fatalf("without the scim scope: %d", code)
	}
}

// S-8: atera answers SCIM for technicians with 403 and a problem naming
// the plan.
func TestSCIMPlanGate(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	_, s := scimAccount(t, c, "atera-msp", "growth", 2)
	code, body := s.do("GET", "/Users", "")
	if code != 403 || body["type"] != "https://roster.dev/problems/plan-gate" || !strings.Contains(body["detail"].(string), "S-8") {
		t.Fatalf("atera SCIM: %d %v", code, body)
	}
}
