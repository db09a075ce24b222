package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
)

func (c *Console) subscriptionRoutes(r chi.Router) {
	r.Get("/subscription", c.subscriptionPage)
}

// Money is an amount in minor units.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Subscription is the API's subscription.
type Subscription struct {
	Plan          string `json:"plan"`
	BillingPeriod string `json:"billing_period"`
	UnitPrice     Money  `json:"unit_price"`
	Seats         struct {
		Total     int `json:"total"`
		Used      int `json:"used"`
		Available int `json:"available"`
	} `json:"seats"`
	// SeparateSeats are the used seats of the roles the profile counts
	// apart (atlan: Guest), among Seats.Used as well.
	SeparateSeats     map[string]int `json:"separate_seats"`
	CycleStart        string         `json:"cycle_start"`
	CycleEnd          string         `json:"cycle_end"`
	PendingReductions int            `json:"pending_reductions"`
	AddOns            []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Price    Money  `json:"price"`
		Quantity int    `json:"quantity"`
	} `json:"add_ons"`
}

// Charge is an entry of the charges ledger.
type Charge struct {
	ID           string    `json:"id"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	Reason       string    `json:"reason"`
	TechnicianID *string   `json:"technician_id"`
	CreatedAt    time.Time `json:"created_at"`
}

// UnusedSeats is the unused-seat report (S-7).
type UnusedSeats struct {
	InactiveDays int `json:"inactive_days"`
	Data         []struct {
		TechnicianID string     `json:"technician_id"`
		Status       string     `json:"status"`
		Reason       string     `json:"reason"`
		SeatSince    time.Time  `json:"seat_since"`
		LastLoginAt  *time.Time `json:"last_login_at"`
		MonthlyCost  Money      `json:"monthly_cost"`
	} `json:"data"`
	TotalMonthlyCost Money `json:"total_monthly_cost"`
}

type subscriptionView struct {
	Sub     Subscription
	Charges []Charge
	Next    string
	Unused  *UnusedSeats
	// Names shows technicians by name instead of id.
	Names map[string]string
}

func (c *Console) subscription(r *http.Request) (Subscription, Answer) {
	s := SessionFrom(r)
	var sub Subscription
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/subscription", nil)
	if a.OK() {
		if err := a.Decode(&sub); err != nil {
			return sub, failed(err)
		}
	}
	return sub, a
}

// subscriptionPage: plan, period, seats used/total (a chart), the cycle,
// pending reductions, the charges ledger (paged) and unused seats.
func (c *Console) subscriptionPage(w http.ResponseWriter, r *http.Request) {
	s := SessionFrom(r)
	var v subscriptionView
	sub, a := c.subscription(r)
	if !a.OK() {
		c.Render(w, r, status(a), "subscription", View{Title: "Subscription", Active: "/subscription", Problem: a.Problem, Data: v})
		return
	}
	v.Sub = sub
	v.Names = c.technicianNames(r)
	p := url.Values{"limit": {"50"}}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		p.Set("cursor", cur)
	}
	var problem *Problem
	if ca := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/charges?"+p.Encode(), nil); ca.OK() {
		var l list[Charge]
		_ = ca.Decode(&l)
		v.Charges = l.Data
		if l.NextCursor != nil {
			v.Next = *l.NextCursor
		}
	} else {
		problem = ca.Problem
	}
	if ua := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/seats/unused?inactive_days=30", nil); ua.OK() {
		v.Unused = &UnusedSeats{}
		_ = ua.Decode(v.Unused)
	} else if problem == nil {
		problem = ua.Problem
	}
	c.Render(w, r, http.StatusOK, "subscription", View{Title: "Subscription", Active: "/subscription", Problem: problem, Data: v})
}
