package seatbilling_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/seatbilling/adapters"
	"roster.dev/services/seatbilling/app"
	"roster.dev/services/seatbilling/domain"
	"roster.dev/services/seatbilling/migrations"
)

// BenchmarkSeatOperations measures seat operations on an account that
// already holds many seats (issue 18: occupancy counted with count(*) made
// each operation O(seats)). reserve is a ReserveSeat whose predecessor has
// expired (the clock moves past the TTL each time, so only the seats
// count); add is a ReserveSeat and the ConfirmSeat of its
// TechnicianCreated, the account growing by one technician per iteration.
// The use cases run directly on the store, without NATS or HTTP:
//
//	go test -run '^$' -bench BenchmarkSeatOperations ./services/seatbilling/
//
// ROSTER_BENCH_POSTGRES=1 adds PostgreSQL.
func BenchmarkSeatOperations(b *testing.B) {
	backends := []string{"sqlite"}
	if pgBench() {
		backends = append(backends, "postgres")
	}
	for _, backend := range backends {
		for _, seats := range []int{1_000, 100_000} {
			b.Run(fmt.Sprintf("%s/seats=%d", backend, seats), func(b *testing.B) {
				dbURL := ""
				if backend == "postgres" {
					dbURL = pgtest.DSN(b)
				}
				bench := newSeatBench(b, dbURL, seats)
				b.Run("reserve", func(b *testing.B) {
					i := 0
					for b.Loop() {
						i++
						bench.clock.Advance(domain.DefaultReservationTTL)
						bench.reserve(b, fmt.Sprintf("res_r%d", i))
					}
				})
				b.Run("add", func(b *testing.B) {
					i := 0
					for b.Loop() {
						i++
						id := fmt.Sprintf("a%d", i)
						bench.reserve(b, "res_"+id)
						bench.confirm(b, "tech_"+id, "res_"+id)
					}
				})
			})
		}
	}
}

func pgBench() bool { return os.Getenv("ROSTER_BENCH_POSTGRES") != "" }

// seatBench is seatbilling's use cases on a store of their own, with an
// account of many seats and events that go nowhere.
type seatBench struct {
	db    *store.DB
	app   *app.Application
	clock *testClock
}

const benchAccount = "acc_bench"

// newSeatBench opens an account of seats occupied seats (the first admin
// among them) and room for a million more.
func newSeatBench(b *testing.B, dbURL string, seats int) *seatBench {
	b.Helper()
	ctx := context.Background()
	db := svctest.OpenDB(b, dbURL, b.TempDir(), "seatbilling")
	if err := db.Migrate(ctx, migrations.FS); err != nil {
		b.Fatal(err)
	}
	st := adapters.NewStore(db)
	clock := &testClock{now: seatTestNow}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sb := &seatBench{db: db, app: app.New(st, discardEvents{}, log, clock.Now, app.Config{}), clock: clock}
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		err := sb.app.OpenSubscription.Handle(ctx, tx, app.OpenSubscription{
			AccountID: benchAccount, Profile: "atera-msp", Plan: "growth", BillingPeriod: "monthly",
			Seats: seats + 1_000_000, BillingAnchor: "2026-11-01", AdminTechnicianID: "tech_admin",
		})
		if err != nil {
			return err
		}
		for i := 1; i < seats; i++ {
			seat := domain.Seat{AccountID: benchAccount, TechnicianID: fmt.Sprintf("tech_%07d", i), Status: domain.SeatOccupied}
			if _, err := st.InsertSeat(ctx, tx, seat, seatTestNow); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return sb
}

func (sb *seatBench) reserve(b *testing.B, reservationID string) {
	res, err := sb.app.ReserveSeat.Handle(context.Background(), app.ReserveSeat{AccountID: benchAccount, ReservationID: reservationID})
	if err != nil {
		b.Fatal(err)
	}
	if res.Outcome != domain.OutcomeReserved {
		b.Fatalf("%s: %s, want reserved", reservationID, res.Outcome)
	}
}

func (sb *seatBench) confirm(b *testing.B, technicianID, reservationID string) {
	ctx := context.Background()
	err := sb.db.InTx(ctx, func(tx *sql.Tx) error {
		return sb.app.ConfirmSeat.Handle(ctx, tx, app.ConfirmSeat{AccountID: benchAccount, TechnicianID: technicianID, ReservationID: reservationID})
	})
	if err != nil {
		b.Fatal(err)
	}
}

// discardEvents is an app.Emitter that drops what it is given.
type discardEvents struct{}

func (discardEvents) Emit(context.Context, *sql.Tx, string, ...eventbus.Event) error { return nil }
