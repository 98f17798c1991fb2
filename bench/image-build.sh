#!/usr/bin/env bash
# image-build vs the docker CLI (classic builder, DOCKER_BUILDKIT=0), same engine, same run.
#   bench/image-build.sh [ROUNDS]
# Like the upstream E2E set-up, three images are built from ONE big context (the project root):
# a 100+ MB context whose .dockerignore excludes all but ~1 MB of sources. Each Dockerfile starts
# from the local base image ($E2E_BASE_IMAGE), copies the sources, runs a CPU step (~1 s) and a
# waiting step (sleep 1, standing in for downloads).
#   single: one image, image-build vs `docker build`
#   three:  `image-build --jobs 3` with three --image specs vs three `docker build` one after
#           another (what a Makefile calling the CLI does)
# Fairness: --no-cache on both sides, so every step runs every time; same contexts, same
# Dockerfiles, same engine. image-build also writes its 7 labels (one extra LABEL step); the
# CLI runs without labels, as upstream does (the main ratios), and, for the single build, also
# with the same labels (Docker then adds one step per label). Rounds alternate the order.
# Whole-process wall time per build set; medians over rounds; ratio = image-build / CLI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${1:-5}
ENV_FILE=${E2E_TESTBED_ENV:-$ROOT/target/testbed/env}
[ -f "$ENV_FILE" ] && { set -a; . "$ENV_FILE"; set +a; }
: "${DOCKER_HOST:?DOCKER_HOST not set (run make testbed-up)}"
BASE=${E2E_BASE_IMAGE:?E2E_BASE_IMAGE not set (run make testbed-up)}
if [ -n "${IMAGE_BUILD_BIN:-}" ]; then IB=$IMAGE_BUILD_BIN; else need_release_tools; IB="$ROOT/target/bin/image-build"; fi
export DOCKER_BUILDKIT=0 E2E_ENGINE_HOST=$DOCKER_HOST
tmp=$(mktemp -d)
tag="ibbench-$$"
cleanup() {
  "$IB" prune --consumer "$tag" -q >/dev/null 2>&1 || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^localhost/$tag" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The context: ~1 MB of sources kept, ~110 MB of build output and data excluded.
ctx=$tmp/ctx
mkdir -p "$ctx/src" "$ctx/data" "$ctx/bin" "$ctx/docker"
for i in $(seq 200); do head -c 5000 /dev/urandom | base64 >"$ctx/src/f$i.go"; done
for i in $(seq 20); do head -c 5M /dev/urandom >"$ctx/data/blob$i.bin"; done
head -c 10M /dev/urandom >"$ctx/bin/app"
printf 'data\nbin\n**/*.tmp\n.git\n' >"$ctx/.dockerignore"
for s in 1 2 3; do
  cat >"$ctx/docker/svc$s.Dockerfile" <<EOF
FROM $BASE
COPY src /src
RUN i=0; while [ \$i -lt 300000 ]; do i=\$((i+1)); done; echo svc$s > /svc
RUN sleep 1
EOF
done
size=$(du -sm "$ctx" | cut -f1)

single_ib()  { "$IB" -q --no-cache --consumer "$tag" -t "localhost/$tag-s:ib" -f "$ctx/docker/svc1.Dockerfile" -c "$ctx" >/dev/null; }
n=0
# A new tag per CLI build, so cleanup finds every image it made (no dangling leftovers).
single_cli() { n=$((n+1)); docker build -q --no-cache -t "localhost/$tag-s:cli$n" -f "$ctx/docker/svc1.Dockerfile" "$ctx" >/dev/null; }
# The CLI asked for the same 7 labels image-build writes (Docker adds one step per label).
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
single_cli_labels() {
  n=$((n+1)); docker build -q --no-cache -t "localhost/$tag-s:cli-labels$n" -f "$ctx/docker/svc1.Dockerfile" \
    --label io.kubernaut.e2e.tool=image-build --label "io.kubernaut.e2e.consumer=$tag" \
    --label "io.kubernaut.e2e.created=$now" --label io.kubernaut.e2e.git-commit=unknown \
    --label "org.opencontainers.image.created=$now" --label org.opencontainers.image.revision=unknown \
    --label "org.opencontainers.image.source=file://$ctx" "$ctx" >/dev/null
}
three_ib() {
  "$IB" -q --no-cache --jobs 3 --consumer "$tag" \
    -i "tag=localhost/$tag-1:ib,context=$ctx,file=$ctx/docker/svc1.Dockerfile" \
    -i "tag=localhost/$tag-2:ib,context=$ctx,file=$ctx/docker/svc2.Dockerfile" \
    -i "tag=localhost/$tag-3:ib,context=$ctx,file=$ctx/docker/svc3.Dockerfile" >/dev/null
}
three_cli() {
  for s in 1 2 3; do
    n=$((n+1)); docker build -q --no-cache -t "localhost/$tag-$s:cli$n" -f "$ctx/docker/svc$s.Dockerfile" "$ctx" >/dev/null
  done
}
timed() { local t0 t1; t0=$(ns_now); "$1"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/$1"; }

single_ib; single_cli # warm-up (page cache, base image layers)
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then timed single_ib; timed single_cli; timed single_cli_labels; timed three_ib; timed three_cli
  else timed single_cli_labels; timed single_cli; timed single_ib; timed three_cli; timed three_ib; fi
done

si=$(median "$tmp/single_ib"); sc=$(median "$tmp/single_cli"); sl=$(median "$tmp/single_cli_labels")
ti=$(median "$tmp/three_ib"); tc=$(median "$tmp/three_cli")
echo "image-build bench: $ROUNDS rounds, context ${size} MB (~1 MB sent after .dockerignore), --no-cache, engine $(docker version -f '{{.Server.Version}}') at $DOCKER_HOST"
printf '  %-52s %10s ms\n' "single: image-build" "$(ms "$si")"
printf '  %-52s %10s ms\n' "single: docker build (DOCKER_BUILDKIT=0)" "$(ms "$sc")"
printf '  %-52s %10s ms\n' "single: docker build + the same 7 --label flags" "$(ms "$sl")"
printf '  %-52s %10s ms\n' "three:  image-build --jobs 3" "$(ms "$ti")"
printf '  %-52s %10s ms\n' "three:  docker build x3, one after another" "$(ms "$tc")"
echo "  ratio single image-build/docker:        $(ratio "$si" "$sc")   (target <= 1.05)"
echo "  ratio single image-build/docker+labels: $(ratio "$si" "$sl")"
echo "  ratio three  image-build -j3/docker x3: $(ratio "$ti" "$tc")   (target <= 0.75)"
