// Package eventbus carries Roster's internal events: protobuf messages on
// NATS JetStream through watermill, written by producers into their
// transactional outbox (Emit) and applied by consumers exactly once through
// their inbox (On, Run).
//
// On the wire each event is its protobuf encoding with CloudEvents 1.0
// binary-mode attributes and W3C trace context in the NATS headers:
// ce-specversion, ce-id (= event_id = Nats-Msg-Id), ce-type (the protobuf
// full name, e.g. roster.identity.v1.TechnicianCreated), ce-source
// (roster/<service>), ce-time, ce-subject (the account id), content-type
// and traceparent. Subjects are roster.events.<service>.<account>.<event>
// (docs/events.md).
package eventbus

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "roster.dev/proto/roster/common/v1"
)

// Event is a protobuf event message: every one has EventMeta as field
// `meta`.
type Event interface {
	proto.Message
	GetMeta() *commonv1.EventMeta
}

// CloudEvents and tracing headers.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "content-type"
	HeaderTraceparent = "traceparent"

	contentTypeProtobuf = "application/protobuf"
)

// Metadata keys added on receipt; never sent.
const (
	mdDelivery     = "x-roster-delivery"
	mdSubject      = "x-roster-subject"
	mdStreamSeq    = "x-roster-stream-seq"
	mdDecodeFailed = "x-roster-decode-error"
)

var propagator = propagation.TraceContext{}

// ServiceOf returns the service that owns an event type: the second part of
// its protobuf package (roster.identity.v1 → identity).
func ServiceOf(name protoreflect.FullName) string {
	parts := strings.Split(string(name), ".")
	if len(parts) < 4 || parts[0] != "roster" {
		return ""
	}
	return parts[1]
}

// Token is the subject token of an event type: TechnicianCreated →
// technician_created.
func Token(name protoreflect.Name) string {
	var b strings.Builder
	for i, r := range string(name) {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Subject returns the subject an event of this type for this account is
// published on.
func Subject(name protoreflect.FullName, accountID string) string {
	if accountID == "" {
		accountID = "_"
	}
	return "roster.events." + ServiceOf(name) + "." + accountID + "." + Token(name.Name())
}

type ctxKey int

const (
	keyCorrelation ctxKey = iota
	keyCausation
	keyActor
)

// WithCorrelation returns ctx carrying the correlation id shared by every
// event that one outside request causes.
func WithCorrelation(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyCorrelation, id)
}

// CorrelationID returns the correlation id carried by ctx, if any.
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(keyCorrelation).(string)
	return s
}

// WithActor returns ctx carrying who acts.
func WithActor(ctx context.Context, a *commonv1.Actor) context.Context {
	return context.WithValue(ctx, keyActor, a)
}

// ActorFrom returns the actor carried by ctx, or the system actor.
func ActorFrom(ctx context.Context) *commonv1.Actor {
	if a, ok := ctx.Value(keyActor).(*commonv1.Actor); ok && a != nil {
		return a
	}
	return &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_SYSTEM}
}

// withCause marks ctx as handling event meta: events emitted while handling
// it get its correlation id, its actor, and its id as their causation id.
func withCause(ctx context.Context, meta *commonv1.EventMeta) context.Context {
	ctx = context.WithValue(ctx, keyCausation, meta.GetEventId())
	if meta.GetCorrelationId() != "" {
		ctx = WithCorrelation(ctx, meta.GetCorrelationId())
	}
	if meta.GetActor() != nil {
		ctx = WithActor(ctx, meta.GetActor())
	}
	return ctx
}

// NewID returns a new UUIDv7 (time-ordered) event id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Stamp fills ev's meta: a new event id, the account, the time, and the
// actor, correlation and causation from ctx. Fields already set are kept,
// so a caller may fix the event id (to make a retried request publish the
// same event) or the time.
func Stamp(ctx context.Context, accountID string, ev Event) *commonv1.EventMeta {
	return stamp(ctx, accountID, ev, time.Now)
}

func stamp(ctx context.Context, accountID string, ev Event, now func() time.Time) *commonv1.EventMeta {
	meta := ev.GetMeta()
	if meta == nil {
		meta = &commonv1.EventMeta{}
		m := ev.ProtoReflect()
		fd := m.Descriptor().Fields().ByName("meta")
		if fd == nil {
			panic(fmt.Sprintf("eventbus: %s has no meta field", m.Descriptor().FullName()))
		}
		m.Set(fd, protoreflect.ValueOfMessage(meta.ProtoReflect()))
	}
	if meta.EventId == "" {
		meta.EventId = NewID()
	}
	if meta.AccountId == "" {
		meta.AccountId = accountID
	}
	if meta.OccurredAt == nil {
		meta.OccurredAt = timestamppb.New(now())
	}
	if meta.Actor == nil {
		meta.Actor = ActorFrom(ctx)
	}
	if meta.CorrelationId == "" {
		meta.CorrelationId = CorrelationID(ctx)
		if meta.CorrelationId == "" {
			meta.CorrelationId = meta.EventId
		}
	}
	if meta.CausationId == "" {
		meta.CausationId, _ = ctx.Value(keyCausation).(string)
	}
	return meta
}

// encode turns a stamped event into the watermill message that goes into the
// outbox, and returns its subject. A short producer span is recorded and its
// context travels in traceparent, so the consumers' spans join the trace of
// the request that caused the event.
func encode(ctx context.Context, service string, ev Event) (*message.Message, string, error) {
	meta := ev.GetMeta()
	name := ev.ProtoReflect().Descriptor().FullName()
	if owner := ServiceOf(name); owner != service {
		return nil, "", fmt.Errorf("eventbus: %s belongs to service %q; %s cannot emit it", name, owner, service)
	}
	payload, err := proto.Marshal(ev)
	if err != nil {
		return nil, "", fmt.Errorf("eventbus: encode %s: %w", name, err)
	}
	subject := Subject(name, meta.GetAccountId())
	ctx, span := otel.Tracer("roster.dev/pkg/eventbus").Start(ctx, "publish "+string(name.Name()),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", meta.GetEventId()),
		))
	defer span.End()

	msg := message.NewMessage(meta.GetEventId(), payload)
	msg.Metadata.Set(HeaderSpecVersion, "1.0")
	msg.Metadata.Set(HeaderID, meta.GetEventId())
	msg.Metadata.Set(HeaderType, string(name))
	msg.Metadata.Set(HeaderSource, "roster/"+service)
	msg.Metadata.Set(HeaderTime, meta.GetOccurredAt().AsTime().UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(HeaderSubject, meta.GetAccountId())
	msg.Metadata.Set(HeaderContentType, contentTypeProtobuf)
	propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	return msg, subject, nil
}
