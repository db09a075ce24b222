package roster

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"roster.dev/pkg/svc/svctest"
)

// roster personas ls|show|create|edit|rm|assign, roster purposes
// ls|show|create|edit|rm and roster access asset drive the public HTTP API
//
func TestLayerCommands(t *testing.T) {
	t.Parallel()
	c, mailDir, h := atlanHost(t, "")
	acc := atlanAccount(t, c, "premier", 3)
	as := []string{"--server=" + h.URL(), "--token=" + acc.token, "--account=" + acc.id}
	cmd := func(args ...string) []string { return append(args, as...) }
	svctest.Eventually(t, "the account known to rolepolicy", func() bool {
		_, err := runRoles(t, cmd("personas", "ls")...)
		return err == nil
	})

	out, err := runRoles(t, cmd("personas", "create", "--name=Snowflake readers", "--grant=snowflake-prod:table,view:read", "--ui=glossary")...)
	if err != nil || !strings.Contains(out, "snowflake-prod:table,view:read") || !strings.Contains(out, "glossary") {
		t.Fatalf("personas create: %v\n%s", err, out)
	}
	if _, err := runRoles(t, cmd("personas", "create", "--name=bad", "--grant=snowflake-prod")...); err == nil || !strings.Contains(err.Error(), "CONNECTION:TYPE") {
		t.Fatalf("a bad --grant: %v", err)
	}
	if _, err := runRoles(t, cmd("personas", "create", "--name=bad", "--grant=x:table:fly")...); err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("an unknown action: %v", err)
	}
	out, err = runRoles(t, cmd("personas", "edit", "SNOWFLAKE READERS", "--grant=snowflake-prod:view:read")...)
	if err != nil || !strings.Contains(out, "snowflake-prod:view:read") || strings.Contains(out, "table") || !strings.Contains(out, "glossary") {
		t.Fatalf("personas edit: %v\n%s", err, out)
	}
	out, err = runRoles(t, cmd("personas", "assign", acc.adminID, "snowflake readers")...)
	if err != nil || !strings.Contains(out, "Snowflake readers") {
		t.Fatalf("personas assign: %v\n%s", err, out)
	}

	out, err = runRoles(t, cmd("purposes", "create", "--name=PII", "--tag=PII", "--mask")...)
	if err != nil || !strings.Contains(out, "mask") {
		t.Fatalf("purposes create: %v\n%s", err, out)
	}
	out, err = runRoles(t, cmd("purposes", "edit", "pii", "--deny", "--except="+acc.adminID, "--json")...)
	var p purposeRow
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.DataPolicy == nil || p.DataPolicy.Action != "deny" || p.Version != 2 || len(p.DataPolicy.Except) != 1 {
		t.Fatalf("purposes edit: %v\n%s", err, out)
	}

	out, err = runRoles(t, cmd("purposes", "create", "--name=EU", "--tag=Customer", "--row-filter=region = 'EU'")...)
	if err != nil || !strings.Contains(out, "filter region = 'EU'") {
		t.Fatalf("purposes create --row-filter: %v\n%s", err, out)
	}
	if _, err := runRoles(t, cmd("purposes", "edit", "eu", "--mask", "--deny")...); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Fatalf("--mask --deny: %v", err)
	}

	// The admin, pending, is denied; once accepted, allowed by the base
	// role, the PII data spared by the exception.
	out, err = runRoles(t, cmd("access", "asset", acc.adminID, "read", "--connection=snowflake-prod", "--type=table", "--tag=PII")...)
	if !errors.Is(err, errAccessDenied) || !strings.Contains(out, "deny (by base_role") {
		t.Fatalf("access asset for a pending admin: %v\n%s", err, out)
	}
	m := awaitMail(t, mailDir, "admin@atlan.test", "")
	if code, body := c.do("POST", "/v1/auth/password", "", map[string]any{"token": m.Token, "password": "correct horse battery"}); code != 204 {
		t.Fatalf("accept: %d %v", code, body)
	}
	svctest.EventuallySeen(t, "the admin allowed", func() bool {
		out, err = runRoles(t, cmd("access", "asset", acc.adminID, "read", "--connection=snowflake-prod", "--type=table", "--tag=PII")...)
		return err == nil
	}, func() string { return out })
	if !strings.Contains(out, "allow (by base_role Admin)") {
		t.Fatalf("access asset: %s", out)
	}
	out, err = runRoles(t, cmd("access", "explain", acc.adminID)...)
	for _, want := range []string{"base_role  Admin", "persona    Snowflake readers  read on view of snowflake-prod", "purpose    PII", "allow", "purpose    EU", "filter"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("access explain lacks %q: %v\n%s", want, err, out)
		}
	}
	out, err = runRoles(t, cmd("access", "asset", acc.adminID, "read", "--connection=snowflake-prod", "--type=table", "--tag=customer")...)
	if err != nil || !strings.Contains(out, "allow (by purpose EU)") || !strings.Contains(out, "rows where region = 'EU'") {
		t.Fatalf("access asset on a filtered table: %v\n%s", err, out)
	}

	for _, c := range [][]string{{"purposes", "rm", "PII"}, {"purposes", "rm", "EU"}, {"personas", "rm", "snowflake readers"}} {
		if out, err := runRoles(t, cmd(c...)...); err != nil || !strings.Contains(out, "deleted") {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	if out, err := runRoles(t, cmd("personas", "ls", "--json")...); err != nil || !strings.Contains(out, `"data": []`) {
		t.Fatalf("personas ls after rm: %v\n%s", err, out)
	}
}
