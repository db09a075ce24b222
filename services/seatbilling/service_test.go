package seatbilling_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/inbox"
	"roster.dev/pkg/natsembed"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling"
	"roster.dev/services/seatbilling/ports"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const operatorToken = "op-test-token"

// eachBackend runs fn on SQLite and on PostgreSQL; dbURL is the --db value.
func eachBackend(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.DSN(t)) })
}

// world is an embedded NATS with Roster's streams, an "identity" bus to
// publish from, and the seatbilling service under test behind an HTTP
// server.
type world struct {
	nc         *nats.Conn
	identityDB *store.DB
	identity   *eventbus.Bus
	db         *store.DB
	bus        *eventbus.Bus
	url        string
}

func newWorld(t *testing.T, dbURL string) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Config{DataDir: dir, Listen: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.EnsureStreams(js, eventbus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := &world{nc: nc}

	w.identityDB = openDB(t, dbURL, dir, "identity")
	w.identity = startBus(t, ns.Connect, w.identityDB, "identity", log, nil)

	s := seatbilling.New()
	w.db = openDB(t, dbURL, dir, s.Name())
	if err := w.db.Migrate(ctx, s.Migrations()); err != nil {
		t.Fatal(err)
	}
	w.bus = startBus(t, ns.Connect, w.db, s.Name(), log, func(b *eventbus.Bus) {
		err := s.Setup(ctx, svc.Deps{DB: w.db, Bus: b, Log: log, Operator: httpx.NewOperator(operatorToken), Connect: ns.Connect})
		if err != nil {
			t.Fatal(err)
		}
	})
	r := chi.NewRouter()
	s.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func openDB(t *testing.T, dbURL, dir, service string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: dbURL, DataDir: dir, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startBus runs a bus until the test ends and waits until it is ready;
// setup registers handlers before it runs.
func startBus(t *testing.T, connect func(string) (*nats.Conn, error), db *store.DB, service string, log *slog.Logger, setup func(*eventbus.Bus)) *eventbus.Bus {
	t.Helper()
	b, err := eventbus.New(eventbus.Config{Service: service, DB: db, Connect: connect, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bus %s: %v", service, err)
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("bus %s stopped: %v", service, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("bus %s not ready", service)
	}
	return b
}

// publish emits events from identity, as its CreateAccount does.
func (w *world) publish(t *testing.T, accountID string, evs ...eventbus.Event) {
	t.Helper()
	ctx := context.Background()
	err := w.identityDB.InTx(ctx, func(tx *sql.Tx) error { return w.identity.Emit(ctx, tx, accountID, evs...) })
	if err != nil {
		t.Fatal(err)
	}
}

// get does an operator GET and returns the status and body.
func (w *world) get(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

// subscription polls GET subscription until cond holds of its answer.
func (w *world) subscription(t *testing.T, accountID string, cond func(ports.Subscription) bool) ports.Subscription {
	t.Helper()
	var last string
	var got ports.Subscription
	eventually(t, "the subscription of "+accountID, func() bool {
		status, body := w.get(t, "/v1/accounts/"+accountID+"/subscription", operatorToken)
		last = fmt.Sprintf("%d %s", status, body)
		if status != http.StatusOK {
			return false
		}
		got = ports.Subscription{}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("GET subscription: %v: %s", err, body)
		}
		return cond(got)
	}, func() string { return last })
	return got
}

// eventually polls cond every 10 ms until it holds, for 20 s at most; last
// describes what was seen when it gives up.
func eventually(t *testing.T, what string, cond func() bool, last func() string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			msg := ""
			if last != nil {
				msg = "; last seen: " + last()
			}
			t.Fatalf("timed out waiting for %s%s", what, msg)
		}
	}
}

// settled waits until every event published so far went through: identity's
// outbox relayed, seatbilling's consumer applied and acked everything, and
// seatbilling's outbox relayed what that emitted.
func (w *world) settled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	drained := func(b *eventbus.Bus) func() bool {
		return func() bool { n, err := b.Outbox().Pending(ctx); return err == nil && n == 0 }
	}
	eventually(t, "identity's outbox to drain", drained(w.identity), nil)
	js, _ := w.nc.JetStream()
	consumer := eventbus.ConsumerName("seatbilling", "identity")
	eventually(t, "seatbilling to consume every identity event", func() bool {
		info, err := js.ConsumerInfo(eventbus.EventStream("identity"), consumer)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, nil)
	eventually(t, "seatbilling's outbox to drain", drained(w.bus), nil)
}

// emitted counts seatbilling's events on the stream for an account, by
// subject token (subscription_created, seat_assigned).
func (w *world) emitted(t *testing.T, accountID string) map[string]uint64 {
	t.Helper()
	js, _ := w.nc.JetStream()
	prefix := "roster.events.seatbilling." + accountID + "."
	info, err := js.StreamInfo(eventbus.EventStream("seatbilling"), &nats.StreamInfoRequest{SubjectsFilter: prefix + ">"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for subject, n := range info.State.Subjects {
		out[subject[len(prefix):]] = n
	}
	return out
}

// lastEvent decodes the last seatbilling event of a type for an account.
func (w *world) lastEvent(t *testing.T, accountID string, ev eventbus.Event) {
	t.Helper()
	js, _ := w.nc.JetStream()
	subject := eventbus.Subject(ev.ProtoReflect().Descriptor().FullName(), accountID)
	msg, err := js.GetLastMsg(eventbus.EventStream("seatbilling"), subject)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := proto.Unmarshal(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
}

func usd(cents int64) *commonv1.Money { return &commonv1.Money{Amount: cents, Currency: "usd"} }

// accountCreated is identity's event for a new account, created at a fixed
// time so that the current cycle is known.
func accountCreated(profile, plan, period string, seats int32, price *commonv1.Money, anchor, createdAt string) *identityv1.AccountCreated {
	at, err := time.Parse(time.RFC3339, createdAt)
	if err != nil {
		panic(err)
	}
	return &identityv1.AccountCreated{
		Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(at)},
		Name: "Test " + plan, Profile: profile, Plan: plan, BillingPeriod: period, Seats: seats,
		PricePerSeat: price, BillingAnchor: anchor,
		AdminTechnicianId: "tech_admin_" + plan, AdminEmail: "admin@" + plan + ".example",
	}
}

// S-1, S-2, S-7: AccountCreated opens the subscription at the plan's unit
// price with the first admin in one of its seats, and GET subscription shows
// it in api.md's shape.
func TestAccountCreatedOpensTheSubscription(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL)
		tests := []struct {
			name      string
			accountID string
			event     *identityv1.AccountCreated
			want      ports.Subscription
		}{
			{
				name:      "atera-msp growth monthly takes the list price",
				accountID: "acc_growth",
				// Anchor on the 31st, created mid-March 2026: the cycle starts
				// on Feb 28 (February has no 31st) and ends the day before Mar 31.
				event: accountCreated("atera-msp", "growth", "monthly", 5, nil, "2026-01-31", "2026-03-15T18:00:00Z"),
				want: ports.Subscription{
					AccountID: "acc_growth", Plan: "growth", BillingPeriod: "monthly",
					UnitPrice:     ports.Money{Amount: 18900, Currency: "usd"},
					Seats:         ports.Seats{Total: 5, Used: 1, Available: 4},
					BillingAnchor: "2026-01-31", CycleStart: "2026-02-28", CycleEnd: "2026-03-30",
					PendingReductions: 0, AddOns: []ports.AddOn{},
				},
			},
			{
				name:      "atera-msp superpower takes the account's price",
				accountID: "acc_superpower",
				// Annual from Feb 29 2024: in 2026 the year starts on Feb 28.
				event: accountCreated("atera-msp", "superpower", "annual", 12, usd(15500), "2024-02-29", "2026-05-10T09:30:00Z"),
				want: ports.Subscription{
					AccountID: "acc_superpower", Plan: "superpower", BillingPeriod: "annual",
					UnitPrice:     ports.Money{Amount: 15500, Currency: "usd"},
					Seats:         ports.Seats{Total: 12, Used: 1, Available: 11},
					BillingAnchor: "2024-02-29", CycleStart: "2026-02-28", CycleEnd: "2027-02-27",
					PendingReductions: 0, AddOns: []ports.AddOn{},
				},
			},
			{
				name:      "roster pro annual takes the annual-billing monthly price",
				accountID: "acc_roster_pro",
				event:     accountCreated("roster", "pro", "annual", 1, nil, "2026-11-23", "2026-11-23T11:00:00Z"),
				want: ports.Subscription{
					AccountID: "acc_roster_pro", Plan: "pro", BillingPeriod: "annual",
					UnitPrice:     ports.Money{Amount: 12900, Currency: "usd"},
					Seats:         ports.Seats{Total: 1, Used: 1, Available: 0},
					BillingAnchor: "2026-11-23", CycleStart: "2026-11-23", CycleEnd: "2027-11-22",
					PendingReductions: 0, AddOns: []ports.AddOn{},
				},
			},
		}
		for _, tt := range tests {
			w.publish(t, tt.accountID, tt.event)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := w.subscription(t, tt.accountID, func(s ports.Subscription) bool { return s.Seats.Used == 1 })
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("GET subscription\n got %+v\nwant %+v", got, tt.want)
				}

				// The events that tell the other services, caused by AccountCreated.
				eventually(t, "SubscriptionCreated and SeatAssigned on the stream", func() bool {
					n := w.emitted(t, tt.accountID)
					return n["subscription_created"] == 1 && n["seat_assigned"] == 1
				}, func() string { return fmt.Sprint(w.emitted(t, tt.accountID)) })
				var created seatbillingv1.SubscriptionCreated
				w.lastEvent(t, tt.accountID, &created)
				wantCreated := &seatbillingv1.SubscriptionCreated{
					Meta: created.GetMeta(), Plan: tt.want.Plan, BillingPeriod: tt.want.BillingPeriod,
					Seats:      int32(tt.want.Seats.Total),
					UnitPrice:  usd(tt.want.UnitPrice.Amount),
					CycleStart: tt.want.CycleStart, CycleEnd: tt.want.CycleEnd,
				}
				if !proto.Equal(&created, wantCreated) {
					t.Errorf("SubscriptionCreated = %v, want %v", &created, wantCreated)
				}
				var assigned seatbillingv1.SeatAssigned
				w.lastEvent(t, tt.accountID, &assigned)
				if assigned.GetTechnicianId() != tt.event.GetAdminTechnicianId() {
					t.Errorf("SeatAssigned to %q, want the first admin %q", assigned.GetTechnicianId(), tt.event.GetAdminTechnicianId())
				}
				for _, meta := range []*commonv1.EventMeta{created.GetMeta(), assigned.GetMeta()} {
					if meta.GetAccountId() != tt.accountID || meta.GetCausationId() != tt.event.GetMeta().GetEventId() {
						t.Errorf("event meta %v: want account %s, caused by AccountCreated %s", meta, tt.accountID, tt.event.GetMeta().GetEventId())
					}
				}
			})
		}

		t.Run("api.md shape", func(t *testing.T) {
			status, body := w.get(t, "/v1/accounts/acc_growth/subscription", operatorToken)
			const want = `{
				"account_id": "acc_growth", "plan": "growth", "billing_period": "monthly",
				"unit_price": {"amount": 18900, "currency": "usd"},
				"seats": {"total": 5, "used": 1, "available": 4},
				"billing_anchor": "2026-01-31", "cycle_start": "2026-02-28", "cycle_end": "2026-03-30",
				"pending_reductions": 0, "add_ons": []
			}`
			var got, wantV any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%d %v: %s", status, err, body)
			}
			if err := json.Unmarshal([]byte(want), &wantV); err != nil {
				t.Fatal(err)
			}
			if status != http.StatusOK || !reflect.DeepEqual(got, wantV) {
				t.Fatalf("GET subscription = %d %s\nwant %s", status, body, want)
			}
		})
		t.Run("unknown account is 404", func(t *testing.T) {
			status, body := w.get(t, "/v1/accounts/acc_nobody/subscription", operatorToken)
			var p struct {
				Type   string `json:"type"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if status != http.StatusNotFound || p.Status != http.StatusNotFound || p.Type != "https://roster.dev/problems/not-found" {
				t.Fatalf("GET unknown account = %d %s, want a 404 not-found problem", status, body)
			}
		})
		t.Run("operator token required", func(t *testing.T) {
			for _, token := range []string{"", "not-the-operator"} {
				if status, body := w.get(t, "/v1/accounts/acc_growth/subscription", token); status != http.StatusUnauthorized {
					t.Errorf("token %q: %d %s, want 401", token, status, body)
				}
			}
		})
	})
}

// AccountCreated delivered again opens nothing more: the same event twice
// (the stream's duplicate window and the inbox drop it), and the same
// account announced by a second event with another id (the insert itself
// refuses a second subscription).
func TestAccountCreatedTwiceOpensOneSubscription(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL)
		const acc = "acc_twice"
		ev := accountCreated("atera-msp", "growth", "monthly", 3, nil, "2026-11-01", "2026-11-23T10:00:00Z")
		w.publish(t, acc, ev)
		w.publish(t, acc, ev) // same event id
		again := proto.Clone(ev).(*identityv1.AccountCreated)
		again.Meta.EventId = "" // a new id: past the duplicate window and the inbox
		again.Seats = 7
		again.AdminTechnicianId = "tech_other_admin"
		w.publish(t, acc, again)
		if ev.GetMeta().GetEventId() == again.GetMeta().GetEventId() {
			t.Fatal("the second event needs an id of its own")
		}
		w.settled(t)

		got := w.subscription(t, acc, func(ports.Subscription) bool { return true })
		if got.Seats != (ports.Seats{Total: 3, Used: 1, Available: 2}) || got.UnitPrice.Amount != 18900 {
			t.Fatalf("subscription = %+v, want the first event's: 3 seats, 1 used, 18900", got)
		}
		for table, want := range map[string]int{"subscriptions": 1, "seats": 1} {
			var n int
			if err := w.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE account_id = $1`, acc).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("%d rows in %s, want %d", n, table, want)
			}
		}
		if n := w.emitted(t, acc); !reflect.DeepEqual(n, map[string]uint64{"subscription_created": 1, "seat_assigned": 1}) {
			t.Errorf("seatbilling emitted %v, want one SubscriptionCreated and one SeatAssigned", n)
		}
		// The second event was applied, as a no-op, and not given up on.
		consumer := eventbus.ConsumerName("seatbilling", "identity")
		for _, id := range []string{ev.GetMeta().GetEventId(), again.GetMeta().GetEventId()} {
			if ok, err := inbox.Applied(context.Background(), w.db, consumer, id); err != nil || !ok {
				t.Errorf("event %s applied = %v (%v), want true", id, ok, err)
			}
		}
		js, _ := w.nc.JetStream()
		if info, err := js.StreamInfo(eventbus.StreamDeadLetter); err != nil || info.State.Msgs != 0 {
			t.Errorf("dead letters: %v (%v), want none", info.State.Msgs, err)
		}
	})
}
