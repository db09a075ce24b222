package roster

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// atlanAccount creates an atlan account on plan with a contract price per
// seat (S-1: every atlan plan is custom).
func atlanAccount(t *testing.T, c client, plan string, seats int) account {
	t.Helper()
	code, body := c.do("POST", "/v1/accounts", operator, map[string]any{
		"name": "Atlan " + plan, "profile": "atlan", "plan": plan, "billing_period": "annual", "seats": seats,
		"price_per_seat": 5000, "billing_anchor": "2026-11-01",
		"admin": map[string]any{"email": "admin@atlan.test", "first_name": "Ada", "last_name": "Admin"},
	})
	if code != 201 {
		t.Fatalf("create atlan account: %d %v", code, body)
	}
	id := body["account"].(map[string]any)["id"].(string)
	svctest.Eventually(t, "the subscription", func() bool {
		code, _ := c.do("GET", "/v1/accounts/"+id+"/subscription", operator, nil)
		return code == 200
	})
	return account{id: id, token: body["api_token"].(string), adminID: body["admin"].(map[string]any)["id"].(string)}
}

// an atlan account has the base roles Admin, Member, Guest and no
// custom roles (409 custom-roles-unavailable).
func TestAtlanBaseRoles(t *testing.T) {
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	acc := atlanAccount(t, c, "premier", 3)
	base := "/v1/accounts/" + acc.id
	var names []string
	svctest.Eventually(t, "the base roles", func() bool {
		_, body := c.do("GET", base+"/roles", acc.token, nil)
		d, _ := body["data"].([]any)
		names = names[:0]
		for _, r := range d {
			names = append(names, r.(map[string]any)["name"].(string))
		}
		return len(names) == 3
	})
	if names[0] != "Admin" || names[1] != "Guest" || names[2] != "Member" {
		t.Fatalf("roles: %v", names)
	}
	code, body := c.do("POST", base+"/roles", acc.token, map[string]any{"name": "Steward", "permissions": []string{"read"}})
	if code != 409 || problemType(body) != problems+"custom-roles-unavailable" {
		t.Fatalf("custom role under atlan: %d %v", code, body)
	}
}

// atlanHost starts the system with a test clock; mail lands under dir/mail.
func atlanHost(t *testing.T, db string) (client, string, *testClock) {
	t.Helper()
	dir := t.TempDir()
	clock := &testClock{now: fixedClock()}
	h := startHostWith(t, svc.Config{DataDir: dir, DB: db, Now: clock.Now})
	return client{t, h.URL()}, filepath.Join(dir, "mail"), clock
}

func seatsUsed(c client, acc account) map[string]any {
	_, sub := c.do("GET", "/v1/accounts/"+acc.id+"/subscription", acc.token, nil)
	seats, _ := sub["seats"].(map[string]any)
	return seats
}

// I-5, S-2: three emails invited in one request are pending and hold no
// seat; one accepts (a seat taken, the base role applied), one is revoked
// (its link dies), one stays pending. When no seat is free, an acceptance
// is held and audited, never over-allocated — on SQLite and PostgreSQL.
func TestAtlanInvitations(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, db string) {
		c, mailDir, _ := atlanHost(t, db)
		acc := atlanAccount(t, c, "premier", 2)
		base := "/v1/accounts/" + acc.id
		awaitSeats(t, c, acc, 1) // the first admin

		// I-1: email and base role are required; bad ones are named.
		code, body := c.do("POST", base+"/invitations", acc.token, map[string]any{"emails": []string{"not-an-email"}, "base_role": "Owner"})
		if code != 422 || len(body["errors"].([]any)) != 2 {
			t.Fatalf("bad invitation: %d %v", code, body)
		}
		req := map[string]any{"emails": []string{"ann@atlan.test", "bob@atlan.test", "cy@atlan.test"}, "base_role": "member"}
		code, body = c.do("POST", base+"/invitations", acc.token, req, "Idempotency-Key", "inv-1")
		if code != 201 {
			t.Fatalf("invite: %d %v", code, body)
		}
		code2, again := c.do("POST", base+"/invitations", acc.token, req, "Idempotency-Key", "inv-1")
		if code2 != 201 || fmt.Sprint(again) != fmt.Sprint(body) {
			t.Fatalf("retried invite: %d %v", code2, again)
		}
		invs := map[string]map[string]any{}
		for _, d := range body["data"].([]any) {
			inv := d.(map[string]any)
			if inv["status"] != "pending" || inv["base_role"] != "Member" || !strings.HasPrefix(inv["id"].(string), "inv_") {
				t.Fatalf("invitation: %v", inv)
			}
			invs[inv["email"].(string)] = inv
		}
		if len(invs) != 3 {
			t.Fatalf("invitations: %v", body)
		}
		// The same email again is refused, naming it.
		code, body = c.do("POST", base+"/invitations", acc.token, map[string]any{"emails": []string{"ANN@atlan.test"}, "base_role": "Guest"})
		if code != 409 || problemType(body) != problems+"email-in-use" {
			t.Fatalf("invite twice: %d %v", code, body)
		}
		ann, bob, cy := awaitMail(t, mailDir, "ann@atlan.test", ""), awaitMail(t, mailDir, "bob@atlan.test", ""), awaitMail(t, mailDir, "cy@atlan.test", "")
		// Pending invitees hold no seat (S-2).
		time.Sleep(100 * time.Millisecond)
		if s := seatsUsed(c, acc); s["used"] != 1.0 {
			t.Fatalf("seats with three pending: %v", s)
		}

		// Ann accepts: active, a seat taken, Member applied.
		const password = "correct horse battery"
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": ann.Token, "password": password}); code != 204 {
			t.Fatalf("accept: %d %v", code, p)
		}
		awaitSeats(t, c, acc, 2)
		annID := invs["ann@atlan.test"]["technician_id"].(string)
		svctest.Eventually(t, "Member applied on acceptance", func() bool {
			_, got := c.do("GET", base+"/technicians/"+annID, acc.token, nil)
			return got["status"] == "active" && got["role"] == "Member"
		})

		// Bob's invitation is revoked: 204, his link dead, no seat.
		code, body = c.do("DELETE", base+"/invitations/"+invs["bob@atlan.test"]["id"].(string), acc.token, nil)
		if code != 204 {
			t.Fatalf("revoke: %d %v", code, body)
		}
		code, body = c.do("POST", "/v1/auth/password", "", map[string]any{"token": bob.Token, "password": password})
		if code < 400 {
			t.Fatalf("a revoked link accepted: %d %v", code, body)
		}
		_, got := c.do("GET", base+"/technicians/"+invs["bob@atlan.test"]["technician_id"].(string), acc.token, nil)
		if got["status"] != "disabled" {
			t.Fatalf("revoked invitee: %v", got)
		}

		// Cy stays pending; both seats are taken, so accepting is held:
		// 409, audited for the admins, no seat over-allocated, the link
		// still good.
		code, body = c.do("POST", "/v1/auth/password", "", map[string]any{"token": cy.Token, "password": password})
		if code != 409 || problemType(body) != problems+"acceptance-held" {
			t.Fatalf("acceptance without a seat: %d %v", code, body)
		}
		cyID := invs["cy@atlan.test"]["technician_id"].(string)
		svctest.Eventually(t, "the held acceptance audited", func() bool {
			_, a := c.do("GET", base+"/audit?target="+cyID, acc.token, nil)
			return strings.Contains(fmt.Sprint(a), "acceptance_held")
		})
		_, got = c.do("GET", base+"/technicians/"+cyID, acc.token, nil)
		if got["status"] != "invited" || seatsUsed(c, acc)["used"] != 2.0 {
			t.Fatalf("held: %v, seats %v", got, seatsUsed(c, acc))
		}
		// A resend replaces the link (I-4).
		code, body = c.do("POST", base+"/invitations/"+invs["cy@atlan.test"]["id"].(string)+"/resend", acc.token, nil)
		if code != 202 || body["technician_id"] != cyID {
			t.Fatalf("resend: %d %v", code, body)
		}
	})
}
