package roster

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

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
	t.Parallel()
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
func atlanHost(t *testing.T, db string) (client, string, *svc.Host) {
	t.Helper()
	c, mail, h, _ := atlanHostClock(t, db)
	return c, mail, h
}

// atlanHostClock is atlanHost with its clock.
func atlanHostClock(t *testing.T, db string) (client, string, *svc.Host, *testClock) {
	t.Helper()
	dir := t.TempDir()
	clock := &testClock{now: fixedClock()}
	h := startHostWith(t, svc.Config{DataDir: dir, DB: db, Now: clock.Now})
	return client{t, h.URL()}, filepath.Join(dir, "mail"), h, clock
}

// technicianIDs lists the ids GET …/technicians?query answers.
func technicianIDs(t *testing.T, c client, acc account, query string) []string {
	t.Helper()
	code, body := c.do("GET", "/v1/accounts/"+acc.id+"/technicians?"+query, acc.token, nil)
	if code != 200 {
		t.Fatalf("list ?%s: %d %v", query, code, body)
	}
	var ids []string
	for _, d := range body["data"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
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
	t.Parallel()
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
		// The live invitations: the first admin (who set no password yet)
		// and Cy (Ann accepted, Bob revoked), with the link the resend
		// issued, not the first one.
		code, body = c.do("GET", base+"/invitations", acc.token, nil)
		d, _ := body["data"].([]any)
		if code != 200 || len(d) != 2 || d[0].(map[string]any)["base_role"] != "Admin" {
			t.Fatalf("pending invitations: %d %v", code, body)
		}
		if p := d[1].(map[string]any); p["technician_id"] != cyID || p["email"] != "cy@atlan.test" || p["status"] != "pending" ||
			p["base_role"] != "Member" || p["id"] == invs["cy@atlan.test"]["id"] {
			t.Fatalf("pending invitation: %v", p)
		}
		if code, body = c.do("GET", base+"/invitations?limit=0", acc.token, nil); code != 422 {
			t.Fatalf("bad limit: %d %v", code, body)
		}
	})
}

// S-8, H-2: SCIM answers 403 plan-gate on Premier, and on Enterprise until
// SSO is configured; with both it provisions (pending, no seat), the SSO
// sign-on accepts (a seat taken), and SCIM deactivation deactivates (the
// seat freed, the session dead) — on SQLite and PostgreSQL.
func TestAtlanSCIMGate(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		idp, err := mockoidc.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = idp.Shutdown() })
		idp.CodeChallengeMethodsSupported = []string{"S256"}
		c, _, h := atlanHost(t, db)
		scimOf := func(acc account) scimClient {
			code, tok := c.do("POST", "/v1/accounts/"+acc.id+"/tokens", acc.token, map[string]any{"name": "idp", "scopes": []string{"scim"}})
			if code != 201 {
				t.Fatalf("token: %d %v", code, tok)
			}
			return scimClient{t: t, base: c.base + "/scim/v2/" + acc.id, token: tok["token"].(string)}
		}
		sso := func(acc account) {
			cfg := idp.Config()
			if code, v := c.do("PUT", "/v1/accounts/"+acc.id+"/sso", acc.token, map[string]any{"issuer": cfg.Issuer, "client_id": cfg.ClientID, "client_secret": cfg.ClientSecret}); code != 200 {
				t.Fatalf("configure SSO: %d %v", code, v)
			}
		}

		premier := atlanAccount(t, c, "premier", 3)
		sso(premier)
		code, body := scimOf(premier).do("GET", "/Users", "")
		if code != 403 || body["type"] != problems+"plan-gate" || !strings.Contains(body["detail"].(string), "Enterprise") {
			t.Fatalf("SCIM on Premier: %d %v", code, body)
		}

		ent := atlanAccount(t, c, "enterprise", 3)
		s := scimOf(ent)
		code, body = s.do("GET", "/Users", "")
		if code != 403 || body["type"] != problems+"plan-gate" || !strings.Contains(body["detail"].(string), "single sign-on") {
			t.Fatalf("SCIM on Enterprise without SSO: %d %v", code, body)
		}
		sso(ent)
		awaitSeats(t, c, ent, 1)
		code, user := s.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dee@atlan.test","active":true,
			"name":{"givenName":"Dee","familyName":"Data"},"emails":[{"primary":true,"value":"dee@atlan.test"}]}`)
		if code != 201 {
			t.Fatalf("SCIM create on Enterprise with SSO: %d %v", code, user)
		}
		id := user["id"].(string)
		time.Sleep(100 * time.Millisecond)
		if seatsUsed(c, ent)["used"] != 1.0 {
			t.Fatalf("a provisioned, pending user holds a seat: %v", seatsUsed(c, ent))
		}
		idp.QueueUser(&mockoidc.MockUser{Subject: "okta-dee", Email: "dee@atlan.test", EmailVerified: true})
		code, sess, _ := signOn(t, newBrowser(t), h, ent.id)
		if code != 200 || sess["technician_id"] != id {
			t.Fatalf("sign-on: %d %v", code, sess)
		}
		awaitSeats(t, c, ent, 2)
		token := sess["session_token"].(string)
		if code, _ := c.do("GET", "/v1/auth/sessions", token, nil); code != 200 {
			t.Fatalf("session: %d", code)
		}
		code, body = s.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
		if code != 200 || body["active"] != false {
			t.Fatalf("SCIM deactivate: %d %v", code, body)
		}
		if _, tech := c.do("GET", "/v1/accounts/"+ent.id+"/technicians/"+id, ent.token, nil); tech["status"] != "disabled" {
			t.Fatalf("after SCIM deactivation: %v", tech)
		}
		awaitSeats(t, c, ent, 1)
		if code, _ := c.do("GET", "/v1/auth/sessions", token, nil); code != 401 {
			t.Fatalf("the deactivated user's session: %d", code)
		}
	})
}

// acceptInvite invites email with role and accepts with a password; it
// returns the technician id once the role is applied.
func acceptInvite(t *testing.T, c client, mailDir string, acc account, email, role string) string {
	t.Helper()
	code, body := c.do("POST", "/v1/accounts/"+acc.id+"/invitations", acc.token, map[string]any{"emails": []string{email}, "base_role": role})
	if code != 201 {
		t.Fatalf("invite %s: %d %v", email, code, body)
	}
	id := body["data"].([]any)[0].(map[string]any)["technician_id"].(string)
	m := awaitMail(t, mailDir, email, "")
	if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "correct horse battery"}); code != 204 {
		t.Fatalf("accept %s: %d %v", email, code, p)
	}
	svctest.Eventually(t, role+" applied to "+email, func() bool {
		_, got := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+id, acc.token, nil)
		return got["role"] == role
	})
	return id
}

// I-9, I-7, S-2, O-2: the sole Admin can be neither deactivated nor
// demoted until another is promoted; a deactivated user cannot log in,
// their sessions die and their seat is free.
func TestAtlanDeactivationAndSoleAdmin(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		c, mailDir, _, clock := atlanHostClock(t, db)
		acc := atlanAccount(t, c, "starter", 3)
		base := "/v1/accounts/" + acc.id
		// The first admin accepts their invitation: no second seat.
		m := awaitMail(t, mailDir, "admin@atlan.test", "")
		if code, p := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "correct horse battery"}); code != 204 {
			t.Fatalf("admin accepts: %d %v", code, p)
		}
		awaitSeats(t, c, acc, 1)
		svctest.Eventually(t, "the admin is known to identity", func() bool {
			code, body := c.do("POST", base+"/technicians/"+acc.adminID+"/disable", acc.token, nil)
			return code == 409 && problemType(body) == problems+"last-admin"
		})
		code, body := c.do("PUT", base+"/technicians/"+acc.adminID+"/role", acc.token, map[string]any{"role": "Member"})
		if code != 409 || problemType(body) != problems+"last-admin" {
			t.Fatalf("demote the sole admin: %d %v", code, body)
		}

		mia := acceptInvite(t, c, mailDir, acc, "mia@atlan.test", "Member")
		awaitSeats(t, c, acc, 2)
		code, s := login(c, acc.id, "mia@atlan.test", "correct horse battery")
		if code != 200 {
			t.Fatalf("login: %d %v", code, s)
		}
		// Last active: the login, then a use of the session two minutes
		// later; the filters select by it (never active counts as inactive).
		t0 := fixedClock()
		_, got := c.do("GET", base+"/technicians/"+mia, acc.token, nil)
		if got["last_active_at"] != t0.Format(time.RFC3339) {
			t.Fatalf("Mia's last activity after logging in: %v", got)
		}
		clock.Advance(2 * time.Minute)
		if code, _ := c.do("GET", "/v1/auth/sessions", s["session_token"].(string), nil); code != 200 {
			t.Fatalf("Mia's session: %d", code)
		}
		_, got = c.do("GET", base+"/technicians/"+mia, acc.token, nil)
		if got["last_active_at"] != t0.Add(2*time.Minute).Format(time.RFC3339) {
			t.Fatalf("Mia's last activity after using her session: %v", got)
		}
		since := url.QueryEscape(t0.Add(time.Minute).Format(time.RFC3339))
		if ids := technicianIDs(t, c, acc, "active_since="+since); fmt.Sprint(ids) != fmt.Sprint([]string{mia}) {
			t.Fatalf("active since: %v", ids)
		}
		if ids := technicianIDs(t, c, acc, "inactive_since="+since); slices.Contains(ids, mia) || !slices.Contains(ids, acc.adminID) {
			t.Fatalf("inactive since: %v", ids)
		}
		if code, body := c.do("GET", base+"/technicians?inactive_since=yesterday", acc.token, nil); code != 422 || !strings.Contains(fmt.Sprint(body), "inactive_since") {
			t.Fatalf("a bad filter: %d %v", code, body)
		}
		// A token acting for the first admin works until they are
		// deactivated.
		code, tok := c.do("POST", base+"/tokens", acc.token, map[string]any{"name": "ada's script", "scopes": []string{"technicians:read"}, "technician_id": acc.adminID})
		if code != 201 || tok["technician_id"] != acc.adminID {
			t.Fatalf("a token for the admin: %d %v", code, tok)
		}
		adaToken := tok["token"].(string)
		if code, _ := c.do("GET", base+"/technicians", adaToken, nil); code != 200 {
			t.Fatalf("the admin's token: %d", code)
		}
		if code, body := c.do("POST", base+"/tokens", acc.token, map[string]any{"name": "x", "scopes": []string{"technicians:read"}, "technician_id": "tech_nobody"}); code != 422 {
			t.Fatalf("a token for nobody: %d %v", code, body)
		}
		// Promote Mia, then the first admin can go.
		if code, body := c.do("PUT", base+"/technicians/"+mia+"/role", acc.token, map[string]any{"role": "Admin"}); code != 200 {
			t.Fatalf("promote: %d %v", code, body)
		}
		svctest.Eventually(t, "the first admin deactivated once Mia is Admin", func() bool {
			code, _ := c.do("POST", base+"/technicians/"+acc.adminID+"/disable", acc.token, nil)
			return code == 200
		})
		awaitSeats(t, c, acc, 1)
		if code, _ := login(c, acc.id, "admin@atlan.test", "correct horse battery"); code != 401 {
			t.Fatalf("a deactivated user logs in: %d", code)
		}
		if code, _ := c.do("GET", base+"/technicians", adaToken, nil); code != 401 {
			t.Fatalf("a deactivated user's API token: %d", code)
		}
		// a deactivated Admin is denied everything.
		svctest.Eventually(t, "the deactivated admin denied", func() bool {
			return check(t, c, acc, acc.adminID, "read", "snowflake-prod", "table") == "deny/base_role"
		})
		if got := check(t, c, acc, mia, "read", "snowflake-prod", "table"); got != "allow/base_role" {
			t.Fatalf("the new admin: %s", got)
		}
		if _, list := c.do("GET", base+"/tokens", acc.token, nil); strings.Contains(fmt.Sprint(list), "ada's script") {
			t.Fatalf("the deactivated user's token still listed: %v", list)
		}
		// Now Mia is the sole Admin.
		code, body = c.do("POST", base+"/technicians/"+mia+"/disable", acc.token, nil)
		if code != 409 || problemType(body) != problems+"last-admin" {
			t.Fatalf("deactivate the sole admin: %d %v", code, body)
		}
		if code, _ := c.do("GET", "/v1/auth/sessions", s["session_token"].(string), nil); code != 200 {
			t.Fatalf("Mia's session: %d", code)
		}
	})
}
