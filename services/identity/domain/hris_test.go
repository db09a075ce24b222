package domain

import (
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification's reference
// libraries: this secret, id, timestamp and payload sign to this value.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specPayload   = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardWebhooksExample(t *testing.T) {
	key, err := DecodeSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(key, specID, specTimestamp, []byte(specPayload)); got != specSignature {
		t.Fatalf("Sign = %s, want %s", got, specSignature)
	}
}

// H-1: the headers, the 5-minute tolerance both ways, several signatures
// (rotation), other versions ignored, several keys.
func TestVerifyWebhook(t *testing.T) {
	key, _ := DecodeSecret(specSecret)
	other := []byte("another key of sixteen bytes or more")
	at := time.Unix(specTimestamp, 0)
	body := []byte(specPayload)
	ts := strconv.Itoa(specTimestamp)
	good := Sign(key, specID, specTimestamp, body)
	wrong := Sign(other, specID, specTimestamp, body)
	tests := []struct {
		name string
		keys [][]byte
		h    WebhookHeaders
		now  time.Time
		want error
	}{
		{"valid", [][]byte{key}, WebhookHeaders{specID, ts, good}, at, nil},
		{"4m59s late", [][]byte{key}, WebhookHeaders{specID, ts, good}, at.Add(299 * time.Second), nil},
		{"6 minutes old", [][]byte{key}, WebhookHeaders{specID, ts, good}, at.Add(6 * time.Minute), ErrWebhookTimestamp},
		{"6 minutes ahead", [][]byte{key}, WebhookHeaders{specID, ts, good}, at.Add(-6 * time.Minute), ErrWebhookTimestamp},
		{"second of several signatures", [][]byte{key}, WebhookHeaders{specID, ts, wrong + " " + good}, at, nil},
		{"v1a ignored", [][]byte{key}, WebhookHeaders{specID, ts, "v1a," + good[3:]}, at, ErrWebhookSignature},
		{"previous key still valid", [][]byte{other, key}, WebhookHeaders{specID, ts, good}, at, nil},
		{"wrong key", [][]byte{key}, WebhookHeaders{specID, ts, wrong}, at, ErrWebhookSignature},
		{"no keys", nil, WebhookHeaders{specID, ts, good}, at, ErrWebhookSignature},
		{"other id", [][]byte{key}, WebhookHeaders{"msg_other", ts, good}, at, ErrWebhookSignature},
		{"no id", [][]byte{key}, WebhookHeaders{"", ts, good}, at, ErrWebhookHeaders},
		{"timestamp not a number", [][]byte{key}, WebhookHeaders{specID, "yesterday", good}, at, ErrWebhookHeaders},
		{"no signature", [][]byte{key}, WebhookHeaders{specID, ts, ""}, at, ErrWebhookHeaders},
		{"signature not base64", [][]byte{key}, WebhookHeaders{specID, ts, "v1,!!!"}, at, ErrWebhookSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyWebhook(tt.keys, tt.h, body, tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("VerifyWebhook = %v, want %v", err, tt.want)
			}
		})
	}
	// The body is signed too.
	if err := VerifyWebhook([][]byte{key}, WebhookHeaders{specID, ts, good}, []byte(`{"test": 1}`), at); !errors.Is(err, ErrWebhookSignature) {
		t.Fatalf("changed body: %v", err)
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, s := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := DecodeSecret(s); err == nil {
			t.Errorf("DecodeSecret(%q) accepted", s)
		}
	}
}

func TestParseEmployeeEvent(t *testing.T) {
	sent := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, source, body string
		wantType, wantErr  string
	}{
		{"generic hire", SourceGeneric, `{"type":"employee.hired","effective_date":"2026-12-01","employee":{"id":"E1","email":"a@b.test","first_name":"A","last_name":"B"}}`, EmployeeHired, ""},
		{"generic terminate without email", SourceGeneric, `{"type":"employee.terminated","employee":{"id":"E1"}}`, EmployeeTerminated, ""},
		{"hire without email", SourceGeneric, `{"type":"employee.hired","employee":{"id":"E1"}}`, "", "employee.email"},
		{"unknown type", SourceGeneric, `{"type":"employee.promoted","employee":{"id":"E1"}}`, "", "type"},
		{"bad date", SourceGeneric, `{"type":"employee.updated","effective_date":"1/12/2026","employee":{"id":"E1"}}`, "", "effective_date"},
		{"no employee", SourceGeneric, `{"type":"employee.updated"}`, "", "employee.id"},
		{"not JSON", SourceGeneric, `<xml/>`, "", "Malformed"},
		{"bamboo created", SourceBambooHR, `{"employees":[{"id":"7","action":"Created","fields":{"workEmail":"a@b.test","firstName":"A","lastName":"B","hireDate":"2026-11-20"}}]}`, EmployeeHired, ""},
		{"bamboo terminated", SourceBambooHR, `{"employees":[{"id":"7","action":"Updated","fields":{"status":"Inactive","terminationDate":"2026-12-31"}}]}`, EmployeeTerminated, ""},
		{"bamboo updated", SourceBambooHR, `{"employees":[{"id":"7","action":"Updated","fields":{"department":"IT"}}]}`, EmployeeUpdated, ""},
		{"bamboo batch", SourceBambooHR, `{"employees":[{"id":"7","action":"Updated"},{"id":"8","action":"Updated"}]}`, "", "employees"},
		{"unknown source", "workday", `{}`, "", "workday"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseEmployeeEvent(tt.source, []byte(tt.body), sent)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || ev.Type != tt.wantType || !ev.OccurredAt.Equal(sent) {
				t.Fatalf("= %+v, %v; want type %s at %s", ev, err, tt.wantType, sent)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestMappingDecide(t *testing.T) {
	m := Mapping{Rules: []Rule{
		{When: Condition{Department: "IT Support", JobTitle: "Tier 2"}, Then: Target{Kind: MapTechnician, Role: "Tier 2"}},
		{When: Condition{Department: "it support"}, Then: Target{Kind: MapTechnician, Role: "Beginner"}},
		{When: Condition{Location: "Store 5"}, Then: Target{Kind: MapEndUser, SiteID: "site_5"}},
	}, Default: Target{Kind: MapIgnore}}
	if p := m.Validate(); p != nil {
		t.Fatal(p)
	}
	tests := []struct {
		e        Employee
		kind     string
		role     string
		wantRule int
	}{
		{Employee{Department: "IT SUPPORT", JobTitle: "tier 2"}, MapTechnician, "Tier 2", 0},
		{Employee{Department: "IT Support", JobTitle: "Tier 1"}, MapTechnician, "Beginner", 1},
		{Employee{Department: "Sales", Location: "store 5"}, MapEndUser, "", 2},
		{Employee{Department: "Sales"}, MapIgnore, "", -1},
	}
	for _, tt := range tests {
		got, rule := m.Decide(tt.e)
		if got.Kind != tt.kind || got.Role != tt.role || rule != tt.wantRule {
			t.Errorf("Decide(%+v) = %+v rule %d", tt.e, got, rule)
		}
	}
	bad := Mapping{Rules: []Rule{{When: Condition{}, Then: Target{Kind: MapEndUser}}}, Default: Target{Kind: "nobody"}}
	if p := bad.Validate(); p == nil || len(p.Errors) != 3 {
		t.Fatalf("bad mapping: %v", p)
	}
}

// FuzzWebhook: whatever the headers and body, verification and parsing
// never panic, a valid signature is never refused, and a parsed event
// always has a known type and an employee id.
func FuzzWebhook(f *testing.F) {
	f.Add("msg_1", "1614265330", specSignature, []byte(specPayload), "generic")
	f.Add("msg_1", "1614265330", "v1,xx v1a,yy", []byte(`{"type":"employee.hired","employee":{"id":"1","email":"a@b.c"}}`), "generic")
	f.Add("m", "-1", "v1,", []byte(`{"employees":[{"id":"1","action":"Created","fields":{"workEmail":"a@b.c"}}]}`), "bamboohr")
	f.Add("", "", "", []byte(`{"employees":null}`), "bamboohr")
	key, _ := DecodeSecret(specSecret)
	now := time.Unix(specTimestamp, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, source string) {
		_ = VerifyWebhook([][]byte{key}, WebhookHeaders{id, ts, sig}, body, now)
		if id != "" && len(id) <= 256 {
			good := Sign(key, id, specTimestamp, body)
			if err := VerifyWebhook([][]byte{key}, WebhookHeaders{id, strconv.Itoa(specTimestamp), sig + " " + good}, body, now); err != nil {
				t.Fatalf("a valid signature refused: %v", err)
			}
		}
		ev, err := ParseEmployeeEvent(source, body, now)
		if err != nil {
			return
		}
		switch ev.Type {
		case EmployeeHired, EmployeeUpdated, EmployeeTerminated:
		default:
			t.Fatalf("parsed type %q", ev.Type)
		}
		if ev.Employee.ID == "" {
			t.Fatal("parsed without an employee id")
		}
	})
}
