package roster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"roster.dev/services/audit"
)

// errChainBroken makes `roster audit verify` exit non-zero when a chain
// does not verify.
var errChainBroken = errors.New("the audit chain does not verify")

// auditRecord is a record as the CLI prints it.
type auditRecord struct {
	Sequence      int64                     `json:"sequence"`
	ID            string                    `json:"id"`
	AccountID     string                    `json:"account_id"`
	Action        string                    `json:"action"`
	Actor         struct{ Type, ID string } `json:"actor"`
	Target        struct{ Type, ID string } `json:"target"`
	Time          string                    `json:"time"`
	SourceAddress string                    `json:"source_address"`
	Data          json.RawMessage           `json:"data"`
}

func (r auditRecord) row() string {
	actor := r.Actor.Type
	if r.Actor.ID != "" {
		actor += ":" + r.Actor.ID
	}
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s:%s\t%s", r.Sequence, r.Time, r.Action, actor, r.Target.Type, r.Target.ID, orDash(&r.SourceAddress))
}

const auditHeader = "SEQ\tTIME\tACTION\tACTOR\tTARGET\tSOURCE"

// open sends a GET whose answer is read as it streams (exports, the tail):
// no client timeout; a problem answer becomes an error naming it.
func (c *apiClient) open(path string) (*http.Response, error) {
	if err := c.resolve(); err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(c.server, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if res.StatusCode >= 300 {
		defer res.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
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
		return nil, errors.New(msg)
	}
	return res, nil
}

// auditFilter is the query flags of ls and export.
type auditFilter struct{ action, actor, target, since, until string }

func (f *auditFilter) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.action, "action", "", "only this action, e.g. technician.created")
	fl.StringVar(&f.actor, "actor", "", "only records by this actor id")
	fl.StringVar(&f.target, "target", "", "only records about this target id")
	fl.StringVar(&f.since, "since", "", "from this time on (RFC 3339, inclusive)")
	fl.StringVar(&f.until, "until", "", "before this time (RFC 3339, exclusive)")
}

func (f auditFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"action": f.action, "actor": f.actor, "target": f.target, "since": f.since, "until": f.until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func auditCommands(stdout io.Writer) []*cobra.Command {
	c := &apiClient{out: stdout}
	var acc string
	base := func() (string, error) {
		if acc == "" {
			return "", fmt.Errorf("--account is required")
		}
		return "/v1/accounts/" + url.PathEscape(acc) + "/audit", nil
	}
	root := &cobra.Command{Use: "audit", Short: "The audit log: list, export, verify, follow (A-1 … A-4)"}

	var lf auditFilter
	var limit int
	var all bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List an account's audit records, oldest first",
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			q := lf.query()
			q.Set("limit", fmt.Sprint(limit))
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			if !c.json {
				fmt.Fprintln(w, auditHeader)
			}
			for {
				var page struct {
					Data       []json.RawMessage `json:"data"`
					NextCursor *string           `json:"next_cursor"`
				}
				if _, err := c.send("GET", b+"?"+q.Encode(), nil, nil, &page); err != nil {
					return err
				}
				for _, d := range page.Data {
					if c.json {
						fmt.Fprintf(stdout, "%s\n", d)
						continue
					}
					var r auditRecord
					if err := json.Unmarshal(d, &r); err != nil {
						return err
					}
					fmt.Fprintln(w, r.row())
				}
				if page.NextCursor == nil || !all {
					if page.NextCursor != nil && !c.json {
						defer fmt.Fprintf(stdout, "(more: --all, or --limit)\n")
					}
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			return w.Flush()
		},
	}
	lf.bind(ls)
	ls.Flags().IntVar(&limit, "limit", 50, "records per page (at most 500)")
	ls.Flags().BoolVar(&all, "all", false, "every page")

	var ef auditFilter
	var format, output string
	export := &cobra.Command{
		Use:   "export",
		Short: "Export an account's audit records as JSON Lines or CSV, streamed; a whole-chain JSON Lines export verifies offline",
		RunE: func(*cobra.Command, []string) error {
			b, err := base()
			if err != nil {
				return err
			}
			if format != "jsonl" && format != "csv" {
				return fmt.Errorf("--format must be jsonl or csv, got %q", format)
			}
			q := ef.query()
			q.Set("format", format)
			res, err := c.open(b + "?" + q.Encode())
			if err != nil {
				return err
			}
			defer res.Body.Close()
			out := stdout
			var f *os.File
			if output != "" && output != "-" {
				// Written beside the target and renamed at the end: an
				// interrupted export leaves no file that looks whole.
				if f, err = os.CreateTemp(dirOf(output), ".roster-export-*"); err != nil {
					return err
				}
				defer os.Remove(f.Name())
				defer f.Close()
				out = f
			}
			n, err := io.Copy(out, res.Body)
			if err != nil {
				return fmt.Errorf("export stopped after %d bytes: %w", n, err)
			}
			if f != nil {
				if err := f.Sync(); err != nil {
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				if err := os.Rename(f.Name(), output); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "wrote %d bytes to %s\n", n, output)
			}
			return nil
		},
	}
	ef.bind(export)
	export.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	export.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")

	var file, keyFile string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify an account's chain on the server, or an exported file offline (--file, --key)",
		Long: "Without --file: asks the server to verify the account's stored chain.\n" +
			"With --file: verifies a JSON Lines export without the server: the chain, and with --key\n" +
			"(GET /v1/audit/keys saved to a file, `roster audit keys`, or a PEM public key) every signed checkpoint.\n" +
			"Exits 1 when the chain does not verify.",
		RunE: func(*cobra.Command, []string) error {
			var v audit.OfflineResult
			if file != "" {
				var keys []byte
				if keyFile != "" {
					var err error
					if keys, err = os.ReadFile(keyFile); err != nil {
						return err
					}
				}
				res, err := verifyFile(file, keys)
				if err != nil {
					return err
				}
				v = res
			} else {
				b, err := base()
				if err != nil {
					return err
				}
				if _, err := c.send("GET", b+"/verify", nil, nil, &v.Verification); err != nil {
					return err
				}
				v.AccountID, v.SignaturesChecked = acc, true
			}
			if c.json {
				if err := c.printJSON(v); err != nil {
					return err
				}
			} else {
				printVerification(stdout, v, file != "")
			}
			if !v.OK {
				return errChainBroken
			}
			return nil
		},
	}
	verify.Flags().StringVar(&file, "file", "", "a JSON Lines export to verify offline")
	verify.Flags().StringVar(&keyFile, "key", "", "the checkpoint public keys (JSON of GET /v1/audit/keys, or PEM)")

	var tailAction string
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Follow new audit records as they are published on the public audit stream (all accounts: operator token)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/v1/audit/stream"
			if acc != "" {
				path = "/v1/accounts/" + url.PathEscape(acc) + "/audit/stream"
			}
			if tailAction != "" {
				path += "?action=" + url.QueryEscape(tailAction)
			}
			res, err := c.open(path)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			go func() { <-cmd.Context().Done(); res.Body.Close() }()
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			if !c.json {
				fmt.Fprintln(w, "ACCOUNT\t"+auditHeader)
				w.Flush()
			}
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
			for sc.Scan() {
				d, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				if c.json {
					fmt.Fprintln(stdout, d)
					continue
				}
				var r auditRecord
				if err := json.Unmarshal([]byte(d), &r); err != nil {
					return err
				}
				fmt.Fprintln(w, r.AccountID+"\t"+r.row())
				w.Flush()
			}
			if cmd.Context().Err() != nil {
				return nil
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("tail: %w", err)
			}
			return errors.New("tail: the server closed the stream")
		},
	}
	tail.Flags().StringVar(&tailAction, "action", "", "only this action")

	keys := &cobra.Command{
		Use:   "keys",
		Short: "Print the public keys of the audit checkpoints (JSON; save it for `audit verify --key`)",
		RunE: func(*cobra.Command, []string) error {
			var v any
			if _, err := c.send("GET", "/v1/audit/keys", nil, nil, &v); err != nil {
				return err
			}
			return c.printJSON(v)
		},
	}

	root.AddCommand(ls, export, verify, tail, keys)
	c.bind(root)
	root.PersistentFlags().StringVar(&acc, "account", "", "account id (acc_…)")
	// Flags win; ROSTER_SERVER, ROSTER_TOKEN, ROSTER_ACCOUNT fill the rest.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	return []*cobra.Command{root}
}

func verifyFile(path string, keys []byte) (audit.OfflineResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return audit.OfflineResult{}, err
	}
	defer f.Close()
	var pub []audit.PublicKey
	if len(keys) > 0 {
		if pub, err = audit.ParsePublicKeys(keys); err != nil {
			return audit.OfflineResult{}, fmt.Errorf("--key: %w", err)
		}
	}
	res, err := audit.VerifyExport(f, pub)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

func printVerification(w io.Writer, v audit.OfflineResult, offline bool) {
	if v.OK {
		fmt.Fprintf(w, "OK: %d records of %s verify", v.Records, v.AccountID)
		switch {
		case !v.SignaturesChecked:
			fmt.Fprintf(w, "; checkpoint signatures NOT checked (pass --key)\n")
		case v.SignedThrough == v.Records:
			fmt.Fprintf(w, "; %d signed checkpoints, the last on record %d\n", v.Checkpoints, v.SignedThrough)
		default:
			fmt.Fprintf(w, "; %d signed checkpoints through record %d; records %d to %d are chained but not yet signed\n",
				v.Checkpoints, v.SignedThrough, v.SignedThrough+1, v.Records)
			if offline {
				fmt.Fprintln(w, "warning: a whole export ends with a checkpoint of its last record; this file may have been cut short")
			}
		}
		return
	}
	fmt.Fprintf(w, "FAILED: %s: the chain breaks at record %d: %s\n", v.AccountID, *v.FirstBadSequence, v.Reason)
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}
