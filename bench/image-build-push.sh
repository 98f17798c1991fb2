#!/usr/bin/env bash
# image-build --push vs `docker push`, same engine, same registry, same run.
#   bench/image-build-push.sh [ROUNDS] [SIZE_MB]
# Three images of SIZE_MB (default 100) each, one layer of mixed content (binaries from /usr,
# partly compressible like real images). Measured: pushing all three.
#   image-build: `image-build --push --skip-existing --jobs 3` (the images exist, so nothing is
#                built: the time is the pushes, concurrently, plus the process start)
#   CLI:         `docker push` of the same three, one after another (what a Makefile does)
# Fairness: each side pushes images of its own, with layer contents of its own, into fresh
# repositories, every round (a layer pushed once would only be mounted the next time); the
# images are built (untimed) before each round; rounds alternate the order. Whole-process wall
# time; medians over rounds; ratio = image-build / CLI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${1:-3}
SIZE_MB=${2:-100}
ENV_FILE=${E2E_TESTBED_ENV:-$ROOT/target/testbed/env}
[ -f "$ENV_FILE" ] && { set -a; . "$ENV_FILE"; set +a; }
: "${DOCKER_HOST:?DOCKER_HOST not set (run make testbed-up)}"
REG=${E2E_REGISTRY:?E2E_REGISTRY not set: the testbed registry is not up (run make testbed-up)}
if [ -n "${IMAGE_BUILD_BIN:-}" ]; then IB=$IMAGE_BUILD_BIN; else need_release_tools; IB="$ROOT/target/bin/image-build"; fi
export DOCKER_BUILDKIT=0 E2E_ENGINE_HOST=$DOCKER_HOST
tmp=$(mktemp -d)
id="pushbench-$$"
made=()
cleanup() {
  local r
  for r in "${made[@]}"; do docker rmi -f "$r" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Content: SIZE_MB per image from the machine's binaries (compressible about like image layers).
mkdir -p "$tmp/ctx"
find /usr/lib /usr/bin -type f -size +100k 2>/dev/null | head -n 2000 | xargs cat 2>/dev/null \
  | head -c "$((SIZE_MB * 3 * 1024 * 1024))" >"$tmp/pool" || true
[ "$(stat -c %s "$tmp/pool")" -ge $((SIZE_MB * 3 * 1024 * 1024)) ] || head -c "$((SIZE_MB * 3 * 1024 * 1024))" /dev/urandom >"$tmp/pool"
printf 'FROM scratch\nCOPY data /data\n' >"$tmp/ctx/Dockerfile"

# prepare SIDE ROUND: three images of new content for one side, in fresh repositories.
prepare() {
  local side=$1 round=$2 s ref
  for s in 1 2 3; do
    ref="$REG/$id-$side-r$round-$s:t"
    { head -c 64 /dev/urandom; dd if="$tmp/pool" bs=1M skip=$(( (s - 1) * SIZE_MB )) count="$SIZE_MB" status=none; } >"$tmp/ctx/data"
    docker build -q -t "$ref" "$tmp/ctx" >/dev/null
    made+=("$ref")
  done
}
refs() { local s; for s in 1 2 3; do echo "$REG/$id-$1-r$2-$s:t"; done; }

push_ib() {
  local args=() r
  for r in $(refs ib "$1"); do args+=(-i "tag=$r,context=$tmp/ctx"); done
  "$IB" -q --push --skip-existing --jobs 3 "${args[@]}" >/dev/null
}
push_cli() { local r; for r in $(refs cli "$1"); do docker push -q "$r" >/dev/null; done; }
unpush() {
  local repo=${1#*/} d
  repo=${repo%:*}
  d=$(curl -sfI --max-time 5 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/$repo/manifests/t" \
    | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p') || true
  [ -z "$d" ] || curl -sf -X DELETE --max-time 5 "http://$REG/v2/$repo/manifests/$d" >/dev/null || true
}
timed() { local name=$1 t0 t1; shift; t0=$(ns_now); "$@"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/$name"; }

for r in $(seq "$ROUNDS"); do
  prepare ib "$r"; prepare cli "$r"; sync
  if [ $((r % 2)) -eq 1 ]; then timed ib push_ib "$r"; timed cli push_cli "$r"
  else timed cli push_cli "$r"; timed ib push_ib "$r"; fi
  # This round's images go: locally, and their manifests in the registry (the blobs are
  # reclaimed by the garbage collection the testbed runs when it (re)starts the registry).
  for ref in $(refs ib "$r") $(refs cli "$r"); do docker rmi -f "$ref" >/dev/null 2>&1 || true; unpush "$ref"; done
  echo "  round $r: image-build $(ms "$(tail -n1 "$tmp/ib")") ms, docker push x3 $(ms "$(tail -n1 "$tmp/cli")") ms" >&2
done

mi=$(median "$tmp/ib"); mc=$(median "$tmp/cli")
echo "image-build push bench: $ROUNDS rounds, 3 images x ${SIZE_MB} MB, registry $REG, engine $(docker version -f '{{.Server.Version}}') at $DOCKER_HOST"
printf '  %-52s %10s ms\n' "image-build --push --jobs 3" "$(ms "$mi")"
printf '  %-52s %10s ms\n' "docker push x3, one after another" "$(ms "$mc")"
echo "  ratio image-build/docker push: $(ratio "$mi" "$mc")   (target <= 0.6)"
