#!/usr/bin/env bash
# tag-gen vs the shell one-liner it replaces, whole-process time per call, same run; then
# tag-gen content vs `tar -c | sha256sum` digesting the same 112 MB context.
#   bench/tag-gen.sh [ROUNDS] [CALLS_PER_ROUND]
# Each round times CALLS_PER_ROUND sequential calls of each; the per-call time of a round is
# its total / calls; the medians over rounds are compared. Both are started through `sh -c`,
# as make's $(shell ...) starts them; tag-gen alone (direct exec) is reported too.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${1:-7}
CALLS=${2:-200}
need_release_tools
TG="$ROOT/target/bin/tag-gen"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

oneliner='echo localhost/x:y-$(od -An -N4 -tx1 /dev/urandom | tr -d '"' \\n'"')'
tagcmd="$TG infra x --consumer y"

for r in $(seq "$ROUNDS"); do
  t0=$(ns_now); for _ in $(seq "$CALLS"); do "$TG" infra x --consumer y >/dev/null; done; t1=$(ns_now)
  echo $(( (t1 - t0) / CALLS )) >>"$tmp/direct"
  t0=$(ns_now); for _ in $(seq "$CALLS"); do sh -c "$tagcmd" >/dev/null; done; t1=$(ns_now)
  echo $(( (t1 - t0) / CALLS )) >>"$tmp/tagsh"
  t0=$(ns_now); for _ in $(seq "$CALLS"); do sh -c "$oneliner" >/dev/null; done; t1=$(ns_now)
  echo $(( (t1 - t0) / CALLS )) >>"$tmp/shell"
done

d=$(median "$tmp/direct"); t=$(median "$tmp/tagsh"); s=$(median "$tmp/shell")
echo "tag-gen bench: $ROUNDS rounds x $CALLS calls, median per call"
printf '  %-44s %8s ms\n' "tag-gen infra (direct exec)" "$(ms "$d")"
printf '  %-44s %8s ms\n' "sh -c 'tag-gen infra ...'" "$(ms "$t")"
printf '  %-44s %8s ms\n' "sh -c 'echo ...\$(od ... /dev/urandom | tr ...)'" "$(ms "$s")"
echo "  ratio tag-gen/one-liner (both via sh -c): $(ratio "$t" "$s")"
echo "  ratio tag-gen direct/one-liner:           $(ratio "$d" "$s")"

# tag-gen content vs `tar -c | sha256sum` of the same files: digesting a 112 MB context (every
# file sent, as a COPY . of a service with its build output would), page cache warm for both.
ctx="$tmp/ctx"
mkdir -p "$ctx/src" "$ctx/data" "$ctx/bin"
for i in $(seq 200); do head -c 5000 /dev/urandom | base64 >"$ctx/src/f$i.go"; done
for i in $(seq 20); do head -c 5M /dev/urandom >"$ctx/data/blob$i.bin"; done
head -c 10M /dev/urandom >"$ctx/bin/app"
printf 'FROM scratch\nCOPY . /app/\n' >"$ctx/Dockerfile"
printf '*.tmp\n' >"$ctx/.dockerignore"
size=$(du -sm "$ctx" | cut -f1)
tar -cf - -C "$ctx" . | sha256sum >/dev/null # warm the page cache
for r in $(seq "$ROUNDS"); do
  t0=$(ns_now); "$TG" content x --consumer y --context "$ctx" >/dev/null; t1=$(ns_now)
  echo $((t1 - t0)) >>"$tmp/content"
  t0=$(ns_now); tar -cf - -C "$ctx" . | sha256sum >/dev/null; t1=$(ns_now)
  echo $((t1 - t0)) >>"$tmp/tarsum"
done
c=$(median "$tmp/content"); ts=$(median "$tmp/tarsum")
echo "tag-gen content bench: $ROUNDS rounds, ${size} MB context, median per digest"
printf '  %-44s %8s ms\n' "tag-gen content" "$(ms "$c")"
printf '  %-44s %8s ms\n' "tar -c ... | sha256sum" "$(ms "$ts")"
echo "  ratio tag-gen content/tar|sha256sum:        $(ratio "$c" "$ts")"
