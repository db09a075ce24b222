package ports

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// Scopes of the billing routes (api.md, "Auth").
const (
	ScopeBillingRead  = "billing:read"
	ScopeBillingWrite = "billing:write"
)

// Guard returns the middleware that lets through only requests whose
// bearer token holds scope (auth.Authenticator.Require).
type Guard func(scope string) func(http.Handler) http.Handler

// OperatorOnly is the Guard of a host without account tokens: the operator
// token, whatever the scope.
func OperatorOnly(op *httpx.Operator) Guard {
	return func(string) func(http.Handler) http.Handler { return httpx.RequireOperator(op) }
}

// HTTP serves seatbilling's routes (api.md).
type HTTP struct {
	app   *app.Application
	log   *slog.Logger
	guard Guard
	// db keeps the answers of requests sent with an Idempotency-Key
	// (pkg/idempotency), in the transaction of their effects.
	db *store.DB
}

// NewHTTP returns the HTTP port of a, its routes guarded by guard; db is
// the service's database, for Idempotency-Key.
func NewHTTP(a *app.Application, log *slog.Logger, guard Guard, db *store.DB) *HTTP {
	return &HTTP{app: a, log: log, guard: guard, db: db}
}

// Routes mounts the routes with full paths, so that services sharing one
// router never mount the same prefix twice.
func (h *HTTP) Routes(r chi.Router) {
	r.With(h.guard(ScopeBillingRead)).Get("/v1/accounts/{acc}/subscription", h.getSubscription)
	r.With(h.guard(ScopeBillingWrite)).Post("/v1/accounts/{acc}/subscription/quote", h.quote)
	r.With(h.guard(ScopeBillingRead)).Get("/v1/accounts/{acc}/charges", h.listCharges)
	r.With(h.guard(ScopeBillingWrite)).Put("/v1/accounts/{acc}/subscription/add-ons/{add_on}", h.setAddOn)
	r.With(h.guard(ScopeBillingWrite)).Delete("/v1/accounts/{acc}/subscription/add-ons/{add_on}", h.removeAddOn)
	r.With(h.guard(ScopeBillingRead)).Get("/v1/accounts/{acc}/features", h.listFeatures)
	r.With(h.guard(ScopeBillingRead)).Get("/v1/accounts/{acc}/seats/unused", h.unusedSeats)
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

// AddOn is an add-on billed apart from seats (S-9): Price per unit per
// month, for Quantity units.
type AddOn struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Price    Money  `json:"price"`
	Quantity int    `json:"quantity"`
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
	// SeparateSeats are the occupied seats of the profile's separate seat
	// roles (S-2, atlan: {"Guest": n}), counted among seats.used as well:
	// shown apart, paid alike. Absent under other profiles.
	SeparateSeats map[string]int `json:"separate_seats,omitempty"`
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
		SeparateSeats:     v.SeatsByRole,
		BillingAnchor:     domain.FormatDate(s.Schedule.Anchor()),
		CycleStart:        domain.FormatDate(s.Cycle.Start),
		CycleEnd:          domain.FormatDate(s.Cycle.End),
		PendingReductions: v.PendingReductions,
		AddOns:            make([]AddOn, 0, len(v.AddOns)), // [] rather than null
	}
	for _, a := range v.AddOns {
		out.AddOns = append(out.AddOns, addOnJSON(a))
	}
	return out
}

// QuoteRequest is the body of POST …/subscription/quote.
type QuoteRequest struct {
	Seats int `json:"seats"`
}

// Quote is api.md's quote: the price of adding seats now (S-3), the same
// shape as the quote of a 402 seat-purchase-required.
type Quote struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	DaysLeft  int    `json:"days_left"`
	CycleDays int    `json:"cycle_days"`
	// CycleEnd is the cycle's last day, included.
	CycleEnd string `json:"cycle_end"`
}

// quote: POST /v1/accounts/{acc}/subscription/quote {"seats": N}. It
// changes nothing, so a retry is safe as it is: an Idempotency-Key is
// accepted and not stored (replaying an old price would only be staler).
func (h *HTTP) quote(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	var req QuoteRequest
	if p := httpx.Decode(r, &req); p != nil {
		problem.Write(w, p)
		return
	}
	if req.Seats < 1 || req.Seats > app.MaxQuoteSeats {
		problem.Write(w, seatsInvalid())
		return
	}
	q, err := h.app.QuoteSeats.Handle(r.Context(), acc, req.Seats)
	if err != nil {
		httpx.Error(w, r, h.log, problemFor(err, acc))
		return
	}
	httpx.JSON(w, http.StatusOK, Quote{
		Amount: q.Amount.Amount, Currency: q.Amount.Currency,
		DaysLeft: q.DaysLeft, CycleDays: q.CycleDays, CycleEnd: domain.FormatDate(q.CycleEnd),
	})
}

func seatsInvalid() *problem.Problem {
	return problem.Invalid(problem.FieldError{Field: "seats", Detail: fmt.Sprintf("must be an integer from 1 to %d", app.MaxQuoteSeats)})
}

// Charge is api.md's Charge.
type Charge struct {
	ID       string `json:"id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Reason   string `json:"reason"`
	// TechnicianID is null for charges of no technician (renewals, add-ons).
	TechnicianID *string `json:"technician_id"`
	// AddOnID names the add-on of an add_on charge (S-9); null otherwise.
	AddOnID   *string   `json:"add_on_id"`
	CreatedAt time.Time `json:"created_at"`
}

// ChargeList is a page of charges (api.md, "Lists").
type ChargeList struct {
	Data []Charge `json:"data"`
	// NextCursor is null on the last page.
	NextCursor *string `json:"next_cursor"`
}

// listCharges: GET /v1/accounts/{acc}/charges?limit=&cursor=, the ledger
// oldest first.
func (h *HTTP) listCharges(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	limit, after, bad := httpx.PageParams(r, chargeCursorPrefix)
	q := app.ListCharges{AccountID: acc, Limit: limit}
	if after != "" {
		key, ok := decodeChargeKey(after)
		if !ok {
			bad = append(bad, problem.FieldError{Field: "cursor", Detail: "is not a cursor this API returned"})
		}
		q.After = key
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	page, err := h.app.ListCharges.Handle(r.Context(), q)
	if err != nil {
		httpx.Error(w, r, h.log, problemFor(err, acc))
		return
	}
	out := ChargeList{Data: make([]Charge, 0, len(page.Charges))}
	for _, c := range page.Charges {
		ch := Charge{ID: c.ID, Amount: c.Amount.Amount, Currency: c.Amount.Currency, Reason: string(c.Reason), CreatedAt: c.CreatedAt.UTC()}
		if c.TechnicianID != "" {
			ch.TechnicianID = &c.TechnicianID
		}
		if c.AddOnID != "" {
			ch.AddOnID = &c.AddOnID
		}
		out.Data = append(out.Data, ch)
	}
	if page.Next != (app.ChargeKey{}) {
		next := EncodeChargeCursor(page.Next)
		out.NextCursor = &next
	}
	httpx.JSON(w, http.StatusOK, out)
}

// chargeCursorPrefix versions the cursor's content, so it can change later
// without old cursors being misread.
const chargeCursorPrefix = "c1:"

// EncodeChargeCursor is the opaque cursor of the page after key.
func EncodeChargeCursor(key app.ChargeKey) string {
	return httpx.EncodeCursor(chargeCursorPrefix, strconv.FormatInt(key.CreatedAt.UnixMicro(), 10)+":"+key.ID)
}

// DecodeChargeCursor reads a cursor made by EncodeChargeCursor.
func DecodeChargeCursor(c string) (app.ChargeKey, bool) {
	after, ok := httpx.DecodeCursor(chargeCursorPrefix, c)
	if !ok {
		return app.ChargeKey{}, false
	}
	return decodeChargeKey(after)
}

func decodeChargeKey(after string) (app.ChargeKey, bool) {
	micros, id, ok := strings.Cut(after, ":")
	if !ok || id == "" {
		return app.ChargeKey{}, false
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || us <= 0 {
		return app.ChargeKey{}, false
	}
	return app.ChargeKey{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, true
}

// problemFor is the one place that maps seatbilling's errors to RFC 9457
// problems; anything unmapped becomes a logged 500.
func problemFor(err error, accountID string) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return problem.NotFound("a subscription for account " + accountID)
	case errors.Is(err, domain.ErrInvalidQuantity):
		return seatsInvalid()
	case errors.Is(err, domain.ErrUnknownAddOn):
		return problem.NotFound("the add-on (add-ons: " + strings.Join(domain.AddOnIDs(), ", ") + ")")
	case errors.Is(err, domain.ErrAddOnNotOnSubscription):
		return problem.NotFound("the add-on on the subscription of account " + accountID)
	case errors.Is(err, domain.ErrInvalidAddOnPrice):
		return problem.Invalid(priceInvalid())
	case errors.Is(err, domain.ErrInvalidAddOnQuantity):
		return problem.Invalid(quantityInvalid())
	case errors.Is(err, domain.ErrInvalidInactiveDays):
		return inactiveDaysInvalid()
	case errors.Is(err, domain.ErrUnknownFeature):
		return problem.NotFound("the feature")
	}
	return err
}
