package ports

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// securityRoutes mounts the login-security routes of issue 7: the
// account's security policy and the admin's unlock (L-2 … L-4).
func (h *AuthHTTP) securityRoutes(r chi.Router) {
	read := h.Auth.Require("technicians:read")
	write := h.Auth.Require("technicians:write")
	r.With(read).Get("/v1/accounts/{acc}/security-policy", h.getSecurityPolicy)
	r.With(write).Put("/v1/accounts/{acc}/security-policy", h.putSecurityPolicy)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/unlock", h.unlock)

	// API tokens: list and revoke (minting is in http.go).
	anyToken := h.Auth.Require("")
	r.With(anyToken, h.limited).Post("/v1/accounts/{acc}/tokens", h.mintToken)
	r.With(anyToken).Get("/v1/accounts/{acc}/tokens", h.listTokens)
	r.With(anyToken, h.limited).Delete("/v1/accounts/{acc}/tokens/{tok}", h.revokeToken)

	// L-6: single sign-on configuration and the OIDC flow.
	r.With(read).Get("/v1/accounts/{acc}/sso", h.getSSO)
	r.With(write).Put("/v1/accounts/{acc}/sso", h.putSSO)
	r.Get("/v1/auth/oidc/{acc}/start", h.startSSO)
	r.Get("/v1/auth/oidc/{acc}/callback", h.ssoCallback)

	// L-5: password reset by mailed link.
	r.Post("/v1/auth/password-reset", h.requestReset)
	r.Post("/v1/auth/password-reset/confirm", h.confirmReset)

	// L-3: TOTP enrolment by the technician (also from an enrolment-only
	// session), removal by an admin.
	enroll := h.Auth.Require(auth.EnrollmentScope)
	r.With(enroll).Post("/v1/auth/totp/enroll", h.enrollTOTP)
	r.With(enroll, h.limited).Post("/v1/auth/totp/confirm", h.confirmTOTP)
	r.With(write).Delete("/v1/accounts/{acc}/technicians/{id}/totp", h.removeTOTP)

	// L-4: a technician's own sessions (session token), and an admin's view.
	self := h.Auth.Require("")
	// Logout also from an enrolment-only session (L-3).
	r.With(h.Auth.Require(auth.EnrollmentScope)).Post("/v1/auth/logout", h.logout)
	r.With(self, h.limited).Post("/v1/auth/password/change", h.changePassword)
	r.With(self).Get("/v1/auth/sessions", h.ownSessions)
	r.With(self).Delete("/v1/auth/sessions/{sid}", h.revokeOwnSession)
	r.With(read).Get("/v1/accounts/{acc}/technicians/{id}/sessions", h.technicianSessions)
	r.With(write).Delete("/v1/accounts/{acc}/technicians/{id}/sessions", h.revokeTechnicianSession)
	r.With(write).Delete("/v1/accounts/{acc}/technicians/{id}/sessions/{sid}", h.revokeTechnicianSession)
}

// technicianOf is the session's technician, or a 403 for other tokens.
func technicianOf(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	p, _ := auth.From(r.Context())
	if p.TechnicianID == "" {
		problem.Write(w, problem.Forbidden("this route takes a technician's session token (from POST /v1/auth/login)"))
		return p, false
	}
	return p, true
}

func (h *AuthHTTP) logout(w http.ResponseWriter, r *http.Request) {
	p, ok := technicianOf(w, r)
	if !ok {
		return
	}
	if err := h.Creds.RevokeSession(r.Context(), p.AccountID, p.TechnicianID, p.TokenID, "logout"); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AuthHTTP) ownSessions(w http.ResponseWriter, r *http.Request) {
	p, ok := technicianOf(w, r)
	if !ok {
		return
	}
	h.listSessions(w, r, p.AccountID, p.TechnicianID, p.TokenID)
}

func (h *AuthHTTP) revokeOwnSession(w http.ResponseWriter, r *http.Request) {
	p, ok := technicianOf(w, r)
	if !ok {
		return
	}
	if err := h.Creds.RevokeSession(r.Context(), p.AccountID, p.TechnicianID, chi.URLParam(r, "sid"), "revoked"); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AuthHTTP) technicianSessions(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.From(r.Context())
	h.listSessions(w, r, chi.URLParam(r, "acc"), chi.URLParam(r, "id"), p.TokenID)
}

func (h *AuthHTTP) listSessions(w http.ResponseWriter, r *http.Request, accountID, technicianID, current string) {
	ss, err := h.Creds.ListSessions(r.Context(), accountID, technicianID, current)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ss, "next_cursor": nil})
}

func (h *AuthHTTP) revokeTechnicianSession(w http.ResponseWriter, r *http.Request) {
	err := h.Creds.RevokeSession(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), chi.URLParam(r, "sid"), "revoked")
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AuthHTTP) getSecurityPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := h.Creds.SecurityPolicy(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (h *AuthHTTP) putSecurityPolicy(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return
	}
	p, err := h.Creds.PutSecurityPolicy(r.Context(), chi.URLParam(r, "acc"), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (h *AuthHTTP) unlock(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r, &struct{}{}, true)
	if !ok {
		return
	}
	res, err := h.Creds.UnlockTechnician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), key(r), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *AuthHTTP) requestReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AccountID string `json:"account_id"`
		Email     string `json:"email"`
	}
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	if !h.throttle(w, r, req.AccountID) {
		return
	}
	r = anonymous(r)
	res, err := h.Creds.RequestPasswordReset(r.Context(), req.AccountID, req.Email, httpx.ClientIP(r), key(r), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *AuthHTTP) confirmReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	if !h.throttle(w, r, "") {
		return
	}
	r = anonymous(r)
	if err := h.Creds.ConfirmPasswordReset(r.Context(), req.Token, req.Password); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AuthHTTP) enrollTOTP(w http.ResponseWriter, r *http.Request) {
	p, ok := technicianOf(w, r)
	if !ok {
		return
	}
	if _, ok := body(w, r, &struct{}{}, true); !ok {
		return
	}
	e, err := h.Creds.EnrollTOTP(r.Context(), p.AccountID, p.TechnicianID)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // the answer holds a secret
	httpx.JSON(w, http.StatusCreated, e)
}

func (h *AuthHTTP) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	p, ok := technicianOf(w, r)
	if !ok {
		return
	}
	var req struct {
		Code string `json:"code"`
	}
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	codes, err := h.Creds.ConfirmTOTP(r.Context(), p.AccountID, p.TechnicianID, req.Code)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, codes)
}

func (h *AuthHTTP) removeTOTP(w http.ResponseWriter, r *http.Request) {
	if err := h.Creds.RemoveTOTP(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id")); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AuthHTTP) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := h.Tokens.List(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ts, "next_cursor": nil})
}

func (h *AuthHTTP) revokeToken(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.From(r.Context())
	if err := h.Tokens.Revoke(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "tok"), p.Can); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// throttle applies the rate limits of the login, reset and token routes
// (item 8 of issue 7) to the request, for accountID when known; false
// after answering 429 with Retry-After.
func (h *AuthHTTP) throttle(w http.ResponseWriter, r *http.Request, accountID string) bool {
	if err := h.Creds.Throttle(r.Context(), accountID, httpx.ClientIP(r)); err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// limited is throttle as middleware: the account is the route's {acc}, or
// the session's.
func (h *AuthHTTP) limited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acc := chi.URLParam(r, "acc")
		if acc == "" {
			p, _ := auth.From(r.Context())
			acc = p.AccountID
		}
		if h.throttle(w, r, acc) {
			next.ServeHTTP(w, r)
		}
	})
}

// fail writes err; a problem carrying retry_after (429, 423) also sets the
// Retry-After header (RFC 9110) to it.
func (h *AuthHTTP) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem.Problem
	if errors.As(err, &p) {
		if secs, ok := p.Extensions["retry_after"].(int); ok && secs > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
	}
	httpx.Error(w, r, h.Log, err)
}

func (h *AuthHTTP) mintToken(w http.ResponseWriter, r *http.Request) {
	var req app.NewToken
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	p, _ := auth.From(r.Context())
	res, err := h.Tokens.MintToken(r.Context(), chi.URLParam(r, "acc"), req, p.Can, key(r), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *AuthHTTP) getSSO(w http.ResponseWriter, r *http.Request) {
	v, err := h.SSO.GetSSO(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

func (h *AuthHTTP) putSSO(w http.ResponseWriter, r *http.Request) {
	var req domain.SSOConfig
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	v, err := h.SSO.PutSSO(r.Context(), chi.URLParam(r, "acc"), req)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

// ssoCookie binds a sign-on to the browser that started it: the callback
// must come back with the state in this cookie (login CSRF).
const ssoCookie = "roster_oidc_state"

func (h *AuthHTTP) startSSO(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	if !h.throttle(w, r, acc) {
		return
	}
	st, err := h.SSO.StartSSO(r.Context(), acc)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: st.State, Path: "/v1/auth/oidc/" + acc + "/", MaxAge: 600,
		HttpOnly: true, Secure: strings.HasPrefix(h.Creds.PublicURL, "https://"), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.AuthorizationURL, http.StatusFound)
}

func (h *AuthHTTP) ssoCallback(w http.ResponseWriter, r *http.Request) {
	acc := chi.URLParam(r, "acc")
	if !h.throttle(w, r, acc) {
		return
	}
	q := r.URL.Query()
	var cookie string
	if c, err := r.Cookie(ssoCookie); err == nil {
		cookie = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: "/v1/auth/oidc/" + acc + "/", MaxAge: -1, HttpOnly: true})
	r = anonymous(r)
	idpErr := q.Get("error")
	if d := q.Get("error_description"); idpErr != "" && d != "" {
		idpErr += ": " + d
	}
	res, err := h.SSO.SSOCallback(r.Context(), acc, q.Get("state"), cookie, q.Get("code"), idpErr, httpx.ClientIP(r), r.UserAgent())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, res)
}

func (h *AuthHTTP) changePassword(w http.ResponseWriter, r *http.Request) {
	p, ok := technicianOf(w, r)
	if !ok {
		return
	}
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	if err := h.Creds.ChangePassword(r.Context(), p.AccountID, p.TechnicianID, p.TokenID, req.CurrentPassword, req.NewPassword); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
