package domain

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/profile"
)

// I-4: a link works once, can be withdrawn, and expires after the
// profile's days (7 by default) — checked against an injected clock.
func TestInvitationCheck(t *testing.T) {
	issued := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	roster, err := profile.Get("roster")
	if err != nil {
		t.Fatal(err)
	}
	expires := InvitationExpiry(roster.Identity, issued)
	if want := issued.AddDate(0, 0, 7); !expires.Equal(want) {
		t.Fatalf("expiry %v, want %v", expires, want)
	}
	if got := InvitationExpiry(profile.Identity{}, issued); !got.Equal(issued.AddDate(0, 0, DefaultInvitationTTLDays)) {
		t.Fatalf("default expiry %v", got)
	}
	if got := InvitationExpiry(profile.Identity{InvitationTTLDays: 2}, issued); !got.Equal(issued.AddDate(0, 0, 2)) {
		t.Fatalf("2-day expiry %v", got)
	}
	at := func(d time.Duration) *time.Time { t := issued.Add(d); return &t }
	for _, c := range []struct {
		name string
		inv  Invitation
		now  time.Time
		want string // problem type slug, "" when usable
	}{
		{"fresh", Invitation{ExpiresAt: expires}, issued, ""},
		{"a microsecond before expiry", Invitation{ExpiresAt: expires}, expires.Add(-time.Microsecond), ""},
		{"at expiry", Invitation{ExpiresAt: expires}, expires, "invitation-expired"},
		{"after expiry", Invitation{ExpiresAt: expires}, expires.AddDate(0, 0, 1), "invitation-expired"},
		{"used", Invitation{ExpiresAt: expires, UsedAt: at(time.Hour)}, issued.Add(2 * time.Hour), "invitation-used"},
		{"used, then expired: says used", Invitation{ExpiresAt: expires, UsedAt: at(time.Hour)}, expires.Add(time.Hour), "invitation-used"},
		{"withdrawn", Invitation{ExpiresAt: expires, RevokedAt: at(time.Hour)}, issued.Add(2 * time.Hour), "invitation-revoked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.inv.Check(c.now)
			got := ""
			if p != nil {
				got = strings.TrimPrefix(p.Type, "https://roster.dev/problems/")
				if p.Status != 410 {
					t.Errorf("status %d, want 410", p.Status)
				}
			}
			if got != c.want {
				t.Fatalf("Check = %q, want %q", got, c.want)
			}
		})
	}
}

// api.md: every link carries its token as token=, under the public URL.
func TestInvitationMail(t *testing.T) {
	link := SetPasswordLink("https://roster.example.com", "rsi_abc-DEF_123")
	u, err := url.Parse(link)
	if err != nil || u.Path != "/set-password" || u.Query().Get("token") != "rsi_abc-DEF_123" || u.Host != "roster.example.com" {
		t.Fatalf("link %q: %v", link, err)
	}
	expires := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	subject, text := InvitationMail(Account{Name: "Acme IT"}, Technician{FirstName: "Tess", Email: "tess@acme.test"}, link, expires)
	if subject != "Set your password for Acme IT on Roster" {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{"Hello Tess", "tess@acme.test", "\n" + link + "\n", "30 November 2026 at 12:00 UTC"} {
		if !strings.Contains(text, want) {
			t.Errorf("mail lacks %q:\n%s", want, text)
		}
	}
}

// L-1: the password policy names the password field.
func TestCheckPassword(t *testing.T) {
	for _, c := range []struct{ name, password, want string }{
		{"long passphrase", "correct horse battery", ""},
		{"exactly 12", "abcdefgh1234", ""},
		{"12 runes, more bytes", "pässwörtlang", ""},
		{"11 characters", "abcdefgh123", "at least 12"},
		{"empty", "", "at least 12"},
		{"too long", strings.Repeat("ab", 129), "at most 256"},
		{"the email", "Tess.Tech@Acme.test", "email"},
		{"the email's local part", "tess.technician", "email"},
		{"common", "Password1234", "too common"},
		{"one character", "aaaaaaaaaaaaaa", "repeated"},
		{"not UTF-8", "abcdefghijkl\xff", "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			email := "tess.tech@acme.test"
			if c.name == "the email's local part" {
				email = "tess.technician@acme.test"
			}
			p := CheckPassword(c.password, email)
			switch {
			case c.want == "" && p != nil:
				t.Fatalf("refused: %v", p)
			case c.want != "" && p == nil:
				t.Fatal("accepted")
			case c.want != "" && (p.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Field != "password" || !strings.Contains(p.Errors[0].Detail, c.want)):
				t.Fatalf("problem %+v, want the password field with %q", p, c.want)
			}
		})
	}
}

// L-1: argon2id at OWASP's parameters, as a PHC string; verification reads
// the parameters back, and a damaged hash is an error, not a match.
func TestPasswordHash(t *testing.T) {
	salt := NewSalt()
	h := HashPassword("correct horse battery", salt)
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" || parts[3] != "m=19456,t=2,p=1" {
		t.Fatalf("PHC string %q", h)
	}
	if HashPassword("correct horse battery", NewSalt()) == h {
		t.Fatal("two salts, one hash")
	}
	if ok, err := VerifyPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, err := VerifyPassword(h, "correct horse battery!"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	for _, bad := range []string{
		"", "plain", strings.Replace(h, "argon2id", "argon2i", 1), strings.Replace(h, "v=19", "v=16", 1),
		strings.Replace(h, "m=19456", "m=99999999", 1), strings.Replace(h, "t=2", "t=0", 1), h[:len(h)-30],
	} {
		if ok, err := VerifyPassword(bad, "correct horse battery"); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v", bad, ok, err)
		}
	}
}

// L-1: the argon2id parameters are configurable, never below OWASP's
// minimum, and a hash records the parameters it was made with.
func TestArgon2Params(t *testing.T) {
	for s, ok := range map[string]bool{
		"m=19456,t=2,p=1": true, "m=47104,t=1,p=1": true, "m=12288,t=3,p=1": true, "m=65536,t=3,p=4": true,
		"m=19456,t=1,p=1": false, "m=4096,t=16,p=1": false, "m=19456,t=2,p=0": false, "m=2097152,t=2,p=1": false,
		"m=19456, t=2,p=1": false, "19456,2,1": false, "": false,
	} {
		if _, err := ParseArgon2(s); (err == nil) != ok {
			t.Errorf("ParseArgon2(%q): %v, want ok %v", s, err, ok)
		}
	}
	p, _ := ParseArgon2("m=12288,t=3,p=1")
	SetArgon2(p)
	defer SetArgon2(Argon2Default)
	h := HashPassword("correct horse battery", NewSalt())
	if !strings.Contains(h, "$m=12288,t=3,p=1$") {
		t.Fatalf("hash %s", h)
	}
	SetArgon2(Argon2Default)
	if ok, err := VerifyPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("a hash made with other parameters: %v %v", ok, err)
	}
}
