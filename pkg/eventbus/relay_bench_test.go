package eventbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// BenchmarkEmitToStream measures the producer half of the event path
// alone: events emitted in a producer's transaction (100 per
// transaction), relayed from its outbox (SQLite, PostgreSQL) to JetStream; an iteration
// is done when the stream has stored its event (seen on a core NATS
// subscription of the stream's subjects, so no polling adds to it).
//
//	go test -run '^$' -bench EmitToStream -benchtime 5000x roster.dev/pkg/eventbus
func BenchmarkEmitToStream(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dbURL := ""
			if backend == "postgres" {
				dbURL = pgtest.DSN(b)
			}
			benchEmitToStream(b, dbURL)
		})
	}
}

func benchEmitToStream(b *testing.B, dbURL string) {
	w := svctest.NewNATS(b)
	prod := svctest.StartProducer(b, w, dbURL, "identity")
	seen := subscribeEvents(b, w.NC, "identity")
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		n := min(100, b.N-i)
		err := prod.DB.InTx(context.Background(), func(tx *sql.Tx) error {
			for j := range n {
				ev := &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%d", i+j)}
				if err := prod.Bus.Emit(context.Background(), tx, "acc_bench", ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		waitSeen(b, seen)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEmitToStreamLatency measures how long one event, alone in its
// transaction, takes from the commit to the stream: the relay's wake-up
// plus one publish round trip. Each iteration waits for its event before
// the next commit; ns/op includes the commit, µs-commit-to-stream/op is
// the wait after it.
//
//	go test -run '^$' -bench EmitToStreamLatency -benchtime 500x roster.dev/pkg/eventbus
func BenchmarkEmitToStreamLatency(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dbURL := ""
			if backend == "postgres" {
				dbURL = pgtest.DSN(b)
			}
			benchEmitToStreamLatency(b, dbURL)
		})
	}
}

func benchEmitToStreamLatency(b *testing.B, dbURL string) {
	w := svctest.NewNATS(b)
	prod := svctest.StartProducer(b, w, dbURL, "identity")
	seen := subscribeEvents(b, w.NC, "identity")
	var relayed time.Duration
	b.ResetTimer()
	for i := range b.N {
		prod.Emit(b, "acc_bench", &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%d", i)})
		committed := time.Now()
		waitSeen(b, seen)
		relayed += time.Since(committed)
	}
	b.ReportMetric(float64(relayed.Microseconds())/float64(b.N), "µs-commit-to-stream/op")
}

// subscribeEvents returns a channel that receives every event stored on
// service's stream: the stream's own acknowledgement subject is not
// observable, so the test listens on the subjects (a core subscription
// sees what the server routes to the stream, after the stream stored it
// or dropped it as a duplicate).
func subscribeEvents(t testing.TB, nc *nats.Conn, service string) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 1<<16)
	sub, err := nc.ChanSubscribe(eventbus.EventSubjects(service), ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func waitSeen(t testing.TB, ch <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no event reached the stream in 20 s")
		return nil
	}
}
