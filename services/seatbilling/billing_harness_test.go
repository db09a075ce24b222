package seatbilling_test

// The harness of the seat tests (reserve_test.go, routes_test.go), on
// pkg/svc/svctest: an embedded NATS, an "identity" bus to publish identity's
// events from, a stand-in for identity's Authenticate, and seatbilling
// started as the host starts it, with a clock the test moves.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling"
	"roster.dev/services/seatbilling/ports"
)

const billingOperator = "op-billing-token"

// testClock is the injected clock (svc.Deps.Now), moved by the test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t, forward or back.
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// apiToken is an account token that the stand-in identity knows.
type apiToken struct {
	accountID string
	scopes    []string
}

// billingWorld is seatbilling under test, with identity's side faked.
type billingWorld struct {
	nats       *svctest.World
	clock      *testClock
	identityDB *store.DB
	identity   *eventbus.Bus
	db         *store.DB
	bus        *eventbus.Bus
	url        string
	// service is the service under test, for what no port reaches (RunDue).
	service *seatbilling.Service
}

// newBillingWorld starts seatbilling at clock time start; tokens are the
// account tokens identity's Authenticate accepts.
func newBillingWorld(t *testing.T, dbURL string, start time.Time, tokens map[string]apiToken) *billingWorld {
	t.Helper()
	ctx := context.Background()
	w := &billingWorld{nats: svctest.NewNATS(t), clock: &testClock{now: start}}
	w.identityDB = svctest.OpenDB(t, dbURL, w.nats.Dir, "identity")
	w.identity = svctest.StartBus(t, eventbus.Config{Service: "identity", DB: w.identityDB, Connect: w.nats.Connect}, nil)
	serveAuthenticate(t, w, tokens)

	s := seatbilling.New()
	w.service = s
	w.db = svctest.OpenDB(t, dbURL, w.nats.Dir, s.Name())
	if err := w.db.Migrate(ctx, s.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := idempotency.Init(ctx, w.db); err != nil {
		t.Fatal(err)
	}
	op := httpx.NewOperator(billingOperator)
	authConn, err := w.nats.Connect("test-auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(authConn.Close)
	w.bus = svctest.StartBus(t, eventbus.Config{Service: s.Name(), DB: w.db, Connect: w.nats.Connect}, func(b *eventbus.Bus) {
		if err := b.Init(ctx); err != nil {
			t.Fatal(err)
		}
		err := s.Setup(ctx, svc.Deps{
			DB: w.db, Bus: b, Log: billingLogger(t), Operator: op, Auth: auth.New(op, authConn),
			Connect: w.nats.Connect, Now: w.clock.Now,
		})
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

// billingLogger logs warnings and errors to the test's output.
func billingLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// serveAuthenticate answers rpc.Authenticate as identity does, from tokens.
func serveAuthenticate(t *testing.T, w *billingWorld, tokens map[string]apiToken) {
	t.Helper()
	byHash := map[string]apiToken{}
	for tok, at := range tokens {
		byHash[string(httpx.HashToken(tok))] = at
	}
	sub, err := rpc.Serve(w.nats.NC, rpc.Authenticate, "identity", billingLogger(t),
		func() *identityv1.AuthenticateRequest { return &identityv1.AuthenticateRequest{} },
		func(_ context.Context, req *identityv1.AuthenticateRequest) (*identityv1.AuthenticateReply, error) {
			at, ok := byHash[string(req.GetTokenHash())]
			if !ok {
				return &identityv1.AuthenticateReply{}, nil
			}
			return &identityv1.AuthenticateReply{
				Valid: true, Kind: identityv1.AuthenticateReply_KIND_API_TOKEN,
				AccountId: at.accountID, TokenId: "tok_id", Scopes: at.scopes,
			}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// openAccount publishes AccountCreated (atera-msp growth monthly, anchored
// on the 1st, created an hour before the clock) and waits for the
// subscription, its first admin seated.
func (w *billingWorld) openAccount(t *testing.T, accountID string, seats int32) {
	t.Helper()
	w.publish(t, accountID, &identityv1.AccountCreated{
		Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(w.clock.Now().Add(-time.Hour))},
		Name: "Test " + accountID, Profile: "atera-msp", Plan: "growth", BillingPeriod: "monthly",
		Seats: seats, BillingAnchor: "2026-11-01",
		AdminTechnicianId: "tech_admin_" + accountID, AdminEmail: "admin@" + accountID + ".example",
	})
	w.waitSeats(t, accountID, ports.Seats{Total: int(seats), Used: 1, Available: int(seats) - 1})
}

// publish emits identity's events for an account.
func (w *billingWorld) publish(t *testing.T, accountID string, evs ...eventbus.Event) {
	t.Helper()
	if err := w.tryPublish(accountID, evs...); err != nil {
		t.Fatal(err)
	}
}

// tryPublish is publish for goroutines other than the test's.
func (w *billingWorld) tryPublish(accountID string, evs ...eventbus.Event) error {
	ctx := context.Background()
	return w.identityDB.InTx(ctx, func(tx *sql.Tx) error { return w.identity.Emit(ctx, tx, accountID, evs...) })
}

// settle waits until everything published so far went through seatbilling
// and what it emitted reached its stream.
func (w *billingWorld) settle(t *testing.T) {
	t.Helper()
	svctest.Eventually(t, "identity's outbox to drain", svctest.OutboxDrained(w.identity))
	svctest.Eventually(t, "seatbilling to apply identity's events", svctest.ConsumerSettled(w.nats.JS, "seatbilling", "identity"))
	svctest.Eventually(t, "seatbilling's outbox to drain", svctest.OutboxDrained(w.bus))
}

// reserve asks for a seat over NATS request-reply, as identity does.
func (w *billingWorld) reserve(t *testing.T, accountID, reservationID string, confirm bool) *seatbillingv1.ReserveSeatReply {
	t.Helper()
	rep, err := w.tryReserve(accountID, reservationID, confirm)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (w *billingWorld) tryReserve(accountID, reservationID string, confirm bool) (*seatbillingv1.ReserveSeatReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rep seatbillingv1.ReserveSeatReply
	err := rpc.Call(ctx, w.nats.NC, rpc.ReserveSeat, &seatbillingv1.ReserveSeatRequest{
		AccountId: accountID, ReservationId: reservationID, ConfirmPurchase: confirm, CorrelationId: "corr_" + reservationID,
	}, &rep)
	if err != nil {
		return nil, fmt.Errorf("ReserveSeat %s: %w", reservationID, err)
	}
	return &rep, nil
}

// getJSON GETs path with the operator token and decodes a 200 into v.
func (w *billingWorld) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	status, _, body := svctest.Get(t, w.url+path, billingOperator)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func (w *billingWorld) subscription(t *testing.T, accountID string) ports.Subscription {
	t.Helper()
	var s ports.Subscription
	w.getJSON(t, "/v1/accounts/"+accountID+"/subscription", &s)
	return s
}

// waitSeats polls GET subscription until its seats are want.
func (w *billingWorld) waitSeats(t *testing.T, accountID string, want ports.Seats) {
	t.Helper()
	var last string
	svctest.EventuallySeen(t, fmt.Sprintf("seats of %s to be %+v", accountID, want), func() bool {
		status, _, body := svctest.Get(t, w.url+"/v1/accounts/"+accountID+"/subscription", billingOperator)
		last = fmt.Sprintf("%d %s", status, body)
		var s ports.Subscription
		return status == http.StatusOK && json.Unmarshal(body, &s) == nil && s.Seats == want
	}, func() string { return last })
}

func (w *billingWorld) charges(t *testing.T, accountID, query string) ports.ChargeList {
	t.Helper()
	var l ports.ChargeList
	w.getJSON(t, "/v1/accounts/"+accountID+"/charges"+query, &l)
	return l
}

// emitted counts seatbilling's events on its stream for an account, by
// subject token (seat_reserved, seat_assigned, …).
func (w *billingWorld) emitted(t *testing.T, accountID string) map[string]uint64 {
	t.Helper()
	prefix := "roster.events.seatbilling." + accountID + "."
	out := map[string]uint64{}
	for subject, n := range svctest.SubjectMsgs(t, w.nats.JS, eventbus.EventStream("seatbilling"), prefix+">") {
		out[subject[len(prefix):]] = n
	}
	return out
}

// lastEvent decodes the last seatbilling event of ev's type for an account.
func (w *billingWorld) lastEvent(t *testing.T, accountID string, ev eventbus.Event) {
	t.Helper()
	subject := eventbus.Subject(ev.ProtoReflect().Descriptor().FullName(), accountID)
	msg, err := w.nats.JS.GetLastMsg(eventbus.EventStream("seatbilling"), subject)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := proto.Unmarshal(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
}

// rows counts a table's rows of an account matching where.
func (w *billingWorld) rows(t *testing.T, table, accountID, where string, args ...any) int {
	t.Helper()
	q := `SELECT count(*) FROM ` + table + ` WHERE account_id = $1`
	if where != "" {
		q += ` AND ` + where
	}
	var n int
	if err := w.db.QueryRow(q, append([]any{accountID}, args...)...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// post sends a JSON body (raw bytes, sent as they are) with token.
func (w *billingWorld) post(t *testing.T, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, buf.Bytes()
}

func technicianCreated(technicianID, reservationID string) *identityv1.TechnicianCreated {
	return &identityv1.TechnicianCreated{
		TechnicianId: technicianID, Email: technicianID + "@example.com", FirstName: "T", LastName: technicianID,
		Status: "invited", ReservationId: reservationID,
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

// do sends a JSON body (nil: none) with the operator token and returns the
// status and body.
func (w *billingWorld) do(t *testing.T, method, path string, body any, header ...string) (int, []byte) {
	t.Helper()
	status, _, b := svctest.Do(t, method, w.url+path, billingOperator, body, header...)
	return status, b
}

// setAddOn PUTs an add-on and fails the test unless it answers want.
func (w *billingWorld) setAddOn(t *testing.T, accountID, addOn string, price int64, quantity int, want int) ports.AddOn {
	t.Helper()
	status, body := w.do(t, http.MethodPut, "/v1/accounts/"+accountID+"/subscription/add-ons/"+addOn,
		map[string]any{"price": price, "quantity": quantity})
	if status != want {
		t.Fatalf("PUT add-on %s of %s = %d %s, want %d", addOn, accountID, status, body, want)
	}
	var a ports.AddOn
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return a
}

// unused GETs the unused-seat report.
func (w *billingWorld) unused(t *testing.T, accountID, query string) ports.UnusedSeats {
	t.Helper()
	var u ports.UnusedSeats
	w.getJSON(t, "/v1/accounts/"+accountID+"/seats/unused"+query, &u)
	return u
}

// features GETs the account's plan gates, by feature.
func (w *billingWorld) features(t *testing.T, accountID string) map[string]ports.Feature {
	t.Helper()
	var l ports.FeatureList
	w.getJSON(t, "/v1/accounts/"+accountID+"/features", &l)
	out := map[string]ports.Feature{}
	for _, f := range l.Data {
		out[f.Feature] = f
	}
	return out
}

// featureEnabled asks over request-reply, as the other services do (S-8).
func (w *billingWorld) featureEnabled(t *testing.T, accountID, feature string) *seatbillingv1.FeatureEnabledReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rep seatbillingv1.FeatureEnabledReply
	if err := rpc.Call(ctx, w.nats.NC, rpc.FeatureEnabled, &seatbillingv1.FeatureEnabledRequest{AccountId: accountID, Feature: feature}, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// openAt publishes AccountCreated for profile, plan and period (price for
// custom plans), anchored on anchor and created at the clock's time, and
// waits for the subscription with its first admin seated.
func (w *billingWorld) openAt(t *testing.T, accountID, profile, plan, period string, price int64, anchor string, seats int32) {
	t.Helper()
	ev := &identityv1.AccountCreated{
		Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(w.clock.Now())},
		Name: "Test " + accountID, Profile: profile, Plan: plan, BillingPeriod: period,
		Seats: seats, BillingAnchor: anchor,
		AdminTechnicianId: "tech_admin_" + accountID, AdminEmail: "admin@" + accountID + ".example",
	}
	if price > 0 {
		ev.PricePerSeat = &commonv1.Money{Amount: price, Currency: "usd"}
	}
	w.publish(t, accountID, ev)
	w.waitSeats(t, accountID, ports.Seats{Total: int(seats), Used: 1, Available: int(seats) - 1})
}

// addTechnician reserves a seat (buying one when confirm) and confirms it
// with TechnicianCreated, as identity does, and waits until it is applied.
func (w *billingWorld) addTechnician(t *testing.T, accountID, technicianID string, confirm bool) *seatbillingv1.ReserveSeatReply {
	t.Helper()
	res := "res_" + technicianID
	rep := w.reserve(t, accountID, res, confirm)
	if o := rep.GetOutcome(); o == reserved || o == purchaseReserved {
		w.publish(t, accountID, technicianCreated(technicianID, res))
		w.settle(t)
	}
	return rep
}

func jsonReader(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }

// freshDB is a database URL for one more world in a test of dbURL's
// backend: SQLite files live in each world's own directory, and PostgreSQL
// gets another new, empty database.
func freshDB(t *testing.T, dbURL string) string {
	t.Helper()
	if dbURL == "" {
		return ""
	}
	return pgtest.DSN(t)
}
