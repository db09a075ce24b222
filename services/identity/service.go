// Package identity is the identity service: accounts, sites, technicians,
// end users, invitations, credentials, sessions and tokens (flows.md).
package identity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/mail"
	"roster.dev/pkg/svc"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
	"roster.dev/services/identity/migrations"
	"roster.dev/services/identity/ports"
)

// Service is the identity service.
type Service struct {
	http  *ports.HTTP
	auth  *ports.AuthHTTP
	creds *app.Credentials
	// dir and dirHTTP: directory sync (H-1, H-3; directory.go).
	dir     *app.Directory
	dirHTTP *ports.DirectoryHTTP
	// off and offHTTP: offboarding and ownership (O-1…O-4; offboarding.go).
	off       *app.Offboardings
	offHTTP   *ports.OffboardingHTTP
	ownEvents *ports.OwnershipConsumer
	invHTTP   *ports.InvitationsHTTP // I-5 (atlan)
}

// mailPoll is how often the mailer looks for queued mail.
const mailPoll = 200 * time.Millisecond

// New returns the identity service.
func New() *Service { return &Service{} }

func (s *Service) Name() string      { return "identity" }
func (s *Service) Migrations() fs.FS { return migrations.FS }
func (s *Service) Routes(r chi.Router) {
	s.http.Routes(r)
	s.auth.Routes(r)
	s.dirHTTP.Routes(r)
	s.offHTTP.Routes(r)
	s.invHTTP.Routes(r)
}

// Run is the mailer (svc.Runner): it sends the queued invitation mails
// until the host stops, which ends ctx before it closes the database.
func (s *Service) Run(ctx context.Context) error {
	return runAll(ctx, func(ctx context.Context) error { return s.creds.RunMailer(ctx, mailPoll) }, s.runDirectory, s.runPurge, s.runOwnershipEvents)
}

func (s *Service) Setup(_ context.Context, d svc.Deps) error {
	if d.DB == nil || d.Bus == nil || d.Auth == nil || d.Connect == nil {
		return errors.New("identity: Setup needs DB, Bus, Auth and Connect")
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	rpcConn, err := d.Connect("identity-rpc")
	if err != nil {
		return err
	}
	// L-1: argon2id parameters for new hashes; OWASP's minimum unless
	// ROSTER_ARGON2 (m=<KiB>,t=<passes>,p=<lanes>) asks for more.
	if v := os.Getenv("ROSTER_ARGON2"); v != "" {
		p, err := domain.ParseArgon2(v)
		if err != nil {
			return fmt.Errorf("ROSTER_ARGON2: %w", err)
		}
		domain.SetArgon2(p)
	}
	st := adapters.Store{DB: d.DB}
	seats := adapters.Seats{NC: rpcConn}
	a := &app.App{DB: d.DB, Store: st, Technicians: st, Sites: st, EndUsers: st, Seats: seats, Bus: d.Bus, Now: now,
		Licences: seats, LicenceStore: st, Log: d.Log}
	var transport app.MailTransport
	if d.Mail != "" {
		if transport, err = mail.Open(d.Mail); err != nil {
			return fmt.Errorf("--mail: %w", err)
		}
	}
	// Invitations, passwords and sessions (I-4, I-6, I-7, L-1).
	s.creds = &app.Credentials{App: a, Creds: st, Security: st, Sessions: st, Resets: st, TOTP: st, Limits: &app.RateLimiter{}, Mail: transport, PublicURL: d.PublicURL, Log: d.Log}
	a.OnTechnicianCreated = s.creds.IssueInvitation
	a.OnTechnicianDisabled = s.creds.RevokeAccess
	a.AuthenticateSession = s.creds.AuthenticateSession
	tokens := &app.Tokens{App: a, Store: st} // API-token list, revoke, last use (issue 7)
	a.TokenUsed = tokens.Used
	ports.RegisterConsumers(d.Bus, a)
	if _, err := ports.ServeAuthenticate(rpcConn, a, d.Log); err != nil {
		return err
	}
	s.http = &ports.HTTP{App: a, Auth: d.Auth, Log: d.Log}
	// L-6: single sign-on, gated by plan over request-reply (S-8).
	sso := &app.SSO{Credentials: s.creds, Store: st, Gates: adapters.SSOGate{NC: rpcConn}}
	s.creds.SSOConfigs = st
	s.creds.Acceptances = st
	s.auth = &ports.AuthHTTP{Creds: s.creds, Tokens: tokens, SSO: sso, Auth: d.Auth, Log: d.Log}
	s.setUpDirectory(a, st, seats, d)
	s.setUpOffboarding(a, st, rpcConn, d)
	s.invHTTP = &ports.InvitationsHTTP{Invitations: &app.Invitations{Credentials: s.creds, Find: st}, Auth: d.Auth, Log: d.Log}
	return nil
}
