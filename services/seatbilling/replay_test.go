package seatbilling_test

// The issue's "replaying the service's consumed events into an empty
// database reproduces the same subscription, seats and ledger".
//
// seatbilling's state has three kinds of input: identity's events (the
// consumer), requests (ReserveSeat and ScheduleLicenceRemoval over
// request-reply, add-ons over HTTP) and its clock (the cycle-end
// scheduler). Every transaction that changes an account's state emits at
// least one event, under the account's lock, stamped with the clock's time
// of the change: seatbilling's stream is therefore a journal of every
// change, account by account in commit order. Requests and clock ticks
// are journaled by the event they emit (SeatReserved,
// LicenceRemovalScheduled, AddOnSet, AddOnRemoved, CycleClosed), identity's
// events by the causation id of what they caused.
//
// The replay reads both streams back from JetStream, walks seatbilling's
// stream in order and, with a fresh service's clock set to each change's
// time, feeds the fresh service the input behind each change: the identity
// event (published on the fresh NATS, through the real consumer), the
// request (through the real request-reply and HTTP ports, asserting the
// same answer), or a scheduler run. Identity events that changed nothing
// (a repeated delivery under a new id, a disable of a seat already gone)
// are not in the journal and are not replayed; logins, whose effect does
// not depend on order, are replayed at the end. Every row of every table
// of the service must then be the same, ids and times included.

import (
	"context"
	"database/sql"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
)

func TestReplayReproducesSubscriptionSeatsAndLedger(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		live := newBillingWorld(t, dbURL, seatTestNow, nil)
		runReplayScenario(t, live)

		fresh := newBillingWorld(t, freshDB(t, dbURL), seatTestNow, nil)
		n := replay(t, live, fresh)
		t.Logf("replayed %+v", n)
		if n.changes < 40 || n.identity < 15 || n.requests < 15 || n.closes != 4 || n.logins < 4 || n.skipped < 2 {
			t.Fatalf("replayed %+v: the scenario did not exercise every kind of input", n)
		}

		// Every row of every table, ids and times included.
		for _, table := range []struct{ name, order string }{
			{"subscriptions", "account_id"},
			{"seats", "account_id, technician_id"},
			{"charges", "account_id, created_at, id"},
			{"cycle_renewals", "account_id, cycle_start"},
			{"add_ons", "account_id, add_on_id"},
			{"reservations", "account_id, reservation_id"},
			{"overallocations", "account_id, technician_id, reservation_id"},
			{"technician_logins", "account_id, technician_id"},
		} {
			want, got := dump(t, live.db, table.name, table.order), dump(t, fresh.db, table.name, table.order)
			if len(want) == 0 {
				t.Errorf("%s: the live run left no rows to compare", table.name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s differs after the replay\n live:   %s\n replay: %s", table.name, strings.Join(want, "\n         "), strings.Join(got, "\n         "))
			}
		}
		// And what clients read, at the same moment.
		fresh.clock.Set(live.clock.Now())
		for _, acc := range []string{"acc_rm", "acc_ra"} {
			for _, path := range []string{"/subscription", "/charges?limit=500", "/seats/unused", "/features"} {
				_, a := live.do(t, http.MethodGet, "/v1/accounts/"+acc+path, nil)
				_, b := fresh.do(t, http.MethodGet, "/v1/accounts/"+acc+path, nil)
				if string(a) != string(b) {
					t.Errorf("GET %s of %s differs\n live:   %s\n replay: %s", path, acc, a, b)
				}
			}
		}
	})
}

// runReplayScenario drives the live service through every kind of input:
// two accounts (monthly and annual), seats reserved, bought, reused,
// removed at cycle end, a late purchase, an overallocation, add-ons set,
// changed and removed, logins, no-op events, and cycle closes with a
// catch-up over missed cycles.
func runReplayScenario(t *testing.T, w *billingWorld) {
	t.Helper()
	const m, a = "acc_rm", "acc_ra"
	w.openAt(t, m, "atera-msp", "growth", "monthly", 0, "2026-11-01", 2)
	w.openAt(t, a, "atera-it", "expert", "annual", 0, "2026-01-15", 3)

	w.addTechnician(t, m, "tech_m1", false)
	w.clock.Advance(time.Minute)
	wantOutcome(t, "tech_m2", w.addTechnician(t, m, "tech_m2", true), purchaseReserved)
	// S-4: disable, then the replacement reuses the seat.
	w.publish(t, m, &identityv1.TechnicianDisabled{TechnicianId: "tech_m1", Reason: "disabled"})
	w.settle(t)
	wantOutcome(t, "tech_m3", w.addTechnician(t, m, "tech_m3", false), reserved)
	// S-5: reduce, then add in the same cycle: both charged.
	wantRemoval(t, "tech_m2", w.scheduleRemoval(t, m, "tech_m2"), removalScheduled, "2026-11-30")
	w.clock.Advance(time.Hour)
	wantOutcome(t, "tech_m4", w.addTechnician(t, m, "tech_m4", true), purchaseReserved)
	// S-9.
	w.setAddOn(t, m, "ai_copilot", 2500, 2, http.StatusCreated)
	w.setAddOn(t, m, "network_discovery", 9900, 1, http.StatusCreated)
	w.setAddOn(t, m, "ai_copilot", 2700, 2, http.StatusOK)
	if status, _ := w.do(t, http.MethodDelete, "/v1/accounts/"+m+"/subscription/add-ons/network_discovery", nil); status != 204 {
		t.Fatalf("DELETE add-on: %d", status)
	}
	// S-7 logins.
	w.publish(t, m, firstLogin("tech_m3", w.clock.Now()), loggedIn("tech_m3", w.clock.Now()))
	w.settle(t)

	// The annual account: two free seats, then a purchase a day later.
	w.addTechnician(t, a, "tech_a1", false)
	w.addTechnician(t, a, "tech_a2", false)
	w.clock.Advance(24 * time.Hour)
	wantOutcome(t, "tech_a3", w.addTechnician(t, a, "tech_a3", true), purchaseReserved)
	w.setAddOn(t, a, "network_discovery", 4150, 3, http.StatusCreated)

	// A purchase confirmed after its reservation expired: bought at the
	// price quoted then. The same technician announced again under another
	// event id changes nothing (and is not in the journal).
	wantOutcome(t, "late", w.reserve(t, m, "res_late", true), purchaseReserved)
	w.clock.Advance(5 * time.Minute)
	created := technicianCreated("tech_m5", "res_late")
	w.publish(t, m, created)
	again := proto.Clone(created).(*identityv1.TechnicianCreated)
	again.Meta.EventId = ""
	w.publish(t, m, again)
	w.settle(t)

	// An overallocation: tech_b's reservation expired and its seat went to
	// tech_c's before tech_b's confirmation was applied.
	w.publish(t, a, &identityv1.TechnicianDisabled{TechnicianId: "tech_a1", Reason: "disabled"})
	w.settle(t)
	wantOutcome(t, "res_b", w.reserve(t, a, "res_b", false), reserved)
	w.clock.Advance(3 * time.Minute)
	wantOutcome(t, "res_c", w.reserve(t, a, "res_c", false), reserved)
	w.publish(t, a, technicianCreated("tech_b", "res_b"), technicianCreated("tech_c", "res_c"))
	w.settle(t)
	if n := w.rows(t, "overallocations", a, ""); n != 1 {
		t.Fatalf("%d overallocations, want tech_b's", n)
	}

	// The cycle ends: tech_m2's seat goes, the renewal and the add-on are
	// charged. identity disables tech_m2 (LicenceExpired), which changes
	// nothing here any more.
	w.clock.Set(time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC))
	if n := w.runDue(t); n != 1 {
		t.Fatalf("closed %d cycles, want 1", n)
	}
	w.publish(t, m, &identityv1.TechnicianDisabled{TechnicianId: "tech_m2", Reason: "licence_removed"})
	w.settle(t)

	// Away until February: December and January of the monthly account and
	// the annual account's year are closed in one run.
	w.clock.Set(time.Date(2027, 2, 10, 9, 0, 0, 0, time.UTC))
	if n := w.runDue(t); n != 3 {
		t.Fatalf("caught up %d cycles, want 3", n)
	}
	// After the catch-up: a re-enable and a purchase, and logins.
	wantOutcome(t, "tech_m1 back", w.reserve(t, m, "res_back", true), purchaseReserved)
	w.publish(t, m, &identityv1.TechnicianEnabled{TechnicianId: "tech_m1", ReservationId: "res_back"})
	w.settle(t)
	w.publish(t, a, firstLogin("tech_a2", w.clock.Now().Add(-time.Hour)), loggedIn("tech_a2", w.clock.Now()))
	w.settle(t)
}

// replayCounts says what the replay fed the fresh service.
type replayCounts struct {
	changes, identity, requests, closes, logins, skipped int
}

// replay reads live's streams back and feeds fresh, as the file's comment
// says.
func replay(t *testing.T, live, fresh *billingWorld) replayCounts {
	t.Helper()
	identity := readStream(t, live, "identity")
	journal := readStream(t, live, "seatbilling")
	byID := map[string]eventbus.Event{}
	for _, ev := range identity {
		byID[ev.GetMeta().GetEventId()] = ev
	}
	var n replayCounts
	replayed := map[string]bool{}
	closed := 0
	for _, ev := range journal {
		meta := ev.GetMeta()
		acc := meta.GetAccountId()
		fresh.clock.Set(meta.GetOccurredAt().AsTime())
		n.changes++
		switch e := ev.(type) {
		case *seatbillingv1.SeatReserved:
			n.requests++
			rep := replayReserve(t, fresh, acc, e.GetReservationId(), e.GetPurchase(), meta.GetCorrelationId())
			want := reserved
			if e.GetPurchase() {
				want = purchaseReserved
			}
			wantOutcome(t, "replayed "+e.GetReservationId(), rep, want)
		case *seatbillingv1.LicenceRemovalScheduled:
			n.requests++
			wantRemoval(t, "replayed removal of "+e.GetTechnicianId(), fresh.scheduleRemoval(t, acc, e.GetTechnicianId()), removalScheduled, e.GetRemovalDate())
		case *seatbillingv1.AddOnSet:
			n.requests++
			status, body := fresh.do(t, http.MethodPut, "/v1/accounts/"+acc+"/subscription/add-ons/"+e.GetAddOnId(),
				map[string]any{"price": e.GetPrice().GetAmount(), "quantity": e.GetQuantity()})
			if status != http.StatusOK && status != http.StatusCreated {
				t.Fatalf("replayed PUT %s: %d %s", e.GetAddOnId(), status, body)
			}
		case *seatbillingv1.AddOnRemoved:
			n.requests++
			if status, body := fresh.do(t, http.MethodDelete, "/v1/accounts/"+acc+"/subscription/add-ons/"+e.GetAddOnId(), nil); status != http.StatusNoContent {
				t.Fatalf("replayed DELETE %s: %d %s", e.GetAddOnId(), status, body)
			}
		case *seatbillingv1.CycleClosed:
			// One scheduler run closes every cycle due at that time, as the
			// live run did; later CycleClosed of the same run find nothing.
			n.closes++
			closed += fresh.runDue(t)
		default:
			cause, ok := byID[meta.GetCausationId()]
			if !ok || replayed[meta.GetCausationId()] {
				continue // an output of the change replayed just before
			}
			n.identity++
			replayed[meta.GetCausationId()] = true
			fresh.publish(t, cause.GetMeta().GetAccountId(), cause)
		}
		fresh.settle(t)
	}
	if closed != n.closes {
		t.Fatalf("the replay closed %d cycles, the live run %d", closed, n.closes)
	}
	// Logins change nothing but login times, whatever their order.
	for _, ev := range identity {
		switch ev.(type) {
		case *identityv1.FirstLogin, *identityv1.TechnicianLoggedIn:
			n.logins++
			replayed[ev.GetMeta().GetEventId()] = true
			fresh.publish(t, ev.GetMeta().GetAccountId(), ev)
		}
	}
	fresh.settle(t)
	for _, ev := range identity {
		if !replayed[ev.GetMeta().GetEventId()] {
			n.skipped++
		}
	}
	return n
}

// readStream decodes every event on service's stream, in stream order.
func readStream(t *testing.T, w *billingWorld, service string) []eventbus.Event {
	t.Helper()
	stream := eventbus.EventStream(service)
	info, err := w.nats.JS.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventbus.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := w.nats.JS.GetMsg(stream, seq)
		if err != nil {
			t.Fatalf("%s #%d: %v", stream, seq, err)
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(msg.Header.Get(eventbus.HeaderType)))
		if err != nil {
			t.Fatalf("%s #%d: %v", stream, seq, err)
		}
		ev := mt.New().Interface()
		if err := proto.Unmarshal(msg.Data, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.(eventbus.Event))
	}
	return out
}

// replayReserve is ReserveSeat with the journaled request's correlation id.
func replayReserve(t *testing.T, w *billingWorld, accountID, reservationID string, confirm bool, correlationID string) *seatbillingv1.ReserveSeatReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rep seatbillingv1.ReserveSeatReply
	err := rpc.Call(ctx, w.nats.NC, rpc.ReserveSeat, &seatbillingv1.ReserveSeatRequest{
		AccountId: accountID, ReservationId: reservationID, ConfirmPurchase: confirm, CorrelationId: correlationID,
	}, &rep)
	if err != nil {
		t.Fatal(err)
	}
	return &rep
}

// dump reads every row of a table as text, NULL as NULL, in order.
func dump(t *testing.T, db *store.DB, table, order string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY ` + order)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			s := "NULL"
			if v.Valid {
				s = v.String
			}
			fields[i] = cols[i] + "=" + s
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
