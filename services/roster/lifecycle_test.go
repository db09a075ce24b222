package roster

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
)

// The clock of the lifecycle tests: 2026-11-23, in the monthly cycle
// 2026-11-01 … 2026-11-30 of an account anchored on the 1st.
func fixedClock() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }

type account struct {
	id, token, adminID string
}

func createAccount(t *testing.T, c client, profile, plan string, seats int) account {
	t.Helper()
	code, body := c.do("POST", "/v1/accounts", operator, map[string]any{
		"name": "Acme " + profile, "profile": profile, "plan": plan, "billing_period": "monthly", "seats": seats,
		"billing_anchor": "2026-11-01",
		"admin":          map[string]any{"email": "admin@" + profile + ".test", "first_name": "Ada", "last_name": "Admin"},
	})
	if code != 201 {
		t.Fatalf("create account: %d %v", code, body)
	}
	id := body["account"].(map[string]any)["id"].(string)
	// Adding technicians needs the subscription that seatbilling opens
	// from AccountCreated (until then: 503 account-not-ready).
	svctest.Eventually(t, "the subscription", func() bool {
		code, _ := c.do("GET", "/v1/accounts/"+id+"/subscription", operator, nil)
		return code == 200
	})
	return account{
		id:      id,
		token:   body["api_token"].(string),
		adminID: body["admin"].(map[string]any)["id"].(string),
	}
}

func technician(email, role string) map[string]any {
	return map[string]any{"email": email, "first_name": "Tess", "last_name": "Tech", "role": role}
}

func problemType(body map[string]any) string {
	s, _ := body["type"].(string)
	return s
}

// I-1, I-2, R-6, S-3, S-6, I-3, I-9, L-7 through HTTP with the all-in-one
// server, under atera-msp and roster.
func TestTechnicianLifecycle(t *testing.T) {
	t.Parallel()
	for _, profile := range []string{"atera-msp", "roster"} {
		t.Run(profile, func(t *testing.T) {
			svctest.EachBackend(t, func(t *testing.T, db string) {
				h, _ := startHostAt(t, t.TempDir(), db, fixedClock)
				c := client{t, h.URL()}
				plan := map[string]string{"atera-msp": "growth", "roster": "growth"}[profile]
				acc := createAccount(t, c, profile, plan, 2)
				base := "/v1/accounts/" + acc.id

				// I-1: atera requires a role; roster does not.
				code, body := c.do("POST", base+"/technicians", acc.token, map[string]any{"email": "x@acme.test", "first_name": "X", "last_name": "Y"})
				if profile == "atera-msp" && (code != 422 || problemType(body) != "https://roster.dev/problems/validation") {
					t.Fatalf("atera without role: %d %v", code, body)
				}
				if profile == "roster" && code != 201 {
					t.Fatalf("roster without role: %d %v", code, body)
				}
				first := "tess@acme.test"
				if profile == "roster" {
					first = "x@acme.test" // the second seat is now taken
				} else {
					code, body = c.do("POST", base+"/technicians", acc.token, technician(first, "Admin"), "Idempotency-Key", "add-1")
					if code != 201 {
						t.Fatalf("add: %d %v", code, body)
					}
					// Retried: the same technician, nothing added twice.
					code2, again := c.do("POST", base+"/technicians", acc.token, technician(first, "Admin"), "Idempotency-Key", "add-1")
					if code2 != 201 || again["id"] != body["id"] {
						t.Fatalf("retry: %d %v", code2, again)
					}
					if body["status"] != "invited" || body["requested_role"] != "Admin" {
						t.Fatalf("added: %v", body)
					}
				}
				_, list := c.do("GET", base+"/technicians?email="+first, acc.token, nil)
				tech := list["data"].([]any)[0].(map[string]any)
				techID := tech["id"].(string)
				// Beginner on creation, whatever was asked.
				svctest.Eventually(t, "Beginner assigned", func() bool {
					_, got := c.do("GET", base+"/technicians/"+techID, acc.token, nil)
					return got["role"] == "Beginner"
				})

				// S-3: every seat taken → 402 with the exact prorated quote:
				// 18900 × 8 days left (23rd..30th) / 30 = 5040.
				code, body = c.do("POST", base+"/technicians", acc.token, technician("third@acme.test", "Beginner"))
				if code != http.StatusPaymentRequired || problemType(body) != "https://roster.dev/problems/seat-purchase-required" {
					t.Fatalf("no seat: %d %v", code, body)
				}
				quote := body["quote"].(map[string]any)
				if quote["amount"] != 5040.0 || quote["currency"] != "usd" || quote["days_left"] != 8.0 || quote["cycle_days"] != 30.0 || quote["cycle_end"] != "2026-11-30" {
					t.Fatalf("quote: %v", quote)
				}
				// Confirmed: one seat bought, one prorated charge.
				req := technician("third@acme.test", "Beginner")
				req["confirm_seat_purchase"] = true
				code, third := c.do("POST", base+"/technicians", acc.token, req)
				if code != 201 {
					t.Fatalf("confirmed purchase: %d %v", code, third)
				}
				svctest.Eventually(t, "the charge", func() bool {
					_, ch := c.do("GET", base+"/charges", acc.token, nil)
					d, _ := ch["data"].([]any)
					return len(d) == 1 && d[0].(map[string]any)["amount"] == 5040.0 && d[0].(map[string]any)["technician_id"] == third["id"]
				})

				// I-9: the last admin cannot be disabled.
				code, body = c.do("POST", base+"/technicians/"+acc.adminID+"/disable", acc.token, nil)
				if code != 409 || problemType(body) != "https://roster.dev/problems/last-admin" {
					t.Fatalf("last admin: %d %v", code, body)
				}

				// S-4 + I-3: disable frees the seat; the email stays reserved.
				code, body = c.do("POST", base+"/technicians/"+techID+"/disable", acc.token, nil)
				if code != 200 || body["status"] != "disabled" {
					t.Fatalf("disable: %d %v", code, body)
				}
				code, body = c.do("POST", base+"/technicians", acc.token, technician(first, "Beginner"))
				if code != 409 || problemType(body) != "https://roster.dev/problems/email-reserved" {
					t.Fatalf("reserved email: %d %v", code, body)
				}
				code, body = c.do("POST", base+"/technicians", acc.token, technician(third["email"].(string), "Beginner"))
				if code != 409 || problemType(body) != "https://roster.dev/problems/email-in-use" {
					t.Fatalf("email in use: %d %v", code, body)
				}
				// I-8: hide_disabled filters; the record stays.
				_, all := c.do("GET", base+"/technicians", acc.token, nil)
				_, visible := c.do("GET", base+"/technicians?hide_disabled=true", acc.token, nil)
				if count(all) != count(visible)+1 {
					t.Fatalf("hide_disabled: %d vs %d", count(all), count(visible))
				}
				// I-3: renaming the disabled technician's email frees the old one.
				code, body = c.do("PATCH", base+"/technicians/"+techID, acc.token, map[string]any{"email": "old-" + first})
				if code != 200 || body["email"] != "old-"+first {
					t.Fatalf("rename: %d %v", code, body)
				}
				// S-4: the freed seat is reused at no charge.
				svctest.Eventually(t, "the seat freed", func() bool {
					_, sub := c.do("GET", base+"/subscription", acc.token, nil)
					seats, _ := sub["seats"].(map[string]any)
					return seats != nil && seats["available"] == 1.0
				})
				code, body = c.do("POST", base+"/technicians", acc.token, technician(first, "Beginner"))
				if code != 201 {
					t.Fatalf("re-add freed email: %d %v", code, body)
				}
				_, ch := c.do("GET", base+"/charges", acc.token, nil)
				if count(ch) != 1 {
					t.Fatalf("seat reuse charged: %v", ch)
				}
				// Enabling needs a seat again: none free → 402.
				code, body = c.do("POST", base+"/technicians/"+techID+"/enable", acc.token, nil)
				if code != 402 {
					t.Fatalf("enable without seat: %d %v", code, body)
				}
			})
		})
	}
}

// L-7: a token of one account gets 404 on every route of another account.
func TestCrossAccountIsolation(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	a := createAccount(t, c, "roster", "pro", 3)
	b := createAccount(t, c, "atera-msp", "pro", 3)
	routes := []struct{ method, path string }{
		{"GET", ""}, {"GET", "/technicians"}, {"POST", "/technicians"}, {"GET", "/technicians/" + a.adminID},
		{"PATCH", "/technicians/" + a.adminID}, {"POST", "/technicians/" + a.adminID + "/disable"},
		{"POST", "/technicians/" + a.adminID + "/enable"}, {"GET", "/sites"}, {"POST", "/sites"}, {"POST", "/tokens"},
		{"GET", "/subscription"}, {"GET", "/charges"}, {"POST", "/subscription/quote"}, {"GET", "/roles"},
		{"GET", "/audit"}, {"GET", "/audit/verify"}, {"PUT", "/technicians/" + a.adminID + "/role"},
		{"GET", "/technicians/" + a.adminID + "/role"}, {"POST", "/technicians/" + a.adminID + "/invitation"},
		{"POST", "/technicians/" + a.adminID + "/password"}, {"GET", "/end-users"}, {"POST", "/end-users"},
		{"POST", "/sites/site_x/folders"}, {"GET", "/roles/role_x"},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			code, body := c.do(r.method, "/v1/accounts/"+a.id+r.path, b.token, map[string]any{})
			if code != 404 {
				t.Fatalf("%s %s with another account's token: %d %v", r.method, r.path, code, body)
			}
			code, _ = c.do(r.method, "/v1/accounts/"+a.id+r.path, "rst_not-a-token", map[string]any{})
			if code != 401 {
				t.Fatalf("unknown token: %d", code)
			}
		})
	}
	// The account's own token reads its own data.
	if code, _ := c.do("GET", "/v1/accounts/"+a.id+"/technicians", a.token, nil); code != 200 {
		t.Fatalf("own token: %d", code)
	}
}

// S-6: fifty concurrent adds against one free seat: one technician, 49 × 402.
func TestConcurrentAddsNeverOversubscribe(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		h, _ := startHostAt(t, t.TempDir(), db, fixedClock)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "pro", 2)
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _ := c.do("POST", "/v1/accounts/"+acc.id+"/technicians", acc.token,
					map[string]any{"email": fmt.Sprintf("t%d@acme.test", i), "first_name": "T", "last_name": "T"})
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[201] != 1 || codes[402] != 49 {
			t.Fatalf("answers: %v, want one 201 and 49 402", codes)
		}
		_, list := c.do("GET", "/v1/accounts/"+acc.id+"/technicians", acc.token, nil)
		if count(list) != 2 {
			t.Fatalf("%d technicians, want the admin and one more", count(list))
		}
	})
}

// I-10: end users belong to a site, can be deactivated and reactivated,
// never take a seat; a deactivated one may not open new tickets.
func TestEndUsers(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	acc := createAccount(t, c, "atera-msp", "growth", 1)
	other := createAccount(t, c, "roster", "pro", 1)
	base := "/v1/accounts/" + acc.id

	code, site := c.do("POST", base+"/sites", acc.token, map[string]any{"name": "Head office"})
	if code != 201 || site["id"] == nil {
		t.Fatalf("site: %d %v", code, site)
	}
	if code, p := c.do("POST", base+"/sites", acc.token, map[string]any{"name": "head OFFICE"}); code != 409 {
		t.Fatalf("duplicate site name: %d %v", code, p)
	}
	if code, p := c.do("POST", base+"/end-users", acc.token, map[string]any{"email": "bad", "name": "", "site_id": ""}); code != 422 || len(p["errors"].([]any)) != 3 {
		t.Fatalf("invalid end user: %d %v", code, p)
	}
	// Every seat is taken (1 seat, the admin): end users still come in free.
	code, eu := c.do("POST", base+"/end-users", acc.token, map[string]any{"email": "bob@client.test", "name": "Bob", "site_id": site["id"]})
	if code != 201 || eu["status"] != "active" {
		t.Fatalf("end user: %d %v", code, eu)
	}
	id := eu["id"].(string)
	if code, p := c.do("POST", base+"/end-users", acc.token, map[string]any{"email": "BOB@client.test", "name": "Bob 2", "site_id": site["id"]}); code != 409 {
		t.Fatalf("duplicate email: %d %v", code, p)
	}
	_, may := c.do("GET", base+"/end-users/"+id+"/can-submit-tickets", acc.token, nil)
	if may["allowed"] != true {
		t.Fatalf("active end user: %v", may)
	}
	code, eu = c.do("POST", base+"/end-users/"+id+"/deactivate", acc.token, nil)
	if code != 200 || eu["status"] != "deactivated" {
		t.Fatalf("deactivate: %d %v", code, eu)
	}
	_, may = c.do("GET", base+"/end-users/"+id+"/can-submit-tickets", acc.token, nil)
	if may["allowed"] != false {
		t.Fatalf("deactivated end user may submit: %v", may)
	}
	if code, eu = c.do("POST", base+"/end-users/"+id+"/reactivate", acc.token, nil); code != 200 || eu["status"] != "active" {
		t.Fatalf("reactivate: %d %v", code, eu)
	}
	_, list := c.do("GET", base+"/end-users?site_id="+site["id"].(string), acc.token, nil)
	if count(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	_, sub := c.do("GET", base+"/subscription", acc.token, nil)
	if seats, _ := sub["seats"].(map[string]any); seats == nil || seats["used"] != 1.0 {
		t.Fatalf("end users took a seat: %v", sub)
	}
	for _, path := range []string{"/end-users", "/end-users/" + id, "/end-users/" + id + "/can-submit-tickets"} {
		if code, _ := c.do("GET", base+path, other.token, nil); code != 404 {
			t.Fatalf("GET %s with another account's token: %d", path, code)
		}
	}
	if code, _ := c.do("POST", base+"/end-users/"+id+"/deactivate", other.token, nil); code != 404 {
		t.Fatalf("deactivate with another account's token: %d", code)
	}
}
