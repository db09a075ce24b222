package ports

import (
	"context"
	"database/sql"
	"log/slog"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	identityv1 "roster.dev/proto/roster/identity/v1"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/identity/app"
)

// RegisterConsumers subscribes identity to the events it keeps projections
// of: rolepolicy's role assignments (the technician's role, and I-9's
// admins); and to seatbilling's LicenceExpired, which disables the
// technician whose seat was removed at cycle end (S-5).
func RegisterConsumers(bus *eventbus.Bus, a *app.App) {
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *rolepolicyv1.RoleAssigned) error {
		return a.ApplyRoleAssigned(ctx, tx, ev.GetMeta().GetAccountId(), ev.GetTechnicianId(), ev.GetRoleId(), ev.GetRoleName(),
			ev.GetRequestedRole(), ev.GetAdminRole())
	})
	eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *seatbillingv1.LicenceExpired) error {
		return a.ExpireLicence(ctx, tx, ev.GetMeta().GetAccountId(), ev.GetTechnicianId())
	})
}

// ServeAuthenticate answers rpc.Authenticate for every service's HTTP routes.
func ServeAuthenticate(nc *nats.Conn, a *app.App, log *slog.Logger) (*nats.Subscription, error) {
	return rpc.Serve(nc, rpc.Authenticate, "identity", log,
		func() *identityv1.AuthenticateRequest { return &identityv1.AuthenticateRequest{} },
		func(ctx context.Context, req *identityv1.AuthenticateRequest) (*identityv1.AuthenticateReply, error) {
			p, ok, err := a.Authenticate(ctx, req.GetTokenHash())
			if err != nil || !ok {
				return &identityv1.AuthenticateReply{}, err
			}
			kind := identityv1.AuthenticateReply_KIND_API_TOKEN
			if p.TechnicianID != "" {
				kind = identityv1.AuthenticateReply_KIND_SESSION
			}
			rep := &identityv1.AuthenticateReply{Valid: true, Kind: kind, AccountId: p.AccountID, TokenId: p.TokenID,
				TechnicianId: p.TechnicianID, Scopes: p.Scopes, EnrollmentOnly: p.EnrollmentOnly}
			if !p.CacheUntil.IsZero() {
				rep.CacheUntil = timestamppb.New(p.CacheUntil)
			}
			return rep, nil
		})
}
