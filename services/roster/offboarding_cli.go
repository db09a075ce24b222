package roster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Offboarding over the HTTP API (O-1…O-4):
//
//	roster offboarding show ID [--all]    progress and what is outstanding
//	roster offboarding preview TECH [--successor ID]
//	                                      the dry run of a disable (O-3)
//
// with --server, --token, --account and --json (ROSTER_SERVER,
// ROSTER_TOKEN, ROSTER_ACCOUNT).

type offboardingView struct {
	ID              string                    `json:"id"`
	TechnicianID    string                    `json:"technician_id"`
	Policy          string                    `json:"policy"`
	SuccessorID     string                    `json:"successor_id"`
	SuccessorSource string                    `json:"successor_source"`
	Status          string                    `json:"status"`
	Outstanding     int                       `json:"outstanding"`
	Summary         map[string]map[string]int `json:"summary"`
	Actions         []struct {
		Seq         int64   `json:"seq"`
		Kind        string  `json:"kind"`
		ID          string  `json:"id"`
		Action      string  `json:"action"`
		To          string  `json:"to"`
		Instruction string  `json:"instruction"`
		AckedAt     *string `json:"acked_at"`
	} `json:"actions"`
	NextCursor *string `json:"next_cursor"`
}

func printSummary(w io.Writer, s map[string]map[string]int) {
	kinds := make([]string, 0, len(s))
	for k := range s {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		actions := make([]string, 0, len(s[k]))
		for a := range s[k] {
			actions = append(actions, a)
		}
		sort.Strings(actions)
		for _, a := range actions {
			fmt.Fprintf(w, "  %s\t%s\t%d\n", k, a, s[k][a])
		}
	}
}

// offboardingCommand is `roster offboarding` with show and preview.
func offboardingCommand(stdout io.Writer) *cobra.Command {
	c := &apiClient{out: stdout}
	var acc string
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc), nil
	}
	root := &cobra.Command{Use: "offboarding", Short: "Offboardings: what a disable did to the leaver's work, and what owning systems have not acknowledged yet (O-1…O-4)"}

	var all bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "An offboarding's progress and its outstanding instructions (--all: every action)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			pages := *c
			pages.json = false
			var v offboardingView
			var raw []json.RawMessage
			cursor := ""
			for {
				q := url.Values{"limit": {"500"}}
				if !all {
					q.Set("outstanding", "true")
				}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var page offboardingView
				var rawPage struct {
					Actions []json.RawMessage `json:"actions"`
				}
				var body json.RawMessage
				if err := pages.call("GET", b+"/offboardings/"+url.PathEscape(args[0])+"?"+q.Encode(), nil, &body); err != nil {
					return err
				}
				if err := json.Unmarshal(body, &page); err != nil {
					return err
				}
				if err := json.Unmarshal(body, &rawPage); err != nil {
					return err
				}
				if cursor == "" {
					v = page
					v.Actions = nil
				}
				v.Actions = append(v.Actions, page.Actions...)
				raw = append(raw, rawPage.Actions...)
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			if c.json {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"id": v.ID, "technician_id": v.TechnicianID, "policy": v.Policy, "status": v.Status,
					"successor_id": v.SuccessorID, "successor_source": v.SuccessorSource, "outstanding": v.Outstanding,
					"summary": v.Summary, "actions": raw})
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "offboarding\t%s of %s (%s rules)\n", v.ID, v.TechnicianID, v.Policy)
			fmt.Fprintf(w, "status\t%s, %d instruction(s) not acknowledged\n", v.Status, v.Outstanding)
			succ := v.SuccessorID
			if succ == "" {
				succ = "none: items unassigned"
			}
			fmt.Fprintf(w, "successor\t%s (%s)\n", succ, v.SuccessorSource)
			fmt.Fprintln(w, "by kind and action:")
			printSummary(w, v.Summary)
			if err := w.Flush(); err != nil {
				return err
			}
			w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tID\tACTION\tTO\tINSTRUCTION\tACKNOWLEDGED")
			for _, a := range v.Actions {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Kind, a.ID, a.Action, dash(a.To), dash(a.Instruction), orDash(a.AckedAt))
			}
			return w.Flush()
		},
	}
	show.Flags().BoolVar(&all, "all", false, "list every action, not only the outstanding ones")

	var successor string
	preview := &cobra.Command{
		Use:   "preview TECHNICIAN",
		Short: "What disabling TECHNICIAN would do (the dry run of O-3); changes nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var body any
			if successor != "" {
				body = map[string]any{"successor_id": successor}
			}
			var p struct {
				Offboarding struct {
					Policy          string                    `json:"policy"`
					SuccessorID     string                    `json:"successor_id"`
					SuccessorSource string                    `json:"successor_source"`
					Summary         map[string]map[string]int `json:"summary"`
					Total           int                       `json:"actions_total"`
					Outstanding     int                       `json:"outstanding"`
					Unassigned      int                       `json:"unassigned"`
				} `json:"offboarding"`
				AlreadyDisabled bool `json:"already_disabled"`
				SeatFreed       bool `json:"seat_freed"`
				SessionsRevoked int  `json:"sessions_revoked"`
				TokensRevoked   int  `json:"tokens_revoked"`
				Cost            *struct {
					Note string `json:"note"`
				} `json:"cost"`
			}
			if err := c.call("POST", b+"/technicians/"+url.PathEscape(args[0])+"/disable?dry_run=true", body, &p); err != nil || c.json {
				return err
			}
			if p.AlreadyDisabled {
				fmt.Fprintln(stdout, "already disabled: a disable changes nothing")
				return nil
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			o := p.Offboarding
			fmt.Fprintf(w, "rules\t%s\n", o.Policy)
			fmt.Fprintf(w, "successor\t%s (%s)\n", dash(o.SuccessorID), o.SuccessorSource)
			fmt.Fprintf(w, "items\t%d, %d instruction(s) to owning systems, %d left unassigned\n", o.Total, o.Outstanding, o.Unassigned)
			fmt.Fprintf(w, "seat freed\t%v\n", p.SeatFreed)
			fmt.Fprintf(w, "revoked\t%d session(s), %d token(s)\n", p.SessionsRevoked, p.TokensRevoked)
			if p.Cost != nil {
				fmt.Fprintf(w, "cost\t%s\n", p.Cost.Note)
			}
			fmt.Fprintln(w, "by kind and action:")
			printSummary(w, o.Summary)
			return w.Flush()
		},
	}
	preview.Flags().StringVar(&successor, "successor", "", "the technician who takes the leaver's items (default: the HRIS manager)")
	root.AddCommand(show, preview)

	c.bind(root)
	root.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…) (env ROSTER_ACCOUNT)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	return root
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
