# Fabric's build. `make test` is what CI runs.
GO        ?= go
STATICCHECK_VERSION ?= v0.8.2
HELM_VERSION ?= v3.22.0
TOOLS     := $(CURDIR)/bin

.PHONY: test unit race lint fmt-check tidy-check vet staticcheck bench fuzz chaos build dev cluster gen ts-test asyncapi-check web web-test browser-test

## test: every check and every test, with the race detector
test: lint asyncapi-check race fuzz-short ts-test web-test browser-test

## race: all tests with the race detector; the tools they need must be there
race: tools
	FABRIC_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout 15m ./...

.PHONY: tools
## tools: the tools tests run, by version into ./bin: helm (deploy/helm's chart test)
tools:
	GOBIN=$(TOOLS) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

## ts-test: the TypeScript client's typecheck and tests (against a real fabric dev)
ts-test:
	cd clients/typescript && npm ci && npm run typecheck && npm test

## web: rebuild the demo page (web/dist, which the binary embeds) from web/src and the TypeScript client
web:
	cd web && npm ci && npm run build

## web-test: the demo page's typecheck, and web/dist is byte-for-byte what a fresh build writes
web-test:
	cd web && npm ci && npm run typecheck && node --test test/

## browser-test: the demo page in Debian's Chromium (installed when missing), driven by playwright-core
browser-test:
	e2e/browser/install-chromium.sh
	cd e2e/browser && npm ci && npm test

## asyncapi-check: validate docs/asyncapi.json with the official AsyncAPI parser (@asyncapi/parser)
asyncapi-check:
	cd tools/asyncapi-check && npm ci && node check.mjs ../../docs/asyncapi.json

## unit: all tests, quickly, without the race detector
unit:
	$(GO) test -count=1 ./...

## lint: gofmt, go vet, staticcheck, and go mod tidy leaves nothing to change
lint: fmt-check vet staticcheck tidy-check

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Tools are installed by version into ./bin, so every machine runs the same.
staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(TOOLS)/staticcheck ./...

tidy-check:
	@cp go.mod /tmp/fabric-go.mod.bak; cp go.sum /tmp/fabric-go.sum.bak; \
	$(GO) mod tidy; \
	if ! cmp -s go.mod /tmp/fabric-go.mod.bak || ! cmp -s go.sum /tmp/fabric-go.sum.bak; then \
		echo "go mod tidy changes go.mod/go.sum: run it and commit"; \
		cp /tmp/fabric-go.mod.bak go.mod; cp /tmp/fabric-go.sum.bak go.sum; exit 1; fi

## bench: the Go benchmarks, then `fabric bench` at full size (BENCH_OUT: where the JSON reports go)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(MAKE) bench-load

BENCH_OUT ?= bench-results

.PHONY: bench-load
## bench-load: `fabric bench` idle (10,000 connections), latency, storm, throughput, resume (1,000 clients, a 100ms backoff cap) and tracing, core and durable; tables on stdout, JSON in $(BENCH_OUT)/
bench-load: build
	mkdir -p $(BENCH_OUT)
	for mode in core durable; do \
		flags=$$([ $$mode = durable ] && echo --durable); \
		bin/fabric bench latency $$flags --json $(BENCH_OUT)/latency-$$mode.json || exit 1; \
		bin/fabric bench storm $$flags --json $(BENCH_OUT)/storm-$$mode.json || exit 1; \
		bin/fabric bench idle $$flags --json $(BENCH_OUT)/idle-$$mode.json || exit 1; \
		bin/fabric bench throughput $$flags --json $(BENCH_OUT)/throughput-$$mode.json || exit 1; \
		bin/fabric bench resume $$flags --backoff 100ms --json $(BENCH_OUT)/resume-$$mode.json || exit 1; \
	done
	bin/fabric bench tracing --json $(BENCH_OUT)/tracing-core.json

## fuzz: each fuzz target for FUZZTIME (20s); fuzz-short, in make test, for 5s each
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeClientFrame -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz FuzzDecodeHello -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz FuzzTypeNameToSubject -fuzztime $(FUZZTIME) ./subjects
	$(GO) test -run '^$$' -fuzz FuzzJWT -fuzztime $(FUZZTIME) ./auth
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME) ./internal/wsframe

.PHONY: fuzz-short
fuzz-short:
	$(MAKE) fuzz FUZZTIME=5s

## chaos: the cluster chaos test for minutes, outside CI (FABRIC_CHAOS_DURATION, FABRIC_CHAOS_SEED)
chaos:
	$(GO) test -tags chaos -race -count=1 -timeout 60m -run TestChaos -v ./internal/cluster

## gen: regenerate generated files (the TypeScript code catalogue and demo route map, the AsyncAPI document)
gen:
	$(GO) run ./cmd/fabric gen ts-codes --out clients/typescript/src/codes.ts
	$(GO) run ./cmd/fabric gen ts --out clients/typescript/src/demo-routes.ts
	$(GO) run ./cmd/fabric gen asyncapi --out docs/asyncapi.json

## build: the fabric binary
build:
	$(GO) build -o bin/fabric ./cmd/fabric

## dev: run everything in one process
dev:
	$(GO) run ./cmd/fabric dev

## cluster: 3 NATS nodes, 2 gateways and 2 workers as processes on loopback, no Docker (CLUSTER_ARGS="--workers 4 --durable")
cluster:
	$(GO) run ./cmd/fabric cluster $(CLUSTER_ARGS)
