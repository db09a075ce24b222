// Package audit is the audit service: it records every event of every
// Roster service as one record in its account's hash chain,
// serves and verifies the chains over HTTP and publishes each
// record on the public audit stream.
package audit

import (
	"context"
	"io/fs"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/svc"
	"roster.dev/services/audit/adapters"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/migrations"
	"roster.dev/services/audit/ports"
)

// Service is the audit service.
type Service struct {
	http *ports.HTTP
}

var _ svc.Service = (*Service)(nil)

// New returns the audit service.
func New() *Service { return &Service{} }

func (s *Service) Name() string      { return "audit" }
func (s *Service) Migrations() fs.FS { return migrations.FS }

// Routes mounts the audit routes; call it after Setup.
func (s *Service) Routes(r chi.Router) { s.http.Routes(r) }

// Setup wires the store, the stream and the consumers of every event
// stream.
func (s *Service) Setup(_ context.Context, d svc.Deps) error {
	st := adapters.Store{DB: d.DB}
	a := &app.App{Chain: st, Records: st, Stream: adapters.Stream{Outbox: d.Bus.Outbox()}}
	ports.Events{App: a, Log: d.Log}.Register(d.Bus)
	authn := d.Auth
	if authn == nil {
		authn = auth.New(d.Operator, nil)
	}
	s.http = &ports.HTTP{App: a, Auth: authn, Log: d.Log}
	return nil
}
