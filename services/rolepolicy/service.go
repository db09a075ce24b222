// Package rolepolicy is Roster's role-policy service (rules.md R-*): the
// permission catalog, built-in and custom roles, who holds which role, and
// access decisions.
//
// Layout: domain/ holds the rules (pure Go), access/ the in-memory index
// that decides access checks, app/ the use cases, adapters/ the
// SQL store, ports/ the HTTP routes, event consumers and the request-reply
// handler, migrations/ the service's tables.
package rolepolicy

import (
	"cmp"
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
	"roster.dev/services/rolepolicy/adapters"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/migrations"
	"roster.dev/services/rolepolicy/ports"
)

// Service is the rolepolicy service as the host runs it.
type Service struct {
	http *ports.HTTP
	app  *app.App
	// rpc answers access checks (rpc.CheckAccess); replicas hears the
	// other replicas' index changes (ports.ReplicateIndex). The
	// subscriptions live as long as their connection, which the host
	// closes on shutdown.
	rpc, replicas *nats.Subscription
	// catchUp is how often Run compares the index with the database's
	// index versions (default DefaultCatchUp).
	catchUp time.Duration
	log     *slog.Logger
}

// DefaultCatchUp is how often each replica compares its access index with
// the database (app/replicas.go): the most a replica that missed another
// replica's announcement answers from an older index.
const DefaultCatchUp = 2 * time.Second

var _ svc.Runner = (*Service)(nil)

var _ svc.Service = (*Service)(nil)

// New returns the service; Setup wires it.
func New() *Service { return &Service{} }

// Name is the service's database, schema and consumer prefix.
func (*Service) Name() string { return "rolepolicy" }

// Migrations are the service's goose migrations.
func (*Service) Migrations() fs.FS { return migrations.FS }

// Setup wires the store, the use cases and the event consumers, builds the
// access index from the database (before any event or request arrives),
// and answers access checks over request-reply when the host gives a NATS
// connection.
func (s *Service) Setup(ctx context.Context, d svc.Deps) error {
	if d.DB == nil || d.Bus == nil || d.Operator == nil {
		return errors.New("rolepolicy: Setup needs DB, Bus and Operator")
	}
	log := d.Log // the host's logger already names the service
	if log == nil {
		log = slog.Default().With("service", s.Name())
	}
	st := adapters.NewStore(d.DB)
	a := app.New(d.DB, st, d.Bus, log, d.Now)
	if err := a.LoadIndex(ctx); err != nil {
		return fmt.Errorf("rolepolicy: %w", err)
	}
	ports.Consume(d.Bus, a)
	// A batch of events locks its accounts in one order first, as every
	// handler locks its account (PostgreSQL deadlocks between replicas
	// otherwise).
	eventbus.BeforeBatch(d.Bus, st.LockAccounts)
	layers := app.NewLayers(a, adapters.NewStore(d.DB)) // personas, purposes
	ports.ConsumeLayers(d.Bus, layers)
	if d.Connect != nil {
		nc, err := d.Connect("rolepolicy-rpc")
		if err != nil {
			return fmt.Errorf("rolepolicy: connect for request-reply: %w", err)
		}
		if s.rpc, err = ports.ServeCheckAccess(nc, a, log); err != nil {
			nc.Close()
			return fmt.Errorf("rolepolicy: serve %s: %w", rpc.CheckAccess, err)
		}
		if s.replicas, err = ports.ReplicateIndex(nc, a, log); err != nil {
			nc.Close()
			return fmt.Errorf("rolepolicy: subscribe %s: %w", ports.IndexSubject, err)
		}
	}
	s.app = a
	s.log = log
	s.http = ports.NewHTTP(a, d.Auth, d.Operator, log).WithLayers(layers)
	return nil
}

// Run keeps the access index in step with the other replicas' changes
// until ctx ends (ports.CatchUpEvery). The host calls it after Setup.
func (s *Service) Run(ctx context.Context) error {
	if s.app == nil {
		return errors.New("rolepolicy: Run called before Setup")
	}
	ports.CatchUpEvery(ctx, s.app, cmp.Or(s.catchUp, DefaultCatchUp), s.log)
	return nil
}

// Routes mounts the HTTP routes. The host calls it after Setup.
func (s *Service) Routes(r chi.Router) {
	if s.http == nil {
		panic("rolepolicy: Routes called before Setup")
	}
	s.http.Mount(r)
}
