package domain

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"roster.dev/pkg/problem"
)

// Password length bounds (L-1: at least 12 under roster; the bound is kept
// for every profile). The upper bound keeps the hashing cost of a request
// bounded; 256 characters leave room for any passphrase.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// commonPasswords are frequent passwords long enough to pass the length
// rule (from public breach lists); compared case-insensitively.
var commonPasswords = map[string]bool{}

func init() {
	for _, p := range strings.Fields(`
		123456789012 1234567890123 12345678901234 123456123456 123123123123 111111111111 000000000000
		password1234 password12345 password123! passw0rd1234 passwordpassword p@ssw0rd1234
		qwertyuiop12 qwerty123456 qwertyqwerty qwertyuiopasdf 1q2w3e4r5t6y 1qaz2wsx3edc q1w2e3r4t5y6 asdfghjkl123
		iloveyou1234 letmein12345 welcome12345 welcome123456 administrator admin1234567 admin123456789 changeme1234
		abc123abc123 abcdefghijkl abcd1234abcd football1234 baseball1234 sunshine1234 princess1234 monkey123456
		dragon123456 superman1234 starwars1234 trustno1trustno1 correcthorsebatterystaple whatever1234
		roster123456 rosterroster helpdesk1234 support12345 technician12
	`) {
		commonPasswords[p] = true
	}
}

// CheckPassword applies L-1's policy to a new password of the technician
// with this email: long enough, not the email (nor its local part), not a
// common password, not one character repeated. The 422 names `password`.
func CheckPassword(password, email string) *problem.Problem {
	bad := func(detail string) *problem.Problem {
		return problem.Invalid(problem.FieldError{Field: "password", Detail: detail})
	}
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return bad("must be valid UTF-8 text")
	case n < MinPasswordLength:
		return bad(fmt.Sprintf("must be at least %d characters", MinPasswordLength))
	case n > MaxPasswordLength:
		return bad(fmt.Sprintf("must be at most %d characters", MaxPasswordLength))
	}
	lower := strings.ToLower(password)
	key := EmailKey(email)
	local, _, _ := strings.Cut(key, "@")
	switch {
	case lower == key || lower == local:
		return bad("must not be your email address")
	case commonPasswords[lower]:
		return bad("is too common; choose a longer phrase of unrelated words")
	case strings.Count(password, string([]rune(password)[:1])) == n:
		return bad("must not be one character repeated")
	}
	return nil
}

// Argon2id parameters (L-1), at least OWASP's minimum (m=19 MiB, t=2,
// p=1). They are stored with every hash (PHC string), so they can be
// raised later without invalidating stored passwords.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	SaltLen      = 16
)

// NewSalt returns SaltLen random bytes.
func NewSalt() []byte {
	s := make([]byte, SaltLen)
	_, _ = rand.Read(s)
	return s
}

var b64 = base64.RawStdEncoding

// HashPassword hashes password with argon2id and salt (L-1), encoded as a
// PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string, salt []byte) string {
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// ErrBadHash is a stored hash that is not an argon2id PHC string Roster
// accepts.
var ErrBadHash = errors.New("password hash: not an argon2id PHC string within bounds")

// VerifyPassword reports whether password matches the PHC string encoded,
// comparing in constant time. The parameters are read from encoded, within
// bounds, so a damaged row cannot make one check take gigabytes.
func VerifyPassword(encoded, password string) (bool, error) {
	ph, err := ParsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), ph.Salt, ph.Time, ph.Memory, ph.Threads, uint32(len(ph.Key)))
	return subtle.ConstantTimeCompare(got, ph.Key) == 1, nil
}

// PHC is a parsed argon2id PHC string.
type PHC struct {
	Memory, Time uint32
	Threads      uint8
	Salt, Key    []byte
}

// ParsePHC reads an argon2id PHC string within bounds (a damaged row
// cannot make one check take gigabytes): m ≤ 1 GiB, t ≤ 16, p ≤ 16, salt
// 8…64 bytes, key 16…64 bytes.
func ParsePHC(encoded string) (PHC, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return PHC{}, ErrBadHash
	}
	var ph PHC
	var rest string
	if n, _ := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d%s", &ph.Memory, &ph.Time, &ph.Threads, &rest); n != 3 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", ph.Memory, ph.Time, ph.Threads) {
		return PHC{}, ErrBadHash
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || ph.Memory < 8 || ph.Memory > 1<<20 || ph.Time < 1 || ph.Time > 16 || ph.Threads < 1 || ph.Threads > 16 ||
		len(salt) < 8 || len(salt) > 64 || len(key) < 16 || len(key) > 64 {
		return PHC{}, ErrBadHash
	}
	ph.Salt, ph.Key = salt, key
	return ph, nil
}

// ErrInvalidCredentials is the one answer to a failed login, whatever
// failed — unknown email, wrong password, no password yet, disabled
// technician (I-7) — so the answer reveals nothing (L-5).
func ErrInvalidCredentials() *problem.Problem {
	return problem.New(http.StatusUnauthorized, "invalid-credentials", "Invalid credentials", "the email or the password is wrong")
}
