package eventbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"

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
