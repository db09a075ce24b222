package roster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/svc/svctest"
)

// O-4 by events, on SQLite and PostgreSQL: an owning system publishes its
// items on roster.ownership.<account_id>.<kind>; identity registers,
// updates and removes them in stream order, exactly as the API would; an
// event it refuses (unknown owner, bad status, unreadable body, a kind
// that is not the subject's) changes nothing and is dead-lettered on
// roster.deadletter.identity_ownership with its reason; after a restart
// nothing is applied twice (an item removed through the API since does not
// come back) and a new event is applied.
func TestOwnershipEvents(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		h, stop := startListening(t, dir, db, fixedClock)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 4)
		base := "/v1/accounts/" + acc.id
		code, body := c.do("POST", base+"/technicians", acc.token, technician("owner@acme.test", ""))
		if code != 201 {
			t.Fatalf("add: %d %v", code, body)
		}
		owner := body["id"].(string)

		publish := func(natsURL, kind string, ev any) {
			t.Helper()
			nc, err := nats.Connect(natsURL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := nc.JetStream()
			if err != nil {
				t.Fatal(err)
			}
			data, ok := ev.([]byte)
			if !ok {
				data, _ = json.Marshal(ev)
			}
			if _, err := js.Publish("roster.ownership."+acc.id+"."+kind, data); err != nil {
				t.Fatal(err)
			}
		}
		nc, err := nats.Connect(h.NATSURL())
		if err != nil {
			t.Fatal(err)
		}
		js, _ := nc.JetStream()
		dead, err := js.PullSubscribe("roster.deadletter.identity_ownership", "dl", nats.BindStream("ROSTER_DEADLETTER"), nats.DeliverAll())
		if err != nil {
			t.Fatal(err)
		}

		url := h.NATSURL()
		publish(url, "ticket", map[string]any{"id": "T1", "owner_id": owner, "status": "open"})
		publish(url, "ticket", map[string]any{"id": "T2", "owner_id": owner, "status": "pending"})
		publish(url, "report", map[string]any{"id": "R1", "owner_id": owner, "folder": "personal"})
		publish(url, "ticket", map[string]any{"op": "upsert", "id": "T1", "owner_id": owner, "status": "resolved"})
		publish(url, "ticket", map[string]any{"op": "delete", "id": "T2"})
		// Refused, each changing nothing.
		publish(url, "ticket", map[string]any{"id": "T3", "owner_id": "tec_nobody", "status": "open"})
		publish(url, "ticket", map[string]any{"id": "T1", "owner_id": owner, "status": "reopened"})
		publish(url, "ticket", []byte(`{"id": "T1", "owner_id":`))
		publish(url, "ticket", map[string]any{"kind": "asset", "id": "T1", "owner_id": ""})
		publish(url, "ticket", map[string]any{"op": "move", "id": "T1"})
		publish(url, "asset", map[string]any{"id": "A1", "owner_id": owner})

		owns := func(c client, kind, id string) bool { // tolerant: polled while identity is busy
			code, _, b := svctest.Do(t, "GET", c.base+base+"/ownership?kind="+kind+"&owner_id="+owner, acc.token, nil)
			return code == 200 && strings.Contains(string(b), `"id":"`+id+`"`)
		}
		svctest.Eventually(t, "the events applied", func() bool { return owns(c, "asset", "A1") })
		reg := registry(t, c, acc)
		if len(reg) != 3 || reg["ticket/T1"] != owner || reg["report/R1"] != owner {
			t.Fatalf("registry: %v", reg)
		}
		_, listed := c.do("GET", base+"/ownership?kind=ticket", acc.token, nil)
		if d := listed["data"].([]any); len(d) != 1 || d[0].(map[string]any)["status"] != "resolved" {
			t.Fatalf("the ticket's update: %v", listed)
		}
		wantReasons := []string{"item.owner_id", "item.status", "body", "kind", "op"}
		var msgs []*nats.Msg
		for len(msgs) < len(wantReasons) {
			got, err := dead.Fetch(len(wantReasons)-len(msgs), nats.MaxWait(10*time.Second))
			if err != nil {
				t.Fatalf("dead letters after %d: %v", len(msgs), err)
			}
			msgs = append(msgs, got...)
		}
		if extra, err := dead.Fetch(1, nats.MaxWait(200*time.Millisecond)); err == nil && len(extra) > 0 {
			t.Fatalf("an unexpected dead letter: %v", extra[0].Header)
		}
		for i, m := range msgs {
			if reason := m.Header.Get("roster-dl-error"); !strings.Contains(reason, wantReasons[i]) ||
				m.Header.Get("roster-dl-subject") != "roster.ownership."+acc.id+".ticket" {
				t.Fatalf("dead letter %d: %q on %q", i, reason, m.Header.Get("roster-dl-subject"))
			}
			_ = m.Ack()
		}

		// Removed through the API; the events that registered it are not
		// applied again after a restart.
		if code, _ := c.do("DELETE", base+"/ownership/report/R1", acc.token, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		nc.Close()
		stop()
		h, _ = startListening(t, dir, db, fixedClock)
		c = client{t, h.URL()}
		publish(h.NATSURL(), "asset", map[string]any{"id": "A2", "owner_id": owner})
		svctest.Eventually(t, "the event after the restart", func() bool { return owns(c, "asset", "A2") })
		if reg := registry(t, c, acc); len(reg) != 3 || reg["report/R1"] != "" || reg["ticket/T1"] != owner {
			t.Fatalf("registry after the restart: %v", reg)
		}
		if _, present := registry(t, c, acc)["report/R1"]; present {
			t.Fatal("an event was applied twice: R1 is back")
		}
	})
}
