// Package ports translates the audit service's inputs to its use cases:
// every internal event to a record, HTTP requests to queries
// and verification. No rule lives here.
package ports

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"roster.dev/pkg/eventbus"
	commonv1 "roster.dev/proto/roster/common/v1"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"

	// The event types the audit consumes must be registered for the bus to
	// decode them.
	_ "roster.dev/proto/roster/identity/v1"
	_ "roster.dev/proto/roster/rolepolicy/v1"
	_ "roster.dev/proto/roster/seatbilling/v1"
)

// Events records every event of every service that publishes any.
type Events struct {
	App *app.App
	Log *slog.Logger
}

// Register subscribes to every event type of eventbus.EventServices.
func (e Events) Register(b *eventbus.Bus) {
	for _, source := range eventbus.EventServices {
		eventbus.OnAll(b, source, e.record)
	}
}

// record runs in the delivery's transaction, which also claims the event in
// the inbox: the record and its outbox row commit with the claim, or not at
// all.
func (e Events) record(ctx context.Context, tx *sql.Tx, ev eventbus.Event) error {
	entry, err := EntryOf(ev)
	if err != nil {
		return err
	}
	r, appended, err := e.App.Record(ctx, tx, entry)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", entry.EventType, entry.EventID, err)
	}
	if appended && e.Log != nil {
		e.Log.DebugContext(ctx, "audit record appended", "account_id", r.AccountID, "sequence", r.Sequence,
			"action", r.Action, "event_id", entry.EventID)
	}
	return nil
}

var actorTypes = map[commonv1.ActorType]string{
	commonv1.ActorType_ACTOR_TYPE_TECHNICIAN: domain.ActorTechnician,
	commonv1.ActorType_ACTOR_TYPE_OPERATOR:   domain.ActorOperator,
	commonv1.ActorType_ACTOR_TYPE_API_TOKEN:  domain.ActorAPIToken,
	commonv1.ActorType_ACTOR_TYPE_HRIS:       domain.ActorHRIS,
	commonv1.ActorType_ACTOR_TYPE_SCIM:       domain.ActorSCIM,
	commonv1.ActorType_ACTOR_TYPE_SYSTEM:     domain.ActorSystem,
}

// dataOptions render an event's fields with their proto (snake_case) names;
// unset fields are included, so every record of one action has the same
// shape.
var dataOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// EntryOf reads an event into an audit entry: its meta gives who, when and
// why; its other fields become the record's data.
func EntryOf(ev eventbus.Event) (domain.Entry, error) {
	meta := ev.GetMeta()
	typ := string(ev.ProtoReflect().Descriptor().FullName())
	doc, err := dataOptions.Marshal(ev)
	if err != nil {
		return domain.Entry{}, fmt.Errorf("audit: encode %s: %w", typ, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fields); err != nil {
		return domain.Entry{}, fmt.Errorf("audit: encode %s: %w", typ, err)
	}
	delete(fields, "meta")
	data, err := json.Marshal(fields)
	if err != nil {
		return domain.Entry{}, fmt.Errorf("audit: encode %s: %w", typ, err)
	}
	at := time.Now()
	if meta.GetOccurredAt() != nil {
		at = meta.GetOccurredAt().AsTime()
	}
	actorType, ok := actorTypes[meta.GetActor().GetType()]
	if !ok {
		actorType = domain.ActorSystem
	}
	return domain.Entry{
		EventID:       meta.GetEventId(),
		EventType:     typ,
		AccountID:     meta.GetAccountId(),
		OccurredAt:    at,
		Actor:         domain.Actor{Type: actorType, ID: meta.GetActor().GetId()},
		SourceAddress: meta.GetActor().GetSourceAddress(),
		CorrelationID: meta.GetCorrelationId(),
		Data:          data,
	}, nil
}
