package domain

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchRecord is a record of the size Roster's busiest actions produce
// (technician.created).
func benchRecord(i int) Record {
	return Record{
		ID: fmt.Sprintf("aud_evt_%012d", i), AccountID: "acc_bench", Action: "technician.created",
		Actor:  Actor{Type: ActorOperator},
		Target: Target{Type: "technician", ID: fmt.Sprintf("tech_%08d", i)},
		Time:   time.Date(2026, 3, 1, 8, 30, 0, 123456000, time.UTC).Add(time.Duration(i) * time.Millisecond),
		Data: json.RawMessage(fmt.Sprintf(`{"email":"t%d@example.com","first_name":"Tech","last_name":"Number %d","phone":"","role_id":"","site_ids":[],"status":"invited","technician_id":"tech_%08d"}`,
			i, i, i)),
		CorrelationID: "req-bench", SourceAddress: "203.0.113.7",
	}
}

// go test -run - -bench HashOf ./services/audit/domain
func BenchmarkHashOf(b *testing.B) {
	r := benchRecord(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashOf(r); err != nil {
			b.Fatal(err)
		}
	}
}

// go test -run - -bench Verifier ./services/audit/domain
func BenchmarkVerifierNext(b *testing.B) {
	const n = 4096
	recs := make([]Record, n)
	head := Head{}
	for i := range recs {
		r, err := Seal(benchRecord(i), head)
		if err != nil {
			b.Fatal(err)
		}
		recs[i], head = r, Head{Sequence: r.Sequence, Hash: r.Hash}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		v := NewVerifier("acc_bench")
		for _, r := range recs[:min(n, b.N-i)] {
			if !v.Next(r) {
				b.Fatal(v.FirstBad())
			}
		}
	}
}
