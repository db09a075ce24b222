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
// API's title and detail (and, locked, when it unlocks).
// TODO(issue 7): when the API answers that a second factor is needed, show
// the TOTP step; show the SSO button when the account has SSO configured.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	f := loginForm{AccountID: strings.TrimSpace(r.PostFormValue("account_id")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	a := c.API(r.Context(), Session{}, "POST", "/v1/auth/login", map[string]any{
		"account_id": f.AccountID, "email": f.Email, "password": r.PostFormValue("password"),
	})
	if !a.OK() {
		if a.Problem.RetryAfter != nil {
			f.Locked = describeRetry(a.Problem.RetryAfter)
		}
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
	flash := "Signed in as " + f.Email
	if res.FirstLogin {
		flash = "Welcome! This is your first sign-in."
	}
	redirect(w, r, "/technicians", flash)
}

func describeRetry(v any) string {
	switch t := v.(type) {
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

// logout forgets the session cookies (the account id stays, to prefill
// the next sign-in).
// TODO(issue 7): also revoke the session with POST /v1/auth/logout.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	for _, n := range []string{cookieToken, cookieWho} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	}
	redirect(w, r, "/login", "Signed out")
}

type setPasswordForm struct {
	Token string
	Done  bool
}

// setPasswordPage is the mailed link's target: /set-password?token=rsi_…
// (I-4). The token goes into the form, posted back to /set-password with no
// query; Referrer-Policy: same-origin keeps it from leaking to other sites.
func (c *Console) setPasswordPage(w http.ResponseWriter, r *http.Request) {
	c.Render(w, r, http.StatusOK, "set-password", View{Title: "Set your password", Session: Session{},
		Data: setPasswordForm{Token: r.URL.Query().Get("token")}})
}

func (c *Console) setPassword(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	f := setPasswordForm{Token: r.PostFormValue("token")}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		c.Render(w, r, http.StatusUnprocessableEntity, "set-password", View{Title: "Set your password", Session: Session{},
			Problem: &Problem{Title: "The passwords differ", Detail: "type the same password twice"}, Data: f})
		return
	}
	a := c.API(r.Context(), Session{}, "POST", "/v1/auth/password", map[string]any{"token": f.Token, "password": pw})
	if !a.OK() {
		c.Render(w, r, status(a), "set-password", View{Title: "Set your password", Session: Session{}, Problem: a.Problem, Data: f})
		return
	}
	c.Render(w, r, http.StatusOK, "set-password", View{Title: "Password set", Session: Session{}, Data: setPasswordForm{Done: true}})
}
