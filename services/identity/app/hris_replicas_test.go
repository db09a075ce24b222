package app_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/identity/adapters"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
	"roster.dev/services/identity/migrations"
)

// Two identity replicas may read the same pending HRIS delivery and both
// process it (H-1, issue 13). Recording an outcome claims the delivery
// while its status is still the one read: the first replica's "applied"
// stands, the second's outcome — "skipped: an event of this employee that
// occurred later was applied already", decided after the first hire — is
// refused, even when both record at the same moment (found by
// TestClusterFaults).
func TestDeliveryOutcomeRecordedOnceAcrossReplicas(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		dir := t.TempDir()
		var dbs []*store.DB
		for range 2 {
			db, err := store.Open(ctx, store.Config{URL: dbURL, DataDir: dir, Service: "identity"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(ctx, migrations.FS); err != nil {
				t.Fatal(err)
			}
			dbs = append(dbs, db)
		}
		at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		read := app.Delivery{ID: "dlv_1", AccountID: "acc_1", Source: "generic", WebhookID: "msg_1", Type: domain.EmployeeHired,
			EmployeeID: "E1", OccurredAt: at, Status: domain.DeliveryPending, ReceivedAt: at, UpdatedAt: at}
		st := adapters.Store{DB: dbs[0]}
		if err := dbs[0].InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, profile, plan, billing_period, seats, price_per_seat, currency,
				billing_anchor, created_at) VALUES ('acc_1', 'Acme', 'roster', 'pro', 'monthly', 3, 0, 'usd', '2026-11-01', $1)`, store.Time(at)); err != nil {
				return err
			}
			return st.InsertDelivery(ctx, tx, read)
		}); err != nil {
			t.Fatal(err)
		}
		// Replica 0 claims and, while its transaction is open, replica 1
		// tries: it waits for the lock, then finds the status changed.
		claimed := make(chan struct{})
		second := make(chan bool, 1)
		go func() {
			<-claimed
			var ok bool
			err := dbs[1].InTx(ctx, func(tx *sql.Tx) error {
				var err error
				ok, err = adapters.Store{DB: dbs[1]}.ClaimDelivery(ctx, tx, read.AccountID, read.ID, read.Status)
				return err
			})
			if err != nil {
				t.Error(err)
			}
			second <- ok
		}()
		err := dbs[0].InTx(ctx, func(tx *sql.Tx) error {
			ok, err := st.ClaimDelivery(ctx, tx, read.AccountID, read.ID, read.Status)
			if err != nil || !ok {
				t.Fatalf("the first claim: %v %v", ok, err)
			}
			close(claimed)
			time.Sleep(200 * time.Millisecond) // the other replica waits meanwhile
			applied := read
			applied.Status, applied.TechnicianID, applied.UpdatedAt = domain.DeliveryApplied, "tech_1", at.Add(time.Second)
			return st.SaveDeliveryOutcome(ctx, tx, applied)
		})
		if err != nil {
			t.Fatal(err)
		}
		if <-second {
			t.Fatal("the second replica claimed a delivery the first had recorded")
		}
		got, err := st.Delivery(ctx, dbs[0], read.AccountID, read.ID)
		if err != nil || got.Status != domain.DeliveryApplied || got.TechnicianID != "tech_1" {
			t.Fatalf("delivery after both: %+v %v", got, err)
		}
	})
}
