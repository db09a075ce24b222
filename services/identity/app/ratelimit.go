package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"roster.dev/pkg/problem"
)

// Rate limits of the login, reset and token routes (issue 7, item 8):
// token buckets per source address within an account and per account,
// sized by the account's policy (per minute, the bucket holding a minute's
// worth), plus one per source address across accounts, so that spraying
// account ids does not escape the per-address limit. Buckets live in the
// process: each instance limits what it serves (docs/api-notes.md). They
// pace clients, so they run on the wall clock, not App.Now.
type RateLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
}

type bucket struct {
	lim      *rate.Limiter
	perMin   int
	lastSeen time.Time
}

// PerAddressAcrossAccounts is the per-address limit over every account,
// per minute.
const PerAddressAcrossAccounts = 600

// bucketIdle is how long an unused bucket is kept (a full one is the same
// as a new one after a minute).
const bucketIdle = 5 * time.Minute

// allow takes one token from key's bucket of perMin per minute; the wait
// until the next token when empty.
func (l *RateLimiter) allow(key string, perMin int, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	if l.calls++; l.calls%1024 == 0 {
		for k, b := range l.buckets {
			if now.Sub(b.lastSeen) > bucketIdle {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil || b.perMin != perMin {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(float64(perMin)/60), perMin), perMin: perMin}
		l.buckets[key] = b
	}
	b.lastSeen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// ErrRateLimited is the 429 of a refused request; retry_after in seconds
// (the port also sets Retry-After).
func ErrRateLimited(wait time.Duration, what string) *problem.Problem {
	secs := int((wait + time.Second - 1) / time.Second)
	return problem.New(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		"too many "+what+"; retry after the number of seconds in retry_after").With("retry_after", secs)
}

// Throttle counts one request of addr against accountID's limits (the
// account's policy; the default for an account that does not exist), and
// refuses it with 429 when a bucket is empty.
func (c *Credentials) Throttle(ctx context.Context, accountID, addr string) error {
	if c.Limits == nil {
		return nil
	}
	now := time.Now()
	if ok, wait := c.Limits.allow("addr\x00"+addr, PerAddressAcrossAccounts, now); !ok {
		return ErrRateLimited(wait, "requests from this address")
	}
	if accountID == "" {
		return nil
	}
	pol, err := c.Security.Policy(ctx, c.DB, accountID)
	if err != nil {
		return err
	}
	if ok, wait := c.Limits.allow("acc-addr\x00"+accountID+"\x00"+addr, pol.RatePerAddress, now); !ok {
		return ErrRateLimited(wait, "requests from this address for this account")
	}
	if ok, wait := c.Limits.allow("acc\x00"+accountID, pol.RatePerAccount, now); !ok {
		return ErrRateLimited(wait, "requests for this account")
	}
	return nil
}
