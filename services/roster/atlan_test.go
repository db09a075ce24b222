package roster

import (
	"testing"

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
