package eventbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// A batch consumer (Config.Batch > 1) fetches up to Batch events at a time
// from its durable pull consumer and applies them all in one transaction —
// one inbox row each, one commit, then one ack each. The events' effects
// are the same as one transaction per event; the commits, each an fsync on
// SQLite, are divided by the batch size (docs/performance.md). When the
// batch's transaction fails, its events are applied one by one as the
// one-event path does (retries with backoff, dead letters), so one bad
// event never holds back or fails the others. Events are applied in stream
// order.
type batchConsumer struct {
	b      *Bus
	name   string
	source string
	conn   *nats.Conn
	sub    *nats.Subscription
	one    message.HandlerFunc
	stop   context.CancelFunc
	done   sync.WaitGroup
}

// addBatchConsumer creates (or takes over) source's durable consumer as a
// pull consumer and starts fetching.
func (b *Bus) addBatchConsumer(ctx context.Context, source string) (*batchConsumer, error) {
	name := ConsumerName(b.cfg.Service, source)
	conn, err := b.cfg.Connect(name)
	if err != nil {
		return nil, fmt.Errorf("eventbus: connect %s: %w", name, err)
	}
	var sub *nats.Subscription
	err = b.whileUnavailable(name, func() (err error) {
		sub, err = b.pullConsumer(conn, name, source)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	apply := b.apply(name, source)
	c := &batchConsumer{b: b, name: name, source: source, conn: conn, sub: sub,
		one: b.deadLetter(name)(func(m *message.Message) ([]*message.Message, error) { return nil, apply(m) })}
	trackLag(EventStream(source), name, conn)
	ctx, c.stop = context.WithCancel(ctx)
	c.done.Add(1)
	go c.run(ctx)
	return c, nil
}

// pullConsumer binds to the durable pull consumer name on source's stream,
// creating it — or replacing a push consumer of that name left by the
// one-event path with a pull consumer that starts after its ack floor: the
// events it had delivered but not acked come again, and the inbox drops
// those already applied.
func (b *Bus) pullConsumer(conn *nats.Conn, name, source string) (*nats.Subscription, error) {
	js, err := conn.JetStream()
	if err != nil {
		return nil, fmt.Errorf("eventbus: %s: %w", name, err)
	}
	stream := EventStream(source)
	cfg := &nats.ConsumerConfig{
		Metadata:      b.consumerMetadata(source),
		Durable:       name,
		AckPolicy:     nats.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: 4 * b.cfg.Batch,
		DeliverPolicy: nats.DeliverAllPolicy,
		FilterSubject: EventSubjects(source),
	}
	info, err := js.ConsumerInfo(stream, name)
	switch {
	case errors.Is(err, nats.ErrConsumerNotFound):
		if _, err := js.AddConsumer(stream, cfg); err != nil && !errors.Is(err, nats.ErrConsumerNameAlreadyInUse) {
			return nil, fmt.Errorf("eventbus: create consumer %s: %w", name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("eventbus: consumer %s: %w", name, err)
	case info.Config.DeliverSubject == "":
		if err := updateMetadata(js, stream, info, cfg.Metadata); err != nil {
			return nil, err
		}
	case info.Config.DeliverSubject != "":
		if err := js.DeleteConsumer(stream, name); err != nil && !errors.Is(err, nats.ErrConsumerNotFound) {
			return nil, fmt.Errorf("eventbus: replace push consumer %s: %w", name, err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = nats.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
		if _, err := js.AddConsumer(stream, cfg); err != nil {
			return nil, fmt.Errorf("eventbus: replace push consumer %s: %w", name, err)
		}
		b.log.Info("push consumer replaced by a batch consumer", "consumer", name, "from_stream_seq", cfg.OptStartSeq)
	}
	sub, err := js.PullSubscribe(EventSubjects(source), name, nats.Bind(stream, name), nats.ManualAck())
	if err != nil {
		return nil, fmt.Errorf("eventbus: subscribe %s: %w", name, err)
	}
	return sub, nil
}

func (c *batchConsumer) run(ctx context.Context) {
	defer c.done.Done()
	// Batches in hand are finished after ctx ends: the transactions and
	// acks must not be cut off half-way.
	work := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		fetchCtx, cancel := context.WithTimeout(ctx, time.Second)
		msgs, err := c.sub.Fetch(c.b.cfg.Batch, nats.Context(fetchCtx))
		cancel()
		if len(msgs) > 0 {
			c.handle(work, msgs)
		}
		switch {
		case err == nil, ctx.Err() != nil,
			errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		default:
			c.b.log.Warn("fetch events", "consumer", c.name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// close stops fetching, lets the batch in hand finish and closes the
// connection.
func (c *batchConsumer) close() {
	c.stop()
	c.done.Wait()
	c.conn.Close()
}

type batchItem struct {
	nm  *nats.Msg
	wm  *message.Message
	d   decoded
	ctx context.Context
	sp  trace.Span
	t   *tracker
}

func (c *batchConsumer) handle(ctx context.Context, msgs []*nats.Msg) {
	var items []batchItem
	for _, nm := range msgs {
		wm, _ := deliveryUnmarshaler{}.Unmarshal(nm) // never fails
		wm.SetContext(ctx)
		d, ok, err := c.b.decode(c.source, wm)
		switch {
		case err != nil:
			// Unreadable: the one-event path dead-letters it. Events before
			// it are applied first, in order.
			c.applyAll(ctx, items)
			items = nil
			c.applyOne(nm, wm)
		case !ok:
			consumed.WithLabelValues(c.b.cfg.Service, c.name, string(d.typ), "ignored").Inc()
			c.ack(nm)
		default:
			items = append(items, batchItem{nm: nm, wm: wm, d: d})
		}
	}
	c.applyAll(ctx, items)
}

// applyAll applies items in one transaction, or one by one when it fails.
func (c *batchConsumer) applyAll(ctx context.Context, items []batchItem) {
	if len(items) == 0 {
		return
	}
	if len(items) == 1 {
		c.applyOne(items[0].nm, items[0].wm)
		return
	}
	hooks := &commitHooks{}
	for i := range items {
		items[i].ctx, items[i].sp = c.b.span(c.name, items[i].wm, items[i].d)
		items[i].ctx = hooks.attach(items[i].ctx)
		items[i].t = &tracker{}
		items[i].ctx = withTracker(items[i].ctx, items[i].t)
	}
	applied := make([]bool, len(items))
	err := c.b.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		hooks.reset()
		for i, it := range items {
			a, err := claimAndApply(it.ctx, tx, c.name, it.d)
			if err != nil {
				return fmt.Errorf("%s %s: %w", it.d.typ, it.d.meta.GetEventId(), err)
			}
			applied[i] = a
		}
		return nil
	})
	for _, it := range items {
		if err != nil {
			it.sp.SetStatus(codes.Error, "batch failed; applied one by one")
		}
		it.sp.End()
	}
	if err != nil {
		batchFallbacks.WithLabelValues(c.b.cfg.Service, c.name).Inc()
		c.b.log.Warn("event batch failed; applying its events one by one", "consumer", c.name, "events", len(items), "err", err)
		for _, it := range items {
			c.applyOne(it.nm, it.wm)
		}
		return
	}
	hooks.run()
	for i, it := range items {
		c.b.settled(c.name, it.d.meta, it.t)
		if c.b.afterCommit != nil {
			c.b.afterCommit(it.d.meta.GetEventId())
		}
		outcome := "applied"
		if !applied[i] {
			outcome = "duplicate"
		}
		consumed.WithLabelValues(c.b.cfg.Service, c.name, string(it.d.typ), outcome).Inc()
		c.ack(it.nm)
	}
}

// applyOne applies one event as the one-event path does: acked when
// applied (or dead-lettered), redelivered after a backoff when it failed.
func (c *batchConsumer) applyOne(nm *nats.Msg, wm *message.Message) {
	if _, err := c.one(wm); err != nil {
		var n uint64 = 1
		if md, mdErr := nm.Metadata(); mdErr == nil {
			n = md.NumDelivered
		}
		if nerr := nm.NakWithDelay(backoff{base: c.b.cfg.RetryBackoff, max: 30 * time.Second}.WaitTime(n)); nerr != nil {
			c.b.log.Warn("nak event", "consumer", c.name, "err", nerr)
		}
		return
	}
	c.ack(nm)
}

func (c *batchConsumer) ack(nm *nats.Msg) {
	// An ack lost here means one more delivery, which the inbox drops.
	if err := nm.Ack(); err != nil {
		c.b.log.Warn("ack event", "consumer", c.name, "err", err)
	}
}
