package app

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/httpx"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// SSOStore keeps the accounts' OIDC configurations and the sign-ons in
// flight (L-6).
type SSOStore interface {
	SSOConfig(ctx context.Context, q Querier, accountID string) (domain.SSOConfig, error)
	PutSSOConfig(ctx context.Context, tx *sql.Tx, accountID string, c domain.SSOConfig, now time.Time) error
	InsertSSOLogin(ctx context.Context, tx *sql.Tx, l SSOLogin) error
	TakeSSOLogin(ctx context.Context, tx *sql.Tx, accountID, stateHash string, now time.Time) (SSOLogin, error)
}

// PlanGate asks whether the account's plan includes a gated feature (S-8).
type PlanGate interface {
	FeatureEnabled(ctx context.Context, accountID, feature string) (enabled bool, reason string, err error)
}

// SSOLogin is an authorization request in flight: its state (kept as a
// SHA-256), nonce and PKCE verifier.
type SSOLogin struct {
	StateHash, AccountID, Nonce, Verifier string
	ExpiresAt                             time.Time
}

// ssoLoginTTL is how long a started sign-on can come back.
const ssoLoginTTL = 10 * time.Minute

// SSO is the single sign-on use cases (L-6). It shares Credentials'
// sessions, first logins and audit.
type SSO struct {
	*Credentials
	Store SSOStore
	Gates PlanGate

	// Client calls the IdPs (discovery, keys, token endpoint); nil is a
	// client with a 10-second timeout.
	Client *http.Client

	// providers caches OIDC discovery per issuer (the key set refreshes
	// itself when the IdP rotates keys).
	providers sync.Map
}

var idpClient = &http.Client{Timeout: 10 * time.Second}

func (s *SSO) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return idpClient
}

func (s *SSO) redirectURI(accountID string) string {
	return s.PublicURL + "/v1/auth/oidc/" + accountID + "/callback"
}

// gate refuses accounts whose plan lacks SSO (S-8: atera Enterprise and
// Superpower only; every roster plan).
func (s *SSO) gate(ctx context.Context, accountID string) error {
	if _, err := s.Account(ctx, accountID); err != nil {
		return err
	}
	ok, reason, err := s.Gates.FeatureEnabled(ctx, accountID, "sso")
	if err != nil {
		return err
	}
	if !ok {
		return domain.PlanGate(reason)
	}
	return nil
}

// GetSSO returns the account's configuration, without the secret.
func (s *SSO) GetSSO(ctx context.Context, accountID string) (domain.SSOView, error) {
	if err := s.gate(ctx, accountID); err != nil {
		return domain.SSOView{}, err
	}
	c, err := s.Store.SSOConfig(ctx, s.DB, accountID)
	if errors.Is(err, ErrNotFound) {
		return domain.SSOView{}, domain.ErrSSONotConfigured()
	}
	if err != nil {
		return domain.SSOView{}, err
	}
	return s.view(accountID, c), nil
}

func (s *SSO) view(accountID string, c domain.SSOConfig) domain.SSOView {
	return domain.SSOView{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecretSet: c.ClientSecret != "", Enforce: c.Enforce,
		RedirectURI: s.redirectURI(accountID)}
}

// PutSSO stores the account's configuration (S-8 gated). An omitted
// client_secret keeps the stored one. The IdP's discovery document must
// answer for the issuer, so a typo shows here and not at the first login.
func (s *SSO) PutSSO(ctx context.Context, accountID string, c domain.SSOConfig) (domain.SSOView, error) {
	if err := s.gate(ctx, accountID); err != nil {
		return domain.SSOView{}, err
	}
	c.Issuer = strings.TrimSuffix(strings.TrimSpace(c.Issuer), "/")
	if c.ClientSecret == "" {
		if old, err := s.Store.SSOConfig(ctx, s.DB, accountID); err == nil {
			c.ClientSecret = old.ClientSecret
		}
	}
	if p := c.Validate(); p != nil {
		return domain.SSOView{}, p
	}
	if _, err := s.provider(ctx, c.Issuer); err != nil {
		return domain.SSOView{}, domain.ErrSSOFailed("the issuer's discovery document (" + c.Issuer + "/.well-known/openid-configuration) did not answer: " + err.Error())
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	err := s.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.Store.PutSSOConfig(ctx, tx, accountID, c, now); err != nil {
			return err
		}
		return s.Bus.Emit(ctx, tx, accountID, &identityv1.SsoConfigured{
			Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}, Issuer: c.Issuer, ClientId: c.ClientID, Enforce: c.Enforce})
	})
	return s.view(accountID, c), err
}

func (s *SSO) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	if p, ok := s.providers.Load(issuer); ok {
		return p.(*oidc.Provider), nil
	}
	// Discovery outlives the request that triggered it.
	p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), s.client()), issuer)
	if err != nil {
		return nil, err
	}
	s.providers.Store(issuer, p)
	return p, nil
}

func (s *SSO) oauth(ctx context.Context, accountID string) (domain.SSOConfig, *oidc.Provider, *oauth2.Config, error) {
	c, err := s.Store.SSOConfig(ctx, s.DB, accountID)
	if errors.Is(err, ErrNotFound) {
		return c, nil, nil, domain.ErrSSONotConfigured()
	}
	if err != nil {
		return c, nil, nil, err
	}
	p, err := s.provider(ctx, c.Issuer)
	if err != nil {
		return c, nil, nil, domain.ErrSSOFailed("the identity provider's discovery did not answer: " + err.Error())
	}
	return c, p, &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.redirectURI(accountID), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}, nil
}

// SSOStarted is where to send the browser, and the state to bind to it
// (the port sets it as a cookie).
type SSOStarted struct {
	AuthorizationURL string
	State            string
}

// StartSSO begins an authorization code flow (L-6) with a fresh state,
// nonce and PKCE (S256) verifier, kept for ten minutes.
func (s *SSO) StartSSO(ctx context.Context, accountID string) (SSOStarted, error) {
	if err := s.gate(ctx, accountID); err != nil {
		return SSOStarted{}, err
	}
	_, _, conf, err := s.oauth(ctx, accountID)
	if err != nil {
		return SSOStarted{}, err
	}
	state, nonce, verifier := newSecret(""), newSecret(""), oauth2.GenerateVerifier()
	now := s.Now().UTC().Truncate(time.Microsecond)
	err = s.DB.InTx(ctx, func(tx *sql.Tx) error {
		return s.Store.InsertSSOLogin(ctx, tx, SSOLogin{StateHash: hex.EncodeToString(httpx.HashToken(state)), AccountID: accountID,
			Nonce: nonce, Verifier: verifier, ExpiresAt: now.Add(ssoLoginTTL)})
	})
	if err != nil {
		return SSOStarted{}, err
	}
	return SSOStarted{AuthorizationURL: conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), State: state}, nil
}

// SSOCallback is the IdP's answer (L-6): the state must be one this
// account started, unused, within ten minutes and bound to the browser
// (cookieState); the code is exchanged with the PKCE verifier; the ID
// token is verified (signature, issuer, audience, expiry) and must carry
// the nonce. Its email must belong to a technician of the account — no
// self-registration — and an invited one is activated by it (FirstLogin,
// I-6). The answer is a session, as a password login's.
func (s *SSO) SSOCallback(ctx context.Context, accountID, state, cookieState, code, idpError, addr, device string) (LoggedIn, error) {
	if err := s.gate(ctx, accountID); err != nil {
		return LoggedIn{}, err
	}
	if state == "" || cookieState == "" || !hmacEqual(state, cookieState) {
		return LoggedIn{}, domain.ErrSSOState()
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	var l SSOLogin
	err := s.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = s.Store.TakeSSOLogin(ctx, tx, accountID, hex.EncodeToString(httpx.HashToken(state)), now)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return LoggedIn{}, domain.ErrSSOState()
	}
	if err != nil {
		return LoggedIn{}, err
	}
	if idpError != "" {
		return LoggedIn{}, domain.ErrSSOFailed("the identity provider refused the sign-on: " + idpError)
	}
	_, p, conf, err := s.oauth(ctx, accountID)
	if err != nil {
		return LoggedIn{}, err
	}
	tok, err := conf.Exchange(oidc.ClientContext(ctx, s.client()), code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return LoggedIn{}, domain.ErrSSOFailed("the identity provider did not exchange the code: " + err.Error())
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return LoggedIn{}, domain.ErrSSOFailed("the identity provider sent no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
	if err != nil {
		return LoggedIn{}, domain.ErrSSOFailed("the ID token did not verify: " + err.Error())
	}
	if !hmacEqual(idt.Nonce, l.Nonce) {
		return LoggedIn{}, domain.ErrSSOFailed("the ID token does not carry this sign-on's nonce")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Email == "" {
		return LoggedIn{}, domain.ErrSSOFailed("the ID token carries no email")
	}
	if claims.EmailVerified != nil && !*claims.EmailVerified {
		return LoggedIn{}, domain.ErrSSOFailed("the identity provider has not verified this email")
	}
	rec, err := s.Creds.LoginRecord(ctx, accountID, claims.Email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return LoggedIn{}, err
	}
	if err != nil || rec.Status == domain.StatusDisabled {
		f := failure{accountID: accountID, technicianID: rec.TechnicianID, email: claims.Email, reason: "sso_no_technician"}
		return LoggedIn{}, s.fail(ctx, f, domain.ErrSSONoTechnician())
	}
	ctx = asTechnician(ctx, rec.TechnicianID)
	// S-2 (atlan): signing on accepts the invitation, which takes a seat.
	accepting := domain.Invitation{AccountID: accountID, TechnicianID: rec.TechnicianID}
	reservation, err := s.seatOnAcceptance(ctx, accepting, domain.Technician{ID: rec.TechnicianID, AccountID: accountID, Status: rec.Status})
	if err != nil {
		return LoggedIn{}, err
	}
	var first bool
	var opened Opened
	err = s.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		first, err = s.authenticated(ctx, tx, accountID, rec.TechnicianID, "sso", now)
		if errors.Is(err, errDisabled) {
			return domain.ErrSSONoTechnician()
		}
		if err != nil {
			return err
		}
		if err := s.accepted(ctx, tx, accepting, reservation, "sso"); err != nil {
			return err
		}
		// The IdP is the second factor's place under SSO (docs/api-notes.md).
		opened, err = s.openSession(ctx, tx, accountID, rec.TechnicianID, device, addr, false, now)
		return err
	})
	if err != nil {
		return LoggedIn{}, err
	}
	return LoggedIn{SessionToken: opened.Secret, ExpiresAt: opened.Session.ExpiresAt, FirstLogin: first, TechnicianID: rec.TechnicianID}, nil
}

// hmacEqual compares two secrets in constant time.
func hmacEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// ssoEnforced says whether the account turned password login off (L-6).
func (c *Credentials) ssoEnforced(ctx context.Context, accountID string) (bool, error) {
	if c.SSOConfigs == nil {
		return false, nil
	}
	cfg, err := c.SSOConfigs.SSOConfig(ctx, c.DB, accountID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return cfg.Enforce, err
}
