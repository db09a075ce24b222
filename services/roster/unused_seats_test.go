package roster

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// I-11, S-7 across services: every successful authentication — accepting
// the invitation, each password login — emits identity's
// TechnicianLoggedIn in the transaction of the session (the first one also
// FirstLogin), and seatbilling's unused-seat report follows it by the
// injected clock — on SQLite and PostgreSQL.
func TestLoginsFeedTheUnusedSeatReport(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		clock := &testClock{now: fixedClock()} // 2026-11-23 12:00
		h := startHostWith(t, svc.Config{DataDir: dir, DB: db, NATSListen: "127.0.0.1:0", Now: clock.Now})
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 3) // 18900 a seat a month
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		uma := addTechnician(t, c, acc, "uma@acme.test")
		awaitSeats(t, c, acc, 3)

		// unused polls the report until cond holds of the listed reasons.
		unused := func(what, query string, cond func(map[string]string) bool) map[string]any {
			t.Helper()
			var rep map[string]any
			svctest.EventuallySeen(t, what, func() bool {
				_, rep = c.do("GET", base+"/seats/unused"+query, acc.token, nil)
				listed := map[string]string{}
				for _, d := range rep["data"].([]any) {
					s := d.(map[string]any)
					listed[s["technician_id"].(string)] = s["reason"].(string)
				}
				return cond(listed)
			}, func() string { return formatJSON(rep) })
			return rep
		}
		rep := unused("everyone invited", "", func(l map[string]string) bool {
			return len(l) == 3 && l[tess] == "never_logged_in" && l[uma] == "never_logged_in" && l[acc.adminID] == "never_logged_in"
		})
		if total := rep["total_monthly_cost"].(map[string]any); total["amount"] != 3.0*18900 || total["currency"] != "usd" {
			t.Fatalf("total %v", total)
		}

		// Uma accepts her invitation (method invitation); Tess logs in with
		// a temporary password.
		m := awaitMail(t, filepath.Join(dir, "mail"), "uma@acme.test", "")
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "correct horse battery"}); code != 204 {
			t.Fatalf("accept: %d %v", code, p)
		}
		const password = "temporary passphrase 7"
		if code, p := c.do("POST", base+"/technicians/"+tess+"/password", acc.token, map[string]any{"password": password}); code != 204 {
			t.Fatalf("set password: %d %v", code, p)
		}
		if code, s := login(c, acc.id, "tess@acme.test", password); code != 200 {
			t.Fatalf("login: %d %v", code, s)
		}
		unused("only the admin left", "", func(l map[string]string) bool { return len(l) == 1 && l[acc.adminID] != "" })

		// A month on, both are idle; Tess logs in again and is not.
		clock.Advance(31 * 24 * time.Hour)
		rep = unused("Tess and Uma idle", "", func(l map[string]string) bool {
			return len(l) == 3 && l[tess] == "inactive" && l[uma] == "inactive"
		})
		for _, d := range rep["data"].([]any) {
			if s := d.(map[string]any); s["technician_id"] == tess && (s["last_login_at"] != "2026-11-23T12:00:00Z" || s["status"] != "active") {
				t.Fatalf("Tess: %v", s)
			}
		}
		if code, s := login(c, acc.id, "tess@acme.test", password); code != 200 {
			t.Fatalf("second login: %d %v", code, s)
		}
		unused("Tess active again", "", func(l map[string]string) bool { return len(l) == 2 && l[tess] == "" })
		unused("a 40-day window", "?inactive_days=40", func(l map[string]string) bool { return len(l) == 1 })

		// On identity's stream: three logins, two of them first logins.
		nc, err := nats.Connect(h.NATSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			t.Fatal(err)
		}
		prefix := "roster.events.identity." + acc.id + "."
		counts := svctest.SubjectMsgs(t, js, "ROSTER_IDENTITY", prefix+">")
		if counts[prefix+"technician_logged_in"] != 3 || counts[prefix+"first_login"] != 2 {
			t.Fatalf("identity's stream: %v, want 3 TechnicianLoggedIn and 2 FirstLogin", counts)
		}
		msg, err := js.GetLastMsg("ROSTER_IDENTITY", prefix+"technician_logged_in")
		if err != nil {
			t.Fatal(err)
		}
		var ev identityv1.TechnicianLoggedIn
		if err := proto.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatal(err)
		}
		at := clock.Now().UTC()
		if ev.GetTechnicianId() != tess || ev.GetMethod() != "password" || !ev.GetLoggedInAt().AsTime().Equal(at) ||
			!ev.GetMeta().GetOccurredAt().AsTime().Equal(at) || ev.GetMeta().GetActor().GetId() != tess {
			t.Fatalf("TechnicianLoggedIn = %v", &ev)
		}
	})
}

func formatJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
