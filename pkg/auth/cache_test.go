package auth

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func liveCache(t *testing.T, cfg CacheConfig) (*cache, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	c := newCache(cfg)
	c.resume(0)
	return c, clk
}

// identity is a stand-in for rpc.Authenticate: it answers p, valid until
// until, and counts the questions.
type identity struct {
	asked atomic.Int32
	p     Principal
	until time.Time
	ok    bool
}

func (id *identity) ask(context.Context) (Principal, time.Time, bool, error) {
	id.asked.Add(1)
	return id.p, id.until, id.ok, nil
}

// joined is how many requests wait for the question in flight for k.
func (c *cache) joined(k [sha256.Size]byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[k]; f != nil {
		return f.joined
	}
	return 0
}

func key(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

func TestCacheKeepsUntilTheEarliestOfTTLAndIdentitysCacheUntil(t *testing.T) {
	tests := []struct {
		name       string
		cacheUntil time.Duration // from now; 0: identity did not say
		kept       time.Duration // how long the answer is kept
	}{
		{"identity's cache_until first (expiry, next recorded use)", 10 * time.Second, 10 * time.Second},
		{"the TTL first", time.Hour, 30 * time.Second},
		{"no cache_until: not kept", 0, 0},
		{"already past: not kept", -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := liveCache(t, CacheConfig{TTL: 30 * time.Second})
			id := &identity{p: Principal{AccountID: "acc", TokenID: "tok"}, ok: true}
			if tt.cacheUntil != 0 {
				id.until = clk.Now().Add(tt.cacheUntil)
			}
			resolve := func() {
				t.Helper()
				if p, ok, err := c.resolve(context.Background(), key("t"), id.ask); err != nil || !ok || p.TokenID != "tok" {
					t.Fatalf("resolve: %v %v %v", p, ok, err)
				}
			}
			resolve()
			if tt.kept > 0 {
				clk.Advance(tt.kept - time.Millisecond)
				resolve()
				if n := id.asked.Load(); n != 1 {
					t.Fatalf("identity asked %d times within %v", n, tt.kept)
				}
			}
			clk.Advance(time.Millisecond)
			resolve()
			if n := id.asked.Load(); n != 2 {
				t.Fatalf("identity asked %d times, want 2 (once more after %v)", n, tt.kept)
			}
		})
	}
}

func TestCacheKeepsNoInvalidAnswerAndNothingWhileSuspended(t *testing.T) {
	c, clk := liveCache(t, CacheConfig{})
	invalid := &identity{until: clk.Now().Add(time.Minute)}
	for range 2 {
		if _, ok, _ := c.resolve(context.Background(), key("wrong"), invalid.ask); ok {
			t.Fatal("an invalid token resolved")
		}
	}
	if n := invalid.asked.Load(); n != 2 {
		t.Fatalf("an invalid token was cached: identity asked %d times", n)
	}

	c.suspend()
	valid := &identity{p: Principal{AccountID: "acc", TokenID: "tok"}, until: clk.Now().Add(time.Minute), ok: true}
	for range 2 {
		c.resolve(context.Background(), key("t"), valid.ask)
	}
	if n := valid.asked.Load(); n != 2 || c.len() != 0 {
		t.Fatalf("a suspended cache kept an answer: asked %d, %d entries", n, c.len())
	}
	c.resume(0)
	for range 2 {
		c.resolve(context.Background(), key("t"), valid.ask)
	}
	if n := valid.asked.Load(); n != 3 {
		t.Fatalf("resumed cache: identity asked %d times, want 3", n)
	}
}

func TestCacheIsBoundedLeastRecentlyUsedFirst(t *testing.T) {
	c, clk := liveCache(t, CacheConfig{Size: 2})
	ids := map[string]*identity{}
	resolve := func(tok string) {
		if ids[tok] == nil {
			ids[tok] = &identity{p: Principal{AccountID: "acc", TokenID: tok}, until: clk.Now().Add(time.Minute), ok: true}
		}
		c.resolve(context.Background(), key(tok), ids[tok].ask)
	}
	resolve("a")
	resolve("b")
	resolve("a") // a is now the most recently used
	resolve("c") // evicts b
	if c.len() != 2 {
		t.Fatalf("%d entries, want 2", c.len())
	}
	resolve("a")
	resolve("b")
	if a, b := ids["a"].asked.Load(), ids["b"].asked.Load(); a != 1 || b != 2 {
		t.Fatalf("asked a %d, b %d times; want 1 and 2 (b evicted)", a, b)
	}
}

func TestCacheSharesConcurrentMissesButNotAcrossAnInvalidation(t *testing.T) {
	c, clk := liveCache(t, CacheConfig{})
	release := make(chan struct{})
	var asked atomic.Int32
	p := Principal{AccountID: "acc", TokenID: "tok", TechnicianID: "tech"}
	slow := func(context.Context) (Principal, time.Time, bool, error) {
		asked.Add(1)
		<-release
		return p, clk.Now().Add(time.Minute), true, nil
	}
	var wg sync.WaitGroup
	const clients = 16
	joins := make(chan struct{}, clients)
	c.mu.Lock()
	c.joinedFlight = func() { joins <- struct{}{} }
	c.mu.Unlock()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, err := c.resolve(context.Background(), key("t"), slow); !ok || err != nil {
				t.Errorf("resolve: %v %v", ok, err)
			}
		}()
	}
	// Let identity answer once every client waits for the one question.
	for range clients - 1 {
		select {
		case <-joins:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d clients joined the question", c.joined(key("t")))
		}
	}
	close(release)
	wg.Wait()
	if n := asked.Load(); n != 1 {
		t.Fatalf("identity asked %d times by %d concurrent misses, want 1", n, clients)
	}

	// A revocation while a question is in flight: the answer, asked for
	// before it, is neither kept nor given to a request that came after.
	c.drop(invalidation{accountID: "acc", tokenIDs: []string{"tok"}})
	inFlight := make(chan struct{})
	release = make(chan struct{})
	before := func(context.Context) (Principal, time.Time, bool, error) {
		close(inFlight)
		<-release
		return p, clk.Now().Add(time.Minute), true, nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.resolve(context.Background(), key("t"), before)
	}()
	<-inFlight
	c.drop(invalidation{accountID: "acc", tokenIDs: []string{"tok"}})
	after := &identity{} // identity now says: revoked
	if _, ok, _ := c.resolve(context.Background(), key("t"), after.ask); ok || after.asked.Load() != 1 {
		t.Fatalf("a request after the revocation joined the question asked before it: ok %v, asked %d", ok, after.asked.Load())
	}
	close(release)
	<-done
	if c.len() != 0 {
		t.Fatal("an answer asked for before a revocation was kept")
	}
}

func TestCacheDropsWhatAnInvalidationNames(t *testing.T) {
	tokens := map[string]Principal{
		"api":      {AccountID: "acc1", TokenID: "tok_1"},
		"tess-1":   {AccountID: "acc1", TokenID: "ses_1", TechnicianID: "tess"},
		"tess-2":   {AccountID: "acc1", TokenID: "ses_2", TechnicianID: "tess"},
		"tom":      {AccountID: "acc1", TokenID: "ses_3", TechnicianID: "tom"},
		"other":    {AccountID: "acc2", TokenID: "tok_2"},
		"other-tl": {AccountID: "acc2", TokenID: "ses_4", TechnicianID: "tl"},
	}
	tests := []struct {
		name    string
		inv     invalidation
		dropped []string
	}{
		{"a token", invalidation{accountID: "acc1", tokenIDs: []string{"tok_1"}}, []string{"api"}},
		{"sessions by id", invalidation{accountID: "acc1", tokenIDs: []string{"ses_1", "ses_3"}}, []string{"tess-1", "tom"}},
		{"a technician's sessions", invalidation{accountID: "acc1", technicianID: "tess"}, []string{"tess-1", "tess-2"}},
		{"an account, when unsure", invalidation{accountID: "acc2"}, []string{"other", "other-tl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := liveCache(t, CacheConfig{})
			ids := map[string]*identity{}
			for tok, p := range tokens {
				ids[tok] = &identity{p: p, until: clk.Now().Add(time.Minute), ok: true}
				c.resolve(context.Background(), key(tok), ids[tok].ask)
			}
			c.drop(tt.inv)
			if want := len(tokens) - len(tt.dropped); c.len() != want {
				t.Fatalf("%d entries left, want %d", c.len(), want)
			}
			for tok := range tokens {
				c.resolve(context.Background(), key(tok), ids[tok].ask)
			}
			for tok, id := range ids {
				want := int32(1)
				for _, d := range tt.dropped {
					if d == tok {
						want = 2
					}
				}
				if n := id.asked.Load(); n != want {
					t.Errorf("%s: identity asked %d times, want %d", tok, n, want)
				}
			}
		})
	}
}
