package roster

import (
	"testing"
	"time"
)

// L-7 on the directory-sync routes: another account's token gets 404, an
// unknown one 401, and a delivery signed with another account's secret
// 401.
func TestDirectorySyncCrossAccount(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	a := createAccount(t, c, "roster", "pro", 3)
	b := createAccount(t, c, "roster", "pro", 3)
	routes := []struct{ method, path string }{
		{"POST", "/hris/secrets"}, {"GET", "/hris/mapping"}, {"PUT", "/hris/mapping"}, {"GET", "/hris/deliveries"},
		{"GET", "/hris/deliveries/dlv_x"}, {"POST", "/hris/deliveries/dlv_x/redrive"}, {"POST", "/imports"},
		{"GET", "/imports/imp_x"}, {"GET", "/imports/imp_x/rows"}, {"GET", "/technicians/" + a.adminID + "/directory"},
		{"GET", "/end-users/eu_x/directory"},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			if code, body := c.do(r.method, "/v1/accounts/"+a.id+r.path, b.token, map[string]any{}); code != 404 {
				t.Fatalf("another account's token: %d %v", code, body)
			}
			if code, _ := c.do(r.method, "/v1/accounts/"+a.id+r.path, "rst_not-a-token", map[string]any{}); code != 401 {
				t.Fatalf("unknown token: %d", code)
			}
		})
	}
	for _, p := range []string{"/Users", "/Groups", "/Users/" + a.adminID, "/ServiceProviderConfig"} {
		if code, _ := c.do("GET", "/scim/v2/"+a.id+p, b.token, nil); code != 404 {
			t.Fatalf("SCIM %s with another account's token: %d", p, code)
		}
	}
	c.do("POST", "/v1/accounts/"+a.id+"/hris/secrets", a.token, nil)
	_, sb := c.do("POST", "/v1/accounts/"+b.id+"/hris/secrets", b.token, nil)
	s := &hrisSender{c: c, path: "/v1/accounts/" + a.id + "/hris/generic", clock: fixedClock, secret: sb["secret"].(string)}
	if code, _ := s.send("x1", -time.Second, employeeEvent("employee.hired", "E1", "e@acme.test", "E", "E", "IT", "")); code != 401 {
		t.Fatalf("signed with another account's secret: %d", code)
	}
}
