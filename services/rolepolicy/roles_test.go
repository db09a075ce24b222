package rolepolicy_test

// Custom roles, the site and folder projection, and the
// access index through identity's events, the HTTP routes and
// the request-reply subject, on SQLite and PostgreSQL. TestMain
// (pgtest.Run) is in service_test.go.

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy"
	"roster.dev/services/rolepolicy/adapters"
	"roster.dev/services/rolepolicy/app"
)

// rolesWorld is assignWorld keeping the service and its database, to
// compare the live access index with one rebuilt from the database.
type rolesWorld struct {
	*assignWorld
	svc *rolepolicy.Service
	db  *store.DB
}

func newRolesWorld(t *testing.T, dbURL string) *rolesWorld {
	t.Helper()
	w := &rolesWorld{assignWorld: &assignWorld{nats: svctest.NewNATS(t)}, svc: rolepolicy.New()}
	w.identity = svctest.StartProducer(t, w.nats, dbURL, "identity")
	w.url, w.db, w.rolepolicy = svctest.StartService(t, w.nats, dbURL, w.svc, assignToken)
	return w
}

type customRole struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	BuiltIn           bool     `json:"built_in"`
	Permissions       []string `json:"permissions"`
	SiteIDs           []string `json:"site_ids"`
	ExcludedFolderIDs []string `json:"excluded_folder_ids"`
	Version           int64    `json:"version"`
}

type checkJSON struct {
	Allowed  bool    `json:"allowed"`
	Reason   string  `json:"reason"`
	Decision string  `json:"decision"`
	SiteID   *string `json:"site_id"`
	Role     *string `json:"role"`
}

func rolesPath(acc string) string { return "/v1/accounts/" + acc + "/roles" }

// do sends a request with the test's operator token and header pairs.
func (w *rolesWorld) do(t *testing.T, method, path string, body any, header ...string) (int, http.Header, []byte) {
	t.Helper()
	return svctest.Do(t, method, w.url+path, assignToken, body, header...)
}

func (w *rolesWorld) check(t *testing.T, acc, tech, perm, site, folder string) checkJSON {
	t.Helper()
	status, _, body := w.do(t, "POST", "/v1/accounts/"+acc+"/access/check",
		map[string]string{"technician_id": tech, "permission": perm, "site_id": site, "folder_id": folder})
	if status != http.StatusOK {
		t.Fatalf("check %s %s %s %s: %d %s", tech, perm, site, folder, status, body)
	}
	return fromJSON[checkJSON](t, body)
}

// custom role CRUD with ETag and If-Match, built-in roles
// refused, names unique case-insensitively, every bad field named, the
// events emitted; on the new roles; the live index equals the one
// rebuilt from the database.
func TestCustomRoles(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newRolesWorld(t, dbURL)
		const acc = "acc_custom"
		w.createAccount(t, acc, "roster", "tech_admin")
		// A folder announced before its site (a redelivery reorders
		// identity's events) is applied once the site is known.
		w.identity.Emit(t, acc, &identityv1.FolderCreated{FolderId: "fld_servers", SiteId: "site_a", Name: "Servers"})
		w.identity.Emit(t, acc,
			&identityv1.SiteCreated{SiteId: "site_a", Name: "Acme"},
			&identityv1.SiteCreated{SiteId: "site_b", Name: "Globex"},
			&identityv1.FolderCreated{FolderId: "fld_desks", SiteId: "site_b", Name: "Desks"})
		w.settle(t)

		tier1 := map[string]any{"name": "Tier 1", "permissions": []string{"ticketing.all_tickets", "remote.file_transfer", "rmm.edit_devices"},
			"site_ids": []string{"site_a"}, "excluded_folder_ids": []string{"fld_servers"}}
		status, h, body := w.do(t, "POST", rolesPath(acc), tier1, "Idempotency-Key", "create-tier1")
		created := fromJSON[customRole](t, body)
		if status != http.StatusCreated || h.Get("ETag") != `"1"` || h.Get("Location") != rolesPath(acc)+"/"+created.ID ||
			created.BuiltIn || created.Version != 1 || !strings.HasPrefix(created.ID, "role_") ||
			!slices.Equal(created.Permissions, []string{"remote.file_transfer", "rmm.edit_devices", "ticketing.all_tickets"}) {
			t.Fatalf("create: %d %v %s", status, h, body)
		}
		// The same key and body: the first answer, no second role.
		status, h, again := w.do(t, "POST", rolesPath(acc), tier1, "Idempotency-Key", "create-tier1")
		if status != http.StatusCreated || string(again) != string(body) || h.Get("Idempotent-Replayed") != "true" || h.Get("ETag") != `"1"` {
			t.Fatalf("replay: %d %s", status, again)
		}

		for _, c := range []struct {
			name   string
			body   map[string]any
			status int
			slug   string
			fields []string
		}{
			{"name taken, other case", map[string]any{"name": "TIER 1", "permissions": []string{}}, 409, "role-name-taken", nil},
			{"a built-in name", map[string]any{"name": "billing", "permissions": []string{}}, 409, "role-name-taken", nil},
			{"unknown permission", map[string]any{"name": "X", "permissions": []string{"system.teleport"}}, 422, "validation", []string{"permissions"}},
			{"no permissions field", map[string]any{"name": "X"}, 422, "validation", []string{"permissions"}},
			{"unknown site and folder", map[string]any{"name": "X", "permissions": []string{}, "site_ids": []string{"site_a", "site_zz"},
				"excluded_folder_ids": []string{"fld_zz"}}, 422, "validation", []string{"site_ids", "excluded_folder_ids"}},
			{"empty name, star permission", map[string]any{"name": "", "permissions": []string{"*"}}, 422, "validation", []string{"name", "permissions"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, _, body := w.do(t, "POST", rolesPath(acc), c.body)
				p := fromJSON[assignProblem](t, body)
				if status != c.status || p.Type != "https://roster.dev/problems/"+c.slug {
					t.Fatalf("%d %s, want %d %s", status, body, c.status, c.slug)
				}
				var fields []string
				for _, e := range p.Errors {
					fields = append(fields, e.Field)
				}
				if !slices.Equal(fields, c.fields) {
					t.Fatalf("fields %v, want %v: %s", fields, c.fields, body)
				}
			})
		}

		// two editors read version 1; the first saves, the second gets
		// 412 and nothing of theirs lands.
		path := rolesPath(acc) + "/" + created.ID
		status, h, _ = w.do(t, "GET", path, nil)
		etag := h.Get("ETag")
		if status != 200 || etag != `"1"` {
			t.Fatalf("GET: %d %q", status, etag)
		}
		if status, _, _ := w.do(t, "GET", path, nil, "If-None-Match", etag); status != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", status)
		}
		first := map[string]any{"name": "Tier 1", "permissions": []string{"ticketing.all_tickets", "remote.file_transfer", "rmm.edit_devices", "system.reports"},
			"site_ids": []string{"site_a"}, "excluded_folder_ids": []string{"fld_servers"}}
		second := map[string]any{"name": "Tier One", "permissions": []string{"admin.full"}}
		status, _, body = w.do(t, "PUT", path, first)
		wantProblem(t, status, body, http.StatusPreconditionRequired, "if-match-required", "")
		status, _, body = w.do(t, "PUT", path, first, "If-Match", "*")
		wantProblem(t, status, body, http.StatusPreconditionRequired, "if-match-required", "")
		status, h, body = w.do(t, "PUT", path, first, "If-Match", etag)
		if got := fromJSON[customRole](t, body); status != 200 || h.Get("ETag") != `"2"` || got.Version != 2 || !slices.Contains(got.Permissions, "system.reports") {
			t.Fatalf("first editor: %d %v %s", status, h, body)
		}
		status, _, body = w.do(t, "PUT", path, second, "If-Match", etag)
		wantProblem(t, status, body, http.StatusPreconditionFailed, "stale-version", "")
		status, _, body = w.do(t, "PUT", path, second, "If-Match", `W/"2"`)
		wantProblem(t, status, body, http.StatusPreconditionFailed, "stale-version", "")
		status, _, body = w.do(t, "PUT", path, map[string]any{"name": "Billing", "permissions": []string{}}, "If-Match", `"2"`)
		wantProblem(t, status, body, http.StatusConflict, "role-name-taken", "")
		status, _, body = w.do(t, "GET", path, nil)
		if got := fromJSON[customRole](t, body); status != 200 || got.Name != "Tier 1" || got.Version != 2 {
			t.Fatalf("after the refused edits: %s", body)
		}

		// built-in roles are neither edited nor deleted, If-Match or not.
		roles := w.rolesByName(t, acc)
		for _, name := range []string{"Admin", "Beginner", "Billing"} {
			p := rolesPath(acc) + "/" + roles[name].ID
			status, _, body = w.do(t, "PUT", p, map[string]any{"name": name, "permissions": []string{}}, "If-Match", `"1"`)
			wantProblem(t, status, body, http.StatusConflict, "built-in-role", "")
			status, _, body = w.do(t, "PUT", p, map[string]any{"name": name, "permissions": []string{}})
			wantProblem(t, status, body, http.StatusConflict, "built-in-role", "")
			status, _, body = w.do(t, "DELETE", p, nil)
			wantProblem(t, status, body, http.StatusConflict, "built-in-role", "")
		}

		// Events: RoleCreated carries the scope, RoleUpdated before and after.
		w.settle(t)
		createdEv := lastEvent[*rolepolicyv1.RoleCreated](t, w, acc)
		if createdEv.GetRoleId() != created.ID || !slices.Equal(createdEv.GetSiteIds(), []string{"site_a"}) ||
			!slices.Equal(createdEv.GetExcludedFolderIds(), []string{"fld_servers"}) || createdEv.GetVersion() != 1 || createdEv.GetBuiltIn() {
			t.Fatalf("RoleCreated: %v", createdEv)
		}
		updated := lastEvent[*rolepolicyv1.RoleUpdated](t, w, acc)
		if updated.GetRoleId() != created.ID || updated.GetVersion() != 2 || len(updated.GetBefore().GetPermissions()) != 3 ||
			!slices.Contains(updated.GetAfter().GetPermissions(), "system.reports") {
			t.Fatalf("RoleUpdated: %v", updated)
		}

		// The role at work: a technician holding it (R-6, roster: applied
		// at the first login).
		w.addTechnician(t, acc, "tech_t1", "tier 1")
		if got := w.firstLogin(t, acc, "tech_t1"); got.Role != "Tier 1" {
			t.Fatalf("tech_t1: %+v", got)
		}
		for _, c := range []struct {
			perm, site, folder string
			allowed            bool
			decision           string
		}{
			{"remote.file_transfer", "site_a", "", true, "allowed_by_role"},
			{"remote.file_transfer", "site_b", "", false, "denied_site_scope"},           // R-7 client isolation
			{"remote.file_transfer", "", "fld_servers", false, "denied_folder_excluded"},
			{"rmm.edit_devices", "site_a", "fld_servers", false, "denied_folder_excluded"},
			{"ticketing.all_tickets", "", "fld_servers", true, "allowed_by_role"}, // devices stay visible
			{"system.manage_billing", "site_a", "", false, "denied_permission"},
		} {
			got := w.check(t, acc, "tech_t1", c.perm, c.site, c.folder)
			if got.Allowed != c.allowed || got.Decision != c.decision || got.Role == nil || *got.Role != "Tier 1" || got.Reason == "" {
				t.Errorf("%s %s %s: %+v, want %v %s", c.perm, c.site, c.folder, got, c.allowed, c.decision)
			}
		}
		// Over NATS request-reply, for other services: the same decision.
		var rep rolepolicyv1.CheckAccessReply
		err := rpc.Call(context.Background(), w.nats.NC, rpc.CheckAccess, &rolepolicyv1.CheckAccessRequest{AccountId: acc,
			TechnicianId: "tech_t1", Permission: "remote.file_transfer", FolderId: "fld_servers"}, &rep)
		if err != nil || rep.GetAllowed() || rep.GetDecision() != rolepolicyv1.CheckAccessReply_DECISION_DENIED_FOLDER_EXCLUDED ||
			rep.GetRoleName() != "Tier 1" || !strings.Contains(rep.GetReason(), "R-5") {
			t.Fatalf("rpc: %v %v", &rep, err)
		}
		// A whole-role update reaches the index at once.
		status, _, body = w.do(t, "PUT", path, map[string]any{"name": "Tier 1", "permissions": []string{"remote.file_transfer"}}, "If-Match", `"2"`)
		if status != 200 {
			t.Fatalf("widen the scope: %d %s", status, body)
		}
		if got := w.check(t, acc, "tech_t1", "remote.file_transfer", "", "fld_servers"); !got.Allowed {
			t.Fatalf("after the update: %+v", got)
		}
		// disabled is always denied, enabled again is not.
		w.identity.Emit(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_t1"})
		w.waitRole(t, acc, "tech_t1", func(v techRoleJSON) bool { return v.Denied })
		if got := w.check(t, acc, "tech_t1", "remote.file_transfer", "site_a", ""); got.Allowed || got.Decision != "denied_disabled" {
			t.Fatalf("disabled: %+v", got)
		}
		w.identity.Emit(t, acc, &identityv1.TechnicianEnabled{TechnicianId: "tech_t1"})
		w.waitRole(t, acc, "tech_t1", func(v techRoleJSON) bool { return !v.Denied })
		if got := w.check(t, acc, "tech_t1", "remote.file_transfer", "site_a", ""); !got.Allowed {
			t.Fatalf("enabled again: %+v", got)
		}

		// a role held is not deleted; the answer says by how many.
		status, _, body = w.do(t, "DELETE", path, nil)
		wantProblem(t, status, body, http.StatusConflict, "role-in-use", "")
		if p := fromJSON[map[string]any](t, body); p["assigned_count"] != 1.0 || p["pending_count"] != 0.0 {
			t.Fatalf("role-in-use counts: %s", body)
		}
		// Nor one pre-assigned to a technician who has not logged in yet
		// (roster applies it at the first login, R-6).
		w.addTechnician(t, acc, "tech_t2", "Tier 1")
		if status, body := w.putRole(t, acc, "tech_t1", "Beginner"); status != 200 {
			t.Fatalf("unassign: %d %s", status, body)
		}
		status, _, body = w.do(t, "DELETE", path, nil)
		if p := fromJSON[map[string]any](t, body); status != 409 || p["assigned_count"] != 0.0 || p["pending_count"] != 1.0 {
			t.Fatalf("pre-assigned: %d %s", status, body)
		}
		if status, body := w.putRole(t, acc, "tech_t2", "Beginner"); status != 200 {
			t.Fatalf("pre-assign another role: %d %s", status, body)
		}

		// The live index equals the one rebuilt from the database, as at
		// the next start.
		w.settle(t)
		rebuilt := app.New(w.db, adapters.NewStore(w.db), nil, nil, nil)
		if err := rebuilt.LoadIndex(context.Background()); err != nil {
			t.Fatal(err)
		}
		live, fresh := w.svc.App().Index().Dump(), rebuilt.Index().Dump()
		if !reflect.DeepEqual(live, fresh) {
			t.Fatalf("live index\n%+v\nrebuilt from the database\n%+v", live[acc], fresh[acc])
		}
		if n := len(live[acc].Technicians); n != 3 || len(live[acc].Sites) != 2 || len(live[acc].Folders) != 2 || len(live[acc].Roles) != 5 {
			t.Fatalf("live index of %s: %+v", acc, live[acc])
		}

		status, _, body = w.do(t, "DELETE", path, nil)
		if status != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("delete: %d %s", status, body)
		}
		if status, _, _ := w.do(t, "GET", path, nil); status != 404 {
			t.Fatalf("GET deleted: %d", status)
		}
		if status, _, _ := w.do(t, "DELETE", path, nil); status != 404 {
			t.Fatalf("DELETE again: %d", status)
		}
		w.settle(t)
		if deleted := lastEvent[*rolepolicyv1.RoleDeleted](t, w, acc); deleted.GetRoleId() != created.ID || deleted.GetName() != "Tier 1" || deleted.GetVersion() != 3 {
			t.Fatalf("RoleDeleted: %v", deleted)
		}
		live, fresh = w.svc.App().Index().Dump(), rebuilt.Index().Dump()
		if _, ok := live[acc].Roles[created.ID]; ok {
			t.Fatal("the deleted role is still in the index")
		}
		if err := rebuilt.LoadIndex(context.Background()); err != nil {
			t.Fatal(err)
		}
		if fresh = rebuilt.Index().Dump(); !reflect.DeepEqual(live, fresh) {
			t.Fatalf("after the delete: live %+v, rebuilt %+v", live[acc], fresh[acc])
		}
	})
}

// custom roles are unlimited (no plan gate in rolepolicy): a hundred
// roles, listed in pages.
func TestCustomRolesUnlimited(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newRolesWorld(t, dbURL)
		const acc = "acc_many"
		w.createAccount(t, acc, "atera-msp", "tech_admin")
		for i := range 100 {
			status, _, body := w.do(t, "POST", rolesPath(acc), map[string]any{"name": fmt.Sprintf("Role %03d", i), "permissions": []string{"system.reports"}})
			if status != http.StatusCreated {
				t.Fatalf("role %d: %d %s", i, status, body)
			}
		}
		status, _, body := w.do(t, "GET", rolesPath(acc)+"?limit=500", nil)
		if list := fromJSON[struct{ Data []customRole }](t, body); status != 200 || len(list.Data) != 102 {
			t.Fatalf("list: %d, %d roles", status, len(list.Data))
		}
	})
}

// The problems of the access routes, and L-7: another account's ids are
// unknown.
func TestAccessProblems(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newRolesWorld(t, dbURL)
		w.createAccount(t, "acc_1", "roster", "tech_1")
		w.createAccount(t, "acc_2", "roster", "tech_2")
		w.identity.Emit(t, "acc_2", &identityv1.SiteCreated{SiteId: "site_2", Name: "Other"})
		w.settle(t)
		check := "/v1/accounts/acc_1/access/check"
		for _, c := range []struct {
			name   string
			path   string
			body   any
			status int
			slug   string
			field  string
		}{
			{"no technician", check, map[string]string{"permission": "system.reports"}, 422, "validation", "technician_id"},
			{"another account's technician", check, map[string]string{"technician_id": "tech_2", "permission": "system.reports"}, 422, "validation", "technician_id"},
			{"unknown permission", check, map[string]string{"technician_id": "tech_1", "permission": "system.teleport"}, 422, "validation", "permission"},
			{"another account's site", check, map[string]string{"technician_id": "tech_1", "permission": "system.reports", "site_id": "site_2"}, 422, "validation", "site_id"},
			{"unknown folder", check, map[string]string{"technician_id": "tech_1", "permission": "system.reports", "folder_id": "fld_x"}, 422, "validation", "folder_id"},
			{"unknown field", check, map[string]string{"technician_id": "tech_1", "permission": "system.reports", "device": "x"}, 422, "validation", "device"},
			{"unknown account", "/v1/accounts/acc_nobody/access/check", map[string]string{"technician_id": "tech_1", "permission": "system.reports"}, 404, "not-found", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, _, body := w.do(t, "POST", c.path, c.body)
				wantProblem(t, status, body, c.status, c.slug, c.field)
			})
		}
		status, _, body := w.do(t, "GET", "/v1/accounts/acc_1/technicians/tech_2/effective-access", nil)
		wantProblem(t, status, body, 404, "not-found", "")

		// Over request-reply, unknown ids are denied with what was unknown.
		var rep rolepolicyv1.CheckAccessReply
		err := rpc.Call(context.Background(), w.nats.NC, rpc.CheckAccess, &rolepolicyv1.CheckAccessRequest{AccountId: "acc_1",
			TechnicianId: "tech_1", Permission: "system.reports", SiteId: "site_2"}, &rep)
		if err != nil || rep.GetAllowed() || rep.GetDecision() != rolepolicyv1.CheckAccessReply_DECISION_DENIED_UNKNOWN_SITE {
			t.Fatalf("rpc unknown site: %v %v", &rep, err)
		}
		err = rpc.Call(context.Background(), w.nats.NC, rpc.CheckAccess, &rolepolicyv1.CheckAccessRequest{AccountId: "acc_1",
			TechnicianId: "tech_1", Permission: "ticketing.auto_assignment", SiteId: ""}, &rep)
		if err != nil || !rep.GetAllowed() || rep.GetDecision() != rolepolicyv1.CheckAccessReply_DECISION_ALLOWED_ADMIN {
			t.Fatalf("rpc admin: %v %v", &rep, err)
		}
	})
}

func (w *rolesWorld) rolesByName(t *testing.T, acc string) map[string]customRole {
	t.Helper()
	status, _, body := w.do(t, "GET", rolesPath(acc)+"?limit=500", nil)
	if status != 200 {
		t.Fatalf("roles: %d %s", status, body)
	}
	out := map[string]customRole{}
	for _, r := range fromJSON[struct{ Data []customRole }](t, body).Data {
		out[r.Name] = r
	}
	return out
}

// lastEvent returns the last event of type E rolepolicy emitted for acc.
func lastEvent[E eventbus.Event](t *testing.T, w *rolesWorld, acc string) E {
	t.Helper()
	var ev E
	ev = ev.ProtoReflect().New().Interface().(E)
	subject := eventbus.Subject(ev.ProtoReflect().Descriptor().FullName(), acc)
	msg, err := w.nats.JS.GetLastMsg("ROSTER_ROLEPOLICY", subject)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := proto.Unmarshal(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// R-3, I-9: a custom role with admin.full is a scoped admin, not the Admin
// role: it does not keep an account's last admin, and RoleAssigned does
// not mark it admin_role (identity counts admins from it).
func TestScopedAdminIsNotTheAdminRole(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newRolesWorld(t, dbURL)
		const acc = "acc_scoped"
		w.createAccount(t, acc, "atera-msp", "tech_admin")
		w.firstLogin(t, acc, "tech_admin")
		w.identity.Emit(t, acc, &identityv1.SiteCreated{SiteId: "site_a", Name: "Acme"})
		w.settle(t)
		status, _, body := w.do(t, "POST", rolesPath(acc), map[string]any{"name": "Site admin", "permissions": []string{"admin.full"},
			"site_ids": []string{"site_a"}})
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, body)
		}
		status, body = w.putRole(t, acc, "tech_admin", "Site admin")
		wantProblem(t, status, body, http.StatusConflict, "last-admin", "")

		w.addTechnician(t, acc, "tech_2", "")
		w.firstLogin(t, acc, "tech_2")
		if status, body := w.putRole(t, acc, "tech_2", "site admin"); status != 200 {
			t.Fatalf("assign the scoped admin: %d %s", status, body)
		}
		w.settle(t)
		if got := w.assigned(t, acc, "tech_2"); len(got) != 2 || got[1].GetRoleName() != "Site admin" || got[1].GetAdminRole() {
			t.Fatalf("RoleAssigned: %v", got)
		}
		// Full access on its site, none elsewhere, and out of auto-assignment.
		if d := w.check(t, acc, "tech_2", "remote.registry_editor", "site_a", ""); !d.Allowed || !strings.Contains(d.Reason, "admin.full") {
			t.Fatalf("on its site: %+v", d)
		}
		if d := w.check(t, acc, "tech_2", "ticketing.auto_assignment", "site_a", ""); d.Allowed {
			t.Fatalf("auto-assignment: %+v", d)
		}
		if d := w.check(t, acc, "tech_admin", "ticketing.auto_assignment", "site_a", ""); !d.Allowed || d.Decision != "allowed_admin" {
			t.Fatalf("the Admin in auto-assignment: %+v", d)
		}
	})
}
