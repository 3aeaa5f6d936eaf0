# linkraft: the two set-up commands are `make run` and `make test`.
GO          ?= go
BIN         := bin/linkraft
# The node binary with the disk fault hook (build tag faultinject), for the
# disk scenarios of robust/; never deployed.
FAULT_BIN   := bin/linkraft-faultinject
CONFIG      ?= cluster.yaml
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages that own goroutines run under the race detector in `make test`.
RACE_PKGS   := ./raftmux/... ./raftstore/... ./node/... ./router/... ./shardrpc/... ./robust/... ./faultproxy/... ./diskfault/... ./history/...

.PHONY: all build build-faultinject run test test-unit test-race test-docker e2e-docker soak lint fmt bench bench-writes bench-memory bench-go clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/linkraft

## build-faultinject: the test-only binary whose nodes can fail or stall their disk
build-faultinject:
	CGO_ENABLED=0 $(GO) build -tags faultinject -o $(FAULT_BIN) ./cmd/linkraft

## run: start the whole cluster of $(CONFIG) on this machine (Ctrl-C stops it).
run: build
	./$(BIN) up --config $(CONFIG)

## test: lint, every test (unit, in-process clusters, real processes), the race
## detector, and the container tests when a Docker engine answers.
test: lint test-unit test-race test-docker

test-unit: build build-faultinject
	LINKRAFT_BIN=$(CURDIR)/$(BIN) LINKRAFT_FAULTINJECT_BIN=$(CURDIR)/$(FAULT_BIN) $(GO) test -count=1 -timeout 12m ./...

test-race:
	$(GO) test -race -count=1 -timeout 12m $(RACE_PKGS)

# The container layer runs only where a Docker engine answers, and says so when it skips.
test-docker:
	@if docker info >/dev/null 2>&1; then $(MAKE) e2e-docker; \
	  else echo "test-docker: no Docker engine answers; skipping the container tests"; fi

## e2e-docker: 3 nodes + 2 routers in containers, real partitions, kills and pauses.
e2e-docker:
	$(GO) test -tags docker -count=1 -timeout 10m -v ./e2e/docker/

## soak: every robustness scenario in a loop, fresh seeds, for DURATION (default 10m);
## a failed round leaves its history and porcupine's HTML in soak-report/<scenario>-<seed>/.
DURATION ?= 10m
soak: build build-faultinject
	LINKRAFT_BIN=$(CURDIR)/$(BIN) LINKRAFT_FAULTINJECT_BIN=$(CURDIR)/$(FAULT_BIN) bash robust/soak.sh $(DURATION)

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags faultinject ./cmd/linkraft/
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: nginx baseline and a local cluster under the load harness, one table (about 2 minutes)
bench: build
	LINKRAFT_BIN=$(CURDIR)/$(BIN) bash scripts/bench.sh

## bench-writes: shorten at c=1 and c=256 with node profiles, then disk per link after 1,000,000 creates (about 10 minutes)
bench-writes: build
	LINKRAFT_BIN=$(CURDIR)/$(BIN) bash scripts/bench-writes.sh

## bench-memory: RSS and heap of a live router holding 1,000,000 cached links (MEM_LINKS; about 10 minutes)
bench-memory: build
	LINKRAFT_BIN=$(CURDIR)/$(BIN) bash scripts/bench-memory.sh

## bench-go: the Go benchmarks (raftstore, router, codes), briefly
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 1s ./raftstore/ ./router/ ./shortcode/ ./ring/

clean:
	rm -rf bin data
