package adapters

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

var _ app.CredentialStore = Store{}

func (s Store) InsertInvitation(ctx context.Context, tx *sql.Tx, inv domain.Invitation) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO invitations (id, account_id, technician_id, token_hash, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		inv.ID, inv.AccountID, inv.TechnicianID, inv.TokenHash, store.Time(inv.ExpiresAt), store.Time(inv.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert invitation: %w", err)
	}
	return nil
}

// InvitationByHash returns the invitation whose token has this SHA-256 (hex).
func (s Store) InvitationByHash(ctx context.Context, q app.Querier, hash string) (domain.Invitation, error) {
	var inv domain.Invitation
	var expires, created string
	var used, revoked sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, account_id, technician_id, token_hash, expires_at, used_at, revoked_at, created_at
		FROM invitations WHERE token_hash = $1`, hash).
		Scan(&inv.ID, &inv.AccountID, &inv.TechnicianID, &inv.TokenHash, &expires, &used, &revoked, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, app.ErrNotFound
	}
	if err != nil {
		return inv, fmt.Errorf("invitation: %w", err)
	}
	if inv.ExpiresAt, err = store.ParseTime(expires); err != nil {
		return inv, err
	}
	if inv.CreatedAt, err = store.ParseTime(created); err != nil {
		return inv, err
	}
	inv.UsedAt, inv.RevokedAt = parseNullTime(used), parseNullTime(revoked)
	return inv, nil
}

// UseInvitation marks the invitation used if it is still usable at now;
// false when another request used it first, or it was revoked or expired
// meanwhile (single use: a conditional update, not check-then-act).
func (s Store) UseInvitation(ctx context.Context, tx *sql.Tx, id string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE invitations SET used_at = $1
		WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1`, store.Time(now), id)
	if err != nil {
		return false, fmt.Errorf("use invitation: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RevokeInvitations makes the technician's unused invitations unusable and
// drops their mails not sent yet (their links are dead).
func (s Store) RevokeInvitations(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE id IN
		(SELECT id FROM invitations WHERE technician_id = $1 AND used_at IS NULL AND revoked_at IS NULL)`, technicianID); err != nil {
		return fmt.Errorf("drop invitation mails: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE invitations SET revoked_at = $1
		WHERE technician_id = $2 AND used_at IS NULL AND revoked_at IS NULL`, store.Time(now), technicianID); err != nil {
		return fmt.Errorf("revoke invitations: %w", err)
	}
	return nil
}

func (s Store) QueueMail(ctx context.Context, tx *sql.Tx, m app.OutboxMail) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO mail_outbox (id, account_id, to_address, subject, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, m.ID, m.AccountID, m.To, m.Subject, m.Body, store.Time(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("queue mail: %w", err)
	}
	return nil
}

// DueMail claims up to limit queued mails due at now, oldest first: they
// are not due again before until, so that another identity replica's
// mailer does not send them too (issue 13). A mail whose sender dies before
// MailSent or MailFailed is sent again once until passed. The outer
// next_attempt_at condition is checked again on the row a concurrent claim
// committed (PostgreSQL re-reads a row it waited for), so two replicas
// never claim one mail; SQLite runs one writer at a time.
func (s Store) DueMail(ctx context.Context, now, until time.Time, limit int) ([]app.OutboxMail, error) {
	rows, err := s.DB.QueryContext(ctx, `UPDATE mail_outbox SET next_attempt_at = $3
		WHERE next_attempt_at <= $1 AND id IN (SELECT id FROM mail_outbox WHERE next_attempt_at <= $1
			ORDER BY created_at, id LIMIT $2)
		RETURNING id, account_id, to_address, subject, body, created_at, attempts`, store.Time(now), limit, store.Time(until))
	if err != nil {
		return nil, fmt.Errorf("due mail: %w", err)
	}
	defer rows.Close()
	var out []app.OutboxMail
	for rows.Next() {
		var m app.OutboxMail
		var created string
		if err := rows.Scan(&m.ID, &m.AccountID, &m.To, &m.Subject, &m.Body, &created, &m.Attempts); err != nil {
			return nil, err
		}
		if m.CreatedAt, err = store.ParseTime(created); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// RETURNING keeps no order.
	slices.SortFunc(out, func(a, b app.OutboxMail) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// MailSent forgets a mail the transport took.
func (s Store) MailSent(ctx context.Context, id string) error {
	_, err := s.DB.ExecContext(ctx, `DELETE FROM mail_outbox WHERE id = $1`, id)
	return err
}

// MailFailed records a failed attempt and when to try again.
func (s Store) MailFailed(ctx context.Context, id string, next time.Time, reason string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3`,
		store.Time(next), reason, id)
	return err
}

// SetPassword stores the technician's password hash, replacing any.
func (s Store) SetPassword(ctx context.Context, tx *sql.Tx, technicianID, hash, method string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO passwords (technician_id, hash, method, set_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (technician_id) DO UPDATE SET hash = excluded.hash, method = excluded.method, set_at = excluded.set_at`,
		technicianID, hash, method, store.Time(now))
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// LoginRecord returns who logs in with this email in the account, with the
// password hash ("" when none is set); app.ErrNotFound when nobody.
func (s Store) LoginRecord(ctx context.Context, accountID, email string) (app.LoginRecord, error) {
	var r app.LoginRecord
	var hash sql.NullString
	err := s.DB.QueryRowContext(ctx, `SELECT t.id, t.account_id, t.email, t.status, p.hash
		FROM technicians t LEFT JOIN passwords p ON p.technician_id = t.id
		WHERE t.account_id = $1 AND t.email_key = $2`, accountID, domain.EmailKey(email)).
		Scan(&r.TechnicianID, &r.AccountID, &r.Email, &r.Status, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return r, app.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("login record: %w", err)
	}
	r.PasswordHash = hash.String
	return r, nil
}

// TouchLogin records an authentication of the technician at now (I-11:
// last login; an invited technician becomes active, I-6) and takes the
// technician's row lock, so a concurrent disable waits for this transaction
// and then revokes what it created (I-7). False when the technician is
// disabled.
func (s Store) TouchLogin(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE technicians SET last_login_at = $1, last_active_at = $1, updated_at = $1,
		status = CASE WHEN status = 'invited' THEN 'active' ELSE status END
		WHERE id = $2 AND status <> 'disabled'`, store.Time(now), technicianID)
	if err != nil {
		return false, fmt.Errorf("record login: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InsertFirstLogin records the technician's first login; false when there
// was one already (I-6: the primary key decides, under any concurrency).
func (s Store) InsertFirstLogin(ctx context.Context, tx *sql.Tx, technicianID, method string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO first_logins (technician_id, method, at) VALUES ($1, $2, $3)
		ON CONFLICT (technician_id) DO NOTHING`, technicianID, method, store.Time(now))
	if err != nil {
		return false, fmt.Errorf("first login: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InvitationByID returns one of the account's invitations, whatever its
// state (I-5: resend and revoke name it).
func (s Store) InvitationByID(ctx context.Context, q app.Querier, accountID, id string) (domain.Invitation, error) {
	var hash string
	err := q.QueryRowContext(ctx, `SELECT token_hash FROM invitations WHERE id = $1 AND account_id = $2`, id, accountID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Invitation{}, app.ErrNotFound
	}
	if err != nil {
		return domain.Invitation{}, fmt.Errorf("invitation: %w", err)
	}
	return s.InvitationByHash(ctx, q, hash)
}

// AwaitsSeat: the technician was invited to take a seat on acceptance and
// has not taken it (S-2).
func (s Store) AwaitsSeat(ctx context.Context, q app.Querier, technicianID string) (bool, error) {
	var r string
	err := q.QueryRowContext(ctx, `SELECT reservation_id FROM technicians WHERE id = $1`, technicianID).Scan(&r)
	if err != nil {
		return false, fmt.Errorf("awaits seat: %w", err)
	}
	return r == domain.SeatAwaitsAcceptance, nil
}

// SeatTaken records the reservation an accepted invitation took.
func (s Store) SeatTaken(ctx context.Context, tx *sql.Tx, technicianID, reservationID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE technicians SET reservation_id = $1 WHERE id = $2`, reservationID, technicianID); err != nil {
		return fmt.Errorf("seat taken: %w", err)
	}
	return nil
}

// PendingInvitations returns a page of the account's live invitations —
// not used, not revoked, their invitee still pending — in id order (ids
// are time-ordered), after the cursor id. A resend revokes the old links,
// so each invitee shows once, with the latest.
func (s Store) PendingInvitations(ctx context.Context, accountID, after string, limit int) ([]app.PendingInvitation, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT i.id, i.technician_id, t.email, COALESCE(NULLIF(t.requested_role, ''), t.role_name, ''), i.expires_at, i.created_at
		FROM invitations i JOIN technicians t ON t.id = i.technician_id
		WHERE i.account_id = $1 AND t.status = 'invited' AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.id > $2
		ORDER BY i.id LIMIT $3`, accountID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("pending invitations: %w", err)
	}
	defer rows.Close()
	var out []app.PendingInvitation
	for rows.Next() {
		var p app.PendingInvitation
		var role sql.NullString
		var expires, created string
		if err := rows.Scan(&p.ID, &p.TechnicianID, &p.Email, &role, &expires, &created); err != nil {
			return nil, fmt.Errorf("pending invitations: %w", err)
		}
		p.BaseRole = role.String
		if p.ExpiresAt, err = store.ParseTime(expires); err != nil {
			return nil, err
		}
		if p.SentAt, err = store.ParseTime(created); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
