// Package auth authenticates bearer tokens for every service's HTTP routes
// (api.md, "Auth"): the operator token is checked locally in constant time;
// account API tokens and technician sessions belong to identity, which each
// service asks over NATS request-reply (rpc.Authenticate) with the token's
// SHA-256 — the secret never leaves the service that received it. With
// StartCache, verified tokens are kept in the process (cache.go) and
// dropped when identity revokes them, before the revoking request answers,
// so a revoked token stops working at once (I-7).
package auth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/rpc"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// Principal is who a request authenticated as.
type Principal struct {
	Operator     bool
	AccountID    string
	TokenID      string
	TechnicianID string
	Scopes       []string
	// EnrollmentOnly: a session that serves the second-factor enrolment
	// routes only (L-3), which Require(EnrollmentScope) guards.
	EnrollmentOnly bool
}

// EnrollmentScope marks the routes a technician's session reaches while it
// must enrol a second factor first (L-3); every principal passes it.
const EnrollmentScope = "second-factor:enroll"

// Can reports whether p holds scope; the operator holds every scope.
func (p Principal) Can(scope string) bool { return p.Operator || slices.Contains(p.Scopes, scope) }

type ctxKey struct{}

// From returns the request's principal.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Authenticator resolves bearer tokens.
type Authenticator struct {
	op    *httpx.Operator
	nc    *nats.Conn
	cache *cache // nil: every request asks identity
	stop  func() // ends the cache's consumer
}

// New returns an authenticator asking identity through nc. With a nil nc
// only the operator token is accepted (tests of one service alone).
func New(op *httpx.Operator, nc *nats.Conn) *Authenticator { return &Authenticator{op: op, nc: nc} }

// StartCache makes a keep the tokens identity verified (cache.go) until
// Close; it returns once the invalidation consumer runs, or, when it could
// not be created, at once with a cache that keeps nothing until it is
// (logged; every request asks identity meanwhile). Call it before serving
// requests.
func (a *Authenticator) StartCache(ctx context.Context, cfg CacheConfig) error {
	if a.nc == nil || a.cache != nil {
		return nil
	}
	c := newCache(cfg)
	iv, err := newInvalidator(c, a.nc)
	if err != nil {
		return err
	}
	// A start that cannot create the consumer soon (JetStream electing
	// a leader, a NATS user without the permission) goes on without it.
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	cc, err := iv.start(sctx)
	cancel()
	if err != nil {
		c.cfg.Log.Warn("auth cache: no invalidation consumer yet, every request asks identity", "err", err)
		cc = nil
	}
	a.cache = c
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		iv.run(runCtx, cc)
	}()
	a.stop = func() {
		cancel()
		<-done
	}
	return nil
}

// Close stops the cache's consumer (before its NATS connection closes).
func (a *Authenticator) Close() {
	if a.stop != nil {
		a.stop()
	}
}

// Resolve returns the principal of token, or ok=false for an unknown,
// expired or revoked token.
func (a *Authenticator) Resolve(ctx context.Context, token string) (p Principal, ok bool, err error) {
	if a.op.Matches(token) {
		return Principal{Operator: true}, true, nil
	}
	if a.nc == nil {
		return Principal{}, false, nil
	}
	hash := httpx.HashToken(token)
	if a.cache == nil {
		p, _, ok, err := a.ask(ctx, hash)
		return p, ok, err
	}
	return a.cache.resolve(ctx, [sha256.Size]byte(hash), func(ctx context.Context) (Principal, time.Time, bool, error) {
		return a.ask(ctx, hash)
	})
}

// ask asks identity who the token with this SHA-256 belongs to, and until
// when the answer may be kept (zero: not at all).
func (a *Authenticator) ask(ctx context.Context, hash []byte) (p Principal, until time.Time, ok bool, err error) {
	var rep identityv1.AuthenticateReply
	if err := rpc.Call(ctx, a.nc, rpc.Authenticate, &identityv1.AuthenticateRequest{TokenHash: hash}, &rep); err != nil {
		return Principal{}, time.Time{}, false, err
	}
	if !rep.GetValid() {
		return Principal{}, time.Time{}, false, nil
	}
	if rep.GetCacheUntil() != nil {
		until = rep.GetCacheUntil().AsTime()
	}
	return Principal{AccountID: rep.GetAccountId(), TokenID: rep.GetTokenId(), TechnicianID: rep.GetTechnicianId(), Scopes: rep.GetScopes(),
		EnrollmentOnly: rep.GetEnrollmentOnly()}, until, true, nil
}

// Require lets through requests whose token holds scope; on routes with an
// {acc} parameter the token must belong to that account (the operator's
// may act on every account). A token of another account gets 404, as if
// the account did not exist (L-7). The request's actor becomes the token's
// holder.
func (a *Authenticator) Require(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := httpx.BearerToken(r)
			if tok == "" {
				problem.Write(w, problem.Unauthorized())
				return
			}
			p, ok, err := a.Resolve(r.Context(), tok)
			if err != nil {
				problem.Write(w, problem.New(http.StatusServiceUnavailable, "auth-unavailable", "Authentication unavailable",
					"the identity service did not answer; retry"))
				return
			}
			if !ok {
				problem.Write(w, problem.New(http.StatusUnauthorized, "invalid-token", "Invalid token", "the bearer token is unknown, expired or revoked"))
				return
			}
			if acc := chi.URLParam(r, "acc"); acc != "" && !p.Operator && acc != p.AccountID {
				problem.Write(w, problem.NotFound("account "+acc))
				return
			}
			if p.EnrollmentOnly && scope != EnrollmentScope {
				problem.Write(w, problem.New(http.StatusForbidden, "second-factor-enrollment-required", "Second factor required",
					"the account requires a second factor: enrol one (POST /v1/auth/totp/enroll, then /confirm) before using this session elsewhere"))
				return
			}
			if scope != "" && scope != EnrollmentScope && !p.Can(scope) {
				problem.Write(w, problem.Forbidden("this token lacks the "+scope+" scope"))
				return
			}
			actor := &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_OPERATOR, SourceAddress: httpx.ClientIP(r)}
			switch {
			case p.TechnicianID != "":
				actor.Type, actor.Id = commonv1.ActorType_ACTOR_TYPE_TECHNICIAN, p.TechnicianID
			case !p.Operator:
				actor.Type, actor.Id = commonv1.ActorType_ACTOR_TYPE_API_TOKEN, p.TokenID
			}
			ctx := context.WithValue(r.Context(), ctxKey{}, p)
			ctx = eventbus.WithActor(ctx, actor)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// RequireOperator lets only the operator token through.
func (a *Authenticator) RequireOperator() func(http.Handler) http.Handler {
	return httpx.RequireOperator(a.op)
}
