package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Head is the end of an account's chain: its last sequence and hash. The
// zero Head is the start of every chain.
type Head struct {
	Sequence int64
	Hash     string
}

// Canonical is the form of r that its hash covers: the record's JSON
// encoding without the "hash" member, in RFC 8785 canonical JSON. Sequence,
// account and prev_hash are inside it, so a record cannot move within its
// chain or to another one without its hash changing.
func Canonical(r Record) ([]byte, error) {
	r.Hash = ""
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Sequence, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fields); err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Sequence, err)
	}
	delete(fields, "hash")
	doc, err = json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Sequence, err)
	}
	return CanonicalJSON(doc)
}

// HashOf is the chain hash of r: hex SHA-256 of Canonical(r).
func HashOf(r Record) (string, error) {
	c, err := Canonical(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// Seal places r after head in its account's chain: the next sequence,
// the head's hash as prev_hash, and its own hash.
func Seal(r Record, head Head) (Record, error) {
	r.Sequence = head.Sequence + 1
	r.PrevHash = head.Hash
	// Data is stored canonical, so verification takes its fast path.
	data, err := CanonicalJSON(r.Data)
	if err != nil {
		return Record{}, fmt.Errorf("audit: record %s: data: %w", r.ID, err)
	}
	r.Data = data
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return Record{}, fmt.Errorf("audit: record %s: time %v out of range", r.ID, r.Time)
	}
	// With canonical data the fast form is Canonical's (FuzzFastCanonical).
	sum := sha256.Sum256(appendCanonical(nil, r))
	r.Hash = hex.EncodeToString(sum[:])
	return r, nil
}

// Verifier walks one account's chain record by record, in sequence order,
// so a chain of any length is checked as it streams from the store.
// It detects a changed record (its hash no longer matches), a removed one (a
// gap in the sequence, or a prev_hash naming another record), an inserted
// one and a reordering (a sequence out of place, or a prev_hash that does
// not link), and a record moved from another account.
type Verifier struct {
	account  string
	head     Head
	records  int64
	firstBad int64
	reason   string
	h        hasher
}

// NewVerifier starts at the beginning of accountID's chain.
func NewVerifier(accountID string) *Verifier { return &Verifier{account: accountID} }

// ResumeVerifier starts after a head known to be good, such as a signed
// checkpoint's.
func ResumeVerifier(accountID string, from Head) *Verifier {
	return &Verifier{account: accountID, head: from}
}

// Next checks the next record of the chain. It reports false from the first
// bad record on; later records are only counted.
func (v *Verifier) Next(r Record) bool {
	v.records++
	if v.firstBad != 0 {
		return false
	}
	want := v.head.Sequence + 1
	switch {
	case r.AccountID != v.account:
		return v.fail(want, fmt.Sprintf("record %d belongs to account %q", want, r.AccountID))
	case r.Sequence != want:
		return v.fail(want, fmt.Sprintf("record %d is missing: the next record has sequence %d", want, r.Sequence))
	case r.PrevHash != v.head.Hash:
		return v.fail(want, fmt.Sprintf("record %d does not link to record %d: its prev_hash is not that record's hash", want, want-1))
	case !v.h.matches(r, r.Hash):
		return v.fail(want, fmt.Sprintf("record %d was changed: its hash does not match its content", want))
	}
	v.head = Head{Sequence: r.Sequence, Hash: r.Hash}
	return true
}

// End checks that the chain reached head, the end the store recorded when
// it appended: records removed from the tail are caught here.
func (v *Verifier) End(head Head) bool {
	if v.firstBad != 0 {
		return false
	}
	switch {
	case v.head.Sequence < head.Sequence:
		v.fail(v.head.Sequence+1, fmt.Sprintf("records %d to %d are missing", v.head.Sequence+1, head.Sequence))
	case v.head.Sequence > head.Sequence:
		v.fail(head.Sequence+1, fmt.Sprintf("record %d is past the chain's recorded end (%d)", head.Sequence+1, head.Sequence))
	case v.head.Hash != head.Hash:
		v.fail(head.Sequence, fmt.Sprintf("record %d is not the chain's recorded end", head.Sequence))
	}
	return v.firstBad == 0
}

// Checkpoint checks that the chain, verified up to c.Sequence, ends with the
// hash c signed; call it right after Next gave record c.Sequence. A
// chain rewritten with fresh hashes links up and hashes right, but no longer
// matches the checkpoints signed before: the first bad sequence is then the
// record after the previous checkpoint that matched, the earliest record
// that can have been rewritten.
func (v *Verifier) Checkpoint(c Checkpoint, lastGood int64) bool {
	if v.firstBad != 0 {
		return false
	}
	if v.head.Sequence != c.Sequence || v.head.Hash != c.Hash {
		return v.fail(lastGood+1, fmt.Sprintf("records %d to %d were rewritten: record %d does not match the checkpoint signed at %s",
			lastGood+1, c.Sequence, c.Sequence, c.Time.Format("2006-01-02T15:04:05Z07:00")))
	}
	return true
}

// Fail marks the chain bad at seq for reason, unless it already is.
func (v *Verifier) Fail(seq int64, reason string) { v.fail(seq, reason) }

func (v *Verifier) fail(seq int64, reason string) bool {
	if v.firstBad == 0 {
		v.firstBad, v.reason = seq, reason
	}
	return false
}

// Reason says why the chain is bad; empty while it is intact.
func (v *Verifier) Reason() string { return v.reason }

// Records is how many records Next was given.
func (v *Verifier) Records() int64 { return v.records }

// FirstBad is the sequence at which the chain breaks: the first record
// that is wrong or, for a record that is missing, the sequence it should
// have had. ok is true while the chain is intact.
func (v *Verifier) FirstBad() (seq int64, ok bool) { return v.firstBad, v.firstBad == 0 }

// Head is the last good record's head.
func (v *Verifier) Head() Head { return v.head }

// Verify recomputes one account's records, in the order given, from the
// start of its chain, and returns the first bad sequence, or ok.
func Verify(accountID string, records []Record) (firstBad int64, ok bool) {
	v := NewVerifier(accountID)
	for _, r := range records {
		if !v.Next(r) {
			break
		}
	}
	return v.FirstBad()
}
