package rolepolicy_test

// Issue 5: "the index rebuilt from a replay of the events equals the live
// one".
//
// rolepolicy's state has two kinds of input: identity's events (the
// consumer) and HTTP commands (custom roles, technician roles). Its clock
// stamps role and assignment times. The live run drives both on a fixed,
// stepped clock; the replay reads ROSTER_IDENTITY and ROSTER_ROLEPOLICY
// back from JetStream and feeds a fresh service on a fresh database and a
// fresh NATS, walking rolepolicy's own stream in order:
//   - an event caused by an identity event (causation id) is reproduced by
//     publishing that identity event, with every identity event before it
//     in identity's stream, through the real consumer, the fresh clock set
//     to the time of the change;
//   - an event of an HTTP command (no identity cause) is reproduced by the
//     same request, at the same clock time, after the identity events that
//     happened before it; the answer must name the same role id and
//     version.
//
// Identity events that change rolepolicy without an event of its own
// (sites, folders, disables, atera's first login) are ordered by their
// time. Then the live and the replayed index must be equal, structurally
// and in every decision, as must every row the index is built from and
// rolepolicy's own events.

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy"
	"roster.dev/services/rolepolicy/access"
)

const replayToken = "operator-token-for-replay-tests"

// replayClock is the clock of identity's bus and of rolepolicy in a
// replay world.
type replayClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *replayClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *replayClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// replayWorld is embedded NATS, a stand-in identity bus and the rolepolicy
// service behind an HTTP server, all on one test clock.
type replayWorld struct {
	nats       *svctest.World
	clock      *replayClock
	identityDB *store.DB
	identity   *eventbus.Bus
	service    *rolepolicy.Service
	db         *store.DB
	bus        *eventbus.Bus
	url        string
}

var replayStart = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func newReplayWorld(t *testing.T, dbURL string) *replayWorld {
	t.Helper()
	ctx := context.Background()
	w := &replayWorld{nats: svctest.NewNATS(t), clock: &replayClock{now: replayStart}, service: rolepolicy.New()}
	w.identityDB = svctest.OpenDB(t, dbURL, w.nats.Dir, "identity")
	w.identity = svctest.StartBus(t, eventbus.Config{Service: "identity", DB: w.identityDB, Connect: w.nats.Connect, Now: w.clock.Now}, nil)
	s := w.service
	w.db = svctest.OpenDB(t, dbURL, w.nats.Dir, s.Name())
	if err := w.db.Migrate(ctx, s.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := idempotency.Init(ctx, w.db); err != nil {
		t.Fatal(err)
	}
	w.bus = svctest.StartBus(t, eventbus.Config{Service: s.Name(), DB: w.db, Connect: w.nats.Connect, Now: w.clock.Now}, func(b *eventbus.Bus) {
		if err := b.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Setup(ctx, svc.Deps{DB: w.db, Bus: b, Operator: httpx.NewOperator(replayToken),
			Connect: w.nats.Connect, Now: w.clock.Now}); err != nil {
			t.Fatal(err)
		}
	})
	r := chi.NewRouter()
	s.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// publish emits identity events (their meta as given, else stamped now)
// and waits until rolepolicy applied them.
func (w *replayWorld) publish(t *testing.T, accountID string, evs ...eventbus.Event) {
	t.Helper()
	ctx := context.Background()
	if err := w.identityDB.InTx(ctx, func(tx *sql.Tx) error { return w.identity.Emit(ctx, tx, accountID, evs...) }); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
}

func (w *replayWorld) settle(t *testing.T) {
	t.Helper()
	svctest.Eventually(t, "identity's outbox to drain", svctest.OutboxDrained(w.identity))
	svctest.Eventually(t, "rolepolicy to apply identity's events", svctest.ConsumerSettled(w.nats.JS, "rolepolicy", "identity"))
	svctest.Eventually(t, "rolepolicy's outbox to drain", svctest.OutboxDrained(w.bus))
}

// do sends an HTTP request with the operator token and waits until what
// it emitted reached the stream.
func (w *replayWorld) do(t *testing.T, method, path string, body any, header ...string) (int, []byte) {
	t.Helper()
	status, _, b := svctest.Do(t, method, w.url+path, replayToken, body, header...)
	w.settle(t)
	return status, b
}

// step moves the clock on: every change of the live run has its own time.
func (w *replayWorld) step() { w.clock.Set(w.clock.Now().Add(time.Second)) }

type replayRole struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

func (w *replayWorld) createRole(t *testing.T, acc string, spec map[string]any) replayRole {
	t.Helper()
	w.step()
	status, body := w.do(t, http.MethodPost, "/v1/accounts/"+acc+"/roles", spec)
	if status != http.StatusCreated {
		t.Fatalf("POST role %v of %s: %d %s", spec["name"], acc, status, body)
	}
	return decode[replayRole](t, body)
}

func (w *replayWorld) assign(t *testing.T, acc, tech, role string, want int) {
	t.Helper()
	w.step()
	if status, body := w.do(t, http.MethodPut, "/v1/accounts/"+acc+"/technicians/"+tech+"/role", map[string]any{"role": role}); status != want {
		t.Fatalf("PUT role %s of %s: %d %s, want %d", role, tech, status, body, want)
	}
}

func (w *replayWorld) identityEvent(t *testing.T, acc string, evs ...eventbus.Event) {
	t.Helper()
	w.step()
	w.publish(t, acc, evs...)
}

func TestReplayReproducesTheAccessIndex(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		live := newReplayWorld(t, dbURL)
		runRolepolicyScenario(t, live)

		freshURL := ""
		if dbURL != "" {
			freshURL = pgtest.DSN(t)
		}
		fresh := newReplayWorld(t, freshURL)
		n := replayRolepolicy(t, live, fresh)
		t.Logf("replayed %+v", n)
		if n.changes < 25 || n.identity < 15 || n.requests < 7 || n.unjournaled < 8 {
			t.Fatalf("replayed %+v: the scenario did not exercise every kind of input", n)
		}

		liveIndex, freshIndex := live.service.App().Index(), fresh.service.App().Index()
		want, got := liveIndex.Dump(), freshIndex.Dump()
		if len(want) != 2 {
			t.Fatalf("the live index holds %d accounts, want 2", len(want))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the replayed index differs from the live one\n live:   %+v\n replay: %+v", want, got)
		}
		// Every decision: each technician × permission × (no site, each
		// site, each folder of the site), and a technician and permission
		// nobody has.
		checks := 0
		for acc, d := range want {
			techs := append(mapKeys(d.Technicians), "tech_nobody")
			perms := append(catalogIDs(t, d.Profile), "no.such_permission")
			places := [][2]string{{"", ""}, {"site_nowhere", ""}}
			for site := range d.Sites {
				places = append(places, [2]string{site, ""})
				for folder := range d.Folders {
					places = append(places, [2]string{site, folder})
				}
			}
			for _, tech := range techs {
				for _, perm := range perms {
					for _, p := range places {
						q := access.Request{TechnicianID: tech, Permission: perm, SiteID: p[0], FolderID: p[1]}
						a, b := liveIndex.Check(acc, q), freshIndex.Check(acc, q)
						checks++
						if !reflect.DeepEqual(a, b) {
							t.Errorf("%s %+v: live %+v, replay %+v", acc, q, a, b)
						}
					}
				}
				if a, b := liveIndex.Explain(acc, tech), freshIndex.Explain(acc, tech); !reflect.DeepEqual(a, b) {
					t.Errorf("%s: explanation of %s differs\n live:   %+v\n replay: %+v", acc, tech, a, b)
				}
			}
		}
		t.Logf("%d decisions compared", checks)

		// The rows the index is built from, ids and times included.
		for _, table := range []struct{ name, order string }{
			{"accounts", "account_id"},
			{"roles", "account_id, role_id"},
			{"role_assignments", "account_id, technician_id"},
			{"technicians", "account_id, technician_id"},
			{"sites", "account_id, site_id"},
			{"folders", "account_id, folder_id"},
		} {
			want, got := dumpRows(t, live.db, table.name, table.order), dumpRows(t, fresh.db, table.name, table.order)
			if len(want) == 0 {
				t.Errorf("%s: the live run left no rows to compare", table.name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s differs after the replay\n live:   %s\n replay: %s", table.name,
					strings.Join(want, "\n         "), strings.Join(got, "\n         "))
			}
		}
		// And rolepolicy's own events, but for their ids.
		wantEvents, gotEvents := journalText(t, live), journalText(t, fresh)
		if !slices.Equal(gotEvents, wantEvents) {
			t.Errorf("rolepolicy's events differ after the replay\n live:   %s\n replay: %s",
				strings.Join(wantEvents, "\n         "), strings.Join(gotEvents, "\n         "))
		}
	})
}

// runRolepolicyScenario drives the live service through every input that
// changes the index: two accounts (roster applies requested roles at the
// first login, atera-msp only records them), sites and folders, custom
// roles created, replaced (and a stale replace refused), deleted and
// created again under the same name, technicians created with requested
// roles, first logins, disables and enables, and roles assigned over HTTP.
func runRolepolicyScenario(t *testing.T, w *replayWorld) {
	t.Helper()
	const ro, am = "acc_replay_roster", "acc_replay_msp"
	w.identityEvent(t, ro, accountCreated("roster", "tech_ro_admin"))
	w.identityEvent(t, am, accountCreated("atera-msp", "tech_am_admin"))
	for _, acc := range []string{ro, am} {
		w.identityEvent(t, acc, &identityv1.SiteCreated{SiteId: "site_a", Name: "Alpha"},
			&identityv1.SiteCreated{SiteId: "site_b", Name: "Beta"})
		w.identityEvent(t, acc, &identityv1.FolderCreated{FolderId: "fold_a1", SiteId: "site_a", Name: "Servers"},
			&identityv1.FolderCreated{FolderId: "fold_b1", SiteId: "site_b", Name: "Laptops"})
	}
	roPerms, amPerms := catalogIDs(t, "roster"), catalogIDs(t, "atera-msp")
	tier1 := w.createRole(t, ro, map[string]any{"name": "Tier 1", "permissions": roPerms[:2],
		"site_ids": []string{"site_a"}, "excluded_folder_ids": []string{"fold_a1"}})
	helpdesk := w.createRole(t, am, map[string]any{"name": "Helpdesk", "permissions": amPerms[1:3],
		"site_ids": []string{"site_b"}})

	w.identityEvent(t, ro, &identityv1.TechnicianCreated{TechnicianId: "tech_ro1", RequestedRole: "Tier 1"},
		&identityv1.TechnicianCreated{TechnicianId: "tech_ro2", RequestedRole: "Admin"})
	w.identityEvent(t, ro, &identityv1.TechnicianCreated{TechnicianId: "tech_ro3"})
	w.identityEvent(t, am, &identityv1.TechnicianCreated{TechnicianId: "tech_am1", RequestedRole: "Helpdesk"},
		&identityv1.TechnicianCreated{TechnicianId: "tech_am2"})
	// atera: no role before the first login.
	w.assign(t, am, "tech_am1", helpdesk.ID, http.StatusConflict)

	// roster applies the requested role at the first login; atera records it.
	login := func(tech string) *identityv1.FirstLogin {
		return &identityv1.FirstLogin{TechnicianId: tech, Method: "password", LoggedInAt: timestamppb.New(w.clock.Now())}
	}
	w.identityEvent(t, ro, login("tech_ro1"))
	w.identityEvent(t, am, login("tech_am1"), login("tech_am2"))
	w.assign(t, am, "tech_am1", "Helpdesk", http.StatusOK)

	// a whole replace, then a stale one.
	w.step()
	spec := map[string]any{"name": "Tier 1", "permissions": roPerms[1:4], "site_ids": []string{"site_a", "site_b"},
		"excluded_folder_ids": []string{"fold_b1"}}
	if status, body := w.do(t, http.MethodPut, "/v1/accounts/"+ro+"/roles/"+tier1.ID, spec, "If-Match", `"1"`); status != http.StatusOK {
		t.Fatalf("replace Tier 1: %d %s", status, body)
	}
	w.step()
	if status, body := w.do(t, http.MethodPut, "/v1/accounts/"+ro+"/roles/"+tier1.ID, spec, "If-Match", `"1"`); status != http.StatusPreconditionFailed {
		t.Fatalf("stale replace of Tier 1: %d %s", status, body)
	}
	w.step()
	if status, body := w.do(t, http.MethodPut, "/v1/accounts/"+am+"/roles/"+helpdesk.ID,
		map[string]any{"name": "Helpdesk", "permissions": amPerms[:4], "excluded_folder_ids": []string{"fold_a1"}},
		"If-Match", `"1"`); status != http.StatusOK {
		t.Fatalf("replace Helpdesk: %d %s", status, body)
	}

	// A role deleted, and its name taken again by a new role (a new id).
	temp := w.createRole(t, ro, map[string]any{"name": "Temp", "permissions": roPerms[:1]})
	w.step()
	if status, body := w.do(t, http.MethodDelete, "/v1/accounts/"+ro+"/roles/"+temp.ID, nil, "If-Match", `"1"`); status != http.StatusNoContent {
		t.Fatalf("delete Temp: %d %s", status, body)
	}
	temp2 := w.createRole(t, ro, map[string]any{"name": "Temp", "permissions": roPerms[2:3], "site_ids": []string{"site_b"}})
	if temp2.ID == temp.ID {
		t.Fatalf("the new Temp has the deleted one's id %s", temp.ID)
	}

	// Disables and enables; the second roster technician becomes Admin at
	// the first login, then is moved to Temp over HTTP.
	w.identityEvent(t, ro, &identityv1.TechnicianDisabled{TechnicianId: "tech_ro1", Reason: "disabled"})
	w.identityEvent(t, am, &identityv1.TechnicianDisabled{TechnicianId: "tech_am2", Reason: "disabled"})
	w.identityEvent(t, ro, login("tech_ro2"))
	w.assign(t, ro, "tech_ro2", "Temp", http.StatusOK)
	w.identityEvent(t, ro, &identityv1.TechnicianEnabled{TechnicianId: "tech_ro1"})
	w.identityEvent(t, ro, login("tech_ro3"))
	w.assign(t, ro, "tech_ro3", tier1.ID, http.StatusOK)
	w.identityEvent(t, ro, &identityv1.TechnicianDisabled{TechnicianId: "tech_ro3", Reason: "disabled"})
	w.step()
}

// replayCounts says what the replay fed the fresh service: changes are
// rolepolicy's events, identity the identity events published, requests
// the HTTP requests, unjournaled the identity events with no event of
// rolepolicy's.
type replayCounts struct {
	changes, identity, requests, unjournaled int
}

func replayRolepolicy(t *testing.T, live, fresh *replayWorld) replayCounts {
	t.Helper()
	identity := readEvents(t, live, "identity")
	journal := readEvents(t, live, "rolepolicy")
	at := map[string]int{} // identity event id → position
	for i, ev := range identity {
		at[ev.GetMeta().GetEventId()] = i
	}
	// causedAt is the time of the first change an identity event caused.
	causedAt := map[string]time.Time{}
	for _, ev := range journal {
		if c := ev.GetMeta().GetCausationId(); c != "" {
			if _, ok := causedAt[c]; !ok {
				causedAt[c] = ev.GetMeta().GetOccurredAt().AsTime()
			}
		}
	}
	var n replayCounts
	next := 0
	feed := func() {
		ev := identity[next]
		next++
		n.identity++
		if ts, ok := causedAt[ev.GetMeta().GetEventId()]; ok {
			fresh.clock.Set(ts)
		} else {
			n.unjournaled++
		}
		fresh.publish(t, ev.GetMeta().GetAccountId(), ev)
	}
	for _, ev := range journal {
		n.changes++
		meta := ev.GetMeta()
		when := meta.GetOccurredAt().AsTime()
		if i, ok := at[meta.GetCausationId()]; ok {
			for next <= i {
				feed()
			}
			continue // or an output of a cause replayed before
		}
		// An HTTP command: first what identity said before it.
		for next < len(identity) && identity[next].GetMeta().GetOccurredAt().AsTime().Before(when) {
			feed()
		}
		fresh.clock.Set(when)
		n.requests++
		acc := meta.GetAccountId()
		var (
			method, path, ifMatch string
			body                  any
			want                  = http.StatusOK
			wantRole              string
			wantVersion           int64
		)
		switch e := ev.(type) {
		case *rolepolicyv1.RoleCreated:
			method, path, want = http.MethodPost, "/v1/accounts/"+acc+"/roles", http.StatusCreated
			body = map[string]any{"name": e.GetName(), "permissions": e.GetPermissions(),
				"site_ids": e.GetSiteIds(), "excluded_folder_ids": e.GetExcludedFolderIds()}
			wantRole, wantVersion = e.GetRoleId(), e.GetVersion()
		case *rolepolicyv1.RoleUpdated:
			method, path = http.MethodPut, "/v1/accounts/"+acc+"/roles/"+e.GetRoleId()
			ifMatch = fmt.Sprintf(`"%d"`, e.GetVersion()-1)
			a := e.GetAfter()
			body = map[string]any{"name": a.GetName(), "permissions": a.GetPermissions(),
				"site_ids": a.GetSiteIds(), "excluded_folder_ids": a.GetExcludedFolderIds()}
			wantRole, wantVersion = e.GetRoleId(), e.GetVersion()
		case *rolepolicyv1.RoleDeleted:
			method, path, want = http.MethodDelete, "/v1/accounts/"+acc+"/roles/"+e.GetRoleId(), http.StatusNoContent
			ifMatch = fmt.Sprintf(`"%d"`, e.GetVersion())
		case *rolepolicyv1.RoleAssigned:
			method, path = http.MethodPut, "/v1/accounts/"+acc+"/technicians/"+e.GetTechnicianId()+"/role"
			body = map[string]any{"role": e.GetRoleId()}
		default:
			t.Fatalf("%T with no identity cause: no request to replay it by", ev)
		}
		var header []string
		if ifMatch != "" {
			header = []string{"If-Match", ifMatch}
		}
		status, got := fresh.do(t, method, path, body, header...)
		if status != want {
			t.Fatalf("replayed %s %s: %d %s, want %d", method, path, status, got, want)
		}
		if wantRole != "" {
			if r := decode[replayRole](t, got); r.ID != wantRole || r.Version != wantVersion {
				t.Fatalf("replayed %s %s made role %s version %d, live %s version %d", method, path, r.ID, r.Version, wantRole, wantVersion)
			}
		}
	}
	for next < len(identity) {
		feed()
	}
	return n
}

// readEvents decodes every event on a service's stream, in stream order.
func readEvents(t *testing.T, w *replayWorld, service string) []eventbus.Event {
	t.Helper()
	stream := eventbus.EventStream(service)
	info, err := w.nats.JS.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventbus.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := w.nats.JS.GetMsg(stream, seq)
		if err != nil {
			t.Fatalf("%s #%d: %v", stream, seq, err)
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(msg.Header.Get(eventbus.HeaderType)))
		if err != nil {
			t.Fatalf("%s #%d: %v", stream, seq, err)
		}
		ev := mt.New().Interface()
		if err := proto.Unmarshal(msg.Data, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.(eventbus.Event))
	}
	return out
}

// journalText is rolepolicy's stream as text: each event with its account
// and time, without its own, correlation and causation ids (new ids in a
// replay).
func journalText(t *testing.T, w *replayWorld) []string {
	t.Helper()
	var out []string
	for _, ev := range readEvents(t, w, "rolepolicy") {
		m := ev.GetMeta()
		acc, when := m.GetAccountId(), m.GetOccurredAt().AsTime()
		c := proto.Clone(ev).(eventbus.Event)
		c.ProtoReflect().Clear(c.ProtoReflect().Descriptor().Fields().ByName("meta"))
		out = append(out, fmt.Sprintf("%s %s %s %v", when.Format(time.RFC3339Nano), acc, ev.ProtoReflect().Descriptor().Name(), c))
	}
	return out
}

// dumpRows reads every row of a table as text, NULL as NULL, in order.
func dumpRows(t *testing.T, db *store.DB, table, order string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY ` + order)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			s := "NULL"
			if v.Valid {
				s = v.String
			}
			fields[i] = cols[i] + "=" + s
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
