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
  # A registry (IMAGE_REGISTRY=host:port[/path]): references under it, images pushed there
  # instead of loaded, the cluster pulls them. IMAGE_TAG (or upstream CI's
  # KUBERNAUT_CI_ARTIFACT_TAG): the images exist already under that tag; nothing is built.
  IMAGE_REGISTRY=${IMAGE_REGISTRY:-}
  IMAGE_REGISTRY=${IMAGE_REGISTRY%/}
  E2E_IMAGE_TAG=${IMAGE_TAG:-${KUBERNAUT_CI_ARTIFACT_TAG:-}}
  # After a push, the local copies go (E2E_REMOVE_PUSHED=1, the default on an existing
  # cluster): the cluster has to pull from the registry, as a remote one would.
  if [ -z "${E2E_REMOVE_PUSHED:-}" ]; then
    E2E_REMOVE_PUSHED=0; [ "$E2E_PROVIDER" = existing ] && E2E_REMOVE_PUSHED=1
  fi
  mkdir -p "$E2E_RUN_DIR"
  TAGS="$E2E_RUN_DIR/tags.env"
  DIGESTS="$E2E_RUN_DIR/digests.env"
  ENDPOINTS="$E2E_RUN_DIR/endpoints.env"
  TIMINGS="$E2E_RUN_DIR/timings.tsv"
  export E2E_SERVICE E2E_PROVIDER E2E_CONSUMER E2E_CLUSTER E2E_NAMESPACE E2E_RUN_DIR IMAGE_REGISTRY
}

# tag_gen_registry_args: tag-gen infra arguments that put the references under IMAGE_REGISTRY
# (a path after the host becomes part of each repository) and pin IMAGE_TAG; then the names.
tag_gen_registry_args() {
  local host=${IMAGE_REGISTRY%%/*} path="" names=() vars=() n
  [[ "$IMAGE_REGISTRY" == */* ]] && path=${IMAGE_REGISTRY#*/}/
  for n in $E2E_IMAGES; do names+=("$path$n"); vars+=("$(echo "$n" | tr 'a-z-' 'A-Z_')_IMAGE"); done
  # Always explicit: a registry in the environment (the testbed's E2E_REGISTRY) must not move
  # the references of a run that does not push.
  printf '%s\n' --registry "${host:-localhost}"
  [ -n "$E2E_IMAGE_TAG" ] && printf '%s\n' --tag "$E2E_IMAGE_TAG"
  printf '%s\n' --var "$(IFS=,; echo "${vars[*]}")" "${names[@]}"
}

# engine_cli: the CLI of the run's engine, for the few checks the tools do not cover.
engine_cli() { if [ "${E2E_ENGINE:-}" = podman ]; then podman "$@"; else docker "$@"; fi; }

# registry_digest REF: the digest the registry serves for REF (host:port/repo:tag), over HTTP
# or HTTPS; empty when it has none. Exit 2 when the registry wants credentials.
registry_digest() {
  local ref=$1 host repo tag url code hdrs
  host=${ref%%/*}; repo=${ref#*/}; tag=${repo##*:}; repo=${repo%:*}
  for url in "https://$host" "http://$host"; do
    hdrs=$(curl -sI --max-time 10 -o /dev/stdout -w '%{http_code}' \
      -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
      -H 'Accept: application/vnd.oci.image.index.v1+json' \
      "$url/v2/$repo/manifests/$tag" 2>/dev/null) || continue
    code=${hdrs##*$'\n'}; code=${code: -3}
    case "$code" in
      200) printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'; return 0 ;;
      401|403) return 2 ;;
      404) return 0 ;;
    esac
  done
  return 0
}

# use_existing_images: IMAGE_TAG mode. Every image must exist (in the registry, or in the local
# engine without one); digests.env pins what the registry has.
use_existing_images() {
  local name ref d missing=() rc
  : >"$DIGESTS.tmp"
  for name in $E2E_IMAGES; do
    ref=$(ref_of "$name")
    if [ -n "$IMAGE_REGISTRY" ]; then
      rc=0; d=$(registry_digest "$ref") || rc=$?
      if [ "$rc" = 2 ]; then
        log "$ref: registry ${IMAGE_REGISTRY%%/*} wants credentials to be read; not checked, the cluster pulls it by tag"
      elif [ -z "$d" ]; then
        missing+=("$ref")
      else
        log "$ref: in the registry as $d"
        printf '%s_PUSHED=%s\n%s_DIGEST=%s\n' "$(var_of "$name")" "$ref" "$(var_of "$name")" "${ref%:*}@$d" >>"$DIGESTS.tmp"
      fi
    elif engine_cli image inspect "$ref" >/dev/null 2>&1; then
      log "$ref: in the local engine"
    else
      missing+=("$ref")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    rm -f "$DIGESTS.tmp"
    local where="in the local engine" fix="build them under that tag first (image-build -t REF ...)"
    if [ -n "$IMAGE_REGISTRY" ]; then
      where="in registry ${IMAGE_REGISTRY%%/*}"
      fix="build and push them under that tag first (image-build --push -t REF ..., or make e2e-images without the tag)"
    fi
    die 1 "$(tag_source)=$E2E_IMAGE_TAG: not found $where: ${missing[*]}; $fix, or unset $(tag_source) to build them now"
  fi
  mv "$DIGESTS.tmp" "$DIGESTS"
}
tag_source() { if [ -n "${IMAGE_TAG:-}" ]; then echo IMAGE_TAG; else echo KUBERNAUT_CI_ARTIFACT_TAG; fi; }
var_of() { printf '%s_IMAGE' "$(echo "$1" | tr 'a-z-' 'A-Z_')"; }

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

# E2E_TAGS=content (default): each reference's tag is a digest of what its build sends
# (tag-gen content over the staged context, Dockerfile, build args), so an unchanged image keeps
# its reference and is neither rebuilt (image-build --skip-existing) nor reloaded (kind-load
# skips nodes that hold it). E2E_TAGS=random: DD-TEST-001 tags, new every run.
tags_mode() {
  case "${E2E_TAGS:-content}" in
    content|random) printf '%s' "${E2E_TAGS:-content}" ;;
    *) die 2 "E2E_TAGS \`$E2E_TAGS\`: use content (digest of each build's inputs) or random (DD-TEST-001)" ;;
  esac
}

# prepare_contexts: runs E2E_PREPARE_IMAGES (stages the build contexts into the run directory).
prepare_contexts() {
  if [ -n "${E2E_PREPARE_IMAGES:-}" ]; then
    log "preparing the build contexts: $E2E_PREPARE_IMAGES"
    bash -c "$E2E_PREPARE_IMAGES" >&2
  fi
}

# build_spec NAME: image-build --image fields for NAME (E2E_BUILD_<NAME>), without tag=.
build_spec() {
  local var
  var="E2E_BUILD_$(echo "$1" | tr 'a-z-' 'A-Z_')"
  [ -n "${!var:-}" ] || die 2 "$var is not set in e2e/$E2E_SERVICE.env (how to build image $1)"
  printf '%s' "${!var}"
}

phase_tags() {
  [ -n "${E2E_IMAGES:-}" ] || die 2 "E2E_IMAGES is empty in e2e/$E2E_SERVICE.env"
  local reg_args=() mode n
  mode=$(tags_mode)
  mapfile -t reg_args < <(tag_gen_registry_args)
  if [ "$mode" = random ] || [ -n "$E2E_IMAGE_TAG" ]; then
    tool tag-gen infra "${reg_args[@]}" --consumer "$E2E_CONSUMER" --format env >"$TAGS.tmp"
  else
    # The contexts are staged here, once: the images phase builds exactly what was digested.
    prepare_contexts
    # tag_gen_registry_args ends with one name per image; each becomes an --image spec.
    n=$(wc -w <<<"$E2E_IMAGES")
    local opts=("${reg_args[@]:0:${#reg_args[@]}-n}") names=("${reg_args[@]: -n}") specs=() i=0 name spec
    for name in $E2E_IMAGES; do
      spec=$(build_spec "$name")
      specs+=(-i "tag=${names[$i]},$spec")
      i=$((i + 1))
    done
    tool tag-gen content "${opts[@]}" "${specs[@]}" --consumer "$E2E_CONSUMER" --format env >"$TAGS.tmp"
  fi
  mv "$TAGS.tmp" "$TAGS"
  sed 's/^/  /' "$TAGS" >&2
}

phase_images() {
  need_tags
  rm -f "$DIGESTS"
  if [ -n "$E2E_IMAGE_TAG" ]; then
    log "$(tag_source)=$E2E_IMAGE_TAG: using existing images, nothing is built"
    use_existing_images
    return
  fi
  # Content tags were computed over the contexts the tags phase staged: built as they are.
  [ "$(tags_mode)" = content ] || prepare_contexts
  local args=() name spec
  for name in $E2E_IMAGES; do
    spec=$(build_spec "$name")
    args+=(-i "tag=$(ref_of "$name"),$spec")
  done
  if [ -z "$IMAGE_REGISTRY" ]; then
    # An image whose reference exists is not built again: with content tags, it is unchanged.
    tool image-build --consumer "$E2E_CONSUMER" --skip-existing "${args[@]}" >/dev/null
    return
  fi
  # Pushed, and pinned by digest for the deploy (one line per image, in the order given); an
  # image still in the local engine under its content tag is pushed without a rebuild.
  local pinned=() i=0 ref
  mapfile -t pinned < <(tool image-build --consumer "$E2E_CONSUMER" --skip-existing --push --print-digest "${args[@]}")
  [ ${#pinned[@]} = "$(wc -w <<<"$E2E_IMAGES")" ] || die 1 "image-build --push did not report every image's digest"
  : >"$DIGESTS.tmp"
  for name in $E2E_IMAGES; do
    ref=$(ref_of "$name")
    printf '%s_PUSHED=%s\n%s_DIGEST=%s\n' "$(var_of "$name")" "$ref" "$(var_of "$name")" "${pinned[$i]}" >>"$DIGESTS.tmp"
    log "pushed $ref as ${pinned[$i]}"
    i=$((i + 1))
    if [ "$E2E_REMOVE_PUSHED" = 1 ]; then
      engine_cli rmi "$ref" >/dev/null && log "removed $ref from the local engine: the cluster pulls it from $IMAGE_REGISTRY"
    fi
  done
  mv "$DIGESTS.tmp" "$DIGESTS"
}

# grep reads everything (no -q): exiting at the first match could kill kind with SIGPIPE, and
# under pipefail an existing cluster would then look missing.
kind_cluster_exists() { kind get clusters 2>/dev/null | grep -x -- "$E2E_CLUSTER" >/dev/null; }

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
  if [ -n "$IMAGE_REGISTRY" ]; then
    log "nothing to load: the cluster pulls the images from $IMAGE_REGISTRY"
    return
  fi
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
  local pull=()
  if [ -n "$IMAGE_REGISTRY" ]; then
    # What the registry stored for this run's reference, pinned by digest (digests.env).
    local v pushed pinned
    v=$(var_of "${E2E_DS_IMAGE_NAME:-datastorage}")
    if [ -f "$DIGESTS" ]; then
      pushed=$(sed -n "s/^${v}_PUSHED=//p" "$DIGESTS"); pinned=$(sed -n "s/^${v}_DIGEST=//p" "$DIGESTS")
      [ "$pushed" = "$ds_ref" ] && [ -n "$pinned" ] && ds_ref=$pinned
    fi
    pull=(--pull-policy IfNotPresent)
    log "DataStorage image from the registry: $ds_ref"
  fi
  args=(up --kubeconfig "$KUBECONFIG_FILE" -N "$E2E_NAMESPACE" --image "$ds_ref" "${pull[@]}"
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
  rm -f "$TAGS" "$ENDPOINTS" "$DIGESTS"
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
