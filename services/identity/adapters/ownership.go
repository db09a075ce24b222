package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/outbox"
	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

var _ app.OwnershipStore = Store{}

const ownershipCols = `kind, item_id, owner_id, status, folder, on_disable, archived_until, updated_at`

func scanOwned(rows *sql.Rows) ([]domain.OwnedItem, error) {
	defer rows.Close()
	var out []domain.OwnedItem
	for rows.Next() {
		var it domain.OwnedItem
		var archived sql.NullString
		var updated string
		if err := rows.Scan(&it.Kind, &it.ID, &it.OwnerID, &it.Status, &it.Folder, &it.OnDisable, &archived, &updated); err != nil {
			return nil, err
		}
		it.ArchivedUntil = parseNullTime(archived)
		it.UpdatedAt, _ = store.ParseTime(updated)
		out = append(out, it)
	}
	return out, rows.Err()
}

// UpsertOwnership registers or updates an item (O-4), by (kind, id). A
// registration of an archived item keeps it archived.
func (s Store) UpsertOwnership(ctx context.Context, tx *sql.Tx, accountID string, it domain.OwnedItem, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ownership (account_id, kind, item_id, owner_id, status, folder, on_disable, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (account_id, kind, item_id) DO UPDATE SET owner_id = excluded.owner_id, status = excluded.status,
		folder = excluded.folder, on_disable = excluded.on_disable, updated_at = excluded.updated_at`,
		accountID, it.Kind, it.ID, it.OwnerID, it.Status, it.Folder, it.OnDisable, store.Time(now))
	if err != nil {
		return fmt.Errorf("upsert ownership: %w", err)
	}
	return nil
}

func (s Store) DeleteOwnership(ctx context.Context, tx *sql.Tx, accountID, kind, id string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM ownership WHERE account_id = $1 AND kind = $2 AND item_id = $3`, accountID, kind, id)
	if err != nil {
		return false, fmt.Errorf("delete ownership: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s Store) Item(ctx context.Context, q app.Querier, accountID, kind, id string) (domain.OwnedItem, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+ownershipCols+` FROM ownership WHERE account_id = $1 AND kind = $2 AND item_id = $3`, accountID, kind, id)
	if err != nil {
		return domain.OwnedItem{}, err
	}
	items, err := scanOwned(rows)
	if err != nil {
		return domain.OwnedItem{}, err
	}
	if len(items) == 0 {
		return domain.OwnedItem{}, app.ErrNotFound
	}
	return items[0], nil
}

// page appends the keyset condition and order to a query.
func page(q string, args []any, f app.OwnershipFilter) (string, []any) {
	if f.AfterKind != "" || f.AfterID != "" {
		args = append(args, f.AfterKind, f.AfterID)
		q += fmt.Sprintf(` AND (o.kind > $%d OR (o.kind = $%d AND o.item_id > $%d))`, len(args)-1, len(args)-1, len(args))
	}
	args = append(args, f.Limit)
	return q + fmt.Sprintf(` ORDER BY o.kind, o.item_id LIMIT $%d`, len(args)), args
}

func prefixed(cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = "o." + p
	}
	return strings.Join(parts, ", ")
}

func (s Store) ListOwnership(ctx context.Context, q app.Querier, f app.OwnershipFilter) ([]domain.OwnedItem, error) {
	query := `SELECT ` + prefixed(ownershipCols) + ` FROM ownership o WHERE o.account_id = $1`
	args := []any{f.AccountID}
	if f.OwnerID != "" {
		args = append(args, f.OwnerID)
		query += fmt.Sprintf(` AND o.owner_id = $%d`, len(args))
	}
	if f.Kind != "" {
		args = append(args, f.Kind)
		query += fmt.Sprintf(` AND o.kind = $%d`, len(args))
	}
	query, args = page(query, args, f)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list ownership: %w", err)
	}
	return scanOwned(rows)
}

func (s Store) OwnedPage(ctx context.Context, q app.Querier, accountID, owner, afterKind, afterID string, limit int) ([]domain.OwnedItem, error) {
	query, args := page(`SELECT `+prefixed(ownershipCols)+` FROM ownership o WHERE o.account_id = $1 AND o.owner_id = $2 AND o.archived_until IS NULL`,
		[]any{accountID, owner}, app.OwnershipFilter{AfterKind: afterKind, AfterID: afterID, Limit: limit})
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("owned items: %w", err)
	}
	return scanOwned(rows)
}

// Orphans: items whose owner is a disabled technician, archived reports
// aside (O-2).
func (s Store) Orphans(ctx context.Context, q app.Querier, f app.OwnershipFilter) ([]domain.OwnedItem, error) {
	query := `SELECT ` + prefixed(ownershipCols) + ` FROM ownership o JOIN technicians t ON t.id = o.owner_id AND t.account_id = o.account_id
		WHERE o.account_id = $1 AND t.status = 'disabled' AND o.archived_until IS NULL`
	args := []any{f.AccountID}
	if f.OwnerID != "" {
		args = append(args, f.OwnerID)
		query += fmt.Sprintf(` AND o.owner_id = $%d`, len(args))
	}
	if f.Kind != "" {
		args = append(args, f.Kind)
		query += fmt.Sprintf(` AND o.kind = $%d`, len(args))
	}
	query, args = page(query, args, f)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("orphans: %w", err)
	}
	return scanOwned(rows)
}

func (s Store) SetOwner(ctx context.Context, tx *sql.Tx, accountID, kind, id, owner string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE ownership SET owner_id = $1, updated_at = $2 WHERE account_id = $3 AND kind = $4 AND item_id = $5`,
		owner, store.Time(now), accountID, kind, id)
	if err != nil {
		return fmt.Errorf("set owner: %w", err)
	}
	return nil
}

func (s Store) ArchiveItem(ctx context.Context, tx *sql.Tx, accountID, kind, id, offboardingID string, until, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE ownership SET archived_until = $1, archived_by = $2, updated_at = $3
		WHERE account_id = $4 AND kind = $5 AND item_id = $6`, store.Time(until), offboardingID, store.Time(now), accountID, kind, id)
	if err != nil {
		return fmt.Errorf("archive item: %w", err)
	}
	return nil
}

func scanArchived(rows *sql.Rows) ([]app.ArchivedItem, error) {
	defer rows.Close()
	var out []app.ArchivedItem
	for rows.Next() {
		var it app.ArchivedItem
		var until string
		if err := rows.Scan(&it.AccountID, &it.Kind, &it.ID, &it.OwnerID, &it.OffboardingID, &until); err != nil {
			return nil, err
		}
		it.Until, _ = store.ParseTime(until)
		out = append(out, it)
	}
	return out, rows.Err()
}

func (s Store) ArchivedBy(ctx context.Context, tx *sql.Tx, accountID, technicianID string, now time.Time) ([]app.ArchivedItem, error) {
	rows, err := tx.QueryContext(ctx, `SELECT account_id, kind, item_id, owner_id, archived_by, archived_until FROM ownership
		WHERE account_id = $1 AND owner_id = $2 AND archived_until IS NOT NULL AND archived_until > $3 ORDER BY kind, item_id`,
		accountID, technicianID, store.Time(now))
	if err != nil {
		return nil, fmt.Errorf("archived items: %w", err)
	}
	return scanArchived(rows)
}

func (s Store) UnarchiveItem(ctx context.Context, tx *sql.Tx, accountID, kind, id string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE ownership SET archived_until = NULL, archived_by = NULL, updated_at = $1
		WHERE account_id = $2 AND kind = $3 AND item_id = $4 AND archived_until IS NOT NULL`, store.Time(now), accountID, kind, id)
	if err != nil {
		return false, fmt.Errorf("unarchive: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s Store) DueArchives(ctx context.Context, now time.Time, limit int) ([]app.ArchivedItem, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT account_id, kind, item_id, owner_id, archived_by, archived_until FROM ownership
		WHERE archived_until IS NOT NULL AND archived_until <= $1 ORDER BY archived_until LIMIT $2`, store.Time(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due archives: %w", err)
	}
	return scanArchived(rows)
}

func (s Store) PurgeArchived(ctx context.Context, tx *sql.Tx, it app.ArchivedItem, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM ownership WHERE account_id = $1 AND kind = $2 AND item_id = $3
		AND archived_until IS NOT NULL AND archived_until <= $4 AND archived_by = $5`, it.AccountID, it.Kind, it.ID, store.Time(now), it.OffboardingID)
	if err != nil {
		return false, fmt.Errorf("purge archived: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s Store) InsertOffboarding(ctx context.Context, tx *sql.Tx, o app.Offboarding) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO offboardings (id, account_id, technician_id, policy, successor_id, successor_source, status, outstanding, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)`, o.ID, o.AccountID, o.TechnicianID, o.Policy, o.SuccessorID, o.SuccessorSource, o.Status, store.Time(o.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert offboarding: %w", err)
	}
	return nil
}

const offboardingCols = `id, account_id, technician_id, policy, successor_id, successor_source, status, outstanding, created_at, completed_at`

func scanOffboarding(row *sql.Row) (app.Offboarding, error) {
	var o app.Offboarding
	var created string
	var completed sql.NullString
	err := row.Scan(&o.ID, &o.AccountID, &o.TechnicianID, &o.Policy, &o.SuccessorID, &o.SuccessorSource, &o.Status, &o.Outstanding, &created, &completed)
	if errors.Is(err, sql.ErrNoRows) {
		return o, app.ErrNotFound
	}
	if err != nil {
		return o, err
	}
	o.CreatedAt, _ = store.ParseTime(created)
	o.CompletedAt = parseNullTime(completed)
	return o, nil
}

func (s Store) Offboarding(ctx context.Context, q app.Querier, accountID, id string) (app.Offboarding, error) {
	return scanOffboarding(q.QueryRowContext(ctx, `SELECT `+offboardingCols+` FROM offboardings WHERE account_id = $1 AND id = $2`, accountID, id))
}

func (s Store) LatestOffboarding(ctx context.Context, q app.Querier, accountID, technicianID string) (app.Offboarding, error) {
	return scanOffboarding(q.QueryRowContext(ctx, `SELECT `+offboardingCols+` FROM offboardings
		WHERE account_id = $1 AND technician_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1`, accountID, technicianID))
}

func (s Store) AddAction(ctx context.Context, tx *sql.Tx, offboardingID string, a domain.Action, from string, now time.Time) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM offboarding_actions WHERE offboarding_id = $1`, offboardingID).Scan(&seq); err != nil {
		return 0, fmt.Errorf("next action: %w", err)
	}
	var acked any
	if a.Instruction == "" {
		acked = store.Time(now) // keep: nothing to acknowledge
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO offboarding_actions (offboarding_id, seq, kind, item_id, action, from_owner, to_owner, instruction, acked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, offboardingID, seq, a.Kind, a.ID, a.Action, from, a.To, a.Instruction, acked); err != nil {
		return 0, fmt.Errorf("add action: %w", err)
	}
	if a.Instruction != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE offboardings SET outstanding = outstanding + 1, status = $1, completed_at = NULL WHERE id = $2`,
			domain.OffboardingInProgress, offboardingID); err != nil {
			return 0, fmt.Errorf("count instruction: %w", err)
		}
	}
	return seq, nil
}

func (s Store) CloseIfDone(ctx context.Context, tx *sql.Tx, offboardingID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE offboardings SET status = $1, completed_at = $2 WHERE id = $3 AND outstanding = 0 AND status <> $1`,
		domain.OffboardingCompleted, store.Time(now), offboardingID)
	return err
}

func (s Store) Actions(ctx context.Context, q app.Querier, offboardingID string, outstandingOnly bool, afterSeq int64, limit int) ([]app.ActionRow, error) {
	query := `SELECT seq, kind, item_id, action, from_owner, to_owner, instruction, acked_at FROM offboarding_actions
		WHERE offboarding_id = $1 AND seq > $2`
	if outstandingOnly {
		query += ` AND acked_at IS NULL`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY seq LIMIT $3`, offboardingID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	defer rows.Close()
	var out []app.ActionRow
	for rows.Next() {
		var r app.ActionRow
		var acked sql.NullString
		if err := rows.Scan(&r.Seq, &r.Kind, &r.ID, &r.Action.Action, &r.From, &r.To, &r.Instruction, &acked); err != nil {
			return nil, err
		}
		r.AckedAt = parseNullTime(acked)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s Store) Summary(ctx context.Context, q app.Querier, offboardingID string) (domain.OffboardingSummary, error) {
	rows, err := q.QueryContext(ctx, `SELECT kind, action, COUNT(*) FROM offboarding_actions WHERE offboarding_id = $1 GROUP BY kind, action`, offboardingID)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	out := domain.OffboardingSummary{}
	for rows.Next() {
		var kind, action string
		var n int
		if err := rows.Scan(&kind, &action, &n); err != nil {
			return nil, err
		}
		if out[kind] == nil {
			out[kind] = map[string]int{}
		}
		out[kind][action] = n
	}
	return out, rows.Err()
}

func (s Store) Ack(ctx context.Context, tx *sql.Tx, offboardingID, kind, id string, now time.Time) (int, error) {
	res, err := tx.ExecContext(ctx, `UPDATE offboarding_actions SET acked_at = $1
		WHERE offboarding_id = $2 AND kind = $3 AND item_id = $4 AND acked_at IS NULL`, store.Time(now), offboardingID, kind, id)
	if err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE offboardings SET outstanding = outstanding - $1 WHERE id = $2`, n, offboardingID); err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	return int(n), nil
}

func (s Store) LiveSessionCount(ctx context.Context, q app.Querier, technicianID string, now time.Time) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE technician_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
		technicianID, store.Time(now)).Scan(&n)
	return n, err
}

// CloudEvents attributes of the offboarding instructions (api.md,
// docs/events.md "Offboarding instructions").
const (
	// InstructionTypePrefix starts ce-type: dev.roster.offboarding.<Type>.
	InstructionTypePrefix = "dev.roster.offboarding."
	InstructionSource     = "roster/identity"
)

// Instructions publishes offboarding instructions through identity's
// outbox, in the transaction that decides them: an instruction is
// published if and only if its action is stored, and its id as
// Nats-Msg-Id lets the stream drop a second copy after a relay crash.
type Instructions struct{ Outbox *outbox.Outbox }

var _ app.InstructionPublisher = Instructions{}

// InstructionSubject is roster.offboarding.<account_id>.<kind>.
func InstructionSubject(accountID, kind string) (string, error) {
	for _, tok := range []string{accountID, kind} {
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			return "", fmt.Errorf("offboarding instruction: %q cannot be a NATS subject token", tok)
		}
	}
	return eventbus.OffboardingSubjectPrefix + accountID + "." + kind, nil
}

func (p Instructions) Publish(ctx context.Context, tx *sql.Tx, ins app.Instruction) error {
	subject, err := InstructionSubject(ins.AccountID, ins.Kind)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ins)
	if err != nil {
		return fmt.Errorf("encode instruction %s: %w", ins.ID, err)
	}
	msg := message.NewMessage(ins.ID, body)
	msg.Metadata.Set(eventbus.HeaderSpecVersion, "1.0")
	msg.Metadata.Set(eventbus.HeaderID, ins.ID)
	msg.Metadata.Set(eventbus.HeaderType, InstructionTypePrefix+ins.Type)
	msg.Metadata.Set(eventbus.HeaderSource, InstructionSource)
	msg.Metadata.Set(eventbus.HeaderTime, ins.Time.Format(time.RFC3339Nano))
	msg.Metadata.Set(eventbus.HeaderSubject, ins.Kind+"/"+ins.ItemID)
	msg.Metadata.Set(eventbus.HeaderContentType, "application/json")
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	if err := p.Outbox.Add(tx, subject, msg); err != nil {
		return fmt.Errorf("publish instruction %s: %w", ins.ID, err)
	}
	return nil
}

// FeedPosition is the last ownership event applied (O-4).
func (s Store) FeedPosition(ctx context.Context, q app.Querier) (uint64, error) {
	var seq int64
	if err := q.QueryRowContext(ctx, `SELECT last_seq FROM ownership_feed WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("ownership feed: %w", err)
	}
	return uint64(seq), nil
}

// SetFeedPosition records seq as applied; it never moves back.
func (s Store) SetFeedPosition(ctx context.Context, tx *sql.Tx, seq uint64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE ownership_feed SET last_seq = $1 WHERE id = 1 AND last_seq < $1`, int64(seq)); err != nil {
		return fmt.Errorf("ownership feed: %w", err)
	}
	return nil
}

// OwnershipRejects dead-letters the ownership events identity refuses
// (O-4) on roster.deadletter.identity_ownership, through identity's
// outbox in the transaction that refuses them: the original payload and
// headers, with the reason.
type OwnershipRejects struct{ Outbox *outbox.Outbox }

var _ app.OwnershipRejecter = OwnershipRejects{}

// OwnershipConsumerName names the ownership feed in dead letters.
const OwnershipConsumerName = "identity_ownership"

func (r OwnershipRejects) Reject(ctx context.Context, tx *sql.Tx, ev app.OwnershipEvent, reason error) error {
	msg := message.NewMessage(fmt.Sprintf("ownership.%d.%s", ev.Seq, OwnershipConsumerName), ev.Raw)
	for k, v := range ev.Header {
		msg.Metadata.Set(k, v)
	}
	msg.Metadata.Set(eventbus.HeaderDLConsumer, OwnershipConsumerName)
	msg.Metadata.Set(eventbus.HeaderDLSubject, ev.Subject)
	msg.Metadata.Set(eventbus.HeaderDLError, reason.Error())
	msg.Metadata.Set(eventbus.HeaderDLDelivery, "1")
	msg.Metadata.Set(eventbus.HeaderDLTime, time.Now().UTC().Format(time.RFC3339Nano))
	if err := r.Outbox.Add(tx, eventbus.DeadLetterPrefix+OwnershipConsumerName, msg); err != nil {
		return fmt.Errorf("dead-letter ownership event %d: %w", ev.Seq, err)
	}
	return nil
}
