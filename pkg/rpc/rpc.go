// Package rpc is NATS request-reply with protobuf bodies, for the few
// places where a service needs an answer before it acts (flows.md: identity
// asks seatbilling for a seat before creating a technician; every service
// asks identity who a bearer token belongs to). Replicas of a service share
// a queue group, so each request is answered once.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// Subjects of the request-reply contracts (docs/events.md).
const (
	// ReserveSeat: seatbilling.v1.ReserveSeatRequest → ReserveSeatReply.
	ReserveSeat = "roster.rpc.seatbilling.reserve_seat"
	// ScheduleLicenceRemoval: seatbilling.v1.ScheduleLicenceRemovalRequest
	// → ScheduleLicenceRemovalReply (S-5).
	ScheduleLicenceRemoval = "roster.rpc.seatbilling.schedule_licence_removal"
	// FeatureEnabled: seatbilling.v1.FeatureEnabledRequest →
	// FeatureEnabledReply (S-8 plan gates: CSV import, SSO, SCIM).
	FeatureEnabled = "roster.rpc.seatbilling.feature_enabled"
	// PreviewSeatRelease: seatbilling.v1.PreviewSeatReleaseRequest →
	// PreviewSeatReleaseReply (the cost effect of a disable, O-3 preview).
	PreviewSeatRelease = "roster.rpc.seatbilling.preview_seat_release"
	// Authenticate: identity.v1.AuthenticateRequest → AuthenticateReply.
	Authenticate = "roster.rpc.identity.authenticate"
	// CheckAccess: rolepolicy.v1.CheckAccessRequest → CheckAccessReply
	// answered from rolepolicy's in-memory index.
	CheckAccess = "roster.rpc.rolepolicy.check_access"
)

// headerError carries a handler's failure back to the caller.
const headerError = "roster-rpc-error"

// ErrRemote is wrapped by errors the answering service reported.
var ErrRemote = errors.New("rpc: remote error")

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// maxInFlight bounds the requests one subscription handles at once.
const maxInFlight = 64

var propagator = propagation.TraceContext{}

// Serve answers requests on subject in queue group queue: newReq makes an
// empty request to decode into; fn answers it. Requests are handled
// concurrently (at most 64 at once).
func Serve[Req, Rep proto.Message](nc *nats.Conn, subject, queue string, log *slog.Logger, newReq func() Req, fn func(context.Context, Req) (Rep, error)) (*nats.Subscription, error) {
	tracer := otel.Tracer("roster.dev/pkg/rpc")
	sem := make(chan struct{}, maxInFlight)
	return nc.QueueSubscribe(subject, queue, func(m *nats.Msg) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ctx := context.Background()
			if m.Header != nil {
				ctx = propagator.Extract(ctx, propagation.HeaderCarrier(m.Header))
			}
			ctx, span := tracer.Start(ctx, "serve "+subject, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			reply := nats.NewMsg(m.Reply)
			req := newReq()
			var err error
			var rep Rep
			if err = proto.Unmarshal(m.Data, req); err != nil {
				err = fmt.Errorf("decode request: %w", err)
			} else {
				rep, err = fn(ctx, req)
			}
			if err == nil {
				reply.Data, err = proto.Marshal(rep)
			}
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
				log.ErrorContext(ctx, "rpc failed", "subject", subject, "err", err)
				reply.Header = nats.Header{}
				reply.Header.Set(headerError, err.Error())
				reply.Data = nil
			}
			if err := m.RespondMsg(reply); err != nil {
				log.Warn("rpc reply not sent", "subject", subject, "err", err)
			}
		}()
	})
}

// Call sends req on subject and decodes the answer into rep.
func Call(ctx context.Context, nc *nats.Conn, subject string, req, rep proto.Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	ctx, span := otel.Tracer("roster.dev/pkg/rpc").Start(ctx, "call "+subject, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc %s: encode: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	propagator.Inject(ctx, propagation.HeaderCarrier(msg.Header))
	res, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("rpc %s: %w", subject, err)
	}
	if e := res.Header.Get(headerError); e != "" {
		span.SetStatus(codes.Error, e)
		return fmt.Errorf("%w: %s: %s", ErrRemote, subject, e)
	}
	if err := proto.Unmarshal(res.Data, rep); err != nil {
		return fmt.Errorf("rpc %s: decode reply: %w", subject, err)
	}
	return nil
}
