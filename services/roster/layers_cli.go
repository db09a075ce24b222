package roster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"roster.dev/services/roster/console"
)

// The persona and purpose commands (issue 9, R-9) over the HTTP API, with
// the admin commands' flags: --server, --token, --account, --json.
//
//	roster personas ls|show|create|edit|rm|assign
//	roster purposes ls|show|create|edit|rm
//	roster access asset TECH ACTION --connection C --type T [--tag PII]
//
// A persona or purpose is named by id or by name (case-insensitively).

// The API's persona and purpose documents, as the console reads them: one
// client-side definition for both of services/roster's API clients.
type (
	grantRow      = console.Grant
	personaRow    = console.Persona
	dataPolicyRow = console.DataPolicy
	purposeRow    = console.Purpose
)

// parseGrant reads CONNECTION:TYPE[,TYPE…]:ACTION[,ACTION…].
func parseGrant(s string) (grantRow, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || strings.TrimSpace(parts[0]) == "" {
		return grantRow{}, fmt.Errorf("--grant %q: want CONNECTION:TYPE[,TYPE…]:ACTION[,ACTION…] (snowflake-prod:table,view:read)", s)
	}
	split := func(v string) []string {
		var out []string
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return nonNilList(out)
	}
	return grantRow{Connection: strings.TrimSpace(parts[0]), AssetTypes: split(parts[1]), Actions: split(parts[2])}, nil
}

func (c *apiClient) personaTable(ps []personaRow) error {
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tVERSION\tGRANTS\tUI")
	for _, p := range ps {
		grants := make([]string, 0, len(p.Grants))
		for _, g := range p.Grants {
			grants = append(grants, g.Connection+":"+strings.Join(g.AssetTypes, ",")+":"+strings.Join(g.Actions, ","))
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", p.ID, p.Name, p.Version, orNone(grants), orNone(p.UI))
	}
	return w.Flush()
}

func (c *apiClient) purposeTable(ps []purposeRow) error {
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tVERSION\tCLASSIFICATIONS\tMEMBERS\tACTIONS\tDATA POLICY")
	for _, p := range ps {
		policy := "-"
		if p.DataPolicy != nil {
			policy = p.DataPolicy.Action
			if p.DataPolicy.RowFilter != "" {
				policy += " " + p.DataPolicy.RowFilter
			}
			if len(p.DataPolicy.Except) > 0 {
				policy += " except " + strings.Join(p.DataPolicy.Except, ",")
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Version, orNone(p.Classifications), orNone(p.Members), orNone(p.Actions), policy)
	}
	return w.Flush()
}

// cliKey is one Idempotency-Key per invocation, as the admin commands.
func cliKey() map[string]string {
	return map[string]string{"Idempotency-Key": fmt.Sprintf("cli-%d", time.Now().UnixNano())}
}

// layerCommands returns `roster personas` and `roster purposes`.
func layerCommands(stdout io.Writer) []*cobra.Command {
	c := &apiClient{out: stdout}
	var acc string
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc), nil
	}
	// find resolves ref among the collection's items by id, else by name.
	find := func(collection, ref string, out any) (string, error) {
		b, err := base()
		if err != nil {
			return "", err
		}
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		if _, err := c.send("GET", b+"/"+collection, nil, nil, &page); err != nil {
			return "", err
		}
		var byName json.RawMessage
		for _, raw := range page.Data {
			var head struct{ ID, Name string }
			if err := json.Unmarshal(raw, &head); err != nil {
				return "", err
			}
			if head.ID == ref {
				return head.ID, json.Unmarshal(raw, out)
			}
			if byName == nil && strings.EqualFold(strings.TrimSpace(head.Name), strings.TrimSpace(ref)) {
				byName = raw
			}
		}
		if byName == nil {
			return "", fmt.Errorf("no %s %q in account %s", strings.TrimSuffix(collection, "s"), ref, acc)
		}
		var head struct{ ID string }
		_ = json.Unmarshal(byName, &head)
		return head.ID, json.Unmarshal(byName, out)
	}

	// personas
	personas := &cobra.Command{Use: "personas", Short: "Personas of an atlan account: grants on asset types per connection, UI areas (R-9)"}
	var pspec struct {
		name   string
		grants []string
		ui     []string
	}
	grantsOf := func() ([]grantRow, error) {
		out := []grantRow{}
		for _, s := range pspec.grants {
			g, err := parseGrant(s)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	}
	showPersona := func(p personaRow) error {
		if c.json {
			return c.printJSON(p)
		}
		return c.personaTable([]personaRow{p})
	}
	pls := &cobra.Command{
		Use: "ls", Short: "List the personas", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var page struct {
				Data []personaRow `json:"data"`
			}
			if _, err := c.send("GET", b+"/personas", nil, nil, &page); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(page)
			}
			return c.personaTable(page.Data)
		},
	}
	pshow := &cobra.Command{
		Use: "show PERSONA", Short: "Show a persona (by id or name)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var p personaRow
			if _, err := find("personas", args[0], &p); err != nil {
				return err
			}
			return showPersona(p)
		},
	}
	pcreate := &cobra.Command{
		Use: "create", Short: "Create a persona", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			grants, err := grantsOf()
			if err != nil {
				return err
			}
			var p personaRow
			body := map[string]any{"name": pspec.name, "grants": grants, "ui": nonNilList(pspec.ui)}
			if _, err := c.send("POST", b+"/personas", body, cliKey(), &p); err != nil {
				return err
			}
			return showPersona(p)
		},
	}
	personaFlags := func(cmd *cobra.Command, verb string) {
		f := cmd.Flags()
		f.StringVar(&pspec.name, "name", "", "persona name (unique in the account, case-insensitively)")
		f.StringArrayVar(&pspec.grants, "grant", nil, "CONNECTION:TYPE[,TYPE…]:ACTION[,ACTION…], e.g. snowflake-prod:table,view:read,update_metadata (repeatable"+verb+")")
		f.StringSliceVar(&pspec.ui, "ui", nil, "UI area: glossary, insights, lineage, reporting (repeatable"+verb+")")
	}
	personaFlags(pcreate, "")
	pedit := &cobra.Command{
		Use: "edit PERSONA", Short: "Change a persona: read it, apply the flags, save it whole", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p personaRow
			id, err := find("personas", args[0], &p)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("name") {
				p.Name = pspec.name
			}
			if cmd.Flags().Changed("grant") {
				if p.Grants, err = grantsOf(); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("ui") {
				p.UI = nonNilList(pspec.ui)
			}
			b, _ := base()
			var saved personaRow
			body := map[string]any{"name": p.Name, "grants": p.Grants, "ui": nonNilList(p.UI)}
			if _, err := c.send("PUT", b+"/personas/"+url.PathEscape(id), body, nil, &saved); err != nil {
				return err
			}
			return showPersona(saved)
		},
	}
	personaFlags(pedit, "; replaces the current ones")
	prm := &cobra.Command{
		Use: "rm PERSONA", Short: "Delete a persona; its holders lose it", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var p personaRow
			id, err := find("personas", args[0], &p)
			if err != nil {
				return err
			}
			b, _ := base()
			if _, err := c.send("DELETE", b+"/personas/"+url.PathEscape(id), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s (%s)\n", id, p.Name)
			return nil
		},
	}
	passign := &cobra.Command{
		Use: "assign TECHNICIAN_ID [PERSONA…]", Short: "Give a technician exactly these personas (none: remove every persona)", Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ids := []string{}
			for _, ref := range args[1:] {
				var p personaRow
				id, err := find("personas", ref, &p)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			b, _ := base()
			var out struct {
				TechnicianID string       `json:"technician_id"`
				Personas     []personaRow `json:"personas"`
			}
			if _, err := c.send("PUT", b+"/technicians/"+url.PathEscape(args[0])+"/personas", map[string]any{"persona_ids": ids}, nil, &out); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(out)
			}
			return c.personaTable(out.Personas)
		},
	}
	personas.AddCommand(pls, pshow, pcreate, pedit, prm, passign)

	// purposes
	purposes := &cobra.Command{Use: "purposes", Short: "Purposes of an atlan account: data policies tied to classifications (R-9)"}
	var uspec struct {
		name, rowFilter                string
		tags, members, actions, except []string
		mask, deny, noPolicy           bool
	}
	showPurpose := func(p purposeRow) error {
		if c.json {
			return c.printJSON(p)
		}
		return c.purposeTable([]purposeRow{p})
	}
	purposeBody := func(p purposeRow) map[string]any {
		body := map[string]any{"name": p.Name, "classifications": nonNilList(p.Classifications),
			"members": nonNilList(p.Members), "actions": nonNilList(p.Actions)}
		if p.DataPolicy != nil {
			body["data_policy"] = map[string]any{"action": p.DataPolicy.Action, "except": nonNilList(p.DataPolicy.Except), "row_filter": p.DataPolicy.RowFilter}
		}
		return body
	}
	// applyPurpose applies the changed flags to p.
	applyPurpose := func(cmd *cobra.Command, p *purposeRow) error {
		ch := cmd.Flags().Changed
		if n := btoi(uspec.mask) + btoi(uspec.deny) + btoi(ch("row-filter")); n > 1 {
			return fmt.Errorf("--mask, --deny and --row-filter exclude each other")
		}
		if ch("name") {
			p.Name = uspec.name
		}
		if ch("tag") {
			p.Classifications = uspec.tags
		}
		if ch("member") {
			p.Members = uspec.members
		}
		if ch("action") {
			p.Actions = uspec.actions
		}
		switch {
		case uspec.noPolicy:
			p.DataPolicy = nil
		case uspec.mask || uspec.deny || ch("row-filter"):
			if p.DataPolicy == nil {
				p.DataPolicy = &dataPolicyRow{}
			}
			p.DataPolicy.Action, p.DataPolicy.RowFilter = "mask", ""
			switch {
			case uspec.deny:
				p.DataPolicy.Action = "deny"
			case ch("row-filter"):
				p.DataPolicy.Action, p.DataPolicy.RowFilter = "filter", uspec.rowFilter
			}
		}
		if ch("except") {
			if p.DataPolicy == nil {
				return fmt.Errorf("--except needs a data policy: --mask or --deny")
			}
			p.DataPolicy.Except = uspec.except
		}
		return nil
	}
	purposeFlags := func(cmd *cobra.Command) {
		f := cmd.Flags()
		f.StringVar(&uspec.name, "name", "", "purpose name (unique in the account, case-insensitively)")
		f.StringSliceVar(&uspec.tags, "tag", nil, "classification the purpose covers, e.g. PII (repeatable)")
		f.StringSliceVar(&uspec.members, "member", nil, "technician id the purpose grants its actions to, exempt from its data policy (repeatable)")
		f.StringSliceVar(&uspec.actions, "action", nil, "action granted to the members on assets with the classifications (repeatable)")
		f.BoolVar(&uspec.mask, "mask", false, "data policy: mask the data for everyone but the members and exceptions")
		f.BoolVar(&uspec.deny, "deny", false, "data policy: deny the data to everyone but the members and exceptions")
		f.StringVar(&uspec.rowFilter, "row-filter", "", "data policy: show everyone but the members and exceptions only the rows where this holds (region = 'EU')")
		f.StringSliceVar(&uspec.except, "except", nil, "technician id the data policy spares (repeatable)")
	}
	uls := &cobra.Command{
		Use: "ls", Short: "List the purposes", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var page struct {
				Data []purposeRow `json:"data"`
			}
			if _, err := c.send("GET", b+"/purposes", nil, nil, &page); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(page)
			}
			return c.purposeTable(page.Data)
		},
	}
	ushow := &cobra.Command{
		Use: "show PURPOSE", Short: "Show a purpose (by id or name)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var p purposeRow
			if _, err := find("purposes", args[0], &p); err != nil {
				return err
			}
			return showPurpose(p)
		},
	}
	ucreate := &cobra.Command{
		Use: "create", Short: "Create a purpose", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var p purposeRow
			if err := applyPurpose(cmd, &p); err != nil {
				return err
			}
			var saved purposeRow
			if _, err := c.send("POST", b+"/purposes", purposeBody(p), cliKey(), &saved); err != nil {
				return err
			}
			return showPurpose(saved)
		},
	}
	purposeFlags(ucreate)
	uedit := &cobra.Command{
		Use: "edit PURPOSE", Short: "Change a purpose: read it, apply the flags (each replaces its list), save it whole", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p purposeRow
			id, err := find("purposes", args[0], &p)
			if err != nil {
				return err
			}
			if err := applyPurpose(cmd, &p); err != nil {
				return err
			}
			b, _ := base()
			var saved purposeRow
			if _, err := c.send("PUT", b+"/purposes/"+url.PathEscape(id), purposeBody(p), nil, &saved); err != nil {
				return err
			}
			return showPurpose(saved)
		},
	}
	purposeFlags(uedit)
	uedit.Flags().BoolVar(&uspec.noPolicy, "no-data-policy", false, "drop the data policy")
	urm := &cobra.Command{
		Use: "rm PURPOSE", Short: "Delete a purpose", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var p purposeRow
			id, err := find("purposes", args[0], &p)
			if err != nil {
				return err
			}
			b, _ := base()
			if _, err := c.send("DELETE", b+"/purposes/"+url.PathEscape(id), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s (%s)\n", id, p.Name)
			return nil
		},
	}
	purposes.AddCommand(uls, ushow, ucreate, uedit, urm)

	for _, cmd := range []*cobra.Command{personas, purposes} {
		c.bind(cmd)
		cmd.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…)")
		cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	}
	return []*cobra.Command{personas, purposes}
}

// assetCheckCommand is `roster access asset`: the layered check of an
// action on an asset. It exits 1 when denied; masked is allowed.
func assetCheckCommand(c *apiClient, base func() (string, error), stdout io.Writer) *cobra.Command {
	var connection, typ string
	var tags []string
	cmd := &cobra.Command{
		Use:   "asset TECHNICIAN_ID ACTION",
		Short: "May the technician do ACTION on an asset (atlan: base role, persona, purpose)? Exits 1 when denied",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			body := map[string]any{"technician_id": args[0], "action": args[1],
				"asset": map[string]any{"connection": connection, "type": typ, "classifications": nonNilList(tags)}}
			var raw json.RawMessage
			if _, err := c.send("POST", b+"/access/check", body, nil, &raw); err != nil {
				return err
			}
			var v struct {
				Allowed        bool
				Effect, Layer  string
				Source, Reason string
				RowFilters     []string `json:"row_filters"`
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			if c.json {
				if err := c.printJSON(raw); err != nil {
					return err
				}
			} else {
				by := v.Layer
				if v.Source != "" {
					by += " " + v.Source
				}
				fmt.Fprintf(stdout, "%s (by %s)\n  %s\n", v.Effect, by, v.Reason)
				for _, f := range v.RowFilters {
					fmt.Fprintf(stdout, "  rows where %s\n", f)
				}
			}
			if !v.Allowed {
				return errAccessDenied
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&connection, "connection", "", "the asset's connection (snowflake-prod)")
	cmd.Flags().StringVar(&typ, "type", "", "the asset's type (table, view, …)")
	cmd.Flags().StringSliceVar(&tags, "tag", nil, "a classification of the asset, e.g. PII (repeatable)")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// printLayeredAccess prints a layered account's effective access (R-9:
// base role, personas, purposes); false when raw is the permission
// model's answer.
func printLayeredAccess(stdout io.Writer, raw json.RawMessage) (bool, error) {
	var e struct {
		TechnicianID string `json:"technician_id"`
		Status       string `json:"status"`
		Denied       bool   `json:"denied"`
		BaseRole     *struct {
			Name         string   `json:"name"`
			Actions      []string `json:"actions"`
			LayerCeiling []string `json:"layer_ceiling"`
		} `json:"base_role"`
		Personas []personaRow `json:"personas"`
		Purposes []struct {
			Name            string   `json:"name"`
			Classifications []string `json:"classifications"`
			Member          bool     `json:"member"`
			Actions         []string `json:"actions"`
			DataPolicy      *string  `json:"data_policy"`
		} `json:"purposes"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.BaseRole == nil {
		return false, err
	}
	fmt.Fprintf(stdout, "technician %s (%s)", e.TechnicianID, e.Status)
	if e.Denied {
		fmt.Fprint(stdout, ": every action denied until active")
	}
	fmt.Fprintln(stdout)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "LAYER\tNAME\tGRANTS\tDATA POLICY")
	grants := orNone(e.BaseRole.Actions) + " (every asset)"
	if len(e.BaseRole.LayerCeiling) > 0 {
		grants += "; from personas and purposes at most " + strings.Join(e.BaseRole.LayerCeiling, ",")
	}
	fmt.Fprintf(w, "base_role\t%s\t%s\t-\n", e.BaseRole.Name, grants)
	for _, p := range e.Personas {
		for _, g := range p.Grants {
			fmt.Fprintf(w, "persona\t%s\t%s on %s of %s\t-\n", p.Name, strings.Join(g.Actions, ","), strings.Join(g.AssetTypes, ","), g.Connection)
		}
	}
	for _, p := range e.Purposes {
		policy := "-"
		if p.DataPolicy != nil {
			policy = *p.DataPolicy
		}
		fmt.Fprintf(w, "purpose\t%s\t%s on %s\t%s\n", p.Name, orNone(p.Actions), strings.Join(p.Classifications, ","), policy)
	}
	return true, w.Flush()
}
