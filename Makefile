# kubernaut e2e tools. `make` (or `make help`) lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Where `make tools` puts the release binaries.
BIN_DIR ?= target/bin
TOOLS := tag-gen migrate image-build kind-load ds-deploy
CARGO ?= cargo

.PHONY: help tools build test fmt lint man bench

help: ## List the targets with a one-line description each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.%-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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

man: tools ## Man pages for every tool into target/man/, from the release binaries `make tools` keeps in $(BIN_DIR)
	@for t in $(TOOLS); do $(BIN_DIR)/$$t man --out-dir target/man || exit 1; done

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

# The E2E pipeline (scripts/e2e/pipeline), one service at a time: E2E_SERVICE names its definition
# e2e/$(E2E_SERVICE).env. Each phase is a target of its own and can be re-run alone; a run's state
# lives in target/e2e/$(E2E_SERVICE)/. See README "The E2E pipeline".
E2E_SERVICE ?= aianalysis
export E2E_SERVICE
# A registry for the images (host:port[/path]): pushed there, pulled by the cluster, no load:
#   make e2e-up E2E_PROVIDER=existing IMAGE_REGISTRY=localhost:5000
# IMAGE_TAG (or KUBERNAUT_CI_ARTIFACT_TAG): images that exist already under that tag, not built.
export IMAGE_REGISTRY IMAGE_TAG KUBERNAUT_CI_ARTIFACT_TAG
E2E_PHASES := tags images cluster load deploy test logs down doctor
.PHONY: $(addprefix e2e-,$(E2E_PHASES)) e2e-up demo

e2e-tags: tools ## Phase: tag-gen once (E2E_TAGS=content: digests of the staged contexts; random); references into target/e2e/$(E2E_SERVICE)/tags.env (under IMAGE_REGISTRY if set)
	@scripts/e2e/pipeline tags
e2e-images: tools ## Phase: build every image in parallel (image-build); IMAGE_REGISTRY: and push; IMAGE_TAG: only check they exist
	@scripts/e2e/pipeline images
e2e-cluster: tools ## Phase: create or reuse the Kind cluster (E2E_PROVIDER=existing: check the cluster answers)
	@scripts/e2e/pipeline cluster
e2e-load: tools ## Phase: kind-load every image into the cluster's nodes, one call (existing or IMAGE_REGISTRY: nothing)
	@scripts/e2e/pipeline load
e2e-deploy: tools ## Phase: ds-deploy up (bundle + migrations), then the service's extra manifests
	@scripts/e2e/pipeline deploy
e2e-up: tools ## tags, images, cluster, load, deploy; ends with the phase table
	@scripts/e2e/pipeline up
e2e-test: tools ## Phase: the suite (E2E_TEST_CMD) against the deployed stack
	@scripts/e2e/pipeline test
e2e-logs: tools ## Phase: diagnosis, pod logs, events and cluster logs into a timestamped directory
	@scripts/e2e/pipeline logs
e2e-down: tools ## Phase: delete the cluster (existing: the namespace), prune the run's images
	@scripts/e2e/pipeline down
e2e-doctor: ## Check engine, kind, kubectl, disk space and host ports, one line each with the fix
	@scripts/e2e/pipeline doctor
test-e2e-%: tools ## up, test, logs on failure, down unless KEEP_CLUSTER=1 (e.g. make test-e2e-aianalysis)
	@E2E_SERVICE=$* scripts/e2e/pipeline run

demo: tools ## The main job: testbed up if needed, then test-e2e-aianalysis on a Kind-like cluster
	@scripts/e2e/demo
