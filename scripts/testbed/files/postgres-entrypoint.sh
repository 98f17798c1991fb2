#!/usr/bin/env bash
# Entrypoint of the testbed's PostgreSQL image. Honours the official postgres image's
# contract: POSTGRES_USER, POSTGRES_PASSWORD (or *_FILE), POSTGRES_DB, PGDATA,
# POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD, /docker-entrypoint-initdb.d/,
# extra arguments passed to postgres ("-c max_connections=200"), runs as user postgres.
set -Eeo pipefail

file_env() {
  local var=$1 fvar="${1}_FILE" def=${2:-}
  if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
    echo >&2 "error: both $var and $fvar are set (but are exclusive)"; exit 1
  fi
  local val=$def
  if [ -n "${!var:-}" ]; then val=${!var}; elif [ -n "${!fvar:-}" ]; then val=$(<"${!fvar}"); fi
  export "$var"="$val"; unset "$fvar"
}

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA" || :
  chmod 03775 /var/run/postgresql || :
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ]; then
  mkdir -p "$PGDATA"; chmod 00700 "$PGDATA" || :
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
      cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)
EOM
      exit 1
    fi
    pwfile=$(mktemp)
    printf '%s' "${POSTGRES_PASSWORD}" >"$pwfile"
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" $POSTGRES_INITDB_ARGS
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

    export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
    # The init server listens on a private socket dir only, so a pg_isready readiness probe
    # (which uses the default socket) cannot report Ready before initialisation is complete.
    init_sock=$(mktemp -d /tmp/pg-init.XXXXXX)
    export PGHOST=$init_sock
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$init_sock -p 5432" -w start
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
      exists=$("${psql[@]}" --dbname postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'")
      [ -n "$exists" ] || "${psql[@]}" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) echo "running $f"; . "$f" ;;
        *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
        *.sql.gz) echo "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
        *) [ -e "$f" ] && echo "ignoring $f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD PGHOST
    rm -rf "$init_sock"
    echo 'PostgreSQL init process complete; ready for start up.'
  fi
fi

exec "$@"
