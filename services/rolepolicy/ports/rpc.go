package ports

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/rpc"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/app"
)

// ServeCheckAccess answers other services' access checks on nc:
// rpc.CheckAccess, queue group "rolepolicy". The answer comes from the
// in-memory index; anything the account does not have is denied with a
// decision that says what, never an rpc error.
func ServeCheckAccess(nc *nats.Conn, a *app.App, log *slog.Logger) (*nats.Subscription, error) {
	return rpc.Serve(nc, rpc.CheckAccess, "rolepolicy", log,
		func() *rolepolicyv1.CheckAccessRequest { return &rolepolicyv1.CheckAccessRequest{} },
		func(_ context.Context, req *rolepolicyv1.CheckAccessRequest) (*rolepolicyv1.CheckAccessReply, error) {
			d := a.CheckAccess(req.GetAccountId(), access.Request{
				TechnicianID: req.GetTechnicianId(),
				Permission:   req.GetPermission(),
				SiteID:       req.GetSiteId(),
				FolderID:     req.GetFolderId(),
			})
			return &rolepolicyv1.CheckAccessReply{
				Allowed:  d.Allowed,
				Reason:   d.Reason(),
				Decision: decisions[d.Code],
				RoleId:   d.RoleID,
				RoleName: d.RoleName,
			}, nil
		})
}

// decisions maps the index's codes to the protobuf enum.
var decisions = map[access.Code]rolepolicyv1.CheckAccessReply_Decision{
	access.AllowedAdmin:         rolepolicyv1.CheckAccessReply_DECISION_ALLOWED_ADMIN,
	access.AllowedByRole:        rolepolicyv1.CheckAccessReply_DECISION_ALLOWED_BY_ROLE,
	access.DeniedDisabled:       rolepolicyv1.CheckAccessReply_DECISION_DENIED_DISABLED,
	access.DeniedPermission:     rolepolicyv1.CheckAccessReply_DECISION_DENIED_PERMISSION,
	access.DeniedSiteScope:      rolepolicyv1.CheckAccessReply_DECISION_DENIED_SITE_SCOPE,
	access.DeniedFolderExcluded: rolepolicyv1.CheckAccessReply_DECISION_DENIED_FOLDER_EXCLUDED,
	access.DeniedNoRole:         rolepolicyv1.CheckAccessReply_DECISION_DENIED_NO_ROLE,
	access.UnknownAccount:       rolepolicyv1.CheckAccessReply_DECISION_DENIED_UNKNOWN_ACCOUNT,
	access.UnknownTechnician:    rolepolicyv1.CheckAccessReply_DECISION_DENIED_UNKNOWN_TECHNICIAN,
	access.UnknownPermission:    rolepolicyv1.CheckAccessReply_DECISION_DENIED_UNKNOWN_PERMISSION,
	access.UnknownSite:          rolepolicyv1.CheckAccessReply_DECISION_DENIED_UNKNOWN_SITE,
	access.UnknownFolder:        rolepolicyv1.CheckAccessReply_DECISION_DENIED_UNKNOWN_FOLDER,
	access.FolderNotInSite:      rolepolicyv1.CheckAccessReply_DECISION_DENIED_FOLDER_NOT_IN_SITE,
}
