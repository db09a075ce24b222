package eventbus

import (
	"context"
	"sync"
)

// emitted is an event a committed transaction wrote to its outbox.
type emitted struct {
	ID   string `json:"id"`
	Type string `json:"type"`
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
