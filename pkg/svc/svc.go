// Package svc is the host every Roster service runs in: it opens the
// service's own database and migrations, connects its event bus, mounts its
// HTTP routes, and runs it until shutdown. `roster serve` hosts the four
// services in one process; `roster serve <service>` hosts one.
package svc

import (
	"context"
	"io/fs"
	"log/slog"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/store"
)

// Service is one of Roster's services.
type Service interface {
	// Name is the service's name: its database file or schema, its
	// consumers' prefix.
	Name() string
	// Migrations are the goose .sql files of the service's own tables.
	Migrations() fs.FS
	// Setup registers the event handlers on d.Bus and keeps what it needs
	// from d. It runs after migrations and before the bus starts.
	Setup(ctx context.Context, d Deps) error
	// Routes mounts the service's HTTP routes (full paths, /v1/…).
	Routes(r chi.Router)
}

// Runner is a Service with background work besides its event handlers
// (identity's mailer). The host calls Run once the buses run and cancels
// ctx on Stop, before it closes the service's database; Run returns nil
// then. An error it returns is reported on Host.Errors.
type Runner interface {
	Run(ctx context.Context) error
}

// DefaultEventBatch is the most events a service's consumer applies in
// one transaction (eventbus.Config.Batch): whatever has arrived, up to
// this, in one commit; an event arriving alone is applied at once.
const DefaultEventBatch = 256

// Batcher is a Service that chooses its own EventBatch (1: one event per
// transaction).
type Batcher interface {
	EventBatch() int
}

// EventBatch is s's eventbus.Config.Batch: DefaultEventBatch unless s is
// a Batcher.
func EventBatch(s Service) int {
	if b, ok := s.(Batcher); ok {
		return b.EventBatch()
	}
	return DefaultEventBatch
}

// Eventual is a Service whose event consumers writers do not wait for
// (eventbus.Config.Eventual): the audit service, whose record of a write
// is asynchronous by contract (api.md, docs/architecture.md).
type Eventual interface {
	EventuallyConsistent() bool
}

// IsEventual reports whether s is an Eventual service that says so.
func IsEventual(s Service) bool {
	e, ok := s.(Eventual)
	return ok && e.EventuallyConsistent()
}

// Deps is what the host gives a service.
type Deps struct {
	DB       *store.DB
	Bus      *eventbus.Bus
	Log      *slog.Logger
	Operator *httpx.Operator
	// Auth authenticates bearer tokens: the operator's locally, the others
	// by asking identity.
	Auth *auth.Authenticator
	// Connect opens a NATS connection (for request-reply).
	Connect func(name string) (*nats.Conn, error)
	// Now is the clock; tests fix it.
	Now func() time.Time
	// Mail is the mail transport URL (pkg/mail): file://DIR or
	// smtp://host:port. The host always sets it; a harness that leaves it
	// empty gets no mail sent.
	Mail string
	// PublicURL is the base URL of links in mails (no trailing slash).
	PublicURL string
}
