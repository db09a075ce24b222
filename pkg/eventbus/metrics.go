package eventbus

import (
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	published = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_events_published_total",
		Help: "Events handed from a service's outbox to JetStream (acknowledged by the stream).",
	}, []string{"service", "type"})
	consumed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_events_consumed_total",
		Help: "Events a consumer finished with: applied, duplicate (already applied, dropped by the inbox) or ignored (no handler).",
	}, []string{"service", "consumer", "type", "outcome"})
	failed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_events_failed_total",
		Help: "Deliveries whose handler failed; the event is redelivered with backoff.",
	}, []string{"service", "consumer", "type"})
	deadLettered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_events_deadlettered_total",
		Help: "Events moved to roster.deadletter.<consumer> after MaxDeliver failed deliveries.",
	}, []string{"service", "consumer", "type"})
	batchFallbacks = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_event_batches_split_total",
		Help: "Batches whose transaction failed, so their events were applied one by one (Config.Batch).",
	}, []string{"service", "consumer"})
	settleTimeouts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "roster_write_settle_timeouts_total",
		Help: "Write requests that answered before all their effects were applied (Roster-Consistency: pending).",
	})
	settleSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "roster_write_settle_seconds",
		Help:    "From a write request's start until its effects were applied everywhere they are awaited and its status went out.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	heldBack = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_events_held_total",
		Help: "Deliveries handed back to come after an earlier event of their technician that failed (order.go).",
	}, []string{"service", "consumer"})
)

// lagCollector reports, at scrape time, how many events each consumer of
// this process has not yet acknowledged.
type lagCollector struct {
	mu        sync.Mutex
	consumers map[[2]string]*nats.Conn // {stream, consumer}
}

var (
	lagDesc = prometheus.NewDesc("roster_consumer_pending_events",
		"Events on the stream not yet delivered to the consumer plus those delivered and not yet acknowledged.",
		[]string{"stream", "consumer"}, nil)
	lags = &lagCollector{consumers: map[[2]string]*nats.Conn{}}
)

func init() { prometheus.MustRegister(lags) }

func trackLag(stream, consumer string, nc *nats.Conn) {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	lags.consumers[[2]string{stream, consumer}] = nc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, nc := range c.consumers {
		if nc.IsClosed() {
			delete(c.consumers, key)
			continue
		}
		js, err := nc.JetStream()
		if err != nil {
			continue
		}
		info, err := js.ConsumerInfo(key[0], key[1])
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue,
			float64(info.NumPending)+float64(info.NumAckPending), key[0], key[1])
	}
}
