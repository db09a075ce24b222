package roster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// CSV import over the HTTP API (api.md "CLI": roster import FILE; H-3):
//
//	roster import FILE --kind technicians|end_users [--confirm-seat-purchase] [--no-welcome-mail]
//
// uploads the file, shows a live progress bar (rows/s, ETA) until the
// import is done, then the summary and the refused rows; with --server,
// --token, --account (ROSTER_SERVER, ROSTER_TOKEN, ROSTER_ACCOUNT).

type importView struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Rows   struct {
		Total int `json:"total"`
		Done  int `json:"done"`
	} `json:"rows"`
	Created  int `json:"created"`
	Updated  int `json:"updated"`
	Skipped  int `json:"skipped"`
	Refused  int `json:"refused"`
	Refusals []struct {
		Row    int    `json:"row"`
		Reason string `json:"reason"`
	} `json:"refusals"`
}

// progressBar draws one line: bar, rows, rate and ETA.
func progressBar(done, total int, elapsed time.Duration) string {
	const width = 30
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "--"
	if rate > 0 && done < total {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	} else if done >= total {
		eta = "0s"
	}
	return fmt.Sprintf("[%s%s] %d/%d rows  %.0f rows/s  ETA %s",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, rate, eta)
}

func importCommand(stdout io.Writer) *cobra.Command {
	c := &apiClient{out: stdout}
	var acc, kind string
	var confirm, noMail bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import technicians or end users from a CSV file, with a live progress bar (H-3)",
		Args:  cobra.ExactArgs(1),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd)
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if acc == "" {
				return fmt.Errorf("--account is required")
			}
			if kind != "technicians" && kind != "end_users" {
				return fmt.Errorf("--kind must be technicians or end_users")
			}
			if err := c.resolve(); err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			q := url.Values{"kind": {kind}, "confirm_seat_purchase": {fmt.Sprint(confirm)}, "send_welcome_mail": {fmt.Sprint(!noMail)}}
			base := "/v1/accounts/" + url.PathEscape(acc) + "/imports"
			req, err := http.NewRequest("POST", strings.TrimSuffix(c.server, "/")+base+"?"+q.Encode(), strings.NewReader(string(data)))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Content-Type", "text/csv")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("cli-import-%d", time.Now().UnixNano()))
			res, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
			if err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				var p struct{ Title, Detail string }
				_ = json.Unmarshal(raw, &p)
				return fmt.Errorf("%d %s: %s", res.StatusCode, p.Title, p.Detail)
			}
			var imp importView
			if err := json.Unmarshal(raw, &imp); err != nil {
				return err
			}
			quiet := *c
			quiet.json = false
			start := time.Now()
			for imp.Status != "done" {
				if !c.json {
					fmt.Fprintf(stdout, "\r%s", progressBar(imp.Rows.Done, imp.Rows.Total, time.Since(start)))
				}
				time.Sleep(every)
				if err := quiet.call("GET", base+"/"+url.PathEscape(imp.ID), nil, &imp); err != nil {
					return err
				}
			}
			if c.json {
				return c.call("GET", base+"/"+url.PathEscape(imp.ID), nil, nil)
			}
			fmt.Fprintf(stdout, "\r%s\n", progressBar(imp.Rows.Done, imp.Rows.Total, time.Since(start)))
			fmt.Fprintf(stdout, "import %s done: %d created, %d updated, %d skipped, %d refused\n",
				imp.ID, imp.Created, imp.Updated, imp.Skipped, imp.Refused)
			for _, r := range imp.Refusals {
				fmt.Fprintf(stdout, "  row %d refused: %s\n", r.Row, r.Reason)
			}
			if imp.Refused > len(imp.Refusals) {
				fmt.Fprintf(stdout, "  … every row: GET %s/%s/rows?outcome=refused\n", base, imp.ID)
			}
			return nil
		},
	}
	c.bind(cmd)
	cmd.Flags().StringVar(&acc, "account", "", "account id (acc_…) (env ROSTER_ACCOUNT)")
	cmd.Flags().StringVar(&kind, "kind", "", "what the rows are: technicians or end_users")
	cmd.Flags().BoolVar(&confirm, "confirm-seat-purchase", false, "let rows buy seats when every seat is taken (S-3)")
	cmd.Flags().BoolVar(&noMail, "no-welcome-mail", false, "create technicians without sending the welcome mail (roster)")
	cmd.Flags().DurationVar(&every, "interval", 250*time.Millisecond, "how often the progress is refreshed")
	return cmd
}
