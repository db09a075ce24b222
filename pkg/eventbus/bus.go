package eventbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"roster.dev/pkg/inbox"
	"roster.dev/pkg/outbox"
	"roster.dev/pkg/store"
	commonv1 "roster.dev/proto/roster/common/v1"
)

// Config of one service's bus.
type Config struct {
	// Service is the service name: identity, seatbilling, rolepolicy, audit.
	Service string
	// DB is the service's own database (outbox and inbox live there).
	DB *store.DB
	// Connect opens a NATS connection; the bus opens one for publishing and
	// one per consumer, named for what it does.
	Connect func(name string) (*nats.Conn, error)
	Logger  *slog.Logger
	// MaxDeliver is how many deliveries an event gets before it goes to the
	// dead-letter subject (default: at least 5, and enough that the retries
	// span twice AckWait; see defaultMaxDeliver).
	MaxDeliver int
	// AckWait is how long JetStream waits for an ack before redelivering
	// (default 30 s); a handler still running then is cancelled.
	AckWait time.Duration
	// RetryBackoff is the first redelivery delay after a failure, doubled on
	// each further failure up to 30 s (default 200 ms).
	RetryBackoff time.Duration
	// Batch is the most events a consumer of this bus applies in one
	// transaction: those that have arrived when it takes the next, without
	// waiting for more (consume.go). Default 1: one transaction per event.
	Batch int
	// Eventual marks a service whose consumers writers do not wait for
	// (audit: its record is asynchronous by contract); the others' are
	// awaited by a write before it answers (settle.go).
	Eventual bool
	// Now is the clock that stamps occurred_at (default time.Now); the host
	// gives it the services' clock so events agree with the state they
	// describe when tests fix or move it.
	Now func() time.Time
}

// Handler applies one event within tx, the transaction that also records it
// in the inbox; events it emits with Bus.Emit(ctx, tx, …) commit with it.
type Handler[E Event] func(ctx context.Context, tx *sql.Tx, ev E) error

type handler struct {
	newMsg func() proto.Message
	fn     func(ctx context.Context, tx *sql.Tx, ev Event) error
}

// Bus is one service's connection to the event backbone.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	wlog   watermill.LoggerAdapter
	outbox *outbox.Outbox

	mu       sync.Mutex
	handlers map[protoreflect.FullName]handler
	all      map[string]func(ctx context.Context, tx *sql.Tx, ev Event) error // by source service
	// beforeBatch, when set, runs first in a batch's transaction
	// (BeforeBatch).
	beforeBatch func(ctx context.Context, tx *sql.Tx, accountIDs []string) error

	ready chan struct{}
	// settleConn publishes the Settled notices of applied events.
	settleConn *nats.Conn

	// afterCommit, when set by a test, runs after a handler's transaction
	// committed and before the ack.
	afterCommit func(eventID string)
}

// New returns the bus of a service. Nothing connects until Run.
func New(cfg Config) (*Bus, error) {
	if cfg.Service == "" || cfg.DB == nil || cfg.Connect == nil {
		return nil, errors.New("eventbus: Service, DB and Connect are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 200 * time.Millisecond
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = defaultMaxDeliver(cfg.AckWait, cfg.RetryBackoff)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger.With("service", cfg.Service)
	wlog := quietClosed{watermill.NewSlogLoggerWithLevelMapping(log.With("component", "watermill"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})}
	return &Bus{
		cfg:      cfg,
		log:      log,
		wlog:     wlog,
		outbox:   outbox.New(cfg.DB, log.With("component", "outbox")),
		handlers: map[protoreflect.FullName]handler{},
		all:      map[string]func(context.Context, *sql.Tx, Event) error{},
		ready:    make(chan struct{}),
	}, nil
}

// Service is the bus's service name.
func (b *Bus) Service() string { return b.cfg.Service }

// Outbox is the service's outbox.
func (b *Bus) Outbox() *outbox.Outbox { return b.outbox }

// On registers fn for events of type E. Register before Run.
func On[E Event](b *Bus, fn Handler[E]) {
	var zero E
	name := zero.ProtoReflect().Descriptor().FullName()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers[name] = handler{
		newMsg: func() proto.Message { return zero.ProtoReflect().New().Interface() },
		fn:     func(ctx context.Context, tx *sql.Tx, ev Event) error { return fn(ctx, tx, ev.(E)) },
	}
}

// OnAll registers fn for every event type published by source (the audit
// service records them all). Types with their own On handler still go to
// that handler.
func OnAll(b *Bus, source string, fn Handler[Event]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all[source] = func(ctx context.Context, tx *sql.Tx, ev Event) error { return fn(ctx, tx, ev) }
}

// Emit stamps events (Stamp), gives each event about a technician the
// technician's next version (versions.go) and writes them to the outbox
// within tx; they
// reach the stream after tx commits, and never if it rolls back.
func (b *Bus) Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...Event) error {
	for _, ev := range events {
		stamp(ctx, accountID, ev, b.cfg.Now)
		if err := version(ctx, tx, ev); err != nil {
			return err
		}
		msg, subject, err := encode(ctx, b.cfg.Service, ev)
		if err != nil {
			return err
		}
		if err := b.outbox.Add(tx, subject, msg); err != nil {
			return err
		}
		// The outbox wakes its relay once tx commits (Outbox.Add); a request
		// or handler that waits for its effects learns of the event then.
		if t := trackerFrom(ctx); t != nil {
			id, typ := ev.GetMeta().GetEventId(), string(ev.ProtoReflect().Descriptor().FullName())
			b.cfg.DB.AfterCommit(tx, func() { t.add(id, typ) })
		}
	}
	return nil
}

// Ready is closed once the outbox relay runs and every consumer exists.
func (b *Bus) Ready() <-chan struct{} { return b.ready }

// Init creates the outbox and inbox tables; Run calls it.
func (b *Bus) Init(ctx context.Context) error {
	if err := b.outbox.Init(ctx); err != nil {
		return err
	}
	if err := initVersions(ctx, b.cfg.DB); err != nil {
		return err
	}
	return inbox.Init(ctx, b.cfg.DB)
}

// Run relays the outbox to JetStream and consumes the registered events
// until ctx ends; then it stops taking new events, lets handlers in flight
// finish, and returns. The streams must exist (EnsureStreams).
func (b *Bus) Run(ctx context.Context) error {
	if err := b.Init(ctx); err != nil {
		return err
	}
	// One connection publishes: the outbox relay, dead letters and
	// Settled notices.
	pubConn, err := b.cfg.Connect(b.cfg.Service + "-publisher")
	if err != nil {
		return fmt.Errorf("eventbus: connect: %w", err)
	}
	defer pubConn.Close()
	b.settleConn = pubConn
	relay, err := b.outbox.Relay(pubConn, func(m *nats.Msg) {
		published.WithLabelValues(b.cfg.Service, m.Header.Get(HeaderType)).Inc()
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var consumers []*consumer
	defer func() {
		for _, c := range consumers {
			c.close()
		}
	}()
	for _, source := range b.sources() {
		c, err := b.addConsumer(ctx, source)
		if err != nil {
			return err
		}
		consumers = append(consumers, c)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := relay.Run(ctx); err != nil {
			errs <- fmt.Errorf("eventbus: outbox relay: %w", err)
			cancel()
		}
	}()
	n := len(consumers)
	go func() {
		select {
		case <-relay.Running():
			close(b.ready)
			b.log.Info("event bus ready", "consumers", n)
		case <-ctx.Done():
		}
	}()
	<-ctx.Done()
	// Stop taking events: each consumer finishes and acks the batch in hand
	// and hands back what it had received besides.
	for _, c := range consumers {
		c.close()
	}
	consumers = nil
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// sources are the services whose streams this bus consumes.
func (b *Bus) sources() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := map[string]bool{}
	for name := range b.handlers {
		set[ServiceOf(name)] = true
	}
	for s := range b.all {
		set[s] = true
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ConsumerName is the durable consumer (and queue group) of service on the
// stream of source; replicas of a service share it.
func ConsumerName(service, source string) string { return service + "_from_" + source }

// unavailablePatience is how long a consumer's creation is retried while
// JetStream answers that it is unavailable: a cluster that lost the node
// leading a stream elects another within seconds, and a replica starting
// meanwhile waits for it instead of exiting (found by the cluster fault
// test, services/roster/cluster_test.go).
var unavailablePatience = time.Minute

// whileUnavailable calls f until it succeeds, fails otherwise than with
// JetStream unavailable, or unavailablePatience has passed.
func (b *Bus) whileUnavailable(consumer string, f func() error) error {
	deadline := time.Now().Add(unavailablePatience)
	for {
		err := f()
		if err == nil || !jetStreamUnavailable(err) || time.Now().After(deadline) {
			return err
		}
		b.log.Warn("JetStream unavailable; retrying", "consumer", consumer, "err", err)
		time.Sleep(250 * time.Millisecond)
	}
}

// jetStreamUnavailable reports an error that passes once the cluster has
// its leaders again: a 503 from the JetStream API ("JetStream system
// temporarily unavailable"), or no answer in time.
func jetStreamUnavailable(err error) bool {
	var js nats.JetStreamError
	if errors.As(err, &js) && js.APIError() != nil && js.APIError().Code == 503 {
		return true
	}
	var jse jetstream.JetStreamError
	if errors.As(err, &jse) && jse.APIError() != nil && jse.APIError().Code == 503 {
		return true
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded)
}

// permanentError marks a failure that no retry can fix (an undecodable
// message): it goes to the dead-letter subject at once.
type permanentError struct{ error }

// decoded is an event read from a delivery, with the handler it goes to.
type decoded struct {
	typ  protoreflect.FullName
	ev   Event
	fn   func(context.Context, *sql.Tx, Event) error
	meta *commonv1.EventMeta
}

// decode reads a delivery of source's stream. ok is false for a type no
// handler wants (acked and counted as ignored); a permanentError for what
// no retry can read.
func (b *Bus) decode(source string, header nats.Header, payload []byte) (d decoded, ok bool, err error) {
	typ := protoreflect.FullName(header.Get(HeaderType))
	b.mu.Lock()
	h, typed := b.handlers[typ]
	all := b.all[source]
	b.mu.Unlock()
	var newMsg func() proto.Message
	var fn func(context.Context, *sql.Tx, Event) error
	switch {
	case typed:
		newMsg, fn = h.newMsg, h.fn
	case all != nil:
		mt, err := protoregistry.GlobalTypes.FindMessageByName(typ)
		if err != nil {
			return decoded{typ: typ}, false, permanentError{fmt.Errorf("unknown event type %q", typ)}
		}
		newMsg, fn = func() proto.Message { return mt.New().Interface() }, all
	default:
		return decoded{typ: typ}, false, nil
	}
	pm := newMsg()
	if err := proto.Unmarshal(payload, pm); err != nil {
		return decoded{typ: typ}, false, permanentError{fmt.Errorf("decode %s: %w", typ, err)}
	}
	ev, isEvent := pm.(Event)
	if !isEvent || ev.GetMeta().GetEventId() == "" {
		return decoded{typ: typ}, false, permanentError{fmt.Errorf("%s carries no event id", typ)}
	}
	return decoded{typ: typ, ev: ev, fn: fn, meta: ev.GetMeta()}, true, nil
}

// span starts the consumer span of d, continuing the trace the delivery
// carries, and the context its handler runs in.
func (b *Bus) span(ctx context.Context, consumer string, header nats.Header, d decoded) (context.Context, trace.Span) {
	ctx = propagator.Extract(ctx, headerCarrier(header))
	ctx, span := otel.Tracer("roster.dev/pkg/eventbus").Start(ctx, "process "+string(d.typ.Name()),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.consumer.group.name", consumer),
			attribute.String("messaging.message.id", d.meta.GetEventId()),
			attribute.String("roster.account_id", d.meta.GetAccountId()),
		))
	return withCause(ctx, d.meta), span
}

// headerCarrier reads and writes trace context in NATS headers, whose keys
// are case-sensitive (unlike propagation.HeaderCarrier's).
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// claimAndApply applies d in tx unless the inbox has it already; it
// reports whether it applied.
func claimAndApply(ctx context.Context, tx *sql.Tx, consumer string, d decoded) (bool, error) {
	first, err := inbox.Claim(ctx, tx, consumer, d.meta.GetEventId())
	if err != nil || !first {
		return false, err
	}
	return true, d.fn(ctx, tx, d.ev)
}

// quietClosed logs at debug level what watermill reports as an error when
// it unsubscribes from or drains a connection that the bus already drained
// and closed at shutdown (see Run): expected, not a failure.
type quietClosed struct{ watermill.LoggerAdapter }

func (q quietClosed) Error(msg string, err error, fields watermill.LogFields) {
	if errors.Is(err, nats.ErrConnectionClosed) {
		q.LoggerAdapter.Debug(msg+": "+err.Error(), fields)
		return
	}
	q.LoggerAdapter.Error(msg, err, fields)
}

func (q quietClosed) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietClosed{q.LoggerAdapter.With(fields)}
}

// backoff is the redelivery delay after the n-th failed delivery.
type backoff struct{ base, max time.Duration }

// defaultMaxDeliver is the smallest delivery count, at least 5, whose
// retry delays add up to twice ackWait. An event often depends on an
// earlier one (FirstLogin on TechnicianCreated); when the consumer is
// killed holding the earlier one unacked, JetStream redelivers it only
// after ackWait, while the later one is delivered at once to the
// restarted consumer and fails until the earlier one is applied. Its
// retries must outlast that wait, or it is dead-lettered and its effect
// lost (found by the crash-consistency harness, issue 11).
func defaultMaxDeliver(ackWait, base time.Duration) int {
	d := backoff{base: base, max: 30 * time.Second}
	n, waited := 1, time.Duration(0)
	for n < 5 || waited < 2*ackWait {
		waited += d.WaitTime(uint64(n))
		n++
	}
	return n
}

func (d backoff) WaitTime(n uint64) time.Duration {
	w := d.base
	for i := uint64(1); i < n && w < d.max; i++ {
		w *= 2
	}
	return min(w, d.max)
}

// commitHooks are the functions a handler asked to run once its
// transaction committed (OnCommit).
type commitHooks struct{ fns []func() }

type commitHooksKey struct{}

// attach returns ctx carrying h, for the handlers of one transaction.
func (h *commitHooks) attach(ctx context.Context) context.Context {
	return context.WithValue(ctx, commitHooksKey{}, h)
}

// reset forgets what an attempt of the transaction registered: a retried
// attempt registers again.
func (h *commitHooks) reset() { h.fns = h.fns[:0] }

// run runs the registered functions once the transaction committed.
func (h *commitHooks) run() {
	for _, f := range h.fns {
		f()
	}
}

// OnCommit registers fn to run after the transaction of the event handler
// running in ctx committed, before the event is acknowledged; it does not
// run when the transaction fails. It reports false, and registers nothing,
// when ctx is not a handler's (the caller runs its own transaction). A
// handler uses it to tell others about what it committed — rolepolicy's
// replicas, about a changed access index — never for effects that must not
// be lost: those go through the outbox.
func OnCommit(ctx context.Context, fn func()) bool {
	h, ok := ctx.Value(commitHooksKey{}).(*commitHooks)
	if !ok {
		return false
	}
	h.fns = append(h.fns, fn)
	return true
}
