#!/usr/bin/env bash
# ds-deploy vs the kubectl it replaces: time to Ready, whole process, same run, same cluster.
#   bench/ds-deploy.sh [ROUNDS]
# Each round deploys the same bundle (the testbed's PostgreSQL and Redis images, the example
# DataStorage image, NodePorts picked by the API server, no resource requests) into two fresh
# namespaces: once with `ds-deploy up`, once with `kubectl apply -f <ds-deploy render>` followed
# by `kubectl wait --for=condition=Available` on the three Deployments. Migrations run on neither
# side (--skip-migrations), so both wait for exactly the same pods. Who goes first alternates.
# Then `ds-deploy up` again on the deployed bundle gives the no-op time.
# Medians; targets: ratio ds-deploy/kubectl <= 1.0, overhead (difference) <= 1 s.
# Needs the testbed (its Kubernetes and images) and builds the example image if it is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${1:-3}
ENV_FILE=${E2E_TESTBED_ENV:-$ROOT/target/testbed/env}
[ -f "$ENV_FILE" ] || { echo "bench/ds-deploy.sh: no testbed env file ($ENV_FILE); run make testbed-up" >&2; exit 2; }
get() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1; }
export KUBECONFIG=$(get E2E_KUBECONFIG)
PG=$(get E2E_POSTGRES_IMAGE); REDIS=$(get E2E_REDIS_IMAGE); BASE=$(get E2E_BASE_IMAGE)
[ -n "$KUBECONFIG" ] && [ -n "$PG" ] || { echo "bench/ds-deploy.sh: the testbed's Kubernetes is not up" >&2; exit 2; }
need_release_tools
DS="$ROOT/target/bin/ds-deploy"
IMAGE=localhost/datastorage-example:bench
docker image inspect "$IMAGE" >/dev/null 2>&1 || make -s -C "$ROOT" example-images DS_IMAGE="$IMAGE" EXAMPLE_BASE_IMAGE="$BASE" >/dev/null
tmp=$(mktemp -d)
nss=()
cleanup() {
  for n in "${nss[@]}"; do "$DS" down -N "$n" --delete-namespace -q >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

common=(--image "$IMAGE" --postgres-image "$PG" --redis-image "$REDIS" --resources none
        --node-port 0 --metrics-node-port 0 --health-node-port 0 --postgres-node-port 0)
run_ds() { "$DS" up -N "$1" "${common[@]}" --skip-migrations -q >/dev/null; }
run_kubectl() {
  "$DS" render -N "$1" "${common[@]}" --show-secrets >"$tmp/$1.yaml"
  kubectl apply -f "$tmp/$1.yaml" >/dev/null
  kubectl -n "$1" wait --for=condition=Available --timeout=300s \
    deployment/postgresql deployment/redis deployment/datastorage >/dev/null
}
timed() { local f=$1; shift; local t0 t1; t0=$(ns_now); "$@"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/$f"; }

for r in $(seq "$ROUNDS"); do
  a="bench-dsd-$$-a$r"; b="bench-dsd-$$-k$r"; nss+=("$a" "$b")
  if [ $((r % 2)) = 1 ]; then
    timed ds run_ds "$a"; timed kubectl run_kubectl "$b"
  else
    timed kubectl run_kubectl "$b"; timed ds run_ds "$a"
  fi
  if [ "$r" = 1 ]; then
    for _ in 1 2 3 4 5; do timed noop run_ds "$a"; done
  fi
  "$DS" down -N "$a" --delete-namespace -q >/dev/null
  "$DS" down -N "$b" --delete-namespace -q >/dev/null 2>&1 || kubectl delete namespace "$b" --wait >/dev/null
done

d=$(median "$tmp/ds"); k=$(median "$tmp/kubectl"); n=$(median "$tmp/noop")
echo "ds-deploy bench: the bundle to Ready (no migrations on either side), $ROUNDS rounds, medians"
printf '  %-56s %9s ms\n' "ds-deploy up" "$(ms "$d")"
printf '  %-56s %9s ms\n' "kubectl apply -f <render> + kubectl wait Available" "$(ms "$k")"
printf '  %-56s %9s ms\n' "ds-deploy up again, nothing to do (5 calls)" "$(ms "$n")"
echo "  ratio ds-deploy/kubectl: $(ratio "$d" "$k") (target <= 1.0)"
echo "  ds-deploy overhead over kubectl: $(ms $((d - k))) ms (target <= 1000 ms)"
