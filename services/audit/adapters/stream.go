package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/outbox"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

// CloudEvents attributes of the public audit stream (api.md, "Public audit
// stream").
const (
	// TypePrefix starts ce-type: dev.roster.audit.<action>.
	TypePrefix = "dev.roster.audit."
	// Source is ce-source.
	Source = "roster/audit"
)

// Stream publishes records on the public audit stream through the
// audit service's own outbox, in the transaction that appends them: a
// record is published if and only if it is stored, and its id as
// Nats-Msg-Id lets the stream drop a second copy after a relay crash.
type Stream struct{ Outbox *outbox.Outbox }

var _ app.Stream = Stream{}

// Subject is where r is published: roster.audit.<account_id>.<action>.
func Subject(r domain.Record) (string, error) {
	acc := r.AccountID
	if acc == "" {
		acc = "_" // as eventbus.Subject does for events without an account
	}
	if strings.ContainsAny(acc, ".*> \t\r\n") {
		return "", fmt.Errorf("audit record %s: account id %q cannot be a NATS subject token", r.ID, acc)
	}
	return eventbus.AuditSubjectPrefix + acc + "." + r.Action, nil
}

// Publish queues r, as JSON with CloudEvents binary-mode headers, for the
// stream once tx commits. The trace of the event being recorded, carried by
// ctx, goes on in traceparent.
func (s Stream) Publish(ctx context.Context, tx *sql.Tx, r domain.Record) error {
	subject, err := Subject(r)
	if err != nil {
		return err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode audit record %s: %w", r.ID, err)
	}
	msg := message.NewMessage(r.ID, body)
	msg.Metadata.Set(eventbus.HeaderSpecVersion, "1.0")
	msg.Metadata.Set(eventbus.HeaderID, r.ID)
	msg.Metadata.Set(eventbus.HeaderType, TypePrefix+r.Action)
	msg.Metadata.Set(eventbus.HeaderSource, Source)
	msg.Metadata.Set(eventbus.HeaderTime, r.Time.Format(time.RFC3339Nano))
	msg.Metadata.Set(eventbus.HeaderSubject, r.Target.ID)
	msg.Metadata.Set(eventbus.HeaderContentType, "application/json")
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	if err := s.Outbox.Add(tx, subject, msg); err != nil {
		return fmt.Errorf("publish audit record %s: %w", r.ID, err)
	}
	return nil
}
