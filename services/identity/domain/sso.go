package domain

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"roster.dev/pkg/problem"
)

// SSOConfig is an account's OIDC single sign-on (L-6): the IdP's issuer,
// Roster's client id and secret there, and whether password login is off.
type SSOConfig struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	Enforce      bool   `json:"enforce"`
}

// SSOView is the configuration as the API shows it: the secret is
// write-only.
type SSOView struct {
	Issuer          string `json:"issuer"`
	ClientID        string `json:"client_id"`
	ClientSecretSet bool   `json:"client_secret_set"`
	Enforce         bool   `json:"enforce"`
	// RedirectURI is what to register at the IdP.
	RedirectURI string `json:"redirect_uri"`
}

// Validate checks a configuration to store: an https issuer (http only on
// a loopback host, for local IdPs and tests), a client id and a secret.
func (c SSOConfig) Validate() *problem.Problem {
	var errs []problem.FieldError
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "" || err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, problem.FieldError{Field: "issuer", Detail: "must be the IdP's issuer URL, such as https://acme.okta.com"})
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		errs = append(errs, problem.FieldError{Field: "issuer", Detail: "must use https (http only for a loopback host)"})
	}
	if strings.TrimSpace(c.ClientID) == "" || len(c.ClientID) > 255 {
		errs = append(errs, problem.FieldError{Field: "client_id", Detail: "is required (at most 255 characters)"})
	}
	if c.ClientSecret == "" || len(c.ClientSecret) > 1024 {
		errs = append(errs, problem.FieldError{Field: "client_secret", Detail: "is required (at most 1024 characters)"})
	}
	if len(errs) > 0 {
		return problem.Invalid(errs...)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Problems of single sign-on (L-6).
var (
	ErrSSOEnforced = func() *problem.Problem {
		return problem.New(http.StatusForbidden, "sso-enforced", "Single sign-on required",
			"this account logs in through its identity provider only: use GET /v1/auth/oidc/{account}/start")
	}
	ErrSSONotConfigured = func() *problem.Problem {
		return problem.New(http.StatusNotFound, "sso-not-configured", "Single sign-on not configured",
			"this account has no single sign-on configured; an admin sets it with PUT /v1/accounts/{acc}/sso")
	}
	ErrSSOState = func() *problem.Problem {
		return problem.New(http.StatusBadRequest, "sso-state-invalid", "Sign-on expired or replayed",
			"this sign-on answer is unknown, already used, expired or from another browser; start the sign-on again")
	}
	ErrSSOFailed = func(detail string) *problem.Problem {
		return problem.New(http.StatusBadGateway, "sso-failed", "Sign-on failed", detail)
	}
	ErrSSONoTechnician = func() *problem.Problem {
		return problem.New(http.StatusForbidden, "sso-no-technician", "No technician with this email",
			"the identity provider vouched for an email that is no active or invited technician of this account; an admin must add the technician first")
	}
)

// PlanGate is the 403 of a feature the account's plan lacks (S-8).
func PlanGate(reason string) *problem.Problem {
	return problem.New(http.StatusForbidden, "plan-gate", "Not on this plan", reason)
}
