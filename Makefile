# kubernaut e2e tools. `make` (or `make help`) lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Where `make tools` puts the release binaries.
BIN_DIR ?= target/bin
TOOLS := tag-gen migrate image-build kind-load
CARGO ?= cargo

.PHONY: help tools build test fmt lint man bench

help: ## List the targets with a one-line description each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

tools: ## Release build of every tool into target/bin/ (BIN_DIR=... to change)
	$(CARGO) build --release --workspace --bins
	@mkdir -p $(BIN_DIR)
	@for t in $(TOOLS); do install -m 0755 $${CARGO_TARGET_DIR:-target}/release/$$t $(BIN_DIR)/$$t; echo "$(BIN_DIR)/$$t"; done

build: ## Debug build of the whole workspace (libraries, binaries, tests)
	$(CARGO) build --workspace --all-targets

test: ## Run every test (unit, CLI and integration; E2E_REQUIRE=1 makes a missing testbed service fail)
	$(CARGO) nextest run --workspace --no-fail-fast

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

man: ## Generate man pages for every tool into target/man/
	@for t in $(TOOLS); do $(CARGO) run --quiet -p $$t -- man --out-dir target/man || exit 1; done

bench: ## Run every benchmark under bench/ (each compares a tool with the CLI it replaces)
	@for b in bench/*.sh; do echo "== $$b"; $$b || exit 1; done

# The example DataStorage service's image (examples/datastorage, README "Example DataStorage
# service"). Variables DS_IMAGE, EXAMPLE_BASE_IMAGE, E2E_CONSUMER are read by the script.
.PHONY: example-images
example-images: ## Build the example DataStorage image; prints its reference last (DS_IMAGE=, EXAMPLE_BASE_IMAGE=, E2E_CONSUMER=)
	@CARGO="$(CARGO)" BIN_DIR="$(BIN_DIR)" examples/datastorage/build-image.sh

# Testbed: real Docker, Podman, containerd Kind nodes, Kubernetes 1.20, PostgreSQL, Redis.
# See README.md "Testbed". Needs root on Debian 12.
.PHONY: testbed-up testbed-down testbed-check

testbed-up: ## Install and start every testbed service; writes target/testbed/env (idempotent)
	scripts/testbed/up

testbed-down: ## Stop everything testbed-up started (by recorded pid / container id); keeps caches
	scripts/testbed/down

testbed-check: ## Verify each testbed service for real, one line per service
	scripts/testbed/check
