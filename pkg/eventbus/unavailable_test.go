package eventbus_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
)

// A replica that starts while its NATS cluster has no JetStream leader (a
// node was lost and the cluster is electing another, or has lost its
// quorum) waits for JetStream and then consumes, instead of failing with
// "JetStream system temporarily unavailable" (issue 13; the cluster fault
// test saw a restarted replica exit so).
func TestBusStartsWhileJetStreamIsUnavailable(t *testing.T) {
	opts := clusterOptions(t)
	servers := make([]*server.Server, len(opts))
	start := func(i int) {
		t.Helper()
		s, err := server.NewServer(opts[i].Clone())
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i)
		}
		servers[i] = s
	}
	for i := range opts {
		start(i)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", opts[0].Port)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "the streams with replicas 3", func() bool {
		return eventbus.EnsureStreams(js, eventbus.StreamOptions{Replicas: 3}) == nil
	})

	// Two of three nodes down: no quorum, JetStream unavailable.
	servers[1].Shutdown()
	servers[2].Shutdown()
	connect := func(name string) (*nats.Conn, error) {
		return nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	}
	dir := t.TempDir()
	db := openDB(t, "", dir, "seatbilling")
	bus, err := eventbus.New(eventbus.Config{Service: "seatbilling", DB: db, Connect: connect})
	if err != nil {
		t.Fatal(err)
	}
	eventbus.On(bus, recordEffect)
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() { runErr = bus.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-done:
		t.Fatalf("the bus gave up while JetStream was unavailable: %v", runErr)
	case <-bus.Ready():
		t.Fatal("ready without JetStream")
	case <-time.After(3 * time.Second):
	}

	// The nodes come back: the bus creates its consumer and applies.
	start(1)
	start(2)
	select {
	case <-done:
		t.Fatalf("bus: %v", runErr)
	case <-bus.Ready():
	case <-time.After(45 * time.Second):
		t.Fatal("the bus not ready 45 s after JetStream came back")
	}
	prod := &svctest.Producer{DB: svctest.OpenDB(t, "", dir, "identity")}
	prod.Bus = svctest.StartBus(t, eventbus.Config{Service: "identity", DB: prod.DB, Connect: connect}, nil)
	prod.Emit(t, "acc_test", technician("after@example.com"))
	svctest.Eventually(t, "the event applied", func() bool { return countEffects(t, db, "") == 1 })
}

// clusterOptions are the options of a 3-node JetStream cluster on
// loopback ports.
func clusterOptions(t *testing.T) []*server.Options {
	t.Helper()
	ports := func() []int {
		var out []int
		for range 3 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			out = append(out, l.Addr().(*net.TCPAddr).Port)
		}
		return out
	}
	clients, routes := ports(), ports()
	var opts []*server.Options
	for i := range 3 {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: clients[i],
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
		o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "unavailable", "127.0.0.1", routes[i]
		for _, p := range routes {
			o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", p))...)
		}
		opts = append(opts, o)
	}
	return opts
}
