package auth

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"roster.dev/pkg/eventbus"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// The token cache (issue 18, "token checks without a round trip"): each
// process keeps the principals identity vouched for, keyed by the token's
// SHA-256 (never the token), until the earliest of
//   - the reply's cache_until: the token's or session's expiry (absolute
//     and idle) and its next recorded use — identity notes a use at most
//     once a minute, and the entry ends when that minute does, so the first
//     request after it reaches identity, which records it (last_used_at,
//     the technician's last activity) and moves the idle expiry on, as
//     without a cache;
//   - the cache's TTL (30 s by default).
//
// Revocation is read-your-writes (I-7): the cache runs an ephemeral
// JetStream consumer on identity's stream, filtered to the events after
// which Authenticate answers otherwise (invalidatingTypes), registered as
// awaited (eventbus.ConsumerMetadata). On each it drops the entries the
// event concerns and only then publishes its Settled notice, so the
// revoking request, which waits for every awaited consumer of the events
// it emitted (pkg/eventbus/settle.go), answers after every process's cache
// forgot the token. While the consumer is not running (not created yet,
// deleted, heartbeats missed) nothing is cached: every request asks
// identity, as before the cache.
//
// Unknown, expired and revoked tokens are not cached: a token minted a
// moment ago works at once, and a wrong token costs what it cost before.

// CacheConfig tunes the token cache; the zero value takes the defaults.
type CacheConfig struct {
	// TTL bounds how long a principal is kept (default 30 s).
	TTL time.Duration
	// Size bounds the entries kept; the least recently used go first
	// (default 10,000).
	Size int
	// Now is the clock that cache_until and the TTL are read against: the
	// services' clock, which tests fix (default time.Now).
	Now func() time.Time
	// Log reports the invalidation consumer's troubles (default
	// slog.Default()).
	Log *slog.Logger
	// InactiveThreshold is how long the consumer of a process that died
	// stays registered (default 10 s).
	InactiveThreshold time.Duration
	// WarmUp is how long after its consumer exists the cache starts
	// keeping answers: the time the Waiters of the other processes take to
	// read the registry and so wait for this cache (eventbus.Waiter reads
	// it every 2 s). Zero when every Waiter reads the registry after the
	// consumer exists (the all-in-one's only Waiter, refreshed when the
	// host is ready).
	WarmUp time.Duration
}

const (
	defaultTTL        = 30 * time.Second
	defaultSize       = 10_000
	defaultInactive   = 10 * time.Second
	consumerHeartbeat = time.Second
	// settleService names the cache in Settled subjects (roster.settled.auth).
	settleService = "auth"
)

// invalidatingTypes are identity's events after which Authenticate may
// answer otherwise for a token that was valid. Not among them, because
// they cannot end or change a live token: TechnicianLocked (a lock stops
// logins, not sessions), TechnicianErased (only a disabled technician is
// erased: their sessions and tokens ended when they were disabled),
// SecurityPolicyUpdated (it applies to sessions opened after it).
var invalidatingTypes = []eventbus.Event{
	&identityv1.ApiTokenRevoked{},        // the token
	&identityv1.SessionsRevoked{},        // logout, revoke, session cap, password change or reset, disable
	&identityv1.TechnicianDisabled{},     // every session of the technician (I-7)
	&identityv1.PasswordSet{},            // the technician's other sessions (also SessionsRevoked)
	&identityv1.SecondFactorEnrolled{},   // the sessions stop being enrolment-only (L-3)
	&identityv1.TechnicianAdminChanged{}, // the sessions gain or lose the account scopes (I-9)
}

// entry is a cached principal.
type entry struct {
	key   [sha256.Size]byte
	p     Principal
	until time.Time
}

// flight is one question to identity that concurrent requests for the same
// token share.
type flight struct {
	gen    uint64
	joined int // requests waiting for it besides the one asking
	done   chan struct{}
	p      Principal
	until  time.Time
	ok     bool
	err    error
}

// cache holds the verified tokens of one process.
type cache struct {
	cfg CacheConfig
	// joinedFlight, when a test sets it, runs each time a request joins
	// a question in flight.
	joinedFlight func()

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element
	lru     *list.List // of *entry, most recently used first
	// byToken, byTechnician and byAccount index the entries for dropping.
	byToken      map[string]*list.Element
	byTechnician map[string]map[*list.Element]struct{}
	byAccount    map[string]map[*list.Element]struct{}
	flights      map[[sha256.Size]byte]*flight
	// gen counts invalidations: an answer asked for before one is neither
	// cached nor shared with requests that came after it.
	gen uint64
	// live: the invalidation consumer runs (and every Waiter knows it);
	// nothing is cached otherwise. epoch counts suspensions, so that a
	// resumption planned before one does not undo it.
	live  bool
	epoch uint64
}

func newCache(cfg CacheConfig) *cache {
	if cfg.TTL <= 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.Size <= 0 {
		cfg.Size = defaultSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.InactiveThreshold <= 0 {
		cfg.InactiveThreshold = defaultInactive
	}
	return &cache{cfg: cfg, entries: map[[sha256.Size]byte]*list.Element{}, lru: list.New(),
		byToken: map[string]*list.Element{}, byTechnician: map[string]map[*list.Element]struct{}{},
		byAccount: map[string]map[*list.Element]struct{}{}, flights: map[[sha256.Size]byte]*flight{}}
}

// resolve returns the principal of the token with this hash, from the
// cache or from ask (identity), which concurrent misses share.
func (c *cache) resolve(ctx context.Context, key [sha256.Size]byte,
	ask func(context.Context) (p Principal, until time.Time, ok bool, err error)) (Principal, bool, error) {
	c.mu.Lock()
	if el, hit := c.entries[key]; hit {
		e := el.Value.(*entry)
		if c.cfg.Now().Before(e.until) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.p, true, nil
		}
		c.remove(el)
	}
	if f := c.flights[key]; f != nil && f.gen == c.gen {
		f.joined++
		joined := c.joinedFlight
		c.mu.Unlock()
		if joined != nil {
			joined()
		}
		select {
		case <-f.done:
			return f.p, f.ok, f.err
		case <-ctx.Done():
			return Principal{}, false, ctx.Err()
		}
	}
	f := &flight{gen: c.gen, done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	// The question outlives a leader whose client went away: others wait
	// for it (rpc.Call bounds it with its own timeout).
	f.p, f.until, f.ok, f.err = ask(context.WithoutCancel(ctx))
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	if f.err == nil && f.ok && f.gen == c.gen && c.live {
		c.put(key, f.p, f.until)
	}
	c.mu.Unlock()
	close(f.done)
	return f.p, f.ok, f.err
}

// put keeps p until the earlier of until and the TTL; c.mu is held. A zero
// until (identity did not say) keeps nothing.
func (c *cache) put(key [sha256.Size]byte, p Principal, until time.Time) {
	now := c.cfg.Now()
	if ttl := now.Add(c.cfg.TTL); ttl.Before(until) {
		until = ttl
	}
	if !until.After(now) {
		return
	}
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	for c.lru.Len() >= c.cfg.Size {
		c.remove(c.lru.Back())
	}
	el := c.lru.PushFront(&entry{key: key, p: p, until: until})
	c.entries[key] = el
	if p.TokenID != "" {
		if old, ok := c.byToken[p.TokenID]; ok {
			c.remove(old)
		}
		c.byToken[p.TokenID] = el
	}
	index(c.byTechnician, p.TechnicianID, el)
	index(c.byAccount, p.AccountID, el)
}

func index(m map[string]map[*list.Element]struct{}, k string, el *list.Element) {
	if k == "" {
		return
	}
	if m[k] == nil {
		m[k] = map[*list.Element]struct{}{}
	}
	m[k][el] = struct{}{}
}

func unindex(m map[string]map[*list.Element]struct{}, k string, el *list.Element) {
	if set := m[k]; set != nil {
		delete(set, el)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// remove drops one entry; c.mu is held.
func (c *cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	if c.byToken[e.p.TokenID] == el {
		delete(c.byToken, e.p.TokenID)
	}
	unindex(c.byTechnician, e.p.TechnicianID, el)
	unindex(c.byAccount, e.p.AccountID, el)
}

// invalidation says which entries an event ends; empty fields name
// nothing, and an invalidation that names nothing ends the account's.
type invalidation struct {
	accountID    string
	technicianID string
	tokenIDs     []string
}

// drop removes the entries inv names and bars answers asked for before it
// from being kept or shared.
func (c *cache) drop(inv invalidation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range inv.tokenIDs {
		if el, ok := c.byToken[id]; ok {
			c.remove(el)
		}
	}
	switch {
	case inv.technicianID != "":
		for el := range c.byTechnician[inv.technicianID] {
			c.remove(el)
		}
	case len(inv.tokenIDs) == 0:
		for el := range c.byAccount[inv.accountID] {
			c.remove(el)
		}
	}
}

// suspend forgets everything and keeps nothing until resume.
func (c *cache) suspend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.live = false
	c.clear()
}

// resume lets the cache keep answers again after a delay, unless it was
// suspended meanwhile.
func (c *cache) resume(after time.Duration) {
	c.mu.Lock()
	epoch := c.epoch
	c.mu.Unlock()
	enable := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.epoch == epoch {
			c.live = true
		}
	}
	if after <= 0 {
		enable()
		return
	}
	time.AfterFunc(after, enable)
}

// clear forgets every entry; c.mu is held.
func (c *cache) clear() {
	c.gen++
	c.entries = map[[sha256.Size]byte]*list.Element{}
	c.lru.Init()
	c.byToken = map[string]*list.Element{}
	c.byTechnician = map[string]map[*list.Element]struct{}{}
	c.byAccount = map[string]map[*list.Element]struct{}{}
}

// len is the number of entries (tests).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// invalidationOf reads an event of identity's stream: what it ends, and
// its meta for the Settled notice. ok is false for another type.
func invalidationOf(msg jetstream.Msg) (eventbus.Event, invalidation, bool, error) {
	typ := protoreflect.FullName(msg.Headers().Get(eventbus.HeaderType))
	var ev eventbus.Event
	for _, t := range invalidatingTypes {
		if t.ProtoReflect().Descriptor().FullName() == typ {
			ev = t.ProtoReflect().New().Interface().(eventbus.Event)
		}
	}
	if ev == nil {
		return nil, invalidation{}, false, nil
	}
	if err := proto.Unmarshal(msg.Data(), ev); err != nil {
		return nil, invalidation{}, false, err
	}
	inv := invalidation{accountID: ev.GetMeta().GetAccountId()}
	switch e := ev.(type) {
	case *identityv1.ApiTokenRevoked:
		inv.tokenIDs = []string{e.GetTokenId()}
	case *identityv1.SessionsRevoked:
		inv.tokenIDs = e.GetSessionIds()
		if len(inv.tokenIDs) == 0 {
			inv.technicianID = e.GetTechnicianId()
		}
	case *identityv1.TechnicianDisabled:
		inv.technicianID = e.GetTechnicianId()
	case *identityv1.PasswordSet:
		inv.technicianID = e.GetTechnicianId()
	case *identityv1.SecondFactorEnrolled:
		inv.technicianID = e.GetTechnicianId()
	case *identityv1.TechnicianAdminChanged:
		inv.technicianID = e.GetTechnicianId()
	}
	return ev, inv, true, nil
}

// invalidator runs the cache's ephemeral consumer on identity's stream.
type invalidator struct {
	c    *cache
	nc   *nats.Conn
	js   jetstream.JetStream
	name string
	log  *slog.Logger
	// trouble wakes the watcher after a consumer error.
	trouble chan error
}

// invalidationSubjects are the filter subjects of the consumer: the
// invalidating types of every account.
func invalidationSubjects() (subjects, types []string) {
	for _, t := range invalidatingTypes {
		name := t.ProtoReflect().Descriptor().FullName()
		types = append(types, string(name))
		subjects = append(subjects, eventbus.Subject(name, "*"))
	}
	return subjects, types
}

func newInvalidator(c *cache, nc *nats.Conn) (*invalidator, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	rand.Read(id)
	return &invalidator{c: c, nc: nc, js: js, name: "auth_" + hex.EncodeToString(id), log: c.cfg.Log, trouble: make(chan error, 1)}, nil
}

// start creates the consumer and consumes from it; the cache keeps
// answers from then on.
func (iv *invalidator) start(ctx context.Context) (jetstream.ConsumeContext, error) {
	subjects, types := invalidationSubjects()
	cons, err := iv.js.CreateOrUpdateConsumer(ctx, eventbus.EventStream("identity"), jetstream.ConsumerConfig{
		Name:              iv.name,
		Description:       "token cache of one process (pkg/auth)",
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: iv.c.cfg.InactiveThreshold,
		Replicas:          1,
		MemoryStorage:     true,
		Metadata:          eventbus.ConsumerMetadata(types, true),
	})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(iv.apply,
		jetstream.PullHeartbeat(consumerHeartbeat), jetstream.PullExpiry(5*consumerHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// Events may have been missed: forget everything and keep
			// nothing until the watcher saw the consumer is still there.
			iv.c.suspend()
			select {
			case iv.trouble <- err:
			default:
			}
		}))
	if err != nil {
		return nil, err
	}
	iv.c.resume(iv.c.cfg.WarmUp)
	return cc, nil
}

// apply drops what an event ends, then says so (Settled).
func (iv *invalidator) apply(msg jetstream.Msg) {
	ev, inv, ok, err := invalidationOf(msg)
	if err != nil {
		// Unreadable: forget every token to be safe (no Settled: the
		// writer's deadline tells of the trouble).
		iv.log.Warn("auth cache: unreadable identity event", "subject", msg.Subject(), "err", err)
		iv.c.mu.Lock()
		iv.c.clear()
		iv.c.mu.Unlock()
		return
	}
	if !ok {
		return
	}
	iv.c.drop(inv)
	if err := eventbus.PublishSettled(iv.nc, settleService, iv.name, ev.GetMeta(), nil); err != nil {
		iv.log.Debug("auth cache: settled notice not sent", "event_id", ev.GetMeta().GetEventId(), "err", err)
	}
}

// run keeps the consumer going until ctx ends: after an error it checks
// the consumer, and recreates it when it is gone (the cache keeps nothing
// meanwhile).
func (iv *invalidator) run(ctx context.Context, cc jetstream.ConsumeContext) {
	defer func() {
		if cc != nil {
			cc.Stop()
		}
		// The consumer ends InactiveThreshold later: not deleted here, as
		// the services' NATS users may not delete consumers of identity's
		// stream (deploy/nats). Until then the Waiters of revoking writes
		// wait for it, up to their deadline.
		iv.c.suspend()
	}()
	backoff := 100 * time.Millisecond
	for {
		if cc == nil {
			var err error
			if cc, err = iv.start(ctx); err != nil {
				iv.log.Warn("auth cache: no invalidation consumer, every request asks identity", "consumer", iv.name, "err", err)
				cc = nil
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case err := <-iv.trouble:
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, ierr := iv.js.Consumer(ictx, eventbus.EventStream("identity"), iv.name)
			cancel()
			if ierr == nil && !errors.Is(err, jetstream.ErrConsumerDeleted) && !errors.Is(err, jetstream.ErrConnectionClosed) {
				iv.c.resume(0)
				continue
			}
			iv.log.Warn("auth cache: invalidation consumer lost, recreating", "consumer", iv.name, "err", err)
			iv.c.suspend()
			cc.Stop()
			cc = nil
		}
	}
}
