package domain

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// The fast canonical form is the definition's (Canonical) whenever the
// data is canonical: any string, any time, any data object. Run longer with
// go test -fuzz FuzzFastCanonical ./services/audit/domain
func FuzzFastCanonical(f *testing.F) {
	f.Add("acc_1", "technician.created", "tech_1", `{"a":1,"b":[true,null,"x"]}`, "203.0.113.7", int64(1), int64(1700000000123456))
	f.Add("acc\u2028<&>", "login.failed", "\x00\x1f\"\\\t", `{"é":"\u00e9","z":-0.0,"big":1e21}`, "", int64(99), int64(0))
	f.Add("\xff\xfe", "a", "𝄞", `{"\ud834\udd1e":1,"\u00ff":2}`, "::1", int64(1<<53), int64(-62135596800000000))
	f.Fuzz(func(t *testing.T, acc, action, id, data, addr string, seq, micros int64) {
		if seq > 1<<53 || seq < -(1<<53) {
			return // JCS numbers are IEEE doubles; a chain never gets that long
		}
		canon, err := CanonicalJSON([]byte(data))
		if err != nil || !json.Valid(canon) || canon[0] != '{' {
			return
		}
		r := Record{Sequence: seq, ID: id, AccountID: acc, Action: action, Actor: Actor{Type: action, ID: id},
			Target: Target{Type: addr, ID: acc}, Time: time.UnixMicro(micros).UTC(), CorrelationID: id,
			Data: canon, SourceAddress: addr, PrevHash: action}
		if y := r.Time.Year(); y < 0 || y > 9999 {
			return
		}
		want, err := Canonical(r)
		if err != nil {
			return
		}
		if got := appendCanonical(nil, r); !bytes.Equal(got, want) {
			t.Fatalf("fast canonical form differs:\n got %s\nwant %s", got, want)
		}
		h, _ := HashOf(r)
		var x hasher
		if !x.matches(r, h) {
			t.Fatal("the hash of the definition does not match on the fast path")
		}
	})
}

// A record whose data is stored in another, equivalent JSON form still
// verifies (the definition is JCS); one whose data changed does not.
func TestHasherFallsBackToTheDefinition(t *testing.T) {
	r, err := Seal(benchRecord(3), Head{})
	if err != nil {
		t.Fatal(err)
	}
	var h hasher
	if !h.matches(r, r.Hash) {
		t.Fatal("a sealed record does not match its hash")
	}
	spaced := r
	spaced.Data = json.RawMessage(`{ "technician_id":"tech_00000003", "status":"invited","site_ids":[],"role_id":"","phone":"","last_name":"Number 3","first_name":"Tech","email":"t3@example.com"}`)
	if !h.matches(spaced, r.Hash) {
		t.Fatal("equivalent data in another form does not match")
	}
	changed := r
	changed.Data = json.RawMessage(`{"email":"t4@example.com","first_name":"Tech","last_name":"Number 3","phone":"","role_id":"","site_ids":[],"status":"invited","technician_id":"tech_00000003"}`)
	if h.matches(changed, r.Hash) {
		t.Fatal("changed data matches")
	}
}

// Seal's hash is the definition's (HashOf), not only the fast path's.
func TestSealHashIsTheDefinition(t *testing.T) {
	head := Head{}
	for i := range 50 {
		r, err := Seal(benchRecord(i), head)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := HashOf(r); err != nil || h != r.Hash {
			t.Fatalf("record %d: sealed hash %s, definition %s (%v)", i, r.Hash, h, err)
		}
		head = Head{Sequence: r.Sequence, Hash: r.Hash}
	}
}
