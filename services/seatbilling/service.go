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

	"roster.dev/pkg/eventbus"
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
	// CyclePoll is how often the cycle-end scheduler (Run) looks for
	// cycles that ended; zero means DefaultCyclePoll. Set it before Run.
	CyclePoll time.Duration

	app  *app.Application
	log  *slog.Logger
	http *ports.HTTP
	// rpc answers identity's ReserveSeat, licenceRPC its
	// ScheduleLicenceRemoval, featureRPC every service's FeatureEnabled.
	// The host has no Close hook for services: the subscriptions live as
	// long as their connection, which the host closes on shutdown
	// (svc.Host closes what Deps.Connect opened).
	rpc, licenceRPC, featureRPC *nats.Subscription
	// previewRPC answers identity's offboarding preview (O-3).
	previewRPC *nats.Subscription
}

// DefaultCyclePoll is how often the cycle-end scheduler runs: a cycle ends
// at midnight UTC, so a few seconds late is on time.
const DefaultCyclePoll = 5 * time.Second

var (
	_ svc.Service = (*Service)(nil)
	_ svc.Runner  = (*Service)(nil)
)

// New returns the service; Setup wires it.
func New() *Service { return &Service{} }

// Name is the service's database, schema and consumer prefix.
func (s *Service) Name() string { return "seatbilling" }

// Migrations are the service's tables.
func (s *Service) Migrations() fs.FS { return migrations.FS }

// Setup wires the store, the use cases, the event consumers, the
// request-reply handlers (ReserveSeat, ScheduleLicenceRemoval,
// FeatureEnabled) and the HTTP port. The host has
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
	st := adapters.NewStore(d.DB)
	a := app.New(st, d.Bus, log, now, app.Config{ReservationTTL: s.ReservationTTL})
	s.app, s.log = a, log
	ports.RegisterConsumers(d.Bus, a)
	// A batch of events locks its accounts' subscriptions in one order
	// first, as every handler locks its account's (PostgreSQL deadlocks
	// between replicas otherwise).
	eventbus.BeforeBatch(d.Bus, st.LockSubscriptions)

	nc, err := d.Connect("seatbilling-rpc")
	if err != nil {
		return fmt.Errorf("seatbilling: connect for request-reply: %w", err)
	}
	if s.rpc, err = ports.ServeReserveSeat(nc, a, log); err != nil {
		nc.Close()
		return fmt.Errorf("seatbilling: serve %s: %w", rpc.ReserveSeat, err)
	}
	if s.licenceRPC, err = ports.ServeScheduleLicenceRemoval(nc, a, log); err != nil {
		nc.Close()
		return fmt.Errorf("seatbilling: serve %s: %w", rpc.ScheduleLicenceRemoval, err)
	}
	if s.featureRPC, err = ports.ServeFeatureEnabled(nc, a, log); err != nil {
		nc.Close()
		return fmt.Errorf("seatbilling: serve %s: %w", rpc.FeatureEnabled, err)
	}
	if s.previewRPC, err = ports.ServePreviewSeatRelease(nc, a, log); err != nil {
		nc.Close()
		return fmt.Errorf("seatbilling: serve %s: %w", rpc.PreviewSeatRelease, err)
	}

	// Account tokens with scopes where the host authenticates them
	// (pkg/auth); the operator token alone where it does not.
	guard := ports.OperatorOnly(d.Operator)
	if d.Auth != nil {
		guard = d.Auth.Require
	}
	s.http = ports.NewHTTP(a, log, guard, d.DB)
	return nil
}

// Routes mounts the HTTP routes; call it after Setup.
func (s *Service) Routes(r chi.Router) {
	if s.http == nil {
		panic("seatbilling: Routes called before Setup")
	}
	s.http.Routes(r)
}

// Run is the cycle-end scheduler (svc.Runner; S-5, S-10): at start and
// then every CyclePoll it closes the cycles that ended (RunDue), until the
// host stops, which ends ctx before it closes the database. A failed run is
// logged and tried again at the next poll: a cycle is closed late rather
// than the service stopped.
func (s *Service) Run(ctx context.Context) error {
	poll := s.CyclePoll
	if poll <= 0 {
		poll = DefaultCyclePoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "closing ended cycles failed; retried at the next poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunDue closes, now, every subscription's cycle that ended before the
// clock's date (app.CloseCyclesHandler) and returns how many it closed:
// pending licence removals apply (S-5), the renewal is charged and the
// stored cycle moves on (S-10). Running it again for the same cycle does
// nothing. Run calls it on a timer; tests call it directly.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	if s.app == nil {
		return 0, errors.New("seatbilling: RunDue called before Setup")
	}
	return s.app.CloseCycles.Handle(ctx)
}
