package roster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
)

// BenchmarkImportTechnicians imports a 10,000-row technician CSV under
// roster into an account with 10 seats, the import confirming seat
// purchases (9,991 seats bought), on SQLite, and reports rows/s
// (docs/performance.md):
//
//	go test -run '^$' -bench BenchmarkImportTechnicians -benchtime 1x ./services/roster/
func BenchmarkImportTechnicians(b *testing.B) {
	rows := benchRows()
	var csv strings.Builder
	csv.WriteString("email,first_name,last_name,department,job_title\n")
	for i := range rows {
		fmt.Fprintf(&csv, "tech%05d@acme.test,Tech,Number %d,IT,Engineer\n", i, i)
	}
	for b.Loop() {
		b.StopTimer()
		h, err := svc.Start(context.Background(), svc.Config{
			DataDir: b.TempDir(), HTTP: "127.0.0.1:0", NATSListen: "off", OperatorToken: operator, Now: fixedClock,
		}, Services()...)
		if err != nil {
			b.Fatal(err)
		}
		<-h.Ready()
		do := func(method, path, token string, body any, out any, hdr ...string) int {
			code, _, raw := svctest.Do(b, method, h.URL()+path, token, body, hdr...)
			if out != nil {
				_ = json.Unmarshal(raw, out)
			}
			return code
		}
		var created map[string]any
		do("POST", "/v1/accounts", operator, map[string]any{"name": "Bench", "profile": "roster", "plan": "growth",
			"billing_period": "monthly", "seats": 10, "billing_anchor": "2026-11-01",
			"admin": map[string]any{"email": "admin@bench.test", "first_name": "A", "last_name": "B"}}, &created)
		acc := created["account"].(map[string]any)["id"].(string)
		token := created["api_token"].(string)
		svctest.Eventually(b, "the subscription", func() bool { return do("GET", "/v1/accounts/"+acc+"/subscription", token, nil, nil) == 200 })
		b.StartTimer()

		start := time.Now()
		req, _ := http.NewRequest("POST", h.URL()+"/v1/accounts/"+acc+"/imports?kind=technicians&confirm_seat_purchase=true&send_welcome_mail=false",
			strings.NewReader(csv.String()))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 202 {
			b.Fatalf("upload: %v %v", err, res)
		}
		var imp map[string]any
		_ = json.NewDecoder(res.Body).Decode(&imp)
		res.Body.Close()
		id := imp["id"].(string)
		for imp["status"] != "done" {
			time.Sleep(50 * time.Millisecond)
			do("GET", "/v1/accounts/"+acc+"/imports/"+id, token, nil, &imp)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if got := counts(imp); got != fmt.Sprintf("total=%d done=%d created=%d updated=0 skipped=0 refused=0", rows, rows, rows) {
			b.Fatalf("report: %s", got)
		}
		var sub map[string]any
		do("GET", "/v1/accounts/"+acc+"/subscription", token, nil, &sub)
		b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
		b.Logf("seats after the import: %v", sub["seats"])
		if err := h.Stop(context.Background()); err != nil {
			b.Error(err)
		}
		b.StartTimer()
	}
}

// benchRows is 10,000, or ROSTER_BENCH_ROWS for a quicker look.
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("ROSTER_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 10_000
}
