package roster

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"roster.dev/pkg/svc/svctest"
)

// runRoles runs the role and access commands in-process, under a root of
// their own (cli.go registers them in the real one).
func runRoles(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := &cobra.Command{Use: "roster", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(&out)
	root.SetErr(&out)
	root.AddCommand(rolesCommands(&out)...)
	root.AddCommand(layerCommands(&out)...)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// roster roles ls|show|create|edit|rm and roster access check|explain
// drive the public HTTP API.
func TestRoleCommands(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, t.TempDir(), "")
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "pro", 3)
	site := created(t, c, acc, "/v1/accounts/"+acc.id+"/sites", map[string]any{"name": "Acme"})
	as := []string{"--server=" + h.URL(), "--token=" + acc.token, "--account=" + acc.id}
	cmd := func(args ...string) []string { return append(args, as...) }

	// The site reaches rolepolicy through identity's event: retry the
	// creation until it is known (a 422 creates nothing).
	var out string
	var err error
	svctest.EventuallySeen(t, "roles create", func() bool {
		out, err = runRoles(t, cmd("roles", "create", "--name=Tier 1", "--permission=remote.file_transfer,ticketing.all_tickets", "--site="+site)...)
		return err == nil
	}, func() string { return out + " " + err.Error() })
	if !strings.Contains(out, "Tier 1") || !strings.Contains(out, site) || !strings.Contains(out, "remote.file_transfer") {
		t.Fatalf("roles create:\n%s", out)
	}
	out, err = runRoles(t, cmd("roles", "ls")...)
	for _, want := range []string{"Admin", "Beginner", "Billing", "Account manager", "Tier 1"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("roles ls lacks %s: %v\n%s", want, err, out)
		}
	}
	out, err = runRoles(t, cmd("roles", "ls", "--json")...)
	var page struct{ Data []roleRow }
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Data) != 5 {
		t.Fatalf("roles ls --json: %v\n%s", err, out)
	}

	// edit reads, changes and saves the whole role under its version.
	out, err = runRoles(t, cmd("roles", "edit", "tier 1", "--add-permission=system.reports", "--remove-permission=ticketing.all_tickets", "--all-sites")...)
	if err != nil || !strings.Contains(out, "system.reports") || strings.Contains(out, "ticketing.all_tickets") || strings.Contains(out, site) {
		t.Fatalf("roles edit: %v\n%s", err, out)
	}
	out, err = runRoles(t, cmd("roles", "show", "TIER 1", "--json")...)
	var shown roleRow
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || shown.Version != 2 || len(shown.SiteIDs) != 0 {
		t.Fatalf("roles show: %v\n%s", err, out)
	}
	// built-in roles refuse edits and deletion, with the problem.
	if _, err = runRoles(t, cmd("roles", "edit", "Admin", "--name=Boss")...); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("edit Admin: %v", err)
	}
	if _, err = runRoles(t, cmd("roles", "rm", "Beginner")...); err == nil || !strings.Contains(err.Error(), "Built-in role") {
		t.Fatalf("rm Beginner: %v", err)
	}

	// access check prints the decision and why; denied exits non-zero.
	out, err = runRoles(t, cmd("access", "check", acc.adminID, "remote.file_transfer", "--site="+site)...)
	if err != nil || !strings.HasPrefix(out, "allowed (allowed_admin)") || !strings.Contains(out, "R-2") {
		t.Fatalf("access check admin: %v\n%s", err, out)
	}
	tess := addTechnician(t, c, acc, "tess@acme.test") // Beginner
	svctest.Eventually(t, "tess known to rolepolicy", func() bool {
		code, _ := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+tess+"/role", acc.token, nil)
		return code == 200
	})
	out, err = runRoles(t, cmd("access", "check", tess, "system.reports")...)
	if !errors.Is(err, errAccessDenied) || !strings.HasPrefix(out, "denied (denied_permission)") || !strings.Contains(out, `"Beginner"`) {
		t.Fatalf("access check beginner: %v\n%s", err, out)
	}
	if _, err = runRoles(t, cmd("access", "check", tess, "system.teleport")...); err == nil || !strings.Contains(err.Error(), "permission") {
		t.Fatalf("unknown permission: %v", err)
	}
	out, err = runRoles(t, cmd("access", "explain", tess)...)
	if err != nil || !strings.Contains(out, "role Beginner") || !strings.Contains(out, "all sites") || !strings.Contains(out, "lacks remote.file_transfer") {
		t.Fatalf("access explain: %v\n%s", err, out)
	}

	out, err = runRoles(t, cmd("roles", "rm", "Tier 1")...)
	if err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("roles rm: %v\n%s", err, out)
	}
	if _, err = runRoles(t, cmd("roles", "show", "Tier 1")...); err == nil || !strings.Contains(err.Error(), "no role") {
		t.Fatalf("show deleted: %v", err)
	}
	if _, err = runRoles(t, "roles", "ls", "--server="+h.URL(), "--token="+acc.token); err == nil || !strings.Contains(err.Error(), "--account") {
		t.Fatalf("no account: %v", err)
	}
}
