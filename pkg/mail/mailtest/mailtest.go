// Package mailtest is a real SMTP server for tests (github.com/emersion/go-smtp
// on a free loopback port) that keeps what it receives. Only tests import
// it.
package mailtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/mail"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Received is one message as the server got it.
type Received struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Data is the message as sent after DATA (CRLF line ends).
	Data []byte
}

// Parse reads the message's header and body.
func (r Received) Parse(t testing.TB) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("received message: %v\n%s", err, r.Data)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return m, string(body)
}

// Sink is a running SMTP server.
type Sink struct {
	// Addr is host:port; the mail URL is "smtp://" + Addr.
	Addr string

	mu       sync.Mutex
	msgs     []Received
	reject   bool
	rejected int
}

// Start runs a sink until the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{Addr: ln.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{sink: s}, nil }))
	srv.Domain = "sink.test"
	srv.ErrorLog = nopLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// URL is the mail URL of the sink.
func (s *Sink) URL() string { return "smtp://" + s.Addr }

// Messages returns what the sink received so far.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Rejected is how many recipients were refused.
func (s *Sink) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

func (s *Sink) rejectRcpt() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject {
		s.rejected++
	}
	return s.reject
}

// Reject sets whether RCPT TO fails permanently (550), as for an unknown
// mailbox.
func (s *Sink) Reject(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = on
}

type session struct {
	sink *Sink
	cur  Received
}

func (s *session) Reset()        { s.cur = Received{} }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.sink.rejectRcpt() {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.cur.To) == 0 {
		return errors.New("no recipient")
	}
	s.cur.Data = b
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, s.cur)
	s.sink.mu.Unlock()
	return nil
}

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}
