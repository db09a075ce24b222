// Package identity is the identity service: accounts, sites, technicians,
// end users, invitations, credentials, sessions and tokens (flows.md).
package identity

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/svc"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/migrations"
	"roster.dev/services/identity/ports"
)

// Service is the identity service.
type Service struct {
	http *ports.HTTP
}

// New returns the identity service.
func New() *Service { return &Service{} }

func (s *Service) Name() string        { return "identity" }
func (s *Service) Migrations() fs.FS   { return migrations.FS }
func (s *Service) Routes(r chi.Router) { s.http.Routes(r) }

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
	st := adapters.Store{DB: d.DB}
	a := &app.App{DB: d.DB, Store: st, Technicians: st, Sites: st, EndUsers: st, Seats: adapters.Seats{NC: rpcConn}, Bus: d.Bus, Now: now}
	ports.RegisterConsumers(d.Bus, a)
	if _, err := ports.ServeAuthenticate(rpcConn, a, d.Log); err != nil {
		return err
	}
	s.http = &ports.HTTP{App: a, Auth: d.Auth, Log: d.Log}
	return nil
}
