package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(cookieToken); err == nil {
		http.Redirect(w, r, "/technicians", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type loginForm struct {
	AccountID, Email string
	// Locked: when a 423 says the login unlocks.
	Locked string
	// NeedTOTP: the password was right and a second factor is enrolled
	// (L-3): the form asks for the code.
	NeedTOTP bool
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	f := loginForm{}
	if acc, err := r.Cookie(cookieAccount); err == nil {
		f.AccountID = acc.Value
	}
	if a := r.URL.Query().Get("account"); a != "" {
		f.AccountID = a
	}
	c.Render(w, r, http.StatusOK, "login", View{Title: "Sign in", Session: Session{}, Data: f})
}

// login: POST /v1/auth/login with the form; the session token goes into
// the HttpOnly cookie, never into the page (L-1). 401 and 423 show the
// API's title and detail (and, locked, when it unlocks); 401
// second-factor-required or invalid-second-factor asks for the
// authenticator code (L-3) — the password is typed again, never echoed.
// TODO(issue 7 follow-up): the SSO button (GET /v1/auth/oidc/{acc}/start)
// when the account has SSO configured, and the TOTP enrolment pages for a
// session the policy limits to enrolment.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	f := loginForm{AccountID: strings.TrimSpace(r.PostFormValue("account_id")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	a := c.API(r.Context(), Session{}, "POST", "/v1/auth/login", map[string]any{
		"account_id": f.AccountID, "email": f.Email, "password": r.PostFormValue("password"),
		"totp": strings.TrimSpace(r.PostFormValue("totp")),
	})
	if !a.OK() {
		if a.Status == http.StatusLocked {
			f.Locked = describeRetry(a.Problem.RetryAfter)
		}
		f.NeedTOTP = a.Problem.Is("second-factor-required") || a.Problem.Is("invalid-second-factor")
		c.Render(w, r, status(a), "login", View{Title: "Sign in", Session: Session{}, Problem: a.Problem, Data: f})
		return
	}
	var res struct {
		SessionToken string    `json:"session_token"`
		ExpiresAt    time.Time `json:"expires_at"`
		FirstLogin   bool      `json:"first_login"`
	}
	if err := a.Decode(&res); err != nil || res.SessionToken == "" {
		c.Render(w, r, http.StatusBadGateway, "login", View{Title: "Sign in", Session: Session{},
			Problem: &Problem{Title: "Unexpected answer", Detail: "the API's login answer held no session"}, Data: f})
		return
	}
	setCookie(w, r, cookieToken, res.SessionToken, 0)
	setCookie(w, r, cookieAccount, f.AccountID, 365*24*time.Hour)
	setCookie(w, r, cookieWho, url.QueryEscape(f.Email), 0)
	// The role model is asked again for this session's account (atlan.go).
	http.SetCookie(w, &http.Cookie{Name: cookieModel, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	flash := "Signed in as " + f.Email
	if res.FirstLogin {
		flash = "Welcome! This is your first sign-in."
	}
	redirect(w, r, "/technicians", flash)
}

func describeRetry(v any) string {
	switch t := v.(type) {
	case nil:
		return "only when an admin unlocks it or the password is reset by email"
	case string:
		if tt, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return "at " + tt.UTC().Format("15:04:05 UTC")
		}
		return t
	case float64:
		return "in " + (time.Duration(t) * time.Second).String()
	}
	return ""
}

// logout ends the session at the API (POST /v1/auth/logout, L-4) and
// forgets the session cookies (the account id stays, to prefill the next
// sign-in). The cookies go even when the API refuses (an expired session).
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if tok, err := r.Cookie(cookieToken); err == nil && tok.Value != "" {
		c.API(r.Context(), Session{token: tok.Value}, "POST", "/v1/auth/logout", map[string]any{})
	}
	for _, n := range []string{cookieToken, cookieWho, cookieModel} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	}
	redirect(w, r, "/login", "Signed out")
}

type setPasswordForm struct {
	Token string
	Done  bool
	// Reset: the password-reset link's page (L-5) rather than the
	// invitation's (I-4).
	Reset bool
}

// setPasswordPage is the mailed link's target: /set-password?token=rsi_…
// (I-4), or /reset-password?token=… (L-5). The token goes into the form,
// posted back with no query; Referrer-Policy: same-origin keeps it from
// leaking to other sites.
func (c *Console) setPasswordPage(w http.ResponseWriter, r *http.Request) {
	reset := r.URL.Path == "/reset-password"
	c.Render(w, r, http.StatusOK, "set-password", View{Title: "Set your password", Session: Session{},
		Data: setPasswordForm{Token: r.URL.Query().Get("token"), Reset: reset}})
}

// setPassword: POST /v1/auth/password (the invitation) or
// /v1/auth/password-reset/confirm (a reset); an expired or used link shows
// the API's problem (410).
func (c *Console) setPassword(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	f := setPasswordForm{Token: r.PostFormValue("token"), Reset: r.URL.Path == "/reset-password"}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		c.Render(w, r, http.StatusUnprocessableEntity, "set-password", View{Title: "Set your password", Session: Session{},
			Problem: &Problem{Title: "The passwords differ", Detail: "type the same password twice"}, Data: f})
		return
	}
	path := "/v1/auth/password"
	if f.Reset {
		path = "/v1/auth/password-reset/confirm"
	}
	a := c.API(r.Context(), Session{}, "POST", path, map[string]any{"token": f.Token, "password": pw})
	if !a.OK() {
		c.Render(w, r, status(a), "set-password", View{Title: "Set your password", Session: Session{}, Problem: a.Problem, Data: f})
		return
	}
	c.Render(w, r, http.StatusOK, "set-password", View{Title: "Password set", Session: Session{}, Data: setPasswordForm{Done: true}})
}

type forgotForm struct {
	AccountID, Email string
	Sent             string
}

func (c *Console) forgotPage(w http.ResponseWriter, r *http.Request) {
	f := forgotForm{}
	if acc, err := r.Cookie(cookieAccount); err == nil {
		f.AccountID = acc.Value
	}
	c.Render(w, r, http.StatusOK, "forgot", View{Title: "Reset your password", Session: Session{}, Data: f})
}

// forgot: POST /v1/auth/password-reset, which answers 202 whether or not
// the email is known (L-5): the page says what the API says.
func (c *Console) forgot(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	f := forgotForm{AccountID: strings.TrimSpace(r.PostFormValue("account_id")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	a := c.API(r.Context(), Session{}, "POST", "/v1/auth/password-reset", map[string]any{"account_id": f.AccountID, "email": f.Email})
	if !a.OK() {
		c.Render(w, r, status(a), "forgot", View{Title: "Reset your password", Session: Session{}, Problem: a.Problem, Data: f})
		return
	}
	var res struct {
		Detail string `json:"detail"`
	}
	_ = a.Decode(&res)
	f.Sent = res.Detail
	if f.Sent == "" {
		f.Sent = "If this email belongs to a technician of the account, a reset link is on its way."
	}
	c.Render(w, r, http.StatusOK, "forgot", View{Title: "Reset your password", Session: Session{}, Data: f})
}
