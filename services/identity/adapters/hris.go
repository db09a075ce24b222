package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

var _ app.DirectoryStore = Store{}

func (s Store) InsertHRISSecret(ctx context.Context, tx *sql.Tx, h app.HRISSecret) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO hris_secrets (id, account_id, secret, created_at, valid_until) VALUES ($1, $2, $3, $4, $5)`,
		h.ID, h.AccountID, h.Secret, store.Time(h.CreatedAt), nullTime(h.ValidUntil))
	if err != nil {
		return fmt.Errorf("insert hris secret: %w", err)
	}
	return nil
}

// RetireHRISSecrets ends the validity of the account's current secrets at
// until (or earlier, when they end sooner already).
func (s Store) RetireHRISSecrets(ctx context.Context, tx *sql.Tx, accountID string, until, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE hris_secrets SET valid_until = $1
		WHERE account_id = $2 AND (valid_until IS NULL OR valid_until > $1)`, store.Time(until), accountID)
	if err != nil {
		return fmt.Errorf("retire hris secrets: %w", err)
	}
	return nil
}

// HRISSecrets returns the secrets valid at now, newest first.
func (s Store) HRISSecrets(ctx context.Context, accountID string, now time.Time) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT secret FROM hris_secrets WHERE account_id = $1 AND (valid_until IS NULL OR valid_until > $2)
		ORDER BY created_at DESC`, accountID, store.Time(now))
	if err != nil {
		return nil, fmt.Errorf("hris secrets: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sec string
		if err := rows.Scan(&sec); err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

func (s Store) HRISMapping(ctx context.Context, q app.Querier, accountID string) (domain.Mapping, error) {
	var raw string
	err := q.QueryRowContext(ctx, `SELECT mapping FROM hris_mappings WHERE account_id = $1`, accountID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.NoMapping, nil
	}
	if err != nil {
		return domain.Mapping{}, fmt.Errorf("hris mapping: %w", err)
	}
	var m domain.Mapping
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return m, fmt.Errorf("hris mapping of %s: %w", accountID, err)
	}
	return m, nil
}

func (s Store) SaveHRISMapping(ctx context.Context, tx *sql.Tx, accountID string, m domain.Mapping, now time.Time) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO hris_mappings (account_id, mapping, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (account_id) DO UPDATE SET mapping = excluded.mapping, updated_at = excluded.updated_at`,
		accountID, string(b), store.Time(now))
	if err != nil {
		return fmt.Errorf("save hris mapping: %w", err)
	}
	return nil
}

const deliveryColumns = `id, account_id, source, webhook_id, event_type, employee_id, occurred_at, effective_date, body,
	status, reason, detail, technician_id, end_user_id, attempts, received_at, updated_at`

func scanDelivery(row scanner) (app.Delivery, error) {
	var d app.Delivery
	var occurred, received, updated, body, detail string
	if err := row.Scan(&d.ID, &d.AccountID, &d.Source, &d.WebhookID, &d.Type, &d.EmployeeID, &occurred, &d.EffectiveDate, &body,
		&d.Status, &d.Reason, &detail, &d.TechnicianID, &d.EndUserID, &d.Attempts, &received, &updated); err != nil {
		return d, err
	}
	var err error
	if d.OccurredAt, err = store.ParseTime(occurred); err != nil {
		return d, err
	}
	if d.ReceivedAt, err = store.ParseTime(received); err != nil {
		return d, err
	}
	if d.UpdatedAt, err = store.ParseTime(updated); err != nil {
		return d, err
	}
	if detail != "" {
		d.Detail = json.RawMessage(detail)
	}
	return d, json.Unmarshal([]byte(body), &d.Event)
}

func (s Store) InsertDelivery(ctx context.Context, tx *sql.Tx, d app.Delivery) error {
	body, err := json.Marshal(d.Event)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO hris_deliveries (`+deliveryColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		d.ID, d.AccountID, d.Source, d.WebhookID, d.Type, d.EmployeeID, store.Time(d.OccurredAt), d.EffectiveDate, string(body),
		d.Status, d.Reason, string(d.Detail), d.TechnicianID, d.EndUserID, d.Attempts, store.Time(d.ReceivedAt), store.Time(d.UpdatedAt))
	if store.IsUniqueViolation(err) {
		return app.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	return nil
}

func (s Store) DeliveryByWebhookID(ctx context.Context, accountID, webhookID string) (app.Delivery, error) {
	d, err := scanDelivery(s.DB.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM hris_deliveries WHERE account_id = $1 AND webhook_id = $2`,
		accountID, webhookID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, app.ErrNotFound
	}
	return d, err
}

func (s Store) Delivery(ctx context.Context, q app.Querier, accountID, id string) (app.Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM hris_deliveries WHERE account_id = $1 AND id = $2`,
		accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, app.ErrNotFound
	}
	return d, err
}

func (s Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]app.Delivery, error) {
	rows, err := s.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []app.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Deliveries lists the account's deliveries in the order received (ids are
// time-ordered), after the cursor id.
func (s Store) Deliveries(ctx context.Context, accountID, status, after string, limit int) ([]app.Delivery, error) {
	return s.queryDeliveries(ctx, `SELECT `+deliveryColumns+` FROM hris_deliveries
		WHERE account_id = $1 AND ($2 = '' OR status = $2) AND id > $3 ORDER BY id LIMIT $4`, accountID, status, after, limit)
}

// PendingDeliveries returns pending deliveries of every account, the
// earliest event first.
func (s Store) PendingDeliveries(ctx context.Context, limit int) ([]app.Delivery, error) {
	return s.queryDeliveries(ctx, `SELECT `+deliveryColumns+` FROM hris_deliveries WHERE status = 'pending'
		ORDER BY occurred_at, id LIMIT $1`, limit)
}

func (s Store) SaveDeliveryOutcome(ctx context.Context, tx *sql.Tx, d app.Delivery) error {
	_, err := tx.ExecContext(ctx, `UPDATE hris_deliveries SET status = $1, reason = $2, detail = $3, technician_id = $4,
		end_user_id = $5, attempts = $6, updated_at = $7 WHERE account_id = $8 AND id = $9`,
		d.Status, d.Reason, string(d.Detail), d.TechnicianID, d.EndUserID, d.Attempts, store.Time(d.UpdatedAt), d.AccountID, d.ID)
	if err != nil {
		return fmt.Errorf("save delivery: %w", err)
	}
	return nil
}

// ClaimDelivery: the no-op update takes the row's lock (PostgreSQL) or the
// write lock (SQLite) and matches only while the status is unchanged; a
// concurrent claimer waits, then matches nothing.
func (s Store) ClaimDelivery(ctx context.Context, tx *sql.Tx, accountID, id, status string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE hris_deliveries SET status = status WHERE account_id = $1 AND id = $2 AND status = $3`,
		accountID, id, status)
	if err != nil {
		return false, fmt.Errorf("claim delivery: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RequeueHeld puts the employee's held deliveries back to pending.
func (s Store) RequeueHeld(ctx context.Context, tx *sql.Tx, accountID, employeeID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE hris_deliveries SET status = 'pending', reason = 'the hire arrived', updated_at = $1
		WHERE account_id = $2 AND employee_id = $3 AND status = 'held'`, store.Time(now), accountID, employeeID)
	if err != nil {
		return fmt.Errorf("requeue held: %w", err)
	}
	return nil
}

func (s Store) HRISEmployee(ctx context.Context, q app.Querier, accountID, employeeID string) (app.HRISEmployee, error) {
	e := app.HRISEmployee{AccountID: accountID, EmployeeID: employeeID}
	var at string
	err := q.QueryRowContext(ctx, `SELECT kind, technician_id, end_user_id, mapped_role, attributes_at, attributes_delivery FROM hris_employees
		WHERE account_id = $1 AND employee_id = $2`, accountID, employeeID).Scan(&e.Kind, &e.TechnicianID, &e.EndUserID, &e.MappedRole, &at, &e.AttributesDelivery)
	if errors.Is(err, sql.ErrNoRows) {
		return e, app.ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("hris employee: %w", err)
	}
	e.AttributesAt, err = store.ParseTime(at)
	return e, err
}

func (s Store) SaveHRISEmployee(ctx context.Context, tx *sql.Tx, e app.HRISEmployee) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO hris_employees (account_id, employee_id, kind, technician_id, end_user_id, mapped_role, attributes_at, attributes_delivery)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (account_id, employee_id) DO UPDATE SET kind = excluded.kind, technician_id = excluded.technician_id,
		end_user_id = excluded.end_user_id, mapped_role = excluded.mapped_role, attributes_at = excluded.attributes_at,
		attributes_delivery = excluded.attributes_delivery`,
		e.AccountID, e.EmployeeID, e.Kind, e.TechnicianID, e.EndUserID, e.MappedRole, store.Time(e.AttributesAt), e.AttributesDelivery)
	if err != nil {
		return fmt.Errorf("save hris employee: %w", err)
	}
	return nil
}

// ScheduleTermination records (or replaces) the employee's pending
// termination.
func (s Store) ScheduleTermination(ctx context.Context, tx *sql.Tx, t app.Termination) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO hris_terminations (account_id, employee_id, delivery_id, effective_date, done_at)
		VALUES ($1, $2, $3, $4, NULL)
		ON CONFLICT (account_id, employee_id) DO UPDATE SET delivery_id = excluded.delivery_id,
		effective_date = excluded.effective_date, done_at = NULL`,
		t.AccountID, t.EmployeeID, t.DeliveryID, t.EffectiveDate)
	if err != nil {
		return fmt.Errorf("schedule termination: %w", err)
	}
	return nil
}

// CompleteTermination claims the pending termination: true for the one
// transaction that sets done_at.
func (s Store) CompleteTermination(ctx context.Context, tx *sql.Tx, accountID, employeeID string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE hris_terminations SET done_at = $1 WHERE account_id = $2 AND employee_id = $3 AND done_at IS NULL`,
		store.Time(now), accountID, employeeID)
	if err != nil {
		return false, fmt.Errorf("complete termination: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s Store) PendingTermination(ctx context.Context, q app.Querier, accountID, employeeID string) (app.Termination, error) {
	t := app.Termination{AccountID: accountID, EmployeeID: employeeID}
	err := q.QueryRowContext(ctx, `SELECT delivery_id, effective_date FROM hris_terminations
		WHERE account_id = $1 AND employee_id = $2 AND done_at IS NULL`, accountID, employeeID).Scan(&t.DeliveryID, &t.EffectiveDate)
	if errors.Is(err, sql.ErrNoRows) {
		return t, app.ErrNotFound
	}
	return t, err
}

func (s Store) DueTerminations(ctx context.Context, today string, limit int) ([]app.Termination, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT account_id, employee_id, delivery_id, effective_date FROM hris_terminations
		WHERE done_at IS NULL AND effective_date <= $1 ORDER BY effective_date LIMIT $2`, today, limit)
	if err != nil {
		return nil, fmt.Errorf("due terminations: %w", err)
	}
	defer rows.Close()
	var out []app.Termination
	for rows.Next() {
		var t app.Termination
		if err := rows.Scan(&t.AccountID, &t.EmployeeID, &t.DeliveryID, &t.EffectiveDate); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s Store) DirectoryEntry(ctx context.Context, q app.Querier, accountID, technicianID string) (app.DirectoryEntry, error) {
	d := app.DirectoryEntry{AccountID: accountID, TechnicianID: technicianID}
	err := q.QueryRowContext(ctx, `SELECT employee_number, department, job_title, location, manager FROM technician_directory
		WHERE account_id = $1 AND technician_id = $2`, accountID, technicianID).Scan(&d.EmployeeNumber, &d.Department, &d.JobTitle, &d.Location, &d.Manager)
	if errors.Is(err, sql.ErrNoRows) {
		return d, app.ErrNotFound
	}
	return d, err
}

func (s Store) SaveDirectoryEntry(ctx context.Context, tx *sql.Tx, d app.DirectoryEntry, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO technician_directory (technician_id, account_id, employee_number, department, job_title, location, manager, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (technician_id) DO UPDATE SET employee_number = excluded.employee_number, department = excluded.department,
		job_title = excluded.job_title, location = excluded.location, manager = excluded.manager, updated_at = excluded.updated_at`,
		d.TechnicianID, d.AccountID, d.EmployeeNumber, d.Department, d.JobTitle, d.Location, d.Manager, store.Time(now))
	if err != nil {
		return fmt.Errorf("save directory entry: %w", err)
	}
	return nil
}

func (s Store) EndUserByEmail(ctx context.Context, q app.Querier, accountID, email string) (domain.EndUser, error) {
	var u domain.EndUser
	var created string
	err := q.QueryRowContext(ctx, `SELECT id, account_id, site_id, email, name, status, created_at FROM end_users
		WHERE account_id = $1 AND email_key = $2`, accountID, domain.EmailKey(email)).
		Scan(&u.ID, &u.AccountID, &u.SiteID, &u.Email, &u.Name, &u.Status, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, app.ErrNotFound
	}
	if err != nil {
		return u, err
	}
	u.CreatedAt, err = store.ParseTime(created)
	return u, err
}

func (s Store) RenameEndUser(ctx context.Context, tx *sql.Tx, accountID, id, name string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE end_users SET name = $1, updated_at = $2 WHERE account_id = $3 AND id = $4`,
		name, store.Time(now), accountID, id)
	return err
}
