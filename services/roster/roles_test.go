package roster

import (
	"fmt"
	"slices"
	"testing"

	"roster.dev/pkg/svc/svctest"
)

// Custom roles and access checks through HTTP with the all-in-one server,
// under atera-msp and roster, on SQLite and PostgreSQL: R-2 (built-in
// roles refused), R-3 and R-4 (custom role CRUD, the whole-role save
// conflict between two editors), R-3 (delete refused while assigned), R-5
// (folder exclusion keeps devices visible but removes remote tools there),
// R-6 (the role reaches the technician after the first login), R-7 (client
// isolation across sites, disabled technicians denied, effective access),
// L-7 (another account's token gets 404 on the new routes).
func TestCustomRolesAndAccess(t *testing.T) {
	t.Parallel()
	for _, profile := range []string{"atera-msp", "roster"} {
		t.Run(profile, func(t *testing.T) {
			svctest.EachBackend(t, func(t *testing.T, db string) {
				h, _ := startHost(t, t.TempDir(), db)
				c := client{t, h.URL()}
				acc := createAccount(t, c, profile, "growth", 4)
				base := "/v1/accounts/" + acc.id

				// Sites and folders come from identity.
				siteA := created(t, c, acc, base+"/sites", map[string]any{"name": "Acme"})
				siteB := created(t, c, acc, base+"/sites", map[string]any{"name": "Globex"})
				servers := created(t, c, acc, base+"/sites/"+siteA+"/folders", map[string]any{"name": "Servers"})
				desks := created(t, c, acc, base+"/sites/"+siteB+"/folders", map[string]any{"name": "Desks"})

				// a custom role limited to site A, whose remote and RMM
				// permissions do not reach the Servers folder. rolepolicy
				// learns the sites from identity's events: until it has,
				// the ids are unknown (422) and nothing is created.
				tier1 := map[string]any{"name": "Tier 1",
					"permissions": []string{"remote.file_transfer", "rmm.edit_devices", "ticketing.all_tickets"},
					"site_ids":    []string{siteA}, "excluded_folder_ids": []string{servers}}
				var role map[string]any
				svctest.EventuallySeen(t, "the custom role", func() bool {
					var code int
					code, role = c.do("POST", base+"/roles", acc.token, tier1)
					return code == 201
				}, func() string { return fmt.Sprint(role) })
				roleID := role["id"].(string)
				rolePath := base + "/roles/" + roleID
				if role["built_in"] != false || role["version"] != 1.0 {
					t.Fatalf("created: %v", role)
				}
				code, body := c.do("POST", base+"/roles", acc.token, map[string]any{"name": "tier 1", "permissions": []string{}})
				if code != 409 || problemType(body) != problems+"role-name-taken" {
					t.Fatalf("same name: %d %v", code, body)
				}

				// two editors read version 1; the first saves, the
				// second gets 412 and must read again.
				code, hdr, _ := svctest.Do(t, "GET", h.URL()+rolePath, acc.token, nil)
				etag := hdr.Get("ETag")
				if code != 200 || etag != `"1"` {
					t.Fatalf("GET role: %d %q", code, etag)
				}
				first := map[string]any{"name": "Tier 1",
					"permissions": []string{"remote.file_transfer", "rmm.edit_devices", "ticketing.all_tickets", "system.reports"},
					"site_ids":    []string{siteA}, "excluded_folder_ids": []string{servers}}
				second := map[string]any{"name": "Tier 1", "permissions": []string{"admin.full"}}
				if code, body := c.do("PUT", rolePath, acc.token, first); code != 428 || problemType(body) != problems+"if-match-required" {
					t.Fatalf("PUT without If-Match: %d %v", code, body)
				}
				if code, body := c.do("PUT", rolePath, acc.token, first, "If-Match", etag); code != 200 || body["version"] != 2.0 {
					t.Fatalf("first editor: %d %v", code, body)
				}
				if code, body := c.do("PUT", rolePath, acc.token, second, "If-Match", etag); code != 412 || problemType(body) != problems+"stale-version" {
					t.Fatalf("second editor: %d %v", code, body)
				}
				if _, got := c.do("GET", rolePath, acc.token, nil); got["version"] != 2.0 || len(got["permissions"].([]any)) != 4 {
					t.Fatalf("after both editors: %v", got)
				}

				// built-in roles are neither edited nor deleted.
				_, list := c.do("GET", base+"/roles", acc.token, nil)
				builtIn := map[string]string{}
				for _, r := range list["data"].([]any) {
					if r := r.(map[string]any); r["built_in"] == true {
						builtIn[r["name"].(string)] = r["id"].(string)
					}
				}
				for _, name := range []string{"Admin", "Beginner"} {
					p := base + "/roles/" + builtIn[name]
					if code, body := c.do("PUT", p, acc.token, map[string]any{"name": name, "permissions": []string{}}, "If-Match", `"1"`); code != 409 ||
						problemType(body) != problems+"built-in-role" {
						t.Fatalf("PUT %s: %d %v", name, code, body)
					}
					if code, body := c.do("DELETE", p, acc.token, nil); code != 409 || problemType(body) != problems+"built-in-role" {
						t.Fatalf("DELETE %s: %d %v", name, code, body)
					}
				}

				// the technician gets Tier 1 once logged in — applied at
				// the first login (roster), assigned after it (atera).
				code, tech := c.do("POST", base+"/technicians", acc.token, technician("tess@acme.test", "Tier 1"))
				if code != 201 {
					t.Fatalf("add technician: %d %v", code, tech)
				}
				techID := tech["id"].(string)
				if profile == "atera-msp" {
					// R-6 (atera): no role change before the first login.
					svctest.Eventually(t, "Beginner assigned", func() bool {
						_, r := c.do("GET", base+"/technicians/"+techID+"/role", acc.token, nil)
						return r["role"] == "Beginner"
					})
					if code, body := c.do("PUT", base+"/technicians/"+techID+"/role", acc.token, map[string]any{"role": roleID}); code != 409 ||
						problemType(body) != problems+"first-login-required" {
						t.Fatalf("assign before first login: %d %v", code, body)
					}
				}
				logIn(t, c, acc, techID, "tess@acme.test")
				if profile == "atera-msp" {
					svctest.Eventually(t, "the first login in rolepolicy", func() bool {
						_, r := c.do("GET", base+"/technicians/"+techID+"/role", acc.token, nil)
						return r["first_login_done"] == true
					})
					if code, body := c.do("PUT", base+"/technicians/"+techID+"/role", acc.token, map[string]any{"role": roleID}); code != 200 {
						t.Fatalf("assign Tier 1: %d %v", code, body)
					}
				}
				svctest.Eventually(t, "Tier 1 held", func() bool {
					_, r := c.do("GET", base+"/technicians/"+techID+"/role", acc.token, nil)
					return r["role"] == "Tier 1"
				})

				check := func(perm, site, folder string) map[string]any {
					t.Helper()
					code, d := c.do("POST", base+"/access/check", acc.token,
						map[string]any{"technician_id": techID, "permission": perm, "site_id": site, "folder_id": folder})
					if code != 200 {
						t.Fatalf("check %s %s %s: %d %v", perm, site, folder, code, d)
					}
					return d
				}
				for _, c := range []struct {
					what, perm, site, folder string
					allowed                  bool
					decision                 string
				}{
					{"on its site", "remote.file_transfer", siteA, "", true, "allowed_by_role"},
					{"R-7 client isolation: another site", "remote.file_transfer", siteB, "", false, "denied_site_scope"},
					{"R-7 client isolation: tickets of another site", "ticketing.all_tickets", siteB, "", false, "denied_site_scope"},
					{"R-7 client isolation: a folder of another site", "ticketing.all_tickets", "", desks, false, "denied_site_scope"},
					{"R-5: remote tools removed in the excluded folder", "remote.file_transfer", "", servers, false, "denied_folder_excluded"},
					{"R-5: RMM removed in the excluded folder", "rmm.edit_devices", siteA, servers, false, "denied_folder_excluded"},
					{"R-5: the folder's devices stay visible", "ticketing.all_tickets", "", servers, true, "allowed_by_role"},
					{"a permission the role lacks", "system.manage_billing", siteA, "", false, "denied_permission"},
				} {
					d := check(c.perm, c.site, c.folder)
					if d["allowed"] != c.allowed || d["decision"] != c.decision || d["reason"] == "" {
						t.Errorf("%s: %v, want %v %s", c.what, d, c.allowed, c.decision)
					}
				}
				// The Admin: every permission, every site, never restricted.
				code, d := c.do("POST", base+"/access/check", acc.token,
					map[string]any{"technician_id": acc.adminID, "permission": "remote.registry_editor", "folder_id": servers})
				if code != 200 || d["allowed"] != true || d["decision"] != "allowed_admin" {
					t.Fatalf("admin: %d %v", code, d)
				}

				// Effective access: site A only, every permission with why,
				// and what the Servers folder loses.
				code, eff := c.do("GET", base+"/technicians/"+techID+"/effective-access", acc.token, nil)
				if code != 200 || eff["role"] != "Tier 1" || eff["all_sites"] != false || len(eff["sites"].([]any)) != 1 {
					t.Fatalf("effective access: %d %v", code, eff)
				}
				site := eff["sites"].([]any)[0].(map[string]any)
				folders := site["excluded_folders"].([]any)
				if site["site_id"] != siteA || len(folders) != 1 || folders[0].(map[string]any)["folder_id"] != servers ||
					!slices.Equal(stringList(folders[0].(map[string]any)["removed_permissions"]), []string{"remote.file_transfer", "rmm.edit_devices"}) {
					t.Fatalf("effective access on site A: %v", site)
				}
				allowed := 0
				for _, p := range site["permissions"].([]any) {
					if p := p.(map[string]any); p["allowed"] == true {
						allowed++
					} else if p["reason"] == "" {
						t.Errorf("no reason: %v", p)
					}
				}
				if allowed != 4 {
					t.Fatalf("%d permissions allowed on site A, want 4: %v", allowed, site)
				}

				// a role held is not deleted.
				code, body = c.do("DELETE", rolePath, acc.token, nil)
				if code != 409 || problemType(body) != problems+"role-in-use" || body["assigned_count"] != 1.0 {
					t.Fatalf("delete while assigned: %d %v", code, body)
				}

				// a disabled technician is denied everything.
				if code, body := c.do("POST", base+"/technicians/"+techID+"/disable", acc.token, nil); code != 200 {
					t.Fatalf("disable: %d %v", code, body)
				}
				svctest.Eventually(t, "the disabled technician denied", func() bool {
					d := check("remote.file_transfer", siteA, "")
					return d["allowed"] == false && d["decision"] == "denied_disabled"
				})
				// A disabled technician still holds the role.
				if code, body := c.do("DELETE", rolePath, acc.token, nil); code != 409 || body["assigned_count"] != 1.0 {
					t.Fatalf("delete while a disabled technician holds it: %d %v", code, body)
				}
				// An unused role is deleted.
				code, temp := c.do("POST", base+"/roles", acc.token, map[string]any{"name": "Temp", "permissions": []string{"system.reports"}})
				if code != 201 {
					t.Fatalf("create Temp: %d %v", code, temp)
				}
				if code, _ := c.do("DELETE", base+"/roles/"+temp["id"].(string), acc.token, nil); code != 204 {
					t.Fatalf("delete Temp: %d", code)
				}
				if code, _ := c.do("GET", base+"/roles/"+temp["id"].(string), acc.token, nil); code != 404 {
					t.Fatalf("GET deleted: %d", code)
				}

				// L-7: another account's token gets 404 on every new route;
				// this account's token cannot name the other's sites.
				other := createAccount(t, c, profile, "growth", 2)
				for _, r := range []struct{ method, path string }{
					{"POST", "/roles"}, {"PUT", "/roles/" + roleID}, {"DELETE", "/roles/" + roleID}, {"POST", "/access/check"},
					{"GET", "/technicians/" + techID + "/effective-access"},
				} {
					if code, body := c.do(r.method, base+r.path, other.token, map[string]any{"name": "X", "permissions": []string{}}, "If-Match", `"2"`); code != 404 {
						t.Errorf("%s %s with another account's token: %d %v", r.method, r.path, code, body)
					}
				}
				otherSite := created(t, c, other, "/v1/accounts/"+other.id+"/sites", map[string]any{"name": "Elsewhere"})
				code, body = c.do("POST", base+"/access/check", acc.token,
					map[string]any{"technician_id": acc.adminID, "permission": "system.reports", "site_id": otherSite})
				if code != 422 || body["errors"].([]any)[0].(map[string]any)["field"] != "site_id" {
					t.Fatalf("another account's site: %d %v", code, body)
				}
				if _, got := c.do("GET", rolePath, acc.token, nil); got["version"] != 2.0 {
					t.Fatalf("the refused requests changed the role: %v", got)
				}
			})
		})
	}
}

// created POSTs body and returns the new resource's id (201).
func created(t *testing.T, c client, acc account, path string, body map[string]any) string {
	t.Helper()
	code, got := c.do("POST", path, acc.token, body)
	if code != 201 {
		t.Fatalf("POST %s: %d %v", path, code, got)
	}
	return got["id"].(string)
}

// logIn gives a technician a temporary password and logs them in: their
// first login (I-6).
func logIn(t *testing.T, c client, acc account, techID, email string) {
	t.Helper()
	const password = "temporary passphrase 7"
	if code, body := c.do("POST", "/v1/accounts/"+acc.id+"/technicians/"+techID+"/password", acc.token, map[string]any{"password": password}); code != 204 {
		t.Fatalf("temporary password: %d %v", code, body)
	}
	if code, s := login(c, acc.id, email, password); code != 200 || s["first_login"] != true {
		t.Fatalf("login: %d %v", code, s)
	}
}

func stringList(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
