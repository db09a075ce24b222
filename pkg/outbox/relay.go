package outbox

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"roster.dev/pkg/store"
)

// ackTimeout bounds the wait for one publish's acknowledgement; a publish
// not acknowledged in time fails, and its row is sent again.
const ackTimeout = 5 * time.Second

// Relay moves an outbox's rows to JetStream. Run it with Run.
//
// It publishes with nats.go's jetstream package (PublishMsgAsync): the
// maintained API, whose futures report each publish's acknowledgement or
// error, and whose async timeout bounds the wait. The legacy
// JetStreamContext would do the same; watermill-nats's publisher waits
// for each acknowledgement before sending the next message.
type Relay struct {
	o       *Outbox
	js      jetstream.JetStream
	sent    func(*nats.Msg)
	running chan struct{}
}

// Relay returns the relay that publishes o's rows on nc. sent, when not
// nil, is called with each message JetStream acknowledged.
func (o *Outbox) Relay(nc *nats.Conn, sent func(*nats.Msg)) (*Relay, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: %w", err)
	}
	if sent == nil {
		sent = func(*nats.Msg) {}
	}
	return &Relay{o: o, js: js, sent: sent, running: make(chan struct{})}, nil
}

// Running is closed once Run has started.
func (r *Relay) Running() <-chan struct{} { return r.running }

// Run relays until ctx ends: at once, on every Kick, and every
// PollInterval. A pass that fails (the stream or the database
// unavailable) is retried after a delay that doubles from 100 ms up to
// 5 s, kicks or not.
func (r *Relay) Run(ctx context.Context) error {
	close(r.running)
	poll := r.o.PollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	failures := 0
	for {
		kick := r.o.kick
		wait := poll
		if err := r.drain(ctx); err != nil && ctx.Err() == nil {
			failures++
			wait = retryDelay(failures)
			kick = nil
			r.o.log.Warn("outbox relay failed; retrying", "err", err, "failures", failures, "retry_in", wait)
		} else {
			failures = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-timer.C:
		}
	}
}

func retryDelay(failures int) time.Duration {
	const ceiling = 5 * time.Second
	d := 100 * time.Millisecond
	for i := 1; i < failures && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// drain relays batches until a batch comes back short (the outbox was
// empty as of its read), a batch fails or ctx ends.
func (r *Relay) drain(ctx context.Context) error {
	size := r.o.BatchSize
	if size <= 0 {
		size = 512
	}
	for ctx.Err() == nil {
		n, err := r.batch(ctx, size)
		if err != nil || n < size {
			return err
		}
	}
	return nil
}

// row is an outbox row read by the relay.
type row struct {
	offset  int64
	payload []byte
}

// batch relays up to size rows and reports how many it read.
//
// On PostgreSQL, replicas share the table: the rows are read FOR UPDATE in
// a transaction held until their deletion, so a second relay waits and
// then reads what is left instead of publishing the same rows (as
// watermill-sql's queue subscriber did). On SQLite the rows are read
// without a lock: the one write lock of the database would stop every
// writer for a publish round trip. A second relay of the same file (tests
// run replicas so) may then publish a row twice; the stream drops the copy.
//
// A shutdown (ctx ending) does not cut a batch short: its publishes end in
// acknowledgements or errors within ackTimeout, and the acknowledged rows
// are deleted, so a stopped relay leaves no copies to send twice.
func (r *Relay) batch(ctx context.Context, size int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ctx = context.WithoutCancel(ctx)
	db := r.o.db
	var q querier = db
	var tx *stdsql.Tx
	selectQuery := fmt.Sprintf(`SELECT "offset", payload FROM %s WHERE acked = 0 ORDER BY "offset" LIMIT %d`, table, size)
	if db.Dialect == store.Postgres {
		var err error
		if tx, err = db.BeginTx(ctx, nil); err != nil {
			return 0, fmt.Errorf("outbox: begin: %w", err)
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
		q = tx
		selectQuery = fmt.Sprintf(`SELECT "offset", payload FROM %s WHERE NOT acked ORDER BY "offset" LIMIT %d FOR UPDATE`, table, size)
	}
	rows, err := readRows(ctx, q, selectQuery)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	done, pubErr := r.publish(rows)
	if r.o.afterAck != nil {
		r.o.afterAck()
	}
	if len(done) > 0 {
		if err := deleteRows(ctx, db.Dialect, q, done); err != nil {
			return 0, errors.Join(pubErr, err)
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return 0, errors.Join(pubErr, fmt.Errorf("outbox: commit: %w", err))
		}
	}
	return len(rows), pubErr
}

// querier is the database or the transaction a pass runs in.
type querier interface {
	QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	ExecContext(context.Context, string, ...any) (stdsql.Result, error)
}

func readRows(ctx context.Context, q querier, query string) ([]row, error) {
	rs, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.offset, &r.payload); err != nil {
			return nil, fmt.Errorf("outbox: read: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	return out, nil
}

// publish sends rows in order without waiting between them, then waits
// for every acknowledgement. It returns the offsets of the rows that may
// go: those JetStream acknowledged, and those that can never be sent (not
// an envelope: logged, as watermill's forwarder did). A failure stops
// the sending; the rows not acknowledged stay for the next pass.
func (r *Relay) publish(rows []row) (done []int64, err error) {
	type pending struct {
		offset int64
		ack    jetstream.PubAckFuture
	}
	inFlight := make([]pending, 0, len(rows))
	done = make([]int64, 0, len(rows))
	for _, row := range rows {
		var e envelope
		if jerr := json.Unmarshal(row.payload, &e); jerr != nil || e.DestinationTopic == "" {
			r.o.log.Error("outbox row is not a message envelope; dropped", "offset", row.offset, "err", jerr)
			done = append(done, row.offset)
			continue
		}
		f, perr := r.js.PublishMsgAsync(natsMsg(e.DestinationTopic, e.UUID, e.Payload, e.Metadata))
		if perr != nil {
			err = fmt.Errorf("outbox: publish %s: %w", e.UUID, perr)
			break
		}
		inFlight = append(inFlight, pending{row.offset, f})
	}
	for _, p := range inFlight {
		select {
		case <-p.ack.Ok():
			done = append(done, p.offset)
			r.sent(p.ack.Msg())
		case perr := <-p.ack.Err():
			if err == nil {
				err = fmt.Errorf("outbox: publish %s: %w", p.ack.Msg().Header.Get(nats.MsgIdHdr), perr)
			}
		}
	}
	return done, err
}

// deleteRows deletes the rows at offsets: by list, never by range, since
// a transaction that took a lower offset may commit after a higher one.
func deleteRows(ctx context.Context, dialect store.Dialect, q querier, offsets []int64) error {
	var err error
	if dialect == store.Postgres {
		_, err = q.ExecContext(ctx, `DELETE FROM `+table+` WHERE "offset" = ANY($1)`, offsets)
	} else {
		list, _ := json.Marshal(offsets)
		_, err = q.ExecContext(ctx, `DELETE FROM `+table+` WHERE "offset" IN (SELECT value FROM json_each($1))`, string(list))
	}
	if err != nil {
		return fmt.Errorf("outbox: delete sent rows: %w", err)
	}
	return nil
}
