package eventbus_test

import (
	"context"
	"database/sql"
	"testing"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
)

// The producer numbers each technician's events in the transactions that
// emit them; events about no technician carry no version.
func TestEmitVersionsEachTechniciansEvents(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	a1, b1 := technician("a@example.com"), technician("b@example.com")
	a2 := &identityv1.TechnicianDisabled{TechnicianId: a1.GetTechnicianId()}
	a3 := &identityv1.TechnicianEnabled{TechnicianId: a1.GetTechnicianId()}
	acc := &identityv1.AccountCreated{}
	prod.Emit(t, "acc_test", a1, b1, acc)
	prod.Emit(t, "acc_test", a2)
	prod.Emit(t, "acc_test", a3)
	// Emitted again (as by a retried transaction): it keeps its version,
	// and the next one follows it.
	prod.Emit(t, "acc_test", a3)
	a4 := &identityv1.TechnicianDisabled{TechnicianId: a1.GetTechnicianId()}
	prod.Emit(t, "acc_test", a4)
	for _, c := range []struct {
		name string
		ev   eventbus.Event
		want uint64
	}{{"a created", a1, 1}, {"b created", b1, 1}, {"a disabled", a2, 2}, {"a enabled", a3, 3}, {"a disabled again", a4, 4}, {"account", acc, 0}} {
		if got := c.ev.GetMeta().GetAggregateVersion(); got != c.want {
			t.Errorf("%s: version %d, want %d", c.name, got, c.want)
		}
	}
}

// A disable and the enable that followed it, delivered in the wrong order
// (as after a crash or a failed delivery), leave the technician enabled:
// the OnLatest handler ignores the older disable. On both databases.
func TestOnLatestIgnoresAnOlderEventDeliveredLate(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		prod := svctest.StartProducer(t, w, dbURL, "identity")
		consDB := openDB(t, dbURL, w.Dir, "seatbilling")
		if _, err := consDB.Exec(`CREATE TABLE IF NOT EXISTS status (technician_id TEXT PRIMARY KEY, status TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		set := func(ctx context.Context, tx *sql.Tx, id, status string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO status (technician_id, status) VALUES ($1, $2)
				ON CONFLICT (technician_id) DO UPDATE SET status = $2`, id, status)
			return err
		}
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: consDB, Connect: w.Connect, Batch: 16}, func(b *eventbus.Bus) {
			eventbus.OnLatest(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianDisabled) error {
				return set(ctx, tx, ev.GetTechnicianId(), "disabled")
			})
			eventbus.OnLatest(b, func(ctx context.Context, tx *sql.Tx, ev *identityv1.TechnicianEnabled) error {
				return set(ctx, tx, ev.GetTechnicianId(), "enabled")
			})
		})
		// identity disabled (version 2), then enabled (version 3); the
		// enable reaches the stream first.
		disabled := &identityv1.TechnicianDisabled{TechnicianId: "tech_1"}
		enabled := &identityv1.TechnicianEnabled{TechnicianId: "tech_1"}
		eventbus.Stamp(context.Background(), "acc_test", disabled).AggregateVersion = 2
		eventbus.Stamp(context.Background(), "acc_test", enabled).AggregateVersion = 3
		prod.Emit(t, "acc_test", enabled)
		prod.Emit(t, "acc_test", disabled)
		svctest.Eventually(t, "both events on the stream", func() bool { return svctest.StreamMsgs(t, w.JS, "ROSTER_IDENTITY") == 2 })
		svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
		var status string
		if err := consDB.QueryRow(`SELECT status FROM status WHERE technician_id = 'tech_1'`).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status != "enabled" {
			t.Fatalf("technician %s after the enable and the late disable, want enabled", status)
		}
	})
}
