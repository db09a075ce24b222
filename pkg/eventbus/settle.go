package eventbus

// Read-your-writes (issue 18, docs/architecture.md "Read-your-writes"): a
// write request answers once every event it caused has been applied by
// every consumer that handles it — and, transitively, the events those
// handlers emitted — so that any read through any service sees all of it.
//
// The protocol has three parts:
//   - Every durable consumer says which event types it handles, and whether
//     writers wait for it, in its JetStream consumer metadata
//     (ConsumerMetadata); a Waiter reads the consumers of the event streams
//     to know whom to wait for.
//   - A consumer that committed an event publishes a Settled notice on core
//     NATS (roster.settled.<service>) naming itself, the event, the
//     correlation id and the events its transaction emitted.
//   - The request's transactions record the events they emitted (Emit, after
//     commit) in a tracker carried by the request's context; before the
//     response's status goes out, the Waiter waits for the notices of the
//     whole tree, with a deadline.

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	commonv1 "roster.dev/proto/roster/common/v1"
)

// SettledPrefix starts the subjects of Settled notices:
// roster.settled.<service>.
const SettledPrefix = "roster.settled."

// Consumer metadata keys of the registry (JetStream consumer metadata).
const (
	// MetaHandles lists, comma-separated, the event types (protobuf full
	// names) that the consumer applies; other types it acks unread.
	MetaHandles = "roster-handles"
	// MetaAwaited is "1" when writers wait for the consumer (every service
	// but audit, whose record is asynchronous by contract).
	MetaAwaited = "roster-awaited"
)

// ConsumerMetadata is the registry entry of a consumer that applies types.
func ConsumerMetadata(types []string, awaited bool) map[string]string {
	types = append([]string(nil), types...)
	sort.Strings(types)
	a := "0"
	if awaited {
		a = "1"
	}
	return map[string]string{MetaHandles: strings.Join(types, ","), MetaAwaited: a}
}

// Settled is the notice a consumer publishes once it committed an event.
type Settled struct {
	Consumer    string    `json:"c"`
	Correlation string    `json:"r"`
	EventID     string    `json:"id"`
	Emitted     []emitted `json:"e,omitempty"`
}

// PublishSettled tells waiting writers that consumer (of service) has
// applied the event of meta, its transaction emitting emitted. Best
// effort: a lost notice makes a writer wait until its deadline.
func PublishSettled(nc *nats.Conn, service, consumer string, meta *commonv1.EventMeta, emitted []emitted) error {
	if meta.GetCorrelationId() == "" {
		return nil
	}
	data, err := json.Marshal(Settled{Consumer: consumer, Correlation: meta.GetCorrelationId(), EventID: meta.GetEventId(), Emitted: emitted})
	if err != nil {
		return err
	}
	return nc.Publish(SettledPrefix+service, data)
}

// emitted is an event a committed transaction wrote to its outbox.
type emitted struct {
	ID   string `json:"id"`
	Type string `json:"t"`
}

// tracker collects the events that the transactions of one request (or of
// one event handler) emitted and committed.
type tracker struct {
	mu     sync.Mutex
	events []emitted
}

type trackerKey struct{}

func withTracker(ctx context.Context, t *tracker) context.Context {
	return context.WithValue(ctx, trackerKey{}, t)
}

func trackerFrom(ctx context.Context) *tracker {
	t, _ := ctx.Value(trackerKey{}).(*tracker)
	return t
}

func (t *tracker) add(id, typ string) {
	t.mu.Lock()
	t.events = append(t.events, emitted{ID: id, Type: typ})
	t.mu.Unlock()
}

// take returns the events collected so far and forgets them.
func (t *tracker) take() []emitted {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.events
	t.events = nil
	return out
}

// handledTypes are the event types of source that this bus applies.
func (b *Bus) handledTypes(source string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for name := range b.handlers {
		if ServiceOf(name) == source {
			out = append(out, string(name))
		}
	}
	if b.all[source] != nil {
		out = append(out, "*")
	}
	return out
}

// consumerMetadata is the registry entry of this bus's consumer of source.
func (b *Bus) consumerMetadata(source string) map[string]string {
	return ConsumerMetadata(b.handledTypes(source), !b.cfg.Eventual)
}

// settled publishes the Settled notice of an event this bus's consumer
// committed (applied now or before: a duplicate emits nothing new).
func (b *Bus) settled(consumer string, meta *commonv1.EventMeta, t *tracker) {
	nc := b.settleConn
	if nc == nil || b.cfg.Eventual {
		return
	}
	var ev []emitted
	if t != nil {
		ev = t.take()
	}
	if err := PublishSettled(nc, b.cfg.Service, consumer, meta, ev); err != nil {
		b.log.Debug("settled notice not sent", "consumer", consumer, "err", err)
	}
}
