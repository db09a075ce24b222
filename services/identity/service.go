// Package identity is the identity service: accounts, sites, technicians,
// end users, invitations, credentials, sessions and tokens (flows.md).
package identity

import (
	"context"
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
	now := d.Now
	if now == nil {
		now = time.Now
	}
	a := &app.App{DB: d.DB, Store: adapters.Store{DB: d.DB}, Bus: d.Bus, Now: now}
	s.http = &ports.HTTP{App: a, Operator: d.Operator, Log: d.Log}
	return nil
}
