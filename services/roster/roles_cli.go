package roster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The role and access commands (issue 5, item 8) over the HTTP API, with
// the admin commands' flags: --server, --token, --account, --json.
//
//	roster roles ls|show|create|edit|rm
//	roster access check TECH PERMISSION [--site S] [--folder F]
//	roster access explain TECH
//
// A role is named by id or by name (case-insensitively).

// roleRow is a role as the API returns it.
type roleRow struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	BuiltIn           bool     `json:"built_in"`
	Permissions       []string `json:"permissions"`
	SiteIDs           []string `json:"site_ids"`
	ExcludedFolderIDs []string `json:"excluded_folder_ids"`
	Version           int64    `json:"version"`
}

// errAccessDenied makes `roster access check` exit 1 when access is
// denied, so that scripts can branch on it (as `kubectl auth can-i`).
var errAccessDenied = errors.New("access denied")

// send is apiClient.call for the commands that need request or answer
// headers (If-Match, ETag): it returns the answer's headers, decodes a
// JSON answer into out (when not nil) and turns a problem into an error
// naming it.
func (c *apiClient) send(method, path string, body any, header map[string]string, out any) (http.Header, error) {
	if err := c.resolve(); err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(c.server, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 300 {
		var p struct {
			Title, Detail string
			Errors        []struct{ Field, Detail string }
		}
		_ = json.Unmarshal(raw, &p)
		msg := fmt.Sprintf("%d %s", res.StatusCode, p.Title)
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		for _, e := range p.Errors {
			msg += fmt.Sprintf("\n  %s: %s", e.Field, e.Detail)
		}
		return res.Header, errors.New(msg)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return res.Header, nil
}

// printJSON prints v indented (--json).
func (c *apiClient) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *apiClient) roleTable(roles []roleRow) error {
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tBUILT-IN\tVERSION\tPERMISSIONS\tSITES\tEXCLUDED FOLDERS")
	for _, r := range roles {
		sites := "all"
		if len(r.SiteIDs) > 0 {
			sites = strings.Join(r.SiteIDs, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%d\t%s\t%s\t%s\n", r.ID, r.Name, r.BuiltIn, r.Version,
			orNone(r.Permissions), sites, orNone(r.ExcludedFolderIDs))
	}
	return w.Flush()
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func rolesCommands(stdout io.Writer) []*cobra.Command {
	c := &apiClient{out: stdout}
	var acc string
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc), nil
	}
	list := func() ([]roleRow, error) {
		b, err := base()
		if err != nil {
			return nil, err
		}
		var all []roleRow
		q := url.Values{"limit": {"500"}}
		for {
			var page struct {
				Data       []roleRow `json:"data"`
				NextCursor *string   `json:"next_cursor"`
			}
			if _, err := c.send("GET", b+"/roles?"+q.Encode(), nil, nil, &page); err != nil {
				return nil, err
			}
			all = append(all, page.Data...)
			if page.NextCursor == nil {
				return all, nil
			}
			q.Set("cursor", *page.NextCursor)
		}
	}
	// resolve finds a role by id, else by name case-insensitively.
	resolve := func(ref string) (roleRow, error) {
		roles, err := list()
		if err != nil {
			return roleRow{}, err
		}
		for _, r := range roles {
			if r.ID == ref {
				return r, nil
			}
		}
		for _, r := range roles {
			if strings.EqualFold(strings.TrimSpace(r.Name), strings.TrimSpace(ref)) {
				return r, nil
			}
		}
		return roleRow{}, fmt.Errorf("no role %q in account %s", ref, acc)
	}

	roles := &cobra.Command{Use: "roles", Short: "Roles of an account: built-in and custom (R-2, R-3)"}
	ls := &cobra.Command{
		Use: "ls", Short: "List the roles", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			all, err := list()
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]any{"data": all})
			}
			return c.roleTable(all)
		},
	}
	show := &cobra.Command{
		Use: "show ROLE", Short: "Show a role (by id or name) with its version", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := resolve(args[0])
			if err != nil {
				return err
			}
			b, _ := base()
			var got roleRow
			if _, err := c.send("GET", b+"/roles/"+url.PathEscape(r.ID), nil, nil, &got); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(got)
			}
			return c.roleTable([]roleRow{got})
		},
	}

	var spec struct {
		name                        string
		perms, sites, folders       []string
		addPerms, removePerms       []string
		allSites, noExcludedFolders bool
	}
	create := &cobra.Command{
		Use: "create", Short: "Create a custom role (unlimited on every plan)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			body := map[string]any{"name": spec.name, "permissions": nonNilList(spec.perms),
				"site_ids": nonNilList(spec.sites), "excluded_folder_ids": nonNilList(spec.folders)}
			var r roleRow
			// One key per invocation, as the admin commands: a retried
			// request is not applied twice.
			key := map[string]string{"Idempotency-Key": fmt.Sprintf("cli-%d", time.Now().UnixNano())}
			if _, err := c.send("POST", b+"/roles", body, key, &r); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(r)
			}
			return c.roleTable([]roleRow{r})
		},
	}
	cf := create.Flags()
	cf.StringVar(&spec.name, "name", "", "role name (unique in the account, case-insensitively)")
	cf.StringSliceVar(&spec.perms, "permission", nil, "permission id (repeatable, or comma-separated; see GET /v1/permissions)")
	cf.StringSliceVar(&spec.sites, "site", nil, "limit the role to this site id (repeatable; none: every site)")
	cf.StringSliceVar(&spec.folders, "exclude-folder", nil, "folder id whose devices the role's remote and RMM permissions do not reach (repeatable)")

	edit := &cobra.Command{
		Use:   "edit ROLE",
		Short: "Change a custom role: read it, apply the flags, save it whole under its version (If-Match)",
		Long: "Reads the role with its ETag, applies the flags and saves the whole role with If-Match (R-4).\n" +
			"If someone else saved the role in between, nothing is saved and the command fails with 412: run it again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := resolve(args[0])
			if err != nil {
				return err
			}
			b, _ := base()
			path := b + "/roles/" + url.PathEscape(r.ID)
			var cur roleRow
			h, err := c.send("GET", path, nil, nil, &cur)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("name") {
				cur.Name = spec.name
			}
			if f.Changed("permission") {
				cur.Permissions = spec.perms
			}
			for _, p := range spec.addPerms {
				if !slices.Contains(cur.Permissions, p) {
					cur.Permissions = append(cur.Permissions, p)
				}
			}
			cur.Permissions = slices.DeleteFunc(cur.Permissions, func(p string) bool { return slices.Contains(spec.removePerms, p) })
			if f.Changed("site") {
				cur.SiteIDs = spec.sites
			}
			if spec.allSites {
				cur.SiteIDs = nil
			}
			if f.Changed("exclude-folder") {
				cur.ExcludedFolderIDs = spec.folders
			}
			if spec.noExcludedFolders {
				cur.ExcludedFolderIDs = nil
			}
			body := map[string]any{"name": cur.Name, "permissions": nonNilList(cur.Permissions),
				"site_ids": nonNilList(cur.SiteIDs), "excluded_folder_ids": nonNilList(cur.ExcludedFolderIDs)}
			var saved roleRow
			if _, err := c.send("PUT", path, body, map[string]string{"If-Match": h.Get("ETag")}, &saved); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(saved)
			}
			return c.roleTable([]roleRow{saved})
		},
	}
	ef := edit.Flags()
	ef.StringVar(&spec.name, "name", "", "new name")
	ef.StringSliceVar(&spec.perms, "permission", nil, "the role's permissions, replacing the current ones (repeatable)")
	ef.StringSliceVar(&spec.addPerms, "add-permission", nil, "add a permission (repeatable)")
	ef.StringSliceVar(&spec.removePerms, "remove-permission", nil, "remove a permission (repeatable)")
	ef.StringSliceVar(&spec.sites, "site", nil, "the role's sites, replacing the current ones (repeatable)")
	ef.BoolVar(&spec.allSites, "all-sites", false, "reach every site")
	ef.StringSliceVar(&spec.folders, "exclude-folder", nil, "the excluded folders, replacing the current ones (repeatable)")
	ef.BoolVar(&spec.noExcludedFolders, "no-excluded-folders", false, "exclude no folder")

	rm := &cobra.Command{
		Use: "rm ROLE", Short: "Delete a custom role no technician holds", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := resolve(args[0])
			if err != nil {
				return err
			}
			b, _ := base()
			if _, err := c.send("DELETE", b+"/roles/"+url.PathEscape(r.ID), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s (%s)\n", r.ID, r.Name)
			return nil
		},
	}
	roles.AddCommand(ls, show, create, edit, rm)

	accessCmd := &cobra.Command{Use: "access", Short: "Access decisions: check one, or explain a technician's (R-5, R-7)"}
	var site, folder string
	check := &cobra.Command{
		Use:   "check TECHNICIAN_ID PERMISSION",
		Short: "May the technician use the permission (on a site, on a folder's devices)? Exits 1 when denied",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			body := map[string]any{"technician_id": args[0], "permission": args[1]}
			if site != "" {
				body["site_id"] = site
			}
			if folder != "" {
				body["folder_id"] = folder
			}
			var d struct {
				Allowed  bool   `json:"allowed"`
				Reason   string `json:"reason"`
				Decision string `json:"decision"`
			}
			var raw json.RawMessage
			if _, err := c.send("POST", b+"/access/check", body, nil, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				return err
			}
			if c.json {
				if err := c.printJSON(raw); err != nil {
					return err
				}
			} else {
				verdict := "denied"
				if d.Allowed {
					verdict = "allowed"
				}
				fmt.Fprintf(stdout, "%s (%s)\n  %s\n", verdict, d.Decision, d.Reason)
			}
			if !d.Allowed {
				return errAccessDenied
			}
			return nil
		},
	}
	check.Flags().StringVar(&site, "site", "", "site id")
	check.Flags().StringVar(&folder, "folder", "", "device folder id (implies its site)")
	explain := &cobra.Command{
		Use: "explain TECHNICIAN_ID", Short: "Every permission per site of the technician's role, with why (atlan: the three layers)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var e struct {
				TechnicianID string  `json:"technician_id"`
				Status       string  `json:"status"`
				Role         *string `json:"role"`
				AllSites     bool    `json:"all_sites"`
				Sites        []struct {
					SiteID      *string `json:"site_id"`
					SiteName    *string `json:"site_name"`
					Permissions []struct {
						ID, Reason string
						Allowed    bool
					} `json:"permissions"`
					ExcludedFolders []struct {
						FolderID           string   `json:"folder_id"`
						Name               string   `json:"name"`
						RemovedPermissions []string `json:"removed_permissions"`
					} `json:"excluded_folders"`
				} `json:"sites"`
			}
			var raw json.RawMessage
			if _, err := c.send("GET", b+"/technicians/"+url.PathEscape(args[0])+"/effective-access", nil, nil, &raw); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(raw)
			}
			if layered, err := printLayeredAccess(stdout, raw); layered || err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			scope := "every site"
			if !e.AllSites {
				scope = "only the sites below (every other site is denied: client isolation)"
			}
			fmt.Fprintf(stdout, "technician %s (%s), role %s, %s\n", e.TechnicianID, e.Status, orDash(e.Role), scope)
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "SITE\tPERMISSION\tALLOWED\tWHY")
			for _, s := range e.Sites {
				name := "all sites"
				if s.SiteID != nil {
					name = *s.SiteID
					if s.SiteName != nil {
						name += " (" + *s.SiteName + ")"
					}
				}
				for _, p := range s.Permissions {
					fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", name, p.ID, p.Allowed, p.Reason)
				}
				for _, f := range s.ExcludedFolders {
					fmt.Fprintf(w, "%s\tfolder %s (%s)\t-\texcluded: loses %s; its devices stay visible (R-5)\n",
						name, f.FolderID, f.Name, orNone(f.RemovedPermissions))
				}
			}
			return w.Flush()
		},
	}
	accessCmd.AddCommand(check, explain, assetCheckCommand(c, base, stdout))

	for _, cmd := range []*cobra.Command{roles, accessCmd} {
		c.bind(cmd)
		cmd.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…)")
		// Flags win; ROSTER_SERVER, ROSTER_TOKEN, ROSTER_ACCOUNT fill the rest.
		cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	}
	return []*cobra.Command{roles, accessCmd}
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
