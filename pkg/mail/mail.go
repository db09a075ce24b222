// Package mail sends Roster's mails (invitations, set-password and reset
// links) through the transport the operator configures (api.md, "Mail"):
//
//   - file://DIR writes one RFC 5322 .eml file per message into DIR, named
//     after the message id, so that tests and newcomers can read them; a
//     message sent again (a retry after a crash) replaces its file instead
//     of adding a second one.
//   - smtp://host:port hands each message to an SMTP server with net/smtp:
//     STARTTLS when the server offers it, PLAIN authentication when the URL
//     carries user:password (net/smtp sends it only over TLS or to
//     localhost).
//
// Both take ?from= to set the sender (default Roster <roster@localhost>).
package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one mail to one recipient.
type Message struct {
	To      string
	Subject string
	// Text is the plain-text body.
	Text string
	// ID identifies the message across retries: the file name of the file
	// transport and the Message-ID header. Letters, digits, '_', '-' and '.'.
	ID string
	// Date is the Date header (zero: the time of sending).
	Date time.Time
}

// Transport delivers messages.
type Transport interface {
	// Send delivers m, or returns why not; the caller retries.
	Send(ctx context.Context, m Message) error
}

// DefaultFrom is the sender when the mail URL has no ?from=.
const DefaultFrom = "Roster <roster@localhost>"

// Open returns the transport a mail URL names (file://DIR or
// smtp://host:port). It checks the URL only: no file or connection is
// opened until Send.
func Open(rawURL string) (Transport, error) {
	u, err := url.Parse(rawURL)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL, which may hold a password
	}
	if err != nil {
		return nil, fmt.Errorf("mail URL: %w", err)
	}
	from, err := sender(u.Query().Get("from"))
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		dir := u.Host + u.Path // file:///abs/dir, or file://rel/dir
		if dir == "" {
			dir = u.Opaque // file:dir
		}
		if dir == "" {
			return nil, errors.New("mail URL file:// needs a directory: file:///var/lib/roster/mail")
		}
		return &File{Dir: dir, From: from}, nil
	case "smtp":
		if u.Hostname() == "" {
			return nil, errors.New("mail URL smtp:// needs a host: smtp://host:port")
		}
		addr := u.Host
		if u.Port() == "" {
			addr = u.Host + ":25"
		}
		s := &SMTP{Addr: addr, From: from}
		if u.User != nil {
			s.Username = u.User.Username()
			s.Password, _ = u.User.Password()
		}
		return s, nil
	default:
		return nil, fmt.Errorf("mail URL must be file://DIR or smtp://host:port, got scheme %q", u.Scheme)
	}
}

func sender(s string) (*mail.Address, error) {
	if s == "" {
		s = DefaultFrom
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("mail URL ?from=%q: %w", s, err)
	}
	return a, nil
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

// check refuses what would break the message's header (header injection)
// or the file name.
func (m Message) check() (*mail.Address, error) {
	if !validID.MatchString(m.ID) || strings.HasPrefix(m.ID, ".") {
		return nil, fmt.Errorf("mail: message id %q must be letters, digits, '_', '-' or '.'", m.ID)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("mail: recipient %q: %w", m.To, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("mail: the subject must be one line")
	}
	return to, nil
}

// render writes m as an RFC 5322 message with CRLF line ends: a plain-text
// UTF-8 body, 7bit when it is short-lined ASCII (the links stay readable
// and greppable in a .eml file), quoted-printable otherwise.
func render(m Message, from, to *mail.Address) []byte {
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	text := strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n")
	if !strings.HasSuffix(text, "\r\n") {
		text += "\r\n"
	}
	encoding := "7bit"
	if !plain(text) {
		encoding = "quoted-printable"
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+m.ID+"@roster>")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", encoding)
	b.WriteString("\r\n")
	if encoding == "7bit" {
		b.WriteString(text)
	} else {
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write([]byte(text))
		_ = w.Close()
	}
	return b.Bytes()
}

// plain reports ASCII text whose lines fit RFC 5322's 998 characters.
func plain(text string) bool {
	for line := range strings.SplitSeq(text, "\r\n") {
		if len(line) > 998 {
			return false
		}
	}
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf || (text[i] < ' ' && text[i] != '\r' && text[i] != '\n' && text[i] != '\t') {
			return false
		}
	}
	return true
}
