package eventbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// BenchmarkOutboxToInbox measures the whole path of an event on the
// embedded defaults (SQLite, embedded NATS): emitted in a producer's
// transaction (100 per transaction), relayed from its outbox to JetStream,
// consumed and applied once through another service's inbox.
//
//	go test -run '^$' -bench OutboxToInbox -benchtime 5000x roster.dev/pkg/eventbus
func BenchmarkOutboxToInbox(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchOutboxToInbox(b, batch) })
	}
}

func benchOutboxToInbox(b *testing.B, batch int) {
	w := svctest.NewNATS(b)
	prodDB := svctest.OpenDB(b, "", w.Dir, "identity")
	consDB := svctest.OpenDB(b, "", w.Dir, "seatbilling")
	prod := svctest.StartBus(b, eventbus.Config{Service: "identity", DB: prodDB, Connect: w.Connect}, nil)
	var applied atomic.Int64
	svctest.StartBus(b, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: batch}, func(bus *eventbus.Bus) {
		eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
			applied.Add(1)
			return nil
		})
	})
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		n := min(100, b.N-i)
		err := prodDB.InTx(context.Background(), func(tx *sql.Tx) error {
			for j := range n {
				ev := &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%d", i+j)}
				if err := prod.Emit(context.Background(), tx, "acc_bench", ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	svctest.Eventually(b, "every event applied", func() bool { return applied.Load() >= int64(b.N) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLoneEvent measures the latency of one event on its own (ns/op),
// when nothing else is queued: from the commit of the producer's
// transaction to the commit of the consumer's (commit-to-applied: outbox
// relay and consumer), and from its publication on the stream to the
// consumer's commit (stream-to-applied: the consumer alone).
//
//	go test -run '^$' -bench LoneEvent -benchtime 500x roster.dev/pkg/eventbus
func BenchmarkLoneEvent(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("commit-to-applied/batch=%d", batch), func(b *testing.B) { benchLoneEvent(b, batch, false) })
		b.Run(fmt.Sprintf("stream-to-applied/batch=%d", batch), func(b *testing.B) { benchLoneEvent(b, batch, true) })
	}
}

func benchLoneEvent(b *testing.B, batch int, direct bool) {
	w := svctest.NewNATS(b)
	prodDB := svctest.OpenDB(b, "", w.Dir, "identity")
	consDB := svctest.OpenDB(b, "", w.Dir, "seatbilling")
	prod := svctest.StartBus(b, eventbus.Config{Service: "identity", DB: prodDB, Connect: w.Connect}, nil)
	applied := make(chan struct{}, 1)
	svctest.StartBus(b, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: batch}, func(bus *eventbus.Bus) {
		eventbus.SetAfterCommit(bus, func(string) { applied <- struct{}{} })
		eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error { return nil })
	})
	b.ResetTimer()
	for i := range b.N {
		ev := &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%d", i)}
		if direct {
			publish(b, w, ev)
		} else {
			err := prodDB.InTx(context.Background(), func(tx *sql.Tx) error {
				return prod.Emit(context.Background(), tx, "acc_bench", ev)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		<-applied
	}
}

// publish puts ev on its stream as the outbox relay does.
func publish(b *testing.B, w *svctest.World, ev eventbus.Event) {
	b.Helper()
	meta := eventbus.Stamp(context.Background(), "acc_bench", ev)
	data, err := proto.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	name := ev.ProtoReflect().Descriptor().FullName()
	m := nats.NewMsg(eventbus.Subject(name, "acc_bench"))
	m.Data = data
	m.Header.Set(eventbus.HeaderID, meta.GetEventId())
	m.Header.Set(eventbus.HeaderType, string(name))
	m.Header.Set(nats.MsgIdHdr, meta.GetEventId())
	if _, err := w.JS.PublishMsg(m); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStreamToInbox measures the consumer alone: b.N events already
// on the stream (published as the relay does), applied once through the
// consumer's SQLite inbox from the moment its bus starts.
//
//	go test -run '^$' -bench StreamToInbox -benchtime 5000x roster.dev/pkg/eventbus
func BenchmarkStreamToInbox(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			w := svctest.NewNATS(b)
			for i := range b.N {
				publish(b, w, &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%d", i)})
			}
			consDB := svctest.OpenDB(b, "", w.Dir, "seatbilling")
			var applied atomic.Int64
			b.ResetTimer()
			svctest.StartBus(b, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: batch}, func(bus *eventbus.Bus) {
				eventbus.On(bus, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianCreated) error {
					applied.Add(1)
					return nil
				})
			})
			svctest.Eventually(b, "every event applied", func() bool { return applied.Load() >= int64(b.N) })
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
