package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"roster.dev/pkg/outbox"
	"roster.dev/pkg/svc/svctest"
)

// BenchmarkAdd measures Outbox.Add, on every write's path: one message
// written into a SQLite outbox inside a transaction that holds 100 of
// them (the commit included, an fsync per 100).
//
//	go test -run '^$' -bench BenchmarkAdd -benchtime 20000x roster.dev/pkg/outbox
func BenchmarkAdd(b *testing.B) {
	db := svctest.OpenDB(b, "", b.TempDir(), "identity")
	o := outbox.New(db, nil)
	ctx := context.Background()
	if err := o.Init(ctx); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 160) // a TechnicianCreated is about this size
	md := message.Metadata{"ce-specversion": "1.0", "ce-type": "roster.identity.v1.TechnicianCreated", "ce-source": "roster/identity",
		"ce-time": "2026-12-07T14:00:00.123456Z", "ce-subject": "acc_bench", "content-type": "application/protobuf"}
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			for j := range min(100, b.N-i) {
				m := message.NewMessage(fmt.Sprintf("0193a000-0000-7000-8000-%012d", i+j), payload)
				m.Metadata = md
				if err := o.Add(tx, "roster.events.identity.acc_bench.technician_created", m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
