package audit_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/store"
	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/audit"
	"roster.dev/services/audit/domain"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(pgtest.Run(m))
}

const operatorToken = "test-operator-token"

// world is an embedded NATS with Roster's streams, an identity bus that
// emits events, and the audit service consuming them behind an HTTP server.
type world struct {
	js       nats.JetStreamContext
	identity *svctest.Producer
	audit    *eventbus.Bus
	auditDB  *store.DB
	url      string
}

func newWorld(t *testing.T, dbURL string) *world {
	t.Helper()
	return newWorldWith(t, dbURL, audit.Options{})
}

func newWorldWith(t *testing.T, dbURL string, o audit.Options) *world {
	t.Helper()
	s := audit.NewWith(o)
	if s.Name() != "audit" {
		t.Fatalf("Name() = %q", s.Name())
	}
	nw := svctest.NewNATS(t)
	w := &world{js: nw.JS, identity: svctest.StartProducer(t, nw, dbURL, "identity")}
	w.url, w.auditDB, w.audit = svctest.StartService(t, nw, dbURL, s, operatorToken)
	return w
}

// get calls the audit API as the operator (or with token) and decodes the
// answer into v; it returns the status.
func (w *world) get(t *testing.T, path, token string, v any) int {
	t.Helper()
	status, _, body := svctest.Get(t, w.url+path, token)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return status
}

// records reads every record of acc through the paginated API, limit per
// page, as generic JSON objects and as records.
func (w *world) records(t *testing.T, acc string, limit int) ([]map[string]any, []domain.Record) {
	t.Helper()
	var raw []map[string]any
	var recs []domain.Record
	cursor := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor *string           `json:"next_cursor"`
		}
		if st := w.get(t, "/v1/accounts/"+acc+"/audit?"+q.Encode(), operatorToken, &page); st != http.StatusOK {
			t.Fatalf("list %s: status %d", acc, st)
		}
		for _, d := range page.Data {
			var m map[string]any
			var r domain.Record
			if err := json.Unmarshal(d, &m); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(d, &r); err != nil {
				t.Fatal(err)
			}
			raw, recs = append(raw, m), append(recs, r)
		}
		if page.NextCursor == nil {
			return raw, recs
		}
		cursor = *page.NextCursor
	}
}

type verification struct {
	OK               bool   `json:"ok"`
	Records          int64  `json:"records"`
	FirstBadSequence *int64 `json:"first_bad_sequence"`
}

func (w *world) verify(t *testing.T, acc string) verification {
	t.Helper()
	var v verification
	if st := w.get(t, "/v1/accounts/"+acc+"/audit/verify", operatorToken, &v); st != http.StatusOK {
		t.Fatalf("verify %s: status %d", acc, st)
	}
	return v
}

// end to end on both databases: events emitted
// concurrently by identity for two accounts each become exactly one audit
// record in a contiguous, verifiable chain per account, served over HTTP
// and published once on the public audit stream; tampering with a stored
// record is reported at its sequence.
func TestEveryEventBecomesOneChainedPublishedRecord(t *testing.T) {
	svctest.EachBackend(t, testEndToEnd)
}

// emitted is an event the test emitted, by record id.
type emitted struct {
	account string
	ev      eventbus.Event
}

func testEndToEnd(t *testing.T, dbURL string) {
	w := newWorld(t, dbURL)
	const accA, accB = "acc_a", "acc_b"
	const techsA, techsB = 20, 8

	// A's requests come from the operator inside a trace; B's from an API token.
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	ctxA := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	ctxA = eventbus.WithActor(eventbus.WithCorrelation(ctxA, "req-a"),
		&commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_OPERATOR, SourceAddress: "203.0.113.7"})
	ctxB := eventbus.WithActor(eventbus.WithCorrelation(context.Background(), "req-b"),
		&commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_API_TOKEN, Id: "tok_b", SourceAddress: "198.51.100.2"})

	var mu sync.Mutex
	sent := map[string]emitted{} // by record id
	emit := func(ctx context.Context, acc string, ev eventbus.Event) {
		err := w.identity.DB.InTx(ctx, func(tx *sql.Tx) error { return w.identity.Bus.Emit(ctx, tx, acc, ev) })
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		sent[domain.IDPrefix+ev.GetMeta().GetEventId()] = emitted{acc, ev}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, a := range []struct {
		ctx   context.Context
		acc   string
		techs int
	}{{ctxA, accA, techsA}, {ctxB, accB, techsB}} {
		wg.Go(func() {
			emit(a.ctx, a.acc, &identityv1.AccountCreated{Name: "Account " + a.acc, Profile: "roster", Plan: "pro", Seats: 5,
				AdminTechnicianId: "tech_" + a.acc + "_admin", AdminEmail: "admin@" + a.acc + ".example"})
		})
		for i := range a.techs {
			wg.Go(func() {
				emit(a.ctx, a.acc, &identityv1.TechnicianCreated{TechnicianId: fmt.Sprintf("tech_%s_%d", a.acc, i),
					Email: fmt.Sprintf("t%d@%s.example", i, a.acc), FirstName: "Tech", LastName: fmt.Sprint(i), Status: "invited"})
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The same event a second time: the identity stream's duplicate window
	// drops a republish with the same id …
	var dup eventbus.Event
	for _, e := range sent {
		if e.account == accA && strings.HasSuffix(string(e.ev.ProtoReflect().Descriptor().FullName()), "TechnicianCreated") {
			dup = e.ev
			break
		}
	}
	emit(ctxA, accA, dup)
	// … and a copy that escapes it (another Nats-Msg-Id) reaches the audit,
	// whose inbox must drop it.
	svctest.Eventually(t, "identity's outbox to drain", svctest.OutboxDrained(w.identity.Bus))
	subject := eventbus.Subject(dup.ProtoReflect().Descriptor().FullName(), accA)
	orig, err := w.js.GetLastMsg(eventbus.EventStream("identity"), subject)
	if err != nil {
		t.Fatal(err)
	}
	if orig.Header.Get("ce-id") != dup.GetMeta().GetEventId() {
		orig = nil
		for seq := uint64(1); orig == nil; seq++ {
			m, err := w.js.GetMsg(eventbus.EventStream("identity"), seq)
			if err != nil {
				t.Fatal(err)
			}
			if m.Header.Get("ce-id") == dup.GetMeta().GetEventId() {
				orig = m
			}
		}
	}
	copyMsg := nats.NewMsg(subject)
	copyMsg.Header = orig.Header
	copyMsg.Header.Set(nats.MsgIdHdr, "another-id")
	copyMsg.Data = orig.Data
	if _, err := w.js.PublishMsg(copyMsg); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{accA: 1 + techsA, accB: 1 + techsB}
	for acc, n := range want {
		svctest.Eventually(t, fmt.Sprintf("%d records for %s", n, acc), func() bool {
			var page struct{ Data []json.RawMessage }
			w.get(t, "/v1/accounts/"+acc+"/audit?limit=500", operatorToken, &page)
			return len(page.Data) >= n
		})
	}
	js := w.js
	svctest.Eventually(t, "the audit consumer to settle (the copy handled)", func() bool {
		info, err := js.ConsumerInfo(eventbus.EventStream("identity"), eventbus.ConsumerName("audit", "identity"))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= uint64(want[accA]+want[accB]+1)
	})
	svctest.Eventually(t, "the audit outbox to drain", svctest.OutboxDrained(w.audit))

	// exactly one record per event, and nothing else; A-2: sequences
	// 1..N per account. Pages of 7 walk the cursor.
	stored := map[string]map[string]any{} // by record id, as the API serves it
	byID := map[string]domain.Record{}
	for acc, n := range want {
		raw, recs := w.records(t, acc, 7)
		if len(recs) != n {
			t.Fatalf("%s: %d records, want %d", acc, len(recs), n)
		}
		for i, r := range recs {
			if r.Sequence != int64(i+1) {
				t.Fatalf("%s: record %d has sequence %d, want %d", acc, i, r.Sequence, i+1)
			}
			e, ok := sent[r.ID]
			if !ok || e.account != acc || r.AccountID != acc {
				t.Fatalf("%s: record %s is not one of the events emitted for it", acc, r.ID)
			}
			if _, twice := byID[r.ID]; twice {
				t.Fatalf("event %s recorded twice", r.ID)
			}
			byID[r.ID], stored[r.ID] = r, raw[i]
		}
	}
	if len(byID) != len(sent) {
		t.Fatalf("%d records for %d events", len(byID), len(sent))
	}

	// The record's shape (api.md): who, what, when, why, and the event's data.
	for id, r := range byID {
		e := sent[id]
		meta := e.ev.GetMeta()
		if !r.Time.Equal(meta.GetOccurredAt().AsTime().Truncate(time.Microsecond)) || r.CorrelationID != meta.GetCorrelationId() {
			t.Errorf("%s: time %v correlation %q; event %v %q", id, r.Time, r.CorrelationID, meta.GetOccurredAt().AsTime(), meta.GetCorrelationId())
		}
		wantActor, wantAddr := domain.Actor{Type: "operator"}, "203.0.113.7"
		if e.account == accB {
			wantActor, wantAddr = domain.Actor{Type: "api_token", ID: "tok_b"}, "198.51.100.2"
		}
		if r.Actor != wantActor || r.SourceAddress != wantAddr {
			t.Errorf("%s: actor %+v from %q, want %+v from %q", id, r.Actor, r.SourceAddress, wantActor, wantAddr)
		}
		var data map[string]any
		_ = json.Unmarshal(r.Data, &data)
		if _, hasMeta := data["meta"]; hasMeta {
			t.Errorf("%s: data carries the event meta", id)
		}
		switch ev := e.ev.(type) {
		case *identityv1.TechnicianCreated:
			if r.Action != "technician.created" || r.Target != (domain.Target{Type: "technician", ID: ev.GetTechnicianId()}) ||
				data["email"] != ev.GetEmail() || data["technician_id"] != ev.GetTechnicianId() || data["requested_role"] != "" {
				t.Errorf("%s: %s on %+v with %s", id, r.Action, r.Target, r.Data)
			}
		case *identityv1.AccountCreated:
			if r.Action != "account.created" || r.Target != (domain.Target{Type: "account", ID: e.account}) ||
				data["admin_email"] != ev.GetAdminEmail() || data["seats"] != float64(5) {
				t.Errorf("%s: %s on %+v with %s", id, r.Action, r.Target, r.Data)
			}
		}
	}

	for acc, n := range want {
		if v := w.verify(t, acc); !v.OK || v.Records != int64(n) || v.FirstBadSequence != nil {
			t.Fatalf("verify %s = %+v, want ok with %d records", acc, v, n)
		}
	}

	// each record published once on roster.audit.<account>.<action>,
	// CloudEvents headers, the stored record as body; its hash recomputes
	// from the body alone.
	info, err := js.StreamInfo(eventbus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(byID)) {
		t.Fatalf("audit stream holds %d messages, want %d", info.State.Msgs, len(byID))
	}
	published := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := js.GetMsg(eventbus.StreamAudit, seq)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get("ce-id")
		r, ok := byID[id]
		if !ok {
			t.Fatalf("published %q, which is no stored record", id)
		}
		published[id]++
		if wantSubj := "roster.audit." + r.AccountID + "." + r.Action; m.Subject != wantSubj {
			t.Errorf("%s on %s, want %s", id, m.Subject, wantSubj)
		}
		for k, v := range map[string]string{
			"ce-specversion": "1.0",
			"ce-type":        "dev.roster.audit." + r.Action,
			"ce-source":      "roster/audit",
			"ce-subject":     r.Target.ID,
			"content-type":   "application/json",
			nats.MsgIdHdr:    id,
		} {
			if got := m.Header.Get(k); got != v {
				t.Errorf("%s: header %s = %q, want %q", id, k, got, v)
			}
		}
		if at, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time")); err != nil || !at.Equal(r.Time) {
			t.Errorf("%s: ce-time %q, want %v", id, m.Header.Get("ce-time"), r.Time)
		}
		if tp := m.Header.Get("traceparent"); r.AccountID == accA && !strings.Contains(tp, traceID.String()) {
			t.Errorf("%s: traceparent %q is not the request's trace %s", id, tp, traceID)
		}
		var body map[string]any
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("%s: body: %v", id, err)
		}
		if !reflect.DeepEqual(body, stored[id]) {
			t.Errorf("%s: published body differs from the stored record\n got %s", id, m.Data)
		}
		delete(body, "hash")
		doc, _ := json.Marshal(body)
		canon, err := domain.CanonicalJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(canon); hex.EncodeToString(sum[:]) != r.Hash {
			t.Errorf("%s: the hash does not recompute from the published record", id)
		}
	}
	for id := range byID {
		if published[id] != 1 {
			t.Errorf("%s published %d times, want once", id, published[id])
		}
	}

	// The API refuses what it cannot honour.
	for path, status := range map[string]int{
		"/v1/accounts/acc_a/audit?limit=501":                           http.StatusUnprocessableEntity,
		"/v1/accounts/acc_a/audit?limit=0":                             http.StatusUnprocessableEntity,
		"/v1/accounts/acc_a/audit?cursor=bm9wZQ":                       http.StatusUnprocessableEntity,
		"/v1/accounts/acc_a/audit?since=yesterday":                     http.StatusUnprocessableEntity,
		"/v1/accounts/acc_a/audit?format=xml":                          http.StatusUnprocessableEntity,
		"/v1/accounts/acc_a/audit?action=technician.created&limit=500": http.StatusOK,
	} {
		if got := w.get(t, path, operatorToken, nil); got != status {
			t.Errorf("GET %s = %d, want %d", path, got, status)
		}
	}
	if got := w.get(t, "/v1/accounts/acc_a/audit", "", nil); got != http.StatusUnauthorized {
		t.Errorf("GET without a token = %d, want 401", got)
	}
	if got := w.get(t, "/v1/accounts/acc_a/audit/verify", "not-the-operator", nil); got != http.StatusUnauthorized {
		t.Errorf("GET verify with a wrong token = %d, want 401", got)
	}

	// a record changed in the database is found at its sequence; the
	// other account's chain is untouched.
	if _, err := w.auditDB.Exec(`UPDATE audit_records SET data = $1 WHERE account_id = $2 AND sequence = 7`,
		`{"technician_id":"tech_ghost","email":"ghost@example.com"}`, accA); err != nil {
		t.Fatal(err)
	}
	if v := w.verify(t, accA); v.OK || v.FirstBadSequence == nil || *v.FirstBadSequence != 7 || v.Records != int64(want[accA]) {
		t.Fatalf("verify after tampering = %+v, want first bad sequence 7", v)
	}
	if v := w.verify(t, accB); !v.OK {
		t.Fatalf("verify of the untouched account = %+v", v)
	}
}
