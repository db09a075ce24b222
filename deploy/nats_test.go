package deploy_test

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
)

// The passwords the test gives the users of deploy/nats/nats.conf.
var natsUsers = map[string]string{
	"identity":     "ROSTER_NATS_IDENTITY_PASSWORD",
	"seatbilling":  "ROSTER_NATS_SEATBILLING_PASSWORD",
	"rolepolicy":   "ROSTER_NATS_ROLEPOLICY_PASSWORD",
	"audit":        "ROSTER_NATS_AUDIT_PASSWORD",
	"audit-reader": "ROSTER_NATS_AUDIT_READER_PASSWORD",
	"roster-admin": "ROSTER_NATS_ADMIN_PASSWORD",
}

func password(user string) string { return "pw-" + user }

// freePorts returns n loopback ports free now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// natsCluster is three nats-server nodes started in-process from
// deploy/nats/nats.conf, on loopback.
type natsCluster struct {
	servers []*server.Server
	urls    []string
}

// startNATSCluster parses deploy/nats/nats.conf once per node, with the
// node's environment (server name, routes, passwords), and changes only
// what a loopback test must: the listen addresses, the store directory and
// no monitoring port. Accounts, users, permissions, JetStream and the
// cluster's routes and their authorisation are the file's.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	for user, env := range natsUsers {
		t.Setenv(env, password(user))
	}
	t.Setenv("NATS_ROUTE_PASSWORD", "pw-route")
	t.Setenv("NATS_SYS_PASSWORD", "pw-sys")
	clientPorts, routePorts := freePorts(t, 3), freePorts(t, 3)
	for i, p := range routePorts {
		t.Setenv(fmt.Sprintf("NATS_ROUTE_%d", i+1), fmt.Sprintf("nats://route:pw-route@127.0.0.1:%d", p))
	}
	c := &natsCluster{}
	var opts []*server.Options
	for i := range 3 {
		t.Setenv("NATS_SERVER_NAME", fmt.Sprintf("nats-%d", i+1))
		o, err := server.ProcessConfigFile(filepath.Join("nats", "nats.conf"))
		if err != nil {
			t.Fatalf("deploy/nats/nats.conf: %v", err)
		}
		if o.ServerName != fmt.Sprintf("nats-%d", i+1) || o.Cluster.Name != "roster" || len(o.Routes) != 3 || !o.JetStream {
			t.Fatalf("node %d: server %q, cluster %q, %d routes, JetStream %v", i+1, o.ServerName, o.Cluster.Name, len(o.Routes), o.JetStream)
		}
		o.Host, o.Port = "127.0.0.1", clientPorts[i]
		o.Cluster.Host, o.Cluster.Port = "127.0.0.1", routePorts[i]
		o.HTTPPort = 0
		o.StoreDir = t.TempDir()
		o.NoSigs = true
		opts = append(opts, o)
	}
	for i, o := range opts {
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i+1)
		}
		c.servers = append(c.servers, s)
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	return c
}

// violations collects a connection's permission violations.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) has(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, "Permissions Violation") && strings.Contains(e, `"`+subject+`"`) {
			return true
		}
	}
	return false
}

// connect connects as user to every node of c (the client picks one and
// fails over to the others).
func (c *natsCluster) connect(t *testing.T, user string) (*nats.Conn, *violations) {
	t.Helper()
	v := &violations{}
	nc, err := nats.Connect(strings.Join(c.urls, ","), nats.UserInfo(user, password(user)), nats.Name(user),
		nats.ErrorHandler(v.handler), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// ensureStreams creates Roster's streams with replicas 3 as `roster serve
// --stream-replicas 3` does, retrying while the cluster elects its
// JetStream meta leader.
func ensureStreams(t *testing.T, nc *nats.Conn) nats.JetStreamContext {
	t.Helper()
	js, err := nc.JetStream(nats.MaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = eventbus.EnsureStreams(js, eventbus.StreamOptions{Replicas: 3})
		if err == nil {
			return js
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams with replicas 3: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deploy/nats/nats.conf (issue 13, item 2): three nodes form a JetStream
// cluster, Roster's streams take replicas 3 and survive the loss of a
// node, and each service's user may publish its own subjects and nothing
// else; the outside audit reader only reads roster.audit.>.
func TestNATSClusterConfig(t *testing.T) {
	c := startNATSCluster(t)

	// A service user creates the streams at start (eventbus.EnsureStreams).
	rp, rpViolations := c.connect(t, "rolepolicy")
	js := ensureStreams(t, rp)
	for _, name := range []string{eventbus.EventStream("identity"), eventbus.EventStream("rolepolicy"), eventbus.StreamAudit, eventbus.StreamDeadLetter} {
		info, err := js.StreamInfo(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
	}

	// Its own events: stored.
	ack, err := js.Publish("roster.events.rolepolicy.acc_1.role_created", []byte("x"))
	if err != nil || ack.Stream != eventbus.EventStream("rolepolicy") {
		t.Fatalf("rolepolicy publishes its own event: %+v %v", ack, err)
	}
	// Another service's events, the public audit stream: refused.
	for _, subject := range []string{"roster.events.identity.acc_1.account_created", "roster.audit.acc_1.role.created"} {
		if err := rp.Publish(subject, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the violation of rolepolicy publishing "+subject, func() bool { return rpViolations.has(subject) })
	}
	// Nor may it delete a stream.
	if err := js.DeleteStream(eventbus.StreamAudit); err == nil {
		t.Fatal("rolepolicy deleted the audit stream")
	}
	if n := streamMsgs(t, js, eventbus.EventStream("identity")); n != 0 {
		t.Fatalf("the identity stream holds %d messages after rolepolicy's forgery", n)
	}

	// The audit service publishes the public audit stream; the outside
	// reader receives it and may not publish there.
	au, _ := c.connect(t, "audit")
	reader, readerViolations := c.connect(t, "audit-reader")
	sub, err := reader.SubscribeSync("roster.audit.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Flush(); err != nil {
		t.Fatal(err)
	}
	auJS, err := au.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auJS.Publish("roster.audit.acc_1.technician.created", []byte(`{"id":"1"}`)); err != nil {
		t.Fatalf("audit publishes the audit stream: %v", err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != `{"id":"1"}` {
		t.Fatalf("the reader's subscription: %v %v", m, err)
	}
	readerJS, err := reader.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	// A JetStream consumer of its own on the audit stream: allowed.
	cons, err := readerJS.SubscribeSync("roster.audit.>", nats.BindStream(eventbus.StreamAudit), nats.DeliverAll())
	if err != nil {
		t.Fatalf("the reader's consumer of the audit stream: %v", err)
	}
	if m, err := cons.NextMsg(5 * time.Second); err != nil || string(m.Data) != `{"id":"1"}` {
		t.Fatalf("the reader's consumer: %v %v", m, err)
	}
	if err := reader.Publish("roster.audit.acc_1.technician.created", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the violation of the reader publishing to the audit stream", func() bool {
		return readerViolations.has("roster.audit.acc_1.technician.created")
	})
	if _, err := reader.Subscribe("roster.events.identity.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the violation of the reader subscribing to internal events", func() bool {
		return readerViolations.has("roster.events.identity.>")
	})

	// One node down: the R3 streams still take events (a majority is up)
	// and the client reconnects to another node.
	leader := streamLeader(t, js, eventbus.EventStream("rolepolicy"))
	for _, s := range c.servers {
		if s.Name() == leader {
			s.Shutdown()
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err = js.Publish("roster.events.rolepolicy.acc_1.role_created", []byte("after the loss of "+leader), nats.AckWait(2*time.Second))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after the loss of %s: %v", leader, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := streamMsgs(t, js, eventbus.EventStream("rolepolicy")); n != 2 {
		t.Fatalf("the rolepolicy stream holds %d messages, want 2", n)
	}
	if now := streamLeader(t, js, eventbus.EventStream("rolepolicy")); now == leader || now == "" {
		t.Fatalf("stream leader after the loss of %s: %q", leader, now)
	}
}

func streamMsgs(t *testing.T, js nats.JetStreamContext, stream string) uint64 {
	t.Helper()
	info, err := js.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func streamLeader(t *testing.T, js nats.JetStreamContext, stream string) string {
	t.Helper()
	var leader string
	waitFor(t, "a leader of "+stream, func() bool {
		info, err := js.StreamInfo(stream)
		if err != nil {
			if errors.Is(err, nats.ErrStreamNotFound) {
				t.Fatal(err)
			}
			return false
		}
		if info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		return leader != ""
	})
	return leader
}
