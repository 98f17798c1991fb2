#!/usr/bin/env bash
# ds-deploy vs the kubectl it replaces: time to Ready, whole process, same run, same cluster.
#   bench/ds-deploy.sh [ROUNDS]
# Each round deploys the same bundle (the testbed's PostgreSQL and Redis images, the example
# DataStorage image, NodePorts picked by the API server, no resource requests, the example
# migrations) into two fresh namespaces, both in the order the bundle needs (DataStorage only
# after the migrations):
#   - `ds-deploy up`;
#   - what upstream does by hand: `kubectl apply -f` of `ds-deploy render` without DataStorage's
#     Deployment, `kubectl wait` for PostgreSQL, `kubectl port-forward` + `migrate up` (the same
#     migrations, the same library), `kubectl apply -f` of DataStorage's Deployment, `kubectl
#     wait` for every Deployment.
# Who goes first alternates. Then `ds-deploy up` again on the deployed bundle gives the no-op time.
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
MIGRATIONS="$ROOT/examples/migrations"
run_ds() { "$DS" up -N "$1" "${common[@]}" --migrations-dir "$MIGRATIONS" -q >/dev/null; }
run_kubectl() {
  local ns=$1 pf port
  "$DS" render -N "$ns" "${common[@]}" --show-secrets >"$tmp/$ns.yaml"
  # Split off DataStorage's Deployment: it goes in after the migrations.
  awk -v rest="$tmp/$ns.rest.yaml" -v ds="$tmp/$ns.ds.yaml" '
    /^---$/ { if (doc != "") print doc > ((doc ~ /kind: Deployment/ && doc ~ /\n  name: datastorage\n/) ? ds : rest); doc = $0; next }
    { doc = doc "\n" $0 }
    END { print doc > ((doc ~ /kind: Deployment/ && doc ~ /\n  name: datastorage\n/) ? ds : rest) }' "$tmp/$ns.yaml"
  kubectl apply -f "$tmp/$ns.rest.yaml" >/dev/null
  kubectl -n "$ns" wait --for=condition=Available --timeout=300s deployment/postgresql >/dev/null
  kubectl -n "$ns" port-forward deployment/postgresql :5432 >"$tmp/$ns.pf" 2>&1 &
  pf=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$tmp/$ns.pf" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  "$ROOT/target/bin/migrate" --ledger goose --dir "$MIGRATIONS" -q \
    --database-url "postgres://slm_user:test_password@127.0.0.1:$port/action_history" up >/dev/null
  kill "$pf"; wait "$pf" 2>/dev/null || true
  kubectl apply -f "$tmp/$ns.ds.yaml" >/dev/null
  kubectl -n "$ns" wait --for=condition=Available --timeout=300s \
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
echo "ds-deploy bench: the bundle to Ready (migrations before DataStorage on both sides), $ROUNDS rounds, medians"
printf '  %-56s %9s ms\n' "ds-deploy up" "$(ms "$d")"
printf '  %-56s %9s ms\n' "kubectl apply/wait, port-forward + migrate, apply/wait" "$(ms "$k")"
printf '  %-56s %9s ms\n' "ds-deploy up again, nothing to do (5 calls)" "$(ms "$n")"
echo "  ratio ds-deploy/kubectl: $(ratio "$d" "$k") (target <= 1.0)"
echo "  ds-deploy overhead over kubectl: $(ms $((d - k))) ms (target <= 1000 ms)"
