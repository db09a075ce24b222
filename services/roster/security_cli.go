package roster

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Login security over the HTTP API (issue 7; L-2, L-4):
//
//	roster security unlock TECH_ID          lift a technician's lockout
//	roster security policy [--set k=v …]    show or change the security policy
//	roster security sessions TECH_ID        a technician's live sessions
//	roster security revoke TECH_ID [SES_ID] end one session, or all of them
//
// with --server, --token, --account and --json (ROSTER_SERVER,
// ROSTER_TOKEN, ROSTER_ACCOUNT).
func securityCommands(stdout io.Writer) []*cobra.Command {
	c := &apiClient{out: stdout}
	var acc string
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc), nil
	}
	sec := &cobra.Command{Use: "security", Short: "Lockouts, the security policy and sessions of an account"}
	c.bind(sec)
	sec.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…) (env ROSTER_ACCOUNT)")
	// Flags win; ROSTER_SERVER, ROSTER_TOKEN, ROSTER_ACCOUNT fill the rest.
	sec.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }

	unlock := &cobra.Command{
		Use: "unlock TECH_ID", Short: "Lift a technician's lockout (L-2)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var u struct {
				TechnicianID string `json:"technician_id"`
				WasLocked    bool   `json:"was_locked"`
			}
			if err := c.call("POST", b+"/technicians/"+url.PathEscape(args[0])+"/unlock", nil, &u); err != nil || c.json {
				return err
			}
			if u.WasLocked {
				fmt.Fprintf(stdout, "%s unlocked\n", u.TechnicianID)
			} else {
				fmt.Fprintf(stdout, "%s was not locked; failure counts restarted\n", u.TechnicianID)
			}
			return nil
		},
	}

	var sets []string
	policy := &cobra.Command{
		Use: "policy", Short: "Show the security policy, or change fields with --set name=value", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var p map[string]any
			if len(sets) == 0 {
				err = c.call("GET", b+"/security-policy", nil, &p)
			} else {
				body := map[string]any{}
				for _, s := range sets {
					k, v, ok := strings.Cut(s, "=")
					if !ok {
						return fmt.Errorf("--set %q: want name=value", s)
					}
					if n, err := strconv.Atoi(v); err == nil {
						body[k] = n
					} else {
						body[k] = v
					}
				}
				err = c.call("PUT", b+"/security-policy", body, &p)
			}
			if err != nil || c.json {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			for _, k := range []string{"lockout_threshold", "lockout_base_seconds", "lockout_max_seconds", "lockout_admin_after",
				"require_second_factor", "max_sessions", "session_overflow", "session_idle_minutes", "session_absolute_hours"} {
				fmt.Fprintf(w, "%s\t%v\n", k, p[k])
			}
			return w.Flush()
		},
	}
	policy.Flags().StringArrayVar(&sets, "set", nil, "name=value of a field to change (repeatable)")

	sessions := &cobra.Command{
		Use: "sessions TECH_ID", Short: "A technician's live sessions (L-4)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			var page struct {
				Data []struct {
					ID            string `json:"id"`
					DeviceLabel   string `json:"device_label"`
					SourceAddress string `json:"source_address"`
					CreatedAt     string `json:"created_at"`
					LastUsedAt    string `json:"last_used_at"`
				} `json:"data"`
			}
			if err := c.call("GET", b+"/technicians/"+url.PathEscape(args[0])+"/sessions", nil, &page); err != nil || c.json {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tDEVICE\tADDRESS\tCREATED\tLAST USED")
			for _, s := range page.Data {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.DeviceLabel, s.SourceAddress, s.CreatedAt, s.LastUsedAt)
			}
			return w.Flush()
		},
	}

	revoke := &cobra.Command{
		Use: "revoke TECH_ID [SESSION_ID]", Short: "End one session of a technician, or all of them (L-4)", Args: cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			path := b + "/technicians/" + url.PathEscape(args[0]) + "/sessions"
			if len(args) == 2 {
				path += "/" + url.PathEscape(args[1])
			}
			if err := c.call("DELETE", path, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "revoked")
			return nil
		},
	}
	sec.AddCommand(unlock, policy, sessions, revoke)
	return []*cobra.Command{sec}
}
