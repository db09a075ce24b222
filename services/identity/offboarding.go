package identity

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/svc"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/ports"
)

// PurgePoll is how often archived reports past their window are looked for
// (O-3).
var PurgePoll = time.Minute

// OffboardingPageSize is how many owned items an offboarding reads and
// applies at a time (app.DefaultPageSize when 0); tests lower it to walk
// many pages with few items.
var OffboardingPageSize int

// setUpOffboarding wires the ownership registry and the offboardings
// (O-1…O-4): the disable plans them, the enable restores archived reports,
// instructions leave through identity's outbox.
func (s *Service) setUpOffboarding(a *app.App, st adapters.Store, nc *nats.Conn, d svc.Deps) {
	s.off = &app.Offboardings{App: a, Own: st, Instructions: adapters.Instructions{Outbox: d.Bus.Outbox()},
		Costs: adapters.Seats{NC: nc}, PageSize: OffboardingPageSize,
		Feed: st, Rejects: adapters.OwnershipRejects{Outbox: d.Bus.Outbox()}}
	a.Offboarding = s.off
	s.http.Offboardings = s.off
	s.offHTTP = &ports.OffboardingHTTP{Off: s.off, Auth: d.Auth, Log: d.Log}
	s.ownEvents = &ports.OwnershipConsumer{Off: s.off, NC: nc, Log: d.Log}
}

// Offboardings is the offboarding use cases (tests run the purge through it).
func (s *Service) Offboardings() *app.Offboardings { return s.off }

func (s *Service) runPurge(ctx context.Context) error { return s.off.RunPurge(ctx, PurgePoll) }

// runOwnershipEvents applies the ownership events owning systems publish
// (O-4).
func (s *Service) runOwnershipEvents(ctx context.Context) error { return s.ownEvents.Run(ctx) }
