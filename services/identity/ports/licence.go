package ports

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// scheduleLicenceRemoval: POST /v1/accounts/{acc}/technicians/{id}/licence-removal
// (S-5), no body (an empty JSON object is accepted); 200 with the
// technician and its licence_removal_date.
func (h *HTTP) scheduleLicenceRemoval(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	b, ok := body(w, r, &req, true)
	if !ok {
		return
	}
	res, err := h.App.ScheduleLicenceRemoval(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), key(r), b)
	h.answer(w, r, res, err)
}
