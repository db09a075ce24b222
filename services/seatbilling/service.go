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
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/rpc"
	"roster.dev/pkg/svc"
	"roster.dev/services/seatbilling/adapters"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/migrations"
	"roster.dev/services/seatbilling/ports"
)

// Service is seatbilling, hosted by svc.
type Service struct {
	// ReservationTTL is how long an unconfirmed seat reservation holds its
	// seat; zero means domain.DefaultReservationTTL (2 minutes). Set it
	// before Setup.
	ReservationTTL time.Duration

	http *ports.HTTP
	// rpc answers identity's ReserveSeat. The host has no Close hook for
	// services: the subscription lives as long as its connection, which the
	// host closes on shutdown (svc.Host closes what Deps.Connect opened).
	rpc *nats.Subscription
}

var _ svc.Service = (*Service)(nil)

// New returns the service; Setup wires it.
func New() *Service { return &Service{} }

// Name is the service's database, schema and consumer prefix.
func (s *Service) Name() string { return "seatbilling" }

// Migrations are the service's tables.
func (s *Service) Migrations() fs.FS { return migrations.FS }

// Setup wires the store, the use cases, the event consumers, the
// ReserveSeat request-reply handler and the HTTP port. The host has
// migrated d.DB and starts d.Bus afterwards.
func (s *Service) Setup(ctx context.Context, d svc.Deps) error {
	if d.DB == nil || d.Bus == nil || d.Operator == nil || d.Connect == nil {
		return errors.New("seatbilling: Setup needs DB, Bus, Operator and Connect")
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
	a := app.New(adapters.NewStore(d.DB), d.Bus, log, now, app.Config{ReservationTTL: s.ReservationTTL})
	ports.RegisterConsumers(d.Bus, a)

	nc, err := d.Connect("seatbilling-rpc")
	if err != nil {
		return fmt.Errorf("seatbilling: connect for request-reply: %w", err)
	}
	if s.rpc, err = ports.ServeReserveSeat(nc, a, log); err != nil {
		nc.Close()
		return fmt.Errorf("seatbilling: serve %s: %w", rpc.ReserveSeat, err)
	}

	// Account tokens with scopes where the host authenticates them
	// (pkg/auth); the operator token alone where it does not.
	guard := ports.OperatorOnly(d.Operator)
	if d.Auth != nil {
		guard = d.Auth.Require
	}
	s.http = ports.NewHTTP(a, log, guard)
	return nil
}

// Routes mounts the HTTP routes; call it after Setup.
func (s *Service) Routes(r chi.Router) {
	if s.http == nil {
		panic("seatbilling: Routes called before Setup")
	}
	s.http.Routes(r)
}
