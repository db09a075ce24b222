package app

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// TokenStore keeps what the API-token routes need beyond minting.
type TokenStore interface {
	TouchToken(ctx context.Context, id string, now, since time.Time) error
	ListTokens(ctx context.Context, q Querier, accountID string) ([]Token, error)
	RevokeToken(ctx context.Context, tx *sql.Tx, accountID, id string, now time.Time) (bool, error)
}

// tokenTouchEvery bounds the writes of token use: last_used_at moves at
// most once a minute per token.
const tokenTouchEvery = time.Minute

// Tokens is the API-token use cases beyond minting (app/sites.go).
type Tokens struct {
	*App
	Store TokenStore
}

// Used records a use of t at now (App.TokenUsed), at most once a minute.
func (tk *Tokens) Used(ctx context.Context, t Token, now time.Time) error {
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < tokenTouchEvery {
		return nil
	}
	return tk.Store.TouchToken(ctx, t.ID, now, now.Add(-tokenTouchEvery))
}

// List returns the account's live tokens (never their secrets).
func (tk *Tokens) List(ctx context.Context, accountID string) ([]Token, error) {
	if _, err := tk.Account(ctx, accountID); err != nil {
		return nil, err
	}
	ts, err := tk.Store.ListTokens(ctx, tk.DB, accountID)
	if ts == nil {
		ts = []Token{}
	}
	return ts, err
}

// Revoke revokes a token of the account at once (the next request with it
// is 401) and emits ApiTokenRevoked. Least privilege, as for minting: the
// caller must hold every scope of the token it revokes (403 otherwise).
func (tk *Tokens) Revoke(ctx context.Context, accountID, id string, callerCan func(string) bool) error {
	ts, err := tk.List(ctx, accountID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ts, func(t Token) bool { return t.ID == id })
	if i < 0 {
		return problem.NotFound("token " + id)
	}
	for _, s := range ts[i].Scopes {
		if !callerCan(s) {
			return problem.Forbidden("this token lacks the " + s + " scope of the token it would revoke")
		}
	}
	now := tk.Now().UTC().Truncate(time.Microsecond)
	return tk.DB.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := tk.Store.RevokeToken(ctx, tx, accountID, id, now)
		if err != nil {
			return err
		}
		if !ok {
			return problem.NotFound("token " + id)
		}
		return tk.Bus.Emit(ctx, tx, accountID, &identityv1.ApiTokenRevoked{
			Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}, TokenId: id})
	})
}
