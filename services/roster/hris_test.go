package roster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/identity/domain"
)

// hrisSender signs deliveries as an HRIS does (Standard Webhooks).
type hrisSender struct {
	c      client
	path   string
	secret string
	clock  func() time.Time
	n      int
}

// send posts body signed with the sender's secret, the webhook id id and
// a timestamp at offset from the clock's now.
func (s *hrisSender) send(id string, offset time.Duration, body any, secrets ...string) (int, map[string]any) {
	s.c.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		s.c.t.Fatal(err)
	}
	ts := s.clock().Add(offset).Unix()
	if len(secrets) == 0 {
		secrets = []string{s.secret}
	}
	sig := ""
	for _, sec := range secrets {
		key, err := base64.StdEncoding.DecodeString(sec[len("whsec_"):])
		if err != nil {
			s.c.t.Fatal(err)
		}
		if sig != "" {
			sig += " "
		}
		sig += domain.Sign(key, id, ts, raw)
	}
	return s.c.do("POST", s.path, "", json.RawMessage(raw),
		"webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)
}

func employeeEvent(typ, id, email, first, last, dept, effective string) map[string]any {
	return map[string]any{"type": typ, "effective_date": effective, "employee": map[string]any{
		"id": id, "email": email, "first_name": first, "last_name": last, "department": dept, "job_title": "Engineer", "phone": "+1 555 0100",
	}}
}

func delivery(t *testing.T, c client, acc account, id string) map[string]any {
	t.Helper()
	_, d := c.do("GET", "/v1/accounts/"+acc.id+"/hris/deliveries/"+id, acc.token, nil)
	return d
}

func awaitDelivery(t *testing.T, c client, acc account, id, status string) map[string]any {
	t.Helper()
	var d map[string]any
	svctest.EventuallySeen(t, "delivery "+id+" "+status, func() bool {
		d = delivery(t, c, acc, id)
		return d["status"] == status
	}, func() string { return fmt.Sprint(d) })
	return d
}

// H-1 through HTTP with the all-in-one server, on SQLite and PostgreSQL:
// secrets shown once and rotated with 24 h overlap, signatures (several,
// stale, bad → audited), replayed webhook-ids, mapping rules, hire with a
// seat purchase only when the mapping allows it, a failed delivery
// re-driven, a termination scheduled for its effective date and applied
// once, a BambooHR payload, and a shuffled sequence reaching the right end
// state.
func TestHRISWebhooks(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()}
		h, _ := startHostAt(t, t.TempDir(), db, clock.Now)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 2) // the admin and one free seat
		base := "/v1/accounts/" + acc.id

		// No secret yet: 401.
		s := &hrisSender{c: c, path: base + "/hris/generic", clock: clock.Now}
		code, body := c.do("POST", base+"/hris/secrets", acc.token, nil)
		if code != 201 || body["secret"] == nil {
			t.Fatalf("secret: %d %v", code, body)
		}
		first := body["secret"].(string)
		if first[:6] != "whsec_" {
			t.Fatalf("secret %q lacks whsec_", first)
		}
		code, body = c.do("POST", base+"/hris/secrets", acc.token, nil)
		if code != 201 {
			t.Fatalf("second secret: %d %v", code, body)
		}
		s.secret = body["secret"].(string)
		// A scope other than hris:admin cannot touch secrets or mapping.
		_, tok := c.do("POST", base+"/tokens", acc.token, map[string]any{"name": "ro", "scopes": []string{"technicians:read"}})
		if code, _ := c.do("POST", base+"/hris/secrets", tok["token"].(string), nil); code != 403 {
			t.Fatalf("secret without hris:admin: %d", code)
		}

		// Mapping: IT Support → technician, Sales → end user, rest ignored.
		_, site := c.do("POST", base+"/sites", acc.token, map[string]any{"name": "HQ"})
		if code, body := c.do("GET", base+"/hris/mapping", acc.token, nil); code != 200 || body["default"].(map[string]any)["kind"] != "ignore" {
			t.Fatalf("default mapping: %d %v", code, body)
		}
		mapping := map[string]any{"rules": []any{
			map[string]any{"when": map[string]any{"department": "IT Support", "job_title": "Lead"}, "then": map[string]any{"kind": "technician", "role": "Account manager"}},
			map[string]any{"when": map[string]any{"department": "IT Support"}, "then": map[string]any{"kind": "technician", "role": "Billing"}},
			map[string]any{"when": map[string]any{"department": "sales"}, "then": map[string]any{"kind": "end_user", "site_id": site["id"]}},
		}, "default": map[string]any{"kind": "ignore"}, "allow_seat_purchase": false}
		if code, body := c.do("PUT", base+"/hris/mapping", acc.token, mapping); code != 200 {
			t.Fatalf("put mapping: %d %v", code, body)
		}
		bad := map[string]any{"rules": []any{map[string]any{"when": map[string]any{}, "then": map[string]any{"kind": "wizard"}}}}
		if code, body := c.do("PUT", base+"/hris/mapping", acc.token, bad); code != 422 || len(body["errors"].([]any)) != 2 {
			t.Fatalf("bad mapping: %d %v", code, body)
		}

		// Signatures: bad → 401 and audited; stale or future → 400;
		// several signatures, one of them from the previous secret → 202.
		hire := employeeEvent("employee.hired", "E1", "ivy@acme.test", "Ivy", "It", "IT Support", "")
		if code, body := s.send("msg_bad", 0, hire, "whsec_"+base64.StdEncoding.EncodeToString([]byte("not-the-secret-0123456789"))); code != 401 {
			t.Fatalf("bad signature: %d %v", code, body)
		}
		if code, body := s.send("msg_old", -6*time.Minute, hire); code != 400 || problemType(body) != "https://roster.dev/problems/stale-webhook" {
			t.Fatalf("stale: %d %v", code, body)
		}
		if code, _ := s.send("msg_future", 6*time.Minute, hire); code != 400 {
			t.Fatalf("future: %d", code)
		}
		svctest.Eventually(t, "the rejection audited", func() bool {
			_, a := c.do("GET", base+"/audit?action=hris_webhook.rejected", acc.token, nil)
			d, _ := a["data"].([]any)
			return len(d) == 3 && d[0].(map[string]any)["actor"].(map[string]any)["type"] == "hris"
		})
		code, body = s.send("msg_1", -time.Minute, hire, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another-rotated-key-0123")), first)
		if code != 202 || body["id"] == nil {
			t.Fatalf("hire: %d %v", code, body)
		}
		d1 := body["id"].(string)
		d := awaitDelivery(t, c, acc, d1, "applied")
		techID := d["technician_id"].(string)
		_, tech := c.do("GET", base+"/technicians/"+techID, acc.token, nil)
		if tech["email"] != "ivy@acme.test" || tech["requested_role"] != "Billing" || tech["status"] != "invited" {
			t.Fatalf("hired technician: %v", tech)
		}
		// Replayed webhook-id: 202, the same delivery, nothing new.
		code, body = s.send("msg_1", 0, employeeEvent("employee.hired", "E9", "other@acme.test", "O", "T", "IT Support", ""))
		if code != 202 || body["id"] != d1 || body["replayed"] != true {
			t.Fatalf("replay: %d %v", code, body)
		}
		_, list := c.do("GET", base+"/hris/deliveries", acc.token, nil)
		if n := len(list["data"].([]any)); n != 1 {
			t.Fatalf("deliveries after replay: %d", n)
		}

		// Every seat taken and the mapping forbids buying: failed with the
		// quote; allowed and re-driven: applied, one charge.
		code, body = s.send("msg_2", 0, employeeEvent("employee.hired", "E2", "jo@acme.test", "Jo", "Ops", "it support", ""))
		if code != 202 {
			t.Fatalf("hire 2: %d %v", code, body)
		}
		d2 := body["id"].(string)
		d = awaitDelivery(t, c, acc, d2, "failed")
		if p, _ := d["problem"].(map[string]any); p == nil || p["quote"] == nil {
			t.Fatalf("failed delivery without the quote: %v", d)
		}
		if code, _ := c.do("POST", base+"/hris/deliveries/"+d1+"/redrive", acc.token, nil); code != 409 {
			t.Fatalf("redrive of an applied delivery: %d", code)
		}
		mapping["allow_seat_purchase"] = true
		c.do("PUT", base+"/hris/mapping", acc.token, mapping)
		if code, body := c.do("POST", base+"/hris/deliveries/"+d2+"/redrive", acc.token, nil); code != 202 {
			t.Fatalf("redrive: %d %v", code, body)
		}
		d = awaitDelivery(t, c, acc, d2, "applied")
		jo := d["technician_id"].(string)
		svctest.Eventually(t, "one charge", func() bool {
			_, ch := c.do("GET", base+"/charges", acc.token, nil)
			data, _ := ch["data"].([]any)
			return len(data) == 1 && data[0].(map[string]any)["technician_id"] == jo
		})

		// An update that maps to another role: requested from rolepolicy,
		// pre-assigned until the first login (roster, R-6); directory
		// attributes kept.
		promoted := employeeEvent("employee.updated", "E2", "jo@acme.test", "Jo", "Lead", "IT Support", "")
		promoted["employee"].(map[string]any)["job_title"] = "Lead"
		_, body = s.send("msg_2b", time.Second, promoted)
		if d := awaitDelivery(t, c, acc, body["id"].(string), "applied"); d["reason"] != `updated; role "Account manager" requested (rule 1)` {
			t.Fatalf("role change: %v", d)
		}
		svctest.Eventually(t, "the role pre-assigned", func() bool {
			_, r := c.do("GET", base+"/technicians/"+jo+"/role", acc.token, nil)
			return r["requested_role"] == "Account manager" && r["role"] == "Beginner"
		})
		if _, tech := c.do("GET", base+"/technicians/"+jo, acc.token, nil); tech["last_name"] != "Lead" {
			t.Fatalf("updated names: %v", tech)
		}

		// Ignored and end-user employees.
		_, body = s.send("msg_3", 0, employeeEvent("employee.hired", "E3", "max@acme.test", "Max", "M", "Facilities", ""))
		if d := awaitDelivery(t, c, acc, body["id"].(string), "skipped"); d["reason"] == "" {
			t.Fatalf("skipped without a reason: %v", d)
		}
		_, body = s.send("msg_4", 0, employeeEvent("employee.hired", "E4", "sal@acme.test", "Sal", "Es", "Sales", ""))
		eu := awaitDelivery(t, c, acc, body["id"].(string), "applied")["end_user_id"].(string)

		// Terminations: in the future → scheduled, applied on the date,
		// once; in the past → at once.
		_, body = s.send("msg_5", 0, employeeEvent("employee.terminated", "E1", "", "", "", "IT Support", "2026-11-25"))
		d5 := body["id"].(string)
		if d := awaitDelivery(t, c, acc, d5, "scheduled"); d["reason"] != "disables on 2026-11-25" {
			t.Fatalf("scheduled: %v", d)
		}
		_, body = s.send("msg_6", 0, employeeEvent("employee.terminated", "E4", "", "", "", "Sales", "2026-11-01"))
		awaitDelivery(t, c, acc, body["id"].(string), "applied")
		if _, u := c.do("GET", base+"/end-users/"+eu, acc.token, nil); u["status"] != "deactivated" {
			t.Fatalf("terminated end user: %v", u)
		}
		if _, tech := c.do("GET", base+"/technicians/"+techID, acc.token, nil); tech["status"] != "invited" {
			t.Fatalf("terminated before its date: %v", tech)
		}
		clock.Advance(2 * 24 * time.Hour) // 2026-11-25
		awaitDelivery(t, c, acc, d5, "applied")
		if _, tech := c.do("GET", base+"/technicians/"+techID, acc.token, nil); tech["status"] != "disabled" {
			t.Fatalf("not disabled on the date: %v", tech)
		}
		svctest.Eventually(t, "one disable audited", func() bool {
			_, a := c.do("GET", base+"/audit?action=technician.disabled&target="+techID, acc.token, nil)
			data, _ := a["data"].([]any)
			return len(data) == 1
		})

		// A rehire after the termination enables the technician again (a
		// seat is free: the disable released it).
		_, body = s.send("msg_rehire", 0, employeeEvent("employee.hired", "E1", "ivy@acme.test", "Ivy", "Back", "IT Support", ""))
		if d := awaitDelivery(t, c, acc, body["id"].(string), "applied"); d["technician_id"] != techID {
			t.Fatalf("rehire: %v", d)
		}
		if _, tech := c.do("GET", base+"/technicians/"+techID, acc.token, nil); tech["status"] == "disabled" || tech["last_name"] != "Back" {
			t.Fatalf("rehired technician: %v", tech)
		}

		// A termination still scheduled when a later hire arrives is
		// superseded by it: the date passes, nothing happens.
		_, body = s.send("msg_term2", time.Second, employeeEvent("employee.terminated", "E1", "", "", "", "IT Support", "2026-11-28"))
		term2 := body["id"].(string)
		awaitDelivery(t, c, acc, term2, "scheduled")
		_, body = s.send("msg_rehire2", 2*time.Second, employeeEvent("employee.hired", "E1", "ivy@acme.test", "Ivy", "Again", "IT Support", ""))
		awaitDelivery(t, c, acc, body["id"].(string), "applied")
		if d := awaitDelivery(t, c, acc, term2, "skipped"); d["reason"] != "superseded by the rehire in delivery "+body["id"].(string) {
			t.Fatalf("superseded termination: %v", d)
		}
		clock.Advance(4 * 24 * time.Hour) // 2026-11-29: the claimed termination is not due any more
		if _, tech := c.do("GET", base+"/technicians/"+techID, acc.token, nil); tech["status"] == "disabled" {
			t.Fatalf("disabled by a superseded termination: %v", tech)
		}

		// Two days on, the first secret (replaced then) is no longer valid.
		if code, _ := s.send("msg_late", 0, hire, first); code != 401 {
			t.Fatalf("the replaced secret after 24 h: %d", code)
		}

		// BambooHR's payload shape.
		bs := &hrisSender{c: c, path: base + "/hris/bamboohr", clock: clock.Now, secret: s.secret}
		bamboo := map[string]any{"employees": []any{map[string]any{"id": "B7", "action": "Created", "fields": map[string]any{
			"firstName": "Bea", "lastName": "Boo", "workEmail": "bea@acme.test", "department": "Sales", "jobTitle": "Rep", "hireDate": "2026-11-20"}}}}
		code, body = bs.send("bamboo_1", 0, bamboo)
		if code != 202 {
			t.Fatalf("bamboohr: %d %v", code, body)
		}
		awaitDelivery(t, c, acc, body["id"].(string), "applied")
		if code, _ := c.do("POST", base+"/hris/workday", "", map[string]any{}); code != 404 {
			t.Fatalf("unknown source: %d", code)
		}
		// A signed but malformed body is refused and stores nothing.
		if code, body := s.send("msg_bad_body", 0, map[string]any{"type": "employee.fired"}); code != 422 {
			t.Fatalf("malformed body: %d %v", code, body)
		}
	})
}

// H-1, out-of-order delivery: an employee's hire, updates and termination
// arrive shuffled; whatever the order, the end state is the one their
// event times say.
func TestHRISShuffledSequence(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()}
		h, _ := startHostAt(t, t.TempDir(), db, clock.Now)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 10)
		base := "/v1/accounts/" + acc.id
		_, body := c.do("POST", base+"/hris/secrets", acc.token, nil)
		s := &hrisSender{c: c, path: base + "/hris/generic", clock: clock.Now, secret: body["secret"].(string)}
		mapping := map[string]any{"rules": []any{
			map[string]any{"when": map[string]any{"department": "IT"}, "then": map[string]any{"kind": "technician"}},
		}}
		if code, body := c.do("PUT", base+"/hris/mapping", acc.token, mapping); code != 200 {
			t.Fatalf("mapping: %d %v", code, body)
		}
		rng := rand.New(rand.NewPCG(8, 8))
		// The first four orders are chosen: a later update before an
		// earlier one, everything reversed, the termination first; the
		// other four are random.
		chosen := [][]int{{0, 2, 1, 3}, {2, 1, 0}, {3, 2, 0, 1}, {0, 2, 1}}
		var all []string
		for e := range 8 {
			emp := fmt.Sprintf("S%d", e)
			email := fmt.Sprintf("s%d@acme.test", e)
			// Event times 10 s apart; the last update's names win; employees
			// 0 and 2 are terminated (the effective date past).
			seq := []map[string]any{
				employeeEvent("employee.hired", emp, email, "First", "V1", "IT", ""),
				employeeEvent("employee.updated", emp, email, "First", "V2", "IT", ""),
				employeeEvent("employee.updated", emp, email, "Final", "V3", "IT", ""),
			}
			if e%2 == 0 {
				seq = append(seq, employeeEvent("employee.terminated", emp, email, "", "", "IT", "2026-11-20"))
			}
			order := rng.Perm(len(seq))
			if e < len(chosen) {
				order = chosen[e]
			}
			for _, i := range order {
				id := fmt.Sprintf("shuf_%d_%d", e, i)
				code, body := s.send(id, time.Duration(i*10-120)*time.Second, seq[i])
				if code != 202 {
					t.Fatalf("%s: %d %v", id, code, body)
				}
				all = append(all, body["id"].(string))
			}
		}
		svctest.Eventually(t, "every delivery settled", func() bool {
			for _, id := range all {
				switch delivery(t, c, acc, id)["status"] {
				case "pending", "held":
					return false
				}
			}
			return true
		})
		for e := range 8 {
			_, list := c.do("GET", base+"/technicians?email="+fmt.Sprintf("s%d@acme.test", e), acc.token, nil)
			data := list["data"].([]any)
			if len(data) != 1 {
				t.Fatalf("employee %d: %d technicians", e, len(data))
			}
			tech := data[0].(map[string]any)
			want := "invited"
			if e%2 == 0 {
				want = "disabled"
			}
			if tech["first_name"] != "Final" || tech["last_name"] != "V3" || tech["status"] != want {
				t.Errorf("employee %d end state: %v", e, tech)
			}
		}
	})
}

// H-1: a termination scheduled for a future date survives a restart and is
// applied once on its date by the host that runs then.
func TestHRISTerminationSurvivesRestart(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()}
		dir := t.TempDir()
		h, stop := startHostAt(t, dir, db, clock.Now)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 3)
		base := "/v1/accounts/" + acc.id
		_, body := c.do("POST", base+"/hris/secrets", acc.token, nil)
		secret := body["secret"].(string)
		c.do("PUT", base+"/hris/mapping", acc.token, map[string]any{"rules": []any{}, "default": map[string]any{"kind": "technician"}})
		s := &hrisSender{c: c, path: base + "/hris/generic", clock: clock.Now, secret: secret}
		_, body = s.send("r1", -time.Second, employeeEvent("employee.hired", "R1", "rita@acme.test", "Rita", "R", "Ops", ""))
		tech := awaitDelivery(t, c, acc, body["id"].(string), "applied")["technician_id"].(string)
		_, body = s.send("r2", 0, employeeEvent("employee.terminated", "R1", "", "", "", "Ops", "2026-12-01"))
		term := body["id"].(string)
		awaitDelivery(t, c, acc, term, "scheduled")
		stop()

		clock.Advance(8 * 24 * time.Hour) // 2026-12-01
		h, _ = startHostAt(t, dir, db, clock.Now)
		c = client{t, h.URL()}
		awaitDelivery(t, c, acc, term, "applied")
		if _, got := c.do("GET", base+"/technicians/"+tech, acc.token, nil); got["status"] != "disabled" {
			t.Fatalf("after restart: %v", got)
		}
		svctest.Eventually(t, "one disable audited", func() bool {
			_, a := c.do("GET", base+"/audit?action=technician.disabled&target="+tech, acc.token, nil)
			data, _ := a["data"].([]any)
			return len(data) == 1 && data[0].(map[string]any)["actor"].(map[string]any)["type"] == "hris"
		})
	})
}
