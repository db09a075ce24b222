package roster

import (
	"bytes"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"roster.dev/pkg/svc/svctest"
)

// One trace spans the HTTP request, the published event and every
// consumer that applies it, through the traceparent header on the bus.
func TestTraceSpansRequestEventAndConsumers(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })

	h, _ := startHost(t, t.TempDir(), "")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := bytes.NewBufferString(`{"name":"Traced","profile":"roster","plan":"pro","billing_period":"monthly","seats":2,
		"admin":{"email":"t@acme.test","first_name":"T","last_name":"R"}}`)
	req, _ := http.NewRequest("POST", h.URL()+"/v1/accounts", body)
	req.Header.Set("Authorization", "Bearer "+operator)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("create: %v %v", res, err)
	}
	res.Body.Close()

	want := map[string]bool{
		"POST /v1/accounts":      false,
		"publish AccountCreated": false,
	}
	consumers := map[string]bool{"seatbilling_from_identity": false, "rolepolicy_from_identity": false, "audit_from_identity": false}
	svctest.Eventually(t, "spans of the request, the publish and the three consumers in one trace", func() bool {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() != traceID {
				continue
			}
			if _, ok := want[s.Name()]; ok {
				want[s.Name()] = true
			}
			if s.Name() == "process AccountCreated" {
				for _, a := range s.Attributes() {
					if a.Key == "messaging.consumer.group.name" {
						consumers[a.Value.AsString()] = true
					}
				}
			}
		}
		for _, ok := range want {
			if !ok {
				return false
			}
		}
		for _, ok := range consumers {
			if !ok {
				return false
			}
		}
		return true
	})
}
