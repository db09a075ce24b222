package roster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Seat billing over the HTTP API (api.md "CLI"; S-3, S-5, S-7, S-9):
//
//	roster seats                        usage, cycle, pending reductions, add-ons
//	roster seats quote N                the price of N more seats now
//	roster seats unused [--inactive-days N]
//	roster charges                      the charges ledger, oldest first
//
// with --server, --token, --account and --json (ROSTER_SERVER,
// ROSTER_TOKEN, ROSTER_ACCOUNT).

// money is api.md's money: minor units and a currency.
type money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// String shows minor units as units: {18900 usd} is "189.00 USD".
func (m money) String() string {
	sign, n := "", m.Amount
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, n/100, n%100, strings.ToUpper(m.Currency))
}

type subscriptionView struct {
	Plan          string `json:"plan"`
	BillingPeriod string `json:"billing_period"`
	UnitPrice     money  `json:"unit_price"`
	Seats         struct {
		Total, Used, Available int
	} `json:"seats"`
	CycleStart        string `json:"cycle_start"`
	CycleEnd          string `json:"cycle_end"`
	PendingReductions int    `json:"pending_reductions"`
	AddOns            []struct {
		ID, Name string
		Price    money
		Quantity int
	} `json:"add_ons"`
}

type quoteView struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	DaysLeft  int    `json:"days_left"`
	CycleDays int    `json:"cycle_days"`
	CycleEnd  string `json:"cycle_end"`
}

type chargeView struct {
	ID           string  `json:"id"`
	Amount       int64   `json:"amount"`
	Currency     string  `json:"currency"`
	Reason       string  `json:"reason"`
	TechnicianID *string `json:"technician_id"`
	AddOnID      *string `json:"add_on_id"`
	CreatedAt    string  `json:"created_at"`
}

type unusedView struct {
	InactiveDays int    `json:"inactive_days"`
	Cutoff       string `json:"cutoff"`
	Data         []struct {
		TechnicianID string  `json:"technician_id"`
		Status       string  `json:"status"`
		Reason       string  `json:"reason"`
		SeatSince    string  `json:"seat_since"`
		LastLoginAt  *string `json:"last_login_at"`
		MonthlyCost  money   `json:"monthly_cost"`
	} `json:"data"`
	TotalMonthlyCost money `json:"total_monthly_cost"`
}

// seatsCommands are `roster seats` (with quote and unused) and
// `roster charges`.
func seatsCommands(stdout io.Writer) []*cobra.Command {
	c := &apiClient{out: stdout}
	var acc string
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc), nil
	}

	seats := &cobra.Command{
		Use:   "seats",
		Short: "Seat usage, the current cycle, pending reductions and add-ons of an account",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var s subscriptionView
			if err := c.call("GET", b+"/subscription", nil, &s); err != nil || c.json {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "plan\t%s (%s)\n", s.Plan, s.BillingPeriod)
			fmt.Fprintf(w, "unit price\t%s per seat per month\n", s.UnitPrice)
			fmt.Fprintf(w, "seats\t%d total, %d used, %d available\n", s.Seats.Total, s.Seats.Used, s.Seats.Available)
			fmt.Fprintf(w, "cycle\t%s … %s\n", s.CycleStart, s.CycleEnd)
			fmt.Fprintf(w, "pending reductions\t%d (seats leaving at the end of the cycle)\n", s.PendingReductions)
			if len(s.AddOns) == 0 {
				fmt.Fprintf(w, "add-ons\tnone\n")
			}
			for i, a := range s.AddOns {
				label := ""
				if i == 0 {
					label = "add-ons"
				}
				fmt.Fprintf(w, "%s\t%s (%s): %s × %d per month\n", label, a.Name, a.ID, a.Price, a.Quantity)
			}
			return w.Flush()
		},
	}

	quote := &cobra.Command{
		Use:   "quote N",
		Short: "The prorated price of adding N seats now (S-3); buys nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return fmt.Errorf("N must be a whole number of seats, not %q", args[0])
			}
			var q quoteView
			if err := c.call("POST", b+"/subscription/quote", map[string]int{"seats": n}, &q); err != nil || c.json {
				return err
			}
			fmt.Fprintf(stdout, "%d seat(s) now: %s (%d of %d days left; the cycle ends %s)\n",
				n, money{q.Amount, q.Currency}, q.DaysLeft, q.CycleDays, q.CycleEnd)
			return nil
		},
	}

	var inactiveDays int
	unused := &cobra.Command{
		Use:   "unused",
		Short: "Seats of technicians idle for --inactive-days and of invited ones who never logged in, with their monthly cost (S-7)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var u unusedView
			path := b + "/seats/unused?inactive_days=" + strconv.Itoa(inactiveDays)
			if err := c.call("GET", path, nil, &u); err != nil || c.json {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "TECHNICIAN\tSTATUS\tREASON\tLAST LOGIN\tSEAT SINCE\tMONTHLY COST")
			for _, s := range u.Data {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.TechnicianID, s.Status, s.Reason, orDash(s.LastLoginAt), s.SeatSince, s.MonthlyCost)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d unused seat(s) (no login since %s): %s per month\n", len(u.Data), u.Cutoff, u.TotalMonthlyCost)
			return nil
		},
	}
	unused.Flags().IntVar(&inactiveDays, "inactive-days", 30, "an active technician with no login in this many days is idle (1 to 3650)")
	seats.AddCommand(quote, unused)

	charges := &cobra.Command{
		Use:   "charges",
		Short: "The charges ledger of an account, oldest first: purchases, renewals, add-ons",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			// Every page, printed as one list (also with --json).
			pages := *c
			pages.json = false
			var all []json.RawMessage
			cursor := ""
			for {
				q := url.Values{"limit": {"500"}}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var page struct {
					Data       []json.RawMessage `json:"data"`
					NextCursor *string           `json:"next_cursor"`
				}
				if err := pages.call("GET", b+"/charges?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				all = append(all, page.Data...)
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			if c.json {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"data": all})
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tCREATED\tREASON\tAMOUNT\tFOR")
			var total int64
			currency := ""
			for _, raw := range all {
				var ch chargeView
				if err := json.Unmarshal(raw, &ch); err != nil {
					return err
				}
				what := orDash(ch.TechnicianID)
				if ch.AddOnID != nil {
					what = *ch.AddOnID
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ch.ID, ch.CreatedAt, ch.Reason, money{ch.Amount, ch.Currency}, what)
				total, currency = total+ch.Amount, ch.Currency
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(all) > 0 {
				fmt.Fprintf(stdout, "%d charge(s), %s in all\n", len(all), money{total, currency})
			} else {
				fmt.Fprintln(stdout, "no charges")
			}
			return nil
		},
	}

	for _, cmd := range []*cobra.Command{seats, charges} {
		c.bind(cmd)
		cmd.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…) (env ROSTER_ACCOUNT)")
		// Flags win; ROSTER_SERVER, ROSTER_TOKEN, ROSTER_ACCOUNT fill the rest.
		cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	}
	return []*cobra.Command{seats, charges}
}
