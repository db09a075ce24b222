// Package httpx holds the HTTP plumbing shared by the services' ports:
// JSON in and out, authentication of the operator token, request
// correlation, and Idempotency-Key handling.
package httpx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
)

// MaxBody caps request bodies.
const MaxBody = 1 << 20

// Decode reads a JSON body into v, refusing unknown fields, with a problem
// that says what was wrong.
func Decode(r *http.Request, v any) *problem.Problem {
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body is empty; send a JSON object")
		case errors.As(err, &syn):
			return problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", fmt.Sprintf("invalid JSON at byte %d", syn.Offset))
		case errors.As(err, &typ):
			return problem.Invalid(problem.FieldError{Field: typ.Field, Detail: "must be a " + typ.Type.String()})
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return problem.Invalid(problem.FieldError{Field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Detail: "unknown field"})
		default:
			return problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", err.Error())
		}
	}
	return nil
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error writes err: a *problem.Problem as it is, anything else as a logged
// 500 that reveals nothing.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var p *problem.Problem
	if errors.As(err, &p) {
		problem.Write(w, p)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		// Another service did not answer in time (a request-reply): the
		// client can retry, with the same Idempotency-Key.
		log.WarnContext(r.Context(), "request timed out", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, ErrUnavailable())
		return
	}
	log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	problem.Write(w, problem.Internal())
}

// ErrUnavailable is the 503 for a request that needed another service
// which did not answer in time.
func ErrUnavailable() *problem.Problem {
	return problem.New(http.StatusServiceUnavailable, "service-unavailable", "Service unavailable",
		"a service this request needs did not answer in time; retry the request with the same Idempotency-Key")
}

// HashToken is how tokens are stored and compared: SHA-256 of the secret.
// Tokens are 256-bit random values, so a fast hash is enough; it is never
// the secret itself that is stored or logged.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Operator checks the operator token in constant time.
type Operator struct{ hash []byte }

// NewOperator keeps only the hash of the operator token.
func NewOperator(token string) *Operator { return &Operator{hash: HashToken(token)} }

// Matches reports whether token is the operator token.
func (o *Operator) Matches(token string) bool {
	return subtle.ConstantTimeCompare(HashToken(token), o.hash) == 1
}

// BearerToken returns the bearer token of r, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// RequireOperator lets only the operator token through; the request's actor
// becomes the operator.
func RequireOperator(op *Operator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := BearerToken(r)
			if tok == "" {
				problem.Write(w, problem.Unauthorized())
				return
			}
			if !op.Matches(tok) {
				problem.Write(w, problem.New(http.StatusUnauthorized, "invalid-token", "Invalid token", "the bearer token is not valid"))
				return
			}
			ctx := eventbus.WithActor(r.Context(), &commonv1.Actor{
				Type:          commonv1.ActorType_ACTOR_TYPE_OPERATOR,
				SourceAddress: ClientIP(r),
			})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// ClientIP is the request's source address.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Correlate gives every request a correlation id (from X-Request-Id when the
// client sent a sane one), returned in X-Request-Id and carried by every
// event the request causes.
func Correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 128 || strings.ContainsAny(id, " \r\n\t") {
			id = eventbus.NewID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(eventbus.WithCorrelation(r.Context(), id)))
	})
}
