package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"roster.dev/pkg/problem"
)

// Problems of erasure (I-3).
var (
	ErrErasureNotOffered = func() *problem.Problem {
		return problem.New(http.StatusConflict, "erasure-not-offered", "Erasure not offered",
			"this account's profile keeps disabled technicians (their email stays reserved); change the email of the disabled technician to free it instead")
	}
	ErrErasureTooEarly = func(after time.Time) *problem.Problem {
		return problem.New(http.StatusConflict, "retention-not-over", "Retention period not over",
			"the technician can be erased from "+after.UTC().Format(time.RFC3339)).With("erasable_at", after.UTC())
	}
	ErrErasureNeedsDisabled = func() *problem.Problem {
		return problem.New(http.StatusConflict, "not-disabled", "Technician is not disabled", "only a disabled technician can be erased")
	}
)

// Pseudonym is the stable stand-in of an erased technician: derived from
// the id, so the audit log's attribution (by id) and the pseudonym agree.
func Pseudonym(technicianID string) string {
	sum := sha256.Sum256([]byte("roster-erased:" + technicianID))
	return "erased-" + hex.EncodeToString(sum[:6])
}

// Erase checks I-3's erasure rule — disabled for longer than the retention
// period of the profile (0 days: not offered) — and replaces the personal
// data with the pseudonym.
func Erase(t *Technician, retentionDays int, now time.Time) *problem.Problem {
	if retentionDays <= 0 {
		return ErrErasureNotOffered()
	}
	if t.Status != StatusDisabled || t.DisabledAt == nil {
		return ErrErasureNeedsDisabled()
	}
	if after := t.DisabledAt.Add(time.Duration(retentionDays) * 24 * time.Hour); now.Before(after) {
		return ErrErasureTooEarly(after)
	}
	p := Pseudonym(t.ID)
	t.Email, t.FirstName, t.LastName, t.Phone = p+"@erased.invalid", "Erased", p, ""
	t.Erased = true
	return nil
}
