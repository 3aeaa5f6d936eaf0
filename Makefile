# linkraft: the two set-up commands are `make run` and `make test`.
GO          ?= go
BIN         := bin/linkraft
CONFIG      ?= cluster.yaml
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages that own goroutines run under the race detector in `make test`.
RACE_PKGS   := ./raftmux/... ./raftstore/... ./node/... ./router/... ./shardrpc/...

.PHONY: all build run test test-unit test-race lint fmt bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/linkraft

## run: start the whole cluster of $(CONFIG) on this machine (Ctrl-C stops it).
run: build
	./$(BIN) up --config $(CONFIG)

## test: lint, every test (unit, in-process clusters, real processes), then the race detector.
test: lint test-unit test-race

test-unit: build
	LINKRAFT_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 12m ./...

test-race:
	$(GO) test -race -count=1 -timeout 12m $(RACE_PKGS)

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./raftstore/...

clean:
	rm -rf bin data
