# Roster's build. `make run` and `make test` are the two quickstart commands.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
# nats-server for `make chaos`, `make cluster-test` and the cluster test's
# short mode in `make test`: on PATH, or installed into GOPATH/bin.
NATS_SERVER := $(shell command -v nats-server || echo $$($(GO) env GOPATH)/bin/nats-server)
# Every module of the workspace (go.work). The black-box tests of
# services/roster are the longest package: first, so that the others run
# beside it.
PKGS  := roster.dev/services/roster roster.dev/services/roster/cmd/... roster.dev/services/roster/console/... \
         roster.dev/pkg/... roster.dev/proto/... \
         roster.dev/services/identity/... roster.dev/services/seatbilling/... \
         roster.dev/services/rolepolicy/... roster.dev/services/audit/... roster.dev/deploy/...

.PHONY: run build test test-race test-blackbox test-race-all vet fuzz proto proto-check tools clean chaos bench cluster-test consistency

## run: build and start the all-in-one (embedded NATS + SQLite under ./data)
run: build
	$(BIN)/roster serve

## build: the roster binary into bin/
build:
	$(GO) build -o $(BIN)/roster ./services/roster/cmd/roster

## test: vet, then every test — with the race detector but for most of
## services/roster's black-box suite (test-race, test-blackbox) — and the
## read-your-writes suite, side by side; then 2000 executions of each fuzz target
## (needs PostgreSQL's binaries for the PostgreSQL half:
## .ci/install-postgres.sh; installs nats-server v2.15.2 for the cluster
## fault test's short mode)
test: vet $(NATS_SERVER)
	$(MAKE) --no-print-directory -j3 --output-sync=target test-race test-blackbox consistency
	$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

## test-race: every package's tests with the race detector, but for the
## black-box suite of services/roster, where only the tests that drive
## concurrency (RACE_BLACKBOX) run under it: the others run beside, without
## it (test-blackbox), as do the consistency suite and the crash harness —
## make test is CPU-bound on 2 cores, and the detector made that one
## package 5 of its 8 minutes. `make test-race-all` runs everything under it.
RACE_PKGS     := $(filter-out roster.dev/services/roster,$(PKGS))
RACE_BLACKBOX := ^(TestConcurrent.*|TestSessionCapUnderParallelLogins|TestLockoutParallelAttemptsAndAdminUnlock|TestTraceSpansRequestEventAndConsumers|TestSessionChangesReachTheNextRequest)$$
test-race:
	GORACE=atexit_sleep_ms=0 $(GO) test -race -count=1 -parallel 4 -timeout 8m $(RACE_PKGS)
	GORACE=atexit_sleep_ms=0 $(GO) test -race -count=1 -parallel 4 -timeout 8m -run '$(RACE_BLACKBOX)' roster.dev/services/roster

## test-blackbox: services/roster's black-box tests (the all-in-one over
## HTTP, the CLI, the console in Chromium), without the race detector
test-blackbox: $(NATS_SERVER)
	$(GO) test -count=1 -parallel 4 -timeout 8m roster.dev/services/roster

## test-race-all: every test of every package with the race detector
test-race-all: $(NATS_SERVER)
	GORACE=atexit_sleep_ms=0 $(GO) test -race -count=1 -parallel 4 -timeout 15m $(PKGS)

## consistency: the read-your-writes suite (issue 18) — every write→read
## pair of the contract CONSISTENCY_N times with no pause, against `roster
## serve` and against the four services as separate processes on NATS and
## PostgreSQL. Without the race detector: it drives thousands of requests
## through the real binaries (docs/architecture.md "Read-your-writes").
CONSISTENCY_N ?= 200
consistency: $(NATS_SERVER)
	ROSTER_CONSISTENCY_N=$(CONSISTENCY_N) PATH="$(dir $(NATS_SERVER)):$$PATH" \
	  $(GO) test -count=1 -timeout 8m -v roster.dev/services/roster/consistency

## fuzz: fuzz each parser target for FUZZTIME (default 30s; `make test`
## gives each 2000 executions — a count, not a duration: a duration races
## the fuzzing coordinator's deadline on a busy machine and fails with a
## bare "context deadline exceeded", golang/go#51484 — and the seed
## corpora run in every go test)
FUZZTIME ?= 30s
FUZZ := roster.dev/pkg/httpx:FuzzBearerToken \
        roster.dev/services/identity/domain:FuzzParsePHC \
        roster.dev/services/identity/domain:FuzzCheckPassword \
        roster.dev/services/identity/domain:FuzzNormalizeRecoveryCode \
        roster.dev/services/identity/domain:FuzzMatchTOTP \
        roster.dev/services/identity/domain:FuzzSecurityPolicy \
        roster.dev/services/identity/domain:FuzzSSOConfig \
        roster.dev/services/identity/ports:FuzzLoginBody \
        roster.dev/services/identity/ports:FuzzTokenBody \
        roster.dev/services/identity/ports:FuzzOwnershipEvent \
        roster.dev/services/identity/ports:FuzzTimeParam \
        roster.dev/services/rolepolicy/domain:FuzzLayerSpecs \
        roster.dev/services/identity/domain:FuzzWebhook \
        roster.dev/services/identity/domain:FuzzFilter \
        roster.dev/services/identity/domain:FuzzPatch \
        roster.dev/services/identity/domain:FuzzParseImport \
        roster.dev/services/audit/domain:FuzzFastCanonical
fuzz:
	@set -eo pipefail; for t in $(FUZZ); do \
	  echo "fuzz $${t#*:} ($(FUZZTIME))"; \
	  out=$$($(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" 2>&1) || { echo "$$out"; exit 1; }; \
	  echo "$$out" | tail -1; \
	done

## bench: build roster and measure it as users run it (bench/main.go):
## lifecycle, HRIS webhooks, CSV import, SCIM, access checks, audit over
## 1,000,000 records, footprint; writes bench/results.json, prints the
## table (~15 min here); BENCH_FLAGS=-full for issue 11's sizes
## (docs/performance.md)
BENCH_FLAGS ?=
bench: build
	$(GO) run ./bench -roster $(BIN)/roster $(BENCH_FLAGS)

## chaos: the crash-consistency harness in its long mode (make test runs
## the short all-in-one one): CHAOS_KILLS kill -9s under a bulk onboarding,
## of roster serve, then of one of four `roster serve <service>` processes
## on PostgreSQL or of the nats-server; then the invariants
## (docs/reliability.md). Installs nats-server v2.15.2 when missing.
CHAOS_KILLS ?= 50
chaos: $(NATS_SERVER)
	set -o pipefail; ROSTER_CHAOS_KILLS=$(CHAOS_KILLS) ROSTER_CHAOS_SEPARATE=1 PATH="$(dir $(NATS_SERVER)):$$PATH" \
	  $(GO) test -race -count=1 -timeout 30m -run '^TestChaos' -v roster.dev/services/roster \
	  | grep --line-buffered -v 'level=' | tee chaos.log | grep --line-buffered -E '^(=== RUN|--- |\s+chaos_test|PASS|FAIL|ok)'

## cluster-test: the cluster fault test (services/roster/cluster_test.go)
## in its long mode: 3 nats-server processes as a JetStream cluster from
## deploy/nats/nats.conf, PostgreSQL with deploy/postgres/init.sql's roles,
## CLUSTER_REPLICAS `roster serve <service>` processes of each service with
## --stream-replicas 3; CLUSTER_MEASURE s of throughput at 1, 2, …
## replicas, then CLUSTER_ROUNDS rounds each killing the node leading the
## identity stream and one replica of each service under the load; then
## the chaos invariants. Once with 2 replicas, once with 3. Without the
## race detector (CLUSTER_FLAGS=-race adds it): the figures are the
## binary's (docs/performance.md). `make test` runs the short mode.
CLUSTER_ROUNDS  ?= 8
CLUSTER_MEASURE ?= 20
CLUSTER_WORKERS ?= 8
CLUSTER_FLAGS   ?=
cluster-test: $(NATS_SERVER)
	set -o pipefail; rm -f cluster.log; for n in 2 3; do \
	  ROSTER_CLUSTER_REPLICAS=$$n ROSTER_CLUSTER_ROUNDS=$(CLUSTER_ROUNDS) ROSTER_CLUSTER_MEASURE=$(CLUSTER_MEASURE) \
	  ROSTER_CLUSTER_WORKERS=$(CLUSTER_WORKERS) PATH="$(dir $(NATS_SERVER)):$$PATH" \
	  $(GO) test $(CLUSTER_FLAGS) -count=1 -timeout 30m -run '^TestClusterFaults$$' -v roster.dev/services/roster \
	  | grep --line-buffered -v 'level=' | tee -a cluster.log | grep --line-buffered -E '^(=== RUN|--- |\s+cluster_test|PASS|FAIL|ok)' \
	  || exit 1; done

$(NATS_SERVER):
	GOFLAGS= GOBIN=$(abspath $(dir $(NATS_SERVER))) $(GO) install github.com/nats-io/nats-server/v2@v2.15.2

vet:
	$(GO) vet $(PKGS) roster.dev/bench/...
	@unformatted=$$(gofmt -l pkg services proto bench deploy | grep -v '\.pb\.go$$' || true); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

## tools: buf and protoc-gen-go at the versions pinned in proto/tools/go.mod
tools: $(BIN)/buf $(BIN)/protoc-gen-go
$(BIN)/buf $(BIN)/protoc-gen-go: proto/tools/go.mod
	cd proto/tools && GOWORK=off $(GO) build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf google.golang.org/protobuf/cmd/protoc-gen-go

## proto: regenerate the Go code of proto/ (committed)
proto: tools
	cd proto && $(BIN)/buf lint && $(BIN)/buf generate

## proto-check: lint, fail when generated code differs from what is
## committed, and check for breaking changes against the previous commit
proto-check: proto
	@git diff --exit-code -- proto || { echo "generated code differs from the committed code: run make proto and commit"; exit 1; }
	@if git rev-parse -q --verify HEAD~1:proto/buf.yaml >/dev/null; then \
	  cd proto && $(BIN)/buf breaking --against '../.git#ref=HEAD~1,subdir=proto'; \
	else echo "buf breaking: no previous commit with proto/buf.yaml; skipped"; fi

clean:
	rm -rf $(BIN)
