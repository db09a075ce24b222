package roster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// apiClient is the admin commands' HTTP client (api.md, "CLI"): every
// command is a call of the public HTTP API.
type apiClient struct {
	server, token string
	json          bool
	out           io.Writer
}

func (c *apiClient) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.server, "server", "http://127.0.0.1:8080", "Roster's HTTP address (env ROSTER_SERVER)")
	cmd.PersistentFlags().StringVar(&c.token, "token", "", "bearer token: the operator token or an account API token (env ROSTER_TOKEN)")
	cmd.PersistentFlags().BoolVar(&c.json, "json", false, "print JSON instead of a table")
}

func (c *apiClient) resolve() error {
	if c.token == "" {
		return fmt.Errorf("no token: pass --token or set ROSTER_TOKEN (the operator token is in <data>/operator.token)")
	}
	return nil
}

// call sends a request and decodes a JSON answer; a problem answer becomes
// an error that names it.
func (c *apiClient) call(method, path string, body any, out any) error {
	if err := c.resolve(); err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(c.server, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if method == http.MethodPost {
		// One key per CLI invocation: a retried request is not applied twice.
		req.Header.Set("Idempotency-Key", fmt.Sprintf("cli-%d", time.Now().UnixNano()))
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		var p struct {
			Title, Detail string
			Errors        []struct{ Field, Detail string }
			Quote         map[string]any
		}
		_ = json.Unmarshal(raw, &p)
		msg := fmt.Sprintf("%d %s", res.StatusCode, p.Title)
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		for _, e := range p.Errors {
			msg += fmt.Sprintf("\n  %s: %s", e.Field, e.Detail)
		}
		if p.Quote != nil {
			msg += fmt.Sprintf("\n  quote: %.2f %s for %v of %v days (rerun with --confirm-seat-purchase)",
				p.Quote["amount"].(float64)/100, strings.ToUpper(fmt.Sprint(p.Quote["currency"])), p.Quote["days_left"], p.Quote["cycle_days"])
		}
		return fmt.Errorf("%s", msg)
	}
	if c.json {
		var v any
		if len(raw) > 0 && json.Unmarshal(raw, &v) == nil {
			enc := json.NewEncoder(c.out)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		return nil
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type techRow struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	FirstName     string   `json:"first_name"`
	LastName      string   `json:"last_name"`
	Status        string   `json:"status"`
	Role          *string  `json:"role"`
	RequestedRole *string  `json:"requested_role"`
	SiteIDs       []string `json:"site_ids"`
	LastLoginAt   *string  `json:"last_login_at"`
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func (c *apiClient) technicianTable(ts []techRow) {
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tEMAIL\tNAME\tSTATUS\tROLE\tREQUESTED\tLAST LOGIN")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\n", t.ID, t.Email, t.FirstName, t.LastName, t.Status,
			orDash(t.Role), orDash(t.RequestedRole), orDash(t.LastLoginAt))
	}
	w.Flush()
}

func adminCommands(stdout io.Writer) []*cobra.Command {
	c := &apiClient{out: stdout}

	accounts := &cobra.Command{Use: "accounts", Short: "Accounts (operator token)"}
	var na struct {
		name, profile, plan, period, anchor, email, first, last string
		seats                                                   int
		price                                                   int64
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an account with its first admin; prints the account's API token once",
		RunE: func(*cobra.Command, []string) error {
			body := map[string]any{"name": na.name, "profile": na.profile, "plan": na.plan, "billing_period": na.period,
				"seats": na.seats, "admin": map[string]string{"email": na.email, "first_name": na.first, "last_name": na.last}}
			if na.anchor != "" {
				body["billing_anchor"] = na.anchor
			}
			if na.price > 0 {
				body["price_per_seat"] = na.price
			}
			var res struct {
				Account  struct{ ID, Name, Profile, Plan string }
				Admin    techRow
				APIToken string `json:"api_token"`
			}
			if err := c.call("POST", "/v1/accounts", body, &res); err != nil || c.json {
				return err
			}
			fmt.Fprintf(stdout, "account %s (%s, profile %s, plan %s)\nfirst admin %s <%s> (%s)\nAPI token (shown once): %s\n",
				res.Account.ID, res.Account.Name, res.Account.Profile, res.Account.Plan, res.Admin.ID, res.Admin.Email, res.Admin.Status, res.APIToken)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&na.name, "name", "", "account name")
	f.StringVar(&na.profile, "profile", "roster", "profile: atera-it, atera-msp, roster")
	f.StringVar(&na.plan, "plan", "pro", "plan id of the profile")
	f.StringVar(&na.period, "billing-period", "monthly", "monthly or annual")
	f.IntVar(&na.seats, "seats", 1, "technician seats")
	f.Int64Var(&na.price, "price-per-seat", 0, "custom plans: price per seat per month in cents")
	f.StringVar(&na.anchor, "billing-anchor", "", "YYYY-MM-DD the cycles count from (default today)")
	f.StringVar(&na.email, "admin-email", "", "first admin's email")
	f.StringVar(&na.first, "admin-first-name", "", "first admin's first name")
	f.StringVar(&na.last, "admin-last-name", "", "first admin's last name")
	accounts.AddCommand(create)

	var acc string
	tech := &cobra.Command{Use: "tech", Short: "Technicians of an account"}
	tech.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…)")
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc), nil
	}
	var nt struct {
		email, first, last, phone, role string
		sites                           []string
		confirm                         bool
	}
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a technician (asks before buying a seat: --confirm-seat-purchase)",
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var t techRow
			body := map[string]any{"email": nt.email, "first_name": nt.first, "last_name": nt.last, "phone": nt.phone,
				"role": nt.role, "site_ids": nt.sites, "confirm_seat_purchase": nt.confirm}
			if err := c.call("POST", b+"/technicians", body, &t); err != nil || c.json {
				return err
			}
			c.technicianTable([]techRow{t})
			return nil
		},
	}
	af := add.Flags()
	af.StringVar(&nt.email, "email", "", "email (the username)")
	af.StringVar(&nt.first, "first-name", "", "first name")
	af.StringVar(&nt.last, "last-name", "", "last name")
	af.StringVar(&nt.phone, "phone", "", "phone")
	af.StringVar(&nt.role, "role", "", "requested role (name or id)")
	af.StringSliceVar(&nt.sites, "site", nil, "site id (repeatable)")
	af.BoolVar(&nt.confirm, "confirm-seat-purchase", false, "buy a seat at the prorated price when none is free")

	var lf struct {
		status, role, q string
		hideDisabled    bool
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List technicians",
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"status": lf.status, "role": lf.role, "q": lf.q} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if lf.hideDisabled {
				q.Set("hide_disabled", "true")
			}
			var all []techRow
			cursor := ""
			for {
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var page struct {
					Data       []techRow
					NextCursor *string `json:"next_cursor"`
				}
				if err := c.call("GET", b+"/technicians?"+q.Encode(), nil, &page); err != nil || c.json {
					return err
				}
				all = append(all, page.Data...)
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			c.technicianTable(all)
			return nil
		},
	}
	ls.Flags().StringVar(&lf.status, "status", "", "invited, active or disabled")
	ls.Flags().StringVar(&lf.role, "role", "", "role name")
	ls.Flags().StringVar(&lf.q, "q", "", "text in the name or email")
	ls.Flags().BoolVar(&lf.hideDisabled, "hide-disabled", false, "hide disabled technicians")

	one := func(use, short, method, suffix string, body func() any) *cobra.Command {
		return &cobra.Command{
			Use: use + " TECHNICIAN_ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				b, err := base()
				if err != nil {
					return err
				}
				var t techRow
				var bd any
				if body != nil {
					bd = body()
				}
				if err := c.call(method, b+"/technicians/"+url.PathEscape(args[0])+suffix, bd, &t); err != nil || c.json {
					return err
				}
				if t.ID == "" {
					fmt.Fprintln(stdout, "done")
					return nil
				}
				c.technicianTable([]techRow{t})
				return nil
			},
		}
	}
	var confirmEnable bool
	enable := one("enable", "Re-enable a technician (needs a free seat)", "POST", "/enable", func() any {
		return map[string]any{"confirm_seat_purchase": confirmEnable}
	})
	enable.Flags().BoolVar(&confirmEnable, "confirm-seat-purchase", false, "buy a seat at the prorated price when none is free")
	tech.AddCommand(add, ls,
		one("show", "Show a technician", "GET", "", nil),
		one("disable", "Disable a technician (frees the seat)", "POST", "/disable", nil),
		enable,
		one("invite", "Resend the invitation mail", "POST", "/invitation", nil),
	)

	endusers := &cobra.Command{Use: "endusers", Short: "End users of an account"}
	endusers.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…)")
	var ne struct{ email, name, site string }
	euAdd := &cobra.Command{
		Use: "add", Short: "Add an end user to a site",
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var u map[string]any
			if err := c.call("POST", b+"/end-users", map[string]any{"email": ne.email, "name": ne.name, "site_id": ne.site}, &u); err != nil || c.json {
				return err
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", u["id"], u["email"], u["site_id"], u["status"])
			return nil
		},
	}
	euAdd.Flags().StringVar(&ne.email, "email", "", "email")
	euAdd.Flags().StringVar(&ne.name, "name", "", "name")
	euAdd.Flags().StringVar(&ne.site, "site", "", "site id")
	euLs := &cobra.Command{
		Use: "ls", Short: "List end users",
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var page struct{ Data []map[string]any }
			if err := c.call("GET", b+"/end-users?limit=500", nil, &page); err != nil || c.json {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tEMAIL\tNAME\tSITE\tSTATUS")
			for _, u := range page.Data {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u["id"], u["email"], u["name"], u["site_id"], u["status"])
			}
			return w.Flush()
		},
	}
	state := func(verb string) *cobra.Command {
		return &cobra.Command{
			Use: verb + " END_USER_ID", Short: strings.ToUpper(verb[:1]) + verb[1:] + " an end user", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				b, err := base()
				if err != nil {
					return err
				}
				var u map[string]any
				if err := c.call("POST", b+"/end-users/"+url.PathEscape(args[0])+"/"+verb, nil, &u); err != nil || c.json {
					return err
				}
				fmt.Fprintf(stdout, "%s\t%s\n", u["id"], u["status"])
				return nil
			},
		}
	}
	endusers.AddCommand(euAdd, euLs, state("deactivate"), state("reactivate"))

	for _, cmd := range []*cobra.Command{accounts, tech, endusers} {
		c.bind(cmd)
		// Flags win; ROSTER_SERVER, ROSTER_TOKEN fill the rest.
		cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	}
	return []*cobra.Command{accounts, tech, endusers}
}
