// Package rolepolicy is Roster's role-policy service (rules.md R-*): the
// permission catalog, built-in and custom roles, and who holds which role.
//
// Layout: domain/ holds the rules (pure Go), app/ the use cases, adapters/
// the SQL store, ports/ the HTTP routes and event consumers, migrations/
// the service's tables.
package rolepolicy

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/svc"
	"roster.dev/services/rolepolicy/adapters"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/migrations"
	"roster.dev/services/rolepolicy/ports"
)

// Service is the rolepolicy service as the host runs it.
type Service struct {
	http *ports.HTTP
}

var _ svc.Service = (*Service)(nil)

// New returns the service; Setup wires it.
func New() *Service { return &Service{} }

// Name is the service's database, schema and consumer prefix.
func (*Service) Name() string { return "rolepolicy" }

// Migrations are the service's goose migrations.
func (*Service) Migrations() fs.FS { return migrations.FS }

// Setup wires the store, the use cases and the event consumers.
func (s *Service) Setup(_ context.Context, d svc.Deps) error {
	if d.DB == nil || d.Bus == nil || d.Operator == nil {
		return errors.New("rolepolicy: Setup needs DB, Bus and Operator")
	}
	log := d.Log // the host's logger already names the service
	if log == nil {
		log = slog.Default().With("service", s.Name())
	}
	a := app.New(d.DB, adapters.NewStore(d.DB), d.Bus, log, d.Now)
	ports.Consume(d.Bus, a)
	s.http = ports.NewHTTP(a, d.Auth, d.Operator, log)
	return nil
}

// Routes mounts the HTTP routes. The host calls it after Setup.
func (s *Service) Routes(r chi.Router) {
	if s.http == nil {
		panic("rolepolicy: Routes called before Setup")
	}
	s.http.Mount(r)
}
