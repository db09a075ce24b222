package ports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// OwnershipConsumer feeds the ownership registry from what owning systems
// publish on roster.ownership.<account_id>.<kind> (O-4; docs/events.md
// "Ownership events"). It reads the stream in order from the position
// stored with the registry (an ordered consumer, nothing to acknowledge),
// and applies up to app.MaxOwnershipBatch events per transaction.
type OwnershipConsumer struct {
	Off *app.Offboardings
	NC  *nats.Conn
	Log *slog.Logger
	// Linger is how long a batch waits for more events after its first.
	Linger time.Duration
}

// OwnershipMessage is an ownership event's JSON body; the account and the
// kind are the subject's last two tokens.
type OwnershipMessage struct {
	// Op is upsert (the default) or delete.
	Op string `json:"op"`
	// Kind, when given, must be the subject's.
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	OwnerID   string `json:"owner_id"`
	Status    string `json:"status"`
	Folder    string `json:"folder"`
	OnDisable string `json:"on_disable"`
}

// DecodeOwnership reads one delivery; an unreadable one comes back with
// Unreadable set (a problem naming what is wrong), to be dead-lettered.
func DecodeOwnership(subject string, seq uint64, header nats.Header, data []byte) app.OwnershipEvent {
	ev := app.OwnershipEvent{Seq: seq, Subject: subject, Raw: data, Header: map[string]string{}}
	for k := range header {
		ev.Header[k] = header.Get(k)
	}
	rest, ok := strings.CutPrefix(subject, eventbus.OwnershipSubjectPrefix)
	acc, kind, _ := strings.Cut(rest, ".")
	if !ok || acc == "" || kind == "" || strings.Contains(kind, ".") {
		ev.Unreadable = problem.Invalid(problem.FieldError{Field: "subject", Detail: "must be roster.ownership.<account_id>.<kind>"})
		return ev
	}
	ev.AccountID = acc
	var m OwnershipMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		ev.Unreadable = problem.Invalid(problem.FieldError{Field: "body", Detail: "is not a JSON ownership event: " + err.Error()})
		return ev
	}
	if m.Kind != "" && m.Kind != kind {
		ev.Unreadable = problem.Invalid(problem.FieldError{Field: "kind", Detail: fmt.Sprintf("%q is not the subject's kind %q", m.Kind, kind)})
		return ev
	}
	ev.Op = m.Op
	ev.Item = domain.OwnedItem{Kind: kind, ID: m.ID, OwnerID: m.OwnerID, Status: m.Status, Folder: m.Folder, OnDisable: m.OnDisable}
	return ev
}

// Run applies the events until ctx ends, resubscribing after a failure
// from the last position stored.
func (c *OwnershipConsumer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := c.run(ctx); err != nil && ctx.Err() == nil {
			c.Log.ErrorContext(ctx, "ownership events", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (c *OwnershipConsumer) run(ctx context.Context) error {
	js, err := c.NC.JetStream()
	if err != nil {
		return err
	}
	pos, err := c.Off.FeedPosition(ctx)
	if err != nil {
		return err
	}
	opts := []nats.SubOpt{nats.OrderedConsumer(), nats.BindStream(eventbus.StreamOwnership), nats.DeliverAll()}
	if pos > 0 {
		opts = []nats.SubOpt{nats.OrderedConsumer(), nats.BindStream(eventbus.StreamOwnership), nats.StartSequence(pos + 1)}
	}
	sub, err := js.SubscribeSync(eventbus.OwnershipSubjectPrefix+">", opts...)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	linger := c.Linger
	if linger == 0 {
		linger = 20 * time.Millisecond
	}
	batch := make([]app.OwnershipEvent, 0, app.MaxOwnershipBatch)
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		batch = append(batch[:0], decode(m))
		for len(batch) < app.MaxOwnershipBatch {
			m, err := sub.NextMsg(linger)
			if errors.Is(err, nats.ErrTimeout) {
				break
			}
			if err != nil {
				return err
			}
			batch = append(batch, decode(m))
		}
		// A failure to apply is retried with the same batch: the stream's
		// order is kept, nothing skipped.
		for attempt := 0; ; attempt++ {
			applied, refused, err := c.Off.ApplyOwnershipEvents(ctx, batch)
			if err == nil {
				if refused > 0 {
					c.Log.WarnContext(ctx, "ownership events refused (dead-lettered)", "applied", applied, "refused", refused)
				}
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			c.Log.ErrorContext(ctx, "ownership events: retrying the batch", "err", err, "attempt", attempt+1)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
			}
		}
	}
}

func decode(m *nats.Msg) app.OwnershipEvent {
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	return DecodeOwnership(m.Subject, seq, m.Header, m.Data)
}
