package app

import (
	"context"
	"time"

	"roster.dev/pkg/mail"
)

// MailTransport delivers rendered mails (pkg/mail).
type MailTransport interface {
	Send(ctx context.Context, m mail.Message) error
}

// OutboxMail is a rendered mail queued in the transaction that caused it.
// Its body holds a secret link: it is kept only until the transport took
// it, and never logged.
type OutboxMail struct {
	ID        string
	AccountID string
	To        string
	Subject   string
	Body      string
	CreatedAt time.Time
	Attempts  int
}

// Retry waits of a mail the transport refused: 1 s, 2 s, 4 s … up to 5 min.
const (
	mailRetryMin = time.Second
	mailRetryMax = 5 * time.Minute
	mailBatch    = 50
	// mailClaim is how long a claimed batch belongs to one mailer (one
	// identity replica). A replica killed between its claim and the sends
	// leaves the batch to the others once it expires, so it is short; a
	// mailer starts no send later than mailClaim minus mailSendBound after
	// its claim (a send takes at most pkg/mail's 30 s timeout), so that no
	// mail of the batch is sent after another mailer may have claimed it.
	mailClaim     = time.Minute
	mailSendBound = 35 * time.Second
)

func mailRetryAfter(attempts int) time.Duration {
	d := mailRetryMin << min(attempts, 20)
	return min(d, mailRetryMax)
}

// DeliverMail sends the queued mails that are due, oldest first, and
// forgets each one once the transport took it (flows.md: the mailer sends
// from its outbox, retried until sent). Delivery is at least once: a crash
// between sending and forgetting sends the mail again under the same
// message id, which the file transport turns into the same file. A refused
// mail is retried later and waits longer each time.
//
// Retry times follow the wall clock, not App.Now: they pace a remote
// server, and App.Now is the business clock that tests fix.
func (c *Credentials) DeliverMail(ctx context.Context) (sent int, err error) {
	if c.Mail == nil {
		return 0, nil
	}
	now := time.Now()
	due, err := c.Creds.DueMail(ctx, now, now.Add(mailClaim), mailBatch)
	if err != nil {
		return 0, err
	}
	for _, m := range due {
		if time.Since(now) > mailClaim-mailSendBound {
			// The rest of the batch goes back to whichever mailer claims
			// it when the claim expires.
			break
		}
		err := c.Mail.Send(ctx, mail.Message{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Body, Date: m.CreatedAt})
		if ctx.Err() != nil {
			return sent, nil
		}
		if err != nil {
			c.Log.WarnContext(ctx, "mail not sent; retrying later", "mail_id", m.ID, "account_id", m.AccountID,
				"attempts", m.Attempts+1, "err", err)
			reason := err.Error()
			if len(reason) > 500 {
				reason = reason[:500]
			}
			if err := c.Creds.MailFailed(ctx, m.ID, time.Now().Add(mailRetryAfter(m.Attempts)), reason); err != nil {
				return sent, err
			}
			continue
		}
		if err := c.Creds.MailSent(ctx, m.ID); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

// RunMailer delivers the queued mails every interval until ctx ends (the
// identity service's svc.Runner; the host ends ctx before it closes the
// database). A database error is logged and retried on the next tick.
func (c *Credentials) RunMailer(ctx context.Context, every time.Duration) error {
	if c.Mail == nil {
		c.Log.InfoContext(ctx, "no mail transport: mails stay queued in mail_outbox")
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		// L-5: reset requests become queued mails first (app/reset.go).
		if err := c.ProcessResetRequests(ctx); err != nil && ctx.Err() == nil {
			c.Log.ErrorContext(ctx, "password-reset requests", "err", err)
		}
		if _, err := c.DeliverMail(ctx); err != nil && ctx.Err() == nil {
			c.Log.ErrorContext(ctx, "mail delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
