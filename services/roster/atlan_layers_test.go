package roster

import (
	"fmt"
	"strings"
	"testing"

	"roster.dev/pkg/svc/svctest"
)

// check asks POST …/access/check and returns "effect/layer".
func check(t *testing.T, c client, acc account, tech, action, connection, typ string, tags ...string) string {
	t.Helper()
	code, v := c.do("POST", "/v1/accounts/"+acc.id+"/access/check", acc.token, map[string]any{
		"technician_id": tech, "action": action,
		"asset": map[string]any{"connection": connection, "type": typ, "classifications": tags},
	})
	if code != 200 {
		t.Fatalf("check %s %s on %s/%s: %d %v", tech, action, connection, typ, code, v)
	}
	if v["reason"] == "" || v["allowed"] != (v["effect"] != "deny") {
		t.Fatalf("verdict: %v", v)
	}
	return fmt.Sprintf("%s/%s", v["effect"], v["layer"])
}

// personas and purposes through the API. A Guest invited with a
// persona reads only the assets the persona shares; a PII purpose masks
// PII data for a Member who is not among its members and leaves the
// members unmasked; effective access lists the three layers; deleting the
// persona takes its grants away; a non-atlan account has no personas —
// on SQLite and PostgreSQL.
func TestAtlanPersonasAndPurposes(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		c, mailDir, _ := atlanHost(t, db)
		acc := atlanAccount(t, c, "premier", 5)
		base := "/v1/accounts/" + acc.id

		svctest.Eventually(t, "the account known to rolepolicy", func() bool {
			code, _ := c.do("GET", base+"/personas", acc.token, nil)
			return code == 200
		})
		// Bad personas are named field by field and change nothing.
		code, body := c.do("POST", base+"/personas", acc.token, map[string]any{
			"name": "", "grants": []any{map[string]any{"connection": "snowflake-prod", "asset_types": []string{}, "actions": []string{"fly"}}}, "ui": []string{"casino"},
		})
		if code != 422 || len(body["errors"].([]any)) != 4 {
			t.Fatalf("bad persona: %d %v", code, body)
		}
		persona := map[string]any{
			"name":   "Snowflake readers",
			"grants": []any{map[string]any{"connection": "snowflake-prod", "asset_types": []string{"table", "view"}, "actions": []string{"read", "update_metadata"}}},
			"ui":     []string{"glossary"},
		}
		code, per := c.do("POST", base+"/personas", acc.token, persona, "Idempotency-Key", "per-1")
		if code != 201 || !strings.HasPrefix(per["id"].(string), "persona_") || per["version"] != 1.0 {
			t.Fatalf("create persona: %d %v", code, per)
		}
		if code, again := c.do("POST", base+"/personas", acc.token, persona, "Idempotency-Key", "per-1"); code != 201 || again["id"] != per["id"] {
			t.Fatalf("retried persona: %d %v", code, again)
		}
		persona["name"] = "SNOWFLAKE readers"
		if code, body := c.do("POST", base+"/personas", acc.token, persona); code != 409 || problemType(body) != problems+"name-taken" {
			t.Fatalf("duplicate persona name: %d %v", code, body)
		}
		perID := per["id"].(string)
		if code, list := c.do("GET", base+"/personas", acc.token, nil); code != 200 || len(list["data"].([]any)) != 1 {
			t.Fatalf("list personas: %d %v", code, list)
		}

		// A Guest invited with the persona reads only what it shares.
		code, body = c.do("POST", base+"/invitations", acc.token, map[string]any{"emails": []string{"gus@atlan.test"}, "base_role": "Guest", "personas": []string{perID}})
		if code != 201 {
			t.Fatalf("invite a guest with a persona: %d %v", code, body)
		}
		gus := body["data"].([]any)[0].(map[string]any)["technician_id"].(string)
		svctest.Eventually(t, "the guest known to rolepolicy", func() bool {
			code, _ := c.do("GET", base+"/technicians/"+gus+"/effective-access", acc.token, nil)
			return code == 200
		})
		if got := check(t, c, acc, gus, "read", "snowflake-prod", "table"); got != "deny/base_role" {
			t.Fatalf("a pending guest: %s", got)
		}
		m := awaitMail(t, mailDir, "gus@atlan.test", "")
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "correct horse battery"}); code != 204 {
			t.Fatalf("accept: %d %v", code, p)
		}
		svctest.Eventually(t, "the guest active with the persona", func() bool {
			_, e := c.do("GET", base+"/technicians/"+gus+"/effective-access", acc.token, nil)
			ps, _ := e["personas"].([]any)
			return e["status"] == "active" && len(ps) == 1
		})
		// S-2: the guest's seat is taken, and shown apart.
		svctest.Eventually(t, "the guest seat shown apart", func() bool {
			_, sub := c.do("GET", base+"/subscription", acc.token, nil)
			sep, _ := sub["separate_seats"].(map[string]any)
			return sep["Guest"] == 1.0 && sub["seats"].(map[string]any)["used"] == 2.0 // and the first admin
		})
		for _, q := range []struct{ action, conn, typ, want string }{
			{"read", "snowflake-prod", "table", "allow/persona"},
			{"read", "snowflake-prod", "view", "allow/persona"},
			{"read", "snowflake-prod", "dashboard", "deny/base_role"},
			{"read", "databricks", "table", "deny/base_role"},
			{"update_metadata", "snowflake-prod", "table", "deny/base_role"}, // the persona grants it; a Guest is read-only
			{"search", "snowflake-prod", "table", "deny/base_role"},
		} {
			if got := check(t, c, acc, gus, q.action, q.conn, q.typ); got != q.want {
				t.Errorf("guest %s on %s/%s: %s, want %s", q.action, q.conn, q.typ, got, q.want)
			}
		}

		_, ge := c.do("GET", base+"/technicians/"+gus+"/effective-access", acc.token, nil)
		if fmt.Sprint(ge["base_role"].(map[string]any)["layer_ceiling"]) != "[read search query]" {
			t.Errorf("the guest's effective access shows no ceiling: %v", ge)
		}

		// A PII purpose masks PII for a Member who is not its member.
		mia := acceptInvite(t, c, mailDir, acc, "mia@atlan.test", "Member")
		svctest.Eventually(t, "the member's seat not among the guests", func() bool {
			_, sub := c.do("GET", base+"/subscription", acc.token, nil)
			sep, _ := sub["separate_seats"].(map[string]any)
			return sep["Guest"] == 1.0 && sub["seats"].(map[string]any)["used"] == 3.0
		})
		code, body = c.do("POST", base+"/purposes", acc.token, map[string]any{"name": "PII", "classifications": []string{"PII"}, "members": []string{"tech_nobody"}, "data_policy": map[string]any{"action": "mask"}})
		if code != 422 || !strings.Contains(fmt.Sprint(body), "tech_nobody") {
			t.Fatalf("a purpose naming no technician: %d %v", code, body)
		}
		code, pur := c.do("POST", base+"/purposes", acc.token, map[string]any{
			"name": "PII", "classifications": []string{"PII"}, "members": []string{acc.adminID}, "actions": []string{"read"},
			"data_policy": map[string]any{"action": "mask"},
		})
		if code != 201 {
			t.Fatalf("create purpose: %d %v", code, pur)
		}
		if got := check(t, c, acc, mia, "read", "snowflake-prod", "table", "PII"); got != "mask/purpose" {
			t.Errorf("member reads PII: %s, want mask/purpose", got)
		}
		if got := check(t, c, acc, mia, "read", "snowflake-prod", "table"); got != "allow/base_role" {
			t.Errorf("member reads untagged: %s", got)
		}
		if got := check(t, c, acc, mia, "annotate", "snowflake-prod", "table", "PII"); got != "allow/base_role" {
			t.Errorf("member annotates PII (not a data action): %s", got)
		}
		if got := check(t, c, acc, acc.adminID, "read", "snowflake-prod", "table", "pii"); got != "deny/base_role" {
			t.Errorf("the admin before accepting: %s", got)
		}
		am := awaitMail(t, mailDir, "admin@atlan.test", "")
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": am.Token, "password": "correct horse battery"}); code != 204 {
			t.Fatalf("the admin accepts: %d %v", code, p)
		}
		svctest.Eventually(t, "the admin active in rolepolicy", func() bool {
			_, e := c.do("GET", base+"/technicians/"+acc.adminID+"/effective-access", acc.token, nil)
			return e["status"] == "active"
		})
		if got := check(t, c, acc, acc.adminID, "read", "snowflake-prod", "table", "pii"); got != "allow/base_role" {
			t.Errorf("the purpose's member reads PII: %s", got)
		}
		// The guest, not a member, reads the PII table masked.
		if got := check(t, c, acc, gus, "read", "snowflake-prod", "table", "PII"); got != "mask/purpose" {
			t.Errorf("guest reads PII: %s", got)
		}
		_, e := c.do("GET", base+"/technicians/"+mia+"/effective-access", acc.token, nil)
		ps, _ := e["purposes"].([]any)
		if e["base_role"].(map[string]any)["name"] != "Member" || len(ps) != 1 || ps[0].(map[string]any)["data_policy"] != "mask" {
			t.Fatalf("Mia's effective access: %v", e)
		}

		// The purpose turned to deny: deny wins over the base role.
		code, pur = c.do("PUT", base+"/purposes/"+pur["id"].(string), acc.token, map[string]any{
			"name": "PII", "classifications": []string{"PII"}, "members": []string{acc.adminID}, "data_policy": map[string]any{"action": "deny"},
		})
		if code != 200 || pur["version"] != 2.0 {
			t.Fatalf("replace purpose: %d %v", code, pur)
		}
		if got := check(t, c, acc, mia, "read", "snowflake-prod", "table", "PII"); got != "deny/purpose" {
			t.Errorf("member reads PII under deny: %s", got)
		}

		// A row filter by tag: allowed, limited to the rows it names.
		code, eu := c.do("POST", base+"/purposes", acc.token, map[string]any{
			"name": "EU customers", "classifications": []string{"Customer"}, "data_policy": map[string]any{"action": "filter"},
		})
		if code != 422 || !strings.Contains(fmt.Sprint(eu), "row_filter") {
			t.Fatalf("a filter without its condition: %d %v", code, eu)
		}
		code, eu = c.do("POST", base+"/purposes", acc.token, map[string]any{
			"name": "EU customers", "classifications": []string{"Customer"}, "data_policy": map[string]any{"action": "filter", "row_filter": "region = 'EU'"},
		})
		if code != 201 {
			t.Fatalf("create a row filter: %d %v", code, eu)
		}
		code, v := c.do("POST", base+"/access/check", acc.token, map[string]any{"technician_id": mia, "action": "read",
			"asset": map[string]any{"connection": "snowflake-prod", "type": "table", "classifications": []string{"customer"}}})
		if code != 200 || v["effect"] != "allow" || v["layer"] != "purpose" || fmt.Sprint(v["row_filters"]) != "[region = 'EU']" {
			t.Fatalf("a member reads a filtered table: %d %v", code, v)
		}

		// Bad checks are named.
		code, body = c.do("POST", base+"/access/check", acc.token, map[string]any{"technician_id": "tech_nobody", "action": "fly", "asset": map[string]any{}})
		if code != 422 || len(body["errors"].([]any)) != 2 {
			t.Fatalf("bad check: %d %v", code, body)
		}

		// Persona replaced, then deleted: the guest loses the grants.
		persona["name"] = "Snowflake readers"
		persona["grants"] = []any{map[string]any{"connection": "snowflake-prod", "asset_types": []string{"view"}, "actions": []string{"read"}}}
		if code, body := c.do("PUT", base+"/personas/"+perID, acc.token, persona); code != 200 || body["version"] != 2.0 {
			t.Fatalf("replace persona: %d %v", code, body)
		}
		if got := check(t, c, acc, gus, "read", "snowflake-prod", "table"); got != "deny/base_role" {
			t.Errorf("guest after the persona narrowed: %s", got)
		}
		// Persona assignment and replacement problems are named.
		for _, q := range []struct {
			method, path string
			body         map[string]any
			code         int
			names        string
		}{
			{"PUT", "/personas/persona_nope", persona, 404, "persona_nope"},
			{"PUT", "/technicians/" + gus + "/personas", map[string]any{"persona_ids": []string{"persona_nope"}}, 422, "persona_nope"},
			{"PUT", "/technicians/" + gus + "/personas", map[string]any{}, 422, "persona_ids"},
			{"PUT", "/technicians/tech_nope/personas", map[string]any{"persona_ids": []string{}}, 404, "tech_nope"},
		} {
			if code, body := c.do(q.method, base+q.path, acc.token, q.body); code != q.code || !strings.Contains(fmt.Sprint(body), q.names) {
				t.Errorf("%s %s: %d %v, want %d naming %s", q.method, q.path, code, body, q.code, q.names)
			}
		}

		// POST …/technicians takes base_role and personas as well.
		if code, body := c.do("POST", base+"/technicians", acc.token, map[string]any{"email": "pat@atlan.test", "role": "Admin", "base_role": "Guest"}); code != 422 || !strings.Contains(fmt.Sprint(body), "base_role") {
			t.Fatalf("role and base_role differ: %d %v", code, body)
		}
		code, pat := c.do("POST", base+"/technicians", acc.token, map[string]any{"email": "pat@atlan.test", "base_role": "Guest", "personas": []string{perID}})
		if code != 201 {
			t.Fatalf("add with base_role and personas: %d %v", code, pat)
		}
		svctest.Eventually(t, "Pat's persona assigned", func() bool {
			_, e := c.do("GET", base+"/technicians/"+pat["id"].(string)+"/effective-access", acc.token, nil)
			ps, _ := e["personas"].([]any)
			return len(ps) == 1 && ps[0].(map[string]any)["id"] == perID
		})
		if code, _ := c.do("DELETE", base+"/personas/"+perID, acc.token, nil); code != 204 {
			t.Fatalf("delete persona: %d", code)
		}
		if code, _ := c.do("GET", base+"/personas/"+perID, acc.token, nil); code != 404 {
			t.Fatalf("deleted persona: %d", code)
		}
		if got := check(t, c, acc, gus, "read", "snowflake-prod", "view"); got != "deny/base_role" {
			t.Errorf("guest after the persona was deleted: %s", got)
		}

		// Personas are the layered model's: a roster account has none.
		other := createAccount(t, c, "roster", "pro", 2)
		var code2 int
		var body2 map[string]any
		svctest.Eventually(t, "the roster account known to rolepolicy", func() bool {
			code2, body2 = c.do("GET", "/v1/accounts/"+other.id+"/personas", other.token, nil)
			return code2 != 404
		})
		if code2 != 409 || problemType(body2) != problems+"personas-unavailable" {
			t.Fatalf("personas on a roster account: %d %v", code2, body2)
		}
	})
}
