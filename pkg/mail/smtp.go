package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"time"
)

// SMTP hands each message to an SMTP server (RFC 5321), one connection per
// message.
type SMTP struct {
	// Addr is host:port.
	Addr string
	From *mail.Address
	// Username and Password, when set, authenticate with PLAIN; net/smtp
	// refuses to send them unencrypted except to localhost.
	Username, Password string
	// Timeout bounds a delivery whose ctx has no deadline (default 30 s).
	Timeout time.Duration
}

func (s *SMTP) Send(ctx context.Context, m Message) (err error) {
	to, err := m.check()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := s.Timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	// A server that stalls, or ctx ending, fails the conversation.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	defer c.Close()
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("smtp %s: %s: %w", s.Addr, what, err)
		}
		return nil
	}
	if err := step("EHLO", c.Hello("localhost")); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := step("STARTTLS", c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})); err != nil {
			return err
		}
	}
	if s.Username != "" {
		if err := step("AUTH", c.Auth(smtp.PlainAuth("", s.Username, s.Password, host))); err != nil {
			return err
		}
	}
	if err := step("MAIL FROM", c.Mail(s.From.Address)); err != nil {
		return err
	}
	if err := step("RCPT TO", c.Rcpt(to.Address)); err != nil {
		return err
	}
	w, err := c.Data()
	if err := step("DATA", err); err != nil {
		return err
	}
	if _, err := w.Write(render(m, s.From, to)); err != nil {
		return step("DATA", err)
	}
	if err := step("DATA", w.Close()); err != nil { // the server accepted the message here
		return err
	}
	_ = c.Quit() // delivered; a failed QUIT changes nothing
	return nil
}
