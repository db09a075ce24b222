// Package seatbilling is Roster's seat-billing service (rules.md S-*): the
// subscription of each account, its seats, cycles and charges.
//
// Layout: domain/ holds the rules (pure Go), app/ the use cases, adapters/
// the SQL store, ports/ the HTTP routes and event consumers, migrations/
// the tables.
package seatbilling

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/svc"
	"roster.dev/services/seatbilling/adapters"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/migrations"
	"roster.dev/services/seatbilling/ports"
)

// Service is seatbilling, hosted by svc.
type Service struct {
	http *ports.HTTP
}

var _ svc.Service = (*Service)(nil)

// New returns the service; Setup wires it.
func New() *Service { return &Service{} }

// Name is the service's database, schema and consumer prefix.
func (s *Service) Name() string { return "seatbilling" }

// Migrations are the service's tables.
func (s *Service) Migrations() fs.FS { return migrations.FS }

// Setup wires the store, the use cases, the event consumers and the HTTP
// port. The host has migrated d.DB and starts d.Bus afterwards.
func (s *Service) Setup(ctx context.Context, d svc.Deps) error {
	if d.DB == nil || d.Bus == nil || d.Operator == nil {
		return errors.New("seatbilling: Setup needs DB, Bus and Operator")
	}
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("service", s.Name())
	now := d.Now
	if now == nil {
		now = time.Now
	}
	a := app.New(adapters.NewStore(d.DB), d.Bus, log, now)
	ports.RegisterConsumers(d.Bus, a)
	s.http = ports.NewHTTP(a, log, d.Operator)
	return nil
}

// Routes mounts the HTTP routes; call it after Setup.
func (s *Service) Routes(r chi.Router) {
	if s.http == nil {
		panic("seatbilling: Routes called before Setup")
	}
	s.http.Routes(r)
}
