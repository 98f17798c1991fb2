#!/usr/bin/env bash
# tag-gen vs the shell one-liner it replaces, whole-process time per call, same run.
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
