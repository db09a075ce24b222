package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/rpc"
	"roster.dev/pkg/store"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

var _ app.FeatureGate = Seats{}

// FeatureEnabled asks seatbilling whether the account's plan has feature
// (rpc.FeatureEnabled, S-8).
func (s Seats) FeatureEnabled(ctx context.Context, accountID, feature string) (bool, string, error) {
	var rep seatbillingv1.FeatureEnabledReply
	if err := rpc.Call(ctx, s.NC, rpc.FeatureEnabled, &seatbillingv1.FeatureEnabledRequest{AccountId: accountID, Feature: feature}, &rep); err != nil {
		return false, "", err
	}
	switch rep.GetOutcome() {
	case seatbillingv1.FeatureEnabledReply_OUTCOME_OK:
		return rep.GetEnabled(), rep.GetReason(), nil
	case seatbillingv1.FeatureEnabledReply_OUTCOME_NO_SUBSCRIPTION:
		return false, "", app.ErrSubscriptionNotReady
	default:
		return false, "", fmt.Errorf("seatbilling feature %s: %s", feature, rep.GetError())
	}
}

func (s Store) EndUserDepartment(ctx context.Context, q app.Querier, accountID, id string) (string, error) {
	var d string
	err := q.QueryRowContext(ctx, `SELECT department FROM end_user_directory WHERE account_id = $1 AND end_user_id = $2`, accountID, id).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return d, err
}

func (s Store) SaveEndUserDepartment(ctx context.Context, tx *sql.Tx, accountID, id, department string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO end_user_directory (end_user_id, account_id, department, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (end_user_id) DO UPDATE SET department = excluded.department, updated_at = excluded.updated_at`,
		id, accountID, department, store.Time(now))
	return err
}

// importInsertBatch rows per INSERT statement.
const importInsertBatch = 200

func (s Store) InsertImport(ctx context.Context, tx *sql.Tx, imp app.Import, rows []domain.ImportRow) error {
	opts, err := json.Marshal(struct {
		app.ImportOptions
		Actor string `json:"actor"`
	}{imp.Options, imp.ActorJSON})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO imports (id, account_id, kind, status, options, total, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		imp.ID, imp.AccountID, imp.Kind, imp.Status, string(opts), imp.Rows.Total, store.Time(imp.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert import: %w", err)
	}
	for start := 0; start < len(rows); start += importInsertBatch {
		batch := rows[start:min(start+importInsertBatch, len(rows))]
		marks := make([]string, len(batch))
		args := make([]any, 0, 4*len(batch))
		for i, r := range batch {
			fields, err := json.Marshal(r.Fields)
			if err != nil {
				return err
			}
			n := len(args)
			marks[i] = fmt.Sprintf("($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
			args = append(args, imp.ID, r.Number, string(fields), r.Err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO import_rows (import_id, row_number, fields, parse_error) VALUES `+strings.Join(marks, ", "), args...); err != nil {
			return fmt.Errorf("insert import rows: %w", err)
		}
	}
	return nil
}

const importColumns = `id, account_id, kind, status, options, total, done, created, updated, skipped, refused, created_at, started_at, finished_at`

func scanImport(row scanner) (app.Import, error) {
	var imp app.Import
	var opts, created string
	var started, finished sql.NullString
	if err := row.Scan(&imp.ID, &imp.AccountID, &imp.Kind, &imp.Status, &opts, &imp.Rows.Total, &imp.Rows.Done,
		&imp.Created, &imp.Updated, &imp.Skipped, &imp.Refused, &created, &started, &finished); err != nil {
		return imp, err
	}
	var o struct {
		app.ImportOptions
		Actor string `json:"actor"`
	}
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		return imp, err
	}
	imp.Options, imp.ActorJSON = o.ImportOptions, o.Actor
	var err error
	imp.CreatedAt, err = store.ParseTime(created)
	imp.StartedAt, imp.FinishedAt = parseNullTime(started), parseNullTime(finished)
	return imp, err
}

func (s Store) Import(ctx context.Context, q app.Querier, accountID, id string) (app.Import, error) {
	imp, err := scanImport(q.QueryRowContext(ctx, `SELECT `+importColumns+` FROM imports WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return imp, app.ErrNotFound
	}
	return imp, err
}

func (s Store) ActiveImports(ctx context.Context, limit int) ([]app.Import, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+importColumns+` FROM imports WHERE status <> 'done' ORDER BY created_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("active imports: %w", err)
	}
	defer rows.Close()
	var out []app.Import
	for rows.Next() {
		imp, err := scanImport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, imp)
	}
	return out, rows.Err()
}

func (s Store) ImportRows(ctx context.Context, importID, outcome string, afterRow, limit int) ([]app.RowResult, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT row_number, outcome, reason, entity_id FROM import_rows
		WHERE import_id = $1 AND outcome <> '' AND ($2 = '' OR outcome = $2) AND row_number > $3 ORDER BY row_number LIMIT $4`,
		importID, outcome, afterRow, limit)
	if err != nil {
		return nil, fmt.Errorf("import rows: %w", err)
	}
	defer rows.Close()
	var out []app.RowResult
	for rows.Next() {
		var r app.RowResult
		if err := rows.Scan(&r.Row, &r.Outcome, &r.Reason, &r.ID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s Store) PendingImportRows(ctx context.Context, importID string, limit int) ([]domain.ImportRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT row_number, fields, parse_error FROM import_rows
		WHERE import_id = $1 AND outcome = '' ORDER BY row_number LIMIT $2`, importID, limit)
	if err != nil {
		return nil, fmt.Errorf("pending import rows: %w", err)
	}
	defer rows.Close()
	var out []domain.ImportRow
	for rows.Next() {
		var r domain.ImportRow
		var fields string
		if err := rows.Scan(&r.Number, &fields, &r.Err); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RecordImportRows stores outcomes of rows still without one (a row
// recorded by another run is not counted twice) and recounts the import.
func (s Store) RecordImportRows(ctx context.Context, tx *sql.Tx, importID string, results []app.RowResult, now time.Time) (bool, error) {
	counts := map[string]int{}
	for _, r := range results {
		res, err := tx.ExecContext(ctx, `UPDATE import_rows SET outcome = $1, reason = $2, entity_id = $3
			WHERE import_id = $4 AND row_number = $5 AND outcome = ''`, r.Outcome, r.Reason, r.ID, importID, r.Row)
		if err != nil {
			return false, fmt.Errorf("record import row: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			counts[r.Outcome]++
		}
	}
	done := counts[app.RowCreated] + counts[app.RowUpdated] + counts[app.RowSkipped] + counts[app.RowRefused]
	t := store.Time(now)
	_, err := tx.ExecContext(ctx, `UPDATE imports SET done = done + $1, created = created + $2, updated = updated + $3,
		skipped = skipped + $4, refused = refused + $5, started_at = COALESCE(started_at, $6),
		status = CASE WHEN done + $1 >= total THEN 'done' ELSE 'running' END,
		finished_at = CASE WHEN done + $1 >= total THEN $6 ELSE NULL END
		WHERE id = $7`, done, counts[app.RowCreated], counts[app.RowUpdated], counts[app.RowSkipped], counts[app.RowRefused], t, importID)
	if err != nil {
		return false, fmt.Errorf("record import: %w", err)
	}
	var status string
	if err := tx.QueryRowContext(ctx, `SELECT status FROM imports WHERE id = $1`, importID).Scan(&status); err != nil {
		return false, err
	}
	return status == app.ImportDone && done > 0, nil
}
