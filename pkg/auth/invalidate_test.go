package auth_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// fakeIdentity answers rpc.Authenticate from a table of token hashes and
// counts the questions.
type fakeIdentity struct {
	mu    sync.Mutex
	valid map[string]*identityv1.AuthenticateReply
	asked atomic.Int32
}

func (f *fakeIdentity) set(token string, rep *identityv1.AuthenticateReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rep == nil {
		delete(f.valid, hex.EncodeToString(httpx.HashToken(token)))
		return
	}
	f.valid[hex.EncodeToString(httpx.HashToken(token))] = rep
}

func serveIdentity(t *testing.T, nc *nats.Conn) *fakeIdentity {
	t.Helper()
	f := &fakeIdentity{valid: map[string]*identityv1.AuthenticateReply{}}
	sub, err := rpc.Serve(nc, rpc.Authenticate, "identity", slog.Default(),
		func() *identityv1.AuthenticateRequest { return &identityv1.AuthenticateRequest{} },
		func(_ context.Context, req *identityv1.AuthenticateRequest) (*identityv1.AuthenticateReply, error) {
			f.asked.Add(1)
			f.mu.Lock()
			defer f.mu.Unlock()
			if rep := f.valid[hex.EncodeToString(req.GetTokenHash())]; rep != nil {
				return rep, nil
			}
			return &identityv1.AuthenticateReply{}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return f
}

// After identity publishes an event that ends a token, the cache publishes
// its Settled notice only once it dropped the token: the next Resolve asks
// identity again (and hears "invalid").
func TestRevocationDropsTheTokenBeforeTheSettledNotice(t *testing.T) {
	w := svctest.NewNATS(t)
	id := serveIdentity(t, w.NC)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	conn, err := w.Connect("auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	a := auth.New(httpx.NewOperator("operator-token"), conn)
	if err := a.StartCache(context.Background(), auth.CacheConfig{Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)

	// The registry entry the Waiters read: awaited, and the types it drops on.
	var info *nats.ConsumerInfo
	for ci := range w.JS.ConsumersInfo(eventbus.EventStream("identity")) {
		if strings.HasPrefix(ci.Name, "auth_") {
			info = ci
		}
	}
	if info == nil || info.Config.Metadata[eventbus.MetaAwaited] != "1" ||
		!strings.Contains(info.Config.Metadata[eventbus.MetaHandles], "roster.identity.v1.ApiTokenRevoked") ||
		info.Config.InactiveThreshold != 10*time.Second {
		t.Fatalf("the cache's consumer: %+v", info)
	}
	settled, err := w.NC.SubscribeSync(eventbus.SettledPrefix + "auth")
	if err != nil {
		t.Fatal(err)
	}
	until := timestamppb.New(now.Add(time.Minute))
	seq := 0
	publish := func(ev eventbus.Event) {
		t.Helper()
		seq++
		meta := ev.GetMeta()
		meta.EventId, meta.AccountId, meta.CorrelationId = "evt_"+string(rune('a'+seq)), "acc_1", "corr_"+string(rune('a'+seq))
		name := ev.ProtoReflect().Descriptor().FullName()
		msg := nats.NewMsg(eventbus.Subject(name, "acc_1"))
		msg.Header.Set(eventbus.HeaderType, string(name))
		msg.Data, _ = proto.Marshal(ev)
		if _, err := w.JS.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	// awaitSettled waits for the cache's notice of the last event.
	awaitSettled := func(ev eventbus.Event) {
		t.Helper()
		m, err := settled.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no settled notice for %s: %v", ev.ProtoReflect().Descriptor().Name(), err)
		}
		var n eventbus.Settled
		if err := json.Unmarshal(m.Data, &n); err != nil || n.Consumer != info.Name || n.EventID != ev.GetMeta().GetEventId() ||
			n.Correlation != ev.GetMeta().GetCorrelationId() {
			t.Fatalf("settled notice %s: %+v %v", m.Data, n, err)
		}
	}
	session := func(id, tech string) *identityv1.AuthenticateReply {
		return &identityv1.AuthenticateReply{Valid: true, Kind: identityv1.AuthenticateReply_KIND_SESSION, AccountId: "acc_1",
			TokenId: id, TechnicianId: tech, CacheUntil: until}
	}

	tests := []struct {
		name  string
		token string
		rep   *identityv1.AuthenticateReply
		ev    eventbus.Event
	}{
		{"api token revoked", "rst_a", &identityv1.AuthenticateReply{Valid: true, Kind: identityv1.AuthenticateReply_KIND_API_TOKEN,
			AccountId: "acc_1", TokenId: "tok_1", CacheUntil: until}, &identityv1.ApiTokenRevoked{Meta: &commonv1.EventMeta{}, TokenId: "tok_1"}},
		{"session revoked", "rss_a", session("ses_1", "tech_1"),
			&identityv1.SessionsRevoked{Meta: &commonv1.EventMeta{}, TechnicianId: "tech_1", SessionIds: []string{"ses_1"}, Reason: "revoked"}},
		{"technician disabled", "rss_b", session("ses_2", "tech_2"),
			&identityv1.TechnicianDisabled{Meta: &commonv1.EventMeta{}, TechnicianId: "tech_2"}},
		{"password set", "rss_c", session("ses_3", "tech_3"), &identityv1.PasswordSet{Meta: &commonv1.EventMeta{}, TechnicianId: "tech_3"}},
		{"second factor enrolled", "rss_d", session("ses_4", "tech_4"),
			&identityv1.SecondFactorEnrolled{Meta: &commonv1.EventMeta{}, TechnicianId: "tech_4"}},
		{"admin changed", "rss_e", session("ses_5", "tech_5"),
			&identityv1.TechnicianAdminChanged{Meta: &commonv1.EventMeta{}, TechnicianId: "tech_5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id.set(tt.token, tt.rep)
			asked := id.asked.Load()
			for range 3 {
				if p, ok, err := a.Resolve(context.Background(), tt.token); err != nil || !ok || p.TokenID != tt.rep.GetTokenId() {
					t.Fatalf("resolve: %+v %v %v", p, ok, err)
				}
			}
			if n := id.asked.Load() - asked; n != 1 {
				t.Fatalf("identity asked %d times for 3 requests, want 1", n)
			}
			id.set(tt.token, nil) // identity committed the revocation…
			publish(tt.ev)        // …and relayed its event
			awaitSettled(tt.ev)
			if _, ok, err := a.Resolve(context.Background(), tt.token); ok || err != nil {
				t.Fatalf("after the settled notice the token still resolves (%v)", err)
			}
			if n := id.asked.Load() - asked; n != 2 {
				t.Fatalf("identity asked %d times, want 2", n)
			}
		})
	}

	// Other identity events do not reach the cache.
	id.set("rss_z", session("ses_9", "tech_9"))
	a.Resolve(context.Background(), "rss_z")
	publish(&identityv1.TechnicianLocked{Meta: &commonv1.EventMeta{}, TechnicianId: "tech_9"})
	last := &identityv1.ApiTokenRevoked{Meta: &commonv1.EventMeta{}, TokenId: "tok_none"}
	publish(last)
	awaitSettled(last) // not TechnicianLocked's: it was never delivered
	if a.CacheLen() != 1 {
		t.Fatalf("%d cached, want the one session", a.CacheLen())
	}
}

// A cache whose consumer disappears (deleted, or NATS lost it) forgets
// every token — it may have missed revocations — keeps none while it has
// no consumer, and recreates it.
func TestCacheRecreatesALostConsumer(t *testing.T) {
	w := svctest.NewNATS(t)
	id := serveIdentity(t, w.NC)
	conn, err := w.Connect("auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	a := auth.New(httpx.NewOperator("operator-token"), conn)
	if err := a.StartCache(context.Background(), auth.CacheConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	id.set("rst_a", &identityv1.AuthenticateReply{Valid: true, AccountId: "acc_1", TokenId: "tok_1",
		CacheUntil: timestamppb.New(time.Now().Add(time.Minute))})
	a.Resolve(context.Background(), "rst_a")
	if a.CacheLen() != 1 {
		t.Fatalf("%d cached", a.CacheLen())
	}
	consumer := func() string {
		for ci := range w.JS.ConsumersInfo(eventbus.EventStream("identity")) {
			if strings.HasPrefix(ci.Name, "auth_") {
				return ci.Name
			}
		}
		return ""
	}
	name := consumer()
	if err := w.JS.DeleteConsumer(eventbus.EventStream("identity"), name); err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "the cache forgot its tokens", func() bool { return a.CacheLen() == 0 })
	svctest.Eventually(t, "the consumer recreated", func() bool { return consumer() == name })
	// Live again: a token is kept, and dropped on its revocation.
	svctest.Eventually(t, "a token kept again", func() bool {
		a.Resolve(context.Background(), "rst_a")
		return a.CacheLen() == 1
	})
	settled, err := w.NC.SubscribeSync(eventbus.SettledPrefix + "auth")
	if err != nil {
		t.Fatal(err)
	}
	ev := &identityv1.ApiTokenRevoked{Meta: &commonv1.EventMeta{EventId: "evt_1", AccountId: "acc_1", CorrelationId: "corr_1"}, TokenId: "tok_1"}
	msg := nats.NewMsg(eventbus.Subject(ev.ProtoReflect().Descriptor().FullName(), "acc_1"))
	msg.Header.Set(eventbus.HeaderType, string(ev.ProtoReflect().Descriptor().FullName()))
	msg.Data, _ = proto.Marshal(ev)
	if _, err := w.JS.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := settled.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("no settled notice from the recreated consumer: %v", err)
	}
	if a.CacheLen() != 0 {
		t.Fatal("the recreated consumer did not drop the revoked token")
	}
}
