package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"roster.dev/services/audit/domain"
)

// chain builds an intact chain of n TechnicianCreated records for account.
func chain(t *testing.T, account string, n int) []domain.Record {
	t.Helper()
	var out []domain.Record
	var head domain.Head
	for i := 1; i <= n; i++ {
		r, err := domain.NewRecord(domain.Entry{
			EventID:       fmt.Sprintf("evt-%s-%d", account, i),
			EventType:     "roster.identity.v1.TechnicianCreated",
			AccountID:     account,
			OccurredAt:    time.Date(2026, 3, 1, 9, 0, i, 123456789, time.UTC),
			Actor:         domain.Actor{Type: domain.ActorOperator},
			SourceAddress: "203.0.113.9",
			CorrelationID: fmt.Sprintf("req-%d", i),
			Data:          json.RawMessage(fmt.Sprintf(`{"technician_id":"tech_%d","email":"t%d@example.com"}`, i, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r, err = domain.Seal(r, head); err != nil {
			t.Fatal(err)
		}
		head = domain.Head{Sequence: r.Sequence, Hash: r.Hash}
		out = append(out, r)
	}
	return out
}

// reseal recomputes r's hash as an attacker with database access would.
func reseal(t *testing.T, r domain.Record) domain.Record {
	t.Helper()
	h, err := domain.HashOf(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Hash = h
	return r
}

// verify detects any changed, removed, inserted or reordered record.
func TestVerifyDetectsTampering(t *testing.T) {
	const acc = "acc_a"
	tests := []struct {
		name   string
		tamper func(t *testing.T, rs []domain.Record) []domain.Record
		// bad is the first bad sequence; 0 = intact.
		bad int64
	}{
		{"intact", func(_ *testing.T, rs []domain.Record) []domain.Record { return rs }, 0},
		{"empty chain", func(_ *testing.T, rs []domain.Record) []domain.Record { return nil }, 0},
		{"changed data", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[2].Data = json.RawMessage(`{"technician_id":"tech_3","email":"evil@example.com"}`)
			return rs
		}, 3},
		{"changed action", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[2].Action = "technician.disabled"
			return rs
		}, 3},
		{"changed actor", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[3].Actor = domain.Actor{Type: domain.ActorTechnician, ID: "tech_9"}
			return rs
		}, 4},
		{"changed time", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[0].Time = rs[0].Time.Add(time.Microsecond)
			return rs
		}, 1},
		{"changed hash", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[4].Hash = rs[3].Hash
			return rs
		}, 5},
		{"changed and rehashed: the next record no longer links", func(t *testing.T, rs []domain.Record) []domain.Record {
			rs[2].Data = json.RawMessage(`{"technician_id":"tech_3","email":"evil@example.com"}`)
			rs[2] = reseal(t, rs[2])
			return rs
		}, 4},
		{"data that is not JSON", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[1].Data = json.RawMessage(`{"technician_id":`)
			return rs
		}, 2},
		{"removed from the middle", func(_ *testing.T, rs []domain.Record) []domain.Record {
			return slices.Delete(rs, 2, 3)
		}, 3},
		{"removed first", func(_ *testing.T, rs []domain.Record) []domain.Record {
			return rs[1:]
		}, 1},
		{"removed and the rest renumbered", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs = slices.Delete(rs, 2, 3)
			for i := 2; i < len(rs); i++ {
				rs[i].Sequence--
			}
			return rs
		}, 3},
		{"inserted, well formed and linked", func(t *testing.T, rs []domain.Record) []domain.Record {
			forged, err := domain.Seal(rs[0], domain.Head{Sequence: rs[1].Sequence, Hash: rs[1].Hash})
			if err != nil {
				t.Fatal(err)
			}
			return slices.Insert(rs, 2, forged)
		}, 4},
		{"inserted and the rest renumbered", func(t *testing.T, rs []domain.Record) []domain.Record {
			forged, err := domain.Seal(rs[0], domain.Head{Sequence: rs[1].Sequence, Hash: rs[1].Hash})
			if err != nil {
				t.Fatal(err)
			}
			rs = slices.Insert(rs, 2, forged)
			for i := 3; i < len(rs); i++ {
				rs[i].Sequence++
			}
			return rs
		}, 4},
		{"inserted with a wrong hash", func(_ *testing.T, rs []domain.Record) []domain.Record {
			forged := rs[0]
			forged.Sequence, forged.PrevHash = 3, rs[1].Hash
			return slices.Insert(rs, 2, forged)
		}, 3},
		{"reordered", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[2], rs[3] = rs[3], rs[2]
			return rs
		}, 3},
		{"reordered with the sequences swapped back", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[2], rs[3] = rs[3], rs[2]
			rs[2].Sequence, rs[3].Sequence = 3, 4
			return rs
		}, 3},
		{"moved from another account", func(t *testing.T, rs []domain.Record) []domain.Record {
			other := chain(t, "acc_b", 5)
			rs[1] = other[1]
			return rs
		}, 2},
		{"account id changed", func(_ *testing.T, rs []domain.Record) []domain.Record {
			rs[0].AccountID = "acc_b"
			return rs
		}, 1},
		{"first record links to something", func(t *testing.T, rs []domain.Record) []domain.Record {
			rs[0].PrevHash = rs[4].Hash
			rs[0] = reseal(t, rs[0])
			return rs
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := tt.tamper(t, chain(t, acc, 5))
			bad, ok := domain.Verify(acc, rs)
			if tt.bad == 0 {
				if !ok {
					t.Fatalf("intact chain reported bad at %d", bad)
				}
				return
			}
			if ok || bad != tt.bad {
				t.Fatalf("Verify = (%d, %v), want first bad sequence %d", bad, ok, tt.bad)
			}
		})
	}
}

// a record removed from the end is invisible in the records alone; the
// head the store recorded at append time reveals it.
func TestVerifierEndChecksTheHead(t *testing.T) {
	rs := chain(t, "acc_a", 5)
	head := domain.Head{Sequence: 5, Hash: rs[4].Hash}
	tests := []struct {
		name    string
		records []domain.Record
		head    domain.Head
		bad     int64
	}{
		{"whole chain", rs, head, 0},
		{"last removed", rs[:4], head, 5},
		{"last two removed", rs[:3], head, 4},
		{"all removed", nil, head, 1},
		{"record beyond the head", rs, domain.Head{Sequence: 4, Hash: rs[3].Hash}, 5},
		{"last replaced", rs, domain.Head{Sequence: 5, Hash: rs[3].Hash}, 5},
		{"no head, no records", nil, domain.Head{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := domain.NewVerifier("acc_a")
			for _, r := range tt.records {
				v.Next(r)
			}
			ok := v.End(tt.head)
			bad, _ := v.FirstBad()
			if ok != (tt.bad == 0) || bad != tt.bad {
				t.Fatalf("End = %v, first bad %d; want first bad %d", ok, bad, tt.bad)
			}
			if v.Records() != int64(len(tt.records)) {
				t.Fatalf("Records = %d, want %d", v.Records(), len(tt.records))
			}
		})
	}
}

// A checkpoint (a head known good) lets verification start mid-chain.
func TestResumeVerifier(t *testing.T) {
	rs := chain(t, "acc_a", 6)
	v := domain.ResumeVerifier("acc_a", domain.Head{Sequence: 3, Hash: rs[2].Hash})
	for _, r := range rs[3:] {
		if !v.Next(r) {
			bad, _ := v.FirstBad()
			t.Fatalf("resumed chain bad at %d", bad)
		}
	}
	v = domain.ResumeVerifier("acc_a", domain.Head{Sequence: 3, Hash: rs[1].Hash})
	if v.Next(rs[3]) {
		t.Fatal("a record that does not link to the checkpoint was accepted")
	}
}

// The canonical form and hash are a contract with outsiders who verify the
// chain from the published records: this golden pins it.
func TestCanonicalFormIsStable(t *testing.T) {
	r, err := domain.NewRecord(domain.Entry{
		EventID:       "0190f5c2-0000-7000-8000-000000000001",
		EventType:     "roster.identity.v1.TechnicianCreated",
		AccountID:     "acc_1",
		OccurredAt:    time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.FixedZone("CET", 3600)),
		Actor:         domain.Actor{Type: domain.ActorAPIToken, ID: "tok_1"},
		SourceAddress: "203.0.113.9",
		CorrelationID: "req-1",
		Data:          json.RawMessage(`{ "technician_id": "tech_1", "email": "ana@example.com", "site_ids": [] }`),
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err = domain.Seal(r, domain.Head{Sequence: 41, Hash: "ab"})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"account_id":"acc_1","action":"technician.created","actor":{"id":"tok_1","type":"api_token"},` +
		`"correlation_id":"req-1","data":{"email":"ana@example.com","site_ids":[],"technician_id":"tech_1"},` +
		`"id":"aud_0190f5c2-0000-7000-8000-000000000001","prev_hash":"ab","sequence":42,"source_address":"203.0.113.9",` +
		`"target":{"id":"tech_1","type":"technician"},"time":"2026-03-01T08:30:00.123456Z"}`
	got, err := domain.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("canonical form\n got %s\nwant %s", got, want)
	}
	sum := sha256.Sum256([]byte(want))
	if r.Hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s is not SHA-256 of the canonical form", r.Hash)
	}
	// What clients receive, minus "hash", canonicalises to the same bytes.
	doc, _ := json.Marshal(r)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(doc, &m)
	delete(m, "hash")
	doc, _ = json.Marshal(m)
	fromJSON, err := domain.CanonicalJSON(doc)
	if err != nil || string(fromJSON) != want {
		t.Fatalf("canonical form of the client JSON = %s, %v", fromJSON, err)
	}
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"whitespace and key order", `{ "b": 1, "a": [ true, false, null ] }`, `{"a":[true,false,null],"b":1}`},
		{"nested objects sorted", `{"z":{"y":1,"x":2},"a":{}}`, `{"a":{},"z":{"x":2,"y":1}}`},
		{"integers", `[0, -0, 1.0, 100, 1e3, 9007199254740991]`, `[0,0,1,100,1000,9007199254740991]`},
		{"fractions and exponents (RFC 8785 §3.2.2.3)", `[4.50, 2e-3, 0.000001, 1e-7, 1e21, 1E30, 0.000000000000000000000000001]`, `[4.5,0.002,0.000001,1e-7,1e+21,1e+30,1e-27]`},
		{"string escapes", `["a\"b\\c\/d", "\u0001\n\t", "\u00e9\u20ac<>&", "\u2028"]`, "[\"a\\\"b\\\\c/d\",\"\\u0001\\n\\t\",\"é€<>&\",\"\u2028\"]"},
		{"keys by UTF-16 code units", `{"\ud83d\ude00":1,"\ufb01":2,"a":3}`, "{\"a\":3,\"\U0001F600\":1,\"\ufb01\":2}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	for _, bad := range []string{``, `{"a":`, `{} {}`} {
		if _, err := domain.CanonicalJSON([]byte(bad)); err == nil {
			t.Errorf("CanonicalJSON(%q) accepted", bad)
		}
	}
}
