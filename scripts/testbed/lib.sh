# shellcheck shell=bash
# Shared helpers for scripts/testbed/{up,down,check}. Sourced, not executed.

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTBED_DIR/../.." && pwd)"

# Machine-wide locations (services are shared by every checkout on the machine).
: "${E2E_TESTBED_RUN:=/var/run/e2e-testbed}"       # pid files, sockets of our own
: "${E2E_TESTBED_LOG:=/var/log/e2e-testbed}"       # one log file per daemon
: "${E2E_TESTBED_LIB:=/var/lib/e2e-testbed}"       # certs, kubeconfig, etcd data, dns hosts
: "${E2E_TESTBED_CACHE:=/var/cache/e2e-testbed}"   # k8s build, rootfs tarballs (kept by down)
: "${E2E_TESTBED_ENV_COPY:=/work/testbed.env}"     # convenience copy of the env file ("" = none)
: "${E2E_TESTBED_MIRROR:=http://deb.debian.org/debian}"
: "${E2E_TESTBED_SUITE:=bookworm}"

ENV_FILE="$REPO_ROOT/target/testbed/env"

DOCKER_SOCK=/var/run/docker.sock
PODMAN_SOCK=/run/podman/podman.sock
PG_PORT=5432
PG_PASSWORD=postgres
REDIS_PORT=6379
APISERVER_PORT=6443
SERVICE_CIDR=10.0.0.0/24
NODE_NAME=node1
KIND_CLUSTER=e2e-fixture
PODMAN_KIND_CLUSTER=e2e-podman
BASE_IMAGE=localhost/e2e-base:bookworm
POSTGRES_IMAGE=localhost/e2e-postgres:15
REDIS_IMAGE=localhost/e2e-redis:7
NODE_IMAGE=localhost/e2e-kind-node:bookworm
KIND_NODE_IMAGE_REPO=localhost/e2e-kindest-node   # Kind-like clusters' nodes (tag: Kubernetes version)
KIND_BIN_DIR="$REPO_ROOT/target/testbed/bin"       # holds only `kind` (-> scripts/testbed/kind), for PATH
PAUSE_IMAGE=k8s.gcr.io/pause:3.2
REGISTRY_ADDR=127.0.0.1:5000                        # the testbed's OCI registry (plain HTTP)
REGISTRY_HOST=localhost:5000                        # how images name it (Docker trusts localhost over HTTP)
REGISTRY_BIN=/usr/bin/docker-registry
REGISTRY_CONFIG="$E2E_TESTBED_LIB/registry/config.yml"
KUBECONFIG_FILE="$E2E_TESTBED_LIB/kube/kubeconfig"
DNS_HOSTS_DIR="$E2E_TESTBED_LIB/dns-hosts"

# Capabilities for containers that would be --privileged elsewhere: everything but
# SYS_RESOURCE, which the VM's bounding set lacks (see shared/spec/testbed.md).
# (Docker 20.10 does not know BPF, PERFMON, CHECKPOINT_RESTORE; CAP_SYS_ADMIN covers them.)
CAPS=(AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND CHOWN
      DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE
      LINUX_IMMUTABLE MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE
      NET_BROADCAST NET_RAW SETFCAP SETGID SETPCAP SETUID SYSLOG SYS_ADMIN
      SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE SYS_RAWIO SYS_TIME
      SYS_TTY_CONFIG WAKE_ALARM)

shopt -s inherit_errexit
export PATH="$PATH:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

_t0=$(date +%s)
ts() { date +%H:%M:%S; }
log() { printf '%s [testbed] %s\n' "$(ts)" "$*" >&2; }
warn() { printf '%s [testbed] WARNING: %s\n' "$(ts)" "$*" >&2; }
die() { printf '%s [testbed] ERROR: %s\n' "$(ts)" "$*" >&2; exit 1; }

# run_step NAME FUNC...: runs FUNC with progress lines and the step's duration.
run_step() {
  local name=$1; shift
  local s; s=$(date +%s)
  log "==> $name"
  "$@"
  log "<== $name done in $(( $(date +%s) - s ))s (total $(( $(date +%s) - _t0 ))s)"
}

require_root() { [ "$(id -u)" = 0 ] || die "must run as root (the testbed starts system daemons)"; }

ensure_dirs() { mkdir -p "$E2E_TESTBED_RUN" "$E2E_TESTBED_LOG" "$E2E_TESTBED_LIB" "$E2E_TESTBED_CACHE"; }

# --- pid files -------------------------------------------------------------
pidfile() { echo "$E2E_TESTBED_RUN/$1.pid"; }

# pid_alive NAME: true if the recorded pid is alive and still the same program
# (guards against a stale pid file whose pid got reused).
pid_alive() {
  local f pid exe want
  f=$(pidfile "$1"); [ -s "$f" ] || return 1
  pid=$(head -n1 "$f"); want=$(sed -n 2p "$f")
  [ -n "$pid" ] && proc_running "$pid" || return 1
  if [ -n "$want" ]; then
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    # "<path> (deleted)": still our program, its binary replaced since (a rebuild); it must count
    # as alive so that stop_daemon stops it instead of leaving it to hold its ports.
    [ "$exe" = "$want" ] || [ "$exe" = "$want (deleted)" ] || return 1
  fi
}

# pid_stale NAME: alive but running a binary that was replaced after it started (restart it).
pid_stale() {
  pid_alive "$1" || return 1
  local pid; pid=$(head -n1 "$(pidfile "$1")")
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *" (deleted)" ]]
}

# start_daemon NAME CMD...: start CMD in the background (own session), log to
# $E2E_TESTBED_LOG/NAME.log, record "pid\nexe" in the pid file.
start_daemon() {
  local name=$1; shift
  local logf="$E2E_TESTBED_LOG/$name.log"
  printf '\n===== %s start: %s\n' "$(date -Is)" "$*" >>"$logf"
  setsid "$@" </dev/null >>"$logf" 2>&1 8>&- 9>&- &
  local pid=$!
  local exe=""
  sleep 0.2
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  printf '%s\n%s\n' "$pid" "$exe" >"$(pidfile "$name")"
}

# proc_running PID: alive and not a zombie (our daemons are reparented to an init that may reap late).
proc_running() {
  kill -0 "$1" 2>/dev/null || return 1
  local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# stop_daemon NAME [TIMEOUT]: TERM the recorded pid (and its process group), wait, KILL.
stop_daemon() {
  local name=$1 timeout=${2:-20} f pid i
  f=$(pidfile "$name")
  if pid_alive "$name"; then
    pid=$(head -n1 "$f")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do proc_running "$pid" || break; sleep 0.1; done
    if proc_running "$pid"; then
      warn "$name (pid $pid) did not stop in ${timeout}s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# wait_for DESC TIMEOUT CMD...: poll CMD until it succeeds.
wait_for() {
  local desc=$1 timeout=$2; shift 2
  local end=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { warn "timed out after ${timeout}s waiting for $desc"; return 1; }
    sleep 0.5
  done
}

docker_up() { [ -S "$DOCKER_SOCK" ] && docker -H "unix://$DOCKER_SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
podman_up() { [ -S "$PODMAN_SOCK" ] && curl -sf --max-time 3 --unix-socket "$PODMAN_SOCK" http://d/version >/dev/null; }
pg_up() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }
registry_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$REGISTRY_ADDR/v2/")" = 200 ]; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

dk() { docker -H "unix://$DOCKER_SOCK" "$@"; }
# podman forks conmon, which must not inherit our lock fd (8).
podman() { command podman "$@" 8>&-; }

# take_lock SECONDS: serialise up/down. fd 8 must never leak into daemons (start_daemon closes it).
take_lock() {
  exec 8>"$E2E_TESTBED_RUN/testbed.lock"
  flock -w "$1" 8 || die "another testbed up/down holds $E2E_TESTBED_RUN/testbed.lock"
}

k8s_version() {
  # Debian source package version of `kubernetes` (cache key).
  apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1
}
k8s_bin_dir() {
  local v=${K8S_VERSION:-}
  [ -n "$v" ] || v=$(cat "$E2E_TESTBED_CACHE/k8s-current" 2>/dev/null || true)
  [ -n "$v" ] || v=$(k8s_version)
  echo "$E2E_TESTBED_CACHE/k8s-$v/bin"
}
kc() { "$(k8s_bin_dir)/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
apiserver_up() { [ -f "$KUBECONFIG_FILE" ] && [ -x "$(k8s_bin_dir)/kubectl" ] && kc get --raw /readyz >/dev/null 2>&1; }
node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
docker0_ip() { ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1; }

# kind_node_image: the newest local node image of the Kind-like clusters, or nothing.
kind_node_image() {
  dk images --filter "reference=$KIND_NODE_IMAGE_REPO" --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
    | { grep -v ':<none>$' || true; } | sort -V | tail -n1
}

# ---------------------------------------------------------------- env file
node_running() { [ "$("$@" 2>/dev/null)" = true ]; }
write_env() {
  mkdir -p "$(dirname "$ENV_FILE")"
  local tmp="$ENV_FILE.tmp.$$"
  {
    echo "# Written by scripts/testbed at $(date -Is). Only services that were up are listed."
    docker_up && echo "DOCKER_HOST=unix://$DOCKER_SOCK"
    podman_up && echo "E2E_PODMAN_HOST=unix://$PODMAN_SOCK"
    apiserver_up && node_ready && echo "E2E_KUBECONFIG=$KUBECONFIG_FILE"
    [ -x "$E2E_TESTBED_LIB/bin/kubectl" ] && echo "E2E_KUBECTL=$E2E_TESTBED_LIB/bin/kubectl"
    pg_up && echo "E2E_DATABASE_URL=postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
    redis_up && echo "E2E_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    registry_up && echo "E2E_REGISTRY=$REGISTRY_HOST"
    if docker_up; then
      local ok=1 n
      for n in control-plane worker worker2; do
        node_running dk container inspect "$KIND_CLUSTER-$n" --format '{{.State.Running}}' || ok=0
      done
      [ $ok = 1 ] && echo "E2E_KIND_CLUSTER=$KIND_CLUSTER"
      dk image inspect "$POSTGRES_IMAGE" >/dev/null 2>&1 && echo "E2E_POSTGRES_IMAGE=$POSTGRES_IMAGE"
      dk image inspect "$REDIS_IMAGE" >/dev/null 2>&1 && echo "E2E_REDIS_IMAGE=$REDIS_IMAGE"
      dk image inspect "$BASE_IMAGE" >/dev/null 2>&1 && echo "E2E_BASE_IMAGE=$BASE_IMAGE"
      local kimg; kimg=$(kind_node_image)
      if [ -n "$kimg" ] && [ -x "$KIND_BIN_DIR/kind" ]; then
        echo "E2E_KIND_NODE_IMAGE=$kimg"
        echo "E2E_KIND_PATH=$KIND_BIN_DIR"
      fi
    fi
    podman_up && node_running podman container inspect "$PODMAN_KIND_CLUSTER-control-plane" --format '{{.State.Running}}' \
      && echo "E2E_PODMAN_KIND_CLUSTER=$PODMAN_KIND_CLUSTER"
    true
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
  if [ -n "$E2E_TESTBED_ENV_COPY" ]; then
    mkdir -p "$(dirname "$E2E_TESTBED_ENV_COPY")"
    cp "$ENV_FILE" "$E2E_TESTBED_ENV_COPY.tmp.$$" && mv "$E2E_TESTBED_ENV_COPY.tmp.$$" "$E2E_TESTBED_ENV_COPY"
  fi
  log "env file: $ENV_FILE ($(grep -c '=' "$ENV_FILE") keys)${E2E_TESTBED_ENV_COPY:+, copy: $E2E_TESTBED_ENV_COPY}"
}

