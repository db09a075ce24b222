package identity

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
	"roster.dev/services/identity/ports"
)

// DirectoryPoll is how often the HRIS delivery processor and termination
// scheduler look for work; a new delivery wakes them at once.
var DirectoryPoll = 200 * time.Millisecond

// setUpDirectory wires directory sync: HRIS webhooks (H-1) and CSV
// imports (H-3). An import may create technicians without the welcome
// mail (app.WithoutWelcomeMail).
func (s *Service) setUpDirectory(a *app.App, st adapters.Store, seats adapters.Seats, d svc.Deps) {
	s.dir = app.NewDirectory(a, st, seats, d.Log)
	s.dir.SSOConfigs = st // S-8: SCIM only with SSO (atlan)
	s.dirHTTP = &ports.DirectoryHTTP{Dir: s.dir, Auth: d.Auth, Log: d.Log}
	if invite := a.OnTechnicianCreated; invite != nil {
		a.OnTechnicianCreated = func(ctx context.Context, tx *sql.Tx, acc domain.Account, t domain.Technician) error {
			if app.WelcomeMailSuppressed(ctx) {
				return nil
			}
			return invite(ctx, tx, acc, t)
		}
	}
}

// Directory is the directory-sync use cases (tests run the scheduler
// through it).
func (s *Service) Directory() *app.Directory { return s.dir }

func (s *Service) runDirectory(ctx context.Context) error {
	return runAll(ctx,
		func(ctx context.Context) error { return s.dir.RunHRIS(ctx, DirectoryPoll) },
		func(ctx context.Context) error { return s.dir.RunImports(ctx, DirectoryPoll) })
}

// runAll runs fns until ctx ends, and returns their errors.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(fns))
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
