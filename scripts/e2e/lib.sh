# The E2E pipeline's phases (sourced by scripts/e2e/pipeline). Each phase is a function that
# can run alone: it reads what earlier phases wrote into the run directory, and says what to run
# first when something is missing.

log() { printf '%s e2e[%s]: %s\n' "$(date -u +%H:%M:%S)" "${E2E_SERVICE:-?}" "$*" >&2; }
die() { local code=$1; shift; printf 'e2e[%s]: error: %s\n' "${E2E_SERVICE:-?}" "$*" >&2; exit "$code"; }

# The tools: release binaries from `make tools` (the Makefile builds them first).
BIN=${E2E_BIN_DIR:-$ROOT/target/bin}
tool() {
  local t=$1; shift
  [ -x "$BIN/$t" ] || die 2 "$BIN/$t is missing: run \`make tools\`"
  "$BIN/$t" "$@"
}

# e2e_load_service: the service's definition, then the defaults for what it leaves out.
e2e_load_service() {
  E2E_SERVICE=${E2E_SERVICE:-aianalysis}
  [[ "$E2E_SERVICE" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die 2 "E2E_SERVICE \`$E2E_SERVICE\`: lowercase letters, digits and - only"
  local def="$ROOT/e2e/$E2E_SERVICE.env"
  [ -f "$def" ] || die 2 "no definition for service $E2E_SERVICE: create $def (see e2e/aianalysis.env)"
  # The run directory first: the definition may place build contexts in it.
  E2E_RUN_DIR=${E2E_RUN_DIR:-$ROOT/target/e2e/$E2E_SERVICE}
  set -a
  # shellcheck disable=SC1090
  . "$def"
  set +a
  E2E_PROVIDER=${E2E_PROVIDER:-kind}
  case "$E2E_PROVIDER" in kind|existing) ;; *) die 2 "E2E_PROVIDER \`$E2E_PROVIDER\`: use kind or existing" ;; esac
  E2E_CONSUMER=${E2E_CONSUMER:-$E2E_SERVICE}
  E2E_CLUSTER=${E2E_CLUSTER:-$E2E_SERVICE-e2e}
  E2E_KIND_CONFIG=${E2E_KIND_CONFIG:-scripts/kind/$E2E_SERVICE.yaml}
  E2E_NAMESPACE=${E2E_NAMESPACE:-kubernaut-system}
  E2E_NODE_ADDRESS=${E2E_NODE_ADDRESS:-127.0.0.1}
  E2E_TEST_CMD=${E2E_TEST_CMD:-examples/suite/run}
  if [ "$E2E_PROVIDER" = kind ]; then
    KUBECONFIG_FILE=${E2E_CLUSTER_KUBECONFIG:-$HOME/.kube/$E2E_SERVICE-e2e-config}
  else
    [ -n "${E2E_KUBECONFIG:-}" ] || die 2 "E2E_PROVIDER=existing needs E2E_KUBECONFIG (the cluster's kubeconfig)"
    KUBECONFIG_FILE=$E2E_KUBECONFIG
  fi
  # One engine for the whole run: kind's provider and the tools' engine agree.
  if [ -n "${KIND_EXPERIMENTAL_PROVIDER:-}" ] && [ -z "${E2E_ENGINE:-}" ]; then
    export E2E_ENGINE=$KIND_EXPERIMENTAL_PROVIDER
  elif [ -n "${E2E_ENGINE:-}" ] && [ "$E2E_ENGINE" != auto ] && [ -z "${KIND_EXPERIMENTAL_PROVIDER:-}" ]; then
    export KIND_EXPERIMENTAL_PROVIDER=$E2E_ENGINE
  fi
  mkdir -p "$E2E_RUN_DIR"
  TAGS="$E2E_RUN_DIR/tags.env"
  ENDPOINTS="$E2E_RUN_DIR/endpoints.env"
  TIMINGS="$E2E_RUN_DIR/timings.tsv"
  export E2E_SERVICE E2E_PROVIDER E2E_CONSUMER E2E_CLUSTER E2E_NAMESPACE E2E_RUN_DIR
}

# timed NAME: runs one phase, prints and records how long it took and how it ended. The phase
# runs as its own process so that `set -e` holds inside it (a shell function called under `||`
# would run with errexit off).
timed() {
  local name=$1 t0 t1 rc=0
  log "== $name"
  t0=$(date +%s%N)
  "$ROOT/scripts/e2e/pipeline" "__$name" || rc=$?
  t1=$(date +%s%N)
  local secs
  secs=$(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.1f", n/1e9}')
  local status=ok
  [ "$rc" = 0 ] || status="failed($rc)"
  printf '%s\t%s\t%s\n' "$name" "$secs" "$status" >>"$TIMINGS"
  log "== $name: $status in ${secs}s"
  return "$rc"
}

# The image names of the service and their references (written by the tags phase).
need_tags() {
  [ -f "$TAGS" ] || die 2 "no image references for this run ($TAGS): run \`make e2e-tags E2E_SERVICE=$E2E_SERVICE\` first"
  set -a; . "$TAGS"; set +a
}
ref_of() { local v; v="$(echo "$1" | tr 'a-z-' 'A-Z_')_IMAGE"; printf '%s' "${!v:-}"; }

phase_tags() {
  [ -n "${E2E_IMAGES:-}" ] || die 2 "E2E_IMAGES is empty in e2e/$E2E_SERVICE.env"
  # shellcheck disable=SC2086
  tool tag-gen infra $E2E_IMAGES --consumer "$E2E_CONSUMER" --format env >"$TAGS.tmp"
  mv "$TAGS.tmp" "$TAGS"
  sed 's/^/  /' "$TAGS" >&2
}

phase_images() {
  need_tags
  if [ -n "${E2E_PREPARE_IMAGES:-}" ]; then
    log "preparing the build contexts: $E2E_PREPARE_IMAGES"
    bash -c "$E2E_PREPARE_IMAGES" >&2
  fi
  local args=() name spec var
  for name in $E2E_IMAGES; do
    var="E2E_BUILD_$(echo "$name" | tr 'a-z-' 'A-Z_')"
    spec=${!var:-}
    [ -n "$spec" ] || die 2 "$var is not set in e2e/$E2E_SERVICE.env (how to build image $name)"
    args+=(-i "tag=$(ref_of "$name"),$spec")
  done
  tool image-build --consumer "$E2E_CONSUMER" "${args[@]}" >/dev/null
}

kind_cluster_exists() { kind get clusters 2>/dev/null | grep -qx -- "$E2E_CLUSTER"; }

phase_cluster() {
  if [ "$E2E_PROVIDER" = existing ]; then
    kubectl --kubeconfig "$KUBECONFIG_FILE" get --raw /version >/dev/null \
      || die 1 "the cluster of $KUBECONFIG_FILE does not answer (E2E_PROVIDER=existing)"
    log "using the existing cluster of $KUBECONFIG_FILE"
    return
  fi
  command -v kind >/dev/null || die 2 "kind is not on PATH (on the testbed: PATH=\$PWD/scripts/testbed:\$PATH; see README)"
  mkdir -p "$(dirname "$KUBECONFIG_FILE")"
  if kind_cluster_exists; then
    log "reusing Kind cluster $E2E_CLUSTER"
  else
    [ -f "$E2E_KIND_CONFIG" ] || die 2 "Kind config $E2E_KIND_CONFIG does not exist"
    kind create cluster --name "$E2E_CLUSTER" --config "$E2E_KIND_CONFIG" \
      --kubeconfig "$KUBECONFIG_FILE" --wait "${E2E_KIND_WAIT:-120s}" >&2
  fi
  # The kubeconfig is written from `kind get kubeconfig`, as upstream does (mode 0600).
  (umask 077; kind get kubeconfig --name "$E2E_CLUSTER" >"$KUBECONFIG_FILE.tmp")
  mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
  log "kubeconfig: $KUBECONFIG_FILE"
}

phase_load() {
  need_tags
  if [ "$E2E_PROVIDER" = existing ]; then
    log "nothing to load: E2E_PROVIDER=existing (the cluster gets its images from its own engine or a registry)"
    return
  fi
  local refs=() name
  for name in $E2E_IMAGES; do refs+=("$(ref_of "$name")"); done
  # shellcheck disable=SC2206
  refs+=(${E2E_LOAD_EXTRA_IMAGES:-})
  tool kind-load --cluster "$E2E_CLUSTER" "${refs[@]}" >/dev/null
}

phase_deploy() {
  need_tags
  local ds_ref args json
  ds_ref=$(ref_of "${E2E_DS_IMAGE_NAME:-datastorage}")
  [ -n "$ds_ref" ] || die 2 "no reference for the DataStorage image (${E2E_DS_IMAGE_NAME:-datastorage}) in $TAGS"
  args=(up --kubeconfig "$KUBECONFIG_FILE" -N "$E2E_NAMESPACE" --image "$ds_ref"
        --ca-out "$E2E_RUN_DIR/ca.pem" --json)
  [ -n "${E2E_DS_VALUES:-}" ] && args+=(--values "$E2E_DS_VALUES")
  [ -n "${E2E_POSTGRES_IMAGE:-}" ] && args+=(--postgres-image "$E2E_POSTGRES_IMAGE")
  [ -n "${E2E_REDIS_IMAGE:-}" ] && args+=(--redis-image "$E2E_REDIS_IMAGE")
  json=$(tool ds-deploy "${args[@]}")
  printf '%s\n' "$json" >"$E2E_RUN_DIR/deploy.json"
  local m
  for m in ${E2E_MANIFESTS:-}; do
    log "applying $m"
    kubectl --kubeconfig "$KUBECONFIG_FILE" apply --server-side --field-manager=e2e -f "$m" >&2
  done
  write_endpoints "$json"
}

# write_endpoints JSON: where the suite reaches DataStorage. On Kind, through the host ports the
# cluster config maps the NodePorts to; on an existing cluster, the NodePorts at E2E_NODE_ADDRESS.
write_endpoints() {
  local np api health metrics host
  np() { printf '%s' "$1" | sed -n "s/.*\"node_ports\":{[^}]*\"$2\":\([0-9]*\).*/\1/p"; }
  api=$(np "$1" api); health=$(np "$1" health); metrics=$(np "$1" metrics)
  host=$E2E_NODE_ADDRESS
  if [ "$E2E_PROVIDER" = kind ]; then
    host=localhost
    api=${E2E_DS_API_HOST_PORT:-$api}
    health=${E2E_DS_HEALTH_HOST_PORT:-$health}
    metrics=${E2E_DS_METRICS_HOST_PORT:-}
  fi
  {
    echo "E2E_DS_API_URL=https://$host:$api"
    echo "E2E_DS_HEALTH_URL=http://$host:$health"
    [ -n "$metrics" ] && echo "E2E_DS_METRICS_URL=http://$host:$metrics"
    echo "E2E_DS_CA=$E2E_RUN_DIR/ca.pem"
    echo "KUBECONFIG=$KUBECONFIG_FILE"
    echo "E2E_NAMESPACE=$E2E_NAMESPACE"
  } >"$ENDPOINTS"
  sed 's/^/  /' "$ENDPOINTS" >&2
}

phase_test() {
  [ -f "$ENDPOINTS" ] || die 2 "nothing deployed for this run ($ENDPOINTS): run \`make e2e-up E2E_SERVICE=$E2E_SERVICE\` first"
  set -a; . "$ENDPOINTS"; set +a
  [ -f "$TAGS" ] && { set -a; . "$TAGS"; set +a; }
  log "suite: $E2E_TEST_CMD"
  bash -c "$E2E_TEST_CMD"
}

phase_logs() {
  local dir
  dir="$E2E_RUN_DIR/logs-$(date -u +%Y%m%d-%H%M%S)"
  mkdir -p "$dir"
  tool ds-deploy diagnose --kubeconfig "$KUBECONFIG_FILE" -N "$E2E_NAMESPACE" --out "$dir/diagnose" \
    >"$dir/diagnose.txt" 2>&1 || true
  if [ "$E2E_PROVIDER" = kind ] && kind_cluster_exists; then
    kind export logs "$dir/cluster" --name "$E2E_CLUSTER" >&2 || log "kind export logs failed"
  fi
  kubectl --kubeconfig "$KUBECONFIG_FILE" -n "$E2E_NAMESPACE" get pods,deploy,svc,events -o wide \
    >"$dir/namespace.txt" 2>&1 || true
  log "logs: $dir"
  echo "$dir" >"$E2E_RUN_DIR/last-logs"
}

phase_down() {
  if [ "$E2E_PROVIDER" = kind ]; then
    if command -v kind >/dev/null && kind_cluster_exists; then
      kind delete cluster --name "$E2E_CLUSTER" >&2
    fi
    rm -f "$KUBECONFIG_FILE"
  else
    tool ds-deploy down --kubeconfig "$KUBECONFIG_FILE" -N "$E2E_NAMESPACE" --delete-namespace -q >/dev/null
  fi
  # The run's images: every image built for this consumer.
  tool image-build prune --consumer "$E2E_CONSUMER" -q >/dev/null
  rm -f "$TAGS" "$ENDPOINTS"
}

phase_doctor() {
  local bad=0
  check() { if eval "$2" >/dev/null 2>&1; then echo "ok    $1"; else echo "FAIL  $1: $3"; bad=1; fi; }
  check "container engine answers (docker version)" "docker version" \
    "start Docker (or Podman's socket) and check DOCKER_HOST"
  if [ "$E2E_PROVIDER" = kind ]; then
    check "kind on PATH: $(kind version 2>/dev/null | head -n1)" "command -v kind" \
      "install kind (on the testbed: PATH=\$PWD/scripts/testbed:\$PATH)"
  fi
  check "kubectl on PATH: $(kubectl version --client 2>/dev/null | head -n1)" "command -v kubectl" "install kubectl"
  local free
  free=$(df -Pk "$ROOT" | awk 'NR==2 {print int($4/1024/1024)}')
  check "disk: ${free} GiB free under $ROOT" "[ $free -ge ${E2E_MIN_FREE_GB:-5} ]" \
    "free some space (image-build prune --older-than 24h; docker system prune)"
  if [ "$E2E_PROVIDER" = kind ] && ! kind_cluster_exists && [ -f "$E2E_KIND_CONFIG" ]; then
    local p
    for p in $(sed -n 's/^ *hostPort: *\([0-9]*\).*/\1/p' "$E2E_KIND_CONFIG"); do
      check "host port $p free" "! ss -Hltn 'sport = :$p' | grep -q ." \
        "stop what listens on $p (ss -ltnp 'sport = :$p') or change $E2E_KIND_CONFIG"
    done
  fi
  return "$bad"
}

# phase_up [--no-summary]: the phases up to a deployed stack.
phase_up() {
  : >"$TIMINGS"
  local rc=0 p
  for p in tags images cluster load deploy; do
    timed "$p" || { rc=$?; break; }
  done
  [ "${1:-}" = --no-summary ] || summary
  return "$rc"
}

# phase_run: up, the suite, logs on failure, down unless KEEP_CLUSTER is set; exits with the
# suite's code (or the failing phase's).
phase_run() {
  local rc=0
  phase_up --no-summary || rc=$?
  if [ "$rc" = 0 ]; then
    timed test || rc=$?
  fi
  if [ "$rc" != 0 ]; then
    timed logs || true
  fi
  if [ -n "${KEEP_CLUSTER:-}" ] && [ "${KEEP_CLUSTER}" != 0 ]; then
    log "KEEP_CLUSTER is set: nothing deleted (kubeconfig $KUBECONFIG_FILE; \`make e2e-down E2E_SERVICE=$E2E_SERVICE\` when done)"
  else
    timed down || true
  fi
  summary
  [ "$rc" = 0 ] || log "failed; diagnosis in $(cat "$E2E_RUN_DIR/last-logs" 2>/dev/null || echo "(no logs)")"
  return "$rc"
}

# summary: the phase table on stderr, and timings.json for CI.
summary() {
  [ -s "$TIMINGS" ] || return 0
  {
    printf '\n%-10s %9s  %s\n' PHASE SECONDS STATUS
    awk -F'\t' '{printf "%-10s %9s  %s\n", $1, $2, $3; t += $2} END {printf "%-10s %9.1f\n", "total", t}' "$TIMINGS"
  } >&2
  awk -F'\t' -v svc="$E2E_SERVICE" -v prov="$E2E_PROVIDER" '
    BEGIN {printf "{\"service\":\"%s\",\"provider\":\"%s\",\"results\":[", svc, prov}
    {printf "%s{\"name\":\"%s\",\"seconds\":%s,\"status\":\"%s\"}", (NR > 1 ? "," : ""), $1, $2, $3; t += $2}
    END {printf "],\"seconds\":%.1f}\n", t}' "$TIMINGS" >"$E2E_RUN_DIR/timings.json"
}
