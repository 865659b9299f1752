# atp-server: `make` lists the targets. Each target is one command a newcomer
# or CI can run as it is.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X main.version=$(VERSION)

# The tests start a throwaway PostgreSQL from initdb/postgres on PATH; Debian
# installs them under /usr/lib/postgresql/<version>/bin, outside PATH.
PG_BIN  ?= $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin)))
TEST_PATH := $(if $(PG_BIN),$(PG_BIN):)$(PATH)

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "; print "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## serve on :3333 with the embedded database in ./atp-data (ARGS="--log-level debug" adds flags)
	$(GO) run ./cmd/atp-server $(ARGS)

.PHONY: build
build: ## build a static binary into bin/atp-server
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/atp-server ./cmd/atp-server

.PHONY: test
test: ## run the whole suite: Go tests with the race detector (needs PostgreSQL server binaries and Chromium), then the monday conformance suite
	$(GO) mod download
	PATH="$(TEST_PATH)" CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory conformance

.PHONY: conformance
conformance: build ## drive the published monday npm client (0.19.20) against a freshly started server (needs Node 20+, npm)
	cd conformance/monday && npm ci --no-audit --no-fund && ATP_SERVER_BIN=../../bin/atp-server npm test

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './.cache/*' -not -path './.tools/*')); \
	if [ -n "$$files" ]; then echo "gofmt -w these files:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

.PHONY: bench
bench: ## run the Go benchmarks (see BENCHMARKS.md)
	PATH="$(TEST_PATH)" $(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-monday
bench-monday: build ## monday side by side with the reference npm server, and capacity with a Go load generator (see bench/README.md)
	ATP_SERVER_BIN=bin/atp-server bench/run.sh

.PHONY: migrate
migrate: ## apply the database migrations (DATABASE_URL, else the embedded database) and exit
	$(GO) run ./cmd/atp-server migrate up

.PHONY: docker
docker: ## build the container image atp-server (needs a Docker engine)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t atp-server .

.PHONY: clean
clean: ## remove build output (not ./atp-data)
	rm -rf bin
