package ports_test

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/audit/ports"
)

func TestEntryOf(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 5000, time.UTC)
	ev := &identityv1.TechnicianCreated{
		Meta: &commonv1.EventMeta{EventId: "e1", AccountId: "acc_1", OccurredAt: timestamppb.New(at), CorrelationId: "req-1",
			Actor: &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_SCIM, Id: "scim_okta", SourceAddress: "192.0.2.1"}},
		TechnicianId: "tech_1", Email: "a@example.com",
	}
	e, err := ports.EntryOf(ev)
	if err != nil {
		t.Fatal(err)
	}
	if e.EventID != "e1" || e.EventType != "roster.identity.v1.TechnicianCreated" || e.AccountID != "acc_1" ||
		!e.OccurredAt.Equal(at) || e.CorrelationID != "req-1" || e.Actor.Type != "scim" || e.Actor.ID != "scim_okta" ||
		e.SourceAddress != "192.0.2.1" {
		t.Fatalf("entry = %+v", e)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	// snake_case proto names, every field present, no meta.
	for _, k := range []string{"technician_id", "email", "first_name", "requested_role", "site_ids", "reservation_id"} {
		if _, ok := data[k]; !ok {
			t.Errorf("data lacks %s: %s", k, e.Data)
		}
	}
	if _, ok := data["meta"]; ok {
		t.Errorf("data carries meta: %s", e.Data)
	}

	// Money and timestamps render as protojson does.
	ch, err := ports.EntryOf(&seatbillingv1.ChargeRecorded{Meta: &commonv1.EventMeta{EventId: "e2"}, ChargeId: "chg_1",
		Amount: &commonv1.Money{Amount: 18900, Currency: "usd"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ch.Data); got != `{"amount":{"amount":"18900","currency":"usd"},"charge_id":"chg_1","reason":"","technician_id":""}` {
		t.Errorf("charge data = %s", got)
	}
}

func TestActorTypes(t *testing.T) {
	for typ, want := range map[commonv1.ActorType]string{
		commonv1.ActorType_ACTOR_TYPE_TECHNICIAN:  "technician",
		commonv1.ActorType_ACTOR_TYPE_OPERATOR:    "operator",
		commonv1.ActorType_ACTOR_TYPE_API_TOKEN:   "api_token",
		commonv1.ActorType_ACTOR_TYPE_HRIS:        "hris",
		commonv1.ActorType_ACTOR_TYPE_SCIM:        "scim",
		commonv1.ActorType_ACTOR_TYPE_SYSTEM:      "system",
		commonv1.ActorType_ACTOR_TYPE_UNSPECIFIED: "system",
	} {
		e, err := ports.EntryOf(&identityv1.FirstLogin{Meta: &commonv1.EventMeta{EventId: "e", Actor: &commonv1.Actor{Type: typ}}})
		if err != nil {
			t.Fatal(err)
		}
		if e.Actor.Type != want {
			t.Errorf("%v → %q, want %q", typ, e.Actor.Type, want)
		}
	}
}

func TestCursor(t *testing.T) {
	for _, seq := range []int64{1, 50, 1 << 40} {
		if got, ok := ports.DecodeCursor(ports.EncodeCursor(seq)); !ok || got != seq {
			t.Errorf("cursor of %d decodes to %d, %v", seq, got, ok)
		}
	}
	for _, bad := range []string{"", "!!", "bm9wZQ", ports.EncodeCursor(0)} {
		if _, ok := ports.DecodeCursor(bad); ok {
			t.Errorf("DecodeCursor(%q) accepted", bad)
		}
	}
}
