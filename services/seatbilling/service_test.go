package seatbilling_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/inbox"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling"
	"roster.dev/services/seatbilling/ports"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const operatorToken = "op-test-token"

// world is an embedded NATS with Roster's streams, an "identity" bus to
// publish from, and the seatbilling service under test behind an HTTP
// server.
type world struct {
	js       nats.JetStreamContext
	identity *svctest.Producer
	db       *store.DB
	bus      *eventbus.Bus
	url      string
}

func newWorld(t *testing.T, dbURL string) *world {
	t.Helper()
	nw := svctest.NewNATS(t)
	w := &world{js: nw.JS, identity: svctest.StartProducer(t, nw, dbURL, "identity")}
	w.url, w.db, w.bus = svctest.StartService(t, nw, dbURL, seatbilling.New(), operatorToken)
	return w
}

// get does an operator GET and returns the status and body.
func (w *world) get(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	status, _, body := svctest.Get(t, w.url+path, token)
	return status, body
}

// subscription polls GET subscription until cond holds of its answer.
func (w *world) subscription(t *testing.T, accountID string, cond func(ports.Subscription) bool) ports.Subscription {
	t.Helper()
	var last string
	var got ports.Subscription
	svctest.EventuallySeen(t, "the subscription of "+accountID, func() bool {
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

// settled waits until every event published so far went through: identity's
// outbox relayed, seatbilling's consumer applied and acked everything, and
// seatbilling's outbox relayed what that emitted.
func (w *world) settled(t *testing.T) {
	t.Helper()
	svctest.Eventually(t, "identity's outbox to drain", svctest.OutboxDrained(w.identity.Bus))
	svctest.Eventually(t, "seatbilling to consume every identity event", svctest.ConsumerSettled(w.js, "seatbilling", "identity"))
	svctest.Eventually(t, "seatbilling's outbox to drain", svctest.OutboxDrained(w.bus))
}

// emitted counts seatbilling's events on the stream for an account, by
// subject token (subscription_created, seat_assigned).
func (w *world) emitted(t *testing.T, accountID string) map[string]uint64 {
	t.Helper()
	prefix := "roster.events.seatbilling." + accountID + "."
	out := map[string]uint64{}
	for subject, n := range svctest.SubjectMsgs(t, w.js, eventbus.EventStream("seatbilling"), prefix+">") {
		out[subject[len(prefix):]] = n
	}
	return out
}

// lastEvent decodes the last seatbilling event of a type for an account.
func (w *world) lastEvent(t *testing.T, accountID string, ev eventbus.Event) {
	t.Helper()
	subject := eventbus.Subject(ev.ProtoReflect().Descriptor().FullName(), accountID)
	msg, err := w.js.GetLastMsg(eventbus.EventStream("seatbilling"), subject)
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
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
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
			w.identity.Emit(t, tt.accountID, tt.event)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := w.subscription(t, tt.accountID, func(s ports.Subscription) bool { return s.Seats.Used == 1 })
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("GET subscription\n got %+v\nwant %+v", got, tt.want)
				}

				// The events that tell the other services, caused by AccountCreated.
				svctest.EventuallySeen(t, "SubscriptionCreated and SeatAssigned on the stream", func() bool {
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
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, dbURL)
		const acc = "acc_twice"
		ev := accountCreated("atera-msp", "growth", "monthly", 3, nil, "2026-11-01", "2026-11-23T10:00:00Z")
		w.identity.Emit(t, acc, ev)
		w.identity.Emit(t, acc, ev) // same event id
		again := proto.Clone(ev).(*identityv1.AccountCreated)
		again.Meta.EventId = "" // a new id: past the duplicate window and the inbox
		again.Seats = 7
		again.AdminTechnicianId = "tech_other_admin"
		w.identity.Emit(t, acc, again)
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
		if n := svctest.StreamMsgs(t, w.js, eventbus.StreamDeadLetter); n != 0 {
			t.Errorf("dead letters: %v, want none", n)
		}
	})
}
