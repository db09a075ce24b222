package domain

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// L-2: locks double from the base up to the cap; after LockoutAdminAfter
// temporary locks in a row only an admin unlocks (0: never).
func TestLockFor(t *testing.T) {
	p := DefaultSecurityPolicy()
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute}
	for i, w := range want {
		if d, ok := p.LockFor(i + 1); !ok || d != w {
			t.Errorf("lock %d: %v %v, want %v", i+1, d, ok, w)
		}
	}
	if _, ok := p.LockFor(6); ok {
		t.Error("the sixth lock in a row is temporary")
	}
	p.LockoutAdminAfter = 0
	if d, ok := p.LockFor(60); !ok || d != 15*time.Minute {
		t.Errorf("lock 60 without admin escalation: %v %v", d, ok)
	}
}

// L-3: the policy's requirement by role.
func TestSecondFactorRequired(t *testing.T) {
	for _, c := range []struct {
		policy       string
		admin, techn bool
	}{{SecondFactorNone, false, false}, {SecondFactorAdmins, true, false}, {SecondFactorAll, true, true}} {
		p := SecurityPolicy{RequireSecondFactor: c.policy}
		if p.SecondFactorRequired(true) != c.admin || p.SecondFactorRequired(false) != c.techn {
			t.Errorf("%s: admin %v technician %v", c.policy, p.SecondFactorRequired(true), p.SecondFactorRequired(false))
		}
	}
}

// L-3 (RFC 6238): a code matches its own step and the ones either side,
// not two steps away; the step is returned for the replay check.
func TestMatchTOTP(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	code, _ := totp.GenerateCode(secret, now)
	for _, c := range []struct {
		offset time.Duration
		ok     bool
	}{{0, true}, {29 * time.Second, true}, {30 * time.Second, true}, {-30 * time.Second, true}, {60 * time.Second, false}, {-31 * time.Second, false}} {
		step, ok := MatchTOTP(secret, code, now.Add(c.offset))
		if ok != c.ok || ok && step != TOTPStep(now) {
			t.Errorf("code of %v checked at %+v: step %d ok %v", now, c.offset, step, ok)
		}
	}
	if _, ok := MatchTOTP(secret, "12345", now); ok {
		t.Error("five digits matched")
	}
}

// Recovery codes: ten characters of the alphabet, read back whatever the
// case, spaces and dashes.
func TestRecoveryCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c := NewRecoveryCode()
		n := NormalizeRecoveryCode(c)
		if len(c) != 11 || c[5] != '-' || n == "" || seen[n] {
			t.Fatalf("code %q → %q", c, n)
		}
		seen[n] = true
		if NormalizeRecoveryCode(" "+toUpper(c)+" ") != n {
			t.Fatalf("typed differently: %q", c)
		}
	}
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
