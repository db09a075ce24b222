package mail_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/mail"
	"roster.dev/pkg/mail/mailtest"
)

var date = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const link = "http://127.0.0.1:8080/set-password?token=rsi_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"

func message() mail.Message {
	return mail.Message{
		ID: "inv_0190abc", To: "tess@acme.test", Subject: "Set your password for Acme IT",
		Text: "Hello Tess,\n\nSet your password:\n\n" + link + "\n", Date: date,
	}
}

// An unparsable URL is reported without itself: it may hold a password.
func TestOpenHidesPassword(t *testing.T) {
	_, err := mail.Open("smtp://user:s3cret%zz@mail.example.com:587")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err %v", err)
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		url, want string // want: the transport as %T plus its address or dir, or the error
	}{
		{"file:///var/mail/roster", "file /var/mail/roster"},
		{"file://data/mail", "file data/mail"},
		{"file://./data/mail", "file ./data/mail"},
		{"smtp://127.0.0.1:2525", "smtp 127.0.0.1:2525"},
		{"smtp://mail.example.com", "smtp mail.example.com:25"},
		{"smtp://user:secret@mail.example.com:587?from=IT%20<it@example.com>", "smtp mail.example.com:587 user it@example.com"},
		{"http://example.com", "error: must be file://DIR or smtp://host:port"},
		{"smtp://:25", "error: needs a host"},
		{"file://", "error: needs a directory"},
		{"smtp://h:25?from=not-an-address", "error: ?from="},
	} {
		t.Run(tc.url, func(t *testing.T) {
			tr, err := mail.Open(tc.url)
			var got string
			switch tr := tr.(type) {
			case *mail.File:
				got = "file " + tr.Dir
			case *mail.SMTP:
				got = "smtp " + tr.Addr
				if tr.Username != "" {
					got += " " + tr.Username + " " + tr.From.Address
				}
			}
			if err != nil {
				got = "error: " + err.Error()
			}
			if !strings.HasPrefix(tc.want, "error: ") && got != tc.want || strings.HasPrefix(tc.want, "error: ") &&
				!strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
				t.Fatalf("Open(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
}

// checkMessage asserts the RFC 5322 message m renders to.
func checkMessage(t *testing.T, msg *netmail.Message, body string, m mail.Message) {
	t.Helper()
	h := msg.Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	sent, err := h.Date()
	if err != nil || !sent.Equal(m.Date) {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	for k, want := range map[string]string{
		"From": mail.DefaultFrom, "To": "<" + m.To + ">", "Message-ID": "<" + m.ID + "@roster>",
		"MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "7bit",
	} {
		if k == "From" {
			if a, err := h.AddressList("From"); err != nil || a[0].Address != "roster@localhost" || a[0].Name != "Roster" {
				t.Errorf("From %q: %v", h.Get("From"), err)
			}
			continue
		}
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if subject != m.Subject {
		t.Errorf("Subject = %q, want %q", subject, m.Subject)
	}
	if want := strings.ReplaceAll(m.Text, "\n", "\r\n"); body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func readEML(t *testing.T, path string) (*netmail.Message, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := netmail.ReadMessage(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	return msg, string(b)
}

// The file transport writes one .eml per message id, readable by any RFC
// 5322 parser; a message sent again replaces its file.
func TestFileTransport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	tr, err := mail.Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	if err := tr.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, m.ID+".eml")
	msg, body := readEML(t, path)
	checkMessage(t, msg, body, m)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of %s: %v %v", path, fi.Mode(), err)
	}

	// Sent again (a retry after a crash): still one file, the latest copy.
	m.Subject = "Set your password for Acme IT (again)"
	if err := tr.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != m.ID+".eml" {
		t.Fatalf("files after a resend: %v", entries)
	}
	msg, body = readEML(t, path)
	checkMessage(t, msg, body, m)
}

// Non-ASCII text is encoded (RFC 2047 subject, quoted-printable body) and
// decodes back unchanged.
func TestFileTransportEncodesNonASCII(t *testing.T) {
	dir := t.TempDir()
	tr := &mail.File{Dir: dir, From: &netmail.Address{Name: "Roster", Address: "roster@localhost"}}
	m := message()
	m.Subject, m.Text = "Définissez votre mot de passe", "Bonjour Zoë,\n"+link+"\n"
	if err := tr.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(tr.Path(m.ID))
	for _, b := range raw {
		if b >= 0x80 {
			t.Fatalf("raw 8-bit byte in the message:\n%s", raw)
		}
	}
	msg, qp := readEML(t, tr.Path(m.ID))
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	body, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(qp)))
	if subject != m.Subject || string(body) != strings.ReplaceAll(m.Text, "\n", "\r\n") ||
		msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("subject %q, body %q, encoding %q", subject, body, msg.Header.Get("Content-Transfer-Encoding"))
	}
}

// Header injection and unsafe file names are refused before anything is
// written or sent.
func TestSendRefusesBadMessages(t *testing.T) {
	dir := t.TempDir()
	tr := &mail.File{Dir: dir, From: &netmail.Address{Address: "roster@localhost"}}
	for name, mod := range map[string]func(*mail.Message){
		"subject with a line break": func(m *mail.Message) { m.Subject = "Hi\r\nBcc: eve@evil.test" },
		"recipient list":            func(m *mail.Message) { m.To = "a@acme.test, eve@evil.test" },
		"recipient with a newline":  func(m *mail.Message) { m.To = "a@acme.test\nBcc: eve@evil.test" },
		"id with a path":            func(m *mail.Message) { m.ID = "../../etc/passwd" },
		"hidden id":                 func(m *mail.Message) { m.ID = ".hidden" },
		"empty id":                  func(m *mail.Message) { m.ID = "" },
	} {
		t.Run(name, func(t *testing.T) {
			m := message()
			mod(&m)
			if err := tr.Send(t.Context(), m); err == nil {
				t.Fatal("sent")
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}

// The SMTP transport delivers to a real SMTP server: envelope, header and
// body as the file transport writes them.
func TestSMTPTransport(t *testing.T) {
	sink := mailtest.Start(t)
	tr, err := mail.Open(sink.URL())
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	if err := tr.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := sink.Messages()
	if len(got) != 1 || got[0].From != "roster@localhost" || len(got[0].To) != 1 || got[0].To[0] != m.To {
		t.Fatalf("envelope: %+v", got)
	}
	msg, body := got[0].Parse(t)
	checkMessage(t, msg, body, m)

	// A lone dot on a line survives the SMTP dot-stuffing.
	m.ID, m.Text = "inv_dot", "line one\n.\nline three\n"
	if err := tr.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if _, body := sink.Messages()[1].Parse(t); body != "line one\r\n.\r\nline three\r\n" {
		t.Fatalf("dot-stuffed body: %q", body)
	}
}

// A refused recipient, a closed port and a server that never answers are
// errors the caller retries on, and ctx bounds the wait.
func TestSMTPTransportFailures(t *testing.T) {
	t.Run("recipient refused", func(t *testing.T) {
		sink := mailtest.Start(t)
		sink.Reject(true)
		tr, _ := mail.Open(sink.URL())
		err := tr.Send(t.Context(), message())
		if err == nil || !strings.Contains(err.Error(), "RCPT TO") || len(sink.Messages()) != 0 {
			t.Fatalf("err %v, messages %v", err, sink.Messages())
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		tr, _ := mail.Open("smtp://" + addr)
		if err := tr.Send(t.Context(), message()); err == nil {
			t.Fatal("sent to a closed port")
		}
	})
	t.Run("server silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() { // accept, never greet
			c, err := ln.Accept()
			if err == nil {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}
		}()
		tr, _ := mail.Open("smtp://" + ln.Addr().String())
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		err = tr.Send(ctx, message())
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("want a timeout, got %v", err)
		}
	})
}
