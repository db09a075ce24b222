package ports

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
)

// WithLayers adds the layered role model's routes (R-9: personas,
// purposes) and lets the access routes answer layered accounts.
func (h *HTTP) WithLayers(l *app.Layers) *HTTP {
	h.layers = l
	return h
}

// mountLayers adds the persona and purpose routes.
func (h *HTTP) mountLayers(r chi.Router) {
	read, write := h.require("roles:read"), h.require("roles:write")
	r.With(read).Get("/v1/accounts/{acc}/personas", h.listPersonas)
	r.With(write).Post("/v1/accounts/{acc}/personas", h.savePersona)
	r.With(read).Get("/v1/accounts/{acc}/personas/{id}", h.getPersona)
	r.With(write).Put("/v1/accounts/{acc}/personas/{id}", h.savePersona)
	r.With(write).Delete("/v1/accounts/{acc}/personas/{id}", h.deletePersona)
	r.With(write).Put("/v1/accounts/{acc}/technicians/{id}/personas", h.setPersonas)
	r.With(read).Get("/v1/accounts/{acc}/purposes", h.listPurposes)
	r.With(write).Post("/v1/accounts/{acc}/purposes", h.savePurpose)
	r.With(read).Get("/v1/accounts/{acc}/purposes/{id}", h.getPurpose)
	r.With(write).Put("/v1/accounts/{acc}/purposes/{id}", h.savePurpose)
	r.With(write).Delete("/v1/accounts/{acc}/purposes/{id}", h.deletePurpose)
}

// failLayers maps the layered model's errors, then the common ones.
func (h *HTTP) failLayers(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, domain.ErrLayersUnavailable):
		err = problem.New(http.StatusConflict, "personas-unavailable", "Personas and purposes unavailable",
			"this account's profile has no personas or purposes (R-9: the layered role model)")
	case errors.Is(err, domain.ErrPersonaNotFound):
		err = problem.NotFound("persona " + chi.URLParam(r, "id"))
	case errors.Is(err, domain.ErrPurposeNotFound):
		err = problem.NotFound("purpose " + chi.URLParam(r, "id"))
	case errors.Is(err, domain.ErrDuplicateName):
		err = problem.New(http.StatusConflict, "name-taken", "Name taken",
			"the account already has one of that name (names are compared case-insensitively)")
	}
	h.fail(w, r, err)
}

// readBody decodes the body into v and returns its bytes (Idempotency-Key).
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

func (h *HTTP) answerLayers(w http.ResponseWriter, r *http.Request, res idempotency.Result, err error) {
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *HTTP) listPersonas(w http.ResponseWriter, r *http.Request) {
	ps, err := h.layers.Personas(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ps, "next_cursor": nil})
}

// savePersona: POST …/personas (201) and PUT …/personas/{id} (200, whole).
func (h *HTTP) savePersona(w http.ResponseWriter, r *http.Request) {
	var spec domain.PersonaSpec
	b, ok := readBody(w, r, &spec)
	if !ok {
		return
	}
	res, err := h.layers.SavePersona(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), spec, r.Header.Get("Idempotency-Key"), b)
	h.answerLayers(w, r, res, err)
}

func (h *HTTP) getPersona(w http.ResponseWriter, r *http.Request) {
	p, err := h.layers.Persona(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (h *HTTP) deletePersona(w http.ResponseWriter, r *http.Request) {
	if err := h.layers.DeletePersona(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id")); err != nil {
		h.failLayers(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setPersonas: PUT …/technicians/{id}/personas {persona_ids} → the
// technician's personas.
func (h *HTTP) setPersonas(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PersonaIDs []string `json:"persona_ids"`
	}
	if _, ok := readBody(w, r, &req); !ok {
		return
	}
	if req.PersonaIDs == nil {
		problem.Write(w, problem.Invalid(problem.FieldError{Field: "persona_ids", Detail: "is required (an empty list removes every persona)"}))
		return
	}
	ps, err := h.layers.SetTechnicianPersonas(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), req.PersonaIDs)
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"technician_id": chi.URLParam(r, "id"), "personas": ps})
}

func (h *HTTP) listPurposes(w http.ResponseWriter, r *http.Request) {
	ps, err := h.layers.Purposes(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ps, "next_cursor": nil})
}

func (h *HTTP) savePurpose(w http.ResponseWriter, r *http.Request) {
	var spec domain.PurposeSpec
	b, ok := readBody(w, r, &spec)
	if !ok {
		return
	}
	res, err := h.layers.SavePurpose(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), spec, r.Header.Get("Idempotency-Key"), b)
	h.answerLayers(w, r, res, err)
}

func (h *HTTP) getPurpose(w http.ResponseWriter, r *http.Request) {
	p, err := h.layers.Purpose(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (h *HTTP) deletePurpose(w http.ResponseWriter, r *http.Request) {
	if err := h.layers.DeletePurpose(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id")); err != nil {
		h.failLayers(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// layered answers whether the route's account has the layered model; on
// false the permission-model handler answers.
func (h *HTTP) layered(w http.ResponseWriter, r *http.Request) (bool, bool) {
	if h.layers == nil {
		return false, true
	}
	ok, err := h.layers.Layered(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		h.failLayers(w, r, err)
		return false, false
	}
	return ok, true
}

// checkAccessAny: POST …/access/check — R-9's (action, asset) check on a
// layered account, R-7's (permission, site, folder) on the others.
func (h *HTTP) checkAccessAny(w http.ResponseWriter, r *http.Request) {
	layered, ok := h.layered(w, r)
	if !ok {
		return
	}
	if !layered {
		h.checkAccess(w, r)
		return
	}
	var q app.LayeredCheck
	if p := httpx.Decode(r, &q); p != nil {
		problem.Write(w, p)
		return
	}
	v, err := h.layers.CheckLayered(r.Context(), chi.URLParam(r, "acc"), q)
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

// effectiveAccessAny: GET …/technicians/{id}/effective-access — the three
// layers on a layered account.
func (h *HTTP) effectiveAccessAny(w http.ResponseWriter, r *http.Request) {
	layered, ok := h.layered(w, r)
	if !ok {
		return
	}
	if !layered {
		h.effectiveAccess(w, r)
		return
	}
	e, err := h.layers.EffectiveLayered(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.failLayers(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, e)
}
