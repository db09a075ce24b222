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
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/reflect/protoreflect"

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
	m := nats.NewMsg(SettledPrefix + service)
	m.Header.Set(headerCorrelation, meta.GetCorrelationId())
	m.Data = data
	return nc.PublishMsg(m)
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

// headerCorrelation carries a Settled notice's correlation id, so that a
// Waiter drops notices nobody waits for without decoding them.
const headerCorrelation = "roster-correlation"

// Waiter makes write requests wait until the events they caused have been
// applied everywhere they are awaited (settle.go's protocol). One per
// process: it subscribes once to every Settled notice and hands each to
// the requests of its correlation id.
type Waiter struct {
	nc      *nats.Conn
	timeout time.Duration
	log     *slog.Logger
	sub     *nats.Subscription
	stop    chan struct{}
	stopped sync.WaitGroup

	mu sync.Mutex
	// byType: the awaited consumers of each event type; bySource: those
	// that apply every type of a source ("*").
	byType   map[string][]string
	bySource map[string][]string
	waits    map[string]map[*wait]struct{}
}

// DefaultSettleTimeout bounds how long a write waits for its effects
// before it answers anyway (with Roster-Consistency: pending).
const DefaultSettleTimeout = 10 * time.Second

// registryRefresh is how often a Waiter re-reads the consumers' registry.
var registryRefresh = 2 * time.Second

// NewWaiter subscribes to the Settled notices on nc and reads the
// consumers' registry (and re-reads it every 2 s, or on Refresh).
func NewWaiter(nc *nats.Conn, timeout time.Duration, log *slog.Logger) (*Waiter, error) {
	if timeout <= 0 {
		timeout = DefaultSettleTimeout
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Waiter{nc: nc, timeout: timeout, log: log, stop: make(chan struct{}),
		byType: map[string][]string{}, bySource: map[string][]string{}, waits: map[string]map[*wait]struct{}{}}
	sub, err := nc.Subscribe(SettledPrefix+">", w.notice)
	if err != nil {
		return nil, fmt.Errorf("eventbus: subscribe to settled notices: %w", err)
	}
	// Notices come in bursts; never drop them for want of a buffer.
	_ = sub.SetPendingLimits(-1, -1)
	w.sub = sub
	if err := w.refresh(); err != nil {
		log.Warn("consumer registry not read yet", "err", err)
	}
	w.stopped.Add(1)
	go w.loop()
	return w, nil
}

// Close stops the Waiter; requests waiting answer at once.
func (w *Waiter) Close() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	_ = w.sub.Unsubscribe()
	w.stopped.Wait()
}

// Refresh re-reads the registry now (the host calls it once its own
// consumers exist, before it reports ready).
func (w *Waiter) Refresh() error { return w.refresh() }

func (w *Waiter) loop() {
	defer w.stopped.Done()
	t := time.NewTicker(registryRefresh)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if err := w.refresh(); err != nil {
			w.log.Debug("consumer registry", "err", err)
		}
	}
}

// refresh reads the awaited consumers of every event stream.
func (w *Waiter) refresh() error {
	js, err := w.nc.JetStream()
	if err != nil {
		return err
	}
	byType, bySource := map[string][]string{}, map[string][]string{}
	for _, source := range EventServices {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for info := range js.ConsumersInfo(EventStream(source), nats.Context(ctx)) {
			md := info.Config.Metadata
			if md[MetaAwaited] != "1" || md[MetaHandles] == "" {
				continue
			}
			for _, typ := range strings.Split(md[MetaHandles], ",") {
				if typ == "*" {
					bySource[source] = append(bySource[source], info.Name)
				} else {
					byType[typ] = append(byType[typ], info.Name)
				}
			}
		}
		cancel()
	}
	w.mu.Lock()
	w.byType, w.bySource = byType, bySource
	w.mu.Unlock()
	return nil
}

// awaitedBy returns the consumers a writer waits for after an event of typ.
// Called with w.mu held.
func (w *Waiter) awaitedBy(typ string) []string {
	out := w.byType[typ]
	if all := w.bySource[ServiceOf(protoreflect.FullName(typ))]; len(all) > 0 {
		out = append(append([]string(nil), out...), all...)
	}
	return out
}

func (w *Waiter) notice(m *nats.Msg) {
	corr := m.Header.Get(headerCorrelation)
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.waits[corr]
	if len(ws) == 0 {
		return
	}
	var n Settled
	if err := json.Unmarshal(m.Data, &n); err != nil {
		w.log.Debug("unreadable settled notice", "err", err)
		return
	}
	k := settleKey{n.Consumer, n.EventID}
	for wt := range ws {
		wt.done[k] = n.Emitted
		wt.resolve(w)
	}
}

type settleKey struct{ consumer, event string }

// wait is one request's view of its effects: the (consumer, event) pairs
// not yet applied, and the notices received so far (a notice may come
// before the request knows its event: the notices of a whole tree race
// each other and the request's own commit).
type wait struct {
	corr    string
	pending map[settleKey]struct{}
	done    map[settleKey][]emitted
	settled chan struct{} // signalled when pending becomes empty
}

// add makes the request wait for events too. Called with w.mu held.
func (wt *wait) add(w *Waiter, events []emitted) {
	for _, e := range events {
		for _, c := range w.awaitedBy(e.Type) {
			wt.pending[settleKey{c, e.ID}] = struct{}{}
		}
	}
	wt.resolve(w)
}

// resolve moves applied pairs out of pending, adding what their handlers
// emitted. Called with w.mu held.
func (wt *wait) resolve(w *Waiter) {
	for progress := true; progress; {
		progress = false
		for k := range wt.pending {
			children, ok := wt.done[k]
			if !ok {
				continue
			}
			delete(wt.pending, k)
			progress = true
			for _, e := range children {
				for _, c := range w.awaitedBy(e.Type) {
					wt.pending[settleKey{c, e.ID}] = struct{}{}
				}
			}
		}
	}
	if len(wt.pending) == 0 {
		select {
		case wt.settled <- struct{}{}:
		default:
		}
	}
}

// begin registers a request of correlation id corr; its notices are kept
// from now on.
func (w *Waiter) begin(corr string) *wait {
	wt := &wait{corr: corr, pending: map[settleKey]struct{}{}, done: map[settleKey][]emitted{}, settled: make(chan struct{}, 1)}
	w.mu.Lock()
	if w.waits[corr] == nil {
		w.waits[corr] = map[*wait]struct{}{}
	}
	w.waits[corr][wt] = struct{}{}
	w.mu.Unlock()
	return wt
}

func (w *Waiter) end(wt *wait) {
	w.mu.Lock()
	delete(w.waits[wt.corr], wt)
	if len(w.waits[wt.corr]) == 0 {
		delete(w.waits, wt.corr)
	}
	w.mu.Unlock()
}

// settle waits until every event in t, and what their handlers emitted,
// is applied by every awaited consumer, or the deadline passes (false).
func (w *Waiter) settle(ctx context.Context, wt *wait, t *tracker, deadline time.Time) bool {
	events := t.take()
	w.mu.Lock()
	if len(events) > 0 {
		wt.add(w, events)
	}
	done := len(wt.pending) == 0
	w.mu.Unlock()
	if done {
		return true
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case <-wt.settled:
			w.mu.Lock()
			done := len(wt.pending) == 0
			w.mu.Unlock()
			if done {
				return true
			}
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-w.stop:
			return false
		}
	}
}

// settling is what a write request carries in its context.
type settling struct {
	w        *Waiter
	wt       *wait
	t        *tracker
	deadline time.Time
	timedOut bool
}

type settlingKey struct{}

// Settle waits until the effects of the events the request in ctx has
// committed so far are applied wherever they are awaited (or the
// deadline passes: false). A handler calls it before it reads back what
// other services derive from its write (a technician's role, R-6); the
// middleware calls it again before the answer's status goes out. Outside
// a write request it returns true at once.
func Settle(ctx context.Context) bool {
	s, ok := ctx.Value(settlingKey{}).(*settling)
	if !ok {
		return true
	}
	if s.timedOut {
		return false
	}
	if !s.w.settle(ctx, s.wt, s.t, s.deadline) {
		s.timedOut = true
		settleTimeouts.Inc()
		s.w.mu.Lock()
		var missing []string
		for k := range s.wt.pending {
			missing = append(missing, k.consumer+"/"+k.event)
		}
		s.w.mu.Unlock()
		s.w.log.Warn("a write answers before its effects are applied", "correlation_id", s.wt.corr, "waiting_for", missing)
		return false
	}
	return true
}

// HeaderConsistency is set to "pending" on a write's answer whose effects
// were not all applied by the deadline.
const HeaderConsistency = "Roster-Consistency"

// Middleware makes every write request (not GET, HEAD or OPTIONS) answer
// only once its effects are applied: its status line waits for Settle.
// Requests carrying the correlation id that httpx.Correlate gave them.
func (w *Waiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(rw, r)
			return
		}
		corr := CorrelationID(r.Context())
		if corr == "" {
			corr = NewID()
			r = r.WithContext(WithCorrelation(r.Context(), corr))
		}
		s := &settling{w: w, wt: w.begin(corr), t: &tracker{}, deadline: time.Now().Add(w.timeout)}
		defer w.end(s.wt)
		ctx := context.WithValue(withTracker(r.Context(), s.t), settlingKey{}, s)
		start := time.Now()
		sw := &settleWriter{ResponseWriter: rw, ctx: ctx, s: s, start: start}
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// settleWriter holds the status line of a 2xx answer until the request's
// effects are applied.
type settleWriter struct {
	http.ResponseWriter
	ctx     context.Context
	s       *settling
	start   time.Time
	written bool
}

func (sw *settleWriter) WriteHeader(code int) {
	if !sw.written {
		sw.written = true
		if code >= 200 && code < 300 {
			if !Settle(sw.ctx) {
				sw.Header().Set(HeaderConsistency, "pending")
			}
			settleSeconds.Observe(time.Since(sw.start).Seconds())
		}
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *settleWriter) Write(p []byte) (int, error) {
	if !sw.written {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (sw *settleWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

func (sw *settleWriter) Flush() {
	if !sw.written {
		sw.WriteHeader(http.StatusOK)
	}
	if f, ok := sw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
