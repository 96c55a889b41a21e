# seatflow — see README.md. `make run` and `make test` install what they
# need (scripts/deps.sh) and work on a fresh machine.
GO      ?= go
GOFLAGS ?=
export CGO_ENABLED ?= 0

.PHONY: all build run test test-short bench fuzz lint deps clean

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build $(GOFLAGS) -o bin/seatflow ./cmd/seatflow
	$(GO) build $(GOFLAGS) -o bin/seatflow-chdb ./cmd/seatflow-chdb

## run: the whole product locally on embedded defaults
run: deps build
	./bin/seatflow dev

## test: every test, integration tests against the embedded broker and the
## local ClickHouse included (or real servers: SEATFLOW_TEST_KAFKA,
## SEATFLOW_TEST_CLICKHOUSE)
test: deps
	$(GO) vet ./...
	$(GO) test $(GOFLAGS) -count=1 -timeout 40m ./...

test-short:
	$(GO) test $(GOFLAGS) -short -count=1 ./...

## bench: Go benchmarks next to the code, then the suite in bench/ (core,
## memory, restart, end to end, the SQL way) -> bench/results.json and
## bench/chart.svg. Sizes: make bench BENCHFLAGS="-users 1000000 -events 1000000"
BENCHFLAGS ?=
bench: deps
	$(GO) test $(GOFLAGS) -run '^$$' -bench . -benchmem -benchtime 1x -timeout 60m ./localch/conformance/ ./pipeline/figures/
	$(GO) test $(GOFLAGS) -run '^$$' -bench DecodeApply -benchmem -benchtime 3000000x -cpu 1 ./pipeline/figures/
	$(GO) test $(GOFLAGS) -run '^$$' -bench Decode -benchmem -benchtime 400x -cpu 1 ./pipeline/fetch/
	$(GO) run ./bench $(BENCHFLAGS)

## fuzz: the fuzz targets, each for FUZZTIME (not part of make test):
## decode and apply against the reference model, the event scanner, the
## record-batch decoder
FUZZTIME ?= 3m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeApply$$' -fuzztime $(FUZZTIME) ./pipeline/figures/
	$(GO) test -run '^$$' -fuzz '^FuzzScan$$' -fuzztime $(FUZZTIME) ./pipeline/event/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./pipeline/fetch/

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@if command -v promtool >/dev/null; then promtool check rules deployments/prometheus/seatflow-rules.yml && promtool check config deployments/prometheus/prometheus.yml; fi

clean:
	rm -rf bin .seatflow
