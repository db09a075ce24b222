package eventbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// A consumer applies the events of one source's stream, for every replica
// of a service through one durable pull consumer (ConsumerName), with
// nats.go's jetstream API. Consume keeps up to Batch events requested ahead;
// the consumer takes the first that arrives and, without waiting, whatever
// else has arrived behind it, up to Batch, and applies them in one
// transaction — one inbox row each, one commit, then one ack each. An event
// arriving alone is applied at once; a burst is applied in few commits,
// each an fsync on SQLite (docs/performance.md). When the batch's
// transaction fails, its events are applied one by one (retries with
// backoff, dead letters), so one bad event never holds back or fails the
// others — except the later events of its own aggregate (order.go).
// Events are applied in stream order.
type consumer struct {
	b      *Bus
	name   string
	source string
	batch  int
	conn   *nats.Conn
	js     jetstream.JetStream
	order  *order

	mu   sync.Mutex
	cc   jetstream.ConsumeContext // replaced by recover
	lost chan struct{}            // the durable consumer was deleted

	// in holds the events Consume received, in stream order; stopping,
	// once closed, makes the receiver hand events back instead.
	in       chan jetstream.Msg
	stopping chan struct{}
	stop     context.CancelFunc
	done     sync.WaitGroup
}

// addConsumer creates (or takes over) source's durable consumer and starts
// applying its events.
func (b *Bus) addConsumer(ctx context.Context, source string) (*consumer, error) {
	name := ConsumerName(b.cfg.Service, source)
	conn, err := b.cfg.Connect(name)
	if err != nil {
		return nil, fmt.Errorf("eventbus: connect %s: %w", name, err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("eventbus: %s: %w", name, err)
	}
	c := &consumer{b: b, name: name, source: source, batch: max(b.cfg.Batch, 1), conn: conn, js: js,
		order: newOrder(), stopping: make(chan struct{})}
	c.in = make(chan jetstream.Msg, c.batch)
	c.lost = make(chan struct{}, 1)
	if err := b.whileUnavailable(name, func() error { return c.consume(ctx) }); err != nil {
		conn.Close()
		return nil, err
	}
	trackLag(EventStream(source), name, conn)
	ctx, c.stop = context.WithCancel(ctx)
	c.done.Add(2)
	go c.run(ctx)
	go c.recover(ctx)
	return c, nil
}

// consume starts taking the events of c's durable consumer (creating it
// when needed).
func (c *consumer) consume(ctx context.Context) error {
	pc, err := c.pullConsumer(ctx)
	if err != nil {
		return err
	}
	cc, err := pc.Consume(c.receive,
		jetstream.PullMaxMessages(c.batch),
		// Pull requests live 5 s (heartbeats every 2.5 s), not nats.go's
		// 30 s: a pull lost on a busy server or a leader change is noticed
		// after two missed heartbeats, so a consumer stalls for seconds,
		// not half a minute (a test waiting 20 s for rolepolicy's
		// consumer timed out once in CI under load).
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
				select {
				case c.lost <- struct{}{}:
				default:
				}
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				return
			}
			c.b.log.Warn("consume events", "consumer", c.name, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("eventbus: consume %s: %w", c.name, err)
	}
	c.mu.Lock()
	c.cc = cc
	c.mu.Unlock()
	return nil
}

// recover takes up the durable consumer again when it was deleted from
// under this replica — by an operator, or by another replica replacing the
// push consumer of an older version in the same instant — instead of
// leaving the replica idle.
func (c *consumer) recover(ctx context.Context) {
	defer c.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.lost:
		}
		c.mu.Lock()
		c.cc.Stop()
		c.mu.Unlock()
		for ctx.Err() == nil {
			err := c.b.whileUnavailable(c.name, func() error { return c.consume(ctx) })
			if err == nil {
				c.b.log.Warn("durable consumer was deleted; consuming from it again", "consumer", c.name)
				break
			}
			c.b.log.Error("take up the durable consumer again", "consumer", c.name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// pullConsumer returns the durable pull consumer of c on source's stream,
// creating it, bringing its registry metadata (settle.go) up to date, or
// replacing a push consumer of that name — left by the versions that
// consumed through watermill-nats — with a pull consumer that starts after
// its ack floor: the events it had delivered but not acked come again, and
// the inbox drops those already applied. Replicas starting at once create
// the same configuration, which JetStream accepts as one.
func (c *consumer) pullConsumer(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream := EventStream(c.source)
	cfg := jetstream.ConsumerConfig{
		Durable:       c.name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.b.cfg.AckWait,
		MaxAckPending: max(1024, 4*c.batch),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: EventSubjects(c.source),
		Metadata:      c.b.consumerMetadata(c.source),
	}
	pc, err := c.js.Consumer(ctx, stream, c.name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		pc, err = c.js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) { // another replica was first
			pc, err = c.js.Consumer(ctx, stream, c.name)
		}
		if err != nil {
			return nil, fmt.Errorf("eventbus: create consumer %s: %w", c.name, err)
		}
		return pc, nil
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		push, err := c.js.PushConsumer(ctx, stream, c.name)
		if err != nil {
			return nil, fmt.Errorf("eventbus: consumer %s: %w", c.name, err)
		}
		if err := c.js.DeleteConsumer(ctx, stream, c.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("eventbus: replace push consumer %s: %w", c.name, err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, push.CachedInfo().AckFloor.Stream+1
		if pc, err = c.js.CreateConsumer(ctx, stream, cfg); err != nil {
			return nil, fmt.Errorf("eventbus: replace push consumer %s: %w", c.name, err)
		}
		c.b.log.Info("push consumer replaced by a pull consumer", "consumer", c.name, "from_stream_seq", cfg.OptStartSeq)
		return pc, nil
	case err != nil:
		return nil, fmt.Errorf("eventbus: consumer %s: %w", c.name, err)
	}
	info := pc.CachedInfo()
	// A new version of the service may handle other types.
	same := true
	for k, v := range cfg.Metadata {
		if info.Config.Metadata[k] != v {
			same = false
		}
	}
	if same {
		return pc, nil
	}
	up := info.Config
	up.Metadata = maps.Clone(up.Metadata)
	if up.Metadata == nil {
		up.Metadata = map[string]string{}
	}
	maps.Copy(up.Metadata, cfg.Metadata)
	if pc, err = c.js.UpdateConsumer(ctx, stream, up); err != nil {
		return nil, fmt.Errorf("eventbus: update consumer %s: %w", c.name, err)
	}
	return pc, nil
}

// receive takes an event from Consume, in stream order. Once the consumer
// stops it hands the event back at once (Nak), for another replica or the
// next start, instead of leaving it to AckWait.
func (c *consumer) receive(m jetstream.Msg) {
	select {
	case <-c.stopping:
		c.release(m)
		return
	default:
	}
	select {
	case c.in <- m:
	case <-c.stopping:
		c.release(m)
	}
}

func (c *consumer) release(m jetstream.Msg) {
	if err := m.Nak(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		c.b.log.Debug("hand back event", "consumer", c.name, "err", err)
	}
}

// run applies what arrives until ctx ends: the first event it waits for,
// the others that arrived meanwhile, up to Batch, it takes as they are.
func (c *consumer) run(ctx context.Context) {
	defer c.done.Done()
	// The batch in hand is finished after ctx ends: its transaction and
	// acks must not be cut off half-way.
	work := context.WithoutCancel(ctx)
	for {
		var first jetstream.Msg
		select {
		case first = <-c.in:
		case <-ctx.Done():
			return
		}
		msgs := []jetstream.Msg{first}
	more:
		for len(msgs) < c.batch {
			select {
			case m := <-c.in:
				msgs = append(msgs, m)
			default:
				break more
			}
		}
		c.handle(work, msgs)
	}
}

// close stops taking events, lets the batch in hand finish (applied and
// acked), hands back the events received and not begun, and closes the
// connection.
func (c *consumer) close() {
	c.stop()
	c.done.Wait()
	close(c.stopping)
	c.releaseQueued()
	c.mu.Lock()
	cc := c.cc
	c.mu.Unlock()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(c.b.cfg.AckWait):
	}
	c.releaseQueued()
	c.conn.Close() // flushes the acks and naks
}

func (c *consumer) releaseQueued() {
	for {
		select {
		case m := <-c.in:
			c.release(m)
		default:
			return
		}
	}
}

// delivery is one received event on its way through the consumer.
type delivery struct {
	msg jetstream.Msg
	seq uint64 // stream sequence
	n   uint64 // delivery count, from 1
	d   decoded
	key string // the aggregate whose order it keeps (order.go)

	ctx context.Context
	sp  trace.Span
	t   *tracker
}

func (c *consumer) handle(ctx context.Context, msgs []jetstream.Msg) {
	var ready []*delivery
	for _, m := range msgs {
		dv := &delivery{msg: m, n: 1}
		if md, err := m.Metadata(); err == nil {
			dv.seq, dv.n = md.Sequence.Stream, md.NumDelivered
		}
		d, ok, err := c.b.decode(c.source, m.Headers(), m.Data())
		dv.d = d
		switch {
		case err != nil:
			// Unreadable: dead-lettered at once. Events before it are
			// applied first, in order.
			c.applyAll(ctx, ready)
			ready = nil
			c.fail(dv, err)
		case !ok:
			consumed.WithLabelValues(c.b.cfg.Service, c.name, string(d.typ), "ignored").Inc()
			c.ack(dv)
		default:
			dv.key = orderKey(d)
			if c.held(dv) {
				continue
			}
			ready = append(ready, dv)
		}
	}
	c.applyAll(ctx, ready)
}

// applyAll applies dvs in one transaction, or one by one when it fails.
func (c *consumer) applyAll(ctx context.Context, dvs []*delivery) {
	if len(dvs) == 0 {
		return
	}
	if len(dvs) == 1 {
		c.applyOne(ctx, dvs[0])
		return
	}
	if err := c.apply(ctx, dvs); err != nil {
		batchFallbacks.WithLabelValues(c.b.cfg.Service, c.name).Inc()
		c.b.log.Warn("event batch failed; applying its events one by one", "consumer", c.name, "events", len(dvs), "err", err)
		for _, dv := range dvs {
			if !c.held(dv) {
				c.applyOne(ctx, dv)
			}
		}
	}
}

// applyOne applies one event in a transaction of its own: acked when
// applied or dead-lettered, redelivered after a backoff when it failed.
func (c *consumer) applyOne(ctx context.Context, dv *delivery) {
	if err := c.apply(ctx, []*delivery{dv}); err != nil {
		c.fail(dv, err)
	}
}

// apply applies dvs in stream order in one transaction, each unless the
// inbox has it already; after the commit it runs the handlers' commit
// hooks, publishes each event's Settled notice (settle.go) and acks it.
// On failure nothing is acked and the error is returned.
func (c *consumer) apply(ctx context.Context, dvs []*delivery) error {
	// Past AckWait JetStream gives the events to another replica: a
	// transaction still running then is cancelled (Config.AckWait).
	ctx, cancel := context.WithTimeout(ctx, c.b.cfg.AckWait)
	defer cancel()
	hooks := &commitHooks{}
	for _, dv := range dvs {
		dv.ctx, dv.sp = c.b.span(ctx, c.name, dv.msg.Headers(), dv.d)
		dv.ctx = hooks.attach(dv.ctx)
		dv.t = &tracker{}
		dv.ctx = withTracker(dv.ctx, dv.t)
	}
	applied := make([]bool, len(dvs))
	lock := c.b.beforeBatch
	err := c.b.cfg.DB.InTx(ctx, func(tx *sql.Tx) (err error) {
		defer func() {
			// A handler that panics fails its event (retried, then
			// dead-lettered) instead of the process.
			if p := recover(); p != nil {
				err = fmt.Errorf("handler panicked: %v", p)
			}
		}()
		hooks.reset()
		if lock != nil && len(dvs) > 1 {
			if err := lock(ctx, tx, accountsOf(dvs)); err != nil {
				return fmt.Errorf("lock the batch's accounts: %w", err)
			}
		}
		for i, dv := range dvs {
			a, err := claimAndApply(dv.ctx, tx, c.name, dv.d)
			if err != nil {
				if len(dvs) > 1 {
					return fmt.Errorf("%s %s: %w", dv.d.typ, dv.d.meta.GetEventId(), err)
				}
				return err
			}
			applied[i] = a
		}
		return nil
	})
	for _, dv := range dvs {
		if err != nil {
			dv.sp.RecordError(err)
			dv.sp.SetStatus(codes.Error, err.Error())
		}
		dv.sp.End()
	}
	if err != nil {
		return err
	}
	hooks.run()
	for i, dv := range dvs {
		c.b.settled(c.name, dv.d.meta, dv.t)
		if c.b.afterCommit != nil {
			c.b.afterCommit(dv.d.meta.GetEventId())
		}
		outcome := "applied"
		if !applied[i] {
			outcome = "duplicate"
		}
		consumed.WithLabelValues(c.b.cfg.Service, c.name, string(dv.d.typ), outcome).Inc()
		c.order.done(dv)
		c.ack(dv)
	}
	return nil
}

// BeforeBatch registers fn to run first in the transaction of a batch of
// several events, with the batch's accounts, each once, in sorted order.
// A service whose handlers lock an account each takes those locks there,
// in one order for every replica: otherwise two replicas' batches could
// lock two accounts in opposite orders and wait for each other (on
// PostgreSQL a deadlock, which InTx retries, but only after PostgreSQL's
// deadlock_timeout). Register before Run.
func BeforeBatch(b *Bus, fn func(ctx context.Context, tx *sql.Tx, accountIDs []string) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.beforeBatch = fn
}

// accountsOf are the accounts of dvs, each once, sorted.
func accountsOf(dvs []*delivery) []string {
	var ids []string
	for _, dv := range dvs {
		if id := dv.d.meta.GetAccountId(); id != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// fail lets a failed event be redelivered (with backoff) until its
// MaxDeliver-th delivery, holding back the later events of its aggregate
// meanwhile (order.go); then it publishes it to roster.deadletter.<consumer>
// and acks it, so one poison event never blocks the events behind it for
// good. An unreadable event (permanentError) is dead-lettered at once.
func (c *consumer) fail(dv *delivery, err error) {
	typ := dv.msg.Headers().Get(HeaderType)
	id := dv.msg.Headers().Get(HeaderID)
	var perm permanentError
	if !errors.As(err, &perm) && dv.n < uint64(c.b.cfg.MaxDeliver) {
		failed.WithLabelValues(c.b.cfg.Service, c.name, typ).Inc()
		c.b.log.Warn("event failed; will be redelivered", "consumer", c.name, "event_id", id,
			"type", typ, "delivery", dv.n, "err", err)
		delay := backoff{base: c.b.cfg.RetryBackoff, max: 30 * time.Second}.WaitTime(dv.n)
		c.order.block(dv, delay)
		if nerr := dv.msg.NakWithDelay(delay); nerr != nil {
			c.b.log.Warn("nak event", "consumer", c.name, "err", nerr)
		}
		return
	}
	if perr := c.publishDeadLetter(dv, err); perr != nil {
		c.b.log.Error("dead-lettering failed; event stays on its stream", "consumer", c.name, "event_id", id, "err", perr)
		delay := backoff{base: c.b.cfg.RetryBackoff, max: 30 * time.Second}.WaitTime(dv.n)
		c.order.block(dv, delay)
		_ = dv.msg.NakWithDelay(delay)
		return
	}
	deadLettered.WithLabelValues(c.b.cfg.Service, c.name, typ).Inc()
	c.b.log.Error("event dead-lettered", "consumer", c.name, "event_id", id, "type", typ,
		"delivery", dv.n, "err", err)
	c.order.done(dv)
	c.ack(dv)
}

// held reports whether dv waits behind a failed earlier event of its
// aggregate; if so it is handed back to come again after that one.
func (c *consumer) held(dv *delivery) bool {
	delay, ok := c.order.wait(dv, uint64(c.b.cfg.MaxDeliver))
	if !ok {
		return false
	}
	heldBack.WithLabelValues(c.b.cfg.Service, c.name).Inc()
	if err := dv.msg.NakWithDelay(delay); err != nil {
		c.b.log.Warn("nak event", "consumer", c.name, "err", err)
	}
	return true
}

func (c *consumer) ack(dv *delivery) {
	// An ack lost here means one more delivery, which the inbox drops.
	if err := dv.msg.Ack(); err != nil {
		c.b.log.Warn("ack event", "consumer", c.name, "err", err)
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

func (c *consumer) publishDeadLetter(dv *delivery, cause error) error {
	dl := nats.NewMsg(DeadLetterPrefix + c.name)
	dl.Data = dv.msg.Data()
	for k, v := range dv.msg.Headers() {
		dl.Header[k] = append([]string(nil), v...)
	}
	dl.Header.Set(HeaderDLConsumer, c.name)
	dl.Header.Set(HeaderDLSubject, dv.msg.Subject())
	dl.Header.Set(HeaderDLError, cause.Error())
	dl.Header.Set(HeaderDLDelivery, strconv.FormatUint(dv.n, 10))
	dl.Header.Set(HeaderDLTime, time.Now().UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.js.PublishMsg(ctx, dl, jetstream.WithMsgID(dv.msg.Headers().Get(HeaderID)+"."+c.name))
	return err
}
