package seatbilling_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/seatbilling/ports"
)

type problemBody struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func decodeProblem(t *testing.T, body []byte) problemBody {
	t.Helper()
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return p
}

// S-3: POST …/subscription/quote prices N seats now, in the 402 quote's
// shape.
func TestQuoteRoute(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_quote"
		w.openAccount(t, acc, 2)
		path := "/v1/accounts/" + acc + "/subscription/quote"

		ok := []struct {
			body, want string
		}{
			{`{"seats": 1}`, `{"amount": 5040, "currency": "usd", "days_left": 8, "cycle_days": 30, "cycle_end": "2026-11-30"}`},
			{`{"seats": 3}`, `{"amount": 15120, "currency": "usd", "days_left": 8, "cycle_days": 30, "cycle_end": "2026-11-30"}`},
		}
		for _, tt := range ok {
			status, body := w.post(t, path, billingOperator, []byte(tt.body))
			if status != http.StatusOK || !jsonEqual(t, body, tt.want) {
				t.Errorf("POST quote %s = %d %s\nwant 200 %s", tt.body, status, body, tt.want)
			}
		}

		bad := []struct {
			name, body, field string
		}{
			{"zero seats", `{"seats": 0}`, "seats"},
			{"negative seats", `{"seats": -2}`, "seats"},
			{"no seats", `{}`, "seats"},
			{"seats not a number", `{"seats": "two"}`, "seats"},
			{"too many seats", `{"seats": 10001}`, "seats"},
			{"unknown field", `{"seats": 1, "discount": 5}`, "discount"},
		}
		for _, tt := range bad {
			t.Run(tt.name, func(t *testing.T) {
				status, body := w.post(t, path, billingOperator, []byte(tt.body))
				p := decodeProblem(t, body)
				if status != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Field != tt.field {
					t.Errorf("POST quote %s = %d %s, want 422 naming %s", tt.body, status, body, tt.field)
				}
			})
		}
		status, body := w.post(t, "/v1/accounts/acc_nobody/subscription/quote", billingOperator, []byte(`{"seats": 1}`))
		if status != http.StatusNotFound || decodeProblem(t, body).Type != "https://roster.dev/problems/not-found" {
			t.Errorf("quote of an unknown account = %d %s, want 404", status, body)
		}
	})
}

// GET …/charges: the ledger oldest first, paged by cursor.
func TestChargesRoute(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_ledger"
		w.openAccount(t, acc, 1) // full: every addition buys a seat

		if l := w.charges(t, acc, ""); len(l.Data) != 0 || l.NextCursor != nil {
			t.Fatalf("empty ledger = %+v", l)
		}
		status, _, body := svctest.Get(t, w.url+"/v1/accounts/"+acc+"/charges", billingOperator)
		if !jsonEqual(t, body, `{"data": [], "next_cursor": null}`) {
			t.Errorf("empty ledger = %d %s", status, body)
		}

		// Five purchases; two of them at the same instant (ordered by id).
		for i, advance := range []time.Duration{0, time.Hour, 0, 24 * time.Hour, time.Minute} {
			w.clock.Advance(advance)
			res := fmt.Sprintf("res_%d", i)
			wantOutcome(t, res, w.reserve(t, acc, res, true), purchaseReserved)
			w.publish(t, acc, technicianCreated(fmt.Sprintf("tech_%d", i), res))
			w.settle(t)
		}
		w.waitSeats(t, acc, ports.Seats{Total: 6, Used: 6, Available: 0})
		all := w.charges(t, acc, "?limit=500")
		if len(all.Data) != 5 || all.NextCursor != nil {
			t.Fatalf("ledger = %+v, want 5 charges on one page", all)
		}
		for i := 1; i < len(all.Data); i++ {
			a, b := all.Data[i-1], all.Data[i]
			if b.CreatedAt.Before(a.CreatedAt) || (b.CreatedAt.Equal(a.CreatedAt) && b.ID <= a.ID) {
				t.Errorf("charge %d (%s %s) not after %d (%s %s)", i, b.CreatedAt, b.ID, i-1, a.CreatedAt, a.ID)
			}
		}
		// Three on Nov 23 (8 days left: 5040), two on Nov 24 (7: 4410).
		wantAmounts := []int64{5040, 5040, 5040, 4410, 4410}
		for i, c := range all.Data {
			if c.Amount != wantAmounts[i] || c.Currency != "usd" || c.Reason != "seat_purchase" || c.TechnicianID == nil {
				t.Errorf("charge %d = %+v, want %d usd seat_purchase", i, c, wantAmounts[i])
			}
		}

		var pages []ports.Charge
		cursor := ""
		for range 10 {
			q := "?limit=2"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			l := w.charges(t, acc, q)
			if len(l.Data) > 2 {
				t.Fatalf("page of %d, limit 2", len(l.Data))
			}
			pages = append(pages, l.Data...)
			if l.NextCursor == nil {
				break
			}
			cursor = *l.NextCursor
		}
		if len(pages) != 5 {
			t.Fatalf("paged %d charges, want 5", len(pages))
		}
		for i := range pages {
			if pages[i].ID != all.Data[i].ID {
				t.Errorf("page item %d = %s, want %s", i, pages[i].ID, all.Data[i].ID)
			}
		}

		for _, tt := range []struct{ query, field string }{
			{"?limit=0", "limit"}, {"?limit=501", "limit"}, {"?limit=x", "limit"},
			{"?cursor=not-a-cursor", "cursor"}, {"?cursor=czE6MTIz", "cursor"}, // "s1:123", another list's
		} {
			status, _, body := svctest.Get(t, w.url+"/v1/accounts/"+acc+"/charges"+tt.query, billingOperator)
			p := decodeProblem(t, body)
			if status != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Field != tt.field {
				t.Errorf("GET charges%s = %d %s, want 422 naming %s", tt.query, status, body, tt.field)
			}
		}
		status, _, body = svctest.Get(t, w.url+"/v1/accounts/acc_nobody/charges", billingOperator)
		if status != http.StatusNotFound {
			t.Errorf("charges of an unknown account = %d %s, want 404", status, body)
		}
	})
}

// api.md "Auth": account tokens reach their own account's billing routes
// with billing:read (GETs) and billing:write (POST quote); another
// account's token gets 404, a token without the scope 403.
func TestBillingRoutesNeedScopes(t *testing.T) {
	tokens := map[string]apiToken{
		"tok_read":  {accountID: "acc_auth", scopes: []string{"billing:read"}},
		"tok_write": {accountID: "acc_auth", scopes: []string{"billing:write"}},
		"tok_other": {accountID: "acc_other", scopes: []string{"billing:read", "billing:write"}},
		"tok_tech":  {accountID: "acc_auth", scopes: []string{"technicians:read"}},
	}
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, tokens)
		w.openAccount(t, "acc_auth", 2)
		base := "/v1/accounts/acc_auth"
		get := func(path, token string) int {
			status, _, _ := svctest.Get(t, w.url+base+path, token)
			return status
		}
		quote := func(token string) int {
			status, _ := w.post(t, base+"/subscription/quote", token, []byte(`{"seats": 1}`))
			return status
		}
		tests := []struct {
			token                 string
			subscription, charges int
			quoteStatus           int
		}{
			{billingOperator, 200, 200, 200},
			{"tok_read", 200, 200, 403},
			{"tok_write", 403, 403, 200},
			{"tok_tech", 403, 403, 403},
			{"tok_other", 404, 404, 404},
			{"tok_unknown", 401, 401, 401},
			{"", 401, 401, 401},
		}
		for _, tt := range tests {
			t.Run("token "+tt.token, func(t *testing.T) {
				if got := get("/subscription", tt.token); got != tt.subscription {
					t.Errorf("GET subscription = %d, want %d", got, tt.subscription)
				}
				if got := get("/charges", tt.token); got != tt.charges {
					t.Errorf("GET charges = %d, want %d", got, tt.charges)
				}
				if got := quote(tt.token); got != tt.quoteStatus {
					t.Errorf("POST quote = %d, want %d", got, tt.quoteStatus)
				}
			})
		}
	})
}
