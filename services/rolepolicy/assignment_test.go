package rolepolicy_test

// Black-box tests of role assignment (R-6, R-7, I-9) through identity's
// events on a real embedded NATS and the HTTP routes, on SQLite and on
// PostgreSQL. TestMain (pgtest.Run) is in service_test.go.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy"
	"roster.dev/services/rolepolicy/adapters"
)

const assignToken = "operator-token-for-assignment-tests"

// assignWorld is rolepolicy behind an HTTP server, fed by a stand-in
// identity that emits what the test asks.
type assignWorld struct {
	nats       *svctest.World
	identity   *svctest.Producer
	rolepolicy *eventbus.Bus
	url        string
}

func newAssignWorld(t *testing.T, dbURL string) *assignWorld {
	t.Helper()
	w := &assignWorld{nats: svctest.NewNATS(t)}
	w.identity = svctest.StartProducer(t, w.nats, dbURL, "identity")
	w.url, _, w.rolepolicy = svctest.StartService(t, w.nats, dbURL, rolepolicy.New(), assignToken)
	return w
}

// techRoleJSON is the answer of GET and PUT …/technicians/{id}/role.
type techRoleJSON struct {
	TechnicianID    string  `json:"technician_id"`
	RoleID          string  `json:"role_id"`
	Role            string  `json:"role"`
	RequestedRole   *string `json:"requested_role"`
	RequestedRoleID *string `json:"requested_role_id"`
	Status          string  `json:"status"`
	FirstLoginDone  bool    `json:"first_login_done"`
	FirstLoginAt    *string `json:"first_login_at"`
	Denied          bool    `json:"denied"`
}

func (v techRoleJSON) requested() string {
	if v.RequestedRole == nil {
		return "<null>"
	}
	return *v.RequestedRole
}

type assignProblem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func fromJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func rolePath(acc, tech string) string {
	return "/v1/accounts/" + acc + "/technicians/" + tech + "/role"
}

// createAccount announces an account with its first admin and waits until
// rolepolicy knows the admin.
func (w *assignWorld) createAccount(t *testing.T, acc, profileID, adminID string) {
	t.Helper()
	w.identity.Emit(t, acc, &identityv1.AccountCreated{Name: "Test " + acc, Profile: profileID, Plan: "pro",
		BillingPeriod: "monthly", Seats: 5, BillingAnchor: "2026-11-01", AdminTechnicianId: adminID, AdminEmail: "admin@example.com"})
	w.waitRole(t, acc, adminID, func(v techRoleJSON) bool { return v.Role == "Admin" })
}

// addTechnician announces a technician and waits until rolepolicy knows it.
func (w *assignWorld) addTechnician(t *testing.T, acc, id, requested string) techRoleJSON {
	t.Helper()
	w.identity.Emit(t, acc, &identityv1.TechnicianCreated{TechnicianId: id, Email: id + "@example.com",
		Status: "invited", RequestedRole: requested})
	return w.waitRole(t, acc, id, func(techRoleJSON) bool { return true })
}

// firstLogin announces a first login (a new event each call) and waits
// until rolepolicy recorded it.
func (w *assignWorld) firstLogin(t *testing.T, acc, id string) techRoleJSON {
	t.Helper()
	w.identity.Emit(t, acc, &identityv1.FirstLogin{TechnicianId: id, Method: "password"})
	return w.waitRole(t, acc, id, func(v techRoleJSON) bool { return v.FirstLoginDone })
}

// role is GET …/technicians/{id}/role.
func (w *assignWorld) role(t *testing.T, acc, id string) (int, techRoleJSON) {
	t.Helper()
	status, _, body := svctest.Get(t, w.url+rolePath(acc, id), assignToken)
	if status != http.StatusOK {
		return status, techRoleJSON{}
	}
	return status, fromJSON[techRoleJSON](t, body)
}

// waitRole polls GET …/role until it answers 200 and cond holds.
func (w *assignWorld) waitRole(t *testing.T, acc, id string, cond func(techRoleJSON) bool) techRoleJSON {
	t.Helper()
	var last techRoleJSON
	var status int
	svctest.EventuallySeen(t, "the role of "+id, func() bool {
		status, last = w.role(t, acc, id)
		return status == http.StatusOK && cond(last)
	}, func() string { return fmt.Sprintf("%d %+v", status, last) })
	return last
}

// put is PUT …/technicians/{id}/role {"role": role}, with an
// Idempotency-Key when key is not "".
func (w *assignWorld) put(t *testing.T, acc, id string, body any, key string) (int, http.Header, []byte) {
	t.Helper()
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	return svctest.Do(t, http.MethodPut, w.url+rolePath(acc, id), assignToken, body, header...)
}

func (w *assignWorld) putRole(t *testing.T, acc, id, role string) (int, []byte) {
	t.Helper()
	status, _, body := w.put(t, acc, id, map[string]string{"role": role}, "")
	return status, body
}

// settle waits until rolepolicy applied every identity event and relayed
// every event it emitted.
func (w *assignWorld) settle(t *testing.T) {
	t.Helper()
	svctest.Eventually(t, "identity's outbox to drain", svctest.OutboxDrained(w.identity.Bus))
	svctest.Eventually(t, "rolepolicy to apply identity's events", svctest.ConsumerSettled(w.nats.JS, "rolepolicy", "identity"))
	svctest.Eventually(t, "rolepolicy's outbox to drain", svctest.OutboxDrained(w.rolepolicy))
}

// assigned returns the RoleAssigned events of an account on the
// ROSTER_ROLEPOLICY stream about technician id ("" for all), in order.
func (w *assignWorld) assigned(t *testing.T, acc, id string) []*rolepolicyv1.RoleAssigned {
	t.Helper()
	subject := eventbus.Subject("roster.rolepolicy.v1.RoleAssigned", acc)
	n := svctest.SubjectMsgs(t, w.nats.JS, "ROSTER_ROLEPOLICY", subject)[subject]
	var out []*rolepolicyv1.RoleAssigned
	if n == 0 {
		return out
	}
	sub, err := w.nats.JS.SubscribeSync(subject, nats.BindStream("ROSTER_ROLEPOLICY"), nats.OrderedConsumer(), nats.DeliverAll())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for range n {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var ev rolepolicyv1.RoleAssigned
		if err := proto.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if id == "" || ev.GetTechnicianId() == id {
			out = append(out, &ev)
		}
	}
	return out
}

// wantProblem checks a problem answer.
func wantProblem(t *testing.T, status int, body []byte, wantStatus int, slug, field string) {
	t.Helper()
	p := fromJSON[assignProblem](t, body)
	if status != wantStatus || p.Status != wantStatus || p.Type != "https://roster.dev/problems/"+slug {
		t.Fatalf("%d %s, want %d %s", status, body, wantStatus, slug)
	}
	if field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != field) {
		t.Fatalf("problem names %+v, want %s", p.Errors, field)
	}
}

// R-6 (roster): Beginner on creation with the requested role recorded,
// applied at the first login, once, whatever the number of FirstLogin
// events; I-9: every RoleAssigned says whether the role is Admin.
func TestRequestedRoleAppliedAtFirstLogin(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_roster"
		w.createAccount(t, acc, "roster", "tech_admin")

		// The first admin's RoleAssigned marks the Admin role.
		w.settle(t)
		admin := w.assigned(t, acc, "tech_admin")
		if len(admin) != 1 || admin[0].GetRoleName() != "Admin" || !admin[0].GetAdminRole() {
			t.Fatalf("first admin's RoleAssigned %v, want Admin with admin_role", admin)
		}

		// Requested by name, in another case: recorded under its name.
		got := w.addTechnician(t, acc, "tech_billing", "billing")
		if got.Role != "Beginner" || got.requested() != "Billing" || got.RequestedRoleID == nil ||
			got.Status != "invited" || got.FirstLoginDone || got.FirstLoginAt != nil || got.Denied {
			t.Fatalf("after TechnicianCreated: %+v", got)
		}
		beginnerID := got.RoleID
		billingID := *got.RequestedRoleID
		w.settle(t)
		created := w.assigned(t, acc, "tech_billing")
		if len(created) != 1 || created[0].GetRoleId() != beginnerID || created[0].GetRoleName() != "Beginner" ||
			created[0].GetRequestedRole() != "Billing" || created[0].GetPreviousRoleId() != "" || created[0].GetAdminRole() {
			t.Fatalf("RoleAssigned on creation: %v", created)
		}

		// FirstLogin twice, two event ids: applied once.
		w.identity.Emit(t, acc, &identityv1.FirstLogin{TechnicianId: "tech_billing", Method: "password"})
		w.identity.Emit(t, acc, &identityv1.FirstLogin{TechnicianId: "tech_billing", Method: "sso"})
		w.settle(t)
		_, got = w.role(t, acc, "tech_billing")
		if got.Role != "Billing" || got.RoleID != billingID || !got.FirstLoginDone || got.FirstLoginAt == nil || got.Status != "active" {
			t.Fatalf("after FirstLogin: %+v", got)
		}
		all := w.assigned(t, acc, "tech_billing")
		if len(all) != 2 {
			t.Fatalf("%d RoleAssigned for tech_billing, want 2 (creation, first login): %v", len(all), all)
		}
		if a := all[1]; a.GetRoleId() != billingID || a.GetRoleName() != "Billing" || a.GetPreviousRoleId() != beginnerID ||
			a.GetRequestedRole() != "Billing" || a.GetAdminRole() || a.GetMeta().GetAccountId() != acc {
			t.Fatalf("RoleAssigned at first login: %v", a)
		}

		// Requested Admin by id: applied with admin_role.
		w.addTechnician(t, acc, "tech_boss", admin[0].GetRoleId())
		got = w.firstLogin(t, acc, "tech_boss")
		if got.Role != "Admin" {
			t.Fatalf("tech_boss after FirstLogin: %+v", got)
		}
		w.settle(t)
		if boss := w.assigned(t, acc, "tech_boss"); len(boss) != 2 || !boss[1].GetAdminRole() || boss[0].GetRequestedRole() != "Admin" {
			t.Fatalf("tech_boss RoleAssigned: %v", boss)
		}

		// An unknown requested role is recorded as given and reported, never
		// applied.
		got = w.addTechnician(t, acc, "tech_janitor", "Janitor")
		if got.Role != "Beginner" || got.requested() != "Janitor" || got.RequestedRoleID != nil {
			t.Fatalf("unknown requested role: %+v", got)
		}
		got = w.firstLogin(t, acc, "tech_janitor")
		if got.Role != "Beginner" || got.requested() != "Janitor" {
			t.Fatalf("unknown requested role after FirstLogin: %+v", got)
		}
		w.settle(t)
		if j := w.assigned(t, acc, "tech_janitor"); len(j) != 1 || j[0].GetRequestedRole() != "Janitor" {
			t.Fatalf("tech_janitor RoleAssigned: %v", j)
		}

		// The same technician announced again with a new event id: nothing
		// happens.
		w.identity.Emit(t, acc, &identityv1.TechnicianCreated{TechnicianId: "tech_billing", RequestedRole: "Admin"})
		w.settle(t)
		if _, again := w.role(t, acc, "tech_billing"); again.Role != "Billing" || again.requested() != "Billing" {
			t.Fatalf("after a second TechnicianCreated: %+v", again)
		}
		if n := len(w.assigned(t, acc, "tech_billing")); n != 2 {
			t.Fatalf("%d RoleAssigned for tech_billing, want still 2", n)
		}
	})
}

// R-6 (roster: assignment before the first login "allowed"): a role given
// before the first login is pre-assigned and applied at FirstLogin.
func TestPreassignedRoleAppliedAtFirstLogin(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_pre"
		w.createAccount(t, acc, "roster", "tech_admin")
		w.addTechnician(t, acc, "tech_am", "Billing")

		status, body := w.putRole(t, acc, "tech_am", "account MANAGER")
		got := fromJSON[techRoleJSON](t, body)
		if status != http.StatusOK || got.TechnicianID != "tech_am" || got.Role != "Beginner" ||
			got.requested() != "Account manager" || got.FirstLoginDone {
			t.Fatalf("PUT before the first login: %d %s", status, body)
		}
		w.settle(t)
		if n := len(w.assigned(t, acc, "tech_am")); n != 1 {
			t.Fatalf("%d RoleAssigned after a pre-assignment, want only the creation's", n)
		}

		got = w.firstLogin(t, acc, "tech_am")
		if got.Role != "Account manager" || got.requested() != "Account manager" {
			t.Fatalf("after FirstLogin: %+v", got)
		}
		w.settle(t)
		all := w.assigned(t, acc, "tech_am")
		if len(all) != 2 || all[1].GetRoleName() != "Account manager" || all[1].GetPreviousRoleId() != all[0].GetRoleId() {
			t.Fatalf("RoleAssigned: %v", all)
		}

		// I-9: pre-assigning a demotion of the only admin is refused too,
		// since FirstLogin would apply it.
		status, body = w.putRole(t, acc, "tech_admin", "Billing")
		wantProblem(t, status, body, http.StatusConflict, "last-admin", "")
	})
}

// R-6 (atera-msp): assigning before the first login is refused; after it
// the role changes at once; the requested role is only recorded.
func TestFirstLoginRequired(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_msp"
		w.createAccount(t, acc, "atera-msp", "tech_admin")
		got := w.addTechnician(t, acc, "tech_1", "Admin")
		if got.Role != "Beginner" || got.requested() != "Admin" {
			t.Fatalf("after TechnicianCreated: %+v", got)
		}

		status, body := w.putRole(t, acc, "tech_1", "Admin")
		wantProblem(t, status, body, http.StatusConflict, "first-login-required", "")

		got = w.firstLogin(t, acc, "tech_1")
		if got.Role != "Beginner" || got.requested() != "Admin" || got.Status != "active" {
			t.Fatalf("atera records the requested role only: %+v", got)
		}

		status, body = w.putRole(t, acc, "tech_1", "admin")
		got = fromJSON[techRoleJSON](t, body)
		if status != http.StatusOK || got.Role != "Admin" || !got.FirstLoginDone {
			t.Fatalf("PUT after the first login: %d %s", status, body)
		}
		w.settle(t)
		all := w.assigned(t, acc, "tech_1")
		if len(all) != 2 {
			t.Fatalf("RoleAssigned: %v", all)
		}
		if a := all[1]; a.GetRoleName() != "Admin" || !a.GetAdminRole() || a.GetPreviousRoleId() != all[0].GetRoleId() ||
			a.GetRoleId() != got.RoleID || a.GetRequestedRole() != "Admin" {
			t.Fatalf("RoleAssigned after PUT: %v", a)
		}
		// The role held again: 200, nothing emitted.
		if status, body := w.putRole(t, acc, "tech_1", got.RoleID); status != http.StatusOK {
			t.Fatalf("PUT the role held: %d %s", status, body)
		}
		w.settle(t)
		if n := len(w.assigned(t, acc, "tech_1")); n != 2 {
			t.Fatalf("%d RoleAssigned after assigning the role held, want 2", n)
		}
	})
}

// I-9: the last technician that is not disabled holding Admin cannot be
// demoted; R-7: a disabled technician is denied and does not count.
func TestLastAdmin(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_admins"
		w.createAccount(t, acc, "atera-msp", "tech_admin")
		w.firstLogin(t, acc, "tech_admin")

		status, body := w.putRole(t, acc, "tech_admin", "Beginner")
		wantProblem(t, status, body, http.StatusConflict, "last-admin", "")

		w.addTechnician(t, acc, "tech_2", "")
		w.firstLogin(t, acc, "tech_2")
		if status, body := w.putRole(t, acc, "tech_2", "Admin"); status != http.StatusOK {
			t.Fatalf("promote tech_2: %d %s", status, body)
		}

		// A disabled second admin does not count.
		w.identity.Emit(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_2"})
		got := w.waitRole(t, acc, "tech_2", func(v techRoleJSON) bool { return v.Status == "disabled" })
		if !got.Denied || got.Role != "Admin" {
			t.Fatalf("disabled: %+v", got)
		}
		status, body = w.putRole(t, acc, "tech_admin", "Beginner")
		wantProblem(t, status, body, http.StatusConflict, "last-admin", "")

		// Enabled again, it counts: the first admin can be demoted.
		w.identity.Emit(t, acc, &identityv1.TechnicianEnabled{TechnicianId: "tech_2"})
		got = w.waitRole(t, acc, "tech_2", func(v techRoleJSON) bool { return v.Status == "active" })
		if got.Denied {
			t.Fatalf("enabled: %+v", got)
		}
		status, body = w.putRole(t, acc, "tech_admin", "Beginner")
		if got := fromJSON[techRoleJSON](t, body); status != http.StatusOK || got.Role != "Beginner" {
			t.Fatalf("demote with a second admin: %d %s", status, body)
		}
		w.settle(t)
		demoted := w.assigned(t, acc, "tech_admin")
		if len(demoted) != 2 || demoted[1].GetAdminRole() || demoted[1].GetPreviousRoleId() != demoted[0].GetRoleId() {
			t.Fatalf("RoleAssigned of the demotion: %v", demoted)
		}

		// Now tech_2 is the last one.
		status, body = w.putRole(t, acc, "tech_2", "Beginner")
		wantProblem(t, status, body, http.StatusConflict, "last-admin", "")
	})
}

// I-9 under concurrency: demoting every admin at once leaves exactly one.
func TestConcurrentDemotionsKeepOneAdmin(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_race"
		w.createAccount(t, acc, "roster", "tech_admin")
		w.firstLogin(t, acc, "tech_admin")
		admins := []string{"tech_admin"}
		for i := range 4 {
			id := fmt.Sprintf("tech_%d", i)
			w.addTechnician(t, acc, id, "Admin")
			w.firstLogin(t, acc, id)
			admins = append(admins, id)
		}
		w.settle(t)

		codes := make([]int, len(admins))
		var wg sync.WaitGroup
		for i, id := range admins {
			wg.Go(func() {
				codes[i], _ = w.putRole(t, acc, id, "Beginner")
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if want := []int{200, 200, 200, 200, 409}; !slices.Equal(codes, want) {
			t.Fatalf("answers %v, want %v", codes, want)
		}
		left := 0
		for _, id := range admins {
			if _, v := w.role(t, acc, id); v.Role == "Admin" {
				left++
			}
		}
		if left != 1 {
			t.Fatalf("%d admins left, want 1", left)
		}
	})
}

// api.md: the same Idempotency-Key with the same body returns the first
// answer and does nothing again; with another body it is refused.
func TestAssignRoleIdempotencyKey(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_idem"
		w.createAccount(t, acc, "atera-it", "tech_admin")
		w.addTechnician(t, acc, "tech_1", "")
		w.firstLogin(t, acc, "tech_1")
		w.addTechnician(t, acc, "tech_2", "")
		w.firstLogin(t, acc, "tech_2")

		req := map[string]string{"role": "Admin"}
		status, h, first := w.put(t, acc, "tech_1", req, "key-1")
		if status != http.StatusOK || h.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first PUT: %d %s", status, first)
		}
		// Demote tech_1 again by hand, then replay: the stored answer, and
		// nothing assigned again.
		if status, body := w.putRole(t, acc, "tech_1", "Beginner"); status != http.StatusOK {
			t.Fatalf("demote: %d %s", status, body)
		}
		status, h, again := w.put(t, acc, "tech_1", req, "key-1")
		if status != http.StatusOK || string(again) != string(first) || h.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s (replayed %q), want %s", status, again, h.Get("Idempotent-Replayed"), first)
		}
		if _, v := w.role(t, acc, "tech_1"); v.Role != "Beginner" {
			t.Fatalf("the replay assigned again: %+v", v)
		}
		w.settle(t)
		if n := len(w.assigned(t, acc, "tech_1")); n != 3 { // creation, PUT Admin, PUT Beginner
			t.Fatalf("%d RoleAssigned for tech_1, want 3", n)
		}

		// Another body under the same key: refused.
		status, _, body := w.put(t, acc, "tech_1", map[string]string{"role": "Beginner"}, "key-1")
		wantProblem(t, status, body, http.StatusUnprocessableEntity, "idempotency-key-reused", "")

		// Keys are scoped to the route: the same key for another technician
		// is another request.
		status, _, body = w.put(t, acc, "tech_2", req, "key-1")
		if got := fromJSON[techRoleJSON](t, body); status != http.StatusOK || got.TechnicianID != "tech_2" || got.Role != "Admin" {
			t.Fatalf("same key, other technician: %d %s", status, body)
		}
	})
}

// The problems of the technician role routes.
func TestTechnicianRoleProblems(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_problems"
		w.createAccount(t, acc, "roster", "tech_admin")
		w.addTechnician(t, acc, "tech_1", "")

		cases := []struct {
			name, method, path, token string
			body                      any
			status                    int
			slug, field               string
		}{
			{"unknown technician", "PUT", rolePath(acc, "tech_nobody"), assignToken, map[string]string{"role": "Admin"}, 404, "not-found", ""},
			{"unknown technician and role", "PUT", rolePath(acc, "tech_nobody"), assignToken, map[string]string{"role": "Nope"}, 404, "not-found", ""},
			{"unknown account", "PUT", rolePath("acc_nobody", "tech_1"), assignToken, map[string]string{"role": "Admin"}, 404, "not-found", ""},
			{"unknown role", "PUT", rolePath(acc, "tech_1"), assignToken, map[string]string{"role": "Janitor"}, 422, "validation", "role"},
			{"another account's role id", "PUT", rolePath(acc, "tech_1"), assignToken, map[string]string{"role": "role_of_someone_else"}, 422, "validation", "role"},
			{"no role", "PUT", rolePath(acc, "tech_1"), assignToken, map[string]string{}, 422, "validation", "role"},
			{"blank role", "PUT", rolePath(acc, "tech_1"), assignToken, map[string]string{"role": "  "}, 422, "validation", "role"},
			{"unknown field", "PUT", rolePath(acc, "tech_1"), assignToken, map[string]string{"role": "Admin", "rank": "x"}, 422, "validation", "rank"},
			{"no token", "PUT", rolePath(acc, "tech_1"), "", map[string]string{"role": "Admin"}, 401, "unauthorized", ""},
			{"GET unknown technician", "GET", rolePath(acc, "tech_nobody"), assignToken, nil, 404, "not-found", ""},
			{"GET unknown account", "GET", rolePath("acc_nobody", "tech_1"), assignToken, nil, 404, "not-found", ""},
			{"GET no token", "GET", rolePath(acc, "tech_1"), "", nil, 401, "unauthorized", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, h, body := svctest.Do(t, c.method, w.url+c.path, c.token, c.body)
				if ct := h.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				wantProblem(t, status, body, c.status, c.slug, c.field)
			})
		}
		if _, v := w.role(t, acc, "tech_1"); v.Role != "Beginner" || v.requested() != "<null>" {
			t.Fatalf("the refused requests changed tech_1: %+v", v)
		}
	})
}

// A FirstLogin that overtakes its TechnicianCreated (a redelivery can
// reorder identity's events) fails, is redelivered, and applies once the
// technician is known.
func TestFirstLoginBeforeTechnicianCreated(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		const acc = "acc_order"
		w.createAccount(t, acc, "roster", "tech_admin")
		// identity created the technician (version 1) before the first
		// login (version 2); the login reaches the stream first.
		created := &identityv1.TechnicianCreated{TechnicianId: "tech_late", RequestedRole: "Billing"}
		login := &identityv1.FirstLogin{TechnicianId: "tech_late", Method: "password"}
		eventbus.Stamp(context.Background(), acc, created).AggregateVersion = 1
		eventbus.Stamp(context.Background(), acc, login).AggregateVersion = 2
		w.identity.Emit(t, acc, login)
		w.identity.Emit(t, acc, created)
		got := w.waitRole(t, acc, "tech_late", func(v techRoleJSON) bool { return v.FirstLoginDone })
		if got.Role != "Billing" || got.Status != "active" {
			t.Fatalf("after both events: %+v", got)
		}
		w.settle(t)
		if all := w.assigned(t, acc, "tech_late"); len(all) != 2 || all[1].GetRoleName() != "Billing" {
			t.Fatalf("RoleAssigned: %v", all)
		}
	})
}

// A batch of events takes its accounts' locks first, in account order
// (eventbus.BeforeBatch); an account not set up yet is skipped.
func TestLockAccountsOfABatch(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newAssignWorld(t, dbURL)
		w.createAccount(t, "acc_lock_b", "roster", "tech_b")
		w.createAccount(t, "acc_lock_a", "roster", "tech_a")
		db := svctest.OpenDB(t, dbURL, w.nats.Dir, "rolepolicy")
		st := adapters.NewStore(db)
		ctx := context.Background()
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			return st.LockAccounts(ctx, tx, []string{"acc_lock_a", "acc_lock_b", "acc_lock_new"})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
