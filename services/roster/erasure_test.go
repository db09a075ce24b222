package roster

import (
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// I-3: atera keeps a disabled technician's email reserved forever; roster
// erases a technician disabled for longer than the retention period (30
// days): personal data replaced by a pseudonym, the id kept for the audit
// log's attribution, the email free again.
func TestErasureAfterRetention(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()}
		h := startHostWith(t, svc.Config{DataDir: t.TempDir(), DB: db, Now: clock.Now})
		c := client{t, h.URL()}

		atera := createAccount(t, c, "atera-msp", "growth", 3)
		_, tech := c.do("POST", "/v1/accounts/"+atera.id+"/technicians", atera.token, technician("keep@acme.test", "Beginner"))
		c.do("POST", "/v1/accounts/"+atera.id+"/technicians/"+tech["id"].(string)+"/disable", atera.token, nil)
		code, body := c.do("POST", "/v1/accounts/"+atera.id+"/technicians/"+tech["id"].(string)+"/erase", atera.token, nil)
		if code != 409 || problemType(body) != "https://roster.dev/problems/erasure-not-offered" {
			t.Fatalf("atera erase: %d %v", code, body)
		}

		acc := createAccount(t, c, "roster", "growth", 3)
		base := "/v1/accounts/" + acc.id
		code, tech = c.do("POST", base+"/technicians", acc.token, technician("leaver@acme.test", ""))
		if code != 201 {
			t.Fatalf("add: %d %v", code, tech)
		}
		id := tech["id"].(string)
		if code, body = c.do("POST", base+"/technicians/"+id+"/erase", acc.token, nil); code != 409 ||
			problemType(body) != "https://roster.dev/problems/not-disabled" {
			t.Fatalf("erase active: %d %v", code, body)
		}
		c.do("POST", base+"/technicians/"+id+"/disable", acc.token, nil)
		clock.Advance(29 * 24 * time.Hour)
		if code, body = c.do("POST", base+"/technicians/"+id+"/erase", acc.token, nil); code != 409 ||
			problemType(body) != "https://roster.dev/problems/retention-not-over" || body["erasable_at"] == nil {
			t.Fatalf("erase before retention: %d %v", code, body)
		}
		// Still reserved meanwhile.
		if code, body = c.do("POST", base+"/technicians", acc.token, technician("leaver@acme.test", "")); code != 409 ||
			problemType(body) != "https://roster.dev/problems/email-reserved" {
			t.Fatalf("email before erasure: %d %v", code, body)
		}
		clock.Advance(24 * time.Hour)
		code, erased := c.do("POST", base+"/technicians/"+id+"/erase", acc.token, nil, "Idempotency-Key", "erase-1")
		if code != 200 || erased["erased"] != true || strings.Contains(erased["email"].(string), "leaver") ||
			erased["first_name"] != "Erased" || erased["id"] != id {
			t.Fatalf("erase: %d %v", code, erased)
		}
		if code, again := c.do("POST", base+"/technicians/"+id+"/erase", acc.token, nil); code != 200 || again["email"] != erased["email"] {
			t.Fatalf("erase again: %d %v", code, again)
		}
		if code, body = c.do("POST", base+"/technicians/"+id+"/enable", acc.token, nil); code != 409 ||
			problemType(body) != "https://roster.dev/problems/technician-erased" {
			t.Fatalf("enable erased: %d %v", code, body)
		}
		// The email is free again.
		if code, body = c.do("POST", base+"/technicians", acc.token, technician("leaver@acme.test", "")); code != 201 {
			t.Fatalf("re-add erased email: %d %v", code, body)
		}
		// The audit log keeps the attribution by id.
		svctest.Eventually(t, "the erasure audited", func() bool {
			_, a := c.do("GET", base+"/audit?action=technician.erased", acc.token, nil)
			d, _ := a["data"].([]any)
			return len(d) == 1 && d[0].(map[string]any)["target"].(map[string]any)["id"] == id
		})
	})
}
