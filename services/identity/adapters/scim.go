package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
)

var _ app.ScimStore = Store{}

func (s Store) ExternalIDs(ctx context.Context, q app.Querier, accountID string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT resource_id, external_id FROM scim_external_ids WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("external ids: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, ext string
		if err := rows.Scan(&id, &ext); err != nil {
			return nil, err
		}
		out[id] = ext
	}
	return out, rows.Err()
}

func (s Store) SaveExternalID(ctx context.Context, tx *sql.Tx, accountID, resourceID, externalID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO scim_external_ids (account_id, resource_id, external_id) VALUES ($1, $2, $3)
		ON CONFLICT (account_id, resource_id) DO UPDATE SET external_id = excluded.external_id`, accountID, resourceID, externalID)
	if err != nil {
		return fmt.Errorf("save external id: %w", err)
	}
	return nil
}

func (s Store) DirectoryEntries(ctx context.Context, accountID string) (map[string]app.DirectoryEntry, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT technician_id, employee_number, department, job_title, location, manager
		FROM technician_directory WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("directory entries: %w", err)
	}
	defer rows.Close()
	out := map[string]app.DirectoryEntry{}
	for rows.Next() {
		d := app.DirectoryEntry{AccountID: accountID}
		if err := rows.Scan(&d.TechnicianID, &d.EmployeeNumber, &d.Department, &d.JobTitle, &d.Location, &d.Manager); err != nil {
			return nil, err
		}
		out[d.TechnicianID] = d
	}
	return out, rows.Err()
}

func (s Store) InsertGroup(ctx context.Context, tx *sql.Tx, g app.ScimGroup) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO scim_groups (id, account_id, display_name, name_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		g.ID, g.AccountID, g.DisplayName, strings.ToLower(g.DisplayName), store.Time(g.CreatedAt), store.Time(g.UpdatedAt))
	if err != nil {
		return err
	}
	return s.setMembers(ctx, tx, g)
}

func (s Store) setMembers(ctx context.Context, tx *sql.Tx, g app.ScimGroup) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM scim_group_members WHERE group_id = $1`, g.ID); err != nil {
		return err
	}
	for _, m := range g.Members {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scim_group_members (group_id, technician_id) VALUES ($1, $2)`, g.ID, m); err != nil {
			return fmt.Errorf("group member: %w", err)
		}
	}
	return nil
}

func (s Store) UpdateGroup(ctx context.Context, tx *sql.Tx, g app.ScimGroup) error {
	_, err := tx.ExecContext(ctx, `UPDATE scim_groups SET display_name = $1, name_key = $2, updated_at = $3 WHERE account_id = $4 AND id = $5`,
		g.DisplayName, strings.ToLower(g.DisplayName), store.Time(g.UpdatedAt), g.AccountID, g.ID)
	if err != nil {
		return err
	}
	return s.setMembers(ctx, tx, g)
}

func (s Store) DeleteGroup(ctx context.Context, tx *sql.Tx, accountID, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM scim_group_members WHERE group_id = $1`, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM scim_external_ids WHERE account_id = $1 AND resource_id = $2`, accountID, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM scim_groups WHERE account_id = $1 AND id = $2`, accountID, id)
	return err
}

// Groups returns the account's groups in id order, with their members in
// insertion-independent (id) order.
func (s Store) Groups(ctx context.Context, q app.Querier, accountID string) ([]app.ScimGroup, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, display_name, created_at, updated_at FROM scim_groups WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	var out []app.ScimGroup
	idx := map[string]int{}
	for rows.Next() {
		g := app.ScimGroup{AccountID: accountID, Members: []string{}}
		var created, updated string
		if err := rows.Scan(&g.ID, &g.DisplayName, &created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		g.CreatedAt, _ = store.ParseTime(created)
		g.UpdatedAt, _ = store.ParseTime(updated)
		idx[g.ID] = len(out)
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	mrows, err := q.QueryContext(ctx, `SELECT m.group_id, m.technician_id FROM scim_group_members m
		JOIN scim_groups g ON g.id = m.group_id WHERE g.account_id = $1 ORDER BY m.group_id, m.technician_id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("group members: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var gid, tid string
		if err := mrows.Scan(&gid, &tid); err != nil {
			return nil, err
		}
		if i, ok := idx[gid]; ok {
			out[i].Members = append(out[i].Members, tid)
		}
	}
	return out, mrows.Err()
}
