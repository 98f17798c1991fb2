#!/usr/bin/env bash
# kind-load vs the pipes it replaces, same run: a 100 MB image into the 3 fixture nodes.
#   bench/kind-load.sh [ROUNDS] [SIZE_MB] [CASES]     CASES: "full incremental" (default), or one
# Incremental case (B = the 100 MB image A plus one 1 MB layer; the re-run after a code change):
# kind-load loading B into nodes that hold A, vs a cold kind-load of B (nodes hold neither), vs
# what `kind load docker-image B` does after A (`docker save -o TMP B`, then per node at once
# `docker exec -i NODE ctr -n k8s.io images import --all-platforms --digests
# --snapshotter=overlayfs - < TMP`; the testbed's `kind` stand-in runs kind-load itself and real
# kind needs privileged exec, which this VM refuses, so its procedure is run as commands).
# Baseline per round: three concurrent
#   docker save IMG | docker exec -i NODE ctr -n k8s.io images import --digests --snapshotter=overlayfs -
# (what `kind load` does per node, minus its temp file and privileged exec, which this VM
# forbids). Before every measured import the image is removed from the nodes (`ctr images rm
# --sync`, so containerd's GC drops content and snapshots too) and the nodes are checked to
# list it afterwards. Also timed: kind-load when every node already has the image.
# The order of kind-load and the pipes alternates between rounds, and dirty pages are flushed
# (`sync`) before each measured run so one run's writeback does not land on the next.
# Besides wall time, the CPU time each approach costs the machine is summed (median): the node
# containers' cgroups (ctr + containerd), dockerd, the nodes' containerd-shims and the client
# processes (kind-load, or the docker CLIs), which is what matters on a shared, busy machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${1:-5}
SIZE_MB=${2:-100}
CASES=${3:-full incremental}
ENV_FILE=${E2E_TESTBED_ENV:-$ROOT/target/testbed/env}
# shellcheck disable=SC1090
[ -f "$ENV_FILE" ] && . "$ENV_FILE"
CLUSTER=${E2E_KIND_CLUSTER:?no fixture cluster (E2E_KIND_CLUSTER); run make testbed-up}
export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
# KL=PATH benches that binary as it is (no build).
if [ -z "${KL:-}" ]; then
  need_release_tools
  KL="$ROOT/target/bin/kind-load"
fi

mapfile -t NODES < <(docker ps --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --format '{{.Names}}' | sort)
[ "${#NODES[@]}" -gt 0 ] || { echo "no nodes for cluster $CLUSTER" >&2; exit 1; }
SUFFIX=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
IMG="localhost/kl-bench-$SUFFIX:b"
IMG_B="localhost/kl-bench-$SUFFIX:plus1mb"
tmp=$(mktemp -d)

in_node_refs() { # NODE [REF]: names whose target is REF's (REF, import-...@sha256:..., sha256:<id>)
  docker exec "$1" ctr -n k8s.io images ls | awk -v r="${2:-$IMG}" '
    NR > 1 { name[NR] = $1; tgt[NR] = $3; if ($1 == r) t = $3 }
    END { if (t != "") for (i in name) if (tgt[i] == t) print name[i] }'
}
rm_from_nodes() { # [REF...] (default IMG): removed with their content (`--sync`)
  local n r refs
  for r in "${@:-$IMG}"; do
    for n in "${NODES[@]}"; do
      mapfile -t refs < <(in_node_refs "$n" "$r")
      [ "${#refs[@]}" = 0 ] || docker exec "$n" ctr -n k8s.io images rm --sync "${refs[@]}" >/dev/null
    done
  done
  sync
}
# CPU accounting (ms): node cgroups + dockerd + the nodes' shims. Empty when unavailable.
NODE_IDS=(); SHIM_PIDS=()
for n in "${NODES[@]}"; do
  NODE_IDS+=("$(docker inspect -f '{{.Id}}' "$n")")
  SHIM_PIDS+=("$(ps -o ppid= -p "$(docker inspect -f '{{.State.Pid}}' "$n")" | tr -d ' ')")
done
DOCKERD_PID=$(pgrep -x dockerd | head -1 || true)
HZ=$(getconf CLK_TCK)
server_cpu_ms() {
  local total=0 id f p
  for id in "${NODE_IDS[@]}"; do
    for f in /sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage /sys/fs/cgroup/cpu,cpuacct/docker/$id/cpuacct.usage; do
      [ -r "$f" ] && { total=$((total + $(cat "$f") / 1000000)); break; }
    done
  done
  for p in "$DOCKERD_PID" "${SHIM_PIDS[@]}"; do
    [ -n "$p" ] && [ -r "/proc/$p/stat" ] && total=$((total + $(awk -v hz="$HZ" '{printf "%d", ($14+$15)*1000/hz}' "/proc/$p/stat")))
  done
  echo "$total"
}
# timed LABEL CMD...: wall ns to $tmp/LABEL, CPU ms (server + client) to $tmp/LABEL.cpu
timed() {
  local label=$1; shift
  local c0 t0 t1; c0=$(server_cpu_ms); t0=$(ns_now)
  /usr/bin/time -f '%U %S' -o "$tmp/client.time" "$@"
  t1=$(ns_now)
  echo $((t1 - t0)) >>"$tmp/$label"
  echo $(( $(server_cpu_ms) - c0 + $(awk '{printf "%d", ($1+$2)*1000}' "$tmp/client.time") )) >>"$tmp/$label.cpu"
}
check_loaded() { # WHAT [REF]
  local n
  for n in "${NODES[@]}"; do
    docker exec "$n" ctr -n k8s.io images ls -q | grep -xF "${2:-$IMG}" >/dev/null || { echo "$n does not list ${2:-$IMG} after $1" >&2; exit 1; }
  done
}
cleanup() {
  rm_from_nodes "$IMG_B" "$IMG" 2>/dev/null || true
  docker rmi -f "$IMG_B" "$IMG" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "building $IMG ($SIZE_MB MB of random bytes, FROM scratch)" >&2
mkdir -p "$tmp/ctx"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$tmp/ctx/blob"
printf 'FROM scratch\nCOPY blob /blob\n' >"$tmp/ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMG" "$tmp/ctx" >/dev/null 2>&1
rm -rf "$tmp/ctx"
mkdir -p "$tmp/ctx"
head -c $((1024 * 1024)) /dev/urandom >"$tmp/ctx/top"
printf 'FROM %s\nCOPY top /top\n' "$IMG" >"$tmp/ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMG_B" "$tmp/ctx" >/dev/null 2>&1
rm -rf "$tmp/ctx"

run_kind_load() {
  rm_from_nodes
  timed kl "$KL" -q --cluster "$CLUSTER" "$IMG" >"$tmp/kl.out"
  grep -c ' loaded ' "$tmp/kl.out" | grep -qx "${#NODES[@]}" || { cat "$tmp/kl.out" >&2; exit 1; }
  check_loaded kind-load
  t0=$(ns_now)
  "$KL" -q --cluster "$CLUSTER" "$IMG" >"$tmp/kl2.out"
  t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/present"
  grep -c ' already-present ' "$tmp/kl2.out" | grep -qx "${#NODES[@]}" || { cat "$tmp/kl2.out" >&2; exit 1; }
}
pipes() {
  local n p pids=()
  for n in "${NODES[@]}"; do
    ( docker save "$IMG" | docker exec -i "$n" ctr -n k8s.io images import --digests --snapshotter=overlayfs - >/dev/null ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}
export -f pipes; export IMG
run_pipes() {
  rm_from_nodes
  timed pipes bash -c "NODES=(${NODES[*]}); pipes"
  check_loaded pipes
}

# Incremental: each measured load starts from the same node state (A held, or nothing held).
a_only() { # nodes hold A, not B
  rm_from_nodes "$IMG_B"
  "$KL" -q --cluster "$CLUSTER" "$IMG" >/dev/null
  check_loaded "loading A" "$IMG"
}
run_incremental() {
  a_only
  timed incr "$KL" -q --json --cluster "$CLUSTER" "$IMG_B" >"$tmp/incr.json"
  check_loaded "the incremental load" "$IMG_B"
  # What each node was sent (the report), for the summary.
  grep -o '"sent_bytes": [0-9]*' "$tmp/incr.json" | awk '{print $2}' >>"$tmp/incr.sent"
}
run_cold() {
  rm_from_nodes "$IMG_B" "$IMG"
  timed cold "$KL" -q --cluster "$CLUSTER" "$IMG_B" >/dev/null
  check_loaded "the cold load" "$IMG_B"
}
kind_procedure() {
  local n p pids=()
  docker image inspect -f '{{.Id}}' "$IMG_B" >/dev/null
  docker save -o "$tmp/images.tar" "$IMG_B"
  for n in "${NODES[@]}"; do
    docker exec -i "$n" ctr -n k8s.io images import --all-platforms --digests --snapshotter=overlayfs - <"$tmp/images.tar" >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  rm -f "$tmp/images.tar"
}
export -f kind_procedure; export IMG_B tmp
run_kind() {
  a_only
  timed kind bash -c "NODES=(${NODES[*]}); kind_procedure"
  check_loaded "kind's procedure" "$IMG_B"
}

case " $CASES " in *" full "*)
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run_kind_load; run_pipes; else run_pipes; run_kind_load; fi
  echo "round $r: kind-load $(ms "$(tail -1 "$tmp/kl")") ms ($(tail -1 "$tmp/kl.cpu") ms CPU), pipes $(ms "$(tail -1 "$tmp/pipes")") ms ($(tail -1 "$tmp/pipes.cpu") ms CPU), already-present $(ms "$(tail -1 "$tmp/present")") ms" >&2
done

k=$(median "$tmp/kl"); p=$(median "$tmp/pipes"); a=$(median "$tmp/present")
kc=$(median "$tmp/kl.cpu"); pc=$(median "$tmp/pipes.cpu")
echo "kind-load bench: ${SIZE_MB} MB image into ${#NODES[@]} nodes of $CLUSTER, $ROUNDS rounds, medians"
printf '  %-58s %10s ms\n' "kind-load (one export, fanned out)" "$(ms "$k")"
printf '  %-58s %10s ms\n' "${#NODES[@]} x (docker save | docker exec -i NODE ctr import -)" "$(ms "$p")"
printf '  %-58s %10s ms\n' "kind-load, image already on every node" "$(ms "$a")"
echo "  ratio kind-load/pipes: $(ratio "$k" "$p")   (target <= 0.8)"
echo "  CPU time per load (nodes' ctr+containerd, dockerd, shims, clients): kind-load ${kc} ms, pipes ${pc} ms, ratio $(ratio "$kc" "$pc")"
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates both)"
echo "  already-present: $(awk -v n="$a" 'BEGIN {printf "%.3f", n/1e9}') s   (target <= 0.3 s)"
;; esac

case " $CASES " in *" incremental "*)
for r in $(seq "$ROUNDS"); do
  case $((r % 3)) in
    1) run_incremental; run_cold; run_kind ;;
    2) run_cold; run_kind; run_incremental ;;
    0) run_kind; run_incremental; run_cold ;;
  esac
  echo "round $r: B after A: kind-load $(ms "$(tail -1 "$tmp/incr")") ms ($(tail -1 "$tmp/incr.cpu") ms CPU), cold kind-load $(ms "$(tail -1 "$tmp/cold")") ms, kind's procedure $(ms "$(tail -1 "$tmp/kind")") ms ($(tail -1 "$tmp/kind.cpu") ms CPU)" >&2
done
i=$(median "$tmp/incr"); c=$(median "$tmp/cold"); kd=$(median "$tmp/kind")
ic=$(median "$tmp/incr.cpu"); cc=$(median "$tmp/cold.cpu"); kdc=$(median "$tmp/kind.cpu")
echo "kind-load bench, incremental: B = the ${SIZE_MB} MB image A + one 1 MB layer, into ${#NODES[@]} nodes of $CLUSTER, $ROUNDS rounds, medians"
printf '  %-58s %10s ms\n' "kind-load B, nodes hold A" "$(ms "$i")"
printf '  %-58s %10s ms\n' "kind-load B, cold (nodes hold neither)" "$(ms "$c")"
printf '  %-58s %10s ms\n' "kind load's procedure for B, nodes hold A" "$(ms "$kd")"
echo "  bytes sent per node for B after A (kind-load's report): median $(median "$tmp/incr.sent")"
echo "  ratio incremental/cold: $(ratio "$i" "$c")   (target <= 0.3)"
echo "  ratio incremental/kind: $(ratio "$i" "$kd")   (target <= 0.2)"
echo "  CPU time per load: incremental ${ic} ms, cold ${cc} ms, kind's procedure ${kdc} ms"
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
;; esac
