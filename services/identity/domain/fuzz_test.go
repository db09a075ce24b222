package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// The parsers of the login path (L-1 … L-3) get fuzz targets; their seed
// corpus runs with go test, and `make fuzz` (FUZZTIME=…) fuzzes each.

// FuzzParsePHC: a stored hash is parsed within bounds or refused, never a
// panic, and what parses prints back to the same string.
func FuzzParsePHC(f *testing.F) {
	f.Add(HashPassword("correct horse battery", make([]byte, SaltLen)))
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=19456,t=2,p=300$c2FsdHNhbHQ$aGFzaA")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, encoded string) {
		ph, err := ParsePHC(encoded)
		if err != nil {
			return
		}
		if ph.Memory > 1<<20 || ph.Time > 16 || ph.Threads > 16 || len(ph.Salt) > 64 || len(ph.Key) > 64 {
			t.Fatalf("out of bounds: %+v", ph)
		}
		if !strings.HasPrefix(encoded, "$argon2id$v=19$") {
			t.Fatalf("parsed %q", encoded)
		}
	})
}

// FuzzCheckPassword: the policy answers every string without panicking,
// and whatever it accepts is 12 to 256 characters of valid UTF-8.
func FuzzCheckPassword(f *testing.F) {
	for _, s := range []string{"", "short", "correct horse battery", "password1234", "tess@acme.test", "ééééééééééééé", "\xff\xfe"} {
		f.Add(s, "tess@acme.test")
	}
	f.Fuzz(func(t *testing.T, password, email string) {
		if CheckPassword(password, email) != nil {
			return
		}
		if n := len([]rune(password)); n < MinPasswordLength || n > MaxPasswordLength {
			t.Fatalf("accepted %d characters", n)
		}
	})
}

// FuzzNormalizeRecoveryCode: a typed recovery code becomes ten characters
// of the alphabet or "", and normalising is idempotent.
func FuzzNormalizeRecoveryCode(f *testing.F) {
	for _, s := range []string{NewRecoveryCode(), "ABCDE-FGHJK", "abcde fghjk", "", "0oO1lI-xxxxx", "ééééé-ééééé"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		n := NormalizeRecoveryCode(code)
		if n == "" {
			return
		}
		if len(n) != 10 || NormalizeRecoveryCode(n) != n || strings.Trim(n, "abcdefghijkmnpqrstuvwxyz23456789") != "" {
			t.Fatalf("%q → %q", code, n)
		}
	})
}

// FuzzMatchTOTP: any code and clock is answered without panicking; a
// match is the code of a step within one of now.
func FuzzMatchTOTP(f *testing.F) {
	const secret = "JBSWY3DPEHPK3PXP"
	f.Add("287082", int64(1_800_000_000))
	f.Add("", int64(0))
	f.Add("12345a", int64(59))
	f.Add("000000", int64(-1))
	f.Fuzz(func(t *testing.T, code string, unix int64) {
		now := time.Unix(unix, 0)
		step, ok := MatchTOTP(secret, code, now)
		if !ok {
			return
		}
		if d := step - TOTPStep(now); d < -TOTPSkew || d > TOTPSkew {
			t.Fatalf("step %d is %d steps from now", step, d)
		}
		want, _ := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if want != code {
			t.Fatalf("matched %q, the step's code is %q", code, want)
		}
	})
}

// FuzzSecurityPolicy: a PUT body decoded over the defaults either fails
// validation or gives locks that are positive and capped.
func FuzzSecurityPolicy(f *testing.F) {
	f.Add([]byte(`{"lockout_threshold": 3, "lockout_admin_after": 2}`))
	f.Add([]byte(`{"lockout_base_seconds": 86400, "lockout_max_seconds": 604800}`))
	f.Add([]byte(`{"session_overflow": "refuse", "max_sessions": 1}`))
	f.Add([]byte(`{"lockout_threshold": -1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := DefaultSecurityPolicy()
		if json.Unmarshal(body, &p) != nil || p.Validate() != nil {
			return
		}
		for lock := 1; lock <= 200; lock++ {
			d, ok := p.LockFor(lock)
			if ok && (d <= 0 || d > time.Duration(p.LockoutMaxSeconds)*time.Second) {
				t.Fatalf("lock %d lasts %v under %+v", lock, d, p)
			}
		}
	})
}

// FuzzSSOConfig: validation answers every configuration; an accepted
// issuer is http(s) with a host.
func FuzzSSOConfig(f *testing.F) {
	f.Add("https://acme.okta.com", "client", "secret")
	f.Add("http://127.0.0.1:8080/oidc", "c", "s")
	f.Add("http://evil.example.com", "c", "s")
	f.Add("javascript:alert(1)", "", "")
	f.Fuzz(func(t *testing.T, issuer, id, secret string) {
		c := SSOConfig{Issuer: issuer, ClientID: id, ClientSecret: secret}
		if c.Validate() != nil {
			return
		}
		if l := strings.ToLower(issuer); !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") {
			t.Fatalf("accepted issuer %q", issuer)
		}
	})
}
