package roster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc/svctest"
)

// upload posts a CSV file as the body of POST …/imports.
func upload(t *testing.T, c client, acc account, query, csv string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", c.base+"/v1/accounts/"+acc.id+"/imports?"+query, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+acc.token)
	req.Header.Set("Content-Type", "text/csv")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

// awaitImport waits until the import is done and returns it.
func awaitImport(t *testing.T, c client, acc account, id string) map[string]any {
	t.Helper()
	var imp map[string]any
	svctest.EventuallySeen(t, "import "+id+" done", func() bool {
		_, imp = c.do("GET", "/v1/accounts/"+acc.id+"/imports/"+id, acc.token, nil)
		return imp["status"] == "done"
	}, func() string { return fmt.Sprint(imp) })
	return imp
}

func counts(imp map[string]any) string {
	rows := imp["rows"].(map[string]any)
	return fmt.Sprintf("total=%v done=%v created=%v updated=%v skipped=%v refused=%v",
		rows["total"], rows["done"], imp["created"], imp["updated"], imp["skipped"], imp["refused"])
}

// H-3 under roster, on SQLite and PostgreSQL: technicians from a CSV with a
// BOM, semicolons and quoted fields; the per-row report with row numbers;
// seats bought only when the import confirms it; welcome mails optional;
// Department kept; the same file again changes nothing.
func TestImportTechnicians(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		h, _ := startHostAt(t, dir, db, fixedClock)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 3) // the admin and two free seats
		csv := "\ufeffEmail;First Name;Last Name;Department;Role\r\n" +
			"ann@acme.test;Ann;\"Lee; Jr\";IT;Billing\r\n" + // row 2
			"not-an-email;Bob;B;IT;\r\n" + // row 3: refused
			"admin@roster.test;Ada;Admin;Management;\r\n" + // row 4: the admin, department added
			"cy@acme.test;Cy;C;IT\r\n" + // row 5: a field short
			"dee@acme.test;Dee;D;Support;\r\n" + // row 6: the last free seat
			"eve@acme.test;Eve;E;Support;\r\n" // row 7: no seat, no confirmation
		code, imp := upload(t, c, acc, "kind=technicians&send_welcome_mail=false", csv)
		if code != 202 || imp["id"] == nil {
			t.Fatalf("upload: %d %v", code, imp)
		}
		imp = awaitImport(t, c, acc, imp["id"].(string))
		if got := counts(imp); got != "total=6 done=6 created=2 updated=1 skipped=0 refused=3" {
			t.Fatalf("report: %s %v", got, imp)
		}
		var refusedRows []float64
		for _, r := range imp["refusals"].([]any) {
			refusedRows = append(refusedRows, r.(map[string]any)["row"].(float64))
		}
		if fmt.Sprint(refusedRows) != "[3 5 7]" {
			t.Fatalf("refused rows: %v", imp["refusals"])
		}
		if reason := imp["refusals"].([]any)[2].(map[string]any)["reason"].(string); !strings.Contains(reason, "seat") {
			t.Fatalf("no-seat reason: %s", reason)
		}
		_, list := c.do("GET", "/v1/accounts/"+acc.id+"/technicians?email=ann@acme.test", acc.token, nil)
		ann := list["data"].([]any)[0].(map[string]any)
		if ann["last_name"] != "Lee; Jr" || ann["requested_role"] != "Billing" {
			t.Fatalf("ann: %v", ann)
		}
		if _, d := c.do("GET", "/v1/accounts/"+acc.id+"/technicians/"+ann["id"].(string)+"/directory", acc.token, nil); d["department"] != "IT" {
			t.Fatalf("department not kept: %v", d)
		}
		if m := mailsTo(t, filepath.Join(dir, "mail"), "ann@acme.test"); len(m) != 0 {
			t.Fatalf("welcome mail sent although opted out: %v", m)
		}
		_, rows := c.do("GET", "/v1/accounts/"+acc.id+"/imports/"+imp["id"].(string)+"/rows?limit=2", acc.token, nil)
		if len(rows["data"].([]any)) != 2 || rows["next_cursor"] == nil {
			t.Fatalf("rows page: %v", rows)
		}

		// The same file again: nothing created or updated.
		_, again := upload(t, c, acc, "kind=technicians&send_welcome_mail=false", csv)
		again = awaitImport(t, c, acc, again["id"].(string))
		if got := counts(again); got != "total=6 done=6 created=0 updated=0 skipped=3 refused=3" {
			t.Fatalf("re-run: %s", got)
		}
		// Confirmed: the row that had no seat buys one, with a welcome mail.
		_, paid := upload(t, c, acc, "kind=technicians&confirm_seat_purchase=true", csv)
		paid = awaitImport(t, c, acc, paid["id"].(string))
		if got := counts(paid); got != "total=6 done=6 created=1 updated=0 skipped=3 refused=2" {
			t.Fatalf("confirmed: %s", got)
		}
		svctest.Eventually(t, "one charge", func() bool {
			_, ch := c.do("GET", "/v1/accounts/"+acc.id+"/charges", acc.token, nil)
			data, _ := ch["data"].([]any)
			return len(data) == 1
		})
		svctest.Eventually(t, "eve's welcome mail", func() bool { return len(mailsTo(t, filepath.Join(dir, "mail"), "eve@acme.test")) == 1 })

		// A file that cannot be imported changes nothing.
		if code, body := upload(t, c, acc, "kind=technicians", "email,first_name\n"); code != 422 || !strings.Contains(body["detail"].(string), "last_name") {
			t.Fatalf("bad file: %d %v", code, body)
		}
		if code, _ := upload(t, c, acc, "kind=robots", csv); code != 422 {
			t.Fatalf("bad kind: %d", code)
		}
	})
}

// H-3 and S-8 under atera: technicians are never imported; end users only
// on plans with CSV import; Department ignored.
func TestImportUnderAtera(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	pro := createAccount(t, c, "atera-msp", "pro", 2)
	csv := "email,name,site,department\nu1@acme.test,U One,HQ,Sales\n"
	if code, body := upload(t, c, pro, "kind=technicians", "email,first_name,last_name\na@b.test,A,B\n"); code != 403 || problemType(body) != "https://roster.dev/problems/plan-gate" {
		t.Fatalf("atera technicians: %d %v", code, body)
	}
	if code, body := upload(t, c, pro, "kind=end_users", csv); code != 403 || problemType(body) != "https://roster.dev/problems/plan-gate" {
		t.Fatalf("atera pro end users: %d %v", code, body)
	}
	growth := createAccount(t, c, "atera-msp", "growth", 2)
	c.do("POST", "/v1/accounts/"+growth.id+"/sites", growth.token, map[string]any{"name": "HQ"})
	code, imp := upload(t, c, growth, "kind=end_users", csv)
	if code != 202 {
		t.Fatalf("atera growth end users: %d %v", code, imp)
	}
	imp = awaitImport(t, c, growth, imp["id"].(string))
	if got := counts(imp); got != "total=1 done=1 created=1 updated=0 skipped=0 refused=0" {
		t.Fatalf("report: %s", got)
	}
	_, rows := c.do("GET", "/v1/accounts/"+growth.id+"/imports/"+imp["id"].(string)+"/rows", growth.token, nil)
	eu := rows["data"].([]any)[0].(map[string]any)["id"].(string)
	if _, d := c.do("GET", "/v1/accounts/"+growth.id+"/end-users/"+eu+"/directory", growth.token, nil); d["department"] != "" {
		t.Fatalf("atera kept the department: %v", d)
	}
}

// H-3: an import interrupted by a stop resumes on the next start and
// finishes without duplicates.
func TestImportResumesAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h, stop := startHostAt(t, dir, "", fixedClock)
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "growth", 2)
	c.do("POST", "/v1/accounts/"+acc.id+"/sites", acc.token, map[string]any{"name": "HQ"})
	var b strings.Builder
	b.WriteString("email,name,site\n")
	const n = 600
	for i := range n {
		fmt.Fprintf(&b, "user%d@acme.test,User %d,HQ\n", i, i)
	}
	code, imp := upload(t, c, acc, "kind=end_users", b.String())
	if code != 202 {
		t.Fatalf("upload: %d %v", code, imp)
	}
	id := imp["id"].(string)
	svctest.Eventually(t, "some rows done", func() bool {
		_, imp = c.do("GET", "/v1/accounts/"+acc.id+"/imports/"+id, acc.token, nil)
		return imp["rows"].(map[string]any)["done"].(float64) > 0
	})
	stop()
	if imp["status"] == "done" {
		t.Fatal("the import finished before the stop; nothing was resumed")
	}
	t.Logf("stopped at %v", imp["rows"])
	h, _ = startHostAt(t, dir, "", fixedClock)
	c = client{t, h.URL()}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, imp = c.do("GET", "/v1/accounts/"+acc.id+"/imports/"+id, acc.token, nil)
		if imp["status"] == "done" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := counts(imp); got != fmt.Sprintf("total=%d done=%d created=%d updated=0 skipped=0 refused=0", n, n, n) {
		t.Fatalf("after restart: %s", got)
	}
	total := 0
	for cursor := ""; ; {
		_, page := c.do("GET", "/v1/accounts/"+acc.id+"/end-users?limit=500&cursor="+cursor, acc.token, nil)
		total += len(page["data"].([]any))
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if total != n {
		t.Fatalf("%d end users after the restart, want %d", total, n)
	}
}

// api.md "CLI": roster import FILE uploads, shows the progress bar and the
// summary with the refused rows.
func TestImportCommand(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	c := client{t, h.URL()}
	acc := createAccount(t, c, "roster", "growth", 5)
	file := filepath.Join(t.TempDir(), "people.csv")
	csv := "email,first_name,last_name\nzed@acme.test,Zed,Z\nbad,Bad,B\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "import", file, "--kind=technicians", "--server="+h.URL(), "--token="+acc.token, "--account="+acc.id, "--interval=20ms")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	for _, want := range []string{"2/2 rows", "rows/s", "1 created, 0 updated, 0 skipped, 1 refused", "row 3 refused: email: must be an email address"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err := run(t, "import", file, "--kind=robots", "--server="+h.URL(), "--token="+acc.token, "--account="+acc.id); err == nil {
		t.Fatalf("bad kind accepted: %s", out)
	}
}
