package ports

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// HTTP serves seatbilling's routes (api.md).
type HTTP struct {
	app      *app.Application
	log      *slog.Logger
	operator *httpx.Operator
}

// NewHTTP returns the HTTP port of a.
func NewHTTP(a *app.Application, log *slog.Logger, operator *httpx.Operator) *HTTP {
	return &HTTP{app: a, log: log, operator: operator}
}

// Routes mounts the routes with full paths, so that services sharing one
// router never mount the same prefix twice.
func (h *HTTP) Routes(r chi.Router) {
	// Operator token only until account tokens exist.
	r.With(httpx.RequireOperator(h.operator)).Get("/v1/accounts/{acc}/subscription", h.getSubscription)
}

// Money is api.md's money: minor units and a lower-case currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Seats is the seat usage of a subscription (S-7).
type Seats struct {
	Total     int `json:"total"`
	Used      int `json:"used"`
	Available int `json:"available"`
}

// AddOn is an add-on billed apart from seats (S-9).
type AddOn struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price Money  `json:"price"`
}

// Subscription is api.md's Subscription shape, plus the account id and the
// billing anchor.
type Subscription struct {
	AccountID     string `json:"account_id"`
	Plan          string `json:"plan"`
	BillingPeriod string `json:"billing_period"`
	// UnitPrice is per seat per month (S-1).
	UnitPrice         Money   `json:"unit_price"`
	Seats             Seats   `json:"seats"`
	BillingAnchor     string  `json:"billing_anchor"`
	CycleStart        string  `json:"cycle_start"`
	CycleEnd          string  `json:"cycle_end"`
	PendingReductions int     `json:"pending_reductions"`
	AddOns            []AddOn `json:"add_ons"`
}

func (h *HTTP) getSubscription(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	v, err := h.app.GetSubscription.Handle(r.Context(), acc)
	if err != nil {
		httpx.Error(w, r, h.log, problemFor(err, acc))
		return
	}
	httpx.JSON(w, http.StatusOK, subscriptionJSON(v))
}

func subscriptionJSON(v app.SubscriptionView) Subscription {
	s := v.Subscription
	out := Subscription{
		AccountID:         s.AccountID,
		Plan:              s.Plan,
		BillingPeriod:     string(s.Schedule.Period()),
		UnitPrice:         Money{Amount: s.UnitPrice.Amount, Currency: s.UnitPrice.Currency},
		Seats:             Seats{Total: v.Seats.Total, Used: v.Seats.Used, Available: v.Seats.Available},
		BillingAnchor:     domain.FormatDate(s.Schedule.Anchor()),
		CycleStart:        domain.FormatDate(s.Cycle.Start),
		CycleEnd:          domain.FormatDate(s.Cycle.End),
		PendingReductions: v.PendingReductions,
		AddOns:            make([]AddOn, 0, len(v.AddOns)), // [] rather than null
	}
	for _, a := range v.AddOns {
		out.AddOns = append(out.AddOns, AddOn{ID: a.ID, Name: a.Name, Price: Money{Amount: a.Price.Amount, Currency: a.Price.Currency}})
	}
	return out
}

// problemFor is the one place that maps seatbilling's errors to RFC 9457
// problems; anything unmapped becomes a logged 500.
func problemFor(err error, accountID string) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return problem.NotFound("a subscription for account " + accountID)
	}
	return err
}
