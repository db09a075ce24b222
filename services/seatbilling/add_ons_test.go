package seatbilling_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/ports"
)

// S-9: PUT …/subscription/add-ons/{add_on} puts AI Copilot or Network
// Discovery on the subscription at its own price; GET subscription lists
// them; the same PUT again changes nothing; Idempotency-Key replays;
// DELETE takes one off; bad input is a problem naming the field.
func TestAddOnRoutes(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_addons"
		w.openAccount(t, acc, 2)
		path := "/v1/accounts/" + acc + "/subscription/add-ons/"

		got := w.setAddOn(t, acc, "ai_copilot", 2500, 2, http.StatusCreated)
		want := ports.AddOn{ID: "ai_copilot", Name: "AI Copilot", Price: ports.Money{Amount: 2500, Currency: "usd"}, Quantity: 2}
		if got != want {
			t.Fatalf("PUT ai_copilot = %+v, want %+v", got, want)
		}
		// The quantity defaults to 1.
		status, body := w.do(t, http.MethodPut, path+"network_discovery", map[string]any{"price": 9900})
		if status != http.StatusCreated || !jsonEqual(t, body,
			`{"id": "network_discovery", "name": "Network Discovery", "price": {"amount": 9900, "currency": "usd"}, "quantity": 1}`) {
			t.Fatalf("PUT network_discovery = %d %s", status, body)
		}
		// The same again: 200, nothing written or emitted.
		w.setAddOn(t, acc, "ai_copilot", 2500, 2, http.StatusOK)
		// A new price: 200.
		w.setAddOn(t, acc, "ai_copilot", 3000, 2, http.StatusOK)
		w.settle(t)
		if n := w.emitted(t, acc)["add_on_set"]; n != 3 {
			t.Errorf("%d AddOnSet, want 3 (the unchanged PUT emits none)", n)
		}
		var set seatbillingv1.AddOnSet
		w.lastEvent(t, acc, &set)
		if set.GetAddOnId() != "ai_copilot" || set.GetPrice().GetAmount() != 3000 || set.GetQuantity() != 2 || set.GetName() != "AI Copilot" {
			t.Errorf("AddOnSet = %v", &set)
		}
		sub := w.subscription(t, acc)
		wantAddOns := []ports.AddOn{
			{ID: "ai_copilot", Name: "AI Copilot", Price: ports.Money{Amount: 3000, Currency: "usd"}, Quantity: 2},
			{ID: "network_discovery", Name: "Network Discovery", Price: ports.Money{Amount: 9900, Currency: "usd"}, Quantity: 1},
		}
		if !reflect.DeepEqual(sub.AddOns, wantAddOns) {
			t.Errorf("GET subscription add_ons = %+v, want %+v", sub.AddOns, wantAddOns)
		}
		// Setting add-ons charges nothing now: they are billed at renewals.
		if l := w.charges(t, acc, ""); len(l.Data) != 0 {
			t.Errorf("charges after setting add-ons: %+v", l.Data)
		}

		t.Run("Idempotency-Key", func(t *testing.T) {
			body := map[string]any{"price": 4000, "quantity": 1}
			s1, h1, b1 := svctest.Do(t, http.MethodPut, w.url+path+"network_discovery", billingOperator, body, "Idempotency-Key", "k-nd")
			s2, h2, b2 := svctest.Do(t, http.MethodPut, w.url+path+"network_discovery", billingOperator, body, "Idempotency-Key", "k-nd")
			if s1 != 200 || s2 != 200 || string(b1) != string(b2) || h1.Get("Idempotent-Replayed") != "" || h2.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retried PUT: %d %s / %d %s %v", s1, b1, s2, b2, h2)
			}
			s3, _, b3 := svctest.Do(t, http.MethodPut, w.url+path+"network_discovery", billingOperator, map[string]any{"price": 1}, "Idempotency-Key", "k-nd")
			if s3 != http.StatusUnprocessableEntity || decodeProblem(t, b3).Type != "https://roster.dev/problems/idempotency-key-reused" {
				t.Fatalf("key reused with another body: %d %s", s3, b3)
			}
		})

		t.Run("bad requests", func(t *testing.T) {
			for _, tt := range []struct {
				name, addOn, body string
				status            int
				fields            []string
			}{
				{"no price", "ai_copilot", `{"quantity": 2}`, 422, []string{"price"}},
				{"negative price", "ai_copilot", `{"price": -1}`, 422, []string{"price"}},
				{"price not an integer", "ai_copilot", `{"price": 12.5}`, 422, []string{"price"}},
				{"no quantity", "ai_copilot", `{"price": 100, "quantity": 0}`, 422, []string{"quantity"}},
				{"both bad", "ai_copilot", `{"price": -5, "quantity": 10001}`, 422, []string{"price", "quantity"}},
				{"unknown field", "ai_copilot", `{"price": 100, "currency": "eur"}`, 422, []string{"currency"}},
				{"unknown add-on", "remote_access", `{"price": 100}`, 404, nil},
			} {
				t.Run(tt.name, func(t *testing.T) {
					req, err := http.NewRequest(http.MethodPut, w.url+path+tt.addOn, jsonReader(tt.body))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Authorization", "Bearer "+billingOperator)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer res.Body.Close()
					var p problemBody
					_ = json.NewDecoder(res.Body).Decode(&p)
					var fields []string
					for _, e := range p.Errors {
						fields = append(fields, e.Field)
					}
					if res.StatusCode != tt.status || !reflect.DeepEqual(fields, tt.fields) {
						t.Errorf("PUT %s %s = %d %+v, want %d naming %v", tt.addOn, tt.body, res.StatusCode, p, tt.status, tt.fields)
					}
				})
			}
			status, _, body := svctest.Do(t, http.MethodPut, w.url+"/v1/accounts/acc_nobody/subscription/add-ons/ai_copilot", billingOperator, map[string]any{"price": 1})
			if status != http.StatusNotFound {
				t.Errorf("PUT on an unknown account = %d %s", status, body)
			}
		})

		t.Run("DELETE", func(t *testing.T) {
			if status, body := w.do(t, http.MethodDelete, path+"network_discovery", nil); status != http.StatusNoContent || len(body) != 0 {
				t.Fatalf("DELETE = %d %s", status, body)
			}
			if status, body := w.do(t, http.MethodDelete, path+"network_discovery", nil); status != http.StatusNotFound {
				t.Fatalf("DELETE again = %d %s, want 404", status, body)
			}
			if status, _ := w.do(t, http.MethodDelete, path+"remote_access", nil); status != http.StatusNotFound {
				t.Fatalf("DELETE an unknown add-on = %d, want 404", status)
			}
			if got := w.subscription(t, acc).AddOns; len(got) != 1 || got[0].ID != "ai_copilot" {
				t.Fatalf("add_ons after DELETE = %+v", got)
			}
			w.settle(t)
			var removed seatbillingv1.AddOnRemoved
			w.lastEvent(t, acc, &removed)
			if removed.GetAddOnId() != "network_discovery" {
				t.Errorf("AddOnRemoved = %v", &removed)
			}
		})
	})
}

// S-9, S-10: at cycle end the renewal records one add_on charge per add-on
// on the subscription, besides the seats' renewal: monthly price ×
// quantity for a monthly cycle, × 12 for an annual one. A removed add-on is
// charged no more.
func TestAddOnsChargedAtRenewal(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		w.openAt(t, "acc_monthly", "atera-msp", "growth", "monthly", 0, "2026-11-01", 2)
		w.openAt(t, "acc_annual", "atera-it", "expert", "annual", 0, "2026-01-01", 3)
		w.setAddOn(t, "acc_monthly", "ai_copilot", 2500, 2, http.StatusCreated)
		w.setAddOn(t, "acc_monthly", "network_discovery", 9900, 1, http.StatusCreated)
		w.setAddOn(t, "acc_annual", "network_discovery", 4150, 3, http.StatusCreated)
		// Included at no charge: no zero charge in the ledger.
		w.setAddOn(t, "acc_annual", "ai_copilot", 0, 1, http.StatusCreated)

		w.clock.Set(time.Date(2026, 12, 1, 0, 0, 10, 0, time.UTC))
		if n := w.runDue(t); n != 1 {
			t.Fatalf("closed %d cycles, want acc_monthly's", n)
		}
		type line struct {
			reason, addOn string
			amount        int64
		}
		// ledger reads an account's charges; those of the cycle closed
		// last carry the clock's time.
		ledger := func(acc string) []line {
			var out []line
			for _, c := range w.charges(t, acc, "").Data {
				l := line{reason: c.Reason, amount: c.Amount}
				if c.AddOnID != nil {
					l.addOn = *c.AddOnID
				}
				if c.TechnicianID != nil || (c.Reason == "add_on") != (c.AddOnID != nil) || c.CreatedAt.After(w.clock.Now()) {
					t.Errorf("charge %+v", c)
				}
				out = append(out, l)
			}
			return out
		}
		byReason := func(ls []line) map[string]line {
			m := map[string]line{}
			for _, l := range ls {
				m[l.reason+"/"+l.addOn] = l
			}
			return m
		}
		got := byReason(ledger("acc_monthly"))
		want := map[string]line{
			"renewal/":                 {"renewal", "", 2 * 18900},
			"add_on/ai_copilot":        {"add_on", "ai_copilot", 2 * 2500},
			"add_on/network_discovery": {"add_on", "network_discovery", 9900},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("December's charges %+v, want %+v", got, want)
		}
		for _, c := range w.charges(t, "acc_monthly", "").Data {
			if !c.CreatedAt.Equal(w.clock.Now()) {
				t.Errorf("charge %s at %s, want the close's time %s", c.ID, c.CreatedAt, w.clock.Now())
			}
		}
		w.settle(t)
		var closed seatbillingv1.CycleClosed
		w.lastEvent(t, "acc_monthly", &closed)
		if closed.GetClosedEnd() != "2026-11-30" || closed.GetNextStart() != "2026-12-01" || closed.GetSeats() != 2 {
			t.Errorf("CycleClosed = %v", &closed)
		}
		if n := w.emitted(t, "acc_monthly")["charge_recorded"]; n != 3 {
			t.Errorf("%d ChargeRecorded, want 3", n)
		}

		// Network Discovery leaves; January charges AI Copilot only.
		if status, _ := w.do(t, http.MethodDelete, "/v1/accounts/acc_monthly/subscription/add-ons/network_discovery", nil); status != 204 {
			t.Fatalf("DELETE = %d", status)
		}
		w.clock.Set(time.Date(2027, 1, 1, 0, 0, 10, 0, time.UTC))
		w.runDue(t)
		if n := len(ledger("acc_monthly")); n != 5 {
			t.Fatalf("%d charges after January, want 5", n)
		}
		// The annual account renews on 2027-01-01: 12 × 4150 × 3 for Network
		// Discovery, seats 3 × 12 × 18900.
		got = byReason(ledger("acc_annual"))
		want = map[string]line{
			"renewal/":                 {"renewal", "", 3 * 12 * 18900},
			"add_on/network_discovery": {"add_on", "network_discovery", 12 * 4150 * 3},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the annual renewal %+v, want %+v", got, want)
		}
	})
}

// PUT and DELETE need billing:write.
func TestAddOnRoutesNeedBillingWrite(t *testing.T) {
	tokens := map[string]apiToken{
		"tok_write": {accountID: "acc_scoped", scopes: []string{"billing:write"}},
		"tok_read":  {accountID: "acc_scoped", scopes: []string{"billing:read"}},
		"tok_other": {accountID: "acc_other", scopes: []string{"billing:write"}},
	}
	w := newBillingWorld(t, "", seatTestNow, tokens)
	w.openAccount(t, "acc_scoped", 2)
	url := w.url + "/v1/accounts/acc_scoped/subscription/add-ons/ai_copilot"
	for _, tt := range []struct {
		token     string
		put, dele int
	}{
		{"tok_read", 403, 403}, {"tok_other", 404, 404}, {"", 401, 401}, {"tok_write", 201, 204},
	} {
		if status, _, body := svctest.Do(t, http.MethodPut, url, tt.token, map[string]any{"price": 100}); status != tt.put {
			t.Errorf("PUT with %q = %d %s, want %d", tt.token, status, body, tt.put)
		}
		if status, _, body := svctest.Do(t, http.MethodDelete, url, tt.token, nil); status != tt.dele {
			t.Errorf("DELETE with %q = %d %s, want %d", tt.token, status, body, tt.dele)
		}
	}
}
