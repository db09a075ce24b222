package roster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/profile"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/identity"
)

// startListening is startHostAt with the embedded NATS listening on a free
// loopback port, for the owning systems' consumers.
func startListening(t *testing.T, dataDir, db string, now func() time.Time) (*svc.Host, func()) {
	t.Helper()
	h, err := svc.Start(context.Background(), svc.Config{
		DataDir: dataDir, HTTP: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DB: db, OperatorToken: operator, Now: now,
	}, Services()...)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := h.Stop(context.Background()); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	select {
	case <-h.Ready():
	case err := <-h.Errors():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
	return h, stop
}

// instruction is an offboarding instruction as an owning system reads it.
type instruction struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	OffboardingID string `json:"offboarding_id"`
	Kind          string `json:"kind"`
	ItemID        string `json:"item_id"`
	Action        string `json:"action"`
	ToOwnerID     string `json:"to_owner_id"`
}

// instructionReader is an owning system's durable consumer on the
// offboarding stream, filtered to subject.
type instructionReader struct {
	t   *testing.T
	sub *nats.Subscription
}

func readInstructions(t *testing.T, natsURL, subject, durable string) *instructionReader {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := js.PullSubscribe(subject, durable, nats.BindStream("ROSTER_OFFBOARDING"), nats.DeliverAll())
	if err != nil {
		t.Fatal(err)
	}
	return &instructionReader{t: t, sub: sub}
}

// next reads n instructions, checking their CloudEvents headers and
// subject; then checks that nothing more comes.
func (r *instructionReader) next(acc string, n int) []instruction {
	r.t.Helper()
	var out []instruction
	for len(out) < n {
		msgs, err := r.sub.Fetch(n-len(out), nats.MaxWait(10*time.Second))
		if err != nil {
			r.t.Fatalf("fetch after %d instructions: %v", len(out), err)
		}
		for _, m := range msgs {
			var ins instruction
			if err := json.Unmarshal(m.Data, &ins); err != nil {
				r.t.Fatal(err)
			}
			if m.Subject != "roster.offboarding."+acc+"."+ins.Kind || m.Header.Get("ce-id") != ins.ID ||
				m.Header.Get("ce-type") != "dev.roster.offboarding."+ins.Type || m.Header.Get("ce-specversion") != "1.0" {
				r.t.Fatalf("instruction %s on %s: headers %v", ins.ID, m.Subject, m.Header)
			}
			_ = m.Ack()
			out = append(out, ins)
		}
	}
	r.none()
	return out
}

// none checks that no further instruction arrives.
func (r *instructionReader) none() {
	r.t.Helper()
	if extra, err := r.sub.Fetch(1, nats.MaxWait(300*time.Millisecond)); err == nil && len(extra) > 0 {
		r.t.Fatalf("an unexpected instruction: %s", extra[0].Data)
	}
}

// leaverItems are the Done-when set: 3 open, 2 pending and 4 resolved
// tickets, 2 personal and 1 shared report, 5 assets and 2 tokens.
func leaverItems(owner string) []any {
	var items []any
	add := func(kind, id string, extra ...string) {
		it := map[string]any{"kind": kind, "id": id, "owner_id": owner}
		for i := 0; i+1 < len(extra); i += 2 {
			it[extra[i]] = extra[i+1]
		}
		items = append(items, it)
	}
	for i := range 3 {
		add("ticket", fmt.Sprintf("T-open-%d", i), "status", "open")
	}
	for i := range 2 {
		add("ticket", fmt.Sprintf("T-pending-%d", i), "status", "pending")
	}
	for i := range 4 {
		add("ticket", fmt.Sprintf("T-resolved-%d", i), "status", "resolved")
	}
	add("report", "R-personal-0", "folder", "personal")
	add("report", "R-personal-1", "folder", "personal")
	add("report", "R-shared-0", "folder", "shared")
	for i := range 5 {
		add("asset", fmt.Sprintf("A-%d", i))
	}
	add("api_token", "K-0")
	add("api_token", "K-1")
	return items
}

// expectedAction is the action of the test's own reading of O-1, O-2 and
// O-3 for an item of leaverItems, with successor taking reassigned items.
func expectedAction(policy, kind, id, successor string) (action, to, instr string) {
	switch {
	case kind == "api_token":
		return "revoke", "", "TokenRevoked"
	case policy == "atera" && kind == "ticket" && (strings.Contains(id, "open") || strings.Contains(id, "pending")):
		return "unassign", "", "ItemUnassigned"
	case policy == "atera" && kind == "report" && strings.Contains(id, "personal"):
		return "delete", "", "ReportDeleted"
	case policy == "atera", policy == "atlan":
		return "keep", "", ""
	case kind == "report" && strings.Contains(id, "personal"):
		return "archive", "", "ReportArchived"
	case successor == "":
		return "unassign", "", "ItemUnassigned"
	default:
		return "reassign", successor, "OwnershipReassigned"
	}
}

func actionKey(kind, id, action, to string) string { return kind + "/" + id + " " + action + ">" + to }

func planKeys(t *testing.T, off map[string]any) []string {
	t.Helper()
	acts, _ := off["actions"].([]any)
	var keys []string
	for _, a := range acts {
		m := a.(map[string]any)
		to, _ := m["to"].(string)
		keys = append(keys, actionKey(m["kind"].(string), m["id"].(string), m["action"].(string), to))
	}
	sort.Strings(keys)
	return keys
}

// registry is the account's ownership registry: kind/id → owner ("" for
// unassigned, "archived:" + owner for an archived report).
func registry(t *testing.T, c client, acc account) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := ""
	for {
		path := "/v1/accounts/" + acc.id + "/ownership?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		code, body := c.do("GET", path, acc.token, nil)
		if code != 200 {
			t.Fatalf("list ownership: %d %v", code, body)
		}
		for _, d := range body["data"].([]any) {
			m := d.(map[string]any)
			owner := m["owner_id"].(string)
			if m["archived_until"] != nil {
				owner = "archived:" + owner
			}
			out[m["kind"].(string)+"/"+m["id"].(string)] = owner
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}

// O-1, O-2, O-3, O-4 per profile, on SQLite and PostgreSQL: the Done-when
// set of items is registered for a leaver; the dry run predicts exactly
// what the disable then does; the instructions (one per affected item, on
// the item kind's subject) and the registry's end state follow the
// profile's rules; the offboarding stays in_progress until every
// instruction is acknowledged; disabling again changes nothing.
func TestOffboardingPerProfile(t *testing.T) {
	t.Parallel()
	cases := []struct{ profile, plan, role, policy string }{
		{"atera-msp", "growth", "Beginner", "atera"},
		{"atlan", "premier", "", "atlan"},
		{"roster", "growth", "", "roster"},
	}
	for _, tc := range cases {
		t.Run(tc.profile, func(t *testing.T) {
			if _, err := profile.Get(tc.profile); err != nil {
				t.Skipf("profile %s is not in this build: %v", tc.profile, err)
			}
			svctest.EachBackend(t, func(t *testing.T, db string) {
				testOffboarding(t, db, tc.profile, tc.plan, tc.role, tc.policy)
			})
		})
	}
}

func testOffboarding(t *testing.T, db, prof, plan, role, policy string) {
	h, _ := startListening(t, t.TempDir(), db, fixedClock)
	c := client{t, h.URL()}
	acc := createAccount(t, c, prof, plan, 4)
	base := "/v1/accounts/" + acc.id
	add := func(email string) string {
		code, body := c.do("POST", base+"/technicians", acc.token, technician(email, role))
		if code != 201 {
			t.Fatalf("add %s: %d %v", email, code, body)
		}
		return body["id"].(string)
	}
	leaver, successor := add("leaver@acme.test"), add("successor@acme.test")
	// I-7: the leaver has a live session, which the preview counts and the
	// disable revokes.
	const password = "temporary passphrase 7"
	if code, p := c.do("POST", base+"/technicians/"+leaver+"/password", acc.token, map[string]any{"password": password}); code != 204 {
		t.Fatalf("set password: %d %v", code, p)
	}
	lcode, sess := login(c, acc.id, "leaver@acme.test", password)
	if lcode != 200 {
		t.Fatalf("login: %d %v", lcode, sess)
	}
	session := sess["session_token"].(string)
	if code, _, b := svctest.Do(t, "GET", h.URL()+"/v1/auth/sessions", session, nil); code != 200 {
		t.Fatalf("the leaver's sessions: %d %s", code, b)
	}
	everyone := readInstructions(t, h.NATSURL(), "roster.offboarding."+acc.id+".>", "all")
	tickets := readInstructions(t, h.NATSURL(), "roster.offboarding.*.ticket", "ticketing")

	// O-4: registration is idempotent by (kind, id); a bad item changes
	// nothing and names the field.
	items := leaverItems(leaver)
	items = append(items, map[string]any{"kind": "ticket", "id": "T-other", "owner_id": acc.adminID, "status": "open"})
	for range 2 {
		if code, body := c.do("POST", base+"/ownership", acc.token, map[string]any{"items": items}); code != 200 {
			t.Fatalf("register: %d %v", code, body)
		}
	}
	code, body := c.do("POST", base+"/ownership", acc.token, map[string]any{"items": []any{
		map[string]any{"kind": "ticket", "id": "T-x", "owner_id": leaver, "status": "reopened"}}})
	if code != 422 || !strings.Contains(fmt.Sprint(body), "items[0].status") {
		t.Fatalf("bad status: %d %v", code, body)
	}
	before := registry(t, c, acc)
	if len(before) != 20 {
		t.Fatalf("registry: %d items %v", len(before), before)
	}
	_, listed := c.do("GET", base+"/ownership?owner_id="+leaver+"&kind=ticket", acc.token, nil)
	if count(listed) != 9 {
		t.Fatalf("leaver's tickets: %v", listed)
	}

	// The expected plan, from the test's own reading of the rules.
	var want []string
	wantInstr := map[string]string{}
	for _, it := range leaverItems(leaver) {
		m := it.(map[string]any)
		kind, id := m["kind"].(string), m["id"].(string)
		action, to, instr := expectedAction(policy, kind, id, successor)
		want = append(want, actionKey(kind, id, action, to))
		if instr != "" {
			wantInstr[kind+"/"+id] = instr + " " + action + ">" + to
		}
	}
	sort.Strings(want)

	// O-3 preview: the plan, seat, sessions, tokens and cost; nothing changes.
	req := map[string]any{"successor_id": successor}
	code, preview := c.do("POST", base+"/technicians/"+leaver+"/disable?dry_run=true", acc.token, req)
	if code != 200 || preview["dry_run"] != true {
		t.Fatalf("dry run: %d %v", code, preview)
	}
	predicted := planKeys(t, preview["offboarding"].(map[string]any))
	if fmt.Sprint(predicted) != fmt.Sprint(want) {
		t.Fatalf("dry run plan:\n got %v\nwant %v", predicted, want)
	}
	cost, _ := preview["cost"].(map[string]any)
	if preview["seat_freed"] != true || preview["tokens_revoked"] != 2.0 || preview["sessions_revoked"] != 1.0 || cost == nil || cost["charge_now"] != 0.0 ||
		cost["refund"] != 0.0 || cost["seats_available_after"] != cost["seats_available_before"].(float64)+1 {
		t.Fatalf("dry run effects: %v", preview)
	}
	if _, got := c.do("GET", base+"/technicians/"+leaver, acc.token, nil); got["status"] == "disabled" {
		t.Fatal("the dry run disabled the technician")
	}
	if after := registry(t, c, acc); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the dry run changed the registry: %v", after)
	}
	everyone.none()

	// The disable does exactly what the dry run predicted.
	code, disabled := c.do("POST", base+"/technicians/"+leaver+"/disable", acc.token, req, "Idempotency-Key", "off-1")
	if code != 200 || disabled["status"] != "disabled" {
		t.Fatalf("disable: %d %v", code, disabled)
	}
	if code, _, _ := svctest.Do(t, "GET", h.URL()+"/v1/auth/sessions", session, nil); code != 401 {
		t.Fatalf("the leaver's session after the disable: %d", code)
	}
	off := disabled["offboarding"].(map[string]any)
	if got := planKeys(t, off); fmt.Sprint(got) != fmt.Sprint(predicted) {
		t.Fatalf("disable plan:\n got %v\nwant %v", got, predicted)
	}
	offID := off["id"].(string)
	if fmt.Sprint(off["summary"]) != fmt.Sprint(preview["offboarding"].(map[string]any)["summary"]) {
		t.Fatalf("summary: disable %v, dry run %v", off["summary"], preview["offboarding"].(map[string]any)["summary"])
	}

	// One instruction per affected item, each once, on its kind's subject.
	got := everyone.next(acc.id, len(wantInstr))
	seen := map[string]string{}
	for _, ins := range got {
		key := ins.Kind + "/" + ins.ItemID
		if _, dup := seen[key]; dup || ins.OffboardingID != offID {
			t.Fatalf("instruction %v (duplicate or another offboarding)", ins)
		}
		seen[key] = ins.Type + " " + ins.Action + ">" + ins.ToOwnerID
	}
	if fmt.Sprint(seen) != fmt.Sprint(wantInstr) {
		t.Fatalf("instructions:\n got %v\nwant %v", seen, wantInstr)
	}
	wantTickets := 0
	for k := range wantInstr {
		if strings.HasPrefix(k, "ticket/") {
			wantTickets++
		}
	}
	for _, ins := range tickets.next(acc.id, wantTickets) {
		if ins.Kind != "ticket" {
			t.Fatalf("the ticketing consumer got %v", ins)
		}
	}

	// The registry's end state.
	end := registry(t, c, acc)
	for _, it := range leaverItems(leaver) {
		m := it.(map[string]any)
		key := m["kind"].(string) + "/" + m["id"].(string)
		action, to, _ := expectedAction(policy, m["kind"].(string), m["id"].(string), successor)
		owner, present := end[key]
		var ok bool
		switch action {
		case "keep":
			ok = present && owner == leaver
		case "unassign":
			ok = present && owner == ""
		case "reassign":
			ok = present && owner == to
		case "archive":
			ok = present && owner == "archived:"+leaver
		case "delete", "revoke":
			ok = !present
		}
		if !ok {
			t.Fatalf("%s after %s: %q (present %v)", key, action, owner, present)
		}
	}
	if end["ticket/T-other"] != acc.adminID {
		t.Fatalf("another technician's ticket changed: %v", end["ticket/T-other"])
	}
	// O-2: items kept by a disabled owner are orphans.
	_, orphans := c.do("GET", base+"/ownership/orphans", acc.token, nil)
	keeps := strings.Count(fmt.Sprint(want), " keep>")
	if count(orphans) != keeps {
		t.Fatalf("orphans: %d, want %d: %v", count(orphans), keeps, orphans)
	}

	// Acknowledgements: in_progress until the last one.
	keys := make([]string, 0, len(wantInstr))
	for k := range wantInstr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		if off["status"] != "in_progress" {
			t.Fatalf("status before acks: %v", off["status"])
		}
		ack := func(ks []string) map[string]any {
			var items []any
			for _, k := range ks {
				kind, id, _ := strings.Cut(k, "/")
				items = append(items, map[string]any{"kind": kind, "id": id})
			}
			code, body := c.do("POST", base+"/offboardings/"+offID+"/acks", acc.token, map[string]any{"items": items})
			if code != 200 {
				t.Fatalf("ack: %d %v", code, body)
			}
			return body
		}
		if res := ack(keys[:len(keys)-1]); res["status"] != "in_progress" || res["outstanding"] != 1.0 {
			t.Fatalf("after all acks but one: %v", res)
		}
		_, show := c.do("GET", base+"/offboardings/"+offID+"?outstanding=true", acc.token, nil)
		if acts := show["actions"].([]any); len(acts) != 1 || show["status"] != "in_progress" {
			t.Fatalf("outstanding: %v", show)
		}
		if res := ack(keys[len(keys)-1:]); res["status"] != "completed" || res["outstanding"] != 0.0 {
			t.Fatalf("after the last ack: %v", res)
		}
		if res := ack(keys[:1]); res["status"] != "completed" || res["acknowledged"] != 0.0 {
			t.Fatalf("a repeated ack: %v", res)
		}
	} else if off["status"] != "completed" {
		t.Fatalf("nothing to acknowledge, status %v", off["status"])
	}

	// Disabling again changes nothing: the same offboarding, no instruction.
	endBefore := registry(t, c, acc)
	code, again := c.do("POST", base+"/technicians/"+leaver+"/disable", acc.token, req)
	if code != 200 || again["offboarding"].(map[string]any)["id"] != offID {
		t.Fatalf("disable again: %d %v", code, again)
	}
	if after := registry(t, c, acc); fmt.Sprint(after) != fmt.Sprint(endBefore) {
		t.Fatalf("disabling again changed the registry: %v", after)
	}
	everyone.none()
}

// O-3 with the manager from HRIS: no successor in the request, the
// technician's manager (HRIS manager_email) takes the items; with neither,
// items are left unassigned and reported.
func TestOffboardingSuccessorFromHRISManager(t *testing.T) {
	t.Parallel()
	h, _ := startListening(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "growth", 4)
	base := "/v1/accounts/" + acc.id
	_, body := c.do("POST", base+"/hris/secrets", acc.token, nil)
	c.do("PUT", base+"/hris/mapping", acc.token, map[string]any{"rules": []any{}, "default": map[string]any{"kind": "technician"}})
	s := &hrisSender{c: c, path: base + "/hris/generic", clock: fixedClock, secret: body["secret"].(string)}
	_, body = s.send("m1", -2*time.Second, employeeEvent("employee.hired", "M1", "boss@acme.test", "Bo", "Ss", "Ops", ""))
	boss := awaitDelivery(t, c, acc, body["id"].(string), "applied")["technician_id"].(string)
	hire := employeeEvent("employee.hired", "E1", "emp@acme.test", "Em", "P", "Ops", "")
	hire["employee"].(map[string]any)["manager_email"] = "boss@acme.test"
	_, body = s.send("e1", -time.Second, hire)
	emp := awaitDelivery(t, c, acc, body["id"].(string), "applied")["technician_id"].(string)
	code, body := c.do("POST", base+"/technicians", acc.token, technician("solo@acme.test", ""))
	if code != 201 {
		t.Fatalf("add: %d %v", code, body)
	}
	solo := body["id"].(string)
	c.do("POST", base+"/ownership", acc.token, map[string]any{"items": []any{
		map[string]any{"kind": "ticket", "id": "T1", "owner_id": emp, "status": "open"},
		map[string]any{"kind": "ticket", "id": "T2", "owner_id": solo, "status": "open"},
	}})
	code, body = c.do("POST", base+"/technicians/"+emp+"/disable", acc.token, nil)
	off, _ := body["offboarding"].(map[string]any)
	if code != 200 || off["successor_id"] != boss || off["successor_source"] != "hris_manager" {
		t.Fatalf("disable with an HRIS manager: %d %v", code, body)
	}
	code, body = c.do("POST", base+"/technicians/"+solo+"/disable", acc.token, nil)
	off, _ = body["offboarding"].(map[string]any)
	if code != 200 || off["successor_source"] != "none" || off["unassigned"] != nil && off["unassigned"] != 1.0 {
		t.Fatalf("disable without a successor: %d %v", code, body)
	}
	if reg := registry(t, c, acc); reg["ticket/T1"] != boss || reg["ticket/T2"] != "" {
		t.Fatalf("registry: %v", reg)
	}
}

// O-3 restore and purge, exactly once across restarts: instructions queued
// before a stop are delivered once after it; re-enabling within the window
// restores archived reports; past the window the scheduler purges them
// once, whatever the restarts.
func TestOffboardingArchiveRestoreAndPurgeSurviveRestart(t *testing.T) {
	old := identity.PurgePoll
	identity.PurgePoll = 20 * time.Millisecond
	t.Cleanup(func() { identity.PurgePoll = old })
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()}
		dir := t.TempDir()
		h, stop := startListening(t, dir, db, clock.Now)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 4)
		base := "/v1/accounts/" + acc.id
		var techs []string
		for _, e := range []string{"a@acme.test", "b@acme.test"} {
			code, body := c.do("POST", base+"/technicians", acc.token, technician(e, ""))
			if code != 201 {
				t.Fatalf("add: %d %v", code, body)
			}
			techs = append(techs, body["id"].(string))
		}
		a, b := techs[0], techs[1]
		c.do("POST", base+"/ownership", acc.token, map[string]any{"items": []any{
			map[string]any{"kind": "report", "id": "RA", "owner_id": a, "folder": "personal"},
			map[string]any{"kind": "report", "id": "RB", "owner_id": b, "folder": "personal"},
		}})
		for _, id := range techs {
			if code, body := c.do("POST", base+"/technicians/"+id+"/disable", acc.token, nil); code != 200 {
				t.Fatalf("disable: %d %v", code, body)
			}
		}
		stop() // the outbox may not have relayed yet

		h, stop = startListening(t, dir, db, clock.Now)
		c = client{t, h.URL()}
		r := readInstructions(t, h.NATSURL(), "roster.offboarding."+acc.id+".report", "reports")
		if got := r.next(acc.id, 2); got[0].Type != "ReportArchived" || got[1].Type != "ReportArchived" {
			t.Fatalf("archived: %v", got)
		}
		// Within the window: a's report comes back on enable.
		clock.Advance(10 * 24 * time.Hour)
		if code, body := c.do("POST", base+"/technicians/"+a+"/enable", acc.token, nil); code != 200 {
			t.Fatalf("enable: %d %v", code, body)
		}
		if got := r.next(acc.id, 1); got[0].Type != "ReportRestored" || got[0].ItemID != "RA" {
			t.Fatalf("restored: %v", got)
		}
		if reg := registry(t, c, acc); reg["report/RA"] != a || reg["report/RB"] != "archived:"+b {
			t.Fatalf("registry after restore: %v", reg)
		}
		stop()

		// Past the window: purged once, across restarts.
		clock.Advance(21 * 24 * time.Hour)
		h, stop = startListening(t, dir, db, clock.Now)
		c = client{t, h.URL()}
		r = readInstructions(t, h.NATSURL(), "roster.offboarding."+acc.id+".report", "reports")
		if got := r.next(acc.id, 1); got[0].Type != "ReportDeleted" || got[0].ItemID != "RB" {
			t.Fatalf("purged: %v", got)
		}
		if reg := registry(t, c, acc); len(reg) != 1 || reg["report/RA"] != a {
			t.Fatalf("registry after purge: %v", reg)
		}
		stop()
		h, _ = startListening(t, dir, db, clock.Now)
		r = readInstructions(t, h.NATSURL(), "roster.offboarding."+acc.id+".report", "reports")
		time.Sleep(100 * time.Millisecond) // a few purge polls
		r.none()
	})
}

// O-2's orphans and the offered reassignment: items kept by a disabled
// owner are listed as orphans; a bulk reassignment moves them, each with
// an OwnershipReassigned instruction tracked by the owner's offboarding;
// a disabled target is refused and changes nothing.
func TestOrphansBulkReassign(t *testing.T) {
	t.Parallel()
	h, _ := startListening(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	acc := createAccount(t, c, "atera-msp", "growth", 4)
	base := "/v1/accounts/" + acc.id
	var techs []string
	for _, e := range []string{"gone@acme.test", "heir@acme.test"} {
		code, body := c.do("POST", base+"/technicians", acc.token, technician(e, "Beginner"))
		if code != 201 {
			t.Fatalf("add: %d %v", code, body)
		}
		techs = append(techs, body["id"].(string))
	}
	gone, heir := techs[0], techs[1]
	var items []any
	for i := range 3 {
		items = append(items, map[string]any{"kind": "asset", "id": fmt.Sprintf("A%d", i), "owner_id": gone})
	}
	items = append(items, map[string]any{"kind": "device", "id": "D1", "owner_id": gone, "on_disable": "keep"})
	if code, body := c.do("POST", base+"/ownership", acc.token, map[string]any{"items": items}); code != 200 {
		t.Fatalf("register: %d %v", code, body)
	}
	if code, body := c.do("POST", base+"/ownership", acc.token, map[string]any{"items": []any{
		map[string]any{"kind": "device", "id": "D2", "owner_id": gone}}}); code != 422 || !strings.Contains(fmt.Sprint(body), "on_disable") {
		t.Fatalf("a kind without a declared policy: %d %v", code, body)
	}
	r := readInstructions(t, h.NATSURL(), "roster.offboarding."+acc.id+".>", "all")
	_, body := c.do("POST", base+"/technicians/"+gone+"/disable", acc.token, nil)
	off := body["offboarding"].(map[string]any)
	if off["status"] != "completed" || off["outstanding"] != 0.0 {
		t.Fatalf("only kept items: %v", off)
	}
	r.none()
	_, orphans := c.do("GET", base+"/ownership/orphans?kind=asset&limit=2", acc.token, nil)
	if count(orphans) != 2 || orphans["next_cursor"] == nil {
		t.Fatalf("orphans page: %v", orphans)
	}
	_, rest := c.do("GET", base+"/ownership/orphans?kind=asset&limit=2&cursor="+orphans["next_cursor"].(string), acc.token, nil)
	if count(rest) != 1 {
		t.Fatalf("orphans second page: %v", rest)
	}
	if code, body := c.do("POST", base+"/ownership/reassign", acc.token, map[string]any{"from_owner_id": gone, "to_owner_id": gone}); code != 422 {
		t.Fatalf("to a disabled technician: %d %v", code, body)
	}
	code, res := c.do("POST", base+"/ownership/reassign", acc.token, map[string]any{"items": []any{map[string]any{"kind": "device", "id": "D1"}}, "to_owner_id": heir})
	if code != 200 || res["reassigned"] != 1.0 {
		t.Fatalf("reassign one: %d %v", code, res)
	}
	code, res = c.do("POST", base+"/ownership/reassign", acc.token, map[string]any{"from_owner_id": gone, "to_owner_id": heir}, "Idempotency-Key", "re-1")
	if code != 200 || res["reassigned"] != 3.0 {
		t.Fatalf("reassign all: %d %v", code, res)
	}
	if code, again := c.do("POST", base+"/ownership/reassign", acc.token, map[string]any{"from_owner_id": gone, "to_owner_id": heir}, "Idempotency-Key", "re-1"); code != 200 || again["reassigned"] != 3.0 {
		t.Fatalf("replayed: %d %v", code, again)
	}
	for _, ins := range r.next(acc.id, 4) {
		if ins.Type != "OwnershipReassigned" || ins.ToOwnerID != heir || ins.OffboardingID != off["id"] {
			t.Fatalf("instruction: %v", ins)
		}
	}
	if _, o := c.do("GET", base+"/ownership/orphans", acc.token, nil); count(o) != 0 {
		t.Fatalf("orphans left: %v", o)
	}
	_, show := c.do("GET", base+"/offboardings/"+off["id"].(string), acc.token, nil)
	if show["status"] != "in_progress" || show["outstanding"] != 4.0 {
		t.Fatalf("offboarding after reassignment: %v", show)
	}

	// The CLI: what is outstanding, and a preview.
	as := []string{"--server=" + h.URL(), "--token=" + acc.token, "--account=" + acc.id}
	out, err := run(t, append([]string{"offboarding", "show", off["id"].(string)}, as...)...)
	if err != nil || !strings.Contains(out, "in_progress, 4 instruction(s) not acknowledged") || strings.Count(out, "OwnershipReassigned") != 4 {
		t.Fatalf("offboarding show: %v\n%s", err, out)
	}
	c.do("POST", base+"/offboardings/"+off["id"].(string)+"/acks", acc.token, map[string]any{"items": []any{map[string]any{"kind": "asset", "id": "A0"}}})
	if out, err := run(t, append([]string{"offboarding", "show", off["id"].(string)}, as...)...); err != nil || strings.Count(out, "OwnershipReassigned") != 3 {
		t.Fatalf("offboarding show after an ack: %v\n%s", err, out)
	}
	if out, err := run(t, append([]string{"offboarding", "show", "--all", off["id"].(string)}, as...)...); err != nil || strings.Count(out, "OwnershipReassigned") != 4 || !strings.Contains(out, "keep") {
		t.Fatalf("offboarding show --all: %v\n%s", err, out)
	}
	if out, err := run(t, append([]string{"offboarding", "preview", heir}, as...)...); err != nil || !strings.Contains(out, "seat freed  true") || !strings.Contains(out, "asset") {
		t.Fatalf("offboarding preview: %v\n%s", err, out)
	}
}
