package eventbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
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
	// Batch, when above 1, makes every consumer of this bus fetch up to
	// Batch events at a time and apply them in one transaction (batch.go):
	// one commit instead of Batch. Default 1: one transaction per event.
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

	// js publishes dead letters.
	js    jetstream.JetStream
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

// Emit stamps events (Stamp) and writes them to the outbox within tx; they
// reach the stream after tx commits, and never if it rolls back.
func (b *Bus) Emit(ctx context.Context, tx *sql.Tx, accountID string, events ...Event) error {
	for _, ev := range events {
		stamp(ctx, accountID, ev, b.cfg.Now)
		msg, subject, err := encode(ctx, b.cfg.Service, ev)
		if err != nil {
			return err
		}
		if err := b.outbox.Add(tx, subject, msg); err != nil {
			return err
		}
		id, typ := ev.GetMeta().GetEventId(), string(ev.ProtoReflect().Descriptor().FullName())
		b.cfg.DB.AfterCommit(tx, func() { b.committed(ctx, id, typ) })
	}
	return nil
}

// committed runs once the transaction that emitted event id of type typ
// committed: the outbox relay sends it at once, and the request or the
// handler that emitted it learns it is out (settle.go).
func (b *Bus) committed(ctx context.Context, id, typ string) {
	b.outbox.Kick()
	if t := trackerFrom(ctx); t != nil {
		t.add(id, typ)
	}
}

// Ready is closed once the outbox relay runs and every consumer exists.
func (b *Bus) Ready() <-chan struct{} { return b.ready }

// Init creates the outbox and inbox tables; Run calls it.
func (b *Bus) Init(ctx context.Context) error {
	if err := b.outbox.Init(ctx); err != nil {
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
	if b.js, err = jetstream.New(pubConn); err != nil {
		return fmt.Errorf("eventbus: publisher: %w", err)
	}
	b.settleConn = pubConn
	relay, err := b.outbox.Relay(pubConn, func(m *nats.Msg) {
		published.WithLabelValues(b.cfg.Service, m.Header.Get(HeaderType)).Inc()
	})
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: b.cfg.AckWait}, b.wlog)
	if err != nil {
		return err
	}
	router.AddMiddleware(middleware.Recoverer)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var consumerConns []*nats.Conn
	var batchers []*batchConsumer
	defer func() {
		for _, c := range batchers {
			c.close()
		}
	}()
	for _, source := range b.sources() {
		if b.cfg.Batch > 1 {
			c, err := b.addBatchConsumer(ctx, source)
			if err != nil {
				return err
			}
			batchers = append(batchers, c)
			continue
		}
		conn, err := b.addConsumer(router, source)
		if err != nil {
			return err
		}
		consumerConns = append(consumerConns, conn)
	}

	// The router gets a context of its own, cancelled only after the
	// consumers' connections are drained: watermill-nats closes a
	// subscriber's output channel as soon as its context ends, while a NATS
	// callback may still be sending on it (a data race, or a "send on closed
	// channel" panic).
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := relay.Run(ctx); err != nil {
			errs <- fmt.Errorf("eventbus: outbox relay: %w", err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if err := router.Run(routerCtx); err != nil {
			errs <- fmt.Errorf("eventbus: router: %w", err)
			cancel()
		}
	}()
	go func() {
		select {
		case <-relay.Running():
		case <-ctx.Done():
			return
		}
		select {
		case <-router.Running():
			close(b.ready)
			b.log.Info("event bus ready", "consumers", len(b.sources()))
		case <-ctx.Done():
		}
	}()
	<-ctx.Done()
	// Stop taking events: batch consumers finish the batch in hand;
	// draining unsubscribes and waits for the callbacks in flight, whose
	// events the still-running router applies and acks.
	for _, c := range batchers {
		c.close()
	}
	batchers = nil
	b.drain(consumerConns)
	stopRouter()
	_ = router.Close()
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// drain drains the consumers' connections and waits (at most AckWait) until
// they are closed.
func (b *Bus) drain(conns []*nats.Conn) {
	for _, nc := range conns {
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Warn("drain consumer connection", "err", err)
		}
	}
	deadline := time.Now().Add(b.cfg.AckWait)
	for _, nc := range conns {
		for !nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
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

func (b *Bus) addConsumer(router *message.Router, source string) (*nats.Conn, error) {
	name := ConsumerName(b.cfg.Service, source)
	conn, err := b.cfg.Connect(name)
	if err != nil {
		return nil, fmt.Errorf("eventbus: connect %s: %w", name, err)
	}
	if err := b.whileUnavailable(name, func() error { return ensureConsumer(conn, source, name, b.cfg.AckWait, b.consumerMetadata(source)) }); err != nil {
		conn.Close()
		return nil, err
	}
	sub, err := wnats.NewSubscriberWithNatsConn(conn, wnats.SubscriberSubscriptionConfig{
		Unmarshaler:      deliveryUnmarshaler{},
		SubscribersCount: 1,
		AckWaitTimeout:   b.cfg.AckWait,
		CloseTimeout:     b.cfg.AckWait,
		SubscribeTimeout: 30 * time.Second,
		NakDelay:         backoff{base: b.cfg.RetryBackoff, max: 30 * time.Second},
		QueueGroupPrefix: name,
		JetStream: wnats.JetStreamConfig{
			// nats.go acks when the callback returns unless ManualAck is set,
			// and watermill's callback returns without acking on its ack
			// timeout, on close and on cancel: those events would be
			// acknowledged unprocessed. With ManualAck only an explicit ack
			// after the commit counts.
			SubscribeOptions: []nats.SubOpt{
				nats.ManualAck(),
				nats.AckExplicit(),
				nats.AckWait(b.cfg.AckWait),
				nats.DeliverAll(),
				nats.MaxAckPending(1024),
				nats.BindStream(EventStream(source)),
			},
			DurablePrefix:     name,
			DurableCalculator: func(prefix, _ string) string { return prefix },
		},
	}, b.wlog)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("eventbus: subscriber %s: %w", name, err)
	}
	h := router.AddConsumerHandler(name, EventSubjects(source), sub, b.apply(name, source))
	h.AddMiddleware(b.deadLetter(name))
	trackLag(EventStream(source), name, conn)
	return conn, nil
}

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
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded)
}

// DeliverPrefix starts the deliver subject of a durable consumer:
// roster.deliver.<consumer>, where its replicas' queue subscriptions take
// its events.
const DeliverPrefix = "roster.deliver."

// ensureConsumer creates the durable consumer of service on the stream of
// source before the subscription binds to it, with the settings the
// subscription asks for. A consumer that nats.go creates for a
// subscription is deleted when that subscription ends (Unsubscribe or
// Drain at shutdown): with replicas it would be pulled from under the
// others sharing it, and the next start would redeliver the whole stream.
// One it finds is left alone. Replicas starting at once create the same
// configuration, which JetStream accepts as one.
func ensureConsumer(conn *nats.Conn, source, name string, ackWait time.Duration, meta map[string]string) error {
	js, err := conn.JetStream()
	if err != nil {
		return fmt.Errorf("eventbus: consumer %s: %w", name, err)
	}
	stream := EventStream(source)
	if info, err := js.ConsumerInfo(stream, name); err == nil {
		return updateMetadata(js, stream, info, meta)
	} else if !errors.Is(err, nats.ErrConsumerNotFound) {
		return fmt.Errorf("eventbus: consumer %s: %w", name, err)
	}
	_, err = js.AddConsumer(stream, &nats.ConsumerConfig{
		Durable:        name,
		DeliverSubject: DeliverPrefix + name,
		DeliverGroup:   name,
		FilterSubject:  EventSubjects(source),
		DeliverPolicy:  nats.DeliverAllPolicy,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxAckPending:  1024,
		Metadata:       meta,
	})
	if err != nil {
		return fmt.Errorf("eventbus: create consumer %s: %w", name, err)
	}
	return nil
}

// updateMetadata brings an existing consumer's registry entry (settle.go)
// up to date: a new version of the service may handle other types.
func updateMetadata(js nats.JetStreamManager, stream string, info *nats.ConsumerInfo, meta map[string]string) error {
	same := true
	for k, v := range meta {
		if info.Config.Metadata[k] != v {
			same = false
		}
	}
	if same {
		return nil
	}
	cfg := info.Config
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	maps.Copy(cfg.Metadata, meta)
	if _, err := js.UpdateConsumer(stream, &cfg); err != nil {
		return fmt.Errorf("eventbus: update consumer %s: %w", info.Name, err)
	}
	return nil
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
func (b *Bus) decode(source string, msg *message.Message) (d decoded, ok bool, err error) {
	if reason := msg.Metadata.Get(mdDecodeFailed); reason != "" {
		return decoded{}, false, permanentError{errors.New(reason)}
	}
	typ := protoreflect.FullName(msg.Metadata.Get(HeaderType))
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
	if err := proto.Unmarshal(msg.Payload, pm); err != nil {
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
func (b *Bus) span(consumer string, msg *message.Message, d decoded) (context.Context, trace.Span) {
	ctx := propagator.Extract(msg.Context(), propagation.MapCarrier(msg.Metadata))
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

// claimAndApply applies d in tx unless the inbox has it already; it
// reports whether it applied.
func claimAndApply(ctx context.Context, tx *sql.Tx, consumer string, d decoded) (bool, error) {
	first, err := inbox.Claim(ctx, tx, consumer, d.meta.GetEventId())
	if err != nil || !first {
		return false, err
	}
	return true, d.fn(ctx, tx, d.ev)
}

func (b *Bus) apply(consumer, source string) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		d, ok, err := b.decode(source, msg)
		if err != nil {
			return err
		}
		if !ok {
			consumed.WithLabelValues(b.cfg.Service, consumer, string(d.typ), "ignored").Inc()
			return nil
		}
		ctx, span := b.span(consumer, msg, d)
		defer span.End()

		applied := false
		hooks := &commitHooks{}
		ctx = hooks.attach(ctx)
		t := &tracker{}
		ctx = withTracker(ctx, t)
		err = b.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
			hooks.reset()
			var err error
			applied, err = claimAndApply(ctx, tx, consumer, d)
			return err
		})
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			return err
		}
		hooks.run()
		b.settled(consumer, d.meta, t)
		if b.afterCommit != nil {
			b.afterCommit(d.meta.GetEventId())
		}
		outcome := "applied"
		if !applied {
			outcome = "duplicate"
		}
		consumed.WithLabelValues(b.cfg.Service, consumer, string(d.typ), outcome).Inc()
		return nil
	}
}

// deadLetter lets a failed event be redelivered (with backoff) until its
// MaxDeliver-th delivery, then publishes it to roster.deadletter.<consumer>
// and acks it, so one poison event never blocks the events behind it.
func (b *Bus) deadLetter(consumer string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			typ := msg.Metadata.Get(HeaderType)
			delivery, _ := strconv.Atoi(msg.Metadata.Get(mdDelivery))
			var perm permanentError
			if !errors.As(err, &perm) && delivery < b.cfg.MaxDeliver {
				failed.WithLabelValues(b.cfg.Service, consumer, typ).Inc()
				b.log.Warn("event failed; will be redelivered", "consumer", consumer, "event_id", msg.UUID,
					"type", typ, "delivery", delivery, "err", err)
				return nil, err
			}
			if perr := b.publishDeadLetter(consumer, msg, err, delivery); perr != nil {
				b.log.Error("dead-lettering failed; event stays on its stream", "consumer", consumer, "event_id", msg.UUID, "err", perr)
				return nil, errors.Join(err, perr)
			}
			deadLettered.WithLabelValues(b.cfg.Service, consumer, typ).Inc()
			b.log.Error("event dead-lettered", "consumer", consumer, "event_id", msg.UUID, "type", typ,
				"delivery", delivery, "err", err)
			return nil, nil
		}
	}
}

// Dead-letter headers, besides the original CloudEvents headers.
const (
	HeaderDLConsumer = "roster-dl-consumer"
	HeaderDLSubject  = "roster-dl-subject"
	HeaderDLError    = "roster-dl-error"
	HeaderDLDelivery = "roster-dl-deliveries"
	HeaderDLTime     = "roster-dl-time"
)

func (b *Bus) publishDeadLetter(consumer string, msg *message.Message, cause error, delivery int) error {
	dl := message.NewMessage(msg.UUID+"."+consumer, msg.Payload)
	for k, v := range msg.Metadata {
		if len(k) > 9 && k[:9] == "x-roster-" {
			continue
		}
		dl.Metadata.Set(k, v)
	}
	dl.Metadata.Set(HeaderDLConsumer, consumer)
	dl.Metadata.Set(HeaderDLSubject, msg.Metadata.Get(mdSubject))
	dl.Metadata.Set(HeaderDLError, cause.Error())
	dl.Metadata.Set(HeaderDLDelivery, strconv.Itoa(delivery))
	dl.Metadata.Set(HeaderDLTime, time.Now().UTC().Format(time.RFC3339Nano))
	_, err := b.js.PublishMsg(context.Background(), outbox.NATSMsg(DeadLetterPrefix+consumer, dl))
	return err
}

// deliveryUnmarshaler is watermill-nats's header marshaler plus what the
// consumer needs from JetStream: the delivery count (for dead-lettering)
// and the subject. It never fails: a message that cannot be read is
// flagged and dead-lettered by the handler, instead of being left unacked
// and redelivered forever.
type deliveryUnmarshaler struct{}

func (deliveryUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	msg, err := (&wnats.NATSMarshaler{}).Unmarshal(m)
	if err != nil {
		msg = message.NewMessage(m.Header.Get(HeaderID), m.Data)
		msg.Metadata.Set(mdDecodeFailed, err.Error())
	}
	if msg.UUID == "" {
		msg.UUID = m.Header.Get(HeaderID)
	}
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(mdDelivery, strconv.FormatUint(md.NumDelivered, 10))
		msg.Metadata.Set(mdStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	msg.Metadata.Set(mdSubject, m.Subject)
	return msg, nil
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
