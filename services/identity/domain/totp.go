package domain

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"net/http"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"roster.dev/pkg/problem"
)

// TOTP parameters (L-3; RFC 6238): 30-second steps, 6 digits, SHA-1 (what
// every authenticator app supports), one step of clock skew either way.
const (
	TOTPPeriod  = 30
	TOTPDigits  = otp.DigitsSix
	TOTPSkew    = 1
	TOTPIssuer  = "Roster"
	RecoveryLen = 10 // recovery codes per enrolment
)

// TOTPStep is the RFC 6238 time step holding t.
func TOTPStep(t time.Time) int64 { return t.Unix() / TOTPPeriod }

// MatchTOTP returns the time step, within ±TOTPSkew of now, whose code is
// code (compared in constant time); ok is false when none matches. The
// caller refuses a step not after the last one accepted (no replay).
func MatchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	cur := TOTPStep(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{Digits: TOTPDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

var recoveryAlphabet = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// NewRecoveryCode returns a recovery code: 50 random bits as ten
// characters of an unambiguous alphabet, shown as xxxxx-xxxxx.
func NewRecoveryCode() string {
	b := make([]byte, 7)
	_, _ = rand.Read(b)
	s := recoveryAlphabet.EncodeToString(b)[:10]
	return s[:5] + "-" + s[5:]
}

// NormalizeRecoveryCode reads a typed recovery code: case, spaces and
// dashes do not matter; "" when it cannot be one.
func NormalizeRecoveryCode(code string) string {
	code = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(code) != 10 {
		return ""
	}
	for _, r := range code {
		if !strings.ContainsRune("abcdefghijkmnpqrstuvwxyz23456789", r) {
			return ""
		}
	}
	return code
}

// Problems of the second factor (L-3).
var (
	ErrSecondFactorRequired = func() *problem.Problem {
		return problem.New(http.StatusUnauthorized, "second-factor-required", "Second factor required",
			"the password is right; send the 6-digit code of your authenticator app (or a recovery code) as totp")
	}
	ErrInvalidSecondFactor = func() *problem.Problem {
		return problem.New(http.StatusUnauthorized, "invalid-second-factor", "Invalid second factor",
			"the code is wrong, expired or already used; wait for the next code of your authenticator app, or use a recovery code")
	}
	ErrSecondFactorEnrolled = func() *problem.Problem {
		return problem.New(http.StatusConflict, "second-factor-enrolled", "Second factor already enrolled",
			"a second factor is enrolled already; an admin can remove it (DELETE …/technicians/{id}/totp) to enrol a new one")
	}
	ErrNoEnrollment = func() *problem.Problem {
		return problem.New(http.StatusConflict, "no-enrollment", "No enrolment in progress",
			"start with POST /v1/auth/totp/enroll")
	}
)
