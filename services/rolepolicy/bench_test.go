package rolepolicy_test

// Benchmarks of the access check (issue 5, item 7) on one account with
// 1,000 roles, 10,000 technicians and 1,000 sites (2,000 folders): in
// process (access.Index.Check) and over NATS request-reply
// (rpc.CheckAccess), through an in-process connection as in `roster
// serve` and through TCP loopback as a service in another process; and
// the index's maintenance. The figures are in PERFORMANCE.md:
//
//	go test -run '^$' -bench Check -benchmem -benchtime 200000x -count 3 roster.dev/services/rolepolicy
//	go test -run '^$' -bench 'IndexInstall|PutTechnician' -benchmem -count 3 roster.dev/services/rolepolicy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/profile"
	"roster.dev/pkg/rpc"
	"roster.dev/pkg/svc/svctest"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
	"roster.dev/services/rolepolicy/ports"
)

const (
	benchAccount     = "acc_bench"
	benchRoles       = 1000
	benchTechnicians = 10000
	benchSites       = 1000
	benchFolders     = 2 // per site
)

// benchState is the benchmark account, drawn from a fixed seed: the four
// roster built-in roles and 996 custom roles holding a third of the
// catalog, a third of them limited to 1-5 sites and excluding a folder;
// technicians spread over the roles, 2 % disabled.
func benchState(b *testing.B) access.State {
	b.Helper()
	rng := rand.New(rand.NewPCG(7, 2026))
	p, err := profile.Get("roster")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	setup, err := domain.SetUpAccount(benchAccount, p, "tech_00000", now)
	if err != nil {
		b.Fatal(err)
	}
	st := access.State{Account: setup.Account, Roles: setup.Roles}
	for i := range benchSites {
		site := fmt.Sprintf("site_%04d", i)
		st.Sites = append(st.Sites, domain.Site{AccountID: benchAccount, ID: site, Name: site})
		for j := range benchFolders {
			st.Folders = append(st.Folders, domain.Folder{AccountID: benchAccount, ID: fmt.Sprintf("fld_%04d_%d", i, j), SiteID: site})
		}
	}
	for i := len(st.Roles); i < benchRoles; i++ {
		spec := domain.RoleSpec{Name: fmt.Sprintf("Role %04d", i)}
		for _, c := range p.RolePolicy.Catalog {
			if rng.IntN(3) == 0 {
				spec.Permissions = append(spec.Permissions, c.ID)
			}
		}
		if rng.IntN(3) > 0 {
			for range 1 + rng.IntN(5) {
				site := rng.IntN(benchSites)
				spec.SiteIDs = append(spec.SiteIDs, st.Sites[site].ID)
				spec.ExcludedFolderIDs = append(spec.ExcludedFolderIDs, st.Folders[site*benchFolders].ID)
			}
		}
		st.Roles = append(st.Roles, domain.NewCustomRole(benchAccount, fmt.Sprintf("role_%04d", i), spec, now))
	}
	for i := range benchTechnicians {
		t := domain.Technician{AccountID: benchAccount, ID: fmt.Sprintf("tech_%05d", i),
			RoleID: st.Roles[rng.IntN(len(st.Roles))].ID, Status: domain.StatusActive}
		if rng.IntN(50) == 0 {
			t.Status = domain.StatusDisabled
		}
		st.Technicians = append(st.Technicians, t)
	}
	return st
}

// benchRequests are 4,096 checks over the whole account: every
// technician, permission, site and folder kind.
func benchRequests(st access.State) []access.Request {
	rng := rand.New(rand.NewPCG(11, 2026))
	p, _ := profile.Get("roster")
	qs := make([]access.Request, 4096)
	for i := range qs {
		q := access.Request{
			TechnicianID: st.Technicians[rng.IntN(len(st.Technicians))].ID,
			Permission:   p.RolePolicy.Catalog[rng.IntN(len(p.RolePolicy.Catalog))].ID,
		}
		switch rng.IntN(3) {
		case 1:
			q.SiteID = st.Sites[rng.IntN(len(st.Sites))].ID
		case 2:
			q.FolderID = st.Folders[rng.IntN(len(st.Folders))].ID
		}
		qs[i] = q
	}
	return qs
}

func benchIndex(b *testing.B) (*access.Index, []access.Request) {
	b.Helper()
	st := benchState(b)
	x := access.New()
	if err := x.Install(st); err != nil {
		b.Fatal(err)
	}
	return x, benchRequests(st)
}

// BenchmarkCheckInProcess is one access check from the index.
func BenchmarkCheckInProcess(b *testing.B) {
	x, qs := benchIndex(b)
	b.ReportAllocs()
	b.ResetTimer()
	allowed := 0
	for i := 0; b.Loop(); i++ {
		if x.Check(benchAccount, qs[i&(len(qs)-1)]).Allowed {
			allowed++
		}
	}
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
}

// BenchmarkCheckInProcessParallel is checks from every CPU at once.
func BenchmarkCheckInProcessParallel(b *testing.B) {
	x, qs := benchIndex(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(qs))
		for pb.Next() {
			x.Check(benchAccount, qs[i&(len(qs)-1)])
			i++
		}
	})
}

// natsBench serves rpc.CheckAccess from the benchmark index, as
// rolepolicy's Setup does, and returns a client connection: in process,
// or through TCP loopback.
func natsBench(b *testing.B, tcp bool) (*nats.Conn, []access.Request) {
	b.Helper()
	w := svctest.NewNATS(b)
	a := app.New(nil, nil, nil, slog.New(slog.DiscardHandler), nil)
	st := benchState(b)
	if err := a.Index().Install(st); err != nil {
		b.Fatal(err)
	}
	server, err := w.Connect("rolepolicy-rpc")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(server.Close)
	if _, err := ports.ServeCheckAccess(server, a, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	client := w.NC
	if tcp {
		if client, err = nats.Connect(w.ClientURL()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(client.Close)
	}
	if err := server.Flush(); err != nil {
		b.Fatal(err)
	}
	return client, benchRequests(st)
}

func benchNATS(b *testing.B, tcp bool) {
	nc, qs := natsBench(b, tcp)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := qs[i&(len(qs)-1)]
		var rep rolepolicyv1.CheckAccessReply
		start := time.Now()
		err := rpc.Call(ctx, nc, rpc.CheckAccess, &rolepolicyv1.CheckAccessRequest{AccountId: benchAccount,
			TechnicianId: q.TechnicianID, Permission: q.Permission, SiteId: q.SiteID, FolderId: q.FolderID}, &rep)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p99.9-µs")
}

// BenchmarkCheckNATS is one check over request-reply through an in-process
// connection (the all-in-one `roster serve`), one request at a time, with
// its latency percentiles.
func BenchmarkCheckNATS(b *testing.B) { benchNATS(b, false) }

// BenchmarkCheckNATSLoopback is the same through TCP loopback: a service
// in another process on the same machine.
func BenchmarkCheckNATSLoopback(b *testing.B) { benchNATS(b, true) }

// BenchmarkIndexInstall is building the benchmark account's index from its
// stored state: what the rebuild at start does per account, after the
// database reads.
func BenchmarkIndexInstall(b *testing.B) {
	st := benchState(b)
	x := access.New()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := x.Install(st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutTechnician is one change of a technician (an assignment, a
// disable): one copy-on-write shard of the 10,000 technicians.
func BenchmarkPutTechnician(b *testing.B) {
	st := benchState(b)
	x := access.New()
	if err := x.Install(st); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := st.Technicians[i%len(st.Technicians)]
		t.Status = domain.StatusDisabled
		x.PutTechnician(t)
	}
}
