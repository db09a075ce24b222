package ports

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
)

// AddOnRequest is the body of PUT …/subscription/add-ons/{add_on} (S-9):
// the price per unit per month in minor units of the subscription's
// currency (required; 0 for an add-on included at no charge) and the
// quantity (default 1).
type AddOnRequest struct {
	Price    *int64 `json:"price"`
	Quantity *int   `json:"quantity"`
}

// setAddOn: PUT /v1/accounts/{acc}/subscription/add-ons/{add_on} puts the
// add-on on the subscription (201) or sets its price and quantity (200),
// answering the add-on. It honours Idempotency-Key (api.md): the same key
// and body answer the first result and change nothing.
func (h *HTTP) setAddOn(w http.ResponseWriter, r *http.Request) {
	acc, id := chi.URLParam(r, "acc"), chi.URLParam(r, "add_on")
	if _, ok := domain.AddOnName(id); !ok {
		problem.Write(w, unknownAddOn(id))
		return
	}
	var req AddOnRequest
	raw, ok := readBody(w, r, &req)
	if !ok {
		return
	}
	var bad []problem.FieldError
	switch {
	case req.Price == nil:
		bad = append(bad, problem.FieldError{Field: "price", Detail: "is required: minor units per unit per month"})
	case *req.Price < 0 || *req.Price > domain.MaxAddOnPrice:
		bad = append(bad, priceInvalid())
	}
	quantity := 1
	if req.Quantity != nil {
		quantity = *req.Quantity
		if quantity < 1 || quantity > domain.MaxAddOnQuantity {
			bad = append(bad, quantityInvalid())
		}
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	cmd := app.SetAddOn{AccountID: acc, AddOnID: id, Price: *req.Price, Quantity: quantity}
	res, err := h.idempotent(r, acc, "PUT /subscription/add-ons/"+id, raw, func(tx *sql.Tx) (int, any, error) {
		res, err := h.app.SetAddOn.Handle(r.Context(), tx, cmd)
		if err != nil {
			return 0, nil, problemFor(err, acc)
		}
		status := http.StatusOK
		if res.Created {
			status = http.StatusCreated
		}
		return status, addOnJSON(res.AddOn), nil
	})
	if err != nil {
		httpx.Error(w, r, h.log, err)
		return
	}
	idempotency.Write(w, res)
}

// removeAddOn: DELETE /v1/accounts/{acc}/subscription/add-ons/{add_on} →
// 204; 404 when the add-on is not on the subscription. Idempotency-Key as
// for PUT.
func (h *HTTP) removeAddOn(w http.ResponseWriter, r *http.Request) {
	acc, id := chi.URLParam(r, "acc"), chi.URLParam(r, "add_on")
	if _, ok := domain.AddOnName(id); !ok {
		problem.Write(w, unknownAddOn(id))
		return
	}
	res, err := h.idempotent(r, acc, "DELETE /subscription/add-ons/"+id, nil, func(tx *sql.Tx) (int, any, error) {
		if err := h.app.RemoveAddOn.Handle(r.Context(), tx, acc, id); err != nil {
			return 0, nil, problemFor(err, acc)
		}
		return http.StatusNoContent, nil, nil
	})
	if err != nil {
		httpx.Error(w, r, h.log, err)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(res.Status)
}

// idempotent runs fn in one transaction, its answer stored under the
// request's Idempotency-Key in the scope of the account and route.
func (h *HTTP) idempotent(r *http.Request, accountID, route string, body []byte, fn func(*sql.Tx) (int, any, error)) (idempotency.Result, error) {
	return idempotency.Do(r.Context(), h.db, idempotency.Request{
		Scope: accountID + ":" + route, Key: r.Header.Get("Idempotency-Key"), Body: body,
	}, fn)
}

// readBody reads the raw body (kept for the Idempotency-Key comparison)
// and decodes it into v, writing the problem when it cannot.
func readBody(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if p := httpx.Decode(r, v); p != nil {
		problem.Write(w, p)
		return nil, false
	}
	return b, true
}

func addOnJSON(a domain.AddOn) AddOn {
	return AddOn{ID: a.ID, Name: a.Name, Price: Money{Amount: a.Price.Amount, Currency: a.Price.Currency}, Quantity: a.Quantity}
}

func unknownAddOn(id string) *problem.Problem {
	return problem.NotFound(fmt.Sprintf("add-on %q (add-ons: %s)", id, strings.Join(domain.AddOnIDs(), ", ")))
}

func priceInvalid() problem.FieldError {
	return problem.FieldError{Field: "price", Detail: fmt.Sprintf("must be an integer from 0 to %d (minor units per unit per month)", int64(domain.MaxAddOnPrice))}
}

func quantityInvalid() problem.FieldError {
	return problem.FieldError{Field: "quantity", Detail: fmt.Sprintf("must be an integer from 1 to %d", domain.MaxAddOnQuantity)}
}
