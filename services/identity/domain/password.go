package domain

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
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

// Argon2id output and salt lengths (L-1).
const (
	argonKeyLen = 32
	SaltLen     = 16
)

// Argon2Params are argon2id's cost parameters (L-1). They are stored with
// every hash (PHC string), so they can be raised without invalidating
// stored passwords.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

func (p Argon2Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// Argon2Default is OWASP's recommended minimum: m=19 MiB, t=2, p=1.
var Argon2Default = Argon2Params{Memory: 19456, Time: 2, Threads: 1}

var argonParams atomic.Pointer[Argon2Params]

func init() { argonParams.Store(&Argon2Default) }

// ParseArgon2 reads parameters written as "m=<KiB>,t=<passes>,p=<lanes>"
// (the ROSTER_ARGON2 setting) and refuses anything weaker than OWASP's
// recommendations — m ≥ 7 MiB and m×t ≥ 35 MiB·passes, the line through
// OWASP's equivalent settings (46 MiB×1 … 7 MiB×5) — or beyond the bounds
// a stored hash may have (m ≤ 1 GiB, t ≤ 16, p 1…16).
func ParseArgon2(s string) (Argon2Params, error) {
	var p Argon2Params
	if n, _ := fmt.Sscanf(s, "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); n != 3 || s != p.String() {
		return p, fmt.Errorf("argon2 parameters %q: want m=<KiB>,t=<passes>,p=<lanes>, such as %s", s, Argon2Default)
	}
	switch {
	case p.Memory > 1<<20 || p.Time < 1 || p.Time > 16 || p.Threads < 1 || p.Threads > 16:
		return p, fmt.Errorf("argon2 parameters %s: out of bounds (m ≤ 1048576, t 1…16, p 1…16)", p)
	case p.Memory < 7*1024 || uint64(p.Memory)*uint64(p.Time) < 35*1024:
		return p, fmt.Errorf("argon2 parameters %s: weaker than OWASP's minimum (%s, or m ≥ 7168 with m×t ≥ 35840)", p, Argon2Default)
	}
	return p, nil
}

// SetArgon2 makes p the parameters of new hashes (from ParseArgon2).
func SetArgon2(p Argon2Params) { argonParams.Store(&p) }

// NewSalt returns SaltLen random bytes.
func NewSalt() []byte {
	s := make([]byte, SaltLen)
	_, _ = rand.Read(s)
	return s
}

var b64 = base64.RawStdEncoding

// HashPassword hashes password with argon2id and salt (L-1) under the
// current parameters, encoded as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string, salt []byte) string {
	p := argonParams.Load()
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version, p, b64.EncodeToString(salt), b64.EncodeToString(key))
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
