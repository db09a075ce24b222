package eventbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/svc/svctest"
)

// Replicas of a service share its durable consumer (issue 13): each event
// is applied once by one of them, and one replica stopping — a rolling
// restart — leaves the consumer to the others instead of deleting it
// (which nats.go does to a consumer it created for the subscription).
func TestReplicasShareTheDurableConsumer(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := svctest.NewNATS(t)
		prod := svctest.StartProducer(t, w, dbURL, "identity")
		db := openDB(t, dbURL, w.Dir, "seatbilling")

		// Replica a, stopped by the test; replica b, until the test ends.
		a, err := eventbus.New(eventbus.Config{Service: "seatbilling", DB: openDB(t, dbURL, w.Dir, "seatbilling"), Connect: w.Connect})
		if err != nil {
			t.Fatal(err)
		}
		eventbus.On(a, recordEffect)
		ctx, stopA := context.WithCancel(context.Background())
		doneA := make(chan error, 1)
		go func() { doneA <- a.Run(ctx) }()
		select {
		case <-a.Ready():
		case err := <-doneA:
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatal("replica a not ready")
		}
		svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: db, Connect: w.Connect}, func(b *eventbus.Bus) {
			eventbus.On(b, recordEffect)
		})
		name := eventbus.ConsumerName("seatbilling", "identity")
		info, err := w.JS.ConsumerInfo("ROSTER_IDENTITY", name)
		if err != nil || info.Config.Durable != name || info.Config.DeliverSubject != "" {
			t.Fatalf("the shared consumer: %+v %v", info, err)
		}

		for i := range 20 {
			prod.Emit(t, "acc_test", technician(fmt.Sprintf("before%d@example.com", i)))
		}
		svctest.Eventually(t, "the replicas to apply the events", func() bool { return countEffects(t, db, "") == 20 })

		stopA()
		if err := <-doneA; err != nil {
			t.Fatalf("replica a: %v", err)
		}
		if _, err := w.JS.ConsumerInfo("ROSTER_IDENTITY", name); err != nil {
			t.Fatalf("the shared consumer after replica a stopped: %v", err)
		}
		for i := range 20 {
			prod.Emit(t, "acc_test", technician(fmt.Sprintf("after%d@example.com", i)))
		}
		svctest.Eventually(t, "replica b to apply the later events", func() bool { return countEffects(t, db, "") == 40 })
		svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
		if n := countEffects(t, db, ""); n != 40 {
			t.Fatalf("%d effects, want 40 (each event once)", n)
		}
	})
}

// A durable consumer deleted from under a running replica — by an
// operator, or by another replica replacing an older version's push
// consumer in the same instant — is taken up again: later events are
// applied, earlier ones not twice.
func TestConsumerDeletedFromUnderAReplicaIsTakenUpAgain(t *testing.T) {
	w := svctest.NewNATS(t)
	prod := svctest.StartProducer(t, w, "", "identity")
	db := openDB(t, "", w.Dir, "seatbilling")
	svctest.StartBus(t, eventbus.Config{Service: "seatbilling", DB: db, Connect: w.Connect, Batch: 16}, func(b *eventbus.Bus) {
		eventbus.On(b, recordEffect)
	})
	for i := range 10 {
		prod.Emit(t, "acc_test", technician(fmt.Sprintf("before%d@example.com", i)))
	}
	svctest.Eventually(t, "the first events applied", func() bool { return countEffects(t, db, "") == 10 })
	if err := w.JS.DeleteConsumer("ROSTER_IDENTITY", eventbus.ConsumerName("seatbilling", "identity")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		prod.Emit(t, "acc_test", technician(fmt.Sprintf("after%d@example.com", i)))
	}
	svctest.Eventually(t, "the later events applied", func() bool { return countEffects(t, db, "") >= 20 })
	svctest.Eventually(t, "the consumer to settle", svctest.ConsumerSettled(w.JS, "seatbilling", "identity"))
	if n := countEffects(t, db, ""); n != 20 {
		t.Fatalf("%d effects, want 20 (each event once)", n)
	}
}
