# Build, test and lint the Telegraf Kafka -> CnosDB plugins.
#   make demo    the whole pipeline: Kafka, CnosDB, stock Telegraf, both plugins
#   make build   binaries in bin/ (BIN=DIR for another directory)
#   make deb     the Debian package in dist/
#   make test    every check and test (what CI runs)
#   make lint    gofmt, go vet, golangci-lint
#   make bench   go test benchmarks

SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -ec
GO      ?= go
# The one version of the package and of both binaries (-version); make VERSION=…
# overrides it for a build.
VERSION := $(shell cat VERSION)
MODULE  := github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb
LDFLAGS := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
GOLANGCI_LINT_VERSION := v2.15.0
TOOLS   := $(CURDIR)/.tools
TEST_TIMEOUT ?= 25m

BIN     ?= bin
BINARIES := $(BIN)/telegraf-cnosdb $(BIN)/telegraf-kafka-consumer

DEMO_ARGS ?=

.PHONY: all build bench-e2e deb deps demo test unit lint fmt-check vet golangci-lint bench clean

all: build

build: $(BINARIES)

$(BIN)/%: FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

FORCE:

# The one command that checks everything; .ci/run calls it.
test: lint unit

# The whole pipeline on this machine until Ctrl-C (DEMO_ARGS="-duration 1m -rate 1000";
# -duration counts from when data flows). Ctrl-C, once or twice, ends it with its
# summary and status 0. Built, not go run: go run exits 1 on a Ctrl-C the demo handled.
demo: deps build
	$(GO) build -o $(TOOLS)/demo ./tools/demo
	$(TOOLS)/demo -bin $(BIN) $(DEMO_ARGS)

# End-to-end benchmark: stock Telegraf as CnosDB's article sets it (A-article) and as an
# expert would (A-tuned) against the pair with its defaults (B), alternating, into a
# sink that charges what CnosDB charges (or CNOSDB_URL); results in
# bench-results/<timestamp>/. BENCH_N=200000 for fewer messages (default 1000000),
# BENCH_ARGS="-rounds 1 -workload sensor" for a short run, "-ceilings" for the input
# alone and the ceilings, "-sink count-only" for a sink that charges nothing.
BENCH_N ?=
BENCH_ARGS ?=
bench-e2e: deps build
	$(GO) run ./tools/bench -bin $(BIN) $(if $(BENCH_N),-n $(BENCH_N)) $(BENCH_ARGS)

# dist/telegraf-kafka-cnosdb_<version>_amd64.deb
deb: build
	$(GO) run ./packaging/mkdeb -version $(VERSION) -bin $(BIN) -out dist

# What the tests need beyond Go: Java and Maven for the Kafka broker, kcat as an
# independent Kafka client. Installs only what is missing (Debian packages).
deps:
	bash scripts/install-deps.sh

# Tests only, with the race detector; the last line sums up passed, failed and skipped.
unit: deps build
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -json ./... | $(GO) run ./tools/testsummary

lint: fmt-check vet golangci-lint

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS)/golangci-lint $@

golangci-lint: $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)
	$< run ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin dist
