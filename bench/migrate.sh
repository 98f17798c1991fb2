#!/usr/bin/env bash
# migrate vs the psql loop it replaces, whole-process times, same run, same PostgreSQL.
#   bench/migrate.sh [ROUNDS] [NOOP_CALLS]        (MIGRATE_BIN=path to time another binary)
# Each round creates two empty databases and applies the test corpus
# (migrate/tests/fixtures/corpus, 15 goose-format files) to one with `migrate up` and to the other
# with a psql loop: one `psql -1 -f` per file's Up section (the NO TRANSACTION file without -1),
# the way the upstream scripts fed hand-cut SQL to psql. The Up sections are cut (and ENVSUB values
# put in) before timing starts. Then NOOP_CALLS `migrate up` on the fully migrated database give
# the no-op time. Medians over rounds; targets: migrate <= 0.8 x psql loop, no-op < 100 ms.
# Needs the testbed's PostgreSQL (E2E_DATABASE_URL from $E2E_TESTBED_ENV or target/testbed/env).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${1:-7}
NOOP=${2:-20}
ENV_FILE=${E2E_TESTBED_ENV:-$ROOT/target/testbed/env}
[ -f "$ENV_FILE" ] || { echo "bench/migrate.sh: no testbed env file ($ENV_FILE); run make testbed-up" >&2; exit 2; }
ADMIN=$(sed -n 's/^E2E_DATABASE_URL=//p' "$ENV_FILE" | tail -n1)
[ -n "$ADMIN" ] || { echo "bench/migrate.sh: E2E_DATABASE_URL missing in $ENV_FILE" >&2; exit 2; }
# MIGRATE_BIN: time another build of migrate (e.g. the previous release) instead of target/bin's.
if [ -n "${MIGRATE_BIN:-}" ]; then MIG=$MIGRATE_BIN; else need_release_tools; MIG="$ROOT/target/bin/migrate"; fi
CORPUS="$ROOT/migrate/tests/fixtures/corpus"
tmp=$(mktemp -d)
dbs=()
cleanup() {
  for d in "${dbs[@]}"; do psql -X -q -d "$ADMIN" -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

export E2E_MIGRATE_ENV=bench E2E_MIGRATE_OWNER=bench
# Up sections for psql, cut once, ENVSUB values put in by hand.
mkdir -p "$tmp/up"
for f in "$CORPUS"/[0-9]*_*.sql; do
  awk 'tolower($0) ~ /^-- \+goose down/ {exit} {print}' "$f" \
    | sed -e 's/\${E2E_MIGRATE_ENV:-dev}/bench/g' -e 's/\${E2E_MIGRATE_OWNER:-nobody}/bench/g' \
          -e 's/\${E2E_MIGRATE_RETENTION-2555}/2555/g' >"$tmp/up/$(basename "$f")"
done
nfiles=$(ls "$tmp/up" | wc -l)

newdb() {
  local d="bench_migrate_$$_$1"
  dbs+=("$d")
  psql -X -q -d "$ADMIN" -c "CREATE DATABASE \"$d\"" >/dev/null
  echo "${ADMIN%/*}/$d"
}
dropdb_() { psql -X -q -d "$ADMIN" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null; }

run_migrate() { "$MIG" --dir "$CORPUS" --database-url "$1" -q up >/dev/null; }
# NOTICEs (the corpus RAISEs one) off; errors still show.
export PGOPTIONS="-c client_min_messages=warning"
run_psql_loop() {
  local url=$1 f
  for f in "$tmp"/up/*.sql; do
    if grep -q -- '-- +goose NO TRANSACTION' "$f"; then
      psql -X -q -v ON_ERROR_STOP=1 -d "$url" -f "$f" >/dev/null
    else
      psql -X -q -v ON_ERROR_STOP=1 -1 -d "$url" -f "$f" >/dev/null
    fi
  done
}

for r in $(seq "$ROUNDS"); do
  a=$(newdb "m$r"); b=$(newdb "p$r")
  # Alternate who goes first so neither always gets a warmer server.
  if [ $((r % 2)) = 1 ]; then
    t0=$(ns_now); run_migrate "$a"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/migrate"
    t0=$(ns_now); run_psql_loop "$b"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/psql"
  else
    t0=$(ns_now); run_psql_loop "$b"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/psql"
    t0=$(ns_now); run_migrate "$a"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/migrate"
  fi
  if [ "$r" = 1 ]; then
    for _ in $(seq "$NOOP"); do
      t0=$(ns_now); run_migrate "$a"; t1=$(ns_now); echo $((t1 - t0)) >>"$tmp/noop"
    done
  fi
  dropdb_ "${a##*/}"; dropdb_ "${b##*/}"
done

m=$(median "$tmp/migrate"); p=$(median "$tmp/psql"); n=$(median "$tmp/noop")
echo "migrate bench: $nfiles migrations (test corpus) on an empty database, $ROUNDS rounds, medians"
printf '  %-52s %9s ms\n' "migrate up (whole process)" "$(ms "$m")"
printf '  %-52s %9s ms\n' "psql loop (psql -1 -f per Up section)" "$(ms "$p")"
printf '  %-52s %9s ms\n' "migrate up, nothing to do ($NOOP calls, whole process)" "$(ms "$n")"
ratio_mp=$(ratio "$m" "$p")
echo "  ratio migrate/psql loop: $ratio_mp (target <= 0.8)"
echo "  no-op target: < 100 ms"
