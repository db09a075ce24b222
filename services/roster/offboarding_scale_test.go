package roster

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/identity"
)

// scaleResult is what offboardAtScale measured.
type scaleResult struct {
	// Disable: the disabling request, which plans, applies and records
	// every item and queues its instruction in one transaction.
	Disable time.Duration
	// Delivered: from the request until the last instruction is on the
	// stream.
	Delivered time.Duration
	// Completed: from the request until the last acknowledgement closes
	// the offboarding.
	Completed time.Duration
	// PeakHeap is the largest heap growth over the baseline seen while
	// the offboarding ran (sampled every 2 ms, GC at 5 % so that the heap
	// follows the live data), of the whole process: identity, the outbox
	// relay and the embedded NATS server, which caches the stream's recent
	// blocks. PeakDisable is the same during the disabling request alone.
	PeakHeap, PeakDisable uint64
}

// heapSampler records the peak of the heap's object bytes.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	mu   sync.Mutex
	base uint64
	peak uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap collects garbage, takes the baseline and samples until Stop.
func sampleHeap() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{}), base: heapObjects()}
	h.peak = h.base
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				v := heapObjects()
				h.mu.Lock()
				h.peak = max(h.peak, v)
				h.mu.Unlock()
			}
		}
	}()
	return h
}

// Peak is the peak growth over the baseline so far.
func (h *heapSampler) Peak() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}

// Stop ends the sampling and returns the peak growth over the baseline.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.Peak()
}

// offboardAtScale registers n tickets and assets on one technician of a
// roster account (SQLite), disables them with a successor (O-3: every item
// reassigned, one OwnershipReassigned instruction each), waits until all n
// instructions are on the stream, acknowledges them 1,000 at a time until
// the offboarding completes, and checks the end state. The live heap is
// sampled from just before the disable until completion.
func offboardAtScale(tb testing.TB, n int) scaleResult {
	tb.Helper()
	h, err := svc.Start(context.Background(), svc.Config{
		DataDir: tb.TempDir(), HTTP: "127.0.0.1:0", NATSListen: "127.0.0.1:0", OperatorToken: operator, Now: fixedClock,
	}, Services()...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Stop(context.Background()) })
	select {
	case <-h.Ready():
	case err := <-h.Errors():
		tb.Fatal(err)
	}
	do := func(method, path, token string, body, out any, hdr ...string) int {
		tb.Helper()
		code, _, raw := svctest.Do(tb, method, h.URL()+path, token, body, hdr...)
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				tb.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return code
	}
	var created map[string]any
	if code := do("POST", "/v1/accounts", operator, map[string]any{"name": "Scale", "profile": "roster", "plan": "growth",
		"billing_period": "monthly", "seats": 4, "billing_anchor": "2026-11-01",
		"admin": map[string]any{"email": "admin@scale.test", "first_name": "A", "last_name": "B"}}, &created); code != 201 {
		tb.Fatalf("create account: %d %v", code, created)
	}
	acc := created["account"].(map[string]any)["id"].(string)
	token := created["api_token"].(string)
	base := "/v1/accounts/" + acc
	svctest.Eventually(tb, "the subscription", func() bool { return do("GET", base+"/subscription", token, nil, nil) == 200 })
	var techs []string
	for _, e := range []string{"leaver@scale.test", "heir@scale.test"} {
		var t map[string]any
		if code := do("POST", base+"/technicians", token, technician(e, ""), &t); code != 201 {
			tb.Fatalf("add %s: %d %v", e, code, t)
		}
		techs = append(techs, t["id"].(string))
	}
	leaver, heir := techs[0], techs[1]
	for start := 0; start < n; start += 1000 {
		items := make([]any, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			if i%2 == 0 {
				items = append(items, map[string]any{"kind": "ticket", "id": fmt.Sprintf("T%07d", i), "owner_id": leaver, "status": "open"})
			} else {
				items = append(items, map[string]any{"kind": "asset", "id": fmt.Sprintf("A%07d", i), "owner_id": leaver})
			}
		}
		if code := do("POST", base+"/ownership", token, map[string]any{"items": items}, nil); code != 200 {
			tb.Fatalf("register from %d: %d", start, code)
		}
	}
	nc, err := nats.Connect(h.NATSURL())
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		tb.Fatal(err)
	}

	gc := debug.SetGCPercent(5)
	defer debug.SetGCPercent(gc)
	heap := sampleHeap()
	var r scaleResult
	start := time.Now()
	var disabled struct {
		Status      string `json:"status"`
		Offboarding struct {
			ID          string           `json:"id"`
			Outstanding int              `json:"outstanding"`
			Actions     []map[string]any `json:"actions"`
			NextCursor  string           `json:"next_cursor"`
		} `json:"offboarding"`
	}
	if code := do("POST", base+"/technicians/"+leaver+"/disable", token, map[string]any{"successor_id": heir}, &disabled); code != 200 {
		tb.Fatalf("disable: %d", code)
	}
	r.Disable = time.Since(start)
	r.PeakDisable = heap.Peak()
	off := disabled.Offboarding
	if disabled.Status != "disabled" || off.Outstanding != n || len(off.Actions) != min(n, 1000) {
		tb.Fatalf("disable answer: status %s, %d outstanding, %d actions shown", disabled.Status, off.Outstanding, len(off.Actions))
	}
	if n > 1000 { // the disable answer's cursor pages on through the route
		var next map[string]any
		if code := do("GET", base+"/offboardings/"+off.ID+"?limit=1&cursor="+disabled.Offboarding.NextCursor, token, nil, &next); code != 200 ||
			next["actions"].([]any)[0].(map[string]any)["seq"] != 1001.0 {
			tb.Fatalf("the page after the disable answer: %d %v", code, next)
		}
	}
	for {
		info, err := js.StreamInfo("ROSTER_OFFBOARDING")
		if err != nil {
			tb.Fatal(err)
		}
		if info.State.Msgs >= uint64(n) {
			if info.State.Msgs != uint64(n) {
				tb.Fatalf("%d instructions for %d items", info.State.Msgs, n)
			}
			break
		}
		if time.Since(start) > 10*time.Minute {
			tb.Fatalf("%d of %d instructions after 10 minutes", info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Delivered = time.Since(start)
	var ack map[string]any
	for i := 0; i < n; i += 1000 {
		items := make([]any, 0, 1000)
		for j := i; j < min(n, i+1000); j++ {
			kind, id := "ticket", fmt.Sprintf("T%07d", j)
			if j%2 == 1 {
				kind, id = "asset", fmt.Sprintf("A%07d", j)
			}
			items = append(items, map[string]any{"kind": kind, "id": id})
		}
		ack = nil
		if code := do("POST", base+"/offboardings/"+off.ID+"/acks", token, map[string]any{"items": items}, &ack); code != 200 || ack["acknowledged"] != float64(len(items)) {
			tb.Fatalf("ack from %d: %d %v", i, code, ack)
		}
	}
	r.Completed = time.Since(start)
	r.PeakHeap = heap.Stop()
	if ack["status"] != "completed" || ack["outstanding"] != 0.0 {
		tb.Fatalf("after the last ack: %v", ack)
	}
	// The end state: everything the heir's, nothing left with the leaver.
	var page map[string]any
	do("GET", base+"/ownership?owner_id="+leaver+"&limit=1", token, nil, &page)
	if d, _ := page["data"].([]any); len(d) != 0 {
		tb.Fatalf("the leaver still owns %v", d)
	}
	do("GET", base+"/ownership?owner_id="+heir+"&kind=asset&limit=1&cursor=", token, nil, &page)
	if d, _ := page["data"].([]any); len(d) != 1 {
		tb.Fatalf("the heir owns no asset: %v", page)
	}
	return r
}

// O-3 at scale with bounded memory: an offboarding of 20,000 items on one
// technician completes (disable, every instruction delivered, every
// acknowledgement) while the disabling request grows the live heap by
// less than 5 MiB: it reads, applies and records a page of 500 items at a
// time. Loading the technician's items at once (the page size raised past
// n) measured 8.5 MiB here, and grows with n (docs/performance.md, where
// BenchmarkOffboarding100k reports the 100,000-item figures).
//
// Not under the race detector, which makes SQLite some 25 times slower
// (20,000 items take minutes) and adds its own allocations; run it with
//
//	go test -count=1 -run TestOffboardingAtScaleBoundedMemory -v ./services/roster/
func TestOffboardingAtScaleBoundedMemory(t *testing.T) {
	if raceDetector || testing.Short() {
		t.Skip("20,000 items: not in -short or -race runs (TestOffboardingManyPages is their small version)")
	}
	const n = 20_000
	r := offboardAtScale(t, n)
	t.Logf("%d items: disable %v, delivered %v, completed %v, peak heap growth %.1f MiB (%.1f MiB during the disable)",
		n, r.Disable, r.Delivered, r.Completed, float64(r.PeakHeap)/(1<<20), float64(r.PeakDisable)/(1<<20))
	if r.PeakDisable > 5<<20 {
		t.Fatalf("the disable of %d items grew the heap by %.1f MiB", n, float64(r.PeakDisable)/(1<<20))
	}
}

// The small version that runs everywhere (-race included): 600 items
// walked 50 at a time, so the offboarding spans 12 pages whose items move
// out of the page as they are reassigned; every item is reassigned once,
// one instruction each, and the offboarding completes on the last
// acknowledgement.
func TestOffboardingManyPages(t *testing.T) {
	old := identity.OffboardingPageSize
	identity.OffboardingPageSize = 50
	t.Cleanup(func() { identity.OffboardingPageSize = old })
	r := offboardAtScale(t, 600)
	t.Logf("600 items: disable %v, completed %v", r.Disable, r.Completed)
}

// BenchmarkOffboarding100k is the Done-when measure: one technician with
// 100,000 owned items, disabled with a successor on SQLite
// (docs/performance.md):
//
//	go test -run '^$' -bench BenchmarkOffboarding100k -benchtime 1x ./services/roster/
func BenchmarkOffboarding100k(b *testing.B) {
	for b.Loop() {
		r := offboardAtScale(b, 100_000)
		b.ReportMetric(r.Disable.Seconds(), "disable-s")
		b.ReportMetric(r.Delivered.Seconds(), "delivered-s")
		b.ReportMetric(r.Completed.Seconds(), "completed-s")
		b.ReportMetric(float64(r.PeakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(r.PeakDisable)/(1<<20), "disable-peak-heap-MiB")
		// The bound holds at 100,000 too: paged, the disable measured
		// 1.9–5.4 MiB here (the GC lags under load); everything loaded at
		// once measured 27.5 MiB.
		if r.PeakDisable > 12<<20 {
			b.Fatalf("the disable of 100,000 items grew the heap by %.1f MiB (bound 12 MiB)", float64(r.PeakDisable)/(1<<20))
		}
	}
}
