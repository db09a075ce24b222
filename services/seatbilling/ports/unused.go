package ports

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/services/seatbilling/domain"
)

// UnusedSeat is one line of the unused-seat report (S-7).
type UnusedSeat struct {
	TechnicianID string `json:"technician_id"`
	// Status is active or invited; Reason inactive or never_logged_in.
	Status string `json:"status"`
	Reason string `json:"reason"`
	// SeatSince is when the technician took the seat (created or enabled).
	SeatSince time.Time `json:"seat_since"`
	// LastLoginAt is null for one who never logged in.
	LastLoginAt *time.Time `json:"last_login_at"`
	// MonthlyCost is the seat's price per month: the monthly price, or the
	// annual-billing monthly price.
	MonthlyCost Money `json:"monthly_cost"`
}

// UnusedSeats is GET …/seats/unused: a report, not paged (it is bounded by
// the seat count and carries its total).
type UnusedSeats struct {
	InactiveDays int `json:"inactive_days"`
	// Cutoff is now less inactive_days: active technicians whose last login
	// is before it are listed.
	Cutoff           time.Time    `json:"cutoff"`
	Data             []UnusedSeat `json:"data"`
	TotalMonthlyCost Money        `json:"total_monthly_cost"`
}

// unusedSeats: GET /v1/accounts/{acc}/seats/unused?inactive_days=30.
func (h *HTTP) unusedSeats(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	days := domain.DefaultInactiveDays
	if s := r.URL.Query().Get("inactive_days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > domain.MaxInactiveDays {
			problem.Write(w, inactiveDaysInvalid())
			return
		}
		days = n
	}
	rep, err := h.app.UnusedSeats.Handle(r.Context(), acc, days)
	if err != nil {
		httpx.Error(w, r, h.log, problemFor(err, acc))
		return
	}
	out := UnusedSeats{
		InactiveDays: rep.InactiveDays, Cutoff: rep.Cutoff.UTC(), Data: make([]UnusedSeat, 0, len(rep.Seats)),
		TotalMonthlyCost: Money{Amount: rep.Total.Amount, Currency: rep.Total.Currency},
	}
	for _, s := range rep.Seats {
		u := UnusedSeat{
			TechnicianID: s.TechnicianID, Status: s.Status, Reason: s.Reason, SeatSince: s.Since.UTC(),
			MonthlyCost: Money{Amount: s.MonthlyCost.Amount, Currency: s.MonthlyCost.Currency},
		}
		if !s.LastLoginAt.IsZero() {
			at := s.LastLoginAt.UTC()
			u.LastLoginAt = &at
		}
		out.Data = append(out.Data, u)
	}
	httpx.JSON(w, http.StatusOK, out)
}

func inactiveDaysInvalid() *problem.Problem {
	return problem.Invalid(problem.FieldError{Field: "inactive_days", Detail: fmt.Sprintf("must be an integer from 1 to %d", domain.MaxInactiveDays)})
}
