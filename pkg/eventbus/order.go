package eventbus

import "time"

// Per-technician order within a consumer (issue 18, docs/reliability.md).
// The stream holds one technician's events in the order identity committed
// them, and a consumer applies a batch in stream order. What could reorder
// them is a failure: the failed event is redelivered after a backoff while
// the events behind it go on. So a failed event holds back the later
// events of its technician — only those — until it is applied or
// dead-lettered: they are handed back (Nak) to come again just after it.
// Each held event still gets its last delivery tried, so holding never
// dead-letters an event untried. The hold lives in the consumer's memory and
// ends on its own soon after the failed event was due again (it may have gone
// to another replica, or the process restarted); across replicas and
// crashes the handlers' own per-technician guard is what keeps the order
// (docs/architecture.md "Per-account ordering").
type order struct {
	blocked map[string]*blocker // by orderKey
}

// blocker is the failed event that holds back its technician's later
// events: its stream sequence, when it is due again, and whether the batch
// in hand carries it (then the events behind it in the batch go on).
type blocker struct {
	seq     uint64
	version uint64
	due     time.Time
	expiry  time.Time
	inHand  bool
}

// before reports whether the blocker comes before dv in its technician's
// order: by their versions when both carry one (the stream's order can
// differ: a redelivery, or events published out of order), else by stream
// sequence. An event that comes before the blocker is never held: the
// blocker may be waiting for it.
func (b *blocker) before(dv *delivery) bool {
	if v := dv.d.meta.GetAggregateVersion(); v != 0 && b.version != 0 {
		return b.version < v
	}
	return b.seq < dv.seq
}

// heldMargin is how long after its blocker a held event comes again.
const heldMargin = 20 * time.Millisecond

func newOrder() *order { return &order{blocked: map[string]*blocker{}} }

// orderKey is the technician an event is about, or "" for an event of no
// technician, which is not held.
func orderKey(d decoded) string { return aggregateOf(d.ev) }

// block records that dv failed and comes again after delay.
func (o *order) block(dv *delivery, delay time.Duration) {
	if dv.key == "" {
		return
	}
	now := time.Now()
	if len(o.blocked) >= 1024 { // forget the holds that lapsed
		for k, b := range o.blocked {
			if now.After(b.expiry) {
				delete(o.blocked, k)
			}
		}
	}
	due := now.Add(delay)
	b := o.blocked[dv.key]
	if b != nil && now.Before(b.expiry) && b.before(dv) {
		// An earlier event of the technician still holds it back.
		if due.After(b.due) {
			b.due = due
		}
		b.inHand = false
		b.expiry = b.due.Add(max(time.Second, delay))
		return
	}
	o.blocked[dv.key] = &blocker{seq: dv.seq, version: dv.d.meta.GetAggregateVersion(), due: due,
		expiry: due.Add(max(time.Second, delay))}
}

// done records that dv was applied or dead-lettered.
func (o *order) done(dv *delivery) {
	if b := o.blocked[dv.key]; b != nil && b.seq == dv.seq {
		delete(o.blocked, dv.key)
	}
}

// wait reports whether dv must wait behind its technician's failed event,
// and for how long. An event on its last delivery never waits.
func (o *order) wait(dv *delivery, maxDeliver uint64) (time.Duration, bool) {
	b := o.blocked[dv.key]
	if dv.key == "" || b == nil {
		return 0, false
	}
	now := time.Now()
	switch {
	case now.After(b.expiry):
		delete(o.blocked, dv.key)
		return 0, false
	case dv.seq == b.seq:
		b.inHand = true
		return 0, false
	case !b.before(dv), b.inHand, dv.n >= maxDeliver:
		return 0, false
	}
	return max(b.due.Sub(now), 0) + heldMargin, true
}
