package rolepolicy_test

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/profile"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const operatorToken = "operator-token-for-tests"

// world is embedded NATS with Roster's streams, an "identity" bus that
// publishes what the test asks, and the rolepolicy service behind an HTTP
// server, each service with its own database.
type world struct {
	js         nats.JetStreamContext
	identity   *svctest.Producer
	rolepolicy *eventbus.Bus
	url        string
}

func newWorld(t *testing.T, dbURL string) *world {
	t.Helper()
	nw := svctest.NewNATS(t)
	w := &world{js: nw.JS, identity: svctest.StartProducer(t, nw, dbURL, "identity")}
	w.url, _, w.rolepolicy = svctest.StartService(t, nw, dbURL, rolepolicy.New(), operatorToken)
	return w
}

func accountCreated(profileID, adminID string) *identityv1.AccountCreated {
	return &identityv1.AccountCreated{Name: "Test " + profileID, Profile: profileID, Plan: "pro",
		BillingPeriod: "monthly", Seats: 3, BillingAnchor: "2026-11-01", AdminTechnicianId: adminID,
		AdminEmail: "admin@example.com"}
}

// get sends GET path with the operator token (token "" sends none).
func (w *world) get(t *testing.T, path, token string) (int, http.Header, []byte) {
	t.Helper()
	return svctest.Get(t, w.url+path, token)
}

type roleJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	BuiltIn           bool     `json:"built_in"`
	Permissions       []string `json:"permissions"`
	SiteIDs           []string `json:"site_ids"`
	ExcludedFolderIDs []string `json:"excluded_folder_ids"`
}

type roleList struct {
	Data       []roleJSON `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

type problemJSON struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// waitForRoles polls the role list of acc until it holds n roles.
func (w *world) waitForRoles(t *testing.T, acc string, n int) []roleJSON {
	t.Helper()
	var list roleList
	svctest.Eventually(t, "the built-in roles of "+acc, func() bool {
		status, _, body := w.get(t, "/v1/accounts/"+acc+"/roles", operatorToken)
		if status != http.StatusOK {
			return false
		}
		list = decode[roleList](t, body)
		return len(list.Data) == n
	})
	return list.Data
}

// subjectCount is how many messages a stream holds on one subject.
func (w *world) subjectCount(t *testing.T, stream, subject string) uint64 {
	t.Helper()
	return svctest.SubjectMsgs(t, w.js, stream, subject)[subject]
}

func catalogIDs(t *testing.T, profileID string) []string {
	t.Helper()
	p, err := profile.Get(profileID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range p.RolePolicy.Catalog {
		ids = append(ids, c.ID)
	}
	return ids
}

// I-9: identity's AccountCreated gives the account its profile's
// built-in roles, listed by name, and the first admin the Admin role.
func TestAccountCreatedSetsUpBuiltInRoles(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL)
		cases := []struct {
			account, profile, admin string
			// names are the roles in list order; perms their permissions,
			// where a role missing from perms holds the whole catalog.
			names []string
			perms map[string][]string
		}{
			{"acc_roster", "roster", "tech_roster_admin",
				[]string{"Account manager", "Admin", "Beginner", "Billing"},
				map[string][]string{
					"Account manager": {"system.reports", "system.manage_customers"},
					"Beginner":        {},
					"Billing":         {"system.reports", "system.manage_billing"},
				}},
			{"acc_it", "atera-it", "tech_it_admin",
				[]string{"Admin", "Beginner"},
				map[string][]string{"Beginner": {}}},
		}
		for _, c := range cases {
			w.identity.Emit(t, c.account, accountCreated(c.profile, c.admin))
		}
		adminRole := map[string]string{}
		for _, c := range cases {
			t.Run(c.profile, func(t *testing.T) {
				roles := w.waitForRoles(t, c.account, len(c.names))
				var names []string
				for _, r := range roles {
					names = append(names, r.Name)
					want, ok := c.perms[r.Name]
					if !ok {
						want = catalogIDs(t, c.profile)
					}
					if !r.BuiltIn || !slices.Equal(r.Permissions, want) || !strings.HasPrefix(r.ID, "role_") {
						t.Errorf("role %+v, want built-in with permissions %v", r, want)
					}
					if r.Name == "Admin" {
						adminRole[c.account] = r.ID
					}
				}
				if !slices.Equal(names, c.names) {
					t.Errorf("roles %v, want %v (sorted by name)", names, c.names)
				}

				// Site scope "all" is an empty list, never null (api.md).
				_, _, body := w.get(t, "/v1/accounts/"+c.account+"/roles", operatorToken)
				if n := strings.Count(string(body), `"site_ids":[]`); n != len(c.names) {
					t.Errorf("%d roles with site_ids [], want %d: %s", n, len(c.names), body)
				}
				if n := strings.Count(string(body), `"excluded_folder_ids":[]`); n != len(c.names) {
					t.Errorf("%d roles with excluded_folder_ids [], want %d: %s", n, len(c.names), body)
				}

				// one role, bare, with its version as ETag.
				for _, r := range roles {
					status, h, body := w.get(t, "/v1/accounts/"+c.account+"/roles/"+r.ID, operatorToken)
					if status != http.StatusOK || h.Get("ETag") != `"1"` {
						t.Fatalf("GET role %s: %d, ETag %q: %s", r.Name, status, h.Get("ETag"), body)
					}
					if got := decode[roleJSON](t, body); !equalRoles(got, r) {
						t.Errorf("GET role %s = %+v, want the listed %+v", r.Name, got, r)
					}
				}

				// I-9: the first admin holds Admin, as RoleAssigned says.
				subject := "roster.events.rolepolicy." + c.account + ".role_assigned"
				var msg *nats.RawStreamMsg
				svctest.Eventually(t, "RoleAssigned on "+subject, func() bool {
					var err error
					msg, err = w.js.GetLastMsg("ROSTER_ROLEPOLICY", subject)
					return err == nil
				})
				var assigned rolepolicyv1.RoleAssigned
				if err := proto.Unmarshal(msg.Data, &assigned); err != nil {
					t.Fatal(err)
				}
				if assigned.GetTechnicianId() != c.admin || assigned.GetRoleId() != adminRole[c.account] ||
					assigned.GetRoleName() != "Admin" || assigned.GetMeta().GetAccountId() != c.account {
					t.Errorf("RoleAssigned = %v, want %s holding Admin %s", &assigned, c.admin, adminRole[c.account])
				}
				if typ := msg.Header.Get("ce-type"); typ != "roster.rolepolicy.v1.RoleAssigned" {
					t.Errorf("ce-type %q", typ)
				}
			})
		}

		t.Run("roles of another account are not found", func(t *testing.T) {
			status, _, body := w.get(t, "/v1/accounts/acc_it/roles/"+adminRole["acc_roster"], operatorToken)
			if p := decode[problemJSON](t, body); status != http.StatusNotFound || p.Type != "https://roster.dev/problems/not-found" {
				t.Fatalf("GET another account's role: %d %s", status, body)
			}
		})

		t.Run("pages", func(t *testing.T) {
			var names []string
			path := "/v1/accounts/acc_roster/roles?limit=3"
			for pages := 0; path != ""; pages++ {
				if pages == 3 {
					t.Fatal("more pages than roles")
				}
				status, _, body := w.get(t, path, operatorToken)
				if status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, status, body)
				}
				list := decode[roleList](t, body)
				for _, r := range list.Data {
					names = append(names, r.Name)
				}
				path = ""
				if list.NextCursor != nil {
					path = "/v1/accounts/acc_roster/roles?limit=3&cursor=" + *list.NextCursor
				}
			}
			if want := []string{"Account manager", "Admin", "Beginner", "Billing"}; !slices.Equal(names, want) {
				t.Fatalf("paged roles %v, want %v", names, want)
			}
		})
	})
}

func equalRoles(a, b roleJSON) bool {
	return a.ID == b.ID && a.Name == b.Name && a.BuiltIn == b.BuiltIn && slices.Equal(a.Permissions, b.Permissions) &&
		slices.Equal(a.SiteIDs, b.SiteIDs) && slices.Equal(a.ExcludedFolderIDs, b.ExcludedFolderIDs)
}

// The same AccountCreated arriving again sets the account up once: whether
// the stream drops it (same event id within the duplicate window), the
// inbox does (same event id, past the window), or the account itself does
// (the same account announced with a new event id).
func TestAccountCreatedTwiceSetsUpOnce(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL)
		const acc = "acc_twice"
		ev := accountCreated("roster", "tech_twice_admin")
		w.identity.Emit(t, acc, ev)
		first := w.waitForRoles(t, acc, 4)

		// 1. The same event again: Nats-Msg-Id dedup drops it.
		w.identity.Emit(t, acc, ev)
		// 2. The same event past the duplicate window: another Nats-Msg-Id,
		// the same event id.
		identitySubject := "roster.events.identity." + acc + ".account_created"
		svctest.Eventually(t, "the identity outbox to drain", svctest.OutboxDrained(w.identity.Bus, w.rolepolicy))
		sm, err := w.js.GetLastMsg("ROSTER_IDENTITY", identitySubject)
		if err != nil {
			t.Fatal(err)
		}
		raw := nats.NewMsg(identitySubject)
		raw.Header, raw.Data = sm.Header, sm.Data
		raw.Header.Set(nats.MsgIdHdr, "past-the-window")
		if _, err := w.js.PublishMsg(raw); err != nil {
			t.Fatal(err)
		}
		// 3. The same account with a new event id.
		again := proto.Clone(ev).(*identityv1.AccountCreated)
		again.Meta = nil
		w.identity.Emit(t, acc, again)

		svctest.Eventually(t, "three AccountCreated on the identity stream", func() bool {
			return w.subjectCount(t, "ROSTER_IDENTITY", identitySubject) == 3
		})
		stream, err := w.js.StreamInfo("ROSTER_IDENTITY")
		if err != nil {
			t.Fatal(err)
		}
		svctest.Eventually(t, "rolepolicy to apply (ack) them all", func() bool {
			info, err := w.js.ConsumerInfo("ROSTER_IDENTITY", eventbus.ConsumerName("rolepolicy", "identity"))
			return err == nil && info.AckFloor.Stream >= stream.State.LastSeq && info.NumAckPending == 0
		})
		svctest.Eventually(t, "the outboxes to drain", svctest.OutboxDrained(w.identity.Bus, w.rolepolicy))

		status, _, body := w.get(t, "/v1/accounts/"+acc+"/roles", operatorToken)
		if got := decode[roleList](t, body).Data; status != http.StatusOK || len(got) != 4 || got[0].ID != first[0].ID {
			t.Fatalf("after the copies: %d %s, want the first 4 roles", status, body)
		}
		prefix := "roster.events.rolepolicy." + acc + "."
		if n := w.subjectCount(t, "ROSTER_ROLEPOLICY", prefix+"role_created"); n != 4 {
			t.Errorf("%d RoleCreated, want 4", n)
		}
		if n := w.subjectCount(t, "ROSTER_ROLEPOLICY", prefix+"role_assigned"); n != 1 {
			t.Errorf("%d RoleAssigned, want 1", n)
		}
	})
}

// the permission catalog per profile, and the problems the routes
// answer.
func TestPermissionsAndProblems(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL)

		for _, id := range []string{"atera-it", "atera-msp", "roster"} {
			t.Run("catalog "+id, func(t *testing.T) {
				status, _, body := w.get(t, "/v1/permissions?profile="+id, operatorToken)
				if status != http.StatusOK {
					t.Fatalf("%d %s", status, body)
				}
				type entry struct{ ID, Category, Description string }
				data := decode[struct{ Data []entry }](t, body).Data
				var ids []string
				for _, e := range data {
					ids = append(ids, e.ID)
					if e.Category == "" || e.Description == "" {
						t.Errorf("entry %+v lacks category or description", e)
					}
				}
				if !slices.Equal(ids, catalogIDs(t, id)) {
					t.Errorf("catalog %v, want %v", ids, catalogIDs(t, id))
				}
			})
		}

		cases := []struct {
			name, path, token string
			status            int
			problem, field    string
		}{
			{"no profile", "/v1/permissions", operatorToken, 422, "validation", "profile"},
			{"unknown profile", "/v1/permissions?profile=salesforce", operatorToken, 422, "validation", "profile"},
			{"unknown account", "/v1/accounts/acc_nobody/roles", operatorToken, 404, "not-found", ""},
			{"role of an unknown account", "/v1/accounts/acc_nobody/roles/role_x", operatorToken, 404, "not-found", ""},
			{"bad limit", "/v1/accounts/acc_nobody/roles?limit=501", operatorToken, 422, "validation", "limit"},
			{"bad cursor", "/v1/accounts/acc_nobody/roles?cursor=%25%25", operatorToken, 422, "validation", "cursor"},
			{"no token", "/v1/accounts/acc_nobody/roles", "", 401, "unauthorized", ""},
			{"wrong token", "/v1/permissions?profile=roster", "not-the-operator", 401, "invalid-token", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, h, body := w.get(t, c.path, c.token)
				p := decode[problemJSON](t, body)
				if status != c.status || p.Status != c.status || p.Type != "https://roster.dev/problems/"+c.problem ||
					h.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("%d %s, want %d %s", status, body, c.status, c.problem)
				}
				if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
					t.Fatalf("problem names %+v, want %s", p.Errors, c.field)
				}
			})
		}

		t.Run("unknown role of a known account", func(t *testing.T) {
			w.identity.Emit(t, "acc_known", accountCreated("atera-msp", "tech_1"))
			w.waitForRoles(t, "acc_known", 2)
			status, _, body := w.get(t, "/v1/accounts/acc_known/roles/role_missing", operatorToken)
			if p := decode[problemJSON](t, body); status != 404 || !strings.Contains(p.Detail, "role role_missing") {
				t.Fatalf("%d %s", status, body)
			}
		})
	})
}
