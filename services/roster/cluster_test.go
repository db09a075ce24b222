package roster

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/pgtest"
	"roster.dev/pkg/svc/svctest"
)

// The cluster fault test (issue 13, docs/reliability.md "Cluster fault
// test"): Roster as it is deployed at scale, every part a separate process
// on loopback —
//
//   - 3 nats-server processes forming a JetStream cluster from
//     deploy/nats/nats.conf (its accounts, users, per-service permissions,
//     routes; only the listen addresses and the store directory changed);
//   - PostgreSQL (pgtest) prepared by deploy/postgres/init.sql: a schema
//     and a role per service, each service connecting as its own role;
//   - ROSTER_CLUSTER_REPLICAS (default 2) `roster serve <service>`
//     processes of each service, with their own NATS user, the 3 nodes in
//     --nats-url and --stream-replicas 3, behind a front that spreads each
//     service's requests over its replicas that are up;
//
// drives the chaos harness's lifecycle load (chaosDriver: technicians
// added with seat purchases, disabled, first logins through the mailed
// link, roles changed; every request with an Idempotency-Key, retried until
// answered) and, in each of ROSTER_CLUSTER_ROUNDS rounds (default 2),
// SIGKILLs the NATS node that leads the identity stream and one replica of
// each service mid-load, then restarts them. Afterwards the chaos
// invariants: nothing lost, nothing doubled, the audit chain verifies, no
// dead letter, every outbox drained and every consumer settled.
//
// The short mode (the defaults) runs in `make test`; `make cluster-test`
// runs the long mode, with ROSTER_CLUSTER_MEASURE seconds of throughput
// measured at 1, 2, … replicas of each service before the kills (the
// figures of docs/performance.md) and the time to recover from each node
// kill.
func TestClusterFaults(t *testing.T) {
	natsServer := svctest.NATSServerBinary(t)
	replicas := envInt(t, "ROSTER_CLUSTER_REPLICAS", 2)
	rounds := envInt(t, "ROSTER_CLUSTER_ROUNDS", 2)
	measure := time.Duration(envIntOr(t, "ROSTER_CLUSTER_MEASURE", 0)) * time.Second
	rng := chaosRand(t)
	dir := t.TempDir()
	ch := &chaosChild{t: t, dir: dir, http: freeAddr(t), pg: pgtest.DSN(t)}
	ch.pgAs = postgresRoles(t, ch.pg)

	nodes := natsClusterProcs(t, ch, natsServer)
	ch.natsURL = clusterURL(nodes, "roster-admin")
	// The services: replica r of each is started in phase r (measure), or
	// all at once.
	byService := map[string][]*chaosProc{}
	var phases [][]*chaosProc
	for r := range replicas {
		var phase []*chaosProc
		for _, s := range services {
			addr := freeAddr(t)
			p := &chaosProc{name: fmt.Sprintf("%s-%d", s, r+1), http: addr, args: strings.Join([]string{
				"serve", s, "--nats-url", clusterURL(nodes, s), "--stream-replicas", "3", "--db", ch.pgAs[s],
				"--data", dir, "--http", addr, "--log-level", "warn",
				// A replica killed holding events unacknowledged: another
				// gets them after 5 s instead of 30 s, so that the short
				// mode settles in seconds.
				"--ack-wait", "5s",
			}, " ")}
			byService[s] = append(byService[s], p)
			phase = append(phase, p)
		}
		phases = append(phases, phase)
	}
	ch.serveFront(byService)

	began := time.Now()
	ch.procs = nodes
	ch.startAll(nodes)
	admin, err := nats.Connect(ch.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := admin.JetStream(nats.MaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// JetStream answers once the nodes elected their meta leader.
	for _, err := js.AccountInfo(); err != nil; _, err = js.AccountInfo() {
		if time.Since(began) > time.Minute {
			t.Fatalf("JetStream of the cluster: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("cluster: 3 NATS nodes up, JetStream answering, in %v", time.Since(began).Round(time.Millisecond))
	started := 1
	if measure == 0 {
		started = replicas
	}
	for _, phase := range phases[:started] {
		ch.procs = append(ch.procs, phase...)
		ch.startAll(phase)
	}
	t.Logf("cluster: %d replicas of each service ready at %v", started, time.Since(began).Round(time.Millisecond))
	c, acc := ch.openAccount(t)
	load := startChaosLoad(newChaosDriver(t, c, acc, filepath.Join(dir, "mail")), envInt(t, "ROSTER_CLUSTER_WORKERS", chaosWorkers))

	// Throughput at 1, 2, … replicas of each service: the same cluster and
	// load, without faults.
	for n := 1; measure > 0; n++ {
		time.Sleep(2 * time.Second) // warm up: connections, caches, the new replicas' consumers
		reqs, nf, techs, t0 := c.answered.Load(), c.notFound.Load(), len(load.d.snapshot()), time.Now()
		time.Sleep(measure)
		el := time.Since(t0).Seconds()
		t.Logf("cluster throughput, %d replica(s) of each service, %d workers: %.1f requests/s answered (%.1f/s of them 404), %.1f technicians onboarded/s (%v)",
			n, load.workers, float64(c.answered.Load()-reqs)/el, float64(c.notFound.Load()-nf)/el, float64(len(load.d.snapshot())-techs)/el, measure)
		if n == replicas {
			break
		}
		ch.procs = append(ch.procs, phases[n]...)
		ch.startAll(phases[n])
	}

	// The faults.
	start := time.Now()
	var recoveries, flows, catchups, failovers []time.Duration
	probe := 1_000_000 // the probes' technician numbers (script 0: an add)
	for r := range rounds {
		ch.awaitReady()
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		node := leaderOf(t, js, eventbus.EventStream("identity"), nodes)
		var victims []*chaosProc
		for _, s := range services {
			victims = append(victims, byService[s][rng.IntN(replicas)])
		}
		ch.kill(node)
		killed := time.Now()
		// The probe: a technician added from the moment of the kill. Its
		// 201 is the requests succeeding again (identity commits it with
		// its event in the outbox; the seat is reserved over core NATS);
		// its technician.created audit record is the events flowing again
		// (outbox → the identity stream, whose leader was killed → audit's
		// consumer).
		probe += 4
		probed, flowed := make(chan time.Duration, 1), make(chan time.Duration, 1)
		go func(i int) {
			load.d.run(i)
			probed <- time.Since(killed)
			email := fmt.Sprintf("t%04d@chaos.test", i)
			var id string
			for _, tc := range load.d.snapshot() {
				if tc.email == email {
					id = tc.id
				}
			}
			for id != "" && time.Since(killed) < 2*time.Minute {
				code, body, err := c.do("GET", "/v1/accounts/"+acc.id+"/audit?target="+id, acc.token, nil)
				if data, _ := body["data"].([]any); err == nil && code == 200 && len(data) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			flowed <- time.Since(killed)
		}(probe)
		// JetStream's failover: a node up leads the stream (the killed one
		// may lead it again once restarted).
		var restartedAt atomic.Bool
		failover := make(chan time.Duration, 1)
		go func() {
			for time.Since(killed) < time.Minute {
				info, err := js.StreamInfo(eventbus.EventStream("identity"))
				if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && (info.Cluster.Leader != node.name || restartedAt.Load()) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			failover <- time.Since(killed)
		}()
		for _, p := range victims {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			ch.kill(p)
		}
		t.Logf("round %d at %v: killed %s (leader of %s) and %s; %d technicians started",
			r+1, time.Since(start).Round(time.Millisecond), node.name, eventbus.EventStream("identity"), names(victims), load.next.Load())
		time.Sleep(time.Second)
		for _, p := range append([]*chaosProc{node}, victims...) {
			ch.start(p)
		}
		restarted := time.Now()
		restartedAt.Store(true)
		// The restarted node has caught up when it is a current replica of
		// every stream again (before the next round: nodes are restarted
		// one at a time, as in a rolling restart).
		deadline := time.Now().Add(60 * time.Second)
		for !currentEverywhere(js, node.name) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		caught := time.Since(restarted)
		ch.awaitReady()
		recovered, events, elected := <-probed, <-flowed, <-failover
		recoveries, flows, catchups, failovers = append(recoveries, recovered), append(flows, events), append(catchups, caught), append(failovers, elected)
		t.Logf("round %d: after the kill, a leader of %s in %v, the first add answered in %v and audited in %v; %s current again %v after its restart",
			r+1, eventbus.EventStream("identity"), elected.Round(time.Millisecond), recovered.Round(time.Millisecond),
			events.Round(time.Millisecond), node.name, caught.Round(time.Millisecond))
	}
	ch.awaitReady()
	techs := load.finish(t)
	t.Logf("cluster: %d rounds of kills survived, %d technicians onboarded in %v", rounds, len(techs), time.Since(start).Round(time.Millisecond))
	t.Logf("cluster: after a node kill, a stream leader in %s; the first add answered in %s, audited in %s; the node current again after its restart in %s",
		spread(failovers), spread(recoveries), spread(flows), spread(catchups))

	kills := rounds * (1 + len(services))
	checked := checkChaosInvariants(t, c, ch, acc, techs, kills)
	t.Logf("cluster: %d invariant checks passed", checked)
}

// envIntOr is name's number, 0 allowed, or def.
func envIntOr(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number, 0 or more", name, s)
	}
	return n
}

// The passwords the test gives the users of deploy/nats/nats.conf.
var clusterNATSUsers = map[string]string{
	"identity":     "ROSTER_NATS_IDENTITY_PASSWORD",
	"seatbilling":  "ROSTER_NATS_SEATBILLING_PASSWORD",
	"rolepolicy":   "ROSTER_NATS_ROLEPOLICY_PASSWORD",
	"audit":        "ROSTER_NATS_AUDIT_PASSWORD",
	"audit-reader": "ROSTER_NATS_AUDIT_READER_PASSWORD",
	"roster-admin": "ROSTER_NATS_ADMIN_PASSWORD",
}

// natsClusterProcs are the 3 nodes of deploy/nats/nats.conf as processes
// on loopback: each runs a copy of the file in which only the client,
// route and monitoring listen addresses and the store directory differ;
// the rest (server name, routes, passwords) comes from the environment the
// file documents. A node is ready when JetStream is enabled
// (/healthz?js-enabled-only=true, the readiness check of deploy/).
func natsClusterProcs(t *testing.T, ch *chaosChild, exe string) []*chaosProc {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"NATS_ROUTE_PASSWORD=pw-route", "NATS_SYS_PASSWORD=pw-sys"}
	for user, v := range clusterNATSUsers {
		env = append(env, v+"=pw-"+user)
	}
	var clients, routes, monitors []string
	for i := range 3 {
		clients, routes, monitors = append(clients, freeAddr(t)), append(routes, freeAddr(t)), append(monitors, freeAddr(t))
		env = append(env, fmt.Sprintf("NATS_ROUTE_%d=nats://route:pw-route@%s", i+1, routes[i]))
	}
	var nodes []*chaosProc
	for i := range 3 {
		name := fmt.Sprintf("nats-%d", i+1)
		c := string(conf)
		for _, r := range [][2]string{
			{`listen: "0.0.0.0:4222"`, `listen: "` + clients[i] + `"`},
			{`http: "0.0.0.0:8222"`, `http: "` + monitors[i] + `"`},
			{`store_dir: "/data/jetstream"`, `store_dir: "` + filepath.Join(ch.dir, name) + `"`},
			{`listen: "0.0.0.0:6222"`, `listen: "` + routes[i] + `"`},
		} {
			if strings.Count(c, r[0]) != 1 {
				t.Fatalf("deploy/nats/nats.conf: %q not found once; the test's variant needs updating", r[0])
			}
			c = strings.Replace(c, r[0], r[1], 1)
		}
		path := filepath.Join(ch.dir, name+".conf")
		if err := os.WriteFile(path, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &chaosProc{name: name, exe: exe, argv: []string{"-c", path},
			env: append([]string{"NATS_SERVER_NAME=" + name}, env...), natsAddr: clients[i],
			readyURL: "http://" + monitors[i] + "/healthz?js-enabled-only=true"})
	}
	return nodes
}

// clusterURL is the --nats-url of user: every node, with its password.
func clusterURL(nodes []*chaosProc, user string) string {
	var us []string
	for _, n := range nodes {
		us = append(us, "nats://"+user+":pw-"+user+"@"+n.natsAddr)
	}
	return strings.Join(us, ",")
}

// postgresRoles applies deploy/postgres/init.sql to the database at dsn
// (as pgtest's superuser) and returns each service's URL as its own role.
func postgresRoles(t *testing.T, dsn string) map[string]string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("..", "..", "deploy", "postgres", "init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	super, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	ctx := context.Background()
	if _, err := super.ExecContext(ctx, string(script)); err != nil {
		t.Fatalf("deploy/postgres/init.sql: %v", err)
	}
	out := map[string]string{}
	for _, s := range services {
		role := "roster_" + s
		if _, err := super.ExecContext(ctx, `ALTER ROLE `+role+` PASSWORD 'pw-`+role+`'`); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(role, "pw-"+role)
		out[s] = u.String()
	}
	return out
}

// leaderOf is the node leading stream.
func leaderOf(t *testing.T, js nats.JetStreamContext, stream string, nodes []*chaosProc) *chaosProc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		info, err := js.StreamInfo(stream)
		if err == nil && info.Cluster != nil {
			for _, n := range nodes {
				if n.name == info.Cluster.Leader {
					return n
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no leader of %s in 30 s", stream)
	return nil
}

// currentEverywhere reports whether node leads or is a current replica of
// each of Roster's streams.
func currentEverywhere(js nats.JetStreamContext, node string) bool {
	for _, stream := range []string{eventbus.EventStream("identity"), eventbus.EventStream("seatbilling"),
		eventbus.EventStream("rolepolicy"), eventbus.StreamAudit, eventbus.StreamDeadLetter, eventbus.StreamOffboarding, eventbus.StreamOwnership} {
		info, err := js.StreamInfo(stream)
		if err != nil || info.Cluster == nil {
			return false
		}
		ok := info.Cluster.Leader == node
		for _, r := range info.Cluster.Replicas {
			ok = ok || r.Name == node && r.Current && r.Lag == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

func names(ps []*chaosProc) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	return strings.Join(out, ", ")
}

// spread is "min … median … max" of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("min %v, median %v, max %v (%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}
